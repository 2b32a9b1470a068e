"""Gradients at non-differentiable points: the value each op picks at kinks and ties, and NaN traps.

These values are conventions, not mathematics, so a release can change them quietly: each rule
states the value and the release it was checked on.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
from hypothesis import strategies as st

from specs.engine.expect import Tolerance, expect, expect_close
from specs.engine.registry import Change, Family, record, rule
from specs.engine.sections import Section
from specs.engine.versions import at_least
from specs.generators.program import TensorSpec
from specs.generators.strategies import FLOAT_DTYPES, shapes, tensors

FAMILY = Family(
    name="kinks",
    title="Gradients at kinks, ties and NaN traps",
    summary="Which gradient each op returns where it is not differentiable, and how NaN gets into "
    "gradients of values that were masked away.",
    gallery="plot_92_kinks.py",
)

CHECKED_ON = "2.13.0"

#: A formula evaluated with torch ops against autograd's answer: one rounding per op.
FORMULA = {
    torch.float32: Tolerance(1e-6, 1e-7, "float32: the same one or two operations, rounded once each"),
    torch.float64: Tolerance(1e-14, 1e-15, "float64: the same one or two operations, rounded once each"),
}


@st.composite
def kinked(draw, points=(0.0,), dtypes=FLOAT_DTYPES, nonnegative: bool = False):
    """A tensor whose entries at generated positions are set to one of ``points`` (the kinks)."""
    shape = draw(shapes(1, 3, zero_size=False), label="shape")
    spec = draw(tensors(shape=shape, dtypes=dtypes, layouts=("contiguous",)), label="tensor")
    values = [abs(v) for v in spec.values] if nonnegative else list(spec.values)
    at = draw(st.sets(st.integers(0, len(values) - 1), min_size=1), label="kink positions")
    for position in sorted(at):
        values[position] = draw(st.sampled_from(points), label=f"kink at {position}")
    return replace(spec, values=tuple(values))


def _grad(spec, function, gradient=None):
    x = spec.make()
    out = function(x)
    out.backward(torch.ones_like(out) if gradient is None else gradient)
    return x.grad, x.detach()


def _repro(spec, code: str) -> str:
    return f"import torch\nx = {spec.expression()}\n({code}).sum().backward()\nprint(x.grad)"


def _same(got, want, what, repro, dtype):
    expect_close(
        got, want.to(got.dtype), tolerance=FORMULA[dtype], what=f"{what} (checked on torch {CHECKED_ON})", repro=repro
    )


# ------------------------------------------------------------------------------ kinks
RELU_LIKE = {
    "torch.relu(x)": (torch.relu, lambda x: (x > 0).double()),
    "torch.nn.functional.leaky_relu(x, 0.1)": (
        lambda x: torch.nn.functional.leaky_relu(x, 0.1),
        lambda x: torch.where(x > 0, torch.ones_like(x), torch.full_like(x, 0.1)),
    ),
    "torch.nn.functional.elu(x)": (torch.nn.functional.elu, lambda x: torch.where(x >= 0, 1.0, torch.exp(x))),
    "torch.nn.functional.relu6(x)": (torch.nn.functional.relu6, lambda x: ((x > 0) & (x < 6)).double()),
}


@rule(
    "kinks.relu-family-at-zero",
    section=Section.BEYOND,
    docs="kinks-relu",
    given=dict(spec=kinked(points=(0.0, 6.0)), op=st.sampled_from(sorted(RELU_LIKE))),
    references=("docs: Autograd mechanics > Gradients for non-differentiable functions",),
)
def relu_family_at_zero(spec, op):
    """At their kinks relu and relu6 have gradient 0 (at 0 and at 6), leaky_relu has its negative slope and elu has 1, as checked on torch 2.13.0."""
    function, derivative = RELU_LIKE[op]
    grad, x = _grad(spec, function)
    _same(grad, derivative(x), f"gradient of {op}", _repro(spec, op), spec.dtype)


@rule(
    "kinks.abs-and-norm-at-zero",
    section=Section.BEYOND,
    docs="kinks-abs-sqrt",
    given=dict(spec=kinked(), all_zero=st.booleans()),
    references=("docs: Autograd mechanics > Gradients for non-differentiable functions",),
)
def abs_and_norm_at_zero(spec, all_zero):
    """abs has gradient 0 at 0 (it is sign(x)), and the 2-norm of an all-zero tensor has gradient 0 rather than NaN, as checked on torch 2.13.0."""
    if all_zero:
        spec = replace(spec, values=tuple(0.0 for _ in spec.values))
    grad, x = _grad(spec, torch.abs)
    _same(grad, torch.sign(x), "gradient of abs", _repro(spec, "torch.abs(x)"), spec.dtype)
    grad, x = _grad(spec, torch.linalg.vector_norm)
    norm = torch.linalg.vector_norm(x)
    expected = torch.zeros_like(x) if norm == 0 else x / norm
    _same(
        grad, expected, "gradient of torch.linalg.vector_norm", _repro(spec, "torch.linalg.vector_norm(x)"), spec.dtype
    )


@rule(
    "kinks.sqrt-at-zero-is-infinite",
    section=Section.BEYOND,
    docs="kinks-abs-sqrt",
    given=dict(spec=kinked(nonnegative=True)),
    references=("docs: Autograd mechanics > Gradients for non-differentiable functions",),
)
def sqrt_at_zero_is_infinite(spec):
    """sqrt has gradient +inf at 0 (the limit of 1/(2·sqrt(x)), not a chosen value), so even a zero incoming gradient gives NaN there, as checked on torch 2.13.0."""
    grad, x = _grad(spec, torch.sqrt)
    with torch.no_grad():
        expected = 0.5 / torch.sqrt(x)
    _same(grad, expected, "gradient of sqrt", _repro(spec, "torch.sqrt(x)"), spec.dtype)
    expect(bool(torch.isinf(grad[x == 0]).all()), what="gradient of sqrt at 0", expected="inf", observed=grad[x == 0])
    zero_in, x = _grad(spec, torch.sqrt, gradient=torch.zeros(spec.shape, dtype=spec.dtype))
    expect(
        bool(torch.isnan(zero_in[x == 0]).all()),
        what="sqrt at 0 with a zero incoming gradient",
        expected="nan (0 * inf)",
        observed=zero_in[x == 0],
        repro=_repro(spec, "torch.sqrt(x) * 0"),
    )


def _listed(values: torch.Tensor) -> list:
    """JSON-able values for record(): rounded floats, with infinities and NaN as strings."""
    return [round(v, 6) if math.isfinite(v) else str(v) for v in values.flatten().tolist()]


#: Exponents -1, 0, 1 (the points of test_power_function), and the pair (0, 0) for atan2.
AT_ZERO_EXPONENTS = TensorSpec((3,), torch.float64, "contiguous", (-1.0, 0.0, 1.0))


@rule(
    "kinks.power-and-atan2-at-zero",
    section=Section.BEYOND,
    docs="kinks-power-atan2",
    given=dict(spec=kinked(points=(-1.0, 0.0, 1.0)), base=st.sampled_from(["tensor", "scalar"])),
    examples=(dict(spec=AT_ZERO_EXPONENTS, base="tensor"), dict(spec=AT_ZERO_EXPONENTS, base="scalar")),
    references=(
        "test_autograd.py::TestAutograd::test_power_function",
        "test_autograd.py::TestAutograd::test_pow_zero_tensor_gradient",
        "test_autograd.py::test_atan2_zero_gradient",
        "docs: Autograd mechanics > Gradients for non-differentiable functions",
    ),
)
def power_and_atan2_at_zero(spec, base):
    """With base 0 (a zero tensor or the number 0), d(0**b)/db is -inf where b < 0 (0**b·ln 0 = inf·(-inf)) and 0 where b >= 0 (where the formula is the undefined 0·(-inf), PyTorch's convention is 0, the slope of 0**b = 0 for b > 0); x**0 has gradient 0 at x = 0 too (it is the constant 1); and atan2(y, x) has gradient (0, 0) at y = x = 0, where the formulas x/(x²+y²) and -y/(x²+y²) are 0/0, and the formulas elsewhere, as checked on torch 2.13.0."""
    b = spec.make()
    zero = torch.zeros(spec.shape, dtype=spec.dtype)
    out = torch.pow(0.0, b) if base == "scalar" else torch.pow(zero, b)
    out.backward(torch.ones_like(out))
    exponents = b.detach()
    expected = torch.where(exponents < 0, -math.inf, 0.0).to(spec.dtype)
    code = "torch.pow(0.0, b)" if base == "scalar" else "torch.pow(torch.zeros_like(b), b)"
    repro = f"import torch\nb = {spec.expression()}\n{code}.sum().backward()\nprint(b.grad)"
    expect(
        torch.equal(b.grad, expected),
        what=f"d(0**b)/db with a {base} base 0 (checked on torch {CHECKED_ON})",
        expected=_listed(expected),
        observed=_listed(b.grad),
        repro=repro,
    )
    record(f"d(0**b)/db, {base} base, at b = {_listed(exponents)}", _listed(b.grad))

    x = torch.zeros(spec.shape, dtype=spec.dtype, requires_grad=True)
    exponent = torch.zeros(spec.shape, dtype=spec.dtype, requires_grad=True)
    (x**exponent if base == "tensor" else x**0.0).sum().backward()
    repro = (
        f"import torch\nx = torch.zeros({spec.shape}, dtype={spec.dtype}, requires_grad=True)\n"
        f"(x ** {'torch.zeros_like(x)' if base == 'tensor' else '0.0'}).sum().backward()\nprint(x.grad)"
    )
    expect(
        torch.equal(x.grad, torch.zeros_like(x)),
        what=f"d(x**0)/dx at x = 0, {base} exponent (checked on torch {CHECKED_ON})",
        expected=0.0,
        observed=_listed(x.grad),
        repro=repro,
    )
    if base == "tensor":
        expect(
            torch.equal(exponent.grad, torch.zeros_like(exponent)),
            what="d(0**y)/dy at y = 0",
            expected=0.0,
            observed=_listed(exponent.grad),
            repro=repro,
        )
    record(f"d(x**0)/dx at x = 0, {base} exponent", _listed(x.grad))

    # atan2(b, x) where x is 0 exactly where b is: both 0 there, the formulas elsewhere.
    y = b.detach().clone().requires_grad_()
    x = torch.where(exponents == 0, 0.0, exponents.flip(-1) + 2.0).to(spec.dtype).requires_grad_()
    torch.atan2(y, x).sum().backward()
    with torch.no_grad():
        denominator = x * x + y * y
        both_zero = denominator == 0
        safe = torch.where(both_zero, 1.0, denominator)
        dy = torch.where(both_zero, 0.0, x / safe)
        dx = torch.where(both_zero, 0.0, -y / safe)
    repro = (
        f"import torch\ny = {spec.expression()}\nx = torch.tensor({x.detach().tolist()}, dtype={spec.dtype}, "
        "requires_grad=True)\ntorch.atan2(y, x).sum().backward()\nprint(y.grad, x.grad)"
    )
    _same(y.grad, dy, "d atan2(y, x)/dy", repro, spec.dtype)
    _same(x.grad, dx, "d atan2(y, x)/dx", repro, spec.dtype)
    record("atan2 gradients (y, x) at (0, 0)", [_listed(y.grad[both_zero]), _listed(x.grad[both_zero])])


#: Inputs at both bounds of ``clamp(-0.5, 1.0)``, one inside and one outside.
AT_THE_BOUNDS = TensorSpec((4,), torch.float64, "contiguous", (-0.5, 1.0, 0.25, 2.0))


@rule(
    "kinks.clamp-passes-gradient-at-its-bounds",
    section=Section.BEYOND,
    docs="kinks-clamp",
    given=dict(spec=kinked(points=(-0.5, 1.0)), form=st.sampled_from(["both", "min", "max", "tensor"])),
    examples=tuple(dict(spec=AT_THE_BOUNDS, form=form) for form in ("both", "tensor")),
    history=(
        Change(
            "2.14.0",
            "an input equal to a scalar bound of clamp got gradient 1 (this rule); from 2.14 it "
            "gets 0, the note's minimum-norm subgradient (seen on 2.14.1 and 2.15.0 with "
            "x.clamp(-0.5, 1.0) at x = -0.5)",
        ),
    ),
    references=("docs: Autograd mechanics > Gradients for non-differentiable functions",),
)
def clamp_passes_gradient_at_its_bounds(spec, form):
    """clamp's gradient is 1 strictly inside its bounds and 0 outside, and at an input equal to a bound it is 1 before torch 2.14 (a tensor bound itself getting 0 there), a departure from the note's minimum-norm subgradient convention, and that convention from 2.14 on (0 at a scalar bound, 1/2 each to the input and a tensor bound)."""
    lo, hi = -0.5, 1.0
    x = spec.make()
    bounds = (
        torch.full(spec.shape, lo, dtype=spec.dtype, requires_grad=True),
        torch.full(spec.shape, hi, dtype=spec.dtype, requires_grad=True),
    )
    code, out = {
        "both": ("x.clamp(-0.5, 1.0)", lambda: x.clamp(lo, hi)),
        "min": ("x.clamp(min=-0.5)", lambda: x.clamp(min=lo)),
        "max": ("x.clamp(max=1.0)", lambda: x.clamp(max=hi)),
        "tensor": (
            "x.clamp(min=torch.full_like(x, -0.5).requires_grad_(), max=torch.full_like(x, 1.0).requires_grad_())",
            lambda: x.clamp(min=bounds[0], max=bounds[1]),
        ),
    }[form]
    out().sum().backward()
    grad, value = x.grad, x.detach()
    inside = {"min": value >= lo, "max": value <= hi}.get(form, (value >= lo) & (value <= hi))
    at_bound = {"min": value == lo, "max": value == hi}.get(form, (value == lo) | (value == hi))
    convention = inside.double() * (~at_bound).double() + (0.5 if form == "tensor" else 0.0) * at_bound.double()
    # The history: before 2.14 an input on a bound got 1; from 2.14 the minimum-norm convention.
    follows = at_least("2.14")
    what = "the note's minimum-norm convention, since 2.14" if follows else "1 on a bound, before 2.14"
    _same(
        grad, convention if follows else inside.double(), f"gradient of {code} ({what})", _repro(spec, code), spec.dtype
    )
    if form == "tensor":
        for name, bound, beyond, at in (
            ("min", bounds[0], value < lo, value == lo),
            ("max", bounds[1], value > hi, value == hi),
        ):
            _same(
                bound.grad,
                beyond.double() + (0.5 * at.double() if follows else 0.0),
                f"gradient of the tensor {name} bound ({what})",
                _repro(spec, code),
                spec.dtype,
            )
    record(f"{form}: gradient at -0.5, 1.0, 0.25, 2.0", [round(v, 6) for v in grad.flatten().tolist()])
    record(f"{form}: the note's minimum-norm convention there", [round(v, 6) for v in convention.flatten().tolist()])


@rule(
    "kinks.hardtanh-blocks-gradient-at-its-bounds",
    section=Section.BEYOND,
    docs="kinks-clamp",
    given=dict(spec=kinked(points=(-0.5, 1.0))),
    references=("docs: Autograd mechanics > Gradients for non-differentiable functions",),
)
def hardtanh_blocks_gradient_at_its_bounds(spec):
    """hardtanh(x, lo, hi) computes the same values as clamp but its gradient is 0 at inputs equal to a bound, 1 strictly inside, as checked on torch 2.13.0."""
    code = "torch.nn.functional.hardtanh(x, -0.5, 1.0)"
    grad, x = _grad(spec, lambda t: torch.nn.functional.hardtanh(t, -0.5, 1.0))
    expect(
        torch.equal(torch.nn.functional.hardtanh(x, -0.5, 1.0), x.clamp(-0.5, 1.0)),
        what="hardtanh values are clamp's",
        expected="equal",
        observed="different",
    )
    _same(grad, ((x > -0.5) & (x < 1.0)).double(), f"gradient of {code}", _repro(spec, code), spec.dtype)


PIECEWISE_CONSTANT = ("floor", "ceil", "round", "trunc", "sign")


@rule(
    "kinks.piecewise-constant-ops-have-zero-gradient",
    section=Section.BEYOND,
    docs="kinks-steps",
    given=dict(spec=kinked(points=(-1.0, -0.5, 0.0, 0.5, 1.0, 1.5)), op=st.sampled_from(PIECEWISE_CONSTANT)),
)
def piecewise_constant_ops_have_zero_gradient(spec, op):
    """floor, ceil, round, trunc and sign produce results that require grad, and their gradient is 0 everywhere, at their jumps too, as checked on torch 2.13.0."""
    x = spec.make()
    out = getattr(torch, op)(x)
    expect(out.requires_grad, what=f"torch.{op}(x) requires grad", expected=True, observed=out.requires_grad)
    out.sum().backward()
    _same(x.grad, torch.zeros_like(x), f"gradient of torch.{op}", _repro(spec, f"torch.{op}(x)"), spec.dtype)


# ------------------------------------------------------------------------------ ties
@st.composite
def tied(draw, dtypes=FLOAT_DTYPES):
    """A 2-d tensor in which every row's maximum is attained at generated positions, all rows at the same value."""
    rows = draw(st.integers(1, 3), label="rows")
    cols = draw(st.integers(2, 5), label="columns")
    spec = draw(tensors(shape=(rows, cols), dtypes=dtypes, layouts=("contiguous",)), label="tensor")
    top = draw(st.sampled_from([-1.0, 0.0, 0.5, 2.0]), label="tied value")
    values = [min(v, top - 0.25) for v in spec.values]
    for r in range(rows):
        for c in draw(st.sets(st.integers(0, cols - 1), min_size=1), label=f"ties in row {r}"):
            values[r * cols + c] = top
    sense = draw(st.sampled_from(["max", "min"]), label="max or min")
    if sense == "min":
        values = [-v for v in values]
    return replace(spec, values=tuple(values)), sense


REDUCTIONS = {
    "x.{0}()": lambda t, sense: getattr(t, sense)(),
    "x.a{0}()": lambda t, sense: getattr(t, "a" + sense)(),
    "x.a{0}(dim=1)": lambda t, sense: getattr(t, "a" + sense)(dim=1),
}


@rule(
    "kinks.reductions-split-ties-evenly",
    section=Section.BEYOND,
    docs="kinks-ties",
    given=dict(case=tied(), op=st.sampled_from(sorted(REDUCTIONS))),
    references=("test_autograd.py::TestAutogradDeviceType::test_min_max_median_backprops_to_all_values",),
)
def reductions_split_ties_evenly(case, op):
    """max(), min(), amax() and amin(), over all elements or along a dim, split the gradient evenly among the k tied extreme elements (1/k each), as checked on torch 2.13.0."""
    spec, sense = case
    code = op.format(sense)
    grad, x = _grad(spec, lambda t: REDUCTIONS[op](t, sense))
    along = "dim" in op
    extreme = getattr(x, "a" + sense)(dim=1, keepdim=True) if along else getattr(x, sense)()
    hits = (x == extreme).double()
    share = hits / hits.sum(dim=1, keepdim=True) if along else hits / hits.sum()
    _same(grad, share, f"gradient of {code}", _repro(spec, code), spec.dtype)


#: One row with its maximum tied at two positions (and its minimum tied at two others).
TIED_ROW = (TensorSpec((1, 4), torch.float64, "contiguous", (2.0, -1.0, 2.0, -1.0)), "max")


@rule(
    "kinks.max-along-dim-picks-one-index",
    section=Section.BEYOND,
    docs="kinks-ties",
    given=dict(case=tied()),
    examples=(dict(case=TIED_ROW),),
    references=("docs: Autograd mechanics > Gradients for non-differentiable functions",),
)
def max_along_dim_picks_one_index(case):
    """max(dim) and min(dim) send each row's whole gradient to the one index they return even when the extreme value is tied, as checked on torch 2.13.0, which departs from the note's minimum-norm subgradient convention (1/k to each of k tied entries) that max() and amax(dim) follow."""
    spec, sense = case
    x = spec.make()
    values, indices = getattr(x, sense)(dim=1)
    values.sum().backward()
    expected = torch.zeros_like(x).scatter_(1, indices.unsqueeze(1), 1.0)
    code = f"x.{sense}(dim=1).values"
    repro = _repro(spec, code)
    _same(x.grad, expected, f"gradient of {code} against a one-hot of its indices", repro, spec.dtype)
    tied_value = x.detach().gather(1, indices.unsqueeze(1)).squeeze(1)
    expect(
        torch.equal(tied_value, values.detach()),
        what="the returned index holds the extreme value",
        expected=values,
        observed=tied_value,
    )
    hits = (x.detach() == values.detach().unsqueeze(1)).double()
    record("gradient of x.max(dim=1).values on [[2, -1, 2, -1]]", [round(v, 6) for v in x.grad.flatten().tolist()])
    record(
        "the note's minimum-norm convention there",
        [round(v, 6) for v in (hits / hits.sum(1, keepdim=True)).flatten().tolist()],
    )


@st.composite
def tied_pairs(draw):
    a = draw(tensors(dtypes=FLOAT_DTYPES, layouts=("contiguous",), zero_size=False, min_ndim=1), label="a")
    b = draw(tensors(shape=a.shape, dtypes=(a.dtype,), layouts=("contiguous",)), label="b")
    ties = draw(st.sets(st.integers(0, len(a.values) - 1), min_size=1), label="tie positions")
    values = tuple(a.values[i] if i in ties else v for i, v in enumerate(b.values))
    return a, replace(b, values=values)


@rule(
    "kinks.maximum-and-minimum-halve-ties",
    section=Section.BEYOND,
    docs="kinks-ties",
    given=dict(pair=tied_pairs(), op=st.sampled_from(["maximum", "minimum"])),
    references=("docs: Autograd mechanics > Gradients for non-differentiable functions",),
)
def maximum_and_minimum_halve_ties(pair, op):
    """torch.maximum(a, b) and torch.minimum(a, b) give each input half the gradient where a == b, as checked on torch 2.13.0."""
    a_spec, b_spec = pair
    a, b = a_spec.make(), b_spec.make()
    getattr(torch, op)(a, b).sum().backward()
    wins = (a > b) if op == "maximum" else (a < b)
    expected_a = torch.where(a == b, 0.5, wins.double())
    repro = f"a = {a_spec.expression()}\nb = {b_spec.expression()}\ntorch.{op}(a, b).sum().backward()\nprint(a.grad)"
    _same(a.grad, expected_a, f"gradient of torch.{op} wrt a", repro, a_spec.dtype)
    _same(b.grad, torch.where(a == b, 0.5, 1.0 - wins.double()), f"gradient of torch.{op} wrt b", repro, a_spec.dtype)


# ------------------------------------------------------------------------------ NaN traps
MASKS = {
    "index": ("(1 / x)[x != 0]", lambda t: (1 / t)[t != 0]),
    "where": ("torch.where(x != 0, 1 / x, 0.0)", lambda t: torch.where(t != 0, 1 / t, 0.0)),
    "multiply": ("(1 / x) * (x != 0)", lambda t: (1 / t) * (t != 0)),
}


@rule(
    "kinks.masking-after-division-keeps-nan",
    section=Section.BEYOND,
    docs="kinks-nan-masking",
    given=dict(spec=kinked(), how=st.sampled_from(["index", "where", "multiply"])),
    references=(
        "docs: Autograd mechanics > Gradients for non-differentiable functions > Division by Zero in Autograd",
    ),
)
def masking_after_division_keeps_nan(spec, how):
    """Masking away 1/x at x == 0 after computing it (by indexing, torch.where or multiplying by 0) still leaves NaN in the gradient at those entries: 0 times the infinite local derivative, as checked on torch 2.13.0."""
    code, function = MASKS[how]
    grad, x = _grad(spec, function)
    expected = torch.where(x != 0, -1 / x**2, math.nan)
    _same(grad, expected, f"gradient of {code}", _repro(spec, code), spec.dtype)


@rule(
    "kinks.where-does-not-guard-its-unused-branch",
    section=Section.BEYOND,
    docs="kinks-nan-where",
    given=dict(spec=kinked(points=(0.0, -1.0))),
)
def where_does_not_guard_its_unused_branch(spec):
    """torch.where(x > 0, sqrt(x), 0) has a NaN gradient wherever x <= 0, although that branch's value was not selected, as checked on torch 2.13.0."""
    code = "torch.where(x > 0, torch.sqrt(x), 0.0)"
    grad, x = _grad(spec, lambda t: torch.where(t > 0, torch.sqrt(t), 0.0))
    with torch.no_grad():
        expected = torch.where(x > 0, 0.5 / torch.sqrt(x.clamp(min=1e-300)), math.nan)
    _same(grad, expected, f"gradient of {code}", _repro(spec, code), spec.dtype)


@rule(
    "kinks.double-where-is-safe",
    section=Section.BEYOND,
    docs="kinks-nan-where",
    given=dict(spec=kinked(points=(0.0, -1.0))),
)
def double_where_is_safe(spec):
    """Making the unused branch's input safe as well, torch.where(x > 0, sqrt(torch.where(x > 0, x, 1)), 0), gives gradient 0 where x <= 0 and the true derivative elsewhere, as checked on torch 2.13.0."""
    code = "torch.where(x > 0, torch.sqrt(torch.where(x > 0, x, 1.0)), 0.0)"
    grad, x = _grad(spec, lambda t: torch.where(t > 0, torch.sqrt(torch.where(t > 0, t, 1.0)), 0.0))
    with torch.no_grad():
        expected = torch.where(x > 0, 0.5 / torch.sqrt(x.clamp(min=1e-300)), 0.0)
    expect(
        not torch.isnan(grad).any(),
        what="no NaN in the gradient of the double where",
        expected="no NaN",
        observed=grad,
        repro=_repro(spec, code),
    )
    _same(grad, expected, f"gradient of {code}", _repro(spec, code), spec.dtype)
