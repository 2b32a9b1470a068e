"""The derivative atlas: generic laws over every op of the table, and what torch returns at each
op's special points.

Each law is checked two ways: on every entry of :mod:`specs.atlas.table` at its canonical generic
point (the explicit example, the same on every release; the ops that fail or lack a mode are
recorded for the release diff), and on entries and points that hypothesis draws.
"""

from __future__ import annotations

import functools
import math

import torch
from hypothesis import strategies as st

from specs.atlas import evaluate as ev
from specs.atlas.model import MIN_NORM, Entry
from specs.atlas.table import TABLE
from specs.engine.expect import Tolerance, Violation, expect
from specs.engine.registry import Family, Feature, record, rule
from specs.engine.script import Script
from specs.engine.sections import Section

FAMILY = Family(
    name="atlas",
    title="The derivative atlas",
    summary="Every differentiable op of the atlas table against finite differences, forward against "
    "reverse mode and second derivatives, and the gradient each op returns at its kinks, ties and bounds.",
    gallery="plot_83_atlas.py",
)

MECHANICS = "docs: Autograd mechanics > Gradients for non-differentiable functions"

#: The explicit example of every law: the sweep over the whole table at canonical inputs.
EVERY = "every entry of the table"
NAMES = sorted(TABLE)
entries = st.sampled_from(NAMES)
seeds = st.integers(0, 2**20)
SWEEP = (dict(name=EVERY, seed=0),)

FIRST_ORDER = Tolerance(
    1e-5,
    1e-6,
    "float64 central differences, step 1e-6: truncation about 1e-12 "
    "times the third derivative, rounding about 1e-10 relative",
)
SECOND_ORDER = Tolerance(
    1e-4,
    1e-5,
    "float64 central differences of a first derivative, step 1e-4: "
    "truncation about 1e-8, rounding about 1e-12 relative",
)
SAME_DERIVATIVE = Tolerance(
    1e-9, 1e-10, "two float64 evaluations of the same derivative in different orders: rounding only"
)
SUBGRADIENT = Tolerance(
    1e-3, 1e-4, "each piece's gradient is a float64 central difference taken 1e-4 from the point, inside that piece"
)


#: forward over forward is taken with torch.func.jvp (functorch joined torch in 2.0)
TORCH_FUNC = Feature("torch.func.jvp", lambda: hasattr(torch, "func") and hasattr(torch.func, "jvp"))


class NotImplementedDerivative(Exception):
    """The derivative is missing and torch said so (the outcome is recorded, not a failure)."""


def _agree(actual: float, expected: float, scale: float, tolerance: Tolerance, what: str, repro: Script):
    allowed = tolerance.atol * (1.0 + scale) + tolerance.rtol * abs(expected)
    expect(
        abs(actual - expected) <= allowed,
        what=f"{what}: {actual!r} vs {expected!r} differ by {abs(actual - expected):.3g} "
        f"(allowed {allowed:.3g}: {tolerance.reason})",
        expected=expected,
        observed=actual,
        repro=repro,
    )


#: The start of every law's repro: the op at the very inputs the check used (``case``, its
#: ``inputs`` and ``outputs``) and the law's random cotangent ``w`` and direction ``v``.  The check
#: runs the same calls through a cache that the laws share (one derivative computed once a run),
#: so each law's lines below name exactly the calls whose results it compares.
CASE = """\
from specs.atlas import evaluate as ev
from specs.atlas.table import TABLE

case = $case
inputs = case.tensors()
outputs = case.call(inputs)
w = ev.directions(outputs, $seed, "cotangent")
v = ev.directions(inputs, $seed, "direction")
"""


class LawScript(Script):
    """The repro of one law at one case: :data:`CASE`, then the law's lines (``law``, with ``holes``).

    Rendered when first read: a sweep over the table gives every op's checks a repro, and only
    those of a failure (or of the repro meta-test) are ever read.
    """

    def __init__(self, case: ev.Case, seed: int, law: str, /, **holes: object) -> None:
        self._render = lambda: Script(CASE + law, case=case.code(), seed=seed, **holes).text

    @functools.cached_property
    def text(self) -> str:
        return self._render()


#: Derivatives already computed, by (entry, seed, which): the laws share them, so that the sweep
#: over the whole table computes each derivative once per run (inputs are a function of the key).
_COMPUTED: dict[tuple[str, int, str], object] = {}


def _attempt(entry: Entry, seed: int, which: str, step):
    """Run (or reuse) one derivative; a documented missing one becomes :class:`NotImplementedDerivative`."""
    key = (entry.name, seed, which)
    if key not in _COMPUTED:
        try:
            _COMPUTED[key] = [t.detach() for t in step()]
        except Exception as exc:  # noqa: BLE001 - kept, and raised again for every law that asks
            _COMPUTED[key] = exc
    value = _COMPUTED[key]
    if isinstance(value, BaseException):
        if ev.is_not_implemented(value):
            raise NotImplementedDerivative(ev.template(value))
        raise value
    return value


def _setup(entry: Entry, seed: int):
    case = ev.generic(entry, seed)
    inputs = case.tensors()
    outputs = case.call(inputs)
    cotangents = ev.directions(outputs, seed, "cotangent")
    direction = ev.directions(inputs, seed, "direction")
    return case, inputs, outputs, cotangents, direction


def _sweep(law: str, check, name: str, seed: int) -> None:
    """Check one entry, or (the explicit example) every entry, recording which ops did not pass."""
    if name != EVERY:
        entry = TABLE[name]
        if ev.unavailable(entry.code):
            return
        try:
            check(entry, seed)
        except NotImplementedDerivative:
            pass
        except Exception:
            if law not in entry.known:
                raise
        return
    missing, failed, known = {}, {}, {}
    absent = {e.name: ", ".join(ev.unavailable(e.code)) for e in TABLE.values() if ev.unavailable(e.code)}
    for entry in TABLE.values():
        if entry.name in absent:
            continue
        try:
            check(entry, seed)
        except NotImplementedDerivative as exc:
            missing[entry.name] = str(exc)
        except Exception as exc:  # noqa: BLE001 - every failure is collected, then reported together
            (known if law in entry.known else failed)[entry.name] = exc
    record("not in this torch", absent)
    record("not-implemented", missing)
    record("known-departures", {n: _headline(e) for n, e in known.items()})
    record("failed", {n: _headline(e) for n, e in failed.items()})
    if failed:
        first = failed[next(iter(failed))]
        if isinstance(first, Violation):
            raise Violation(
                f"{law} fails for {len(failed)} of {len(TABLE)} ops: {', '.join(failed)}; the first: {first.what}",
                first.expected,
                first.observed,
                first.repro,
            )
        raise Violation(
            f"{law} fails for {len(failed)} of {len(TABLE)} ops: {', '.join(failed)}",
            "every op of the table",
            f"first: {ev.template(first)}",
        )


def _headline(exc: BaseException) -> str:
    return (exc.what if isinstance(exc, Violation) else ev.template(exc))[:300]


# ------------------------------------------------------------------------------ laws
def reverse_matches_finite_differences(entry: Entry, seed: int) -> None:
    if not entry.deterministic:
        return
    case, inputs, outputs, w, v = _setup(entry, seed)
    grads = _attempt(entry, seed, "vjp", lambda: ev.vjp(case, inputs, outputs, w))
    fd = ev.directional_fd(case, inputs, v, entry.step)
    scale = ev.norm(w) * ev.norm(fd) + ev.norm(grads) * ev.norm(v)
    _agree(
        float(ev.dot(grads, v)),
        float(ev.dot(w, fd)),
        scale,
        entry.tolerance or FIRST_ORDER,
        f"{entry.name} at its {case.label}: <J^T w, v> (reverse mode) against <w, (f(x+hv) - f(x-hv))/2h>",
        LawScript(case, seed, REVERSE, step=entry.step),
    )


REVERSE = """\
grads = ev.vjp(case, inputs, outputs, w)
fd = ev.directional_fd(case, inputs, v, $step)
print("<J^T w, v> =", float(ev.dot(grads, v)), "  <w, (f(x+hv) - f(x-hv))/2h> =", float(ev.dot(w, fd)))
"""


@rule(
    "atlas.reverse-matches-finite-differences",
    section=Section.BEYOND,
    docs="atlas-laws",
    given=dict(name=entries, seed=seeds),
    examples=SWEEP,
    references=("test_ops_gradients.py::TestBwdGradients::test_fn_grad", "docs: torch.autograd.gradcheck"),
)
def reverse_matches_finite_differences_law(name, seed):
    """For every op of the atlas at generic points of its domain, reverse mode agrees with float64 central finite differences along a random direction: <Jᵀw, v> = <w, (f(x+hv) - f(x-hv))/2h>."""
    _sweep("reverse-matches-finite-differences", reverse_matches_finite_differences, name, seed)


def forward_is_adjoint_of_reverse(entry: Entry, seed: int) -> None:
    case, inputs, outputs, w, v = _setup(entry, seed)
    grads = _attempt(entry, seed, "vjp", lambda: ev.vjp(case, inputs, outputs, w))
    tangents = _attempt(entry, seed, "jvp", lambda: ev.jvp_forward(case, inputs, v))
    scale = ev.norm(w) * ev.norm(tangents) + ev.norm(grads) * ev.norm(v)
    _agree(
        float(ev.dot(w, tangents)),
        float(ev.dot(grads, v)),
        scale,
        entry.tolerance or SAME_DERIVATIVE,
        f"{entry.name} at its {case.label}: <w, J v> (forward mode) against <J^T w, v> (reverse mode)",
        LawScript(case, seed, ADJOINT),
    )


ADJOINT = """\
grads = ev.vjp(case, inputs, outputs, w)
tangents = ev.jvp_forward(case, inputs, v)
print("<w, J v> =", float(ev.dot(w, tangents)), "  <J^T w, v> =", float(ev.dot(grads, v)))
"""


@rule(
    "atlas.forward-is-adjoint-of-reverse",
    section=Section.BEYOND,
    docs="atlas-laws",
    given=dict(name=entries, seed=seeds),
    examples=SWEEP,
    references=(
        "test_ops_fwd_gradients.py::TestFwdGradients::test_forward_mode_AD",
        "docs: Forward-mode Automatic Differentiation",
    ),
)
def forward_is_adjoint_of_reverse_law(name, seed):
    """For every op of the atlas that has a forward-mode derivative, forward mode is the adjoint of reverse mode: <w, J v> = <Jᵀ w, v> for random v and w."""
    _sweep("forward-is-adjoint-of-reverse", forward_is_adjoint_of_reverse, name, seed)


def second_order_matches_finite_differences(entry: Entry, seed: int) -> None:
    if not (entry.deterministic and entry.smooth):
        return
    case, inputs, _outputs, w, v = _setup(entry, seed)
    u = ev.directions(inputs, seed, "second direction")
    grads = _attempt(entry, seed, "rev2 u", lambda: ev.reverse_second(case, inputs, w, u))
    fd = ev.directional_fd(case, inputs, v, 1e-4, function=ev.first_derivative_along(case, w, u))[0]
    scale = ev.norm(grads) * ev.norm(v) + abs(float(fd))
    _agree(
        float(ev.dot(grads, v)),
        float(fd),
        scale,
        SECOND_ORDER,
        f"{entry.name} at its {case.label}: vᵀ∇<Jᵀw, u> (double backward) against central differences of "
        "<Jᵀw, u> along v",
        LawScript(case, seed, SECOND),
    )


SECOND = """\
u = ev.directions(inputs, $seed, "second direction")
grads = ev.reverse_second(case, inputs, w, u)
fd = ev.directional_fd(case, inputs, v, 1e-4, function=ev.first_derivative_along(case, w, u))[0]
print("v^T grad <J^T w, u> =", float(ev.dot(grads, v)), "  central differences along v:", float(fd))
"""


@rule(
    "atlas.second-order-matches-finite-differences",
    section=Section.HIGHER_ORDER,
    docs="atlas-laws",
    given=dict(name=entries, seed=seeds),
    examples=SWEEP,
    references=("test_ops_gradients.py::TestBwdGradients::test_fn_gradgrad", "docs: torch.autograd.gradgradcheck"),
)
def second_order_matches_finite_differences_law(name, seed):
    """For every op of the atlas that is smooth at generic points, its second derivative (double backward) agrees with float64 central differences of its first derivative."""
    _sweep("second-order-matches-finite-differences", second_order_matches_finite_differences, name, seed)


def forward_over_forward_matches_reverse_over_reverse(entry: Entry, seed: int) -> None:
    if not entry.deterministic:
        return
    case, inputs, _outputs, w, v = _setup(entry, seed)
    grads = _attempt(entry, seed, "rev2", lambda: ev.reverse_second(case, inputs, w, v))
    second = _attempt(entry, seed, "fwdfwd", lambda: ev.second_directional_forward(case, inputs, v))
    scale = ev.norm(w) * ev.norm(second) + ev.norm(grads) * ev.norm(v)
    _agree(
        float(ev.dot(w, second)),
        float(ev.dot(grads, v)),
        scale,
        entry.tolerance or SAME_DERIVATIVE,
        f"{entry.name} at its {case.label}: <w, f''[v, v]> (forward over forward, torch.func.jvp) against "
        "vᵀ∇<Jᵀw, v> (reverse over reverse)",
        LawScript(case, seed, FORWARD_OVER_FORWARD),
    )


FORWARD_OVER_FORWARD = """\
grads = ev.reverse_second(case, inputs, w, v)
second = ev.second_directional_forward(case, inputs, v)
print("<w, f''[v, v]> =", float(ev.dot(w, second)), "  v^T grad <J^T w, v> =", float(ev.dot(grads, v)))
"""


@rule(
    "atlas.forward-over-forward-matches-reverse-over-reverse",
    section=Section.HIGHER_ORDER,
    docs="atlas-laws",
    given=dict(name=entries, seed=seeds),
    examples=SWEEP,
    requires=(TORCH_FUNC,),
    references=("test_ops_fwd_gradients.py::TestFwdGradients::test_fn_fwgrad_bwgrad",),
)
def forward_over_forward_law(name, seed):
    """For every op of the atlas, the second directional derivative by forward over forward mode equals the one by reverse over reverse mode: <w, f''[v, v]> = vᵀ∇<Jᵀw, v>."""
    _sweep(
        "forward-over-forward-matches-reverse-over-reverse",
        forward_over_forward_matches_reverse_over_reverse,
        name,
        seed,
    )


def derivatives_keep_dtype_and_shape(entry: Entry, seed: int) -> None:
    case, inputs, outputs, w, v = _setup(entry, seed)
    grads = _attempt(entry, seed, "vjp", lambda: ev.vjp(case, inputs, outputs, w))
    repro = LawScript(case, seed, GRADIENT_LAYOUTS)
    for x, g in zip(inputs, grads):
        expect(
            g.dtype == x.dtype and g.shape == x.shape,
            what=f"{entry.name}: the gradient of an input has its dtype and shape",
            expected=(x.dtype, tuple(x.shape)),
            observed=(g.dtype, tuple(g.shape)),
            repro=repro,
        )
    tangents = _attempt(entry, seed, "jvp", lambda: ev.jvp_forward(case, inputs, v))
    repro = LawScript(case, seed, TANGENT_LAYOUTS)
    for out, t in zip(outputs, tangents):
        expect(
            t.dtype == out.dtype and t.shape == out.shape,
            what=f"{entry.name}: the forward-mode tangent of an output has its dtype and shape",
            expected=(out.dtype, tuple(out.shape)),
            observed=(t.dtype, tuple(t.shape)),
            repro=repro,
        )


GRADIENT_LAYOUTS = """\
grads = ev.vjp(case, inputs, outputs, w)
print("inputs:", [(x.dtype, tuple(x.shape)) for x in inputs])
print("gradients:", [(g.dtype, tuple(g.shape)) for g in grads])
"""
TANGENT_LAYOUTS = """\
tangents = ev.jvp_forward(case, inputs, v)
print("outputs:", [(o.dtype, tuple(o.shape)) for o in outputs])
print("tangents:", [(t.dtype, tuple(t.shape)) for t in tangents])
"""


@rule(
    "atlas.derivatives-keep-dtype-and-shape",
    section=Section.BEYOND,
    docs="atlas-laws",
    given=dict(name=entries, seed=seeds),
    examples=SWEEP,
    references=("docs: Autograd mechanics > Gradients for non-differentiable functions",),
)
def derivatives_keep_dtype_and_shape_law(name, seed):
    """For every op of the atlas, each input's gradient has that input's dtype and shape, and each output's forward-mode tangent has that output's dtype and shape."""
    _sweep("derivatives-keep-dtype-and-shape", derivatives_keep_dtype_and_shape, name, seed)


MODES = ("reverse", "forward", "reverse order 2", "reverse order 3", "forward over forward")


def _modes(entry: Entry, seed: int) -> dict[str, str]:
    case, inputs, outputs, w, v = _setup(entry, seed)
    outcome = {}
    for mode, (which, step) in ev.modes(case, inputs, outputs, w, v).items():
        try:
            _attempt(entry, seed, which, step)
            outcome[mode] = "implemented"
        except NotImplementedDerivative as exc:
            outcome[mode] = f"not implemented: {exc}"
        except Exception as exc:  # noqa: BLE001 - any other error breaks the law
            outcome[mode] = "ERROR " + ev.template(exc)
    return outcome


MODES_TRIED = """\
for mode, (_, step) in ev.modes(case, inputs, outputs, w, v).items():
    try:
        step()
        print(f"{mode}: implemented")
    except Exception as error:
        print(f"{mode}: {type(error).__name__}: {error}")
"""


def missing_derivatives_raise(entry: Entry, seed: int) -> None:
    outcome = _modes(entry, seed)
    expected = {
        "forward": entry.forward,
        "reverse order 2": entry.order and entry.order >= 2,
        "reverse order 3": entry.order and entry.order >= 3,
    }
    repro = LawScript(ev.generic(entry, seed), seed, MODES_TRIED)
    for mode, result in outcome.items():
        expect(
            not result.startswith("ERROR"),
            what=f"{entry.name}: a missing {mode} derivative raises NotImplementedError or a RuntimeError "
            "saying it is not implemented",
            expected="a derivative or that error",
            observed=result[6:],
            repro=repro,
        )
        expect(
            not expected.get(mode) or result == "implemented",
            what=f"{entry.name}: the {mode} derivative is implemented",
            expected="implemented",
            observed=result,
            repro=repro,
        )
    unsupported = {m: r for m, r in outcome.items() if r != "implemented"}
    if unsupported:
        raise NotImplementedDerivative("; ".join(f"{m}: {r}" for m, r in unsupported.items()))


@rule(
    "atlas.missing-derivatives-raise",
    section=Section.BEYOND,
    docs="atlas-laws",
    given=dict(name=entries, seed=seeds),
    examples=SWEEP,
    requires=(TORCH_FUNC,),
    references=("test_ops.py::TestCommon::test_dtypes", "docs: Extending torch.autograd"),
)
def missing_derivatives_raise_law(name, seed):
    """For every op of the atlas and every mode (reverse, forward, reverse of order 2 and 3, forward over forward), the derivative is either computed or refused with NotImplementedError or a RuntimeError saying it is not implemented, never another error."""
    _sweep("missing-derivatives-raise", missing_derivatives_raise, name, seed)


# ------------------------------------------------------------------------------ edges
POINTS = sorted((name, index) for name, entry in TABLE.items() for index in range(len(entry.points)))
EVERY_POINT = "every special point of the table"


def observe_point(entry: Entry, index: int) -> dict:
    """What torch returns at one special point: values, gradient, modes and orders, errors."""
    point = entry.points[index]
    case = ev.special(entry, point)
    seen: dict = {"kind": point.kind}
    try:
        inputs = case.tensors()
        outputs = case.call(inputs)
    except Exception as exc:  # noqa: BLE001 - an op may refuse an input at its domain's edge
        seen["forward value"] = ev.template(exc)
        return seen
    seen["output has nan/inf"] = [bool(torch.isnan(o).any()) for o in outputs] + [
        bool(torch.isinf(o).any()) for o in outputs
    ]
    ones = tuple(torch.ones_like(o) for o in outputs)
    for mode, step in (
        ("gradient", lambda: ev.vjp(case, inputs, outputs, ones)),
        ("forward tangent", lambda: ev.jvp_forward(case, inputs, tuple(torch.ones_like(x) for x in inputs))),
        ("order 2", lambda: ev.reverse_second(case, inputs, ones, tuple(torch.ones_like(x) for x in inputs))),
        ("order 3", lambda: ev.reverse_second(case, inputs, ones, tuple(torch.ones_like(x) for x in inputs), order=3)),
    ):
        try:
            value = step()
            seen[mode] = [ev.rounded(t) for t in value]
        except Exception as exc:  # noqa: BLE001 - the error is what is observed
            seen[mode] = ev.template(exc)
    return seen


#: The gradient recorded at a special point: of the sum of the outputs (``w`` and ``v`` are unused).
EDGE_GRADIENTS = """\
grads = ev.vjp(case, inputs, outputs, tuple(torch.ones_like(o) for o in outputs))
print("inputs:", [tuple(x.shape) for x in inputs])
print("gradients:", grads)
"""


@rule(
    "atlas.edges-are-recorded",
    section=Section.BEYOND,
    docs="atlas-edges",
    given=dict(point=st.sampled_from(POINTS)),
    examples=(dict(point=EVERY_POINT),),
    references=(MECHANICS,),
)
def edges_are_recorded(point):
    """At every special point of the atlas (kinks, bounds, ties, zeros of denominators and roots, domain boundaries, degenerate and zero-size inputs) torch either returns gradients shaped like the inputs or raises, and what it returns is recorded for the release diff."""
    targets = POINTS if point == EVERY_POINT else [point]
    for name, index in targets:
        entry = TABLE[name]
        if ev.unavailable(entry.code):
            record(f"{name} @ {entry.points[index].name}", {"not in this torch": list(ev.unavailable(entry.code))})
            continue
        seen = observe_point(entry, index)
        grads = seen.get("gradient")
        if isinstance(grads, list):
            case = ev.special(entry, entry.points[index])
            shapes = [list(s) for s in (case.shapes[a.name] for a in entry.args)]
            got = [len(g) for g in grads]
            want = [min(8, math.prod(s)) for s in shapes]
            expect(
                got == want,
                what=f"{name} at {entry.points[index].name}: one gradient per input, shaped like it "
                "(at most 8 values of each are recorded)",
                expected=want,
                observed=got,
                repro=LawScript(case, 0, EDGE_GRADIENTS),
            )
        record(f"{name} @ {entry.points[index].name}", seen)


def _min_norm_on_segment(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """The point of smallest norm on the segment between two pieces' gradients (the subdifferential
    of a locally convex or concave function where two smooth pieces meet)."""
    gap = first - second
    length = float(gap @ gap)
    t = 0.0 if length == 0 else min(1.0, max(0.0, -float(second @ gap) / length))
    return t * first + (1 - t) * second


def _piece_gradient(case: ev.Case, weights, arg: str, index: int, sign: int) -> torch.Tensor:
    """Central-difference gradient of <w, f> at the point nudged by 1e-4 onto one piece."""
    names = [a.name for a in case.entry.args]
    base = [x.detach().clone() for x in case.tensors(requires_grad=False)]
    base[names.index(arg)].view(-1)[index] += sign * 1e-4
    flat = torch.cat([x.reshape(-1) for x in base])
    grad = torch.zeros_like(flat)
    h = 1e-7

    def value(vector):
        parts, offset = [], 0
        for x in base:
            parts.append(vector[offset : offset + x.numel()].reshape(x.shape))
            offset += x.numel()
        with torch.no_grad():
            return float(ev.dot(weights, case.call(tuple(parts))))

    for i in range(flat.numel()):
        step = torch.zeros_like(flat)
        step[i] = h
        grad[i] = (value(flat + step) - value(flat - step)) / (2 * h)
    return grad


CONVENTION_POINTS = sorted(
    (name, i) for name, entry in TABLE.items() for i, p in enumerate(entry.points) if p.convention == MIN_NORM
)


def min_norm_departure(name: str, index: int, scale: float) -> tuple[list, list, ev.Case] | None:
    """torch's gradient and the minimum-norm subgradient at one point, rounded, and the case; None where they agree."""
    entry = TABLE[name]
    point = entry.points[index]
    case = ev.special(entry, point)
    inputs = case.tensors()
    outputs = case.call(inputs)
    weights = tuple(torch.full_like(o, scale) for o in outputs)
    got = torch.cat([g.reshape(-1) for g in ev.vjp(case, inputs, outputs, weights)])
    want = _min_norm_on_segment(*(_piece_gradient(case, weights, *piece) for piece in point.pieces))
    if SUBGRADIENT.mismatch(got, want):
        return ev.rounded(got), ev.rounded(want), case
    return None


#: torch's gradient at a kink, for the weights ``scale`` on every output element.
KINK_GRADIENT = """\
weights = tuple(torch.full_like(o, $scale) for o in outputs)
grads = ev.vjp(case, inputs, outputs, weights)
print("torch's gradient:", torch.cat([g.reshape(-1) for g in grads]))
"""


@rule(
    "atlas.kinks-take-the-minimum-norm-subgradient",
    section=Section.BEYOND,
    docs="atlas-conventions",
    given=dict(point=st.sampled_from(CONVENTION_POINTS), scale=st.sampled_from([0.5, 1.0, 3.0])),
    examples=(dict(point=EVERY_POINT, scale=1.0),),
    references=(MECHANICS, "test_autograd.py::TestAutograd::test_min_max_median_backprops_to_all_values"),
)
def kinks_take_the_minimum_norm_subgradient(point, scale):
    """At a kink, bound or tie where the op is locally convex or concave, its gradient is the subgradient of minimum norm (for a tie among k maxima: 1/k each), except for the departures the atlas lists."""
    targets = CONVENTION_POINTS if point == EVERY_POINT else [point]
    departures, seen, missing = {}, [], {}
    for name, index in targets:
        entry = TABLE[name]
        if ev.unavailable(entry.code):
            continue
        special = entry.points[index]
        label = f"{name} @ {special.name}"
        try:
            found = min_norm_departure(name, index, scale)
        except Exception as exc:  # noqa: BLE001 - an op without a derivative here has no gradient to judge
            if not ev.is_not_implemented(exc):
                raise
            missing[label] = ev.template(exc)
            continue
        if found is not None:
            departures[label] = {"torch": found[0], "minimum-norm": found[1]}
        seen.append((label, found, special.departs, ev.special(entry, special)))
    record("departures", departures)
    if missing:
        record("derivative not implemented", missing)
    unexpected = [label for label, found, departs, _case in seen if found is not None and not departs]
    for label, found, departs, case in seen:
        got, want = found[:2] if found is not None else ("the minimum-norm subgradient",) * 2
        expect(
            found is None or bool(departs),
            what=f"{label}: the gradient is the minimum-norm subgradient ({len(unexpected)} undeclared "
            f"departures: {', '.join(unexpected)})",
            expected=want,
            observed=got,
            repro=LawScript(case, 0, KINK_GRADIENT, scale=scale),
        )


def nan_in_the_incoming_gradient_propagates(entry: Entry, seed: int) -> None:
    case = ev.generic(entry, seed)
    inputs = case.tensors()
    outputs = case.call(inputs)
    sizes = [o.numel() if o.requires_grad else 0 for o in outputs]
    if not sum(sizes):
        return
    position = seed % sum(sizes)
    row = _attempt(entry, seed, "row", lambda: ev.vjp(case, inputs, outputs, ev.poked(outputs, position, 1.0)))
    poisoned = _attempt(
        entry, seed, "nan row", lambda: ev.vjp(case, inputs, case.call(inputs), ev.poked(outputs, position, math.nan))
    )
    repro = LawScript(case, seed, NAN_ROW, position=position)
    for arg, used, got in zip(entry.args, row, poisoned):
        lost = bool(((used != 0) & ~torch.isnan(got)).any())
        # (a gradient that is an efficient zero tensor has no storage to read back: rounded only when lost)
        expect(
            not lost,
            what=f"{entry.name} at its {case.label}: a NaN in the incoming gradient of output element "
            f"{position} reaches every entry of the gradient of {arg.name} that it contributes to",
            expected="nan where the gradient of that element is nonzero",
            observed=ev.rounded(got, 12) if lost else "nan there",
            repro=repro,
        )


#: The gradient of one output element (flat ``position``), then the same with a NaN incoming gradient
#: (printed as tensors: an efficient zero tensor, as torch.sgn's gradient may be, has no .tolist()).
NAN_ROW = """\
row = ev.vjp(case, inputs, outputs, ev.poked(outputs, $position, 1.0))
poisoned = ev.vjp(case, inputs, case.call(inputs), ev.poked(outputs, $position, float("nan")))
print("gradient of element $position:", row)
print("with a NaN incoming gradient:", poisoned)
"""


@rule(
    "atlas.nan-in-the-incoming-gradient-propagates",
    section=Section.BEYOND,
    docs="atlas-conventions",
    given=dict(name=entries, seed=seeds),
    examples=SWEEP,
    references=(MECHANICS,),
)
def nan_in_the_incoming_gradient_propagates_law(name, seed):
    """For every op of the atlas, a NaN in the incoming gradient of one output element makes NaN every input-gradient entry to which that element contributes (where its gradient is nonzero), rather than being masked away."""
    _sweep("nan-in-the-incoming-gradient-propagates", nan_in_the_incoming_gradient_propagates, name, seed)
