"""Generated differentiable programs: straight-line torch code over a few leaf tensors.

A :class:`Program` is data (leaf tensors and steps) that renders to plain torch source; the rules
run exactly that source, so the repro printed on failure is the code that failed.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import torch

from specs.engine.script import Script

DTYPE_NAMES = {torch.float32: "torch.float32", torch.float64: "torch.float64"}
LAYOUTS = ("contiguous", "transposed", "sliced", "expanded")


def _dims(shape: Sequence[int]) -> str:
    return ", ".join(str(s) for s in shape) if shape else ""


@dataclass(frozen=True)
class TensorSpec:
    """A tensor as code: its values, dtype, shape and memory layout.

    ``layout`` is how the tensor is laid out in memory: ``contiguous``, ``transposed`` (last two
    dims swapped), ``sliced`` (every other element of a larger tensor) or ``expanded`` (a
    broadcast view whose first dimension has stride 0).
    """

    shape: tuple[int, ...]
    dtype: torch.dtype
    layout: str
    values: tuple[float, ...]
    requires_grad: bool = True

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def base_shape(self) -> tuple[int, ...]:
        s = self.shape
        if self.layout == "transposed":
            return s[:-2] + (s[-1], s[-2])
        if self.layout == "sliced":
            return s[:-1] + (2 * s[-1],)
        if self.layout == "expanded":
            return (1,) + s[1:]
        return s

    def expression(self, dtype: torch.dtype | None = None, requires_grad: bool | None = None) -> str:
        dtype = dtype or self.dtype
        rg = self.requires_grad if requires_grad is None else requires_grad
        values = ", ".join(repr(v) for v in self.values)
        if not self.shape and self.layout == "contiguous":
            code = f"torch.tensor({values}, dtype={DTYPE_NAMES[dtype]})"
        else:
            code = f"torch.tensor([{values}], dtype={DTYPE_NAMES[dtype]}).reshape({_dims(self.base_shape)})"
            if not self.base_shape:
                code = code.replace(".reshape()", ".reshape(())")
        if self.layout == "transposed":
            code += ".transpose(-2, -1)"
        elif self.layout == "sliced":
            code += "[..., ::2]"
        elif self.layout == "expanded":
            code += f".expand({_dims(self.shape)})"
        if rg:
            code += ".requires_grad_()"
        return code

    def make(self, dtype: torch.dtype | None = None, requires_grad: bool | None = None) -> torch.Tensor:
        return _evaluate(self.expression(dtype, requires_grad))

    def __repr__(self) -> str:
        return self.expression()

    def _repr_pretty_(self, printer, cycle) -> None:  # hypothesis' pretty printer
        printer.text(repr(self))


@functools.lru_cache(maxsize=4096)
def _compiled(source: str, name: str) -> Callable:
    namespace: dict = {"torch": torch}
    exec(compile(source, f"<autograd-spec {name}>", "exec"), namespace)  # noqa: S102 - our own code
    return namespace[name]


def _evaluate(expression: str) -> torch.Tensor:
    return _compiled(f"def make():\n    return {expression}\n", "make")()


@dataclass(frozen=True)
class Step:
    out: str
    op: str
    args: tuple[str, ...]
    code: str
    is_view_op: bool = False
    #: regex the recorded node's name must match, when the op's node is stable across releases
    node: str | None = None


@dataclass(frozen=True)
class Program:
    leaves: tuple[TensorSpec, ...]
    steps: tuple[Step, ...]
    output: str

    # ------------------------------------------------------------------ rendering
    @property
    def leaf_names(self) -> tuple[str, ...]:
        return tuple(f"x{i}" for i in range(len(self.leaves)))

    @property
    def dtype(self) -> torch.dtype:
        return self.leaves[0].dtype

    def source(self, name: str = "program", inputs: Sequence[str] = (), returns: str | None = None) -> str:
        """The program as a Python function.

        ``inputs`` names intermediate values that become parameters instead of being computed,
        ``returns`` replaces the returned expression.
        """
        params = list(self.leaf_names) + list(inputs)
        lines = [f"def {name}({', '.join(params)}):"]
        lines += [f"    {s.out} = {s.code}" for s in self.steps if s.out not in inputs]
        lines.append(f"    return {returns or self.output}")
        return "\n".join(lines) + "\n"

    def function(self, inputs: Sequence[str] = ()) -> Callable:
        return _compiled(self.source("program", inputs), "program")

    def __call__(self, *leaves: torch.Tensor) -> torch.Tensor:
        return self.function()(*leaves)

    def trace(self, *leaves: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every named value of one run: leaves and intermediates, in program order."""
        names = list(self.leaf_names) + [s.out for s in self.steps]
        body = "{" + ", ".join(f"{n!r}: {n}" for n in names) + "}"
        return _compiled(self.source("traced", returns=body), "traced")(*leaves)

    def inputs(self, dtype: torch.dtype | None = None, requires_grad: bool | None = None) -> list[torch.Tensor]:
        """Fresh leaf tensors (new objects on every call)."""
        return [leaf.make(dtype, requires_grad) for leaf in self.leaves]

    @property
    def call(self) -> str:
        """The program called on its leaves by name: ``program(x0, x1)``."""
        return f"program({', '.join(self.leaf_names)})"

    @property
    def print_grads(self) -> tuple[str, ...]:
        """Repro lines printing the .grad of every leaf that requires grad."""
        return tuple(f"print({self.leaf_names[i]}.grad)" for i in self.grad_leaves)

    def repro(
        self, *lines: str, dtype: torch.dtype | None = None, inline: bool = False, within: str | None = None
    ) -> str:
        """A standalone script: leaves, the program, one call (``out = ...``), then ``lines``.

        With ``inline=True`` the steps run at the top level instead of inside ``program()``, so
        ``lines`` can name the intermediates (``v0``, ``v1``, ...) too.  ``within`` is a context
        manager (``"torch.no_grad()"``) that the call, or the inlined steps, run under.
        """
        head = ["import torch", ""]
        head += [f"{n} = {leaf.expression(dtype)}" for n, leaf in zip(self.leaf_names, self.leaves)]
        if inline:
            run = [f"{s.out} = {s.code}" for s in self.steps] + [f"out = {self.output}"]
            body = []
        else:
            run = [f"out = {self.call}"]
            body = [self.source().rstrip(), ""]
        if within:
            run = [f"with {within}:", *("    " + line for line in run)]
        return "\n".join(head + ["", *body, *run, *lines]) + "\n"

    def script(
        self, *lines: str, dtype: torch.dtype | None = None, inline: bool = False, within: str | None = None
    ) -> Script:
        """:meth:`repro` as a :class:`Script`: run it, assert on what it defined, print it on failure."""
        return Script.verbatim(self.repro(*lines, dtype=dtype, inline=inline, within=within))

    def __repr__(self) -> str:
        return "\n" + self.repro()

    def _repr_pretty_(self, printer, cycle) -> None:  # hypothesis' pretty printer
        printer.text(repr(self))

    # ------------------------------------------------------------------ analysis
    @property
    def uses(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for step in self.steps:
            for arg in step.args:
                counts[arg] = counts.get(arg, 0) + 1
        return counts

    @property
    def has_fan_out(self) -> bool:
        return any(n > 1 for n in self.uses.values())

    @property
    def has_view_op(self) -> bool:
        return any(s.is_view_op for s in self.steps)

    @property
    def has_zero_size(self) -> bool:
        return any(leaf.numel == 0 for leaf in self.leaves)

    @property
    def grad_leaves(self) -> tuple[int, ...]:
        """Indices of the leaves that require grad."""
        return tuple(i for i, leaf in enumerate(self.leaves) if leaf.requires_grad)

    def ancestors(self) -> dict[str, frozenset[str]]:
        """For every value, the leaf names it was computed from."""
        found: dict[str, frozenset[str]] = {n: frozenset([n]) for n in self.leaf_names}
        for step in self.steps:
            found[step.out] = frozenset().union(*(found[a] for a in step.args))
        return found

    def with_leaves(self, **changes) -> "Program":
        """The same program with every leaf changed (e.g. ``requires_grad=True``)."""
        return replace(self, leaves=tuple(replace(leaf, **changes) for leaf in self.leaves))

    def split_uses(self, leaf: int) -> tuple["Program", list[int]]:
        """A program in which each use of leaf ``leaf`` reads its own copy of that leaf.

        Returns the new program and the indices of the copies; the original leaf keeps the
        first use.  Differentiating the split program w.r.t. every copy and summing must give
        the original leaf's gradient (the multivariable chain rule).
        """
        name = self.leaf_names[leaf]
        leaves = list(self.leaves)
        copies = [leaf]
        steps = []
        first = True
        for step in self.steps:
            args, code = list(step.args), step.code
            for position, arg in enumerate(step.args):
                if arg != name:
                    continue
                if first:
                    first = False
                    continue
                nth = sum(1 for a in args[:position] if a == name)
                copy = f"x{len(leaves)}"
                leaves.append(self.leaves[leaf])
                copies.append(len(leaves) - 1)
                args[position] = copy
                code = _replace_nth_name(code, name, copy, nth)
            steps.append(replace(step, args=tuple(args), code=code))
        return replace(self, leaves=tuple(leaves), steps=tuple(steps)), copies


def _replace_nth_name(code: str, name: str, new: str, nth: int) -> str:
    matches = list(re.finditer(rf"\b{re.escape(name)}\b", code))
    target = matches[nth]
    return code[: target.start()] + new + code[target.end() :]
