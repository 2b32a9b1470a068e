"""Which of PyTorch's own OpInfo ops (``op_db`` entries that support autograd) the atlas exercises.

Counted honestly: every entry of the table is run once under a ``TorchFunctionMode`` that records
the torch callables it actually calls, and an OpInfo op counts as covered when one of its
callables (function, method or the public name it resolves to) is among them.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

import torch
from torch.overrides import TorchFunctionMode

from specs.atlas import evaluate as ev
from specs.atlas.table import TABLE


class _Calls(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.seen: set = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.seen.add(_key(func))
        return func(*args, **(kwargs or {}))


def _key(func):
    # A property's getter is reported as its __get__; a method descriptor as itself.
    return getattr(func, "__self__", None) if type(func).__name__ == "method-wrapper" else func


@functools.lru_cache(maxsize=1)
def called() -> frozenset:
    """Every torch callable that the atlas's entries call, at their canonical generic points."""
    mode = _Calls()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for entry in TABLE.values():
            case = ev.generic(entry, 0)
            inputs = case.tensors()
            with mode:
                try:
                    case.call(inputs)
                except Exception:  # noqa: BLE001, S112 - an op that raises is still exercised
                    continue
    return frozenset(mode.seen)


def _candidates(op) -> list:
    """The callables an OpInfo names: its function, its method, and its public name resolved."""
    found = [op.op, op.method_variant]
    namespace, _, last = op.name.rpartition(".")
    module = {
        "": torch,
        "linalg": torch.linalg,
        "special": torch.special,
        "fft": torch.fft,
        "masked": torch.masked,
        "nn.functional": torch.nn.functional,
        "sparse": torch.sparse,
    }.get(namespace)
    if module is not None:
        found.append(getattr(module, last, None))
    attribute = torch.Tensor.__dict__.get(last) or getattr(torch.Tensor, last, None) if not namespace else None
    if isinstance(attribute, property):
        found.append(attribute.__get__)
    elif attribute is not None:
        found.append(attribute)
    return [f for f in found if f is not None]


@dataclass(frozen=True)
class Coverage:
    covered: tuple[str, ...]
    uncovered: tuple[str, ...]

    @property
    def fraction(self) -> float:
        total = len(self.covered) + len(self.uncovered)
        return len(self.covered) / total if total else 0.0


def measure() -> Coverage:
    """The OpInfo autograd ops (by name; variants of one op count once) the atlas exercises."""
    from torch.testing._internal.common_methods_invocations import op_db

    seen = called()
    by_name: dict[str, bool] = {}
    for op in op_db:
        if not op.supports_autograd:
            continue
        hit = any(_safe_in(f, seen) for f in _candidates(op))
        by_name[op.name] = by_name.get(op.name, False) or hit
    return Coverage(
        tuple(sorted(n for n, c in by_name.items() if c)), tuple(sorted(n for n, c in by_name.items() if not c))
    )


def _safe_in(func, seen) -> bool:
    try:
        return func in seen or _key(func) in seen
    except TypeError:
        return False


if __name__ == "__main__":
    result = measure()
    print(
        f"{len(result.covered)} of {len(result.covered) + len(result.uncovered)} OpInfo autograd ops "
        f"({result.fraction:.1%}); not covered: {', '.join(result.uncovered)}"
    )
