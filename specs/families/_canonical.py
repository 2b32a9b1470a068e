"""Hand-written canonical inputs for ``rule(..., examples=...)``: the same small programs on every release.

Not a family (the leading underscore keeps it out of family discovery).
"""

from __future__ import annotations

import re

import torch

from specs.generators.program import Program, Step, TensorSpec

_NAME = re.compile(r"\b(?:x|v)\d+\b")


def leaf(
    *values: float, shape: tuple[int, ...] | None = None, dtype: torch.dtype = torch.float64, requires_grad: bool = True
) -> TensorSpec:
    """A contiguous leaf holding ``values`` (exact binary fractions keep float32 and float64 alike)."""
    return TensorSpec(
        (len(values),) if shape is None else tuple(shape), dtype, "contiguous", tuple(values), requires_grad
    )


def program(leaves: tuple[TensorSpec, ...] | TensorSpec, *lines: str) -> Program:
    """``program(leaf(...), "v0 = torch.sin(x0)", "v1 = v0 * x0")``: the last line is the output."""
    if isinstance(leaves, TensorSpec):
        leaves = (leaves,)
    steps = []
    for line in lines:
        out, code = (part.strip() for part in line.split("=", 1))
        args = tuple(dict.fromkeys(_NAME.findall(code)))
        steps.append(Step(out, "canonical", args, code))
    return Program(tuple(leaves), tuple(steps), steps[-1].out)
