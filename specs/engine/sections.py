"""The sections of the seed tutorial, declared once: every rule belongs to one of them."""

from __future__ import annotations


class Section:
    """Names for the seed tutorial's sections (``rule(..., section=Section.INPLACE)``)."""

    INTRODUCTION = "Introduction to Automatic Differentiation"
    BASICS = "PyTorch Autograd: The Basics"
    GRAPH = "The Computational Graph"
    ACCUMULATION = "Gradient Accumulation"
    EXCLUDING = "Excluding Tensors from Autograd"
    NON_SCALAR = "Gradients of Non-Scalar Outputs"
    HIGHER_ORDER = "Higher-Order Derivatives"
    INPLACE = "In-place Operations and Autograd"
    CUSTOM = "Custom Autograd Functions"
    PRACTICAL = "Practical Considerations and Tips"
    BEYOND = "Beyond the Tutorial"


#: The sections in the seed tutorial's order.
SEED_SECTIONS = (
    Section.INTRODUCTION,
    Section.BASICS,
    Section.GRAPH,
    Section.ACCUMULATION,
    Section.EXCLUDING,
    Section.NON_SCALAR,
    Section.HIGHER_ORDER,
    Section.INPLACE,
    Section.CUSTOM,
    Section.PRACTICAL,
    Section.BEYOND,
)
