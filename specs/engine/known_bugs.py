"""Known torch bugs, each recognised from a failing example's inputs by its signature.

A rule states one behaviour, but a generated example can reach a torch bug that another rule
states (two 0-d leaves given ``.grad`` tensors that share storage break every rule that runs
backward more than once).  When an example fails, :func:`reached` asks each bug listed here
whether the example's keyword arguments reach it; a match is counted for the rule and reported
as that known bug, never as an unexplained failure and never dropped.

A signature decides from the example alone, by re-running the smallest thing that shows the bug
on fresh tensors; it is called only after an example has failed, so it may cost a backward pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from specs.engine import versions


@dataclass(frozen=True)
class KnownBug:
    #: a stable id, ``kebab-case``
    id: str
    #: the releases it affects, in the syntax of ``specs/known-failures.txt`` (``>=1.13.1,<2.16``)
    releases: str
    #: what goes wrong, in one sentence
    reason: str
    #: ``signature(kwargs)``: whether a rule's example (its keyword arguments) reaches the bug
    signature: Callable[[dict[str, Any]], bool]
    #: the rule whose statement the bug breaks; that rule fails on it and is listed as a known failure
    rule: str

    def affects(self, version: str | None = None) -> bool:
        """Whether the bug is present in ``version`` (default: the installed torch)."""
        return versions.matches(self.releases, version or versions.installed_text())

    def matches(self, kwargs: dict[str, Any]) -> bool:
        """Whether the example ``kwargs`` reaches the bug on the installed torch."""
        if not self.affects():
            return False
        try:
            return bool(self.signature(kwargs))
        except Exception:  # noqa: BLE001 - a signature that cannot run on these inputs is not reached
            return False


def _programs(kwargs: dict[str, Any]) -> Iterator[Any]:
    """The generated programs among an example's arguments (also inside tuples and lists)."""
    from specs.generators.program import Program

    for value in kwargs.values():
        # A NamedTuple case (``GivenGradients(program, ...)``) is searched by its ``program`` field.
        items = [value.program] if hasattr(value, "_fields") and hasattr(value, "program") else None
        for item in items or (value if isinstance(value, (tuple, list)) else (value,)):
            if isinstance(item, Program):
                yield item


def _storage(tensor: torch.Tensor) -> int | None:
    """The address of the memory a tensor's elements live in, or None when it holds none."""
    if tensor.numel() == 0:
        return None
    return tensor.untyped_storage().data_ptr()


def grads_share_storage(kwargs: dict[str, Any]) -> bool:
    """Some program among ``kwargs``, run once with ``.sum().backward()`` on fresh leaves, gives two leaves
    ``.grad`` tensors that live in the same memory."""
    for program in _programs(kwargs):
        if len(program.grad_leaves) < 2:
            continue
        with torch.enable_grad():
            leaves = program.inputs()
            out = program(*leaves)
            if not out.requires_grad:
                continue
            out.sum().backward()
        storages = [_storage(leaves[i].grad) for i in program.grad_leaves if leaves[i].grad is not None]
        storages = [s for s in storages if s is not None]
        if len(set(storages)) < len(storages):
            return True
    return False


def grad_lives_in_the_given_gradient(kwargs: dict[str, Any]) -> bool:
    """Some program among ``kwargs``, run once on fresh leaves with ``out.backward(g)`` for a gradient ``g``
    held here, gives a leaf a ``.grad`` that lives in ``g``'s memory."""
    for program in _programs(kwargs):
        with torch.enable_grad():
            leaves = program.inputs()
            out = program(*leaves)
            if not out.requires_grad:
                continue
            given = torch.ones_like(out)
            out.backward(given)
        if _storage(given) is None:
            continue
        if any(leaves[i].grad is not None and _storage(leaves[i].grad) == _storage(given) for i in program.grad_leaves):
            return True
    return False


SHARED_ZERO_DIM_GRAD = KnownBug(
    id="shared-zero-dim-grad",
    releases=">=1.13.1",
    reason="two 0-d leaves whose gradients reach them through one expand (x.sum() + y.sum(), "
    "torch.stack([x, y]).sum()) are given .grad tensors that share storage, so a later backward "
    "adds into both",
    signature=grads_share_storage,
    rule="accumulation.leaves-own-their-grad",
)

GIVEN_GRADIENT_BECOMES_GRAD = KnownBug(
    id="given-gradient-becomes-grad",
    releases=">=1.13.1",
    reason="out.backward(g), where a leaf's gradient is a view of g (out = x.view(2, 1), x.t(), "
    "x.unsqueeze(0), or x.sum() of a 0-d x), makes that view the leaf's .grad, so the next backward "
    "adds into the caller's g: x.view(2, 1).backward(g) twice leaves g doubled (found by this suite)",
    signature=grad_lives_in_the_given_gradient,
    rule="accumulation.given-gradients-are-not-modified",
)

#: Every known bug, by id.
KNOWN_BUGS: dict[str, KnownBug] = {bug.id: bug for bug in (SHARED_ZERO_DIM_GRAD, GIVEN_GRADIENT_BECOMES_GRAD)}


def reached(kwargs: dict[str, Any], rule: str | None = None) -> KnownBug | None:
    """The known bug of the installed torch that the example ``kwargs`` reaches, if any: the one whose
    statement is ``rule``'s first (that rule fails on it), else the first listed."""
    ordered = sorted(KNOWN_BUGS.values(), key=lambda bug: bug.rule != rule)
    for bug in ordered:
        if bug.matches(kwargs):
            return bug
    return None
