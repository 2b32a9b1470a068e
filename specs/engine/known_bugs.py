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
        for item in value if isinstance(value, (tuple, list)) else (value,):
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


SHARED_ZERO_DIM_GRAD = KnownBug(
    id="shared-zero-dim-grad",
    releases=">=1.13.1",
    reason="two 0-d leaves whose gradients reach them through one expand (x.sum() + y.sum(), "
    "torch.stack([x, y]).sum()) are given .grad tensors that share storage, so a later backward "
    "adds into both",
    signature=grads_share_storage,
    rule="accumulation.leaves-own-their-grad",
)

#: Every known bug, by id.
KNOWN_BUGS: dict[str, KnownBug] = {bug.id: bug for bug in (SHARED_ZERO_DIM_GRAD,)}


def reached(kwargs: dict[str, Any]) -> KnownBug | None:
    """The first known bug of the installed torch that the example ``kwargs`` reaches, if any."""
    for bug in KNOWN_BUGS.values():
        if bug.matches(kwargs):
            return bug
    return None
