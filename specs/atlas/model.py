"""The atlas's data types: an op (:class:`Entry`), its differentiable arguments (:class:`Arg`) and
its special points (:class:`Point`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from specs.engine.expect import Tolerance

#: The kinds of special point an entry may declare.
POINT_KINDS = (
    "kink",
    "bound",
    "tie",
    "zero-denominator",
    "root-zero",
    "domain-boundary",
    "pole",
    "jump",
    "repeated-index",
    "square",
    "non-square",
    "degenerate",
    "zero-size",
    "train",
    "eval",
    "nan",
)

#: Where PyTorch's note "Autograd mechanics > Gradients for non-differentiable functions" applies.
MIN_NORM = "minimum-norm subgradient"


@dataclass(frozen=True)
class Arg:
    """A differentiable float64 argument, drawn uniformly from ``[lo, hi]`` at generic points."""

    name: str
    shape: tuple[int, ...]
    lo: float = -2.0
    hi: float = 2.0


@dataclass(frozen=True)
class Point:
    """A fixed canonical input at which the op is special (the same on every release).

    ``values`` maps argument names to flat value lists (reshaped to ``shapes`` or the argument's
    shape); arguments not named keep their canonical generic values.  ``convention`` names the
    documented convention the gradient should follow there, and ``pieces`` the nudges
    ``(arg, flat index, sign)`` that move the input onto each smooth piece meeting at the point
    (the oracle of the convention); ``departs`` is why torch is known to depart from it.
    """

    name: str
    kind: str
    values: dict[str, tuple[float, ...]]
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    convention: str | None = None
    pieces: tuple[tuple[str, int, int], ...] = ()
    departs: str | None = None


@dataclass(frozen=True)
class Entry:
    """One differentiable op: the code that calls it (also its repro), its arguments, its points.

    ``code`` is a Python expression over the argument names, ``torch`` and ``F``
    (``torch.nn.functional``).  ``step`` is the finite-difference step and ``tolerance`` the
    agreement demanded of the laws, with its reason.  ``forward``/``order`` are the modes and
    the highest derivative order this atlas *expects* (None: unknown, only observed).
    """

    name: str
    code: str
    args: tuple[Arg, ...]
    points: tuple[Point, ...] = ()
    step: float = 1e-6
    tolerance: Tolerance | None = None
    forward: bool | None = None
    order: int | None = None
    #: the op is a mathematical function of its inputs (random ops are seeded inside ``code``)
    deterministic: bool = True
    #: second and higher derivatives are not compared with finite differences (piecewise-linear
    #: or step-like ops, whose second finite differences straddle kinks too easily)
    smooth: bool = True
    #: known departures from the laws on some releases: {law id suffix: reason}
    known: dict[str, str] = field(default_factory=dict)
