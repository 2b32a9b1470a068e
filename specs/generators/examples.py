"""Canonical examples, written by hand: the fixed inputs a rule's ``examples=`` runs on every release.

They are built from the same data types the strategies draw (:class:`TensorSpec`, :class:`Program`),
so a canonical example and a generated one go through the same check.
"""

from __future__ import annotations

import torch

from specs.generators.program import Program, Step, TensorSpec


def tensor(
    values: tuple[float, ...],
    shape: tuple[int, ...],
    dtype: torch.dtype = torch.float64,
    layout: str = "contiguous",
    requires_grad: bool = True,
) -> TensorSpec:
    """A hand-written :class:`TensorSpec`; ``values`` fill the base tensor (before the layout's view)."""
    return TensorSpec(tuple(shape), dtype, layout, tuple(values), requires_grad)


def one_line_program(code: str, *leaves: TensorSpec) -> Program:
    """A program of one step, ``v0 = code``, over leaves named ``x0``, ``x1``, ..."""
    args = tuple(f"x{i}" for i in range(len(leaves)) if f"x{i}" in code)
    return Program(tuple(leaves), (Step("v0", "canonical", args, code),), "v0")
