"""The table: differentiable ops of ``torch``, ``torch.linalg``, ``torch.special``, ``torch.fft``,
``torch.masked`` and ``torch.nn.functional`` as data.

Each entry is the code that calls the op (a Python expression over its differentiable arguments
``a``, ``b``, ... which are float64 tensors; everything non-differentiable is written into the
code), the domain each argument is drawn from at generic points, and the op's special points as
fixed canonical inputs.  Helper constructors keep an entry to a line or two:

- ``U(*shape, lo=, hi=)``: an argument's shape and domain;
- ``at(x, kind, pieces=True)``: a one-element special point of a pointwise op (``pieces`` makes it
  a kink checked against the minimum-norm subgradient convention);
- ``P(name, kind, ...)``: any other special point.
"""

from __future__ import annotations

from dataclasses import replace

from specs.atlas.model import MIN_NORM, POINT_KINDS, Arg, Entry, Point
from specs.engine.expect import Tolerance

#: float32 results (a cast in the op) limit what finite differences can resolve.
SINGLE = Tolerance(2e-5, 2e-5, "the op computes in float32: rounding 6e-8 relative, over a step of 1e-2")
#: float16/bfloat16 results: three significant digits at best.
HALF = Tolerance(2e-2, 2e-2, "the op computes in float16 or bfloat16: rounding 1e-3 relative, over a step of 1e-1")


def U(*shape: int, lo: float = -2.0, hi: float = 2.0):
    return (tuple(shape), lo, hi)


def P(name: str, kind: str, *, pieces=(), departs: str | None = None, shapes=None, **values) -> Point:
    return Point(
        name,
        kind,
        {k: tuple(v) for k, v in values.items()},
        dict(shapes or {}),
        MIN_NORM if pieces else None,
        tuple(pieces),
        departs,
    )


def at(x: float, kind: str, pieces: bool = False, departs: str | None = None, arg: str = "a") -> Point:
    """A one-element input ``x`` (``pieces``: a kink whose two sides are x-h and x+h)."""
    sides = ((arg, 0, 1), (arg, 0, -1)) if pieces else ()
    return P(f"{kind} at {x:g}", kind, pieces=sides, departs=departs, shapes={arg: (1,)}, **{arg: (x,)})


def empty(*shape: int, arg: str = "a") -> Point:
    return P(f"zero-size {shape}", "zero-size", shapes={arg: shape}, **{arg: ()})


_FLAGS = ("step", "tolerance", "forward", "order", "deterministic", "smooth", "known")


def E(code: str, *points: Point, name: str | None = None, **kwargs) -> Entry:
    flags = {k: kwargs.pop(k) for k in _FLAGS if k in kwargs}
    args = tuple(Arg(n, shape, lo, hi) for n, (shape, lo, hi) in kwargs.items())
    return Entry(name or code, code, args, tuple(points), **flags)


def _unary(template: str, name: str, lo: float = -2.0, hi: float = 2.0, points=(), **flags) -> Entry:
    return E(template.format(name), *points, a=U(5, lo=lo, hi=hi), **flags)


ZERO_KINK = (at(0.0, "kink", pieces=True),)
STEPS = dict(smooth=False)

# ------------------------------------------------------------------ pointwise unary
UNARY = [
    ("abs", -2, 2, (*ZERO_KINK, at(float("nan"), "nan"))),
    ("acos", -0.9, 0.9, (at(1.0, "domain-boundary"), at(-1.0, "domain-boundary"))),
    ("acosh", 1.1, 3, (at(1.0, "domain-boundary"),)),
    ("asin", -0.9, 0.9, (at(1.0, "domain-boundary"),)),
    ("asinh", -2, 2, ()),
    ("atan", -2, 2, ()),
    ("atanh", -0.9, 0.9, (at(1.0, "domain-boundary"),)),
    ("ceil", -2, 2, (at(1.0, "jump"),)),
    ("cos", -2, 2, ()),
    ("cosh", -2, 2, ()),
    ("deg2rad", -2, 2, ()),
    ("digamma", 0.2, 3, (at(0.0, "pole"),)),
    ("erf", -2, 2, ()),
    ("erfc", -2, 2, ()),
    ("erfinv", -0.9, 0.9, (at(1.0, "domain-boundary"),)),
    (
        "exp",
        -2,
        2,
        (at(float("nan"), "nan"), at(float("inf"), "domain-boundary"), at(float("-inf"), "domain-boundary")),
    ),
    ("exp2", -2, 2, ()),
    ("expm1", -2, 2, ()),
    ("fix", -2, 2, (at(1.0, "jump"),)),
    ("floor", -2, 2, (at(1.0, "jump"),)),
    ("frac", -2, 2, (at(1.0, "jump"),)),
    ("i0", -2, 2, ()),
    ("lgamma", 0.2, 3, (at(0.0, "pole"), at(-1.0, "pole"))),
    ("log", 0.2, 3, (at(0.0, "domain-boundary"), at(-1.0, "domain-boundary"))),
    ("log10", 0.2, 3, (at(0.0, "domain-boundary"),)),
    ("log1p", -0.8, 2, (at(-1.0, "domain-boundary"),)),
    ("log2", 0.2, 3, (at(0.0, "domain-boundary"),)),
    ("logit", 0.05, 0.95, (at(0.0, "domain-boundary"), at(1.0, "domain-boundary"))),
    ("nan_to_num", -2, 2, (at(float("nan"), "nan"), at(float("inf"), "nan"))),
    ("neg", -2, 2, ()),
    ("negative", -2, 2, ()),
    ("positive", -2, 2, ()),
    ("rad2deg", -2, 2, ()),
    ("reciprocal", 0.3, 2, (at(0.0, "zero-denominator"),)),
    ("round", -2, 2, (at(0.5, "jump"),)),
    ("rsqrt", 0.2, 3, (at(0.0, "root-zero"),)),
    ("sgn", -2, 2, (at(0.0, "jump"),)),
    ("sigmoid", -2, 2, (at(float("nan"), "nan"), at(float("inf"), "domain-boundary"))),
    ("sign", -2, 2, (at(0.0, "jump"),)),
    ("sin", -2, 2, ()),
    ("sinc", -2, 2, (at(0.0, "zero-denominator"),)),
    ("sinh", -2, 2, ()),
    ("sqrt", 0.2, 3, (at(0.0, "root-zero"), at(-1.0, "domain-boundary"))),
    ("square", -2, 2, ()),
    ("tan", -1.2, 1.2, ()),
    ("tanh", -2, 2, (at(float("inf"), "domain-boundary"),)),
    ("trunc", -2, 2, (at(1.0, "jump"),)),
    ("angle", -2, 2, (at(0.0, "jump"),)),
    ("conj_physical", -2, 2, ()),
    ("conj", -2, 2, ()),
    ("resolve_conj", -2, 2, ()),
    ("resolve_neg", -2, 2, ()),
    ("arccos", -0.9, 0.9, ()),
    ("arcsinh", -2, 2, ()),
    ("clone", -2, 2, ()),
    ("relu", -2, 2, (*ZERO_KINK, at(float("nan"), "nan"))),
    ("selu", -2, 2, ()),
    ("celu", -2, 2, ()),
]
_NOT_SMOOTH = {"abs", "ceil", "fix", "floor", "frac", "round", "sgn", "sign", "trunc", "angle", "relu"}

SPECIAL = [
    ("entr", 0.1, 2, (at(0.0, "domain-boundary"), at(-1.0, "domain-boundary"))),
    ("erfcx", -1, 2, ()),
    ("i0e", -2, 2, ()),
    ("i1", -2, 2, ()),
    ("i1e", -2, 2, ()),
    ("log_ndtr", -2, 2, ()),
    ("ndtr", -2, 2, ()),
    ("ndtri", 0.05, 0.95, (at(0.0, "domain-boundary"),)),
    ("expit", -2, 2, ()),
    ("logit", 0.05, 0.95, ()),
    ("sinc", -2, 2, (at(0.0, "zero-denominator"),)),
    ("expm1", -2, 2, ()),
    ("exp2", -2, 2, ()),
    ("gammaln", 0.2, 3, ()),
    ("psi", 0.2, 3, ()),
    ("digamma", 0.2, 3, ()),
    ("erf", -2, 2, ()),
    ("erfc", -2, 2, ()),
    ("erfinv", -0.9, 0.9, ()),
    ("i0", -2, 2, ()),
    ("round", -2, 2, ()),
    ("log1p", -0.8, 2, ()),
]

ACTIVATIONS = [
    ("F.relu(a)", ZERO_KINK),
    ("F.relu6(a)", (at(0.0, "kink", True), at(6.0, "kink", True))),
    ("F.elu(a)", (at(0.0, "kink"),)),
    ("F.elu(a, alpha=0.5)", (at(0.0, "kink", True),)),
    ("F.selu(a)", (at(0.0, "kink"),)),
    ("F.celu(a, alpha=0.5)", (at(0.0, "kink", True),)),
    ("F.gelu(a)", ()),
    ("F.gelu(a, approximate='tanh')", ()),
    ("F.silu(a)", ()),
    ("F.mish(a)", ()),
    ("F.softplus(a)", ()),
    ("F.softplus(a, beta=2.0, threshold=1.0)", (at(0.5, "bound"),)),
    ("F.softsign(a)", ()),
    ("F.softshrink(a, 0.5)", (at(0.5, "kink", True), at(-0.5, "kink", True))),
    ("F.hardshrink(a, 0.5)", (at(0.5, "jump"), at(-0.5, "jump"))),
    ("F.hardtanh(a)", (at(1.0, "kink", True), at(-1.0, "kink", True))),
    ("F.hardsigmoid(a)", (at(3.0, "kink", True), at(-3.0, "kink", True))),
    ("F.hardswish(a)", (at(3.0, "kink"), at(-3.0, "kink"))),
    ("F.leaky_relu(a, 0.1)", (at(0.0, "kink", True),)),
    ("F.logsigmoid(a)", ()),
    ("F.tanhshrink(a)", ()),
    ("F.threshold(a, 0.5, -1.0)", (at(0.5, "jump"),)),
    ("F.rrelu(a, training=False)", (at(0.0, "kink", True),)),
    ("F.sigmoid(a)", ()),
    ("F.tanh(a)", ()),
    (
        "torch.clamp(a, -0.5, 1.0)",
        (
            at(
                -0.5,
                "bound",
                True,
                departs="clamp passes the gradient (1) at its bounds; the minimum-norm subgradient there is 0",
            ),
            at(
                1.0,
                "bound",
                True,
                departs="clamp passes the gradient (1) at its bounds; the minimum-norm subgradient there is 0",
            ),
        ),
    ),
    (
        "torch.clamp_min(a, 0.0)",
        (
            at(
                0.0,
                "bound",
                True,
                departs="clamp_min passes the gradient (1) at its bound; the minimum-norm subgradient there is 0",
            ),
        ),
    ),
    (
        "torch.clamp_max(a, 0.0)",
        (
            at(
                0.0,
                "bound",
                True,
                departs="clamp_max passes the gradient (1) at its bound; the minimum-norm subgradient there is 0",
            ),
        ),
    ),
    ("a.clip(-0.5, 1.0)", (at(1.0, "bound"),)),
    ("torch.polygamma(1, a)", ()),
    ("torch.polygamma(2, a)", ()),
    ("torch.special.polygamma(1, a)", ()),
    ("torch.mvlgamma(a, 2)", ()),
    ("torch.special.multigammaln(a, 3)", ()),
    ("torch.frexp(a).mantissa", ()),
    ("torch.ldexp(a, torch.tensor([1, 2, 0, -1, 3]))", ()),
    ("torch.pow(a, 3)", (at(0.0, "root-zero"),)),
    ("torch.pow(a, 0.5)", (at(0.0, "root-zero"),)),
    ("torch.float_power(a, 2)", ()),
    ("a ** -2", (at(0.0, "zero-denominator"),)),
    ("2.0 ** a", ()),
    ("torch.fill(a, 2.0)", ()),
    ("a.clone().zero_()", ()),
    ("torch.rsub(a, 1.5)", ()),
    ("1.5 - a", ()),
    ("2.0 + a", ()),
    ("2.0 * a", ()),
    ("2.0 / a", (at(0.0, "zero-denominator"),)),
    ("3.0 % a", ()),
    ("a.float()", ()),
    ("a.double()", ()),
    ("a.to(torch.float32)", ()),
    ("a.half()", ()),
    ("a.bfloat16()", ()),
    ("torch.view_as_real(a.cdouble())", ()),
    ("torch.view_as_real(a.cfloat())", ()),
    ("torch.view_as_real(a.chalf())", ()),
    ("torch.nextafter(a, torch.full_like(a, 3.0))", ()),
    ("torch.bernoulli(a, generator=torch.Generator().manual_seed(0))", ()),
]
_ACTIVATION_DOMAINS = {
    "torch.polygamma(1, a)": (0.2, 3),
    "torch.polygamma(2, a)": (0.3, 3),
    "torch.special.polygamma(1, a)": (0.2, 3),
    "torch.mvlgamma(a, 2)": (1.0, 3),
    "torch.special.multigammaln(a, 3)": (1.5, 3),
    "torch.pow(a, 0.5)": (0.2, 3),
    "a ** -2": (0.4, 2),
    "2.0 / a": (0.4, 2),
    "3.0 % a": (0.9, 1.4),
    "F.hardsigmoid(a)": (-4, 4),
    "F.hardswish(a)": (-4, 4),
    "F.relu6(a)": (-1, 7),
    "torch.bernoulli(a, generator=torch.Generator().manual_seed(0))": (0.05, 0.95),
}
_LOW = {
    "a.float()": (SINGLE, 1e-2),
    "a.to(torch.float32)": (SINGLE, 1e-2),
    "torch.view_as_real(a.cfloat())": (SINGLE, 1e-2),
    "a.half()": (HALF, 1e-1),
    "a.bfloat16()": (HALF, 1e-1),
    "torch.view_as_real(a.chalf())": (HALF, 1e-1),
}
_ACTIVATION_STEPS = {
    "torch.fill(a, 2.0)",
    "a.clone().zero_()",
    "3.0 % a",
    "F.hardshrink(a, 0.5)",
    "F.threshold(a, 0.5, -1.0)",
    "torch.nextafter(a, torch.full_like(a, 3.0))",
    "torch.bernoulli(a, generator=torch.Generator().manual_seed(0))",
    "torch.clamp(a, -0.5, 1.0)",
    "torch.clamp_min(a, 0.0)",
    "torch.clamp_max(a, 0.0)",
    "a.clip(-0.5, 1.0)",
    "F.relu(a)",
    "F.relu6(a)",
    "F.softshrink(a, 0.5)",
    "F.hardtanh(a)",
    "F.hardsigmoid(a)",
    "F.leaky_relu(a, 0.1)",
    "F.rrelu(a, training=False)",
    "F.hardswish(a)",
    "torch.frexp(a).mantissa",
    "torch.ldexp(a, torch.tensor([1, 2, 0, -1, 3]))",
}


def _activation(code, points) -> Entry:
    lo, hi = _ACTIVATION_DOMAINS.get(code, (-2.0, 2.0))
    tolerance, step = _LOW.get(code, (None, 1e-6))
    flags = dict(STEPS) if code in _ACTIVATION_STEPS else {}
    return E(code, *points, a=U(5, lo=lo, hi=hi), tolerance=tolerance, step=step, **flags)


# ------------------------------------------------------------------ pointwise binary
TIE = P("tie a == b", "tie", a=(0.5,), b=(0.5,), shapes=dict(a=(1,), b=(1,)), pieces=(("a", 0, 1), ("b", 0, 1)))
TIE_MIN = P("tie a == b", "tie", a=(0.5,), b=(0.5,), shapes=dict(a=(1,), b=(1,)), pieces=(("a", 0, -1), ("b", 0, -1)))
F_TIE = "fmax/fmin give a tie's whole gradient to the first argument; maximum/minimum split it as the convention does"
NAN_ARG = P("a is NaN", "nan", a=(float("nan"),), b=(0.5,), shapes=dict(a=(1,), b=(1,)))
BOTH_ZERO = P("a == b == 0", "zero-denominator", a=(0.0,), b=(0.0,), shapes=dict(a=(1,), b=(1,)))
B_ZERO = P("b == 0", "zero-denominator", a=(1.0,), b=(0.0,), shapes=dict(a=(1,), b=(1,)))
A_ZERO = P("a == 0", "domain-boundary", a=(0.0,), b=(0.5,), shapes=dict(a=(1,), b=(1,)))

BINARY = [
    ("torch.add(a, b)", (), {}),
    ("torch.add(a, b, alpha=2.0)", (), {}),
    ("torch.sub(a, b)", (), {}),
    ("torch.mul(a, b)", (), {}),
    ("torch.div(a, b)", (B_ZERO,), dict(b=(0.5, 2))),
    ("torch.div(a, b, rounding_mode='floor')", (), dict(b=(0.5, 2))),
    ("torch.true_divide(a, b)", (), dict(b=(0.5, 2))),
    ("torch.atan2(a, b)", (BOTH_ZERO,), {}),
    ("torch.pow(a, b)", (A_ZERO, BOTH_ZERO), dict(a=(0.3, 2))),
    ("torch.float_power(a, b)", (A_ZERO,), dict(a=(0.3, 2))),
    ("torch.fmod(a, b)", (), dict(b=(0.7, 1.3))),
    ("torch.remainder(a, b)", (), dict(b=(0.7, 1.3))),
    ("torch.copysign(a, b)", (P("b == 0", "jump", a=(1.0,), b=(0.0,), shapes=dict(a=(1,), b=(1,))),), {}),
    ("torch.hypot(a, b)", (BOTH_ZERO,), {}),
    ("torch.logaddexp(a, b)", (), {}),
    ("torch.logaddexp2(a, b)", (), {}),
    ("torch.maximum(a, b)", (TIE, NAN_ARG), {}),
    ("torch.minimum(a, b)", (TIE_MIN,), {}),
    ("torch.max(a, b)", (TIE,), {}),
    ("torch.min(a, b)", (TIE_MIN,), {}),
    ("torch.fmax(a, b)", (replace(TIE, departs=F_TIE), NAN_ARG), {}),
    ("torch.fmin(a, b)", (replace(TIE_MIN, departs=F_TIE),), {}),
    (
        "torch.xlogy(a, b)",
        (P("a == 0, b == 0", "domain-boundary", a=(0.0,), b=(0.0,), shapes=dict(a=(1,), b=(1,))),),
        dict(b=(0.2, 2)),
    ),
    ("torch.special.xlogy(a, b)", (), dict(b=(0.2, 2))),
    (
        "torch.special.xlog1py(a, b)",
        (P("a == 0, b == -1", "domain-boundary", a=(0.0,), b=(-1.0,), shapes=dict(a=(1,), b=(1,))),),
        dict(b=(-0.5, 2)),
    ),
    ("torch.special.zeta(a, b)", (), dict(a=(1.5, 3), b=(0.5, 2))),
    ("torch.lerp(a, b, 0.3)", (), {}),
    ("torch.dist(a, b)", (P("a == b", "kink", a=(0.5, 1.0), b=(0.5, 1.0), shapes=dict(a=(2,), b=(2,))),), {}),
    ("torch.clamp(a, min=b)", (P("a == min", "bound", a=(0.5,), b=(0.5,), shapes=dict(a=(1,), b=(1,))),), {}),
    ("torch.clamp(a, max=b)", (P("a == max", "bound", a=(0.5,), b=(0.5,), shapes=dict(a=(1,), b=(1,))),), {}),
    ("a.__radd__(b)", (), {}),
    ("a.__rsub__(b)", (), {}),
    ("a.__rmul__(b)", (), {}),
    ("a.__rdiv__(b)", (), dict(a=(0.5, 2))),
    ("a.__rpow__(b)", (), dict(b=(0.5, 2))),
    ("a.__rmod__(b)", (), dict(a=(0.7, 1.3))),
    ("torch.where(torch.tensor([True, False, True, False, True]), a, b)", (), {}),
    ("torch.complex(a, b).abs()", (P("a == b == 0", "kink", a=(0.0,), b=(0.0,), shapes=dict(a=(1,), b=(1,))),), {}),
    ("torch.view_as_real(torch.complex(a, b))", (), {}),
    ("torch.view_as_real(torch.polar(a, b))", (), dict(a=(0.3, 2))),
    ("torch.real(torch.complex(a, b) * torch.complex(b, a))", (), {}),
    ("torch.imag(torch.complex(a, b) * torch.complex(b, a))", (), {}),
    ("torch.angle(torch.complex(a, b))", (BOTH_ZERO,), dict(a=(0.3, 2))),
    ("torch.view_as_real(torch.sgn(torch.complex(a, b)))", (BOTH_ZERO,), dict(a=(0.3, 2))),
    ("torch.view_as_real(torch.conj_physical(torch.complex(a, b)))", (), {}),
    ("torch.view_as_real(torch.complex(a, b).conj().resolve_conj())", (), {}),
]
_BINARY_STEPS = {
    "torch.div(a, b, rounding_mode='floor')",
    "torch.fmod(a, b)",
    "torch.remainder(a, b)",
    "torch.copysign(a, b)",
    "torch.maximum(a, b)",
    "torch.minimum(a, b)",
    "torch.max(a, b)",
    "torch.min(a, b)",
    "torch.fmax(a, b)",
    "torch.fmin(a, b)",
    "torch.clamp(a, min=b)",
    "torch.clamp(a, max=b)",
    "a.__rmod__(b)",
    "torch.where(torch.tensor([True, False, True, False, True]), a, b)",
}


def _binary(code, points, domains) -> Entry:
    args = {n: U(5, lo=domains.get(n, (-2, 2))[0], hi=domains.get(n, (-2, 2))[1]) for n in "ab"}
    return E(code, *points, **args, **(STEPS if code in _BINARY_STEPS else {}))


TERNARY = [
    E("torch.addcmul(a, b, c, value=0.5)", a=U(4), b=U(4), c=U(4)),
    E("torch.addcdiv(a, b, c, value=0.5)", a=U(4), b=U(4), c=U(4, lo=0.5, hi=2)),
    E("torch.lerp(a, b, c)", a=U(4), b=U(4), c=U(4, lo=0, hi=1)),
    E(
        "torch.clamp(a, b, c)",
        P("a on both bounds", "bound", a=(0.0, 1.0), b=(0.0, 0.0), c=(1.0, 1.0), shapes=dict(a=(2,), b=(2,), c=(2,))),
        a=U(4),
        b=U(4, lo=-2, hi=-1),
        c=U(4, lo=1, hi=2),
        smooth=False,
    ),
    E("torch.where(a > b, a, c)", a=U(4), b=U(4), c=U(4), smooth=False),
    E("a.masked_fill(torch.tensor([True, False, False, True]), 2.0)", a=U(4), smooth=False),
]

# ------------------------------------------------------------------ reductions and scans
TIES = P(
    "tie between two elements", "tie", a=(1.0, 1.0, 0.25, -0.5), shapes=dict(a=(4,)), pieces=(("a", 0, 1), ("a", 1, 1))
)
TIES_MIN = P(
    "tie between two elements",
    "tie",
    a=(-1.0, -1.0, 0.25, 0.5),
    shapes=dict(a=(4,)),
    pieces=(("a", 0, -1), ("a", 1, -1)),
)
ONE_ONE_ONE = P("all three elements tied", "tie", a=(0.5, 0.5, 0.5), shapes=dict(a=(3,)))
CUMULATIVE_TIE = (
    "cummax/cummin route a tie to the later element (it takes over the running extreme); "
    "the minimum-norm subgradient splits it"
)
ROW_TIE = "max along a dim picks one index of a tie; the minimum-norm subgradient splits it"
ZEROS = P("one zero element", "root-zero", a=(0.0, 1.5, -0.5, 2.0), shapes=dict(a=(4,)))
TWO_ZEROS = P("two zero elements", "root-zero", a=(0.0, 1.5, 0.0, 2.0), shapes=dict(a=(4,)))
NAN_IN = P("a NaN element", "nan", a=(float("nan"), 1.5, -0.5, 2.0), shapes=dict(a=(4,)))

REDUCTIONS = [
    E("torch.sum(a)", empty(0), a=U(4)),
    E("torch.sum(a, dim=1)", empty(0, 3), a=U(2, 3)),
    E("torch.nansum(a)", NAN_IN, a=U(4)),
    E("torch.mean(a)", empty(0), a=U(4)),
    E("torch.mean(a, dim=0)", a=U(2, 3)),
    E("torch.nanmean(a)", NAN_IN, a=U(4)),
    E("torch.prod(a)", ZEROS, TWO_ZEROS, empty(0), a=U(4)),
    E("torch.prod(a, 1)", a=U(2, 3)),
    E("torch.amax(a)", TIES, NAN_IN, a=U(4), smooth=False),
    E("torch.amin(a)", TIES_MIN, a=U(4), smooth=False),
    E("torch.amax(a, dim=1)", a=U(2, 3), smooth=False),
    E("torch.max(a)", TIES, ONE_ONE_ONE, NAN_IN, a=U(4), smooth=False),
    E("torch.min(a)", TIES_MIN, a=U(4), smooth=False),
    E(
        "torch.max(a, dim=0)",
        P(
            "tie between two elements",
            "tie",
            a=(1.0, 1.0, 0.25, -0.5),
            shapes=dict(a=(4,)),
            pieces=(("a", 0, 1), ("a", 1, 1)),
            departs=ROW_TIE,
        ),
        a=U(4),
        smooth=False,
    ),
    E(
        "torch.min(a, dim=0)",
        P(
            "tie between two elements",
            "tie",
            a=(-1.0, -1.0, 0.25, 0.5),
            shapes=dict(a=(4,)),
            pieces=(("a", 0, -1), ("a", 1, -1)),
            departs=ROW_TIE,
        ),
        a=U(4),
        smooth=False,
    ),
    E("torch.aminmax(a)", TIES, a=U(4), smooth=False),
    E("torch.median(a)", ONE_ONE_ONE, NAN_IN, a=U(5), smooth=False),
    E("torch.median(a, 0)", ONE_ONE_ONE, a=U(5), smooth=False),
    E("torch.nanmedian(a)", NAN_IN, a=U(5), smooth=False),
    E("torch.nanmedian(a, 0)", a=U(5), smooth=False),
    E("torch.mode(a, 0)", ONE_ONE_ONE, a=U(5), smooth=False),
    E("torch.kthvalue(a, 2)", ONE_ONE_ONE, a=U(5), smooth=False),
    E("torch.topk(a, 2)", TIES, a=U(5), smooth=False),
    E("torch.sort(a)", TIES, NAN_IN, empty(0), a=U(5), smooth=False),
    E("torch.sort(a, stable=True, descending=True)", a=U(5), smooth=False),
    E("torch.msort(a)", a=U(5, 2), smooth=False),
    E("torch.quantile(a, 0.3)", ONE_ONE_ONE, a=U(5), smooth=False),
    E("torch.nanquantile(a, 0.3)", NAN_IN, a=U(5), smooth=False),
    E("torch.std(a)", ONE_ONE_ONE, P("one element", "degenerate", a=(1.0,), shapes=dict(a=(1,))), empty(0), a=U(5)),
    E("torch.var(a)", ONE_ONE_ONE, a=U(5)),
    E("torch.var(a, dim=1, correction=0)", a=U(2, 3)),
    E("torch.std_mean(a)", ONE_ONE_ONE, a=U(5)),
    E("torch.var_mean(a, 0)", a=U(3, 2)),
    E(
        "torch.logsumexp(a, 1)",
        P("a row of -inf", "domain-boundary", a=(float("-inf"),) * 3 + (0.0, 1.0, 2.0)),
        P("a row with +inf", "domain-boundary", a=(float("inf"), 0.0, 1.0, 0.0, 1.0, 2.0)),
        empty(2, 0),
        a=U(2, 3),
    ),
    E("torch.special.logsumexp(a, 0)", a=U(4)),
    E("torch.cumsum(a, 0)", empty(0), NAN_IN, a=U(5)),
    E("torch.cumprod(a, 0)", ZEROS, TWO_ZEROS, a=U(4)),
    E("torch.cummax(a, 0)", replace(TIES, departs=CUMULATIVE_TIE), a=U(5), smooth=False),
    E("torch.cummin(a, 0)", replace(TIES_MIN, departs=CUMULATIVE_TIE), a=U(5), smooth=False),
    E("torch.logcumsumexp(a, 0)", a=U(5)),
    E("torch.norm(a)", P("zero vector", "kink", a=(0.0, 0.0, 0.0), shapes=dict(a=(3,))), a=U(4)),
    E(
        "torch.norm(a, p=1)",
        P("zero vector", "kink", a=(0.0, 0.0), shapes=dict(a=(2,)), pieces=(("a", 0, 1), ("a", 0, -1))),
        a=U(4),
        smooth=False,
    ),
    E("torch.linalg.vector_norm(a)", P("zero vector", "kink", a=(0.0, 0.0, 0.0), shapes=dict(a=(3,))), a=U(4)),
    E("torch.linalg.vector_norm(a, 1)", a=U(4), smooth=False),
    E("torch.linalg.vector_norm(a, float('inf'))", TIES, a=U(4), smooth=False),
    E("torch.linalg.vector_norm(a, 3)", P("zero vector", "kink", a=(0.0, 0.0, 0.0), shapes=dict(a=(3,))), a=U(4)),
    E("torch.linalg.vector_norm(a, 0.5)", ZEROS, a=U(4, lo=0.2, hi=2)),
    E("torch.linalg.norm(a)", P("zero vector", "kink", a=(0.0, 0.0, 0.0), shapes=dict(a=(3,))), a=U(4)),
    E("torch.renorm(a, 2, 0, 1.0)", a=U(3, 2)),
    E(
        "torch.trace(a)",
        P("non-square", "non-square", a=(1.0, 2.0, 3.0, 4.0, 5.0, 6.0), shapes=dict(a=(2, 3))),
        a=U(3, 3),
    ),
    E("torch.diff(a)", a=U(5)),
    E("torch.diff(a, n=2, prepend=torch.zeros(1, dtype=torch.float64))", a=U(5)),
    E("torch.gradient(a)", a=U(5)),
    E("torch.gradient(a, spacing=2.0, dim=1)", a=U(3, 3)),
    E("torch.trapezoid(a)", a=U(5)),
    E("torch.trapz(a, dx=0.5)", a=U(5)),
    E("torch.trapezoid(a, b)", a=U(4), b=U(4)),
    E("torch.cumulative_trapezoid(a)", a=U(5)),
    E("torch.cov(a)", a=U(2, 4)),
    E("torch.corrcoef(a)", a=U(2, 4)),
    E("torch.logdet(a @ a.mT + torch.eye(3, dtype=torch.float64))", a=U(3, 3)),
    E("torch.count_nonzero(a) + a.sum()", a=U(4)),
    E("torch.special.log_softmax(a, 0)", a=U(4)),
    E("torch.special.softmax(a, 0)", a=U(4)),
]

MASK = "torch.tensor([[True, False, True], [True, True, False]])"
MASKED = [
    *(
        E(f"torch.masked.{op}(a, 1, mask={MASK})", a=U(2, 3))
        for op in (
            "sum",
            "mean",
            "prod",
            "cumsum",
            "cumprod",
            "softmax",
            "log_softmax",
            "softmin",
            "logsumexp",
            "std",
            "var",
        )
    ),
    *(E(f"torch.masked.{op}(a, 1, mask={MASK})", a=U(2, 3), smooth=False) for op in ("amax", "amin", "median")),
    E(f"torch.masked.norm(a, 2.0, 1, mask={MASK})", a=U(2, 3)),
    E(f"torch.masked.normalize(a, 2.0, 1, mask={MASK})", a=U(2, 3)),
    E(f"torch.masked.logaddexp(a, b, input_mask={MASK}, other_mask={MASK})", a=U(2, 3), b=U(2, 3)),
]

# ------------------------------------------------------------------ linear algebra
I3 = "torch.eye(3, dtype=torch.float64)"
SPD = f"a @ a.mT + {I3}"
SINGULAR = P("singular (rank 2)", "degenerate", a=(1, 2, 3, 2, 4, 6, 1, 0, 1), shapes=dict(a=(3, 3)))
RANK_ONE = P("rank 1", "degenerate", a=(1, 2, 3, 2, 4, 6, 3, 6, 9), shapes=dict(a=(3, 3)))
ZERO_MATRIX = P("zero matrix", "degenerate", a=(0,) * 9, shapes=dict(a=(3, 3)))
SHIFTED_SINGULAR = P("a + 3I singular", "degenerate", a=(-2, 2, 0, 2, 1, 0, 0, 0, -2), shapes=dict(a=(3, 3)))
REPEATED_EIG = P("repeated eigenvalue", "degenerate", a=(1, 0, 0, 0, 1, 0, 0, 0, 2), shapes=dict(a=(3, 3)))
M = dict(lo=-1.0, hi=1.0)

LINALG = [
    E(
        "torch.mm(a, b)",
        P("zero-size inner", "zero-size", a=(), b=(), shapes=dict(a=(2, 0), b=(0, 2))),
        a=U(2, 3),
        b=U(3, 2),
    ),
    E("torch.mv(a, b)", a=U(2, 3), b=U(3)),
    E("torch.bmm(a, b)", a=U(2, 2, 3), b=U(2, 3, 2)),
    E("torch.matmul(a, b)", a=U(3), b=U(3, 2)),
    E("torch.matmul(a, b)", a=U(2, 2, 3), b=U(3), name="torch.matmul(batched, vector)"),
    E("a @ b", a=U(2, 3), b=U(3, 2)),
    E("a.__rmatmul__(b)", a=U(3, 2), b=U(2, 3)),
    E("torch.addmm(c, a, b, beta=0.5, alpha=2.0)", a=U(2, 3), b=U(3, 2), c=U(2, 2)),
    E("torch.addmv(c, a, b)", a=U(2, 3), b=U(3), c=U(2)),
    E("torch.addbmm(c, a, b)", a=U(2, 2, 3), b=U(2, 3, 2), c=U(2, 2)),
    E("torch.baddbmm(c, a, b)", a=U(2, 2, 3), b=U(2, 3, 2), c=U(2, 2, 2)),
    E("torch.addr(c, a, b)", a=U(2), b=U(3), c=U(2, 3)),
    E("torch.dot(a, b)", a=U(3), b=U(3)),
    E("torch.vdot(a, b)", a=U(3), b=U(3)),
    E("torch.inner(a, b)", a=U(2, 3), b=U(3)),
    E("torch.outer(a, b)", a=U(2), b=U(3)),
    E("torch.ger(a, b)", a=U(2), b=U(3)),
    E("torch.kron(a, b)", a=U(2, 2), b=U(2, 1)),
    E("torch.tensordot(a, b, dims=1)", a=U(2, 3), b=U(3, 2)),
    E("torch.einsum('ij,jk->ik', a, b)", a=U(2, 3), b=U(3, 2)),
    E("torch.einsum('ii->i', a)", a=U(3, 3)),
    E("torch.linalg.multi_dot([a, b, c])", a=U(2, 3), b=U(3, 2), c=U(2, 2)),
    E("torch.chain_matmul(a, b)", a=U(2, 3), b=U(3, 2)),
    E("torch.linalg.vecdot(a, b)", a=U(2, 3), b=U(2, 3)),
    E("torch.linalg.cross(a, b)", a=U(2, 3), b=U(2, 3)),
    E("torch.cross(a, b, dim=1)", a=U(2, 3), b=U(2, 3)),
    E("torch.linalg.det(a)", SINGULAR, RANK_ONE, ZERO_MATRIX, a=U(3, 3)),
    E("torch.det(a)", SINGULAR, a=U(3, 3)),
    E(
        "torch.linalg.det(a)",
        P("zero-size", "zero-size", a=(), shapes=dict(a=(0, 0))),
        a=U(2, 2),
        name="torch.linalg.det(2x2)",
    ),
    E(f"torch.linalg.slogdet(a + 3 * {I3}).logabsdet", SHIFTED_SINGULAR, a=U(3, 3, **M)),
    E(f"torch.slogdet(a + 3 * {I3})[1]", a=U(3, 3, **M)),
    E(f"torch.linalg.inv(a + 3 * {I3})", SHIFTED_SINGULAR, a=U(3, 3, **M)),
    E(f"torch.inverse(a + 3 * {I3})", a=U(3, 3, **M)),
    E(f"torch.linalg.inv_ex(a + 3 * {I3}).inverse", SHIFTED_SINGULAR, a=U(3, 3, **M)),
    E(
        "torch.linalg.pinv(a)",
        P("rank deficient", "degenerate", a=(1, 2, 2, 4, 0, 0), shapes=dict(a=(3, 2))),
        a=U(3, 2),
    ),
    E("torch.pinverse(a)", P("square", "square", a=(2, 1, 1, 3), shapes=dict(a=(2, 2))), a=U(2, 3)),
    E(f"torch.linalg.pinv({SPD}, hermitian=True)", a=U(3, 3)),
    E(f"torch.linalg.solve(a + 3 * {I3}, b)", SHIFTED_SINGULAR, a=U(3, 3, **M), b=U(3, 2)),
    E(f"torch.linalg.solve_ex(a + 3 * {I3}, b).result", a=U(3, 3, **M), b=U(3)),
    E(
        "torch.linalg.lstsq(a, b).solution",
        P("rank deficient", "degenerate", a=(1, 2, 2, 4, 3, 6), shapes=dict(a=(3, 2))),
        P("square", "square", a=(2, 1, 0, 1, 3, 1, 0, 1, 4), shapes=dict(a=(3, 3))),
        a=U(3, 2),
        b=U(3, 1),
    ),
    E(
        f"torch.linalg.cholesky({SPD})",
        P("singular", "degenerate", a=(1, 0, 0, 0, 0, 0, 0, 0, 0), shapes=dict(a=(3, 3))),
        a=U(3, 3),
    ),
    E(f"torch.linalg.cholesky_ex({SPD}).L", a=U(3, 3)),
    E(f"torch.cholesky({SPD})", a=U(3, 3)),
    E(f"torch.cholesky_solve(b, torch.linalg.cholesky({SPD}))", a=U(3, 3), b=U(3, 2)),
    E(f"torch.cholesky_inverse(torch.linalg.cholesky({SPD}))", a=U(3, 3)),
    E("torch.linalg.qr(a)", P("rank deficient", "degenerate", a=(1, 2, 2, 4, 3, 6), shapes=dict(a=(3, 2))), a=U(3, 2)),
    E("torch.linalg.qr(a, mode='complete')", a=U(3, 3), name="torch.linalg.qr(square, mode='complete')"),
    E("torch.qr(a)", a=U(3, 2)),
    E(
        "torch.linalg.svdvals(a)",
        P("repeated singular values", "degenerate", a=(1, 0, 0, 1, 0, 0), shapes=dict(a=(3, 2))),
        ZERO_MATRIX,
        a=U(3, 2),
    ),
    E("torch.linalg.svd(a, full_matrices=False).S", a=U(2, 3)),
    E(
        "(lambda r: r.U @ r.Vh)(torch.linalg.svd(a, full_matrices=False))",
        P("repeated singular values", "degenerate", a=(1, 0, 0, 1, 0, 0), shapes=dict(a=(3, 2))),
        a=U(3, 2),
    ),
    E("(lambda r: (r.S, r.U @ r.V.mT))(torch.svd(a))", a=U(3, 2)),
    E("torch.linalg.eigvalsh(a + a.mT)", REPEATED_EIG, a=U(3, 3)),
    E("(lambda r: (r.eigenvalues, r.eigenvectors ** 2))(torch.linalg.eigh(a + a.mT))", REPEATED_EIG, a=U(3, 3)),
    E("torch.view_as_real(torch.linalg.eigvals(a))", a=U(3, 3)),
    E("torch.view_as_real(torch.linalg.eig(a).eigenvalues)", REPEATED_EIG, a=U(3, 3)),
    E("torch.linalg.matrix_norm(a)", ZERO_MATRIX, a=U(3, 3)),
    E("torch.linalg.matrix_norm(a, 'nuc')", a=U(3, 2)),
    E("torch.linalg.matrix_norm(a, 2)", a=U(3, 2)),
    E("torch.linalg.matrix_norm(a, 1)", a=U(3, 2), smooth=False),
    E("torch.linalg.norm(a, 'fro')", a=U(3, 2)),
    E(f"torch.linalg.cond(a + 3 * {I3})", a=U(3, 3, **M)),
    E("torch.linalg.matrix_power(a, 3)", a=U(3, 3, **M)),
    E(f"torch.linalg.matrix_power(a + 3 * {I3}, -2)", a=U(3, 3, **M)),
    E("torch.matrix_power(a, 0)", a=U(3, 3)),
    E("torch.linalg.matrix_exp(a)", a=U(3, 3, **M)),
    E("torch.matrix_exp(a)", ZERO_MATRIX, a=U(3, 3, **M)),
    E(f"torch.linalg.lu_factor(a + 3 * {I3})", a=U(3, 3, **M)),
    E(f"torch.linalg.lu_factor_ex(a + 3 * {I3}).LU", a=U(3, 3, **M)),
    E("torch.linalg.lu(a)", a=U(3, 2, **M)),
    E(f"torch.lu(a + 3 * {I3})", a=U(3, 3, **M)),
    E(f"torch.linalg.lu_solve(*torch.linalg.lu_factor(a + 3 * {I3}), b)", a=U(3, 3, **M), b=U(3, 2)),
    E(f"torch.lu_solve(b, *torch.linalg.lu_factor(a + 3 * {I3}))", a=U(3, 3, **M), b=U(3, 2)),
    E(f"torch.lu_unpack(*torch.linalg.lu_factor(a + 3 * {I3}))", a=U(3, 3, **M)),
    E(f"torch.linalg.solve_triangular(torch.triu(a) + 3 * {I3}, b, upper=True)", a=U(3, 3, **M), b=U(3, 2)),
    E(f"torch.triangular_solve(b, torch.tril(a) + 3 * {I3}, upper=False)", a=U(3, 3, **M), b=U(3, 2)),
    E("torch.linalg.householder_product(a, b)", a=U(3, 2, **M), b=U(2, **M)),
    E("torch.ormqr(a, b, c)", a=U(3, 2, **M), b=U(2, **M), c=U(3, 2)),
    E("torch.geqrf(a)[0]", a=U(3, 2)),
    E("torch.linalg.tensorinv((a + 3 * torch.eye(4, dtype=torch.float64)).reshape(4, 2, 2), ind=1)", a=U(4, 4, **M)),
    E(
        "torch.linalg.tensorsolve((a + 3 * torch.eye(4, dtype=torch.float64)).reshape(2, 2, 4), b)",
        a=U(4, 4, **M),
        b=U(2, 2),
    ),
    E("torch.linalg.vander(a, N=3)", a=U(3)),
    E("torch.vander(a, N=3)", a=U(3)),
    E("torch.linalg.diagonal(a)", a=U(3, 3)),
    E(
        "torch.cdist(a, b)",
        P("coincident points", "kink", a=(1, 2, 0, 0), b=(1, 2, 1, 1), shapes=dict(a=(2, 2), b=(2, 2))),
        a=U(2, 3),
        b=U(3, 3),
    ),
    E("torch.cdist(a, b, p=1)", a=U(2, 3), b=U(3, 3), smooth=False),
    E("F.pdist(a)", P("coincident points", "kink", a=(1, 2, 1, 2, 0, 0), shapes=dict(a=(3, 2))), a=U(3, 2)),
    E("torch.block_diag(a, b)", a=U(2, 2), b=U(1, 3)),
    E("torch.cartesian_prod(a, b)", a=U(2), b=U(3)),
    E("torch.combinations(a, 2)", a=U(4)),
    E("torch.tril(a, -1)", a=U(3, 3)),
    E("torch.triu(a, 1)", a=U(3, 3)),
    E("torch.diag(a)", a=U(3)),
    E("torch.diag(a, 1)", a=U(3, 3), name="torch.diag(matrix, 1)"),
    E("torch.diag_embed(a)", a=U(2, 3)),
    E("torch.diagflat(a)", a=U(2, 2)),
    E("torch.diagonal(a, 0, 1, 2)", a=U(2, 3, 3)),
    E("torch.diagonal_copy(a)", a=U(3, 3)),
    E("torch.diagonal_scatter(a, b)", a=U(3, 3), b=U(3)),
    E("(lambda: (torch.manual_seed(0), torch.svd_lowrank(a, q=2)[1])[1])()", a=U(4, 3)),
    E("(lambda: (torch.manual_seed(0), torch.pca_lowrank(a, q=2)[1])[1])()", a=U(4, 3)),
]

# ------------------------------------------------------------------ indexing, scatter, gather
IDX = "torch.tensor([[0, 0], [1, 0]])"
REPEAT = "torch.tensor([0, 2, 0])"
#: the canonical input itself: the code's index repeats an element
REPEATED = P("index repeats an element", "repeated-index")
DISTINCT = "torch.tensor([[0, 2], [1, 0]])"
INDEXING = [
    E(f"torch.gather(a, 1, {IDX})", REPEATED, a=U(2, 3)),
    E(f"torch.take_along_dim(a, {IDX}, 1)", a=U(2, 3)),
    E(f"torch.scatter(a, 1, {DISTINCT}, b)", a=U(2, 3), b=U(2, 2)),
    E(f"torch.scatter(a, 1, {IDX}, 2.5)", a=U(2, 3), name="torch.scatter(value)"),
    E(f"torch.scatter_add(a, 1, {IDX}, b)", REPEATED, a=U(2, 3), b=U(2, 2)),
    *(
        E(
            f"torch.scatter_reduce(a, 1, {IDX}, b, '{r}')",
            *(
                (P("tie between src and self", "tie", a=(1.0, 0.0, 0.0, 0.0, 0.0, 0.0), b=(1.0, 1.0, 0.0, 0.0)),)
                if r in ("amax", "amin")
                else ()
            ),
            a=U(2, 3),
            b=U(2, 2),
            **(STEPS if r in ("amax", "amin") else {}),
        )
        for r in ("sum", "prod", "mean", "amax", "amin")
    ),
    E(f"torch.scatter_reduce(a, 1, {IDX}, b, 'mean', include_self=False)", a=U(2, 3), b=U(2, 2)),
    E(f"torch.index_add(a, 0, {REPEAT}, b)", REPEATED, a=U(3, 2), b=U(3, 2)),
    E("torch.index_copy(a, 0, torch.tensor([2, 0]), b)", a=U(3, 2), b=U(2, 2)),
    E(f"torch.index_fill(a, 0, {REPEAT}, -1.0)", a=U(3, 2)),
    E("a.index_put((torch.tensor([0, 2]),), b)", a=U(3, 2), b=U(2, 2)),
    E(f"a.index_put(({REPEAT},), b, accumulate=True)", a=U(3, 2), b=U(3, 2), name="index_put(accumulate=True)"),
    *(
        E(
            f"torch.index_reduce(a, 0, {REPEAT}, b, '{r}')",
            a=U(3, 2),
            b=U(3, 2),
            **(STEPS if r in ("amax", "amin") else {}),
        )
        for r in ("prod", "mean", "amax", "amin")
    ),
    E(f"torch.index_select(a, 0, {REPEAT})", REPEATED, a=U(3, 2)),
    E(f"torch.take(a, {REPEAT})", REPEATED, a=U(2, 2)),
    E(f"torch.put(a, {REPEAT}, b, accumulate=True)", REPEATED, a=U(2, 2), b=U(3)),
    E("torch.put(a, torch.tensor([0, 3]), b)", a=U(2, 2), b=U(2), name="torch.put(no accumulate)"),
    E("torch.masked_scatter(a, torch.tensor([True, False, True, False]), b)", a=U(4), b=U(4)),
    E(
        "torch.masked_select(a, torch.tensor([True, False, True, False]))",
        P("nothing selected", "zero-size", a=(1.0, 2.0, 3.0, 4.0)),
        a=U(4),
    ),
    E("a[torch.tensor([0, 0, 2])]", a=U(3, 2)),
    E("a[1:3]", a=U(4)),
    E("a[..., 0]", a=U(2, 3)),
    E("a[torch.tensor([True, False, True])]", a=U(3, 2)),
    E("torch.select(a, 1, 1)", a=U(2, 3)),
    E("torch.narrow(a, 0, 1, 2)", a=U(4)),
    E("torch.narrow_copy(a, 0, 1, 2)", a=U(4)),
    E("torch.select_scatter(a, b, 0, 1)", a=U(2, 3), b=U(3)),
    E("torch.slice_scatter(a, b, 0, 1, 3)", a=U(4, 2), b=U(2, 2)),
    E("torch.as_strided(a, (2, 2), (1, 2))", a=U(4)),
    E("torch.as_strided(a, (3,), (0,))", a=U(4), name="torch.as_strided(overlapping)"),
    E("torch.as_strided_copy(a, (2, 2), (1, 2))", a=U(4)),
    E("torch.as_strided_scatter(a, b, (2,), (2,))", a=U(4), b=U(2)),
    E("a.unfold(0, 2, 1)", a=U(4)),
    E("torch.unfold_copy(a, 0, 2, 1)", a=U(4)),
    E(f"F.embedding({REPEAT}, a)", REPEATED, a=U(3, 2)),
    E("F.embedding_bag(torch.tensor([0, 2, 0, 1]), a, torch.tensor([0, 2]), mode='mean')", a=U(3, 2)),
    E("F.embedding_bag(torch.tensor([0, 2, 0, 1]), a, torch.tensor([0, 2]), mode='max')", a=U(3, 2), smooth=False),
    E(
        "F.embedding_bag(torch.tensor([0, 2, 0, 1]), a, torch.tensor([0, 2]), mode='sum', per_sample_weights=b)",
        a=U(3, 2),
        b=U(4),
    ),
    E("torch.where(a > 0, a, 0.0)", at(0.0, "kink", pieces=True), a=U(4), smooth=False),
    E("torch.nonzero(a > 0).double().sum() + a", a=U(4), name="torch.nonzero"),
]

# ------------------------------------------------------------------ shape and view
SHAPE = [
    E("torch.reshape(a, (3, 2))", empty(0, 3), a=U(2, 3)),
    E("a.view(3, 2)", a=U(2, 3)),
    E("a.view_as(b)", a=U(2, 3), b=U(3, 2)),
    E("a.reshape_as(b)", a=U(2, 3), b=U(6)),
    E("torch.flatten(a)", a=U(2, 3)),
    E("torch.unflatten(a, 0, (2, 2))", a=U(4)),
    E("torch.squeeze(a)", a=U(2, 1)),
    E("torch.squeeze(a, 1)", a=U(2, 1, 3), name="torch.squeeze(dim)"),
    E("torch.unsqueeze(a, 0)", a=U(3)),
    E("torch.permute(a, (2, 0, 1))", a=U(2, 3, 2)),
    E("torch.movedim(a, 0, 1)", a=U(2, 3)),
    E("torch.moveaxis(a, 0, -1)", a=U(2, 3)),
    E("torch.transpose(a, 0, 1)", a=U(2, 3)),
    E("torch.swapaxes(a, 0, 1)", a=U(2, 3)),
    E("torch.t(a)", a=U(2, 3)),
    E("a.mT", a=U(2, 3)),
    E("a.mH", a=U(2, 3)),
    E("a.T", a=U(2, 3)),
    E("a.H", a=U(2, 3)),
    E("torch.adjoint(a)", a=U(2, 3)),
    E("a.expand(2, 3)", a=U(1, 3)),
    E("a.expand_as(b)", a=U(3, 1), b=U(3, 2)),
    E("torch.broadcast_to(a, (2, 3))", a=U(3)),
    E("torch.broadcast_tensors(a, b)", a=U(3), b=U(2, 1)),
    E("a.repeat(2, 1)", a=U(3)),
    E("torch.tile(a, (2,))", a=U(3)),
    E("torch.repeat_interleave(a, 2)", a=U(3)),
    E("torch.repeat_interleave(a, torch.tensor([1, 0, 2]))", a=U(3), name="torch.repeat_interleave(counts)"),
    E("torch.roll(a, 1)", a=U(4)),
    E("torch.rot90(a)", a=U(2, 3)),
    E("torch.flip(a, (0,))", a=U(4)),
    E("torch.fliplr(a)", a=U(2, 3)),
    E("torch.flipud(a)", a=U(2, 3)),
    E("torch.cat([a, b])", P("zero-size part", "zero-size", b=(), shapes=dict(b=(0,))), a=U(3), b=U(2)),
    E("torch.concat([a, b], 1)", a=U(2, 1), b=U(2, 2)),
    E("torch.concatenate([a, b])", a=U(2), b=U(2)),
    E("torch.stack([a, b])", a=U(3), b=U(3)),
    E("torch.hstack([a, b])", a=U(3), b=U(2)),
    E("torch.vstack([a, b])", a=U(3), b=U(3)),
    E("torch.row_stack([a, b])", a=U(3), b=U(3)),
    E("torch.dstack([a, b])", a=U(2), b=U(2)),
    E("torch.column_stack([a, b])", a=U(3), b=U(3)),
    E("torch.atleast_1d(a)", a=U(1)),
    E("torch.atleast_2d(a)", a=U(3)),
    E("torch.atleast_3d(a)", a=U(3)),
    E("torch.chunk(a, 2)", a=U(5)),
    E("torch.split(a, 2)", a=U(5)),
    E("torch.split(a, [1, 4])", a=U(5), name="torch.split(sizes)"),
    E("torch.split_with_sizes(a, [2, 3])", a=U(5)),
    E("torch.split_with_sizes_copy(a, [2, 3])", a=U(5)),
    E("torch.tensor_split(a, 3)", a=U(5)),
    E("torch.hsplit(a, 2)", a=U(2, 4)),
    E("torch.vsplit(a, 2)", a=U(4, 2)),
    E("torch.dsplit(a, 2)", a=U(1, 2, 4)),
    E("torch.unbind(a)", a=U(2, 3)),
    E("torch.unbind_copy(a)", a=U(2, 3)),
    E("a.unsafe_chunk(2)", a=U(4)),
    E("a.unsafe_split(2)", a=U(4)),
    E("a.mT.contiguous()", a=U(2, 3)),
    E("torch.alias_copy(a)", a=U(3)),
    E("torch.expand_copy(a, (2, 3))", a=U(3)),
    E("torch.permute_copy(a, (1, 0))", a=U(2, 3)),
    E("torch.squeeze_copy(a)", a=U(2, 1)),
    E("torch.unsqueeze_copy(a, 1)", a=U(3)),
    E("torch.t_copy(a)", a=U(2, 3)),
    E("torch.transpose_copy(a, 0, 1)", a=U(2, 3)),
    E("torch.view_copy(a, (3, 2))", a=U(2, 3)),
    E("torch.ravel(a)", a=U(2, 3)),
    E("torch.meshgrid(a, b, indexing='ij')", a=U(2), b=U(3)),
    E("a.sum_to_size(1, 3)", a=U(2, 3)),
    E("torch.view_as_real(torch.view_as_complex(a))", a=U(3, 2)),
    E("F.pixel_shuffle(a, 2)", a=U(1, 4, 1, 2)),
    E("F.pixel_unshuffle(a, 2)", a=U(1, 1, 2, 4)),
    E("F.channel_shuffle(a, 2)", a=U(1, 4, 1, 2)),
    E("torch.native_channel_shuffle(a, 2)", a=U(1, 4, 1, 1)),
]

# ------------------------------------------------------------------ convolution, pooling, normalization
POOL_TIE = P(
    "tie inside a window",
    "tie",
    a=(1.0, 1.0, 0.5, 0.25),
    shapes=dict(a=(1, 1, 4)),
    pieces=(("a", 0, 1), ("a", 1, 1)),
    departs="max pooling routes a tie to one element",
)
SEEDED = "(lambda: (torch.manual_seed(0), {})[1])()"
NN = [
    E("F.conv1d(a, b, c, padding=1)", a=U(1, 2, 4), b=U(3, 2, 2), c=U(3)),
    E("F.conv1d(a, b, stride=2, dilation=2, groups=2)", a=U(1, 2, 5), b=U(2, 1, 2), name="F.conv1d(groups)"),
    E("F.conv2d(a, b, c)", a=U(1, 2, 3, 3), b=U(2, 2, 2, 2), c=U(2)),
    E("F.conv3d(a, b)", a=U(1, 1, 2, 2, 3), b=U(1, 1, 2, 1, 2)),
    E("F.conv_transpose1d(a, b, c, stride=2)", a=U(1, 2, 3), b=U(2, 1, 2), c=U(1)),
    E("F.conv_transpose2d(a, b)", a=U(1, 1, 2, 2), b=U(1, 2, 2, 2)),
    E("F.conv_transpose3d(a, b)", a=U(1, 1, 2, 1, 2), b=U(1, 1, 1, 2, 2)),
    E("F.linear(a, b, c)", a=U(2, 3), b=U(2, 3), c=U(2)),
    E("F.bilinear(a, b, c)", a=U(2, 2), b=U(2, 3), c=U(1, 2, 3)),
    E("F.avg_pool1d(a, 2)", a=U(1, 1, 4)),
    E(
        "F.avg_pool1d(a, 3, 2, padding=1, ceil_mode=True, count_include_pad=False)",
        a=U(1, 1, 5),
        name="F.avg_pool1d(ceil_mode)",
    ),
    E("F.avg_pool2d(a, 2)", a=U(1, 1, 2, 4)),
    E("F.avg_pool3d(a, 2)", a=U(1, 1, 2, 2, 2)),
    E("F.max_pool1d(a, 2)", POOL_TIE, a=U(1, 1, 4), smooth=False),
    E("F.max_pool1d(a, 2, return_indices=True)", a=U(1, 1, 4), smooth=False),
    E(
        "F.max_pool2d(a, 2)",
        P("tie inside a window", "tie", a=(1, 1, 0, 0), shapes=dict(a=(1, 1, 2, 2))),
        a=U(1, 1, 2, 4),
        smooth=False,
    ),
    E("F.max_pool2d(a, 2, return_indices=True)", a=U(1, 1, 2, 4), smooth=False),
    E("F.max_pool3d(a, 2)", a=U(1, 1, 2, 2, 2), smooth=False),
    E("F.adaptive_avg_pool1d(a, 2)", a=U(1, 1, 5)),
    E("F.adaptive_avg_pool2d(a, 2)", a=U(1, 1, 3, 3)),
    E("F.adaptive_avg_pool3d(a, 1)", a=U(1, 1, 2, 2, 2)),
    E("F.adaptive_max_pool1d(a, 2)", POOL_TIE, a=U(1, 1, 4), smooth=False),
    E("F.adaptive_max_pool2d(a, 2)", a=U(1, 1, 3, 3), smooth=False),
    E("F.adaptive_max_pool3d(a, 1)", a=U(1, 1, 2, 2, 2), smooth=False),
    E(
        "F.lp_pool1d(a, 2.0, 2)",
        P("zero window", "root-zero", a=(0.0, 0.0, 1.0, 2.0), shapes=dict(a=(1, 1, 4))),
        a=U(1, 1, 4, lo=0.2, hi=2),
    ),
    E("F.lp_pool2d(a, 2.0, 2)", a=U(1, 1, 2, 2, lo=0.2, hi=2)),
    E("F.lp_pool3d(a, 2.0, 2)", a=U(1, 1, 2, 2, 2, lo=0.2, hi=2)),
    E(
        "F.fractional_max_pool2d(a, 2, output_size=2, _random_samples=torch.tensor([[[0.3, 0.6]]], "
        "dtype=torch.float64))",
        a=U(1, 1, 4, 4),
        smooth=False,
    ),
    E(
        "F.fractional_max_pool3d(a, 2, output_size=1, _random_samples=torch.tensor([[[0.3, 0.6, 0.2]]], "
        "dtype=torch.float64))",
        a=U(1, 1, 3, 3, 3),
        smooth=False,
    ),
    E("F.max_unpool1d(a, torch.tensor([[[1, 2]]]), 2)", a=U(1, 1, 2)),
    E("F.max_unpool2d(a, torch.tensor([[[[0, 3]]]]), 2)", a=U(1, 1, 1, 2)),
    E("F.max_unpool3d(a, torch.tensor([[[[[0]]]]]), 2)", a=U(1, 1, 1, 1, 1)),
    E(
        "F.batch_norm(a, None, None, b, c, training=True)",
        P("training mode", "train"),
        P("constant batch", "degenerate", a=(1.0,) * 6, shapes=dict(a=(3, 2))),
        a=U(3, 2),
        b=U(2),
        c=U(2),
    ),
    E(
        "F.batch_norm(a, torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64), b, c, "
        "training=False)",
        P("evaluation mode", "eval"),
        a=U(3, 2),
        b=U(2),
        c=U(2),
        name="F.batch_norm(eval)",
    ),
    E("torch.native_batch_norm(a, b, c, None, None, True, 0.1, 1e-5)[0]", a=U(3, 2), b=U(2), c=U(2)),
    E("F.instance_norm(a)", a=U(1, 2, 3)),
    E(
        "F.layer_norm(a, (3,), b, c)",
        P("constant row", "degenerate", a=(1.0,) * 6, shapes=dict(a=(2, 3))),
        a=U(2, 3),
        b=U(3),
        c=U(3),
    ),
    E("torch.native_layer_norm(a, (3,), b, c, 1e-5)[0]", a=U(2, 3), b=U(3), c=U(3)),
    E("F.group_norm(a, 2, b, c)", a=U(1, 4, 2), b=U(4), c=U(4)),
    E("torch.native_group_norm(a, b, c, 1, 4, 2, 2, 1e-5)[0]", a=U(1, 4, 2), b=U(4), c=U(4)),
    E("F.rms_norm(a, (3,), b)", P("zero row", "root-zero", a=(0.0,) * 6, shapes=dict(a=(2, 3))), a=U(2, 3), b=U(3)),
    E("F.local_response_norm(a, 2)", a=U(1, 3, 2)),
    E("F.normalize(a, dim=0)", P("zero vector", "root-zero", a=(0.0, 0.0, 0.0), shapes=dict(a=(3,))), a=U(3)),
    E(
        "F.cosine_similarity(a, b, dim=0)",
        P("zero vector", "root-zero", a=(0.0, 0.0, 0.0), b=(1.0, 2.0, 3.0), shapes=dict(a=(3,), b=(3,))),
        a=U(3),
        b=U(3),
    ),
    E(
        "F.pairwise_distance(a, b)",
        P("equal rows", "kink", a=(1.0, 2.0), b=(1.0, 2.0), shapes=dict(a=(1, 2), b=(1, 2))),
        a=U(2, 3),
        b=U(2, 3),
    ),
    *(
        E(f"F.interpolate(a, scale_factor=2, mode='{m}'{extra})", a=U(*shape), smooth=False)
        for m, shape, extra in [
            ("nearest", (1, 1, 3), ""),
            ("nearest-exact", (1, 1, 3), ""),
            ("linear", (1, 1, 3), ", align_corners=False"),
            ("bilinear", (1, 1, 2, 2), ", align_corners=True"),
            ("bicubic", (1, 1, 2, 2), ", align_corners=False"),
            ("trilinear", (1, 1, 2, 1, 2), ", align_corners=False"),
            ("bilinear", (1, 1, 2, 2), ", antialias=True"),
        ]
    ),
    E("F.interpolate(a, size=2, mode='area')", a=U(1, 1, 4)),
    E("F.upsample_bilinear(a, scale_factor=2)", a=U(1, 1, 2, 2)),
    E("F.upsample_nearest(a, scale_factor=2)", a=U(1, 1, 2, 2)),
    E("F.upsample(a, scale_factor=2, mode='linear')", a=U(1, 1, 3)),
    E("F.grid_sample(a, b, align_corners=False)", a=U(1, 1, 3, 3), b=U(1, 2, 2, 2, lo=-0.9, hi=0.9), smooth=False),
    E(
        "F.grid_sample(a, b, mode='nearest', align_corners=True)",
        a=U(1, 1, 3, 3),
        b=U(1, 2, 2, 2, lo=-0.9, hi=0.9),
        smooth=False,
        name="F.grid_sample(nearest)",
    ),
    E(
        "F.grid_sample(a, b, align_corners=False)",
        a=U(1, 1, 2, 2, 2),
        b=U(1, 1, 1, 2, 3, lo=-0.9, hi=0.9),
        smooth=False,
        name="F.grid_sample(3d)",
    ),
    E("F.affine_grid(a, (1, 1, 2, 2), align_corners=False)", a=U(1, 2, 3)),
    *(E(f"F.pad(a, (1, 2), mode='{m}')", a=U(1, 1, 3)) for m in ("constant", "reflect", "replicate", "circular")),
    E("F.pad(a, (1, 1, 1, 0), mode='reflect')", a=U(1, 1, 2, 3), name="F.pad(2d, reflect)"),
    E("F.pad(a, (1, 1, 1, 0, 0, 1), mode='replicate')", a=U(1, 1, 2, 2, 2), name="F.pad(3d, replicate)"),
    E("torch.constant_pad_nd(a, (1, -1), 2.0)", a=U(3)),
    E("F.unfold(a, 2)", a=U(1, 1, 3, 3)),
    E("F.fold(a, (3, 3), 2)", a=U(1, 4, 4)),
    E(SEEDED.format("F.dropout(a, 0.5)"), P("training mode", "train"), a=U(6)),
    E(SEEDED.format("F.dropout(a, 0.5, training=False)"), P("evaluation mode", "eval"), a=U(6)),
    E(SEEDED.format("F.dropout1d(a, 0.5)"), a=U(2, 3)),
    E(SEEDED.format("F.dropout2d(a, 0.5)"), a=U(1, 2, 2, 2)),
    E(SEEDED.format("F.dropout3d(a, 0.5)"), a=U(1, 2, 1, 1, 2)),
    E(SEEDED.format("F.alpha_dropout(a, 0.5, training=True)"), a=U(6)),
    E(SEEDED.format("F.feature_alpha_dropout(a, 0.5, training=True)"), a=U(1, 2, 3)),
    E(SEEDED.format("torch.native_dropout(a, 0.5, True)[0]"), a=U(6)),
    E(SEEDED.format("F.rrelu(a, training=True)"), a=U(6), smooth=False),
    E(SEEDED.format("F.gumbel_softmax(a, tau=0.5)"), a=U(2, 3)),
    E(SEEDED.format("torch.normal(a, b)"), a=U(4), b=U(4, lo=0.5, hi=2), deterministic=False),
    E(SEEDED.format("torch.normal(a, 1.0)"), a=U(4), deterministic=False, name="torch.normal(mean)"),
    E("F.scaled_dot_product_attention(a, b, c)", a=U(1, 2, 3), b=U(1, 3, 3), c=U(1, 3, 2)),
    E(
        "F.scaled_dot_product_attention(a, b, c, is_causal=True)",
        a=U(1, 3, 2),
        b=U(1, 3, 2),
        c=U(1, 3, 2),
        name="F.scaled_dot_product_attention(causal)",
    ),
    E(
        "F.multi_head_attention_forward(a, a, a, 4, 2, b, None, None, None, False, 0.0, c, None, "
        "need_weights=False)[0]",
        a=U(2, 1, 4, **M),
        b=U(12, 4, **M),
        c=U(4, 4, **M),
    ),
    E("F.glu(a)", a=U(2, 4)),
    E(
        "F.prelu(a, b)",
        P("kink at 0", "kink", a=(0.0, 0.0), b=(0.25,), shapes=dict(a=(1, 2), b=(1,))),
        a=U(2, 3),
        b=U(1),
        smooth=False,
    ),
    E(
        "F.softmax(a, 1)",
        P("a row of -inf", "domain-boundary", a=(float("-inf"),) * 3 + (0.0, 1.0, 2.0)),
        empty(0, 3),
        a=U(2, 3),
    ),
    E("torch.softmax(a, 0)", a=U(3)),
    E("F.log_softmax(a, 1)", a=U(2, 3)),
    E("torch.log_softmax(a, 0)", a=U(3)),
    E("F.softmin(a, 1)", a=U(2, 3)),
    E("torch._safe_softmax(a, 1)", a=U(2, 3)),
]

# ------------------------------------------------------------------ losses
TARGET = "torch.tensor([1, 0])"
PROB = dict(lo=0.05, hi=0.95)
LOSSES = [
    E(
        "F.l1_loss(a, b)",
        P("a == b", "kink", a=(0.5,), b=(0.5,), shapes=dict(a=(1,), b=(1,)), pieces=(("a", 0, 1), ("a", 0, -1))),
        a=U(4),
        b=U(4),
        smooth=False,
    ),
    E("F.mse_loss(a, b)", a=U(4), b=U(4)),
    E("F.mse_loss(a, b, reduction='none')", a=U(4), b=U(4), name="F.mse_loss(reduction='none')"),
    E(
        "F.smooth_l1_loss(a, b, beta=0.5)",
        P("|a - b| == beta", "kink", a=(0.5,), b=(0.0,), shapes=dict(a=(1,), b=(1,))),
        a=U(4),
        b=U(4),
    ),
    E(
        "F.huber_loss(a, b, delta=0.5)",
        P("|a - b| == delta", "kink", a=(0.5,), b=(0.0,), shapes=dict(a=(1,), b=(1,))),
        a=U(4),
        b=U(4),
    ),
    E("F.soft_margin_loss(a, torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=torch.float64))", a=U(4)),
    E("F.kl_div(a, b, reduction='batchmean')", a=U(2, 2), b=U(2, 2, **PROB)),
    E("F.kl_div(a, b, reduction='sum', log_target=True)", a=U(2, 2), b=U(2, 2), name="F.kl_div(log_target)"),
    E(
        "F.binary_cross_entropy(a, b)",
        P("a == 0", "domain-boundary", a=(0.0,), b=(0.5,), shapes=dict(a=(1,), b=(1,))),
        a=U(4, **PROB),
        b=U(4, **PROB),
    ),
    E(
        "F.binary_cross_entropy(a, b, weight=torch.tensor([1.0, 2.0, 0.5, 1.0], dtype=torch.float64))",
        a=U(4, **PROB),
        b=U(4, **PROB),
        name="F.binary_cross_entropy(weight)",
    ),
    E("F.binary_cross_entropy_with_logits(a, b)", a=U(4), b=U(4, **PROB)),
    E(
        "F.binary_cross_entropy_with_logits(a, b, pos_weight=torch.tensor([0.5, 2.0, 1.0, 1.5], dtype=torch.float64))",
        a=U(4),
        b=U(4, **PROB),
        name="F.binary_cross_entropy_with_logits(pos_weight)",
    ),
    E(f"F.cross_entropy(a, {TARGET})", a=U(2, 3)),
    E("F.cross_entropy(a, b.softmax(1))", a=U(2, 3), b=U(2, 3), name="F.cross_entropy(probabilities)"),
    E(
        f"F.cross_entropy(a, {TARGET}, label_smoothing=0.1, weight=torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64))",
        a=U(2, 3),
        name="F.cross_entropy(label_smoothing, weight)",
    ),
    E(f"F.nll_loss(a, {TARGET})", a=U(2, 3)),
    E("F.nll_loss(a, torch.tensor([1, -100]), ignore_index=-100)", a=U(2, 3), name="F.nll_loss(ignore_index)"),
    E("F.poisson_nll_loss(a, b)", a=U(4), b=U(4, lo=0, hi=2)),
    E(
        "F.poisson_nll_loss(a, b, log_input=False, full=True)",
        a=U(4, lo=0.2, hi=2),
        b=U(4, lo=0.5, hi=2),
        name="F.poisson_nll_loss(log_input=False, full=True)",
    ),
    E("F.gaussian_nll_loss(a, b, c)", a=U(4), b=U(4), c=U(4, lo=0.2, hi=2)),
    E("F.hinge_embedding_loss(a, torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=torch.float64))", a=U(4), smooth=False),
    E(
        "F.margin_ranking_loss(a, b, torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=torch.float64))",
        a=U(4),
        b=U(4),
        smooth=False,
    ),
    E(f"F.multi_margin_loss(a, {TARGET})", a=U(2, 3), smooth=False),
    E("F.multilabel_margin_loss(a, torch.tensor([[1, -1, 0], [2, 0, -1]]))", a=U(2, 3), smooth=False),
    E(
        "F.multilabel_soft_margin_loss(a, torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]], dtype=torch.float64))",
        a=U(2, 3),
    ),
    E(
        "F.cosine_embedding_loss(a, b, torch.tensor([1.0, -1.0], dtype=torch.float64))",
        a=U(2, 3),
        b=U(2, 3),
        smooth=False,
    ),
    E("F.triplet_margin_loss(a, b, c)", a=U(2, 3), b=U(2, 3), c=U(2, 3), smooth=False),
    E("F.triplet_margin_with_distance_loss(a, b, c)", a=U(2, 3), b=U(2, 3), c=U(2, 3), smooth=False),
    E("F.ctc_loss(a.log_softmax(2), torch.tensor([[1, 2]]), torch.tensor([4]), torch.tensor([2]))", a=U(4, 1, 3)),
    E("F.linear_cross_entropy(a, b, torch.tensor([1, 0]))", a=U(2, 3), b=U(4, 3)),
]

# ------------------------------------------------------------------ Fourier transforms
C = "torch.complex(a, b)"
FFT = [
    *(
        E(f"torch.fft.{f}(a)", a=U(*shape))
        for f, shape in [
            ("fft", (4,)),
            ("ifft", (4,)),
            ("rfft", (4,)),
            ("ihfft", (4,)),
            ("fft2", (2, 2)),
            ("ifft2", (2, 2)),
            ("rfft2", (2, 4)),
            ("ihfft2", (2, 4)),
            ("fftn", (2, 2)),
            ("ifftn", (2, 2)),
            ("rfftn", (2, 4)),
            ("ihfftn", (2, 4)),
        ]
    ),
    *(
        E(f"torch.fft.{f}({C})", a=U(*shape), b=U(*shape))
        for f, shape in [
            ("irfft", (3,)),
            ("hfft", (3,)),
            ("irfft2", (2, 3)),
            ("hfft2", (2, 3)),
            ("irfftn", (2, 3)),
            ("hfftn", (2, 3)),
        ]
    ),
    E("torch.fft.fftshift(a)", a=U(5)),
    E("torch.fft.ifftshift(a)", a=U(5)),
    E(
        "torch.view_as_real(torch.stft(a, 4, hop_length=2, window=torch.hann_window(4, dtype=torch.float64), "
        "return_complex=True))",
        a=U(8),
    ),
    E(
        "torch.istft(torch.complex(a, b), 4, hop_length=1, window=torch.hann_window(4, dtype=torch.float64))",
        a=U(3, 5),
        b=U(3, 5),
    ),
]


FORWARD_OVER_FORWARD = (
    "2.13.0: forward over forward (torch.func.jvp nested) disagrees with reverse over reverse, "
    "which agrees with finite differences; e.g. det''[V, V] of a 2x2 matrix is not 2 det(V)"
)

#: Laws known to fail for an op on some torch release: {entry name: {law: reason}} (findings).
KNOWN = {
    "torch.ldexp(a, torch.tensor([1, 2, 0, -1, 3]))": {
        "reverse-matches-finite-differences": "2.13.0: the gradient for a negative integer exponent is 0 "
        "(2 ** other computed in integers) instead of 2.0 ** other"
    },
    "torch.as_strided_scatter(a, b, (2,), (2,))": dict.fromkeys(
        ("reverse-matches-finite-differences", "forward-is-adjoint-of-reverse"),
        "2.13.0: the gradient of the input is 1 at the scattered positions and 0 elsewhere, the "
        "complement of the right mask (forward mode agrees with finite differences)",
    ),
    "torch.vander(a, N=3)": dict.fromkeys(
        (
            "reverse-matches-finite-differences",
            "forward-is-adjoint-of-reverse",
            "derivatives-keep-dtype-and-shape",
            "second-order-matches-finite-differences",
            "forward-over-forward-matches-reverse-over-reverse",
            "missing-derivatives-raise",
            "nan-in-the-incoming-gradient-propagates",
        ),
        "2.13.0: backward raises 'modified by an inplace operation' (torch.vander's decomposition "
        "writes into a view it saved for backward)",
    ),
    "torch.cholesky_inverse(torch.linalg.cholesky(a @ a.mT + torch.eye(3, dtype=torch.float64)))": dict.fromkeys(
        ("forward-is-adjoint-of-reverse", "forward-over-forward-matches-reverse-over-reverse"),
        "2.13.0: the forward-mode derivative of cholesky_inverse disagrees with finite differences "
        "(reverse mode agrees with them)",
    ),
    "torch.scatter_reduce(a, 1, torch.tensor([[0, 0], [1, 0]]), b, 'prod')": dict.fromkeys(
        ("forward-is-adjoint-of-reverse", "forward-over-forward-matches-reverse-over-reverse"),
        "2.13.0: forward mode of scatter_reduce(..., 'prod') gives a zero tangent for src (finite "
        "differences do not; reverse mode agrees with them)",
    ),
    "torch.logcumsumexp(a, 0)": {
        "nan-in-the-incoming-gradient-propagates": "2.13.0: a NaN incoming gradient at the first output element "
        "does not reach every input gradient it contributes to (the backward formula works in log space)"
    },
    **{
        name: {"forward-over-forward-matches-reverse-over-reverse": FORWARD_OVER_FORWARD}
        for name in (
            "torch.logdet(a @ a.mT + torch.eye(3, dtype=torch.float64))",
            "torch.linalg.det(a)",
            "torch.det(a)",
            "torch.linalg.det(2x2)",
            "torch.linalg.slogdet(a + 3 * torch.eye(3, dtype=torch.float64)).logabsdet",
            "torch.slogdet(a + 3 * torch.eye(3, dtype=torch.float64))[1]",
            "torch.linalg.solve(a + 3 * torch.eye(3, dtype=torch.float64), b)",
            "torch.linalg.solve_ex(a + 3 * torch.eye(3, dtype=torch.float64), b).result",
            "torch.linalg.householder_product(a, b)",
            "torch.linalg.tensorsolve((a + 3 * torch.eye(4, dtype=torch.float64)).reshape(2, 2, 4), b)",
            "F.batch_norm(a, None, None, b, c, training=True)",
            "torch.native_batch_norm(a, b, c, None, None, True, 0.1, 1e-5)[0]",
            "F.instance_norm(a)",
            "F.layer_norm(a, (3,), b, c)",
            "torch.native_layer_norm(a, (3,), b, c, 1e-5)[0]",
        )
    },
}


def _build() -> dict[str, Entry]:
    entries = [
        *(_unary("torch.{}(a)", n, lo, hi, pts, **(STEPS if n in _NOT_SMOOTH else {})) for n, lo, hi, pts in UNARY),
        *(_unary("torch.special.{}(a)", n, lo, hi, pts) for n, lo, hi, pts in SPECIAL),
        *(_activation(code, pts) for code, pts in ACTIVATIONS),
        *(_binary(code, pts, domains) for code, pts, domains in BINARY),
        *TERNARY,
        *REDUCTIONS,
        *MASKED,
        *LINALG,
        *INDEXING,
        *SHAPE,
        *NN,
        *LOSSES,
        *FFT,
    ]
    table: dict[str, Entry] = {}
    for entry in entries:
        entry = replace(entry, known=KNOWN.get(entry.name, {}))
        if entry.name in table:
            raise ValueError(f"atlas entry {entry.name!r} is declared twice")
        for point in entry.points:
            unknown = set(point.values) - {a.name for a in entry.args}
            if point.kind not in POINT_KINDS or unknown:
                raise ValueError(
                    f"atlas entry {entry.name!r}, point {point.name!r}: kind {point.kind!r}, "
                    f"unknown arguments {sorted(unknown)}"
                )
        table[entry.name] = entry
    return table


#: Every entry, by name (the op's code unless it needs a distinguishing name).
TABLE: dict[str, Entry] = _build()


#: Entries the program generator may use as steps: pointwise, smooth on the whole real line (so
#: that any value a program computes is a generic point), each with a bound |f(x)| <= s·|x| + c
#: as (s, c), which the generator tracks to keep programs finite.
PROGRAM_SAFE: dict[str, tuple[float, float]] = {
    "torch.sin(a)": (0.0, 1.0),
    "torch.cos(a)": (0.0, 1.0),
    "torch.atan(a)": (0.0, 1.6),
    "torch.erf(a)": (0.0, 1.0),
    "torch.erfc(a)": (0.0, 2.0),
    "torch.sigmoid(a)": (0.0, 1.0),
    "torch.tanh(a)": (0.0, 1.0),
    "torch.special.ndtr(a)": (0.0, 1.0),
    "torch.special.expit(a)": (0.0, 1.0),
    "torch.special.erf(a)": (0.0, 1.0),
    "torch.special.erfc(a)": (0.0, 2.0),
    "F.sigmoid(a)": (0.0, 1.0),
    "F.tanh(a)": (0.0, 1.0),
    "torch.asinh(a)": (1.0, 0.0),
    "torch.arcsinh(a)": (1.0, 0.0),
    "F.gelu(a)": (1.0, 0.2),
    "F.gelu(a, approximate='tanh')": (1.0, 0.2),
    "F.silu(a)": (1.0, 0.3),
    "F.mish(a)": (1.0, 0.4),
    "F.softplus(a)": (1.0, 0.7),
    "F.logsigmoid(a)": (1.0, 0.7),
    "F.tanhshrink(a)": (1.0, 1.0),
    "torch.neg(a)": (1.0, 0.0),
    "torch.negative(a)": (1.0, 0.0),
    "torch.deg2rad(a)": (0.02, 0.0),
    "torch.clone(a)": (1.0, 0.0),
}
