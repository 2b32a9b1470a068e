"""Assertions that explain themselves: what was expected, what happened, how to reproduce it."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from specs.engine.script import Script, standalone


class Violation(AssertionError):
    """A rule's claim did not hold.  The message names the claim, both observations and a repro."""

    def __init__(self, what: str, expected: object, observed: object, repro: str | Script | None = None):
        #: the standalone script that reproduces the failure (``import torch`` included), or None
        self.repro = standalone(str(repro)) if repro else None
        self.what, self.expected, self.observed = what, expected, observed
        lines = [what, f"  expected: {_short(expected)}", f"  observed: {_short(observed)}"]
        if self.repro:
            lines.append("  reproduce with:")
            lines.extend("    " + line for line in self.repro.rstrip().splitlines())
        super().__init__("\n".join(lines))


def _short(value: object, limit: int = 600) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit] + " ..."


def expect(
    condition: bool, *, what: str, expected: object, observed: object, repro: str | Script | None = None
) -> None:
    """Raise a :class:`Violation` saying ``what`` was expected and observed unless ``condition``."""
    __tracebackhide__ = True
    if not condition:
        raise Violation(what, expected, observed, repro)


@dataclass(frozen=True)
class Tolerance:
    """How far two results may differ, and why that much.

    ``|actual - expected| <= atol * (1 + max|expected|) + rtol * |expected|`` elementwise: the
    absolute part scales with the largest entry, so sums of large terms are judged fairly.
    """

    rtol: float
    atol: float
    reason: str

    def mismatch(self, actual: torch.Tensor, expected: torch.Tensor) -> str | None:
        if actual.shape != expected.shape:
            return f"shape {tuple(actual.shape)} != {tuple(expected.shape)}"
        if actual.numel() == 0:
            return None
        a, e = actual.detach().double(), expected.detach().double()
        both_nan = torch.isnan(a) & torch.isnan(e)
        same_inf = torch.isinf(a) & (a == e)
        scale = e[torch.isfinite(e)].abs().max().item() if torch.isfinite(e).any() else 0.0
        allowed = self.atol * (1.0 + scale) + self.rtol * e.abs()
        bad = ~(both_nan | same_inf | ((a - e).abs() <= allowed))
        if bad.any():
            index = tuple(int(i) for i in bad.nonzero()[0])
            return (
                f"{int(bad.sum())} of {a.numel()} entries differ; first at {index}: "
                f"{a[index].item()!r} vs {e[index].item()!r} (allowed {allowed[index].item():.3g})"
            )
        return None


#: Results that must agree bit for bit (same computation, same dtype).
EXACT = Tolerance(0.0, 0.0, "the same operations on the same values are deterministic on the CPU")


def expect_close(
    actual: torch.Tensor | None,
    expected: torch.Tensor | None,
    *,
    tolerance: Tolerance,
    what: str,
    repro: str | Script | None = None,
) -> None:
    """Raise a :class:`Violation` unless ``actual`` is within ``tolerance`` of ``expected`` (or both are None)."""
    __tracebackhide__ = True
    if actual is None or expected is None:
        expect(actual is None and expected is None, what=what, expected=expected, observed=actual, repro=repro)
        return
    problem = tolerance.mismatch(actual, expected)
    if problem:
        raise Violation(
            f"{what}: {problem} (tolerance rtol={tolerance.rtol}, atol={tolerance.atol}: {tolerance.reason})",
            expected,
            actual,
            repro,
        )
