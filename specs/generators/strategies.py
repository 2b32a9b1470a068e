"""Hypothesis strategies: ``tensors()`` and ``programs()``.

Values are bounded multiples of 1/64 in [-2, 2): exact in float32 and float64 alike, so a
float32 and a float64 run start from the same numbers, generated programs never overflow, and a
failing example prints as short torch code.  Every draw carries a label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from hypothesis import strategies as st

from specs.atlas.table import PROGRAM_SAFE, TABLE
from specs.generators.program import LAYOUTS, Program, Step, TensorSpec

FLOAT_DTYPES = (torch.float32, torch.float64)
MAX_NDIM = 4
MAX_NUMEL = 64
#: Largest magnitude any generated value may reach (tracked statically, op by op).
MAX_BOUND = 1e3

#: One value: k/64 for k in [-128, 127]; hypothesis shrinks towards 0.0.
values = st.integers(-128, 127).map(lambda k: k / 64)


def value_tuples(count: int):
    return st.lists(values, min_size=count, max_size=count).map(tuple)


@st.composite
def shapes(draw, min_ndim: int = 0, max_ndim: int = MAX_NDIM, max_side: int = 3, zero_size: bool = True):
    ndim = draw(st.integers(min_ndim, max_ndim), label="ndim")
    shape = [draw(st.integers(1, max_side), label="side") for _ in range(ndim)]
    if zero_size and ndim and draw(st.integers(0, 7), label="zero-size if 0") == 0:
        shape[draw(st.integers(0, ndim - 1), label="zero dim")] = 0
    return tuple(shape)


def _layouts_for(shape: tuple[int, ...]) -> list[str]:
    options = ["contiguous"]
    if len(shape) >= 2:
        options.append("transposed")
    if len(shape) >= 1:
        options += ["sliced", "expanded"]
    return options


@st.composite
def tensors(
    draw,
    shape=None,
    dtypes=FLOAT_DTYPES,
    layouts=LAYOUTS,
    requires_grad: bool | None = True,
    min_ndim: int = 0,
    max_ndim: int = MAX_NDIM,
    zero_size: bool = True,
):
    """A :class:`TensorSpec`: 0-d to 4-d, possibly zero-size, float32 or float64, any layout."""
    if shape is None:
        shape = draw(shapes(min_ndim, max_ndim, zero_size=zero_size), label="shape")
    shape = tuple(shape)
    dtype = draw(st.sampled_from(dtypes), label="dtype")
    layout = draw(
        st.sampled_from([name for name in _layouts_for(shape) if name in layouts] or ["contiguous"]), label="layout"
    )
    spec = TensorSpec(shape, dtype, layout, (), bool(requires_grad))
    count = math.prod(spec.base_shape)
    vals = draw(value_tuples(count), label="values")
    rg = draw(st.booleans(), label="requires_grad") if requires_grad is None else requires_grad
    return TensorSpec(shape, dtype, layout, vals, rg)


# ---------------------------------------------------------------------------------------- ops
@dataclass(frozen=True)
class Op:
    """One kind of program step.

    ``plan(draw, shapes, bounds)`` returns None when the op does not apply to those arguments,
    else ``(code, out_shape, out_bound)`` where ``code`` has ``{0}``, ``{1}`` for the arguments.
    """

    name: str
    arity: int
    plan: Callable
    view: bool = False
    node: str | None = None


def _broadcast(a, b):
    try:
        return tuple(torch.broadcast_shapes(a, b))
    except RuntimeError:
        return None


def _unary(template: str, bound: Callable[[float], float], limit: float = MAX_BOUND):
    def plan(draw, shapes, bounds):
        if bounds[0] > limit:
            return None
        return template, shapes[0], bound(bounds[0])

    return plan


def _binary(template: str, bound: Callable[[float, float], float]):
    def plan(draw, shapes, bounds):
        shape = _broadcast(shapes[0], shapes[1])
        if shape is None or math.prod(shape) > MAX_NUMEL:
            return None
        return template, shape, bound(bounds[0], bounds[1])

    return plan


def _scale(draw, shapes, bounds):
    c = draw(st.sampled_from([0.5, -1.5, 2.0, -0.25]), label="scale")
    return "{0} * " + repr(c), shapes[0], bounds[0] * abs(c)


def _sum_all(draw, shapes, bounds):
    return "{0}.sum()", (), bounds[0] * max(1, math.prod(shapes[0]))


def _sum_dim(draw, shapes, bounds):
    shape = shapes[0]
    if not shape:
        return None
    d = draw(st.integers(0, len(shape) - 1), label="dim")
    keep = draw(st.booleans(), label="keepdim")
    out = shape[:d] + ((1,) if keep else ()) + shape[d + 1 :]
    return f"{{0}}.sum(dim={d}, keepdim={keep})", out, bounds[0] * max(1, shape[d])


def _mean_dim(draw, shapes, bounds):
    shape = shapes[0]
    dims = [d for d, n in enumerate(shape) if n > 0]
    if not dims:
        return None
    d = draw(st.sampled_from(dims), label="dim")
    return f"{{0}}.mean(dim={d})", shape[:d] + shape[d + 1 :], bounds[0]


def _matmul(draw, shapes, bounds):
    a, b = shapes
    if len(a) not in (1, 2) or len(b) not in (1, 2):
        return None
    if a[-1] == b[0]:
        return "{0} @ {1}", a[:-1] + b[1:], bounds[0] * bounds[1] * max(1, a[-1])
    if len(a) == len(b) == 2 and a[-1] == b[-1]:  # same-shaped matrices: a @ b^T
        return "{0} @ {1}.transpose(0, 1)", (a[0], b[0]), bounds[0] * bounds[1] * max(1, a[-1])
    return None


def _transpose(draw, shapes, bounds):
    shape = shapes[0]
    if len(shape) < 2:
        return None
    d0 = draw(st.integers(0, len(shape) - 2), label="dim0")
    d1 = draw(st.integers(d0 + 1, len(shape) - 1), label="dim1")
    out = list(shape)
    out[d0], out[d1] = out[d1], out[d0]
    return f"{{0}}.transpose({d0}, {d1})", tuple(out), bounds[0]


def _unsqueeze(draw, shapes, bounds):
    shape = shapes[0]
    if len(shape) >= MAX_NDIM:
        return None
    d = draw(st.integers(0, len(shape)), label="dim")
    return f"{{0}}.unsqueeze({d})", shape[:d] + (1,) + shape[d:], bounds[0]


def _select(draw, shapes, bounds):
    shape = shapes[0]
    if not shape or shape[0] == 0:
        return None
    i = draw(st.integers(0, shape[0] - 1), label="index")
    return f"{{0}}[{i}]", shape[1:], bounds[0]


def _narrow(draw, shapes, bounds):
    shape = shapes[0]
    dims = [d for d, n in enumerate(shape) if n >= 1]
    if not dims:
        return None
    d = draw(st.sampled_from(dims), label="dim")
    start = draw(st.integers(0, shape[d] - 1), label="start")
    length = draw(st.integers(1, shape[d] - start), label="length")
    out = shape[:d] + (length,) + shape[d + 1 :]
    return f"{{0}}.narrow({d}, {start}, {length})", out, bounds[0]


def _expand(draw, shapes, bounds):
    shape = shapes[0]
    n = draw(st.integers(2, 3), label="copies")
    if len(shape) >= MAX_NDIM or n * math.prod(shape) > MAX_NUMEL:
        return None
    out = (n,) + shape
    return f"{{0}}.expand({', '.join(map(str, out))})", out, bounds[0]


def _reshape(draw, shapes, bounds):
    return "{0}.reshape(-1)", (math.prod(shapes[0]),), bounds[0]


def _cat(draw, shapes, bounds):
    a, b = shapes
    if len(a) != len(b) or not a:
        return None
    dims = [d for d in range(len(a)) if a[:d] + a[d + 1 :] == b[:d] + b[d + 1 :]]
    if not dims:
        return None
    d = draw(st.sampled_from(dims), label="dim")
    out = a[:d] + (a[d] + b[d],) + a[d + 1 :]
    if math.prod(out) > MAX_NUMEL:
        return None
    return f"torch.cat([{{0}}, {{1}}], dim={d})", out, max(bounds)


OPS: tuple[Op, ...] = (
    Op("sin", 1, _unary("torch.sin({0})", lambda b: min(b, 1.0)), node=r"^SinBackward\d+$"),
    Op("cos", 1, _unary("torch.cos({0})", lambda b: 1.0), node=r"^CosBackward\d+$"),
    Op("tanh", 1, _unary("torch.tanh({0})", lambda b: min(b, 1.0)), node=r"^TanhBackward\d+$"),
    Op("sigmoid", 1, _unary("torch.sigmoid({0})", lambda b: 1.0), node=r"^SigmoidBackward\d+$"),
    Op("exp", 1, _unary("torch.exp({0})", math.exp, limit=3.0), node=r"^ExpBackward\d+$"),
    Op("softplus", 1, _unary("torch.nn.functional.softplus({0})", lambda b: b + 1.0), node=r"^SoftplusBackward\d+$"),
    Op("square", 1, _unary("{0} ** 2", lambda b: b * b, limit=30.0), node=r"^PowBackward\d+$"),
    Op("scale", 1, _scale, node=r"^MulBackward\d+$"),
    Op("add", 2, _binary("{0} + {1}", lambda a, b: a + b), node=r"^AddBackward\d+$"),
    Op("sub", 2, _binary("{0} - {1}", lambda a, b: a + b), node=r"^SubBackward\d+$"),
    Op("mul", 2, _binary("{0} * {1}", lambda a, b: a * b), node=r"^MulBackward\d+$"),
    Op("div", 2, _binary("{0} / (1 + {1} ** 2)", lambda a, b: a), node=r"^DivBackward\d+$"),
    Op("sum", 1, _sum_all, node=r"^SumBackward\d+$"),
    Op("sum_dim", 1, _sum_dim, node=r"^SumBackward\d+$"),
    Op("mean_dim", 1, _mean_dim, node=r"^MeanBackward\d+$"),
    Op("matmul", 2, _matmul),
    Op("transpose", 1, _transpose, view=True, node=r"^TransposeBackward\d+$"),
    Op("unsqueeze", 1, _unsqueeze, view=True, node=r"^UnsqueezeBackward\d+$"),
    Op("select", 1, _select, view=True, node=r"^SelectBackward\d+$"),
    Op("narrow", 1, _narrow, view=True, node=r"^(Narrow|Slice)Backward\d+$"),
    Op("expand", 1, _expand, view=True, node=r"^ExpandBackward\d+$"),
    Op("reshape", 1, _reshape),
    Op("cat", 2, _cat, node=r"^CatBackward\d+$"),
)
#: Steps drawn from the derivative atlas: its pointwise entries that are smooth on the whole real
#: line, each executed as the entry's own code (``F`` bound as the atlas binds it, so that a
#: program's repro needs only ``import torch``).
ATLAS_OPS: tuple[Op, ...] = tuple(
    Op(
        name,
        1,
        _unary(f"(lambda a, F=torch.nn.functional: {TABLE[name].code})({{0}})", lambda b, s=slope, c=offset: s * b + c),
    )
    for name, (slope, offset) in PROGRAM_SAFE.items()
)
OPS = OPS + ATLAS_OPS
OPS_BY_NAME = {op.name: op for op in OPS}


def _leaf_shape(draw, base: tuple[int, ...]) -> tuple[int, ...]:
    kind = draw(st.sampled_from(["same", "ones", "suffix", "scalar"]), label="leaf shape")
    if kind == "same" or not base:
        return base
    if kind == "ones":
        return tuple(1 if draw(st.booleans(), label="broadcast dim") else n for n in base)
    if kind == "suffix":
        return base[draw(st.integers(1, len(base)), label="suffix from") :]
    return ()


@st.composite
def programs(
    draw,
    min_leaves: int = 1,
    max_leaves: int = 3,
    min_ops: int = 2,
    max_ops: int = 12,
    dtypes=FLOAT_DTYPES,
    ops: tuple[Op, ...] = OPS,
    all_require_grad: bool = False,
    zero_size: bool = True,
):
    """A :class:`Program`: a DAG of ``min_ops``..``max_ops`` steps over 1-3 leaves.

    It reaches fan-out (a value read twice), broadcasting, reductions, matmul, views of leaves
    and of intermediates, non-contiguous leaves, zero-size tensors, and both float dtypes.
    """
    dtype = draw(st.sampled_from(dtypes), label="dtype")
    if draw(st.integers(0, 4), label="4-d base if 0") == 0:
        base = draw(shapes(4, 4, max_side=2, zero_size=zero_size), label="base shape")
    else:
        base = draw(shapes(0, 3, zero_size=zero_size), label="base shape")
    n_leaves = draw(st.integers(min_leaves, max_leaves), label="leaves")
    leaves = []
    for i in range(n_leaves):
        shape = _leaf_shape(draw, base)
        rg = True if all_require_grad or i == 0 else None
        leaves.append(draw(tensors(shape=shape, dtypes=(dtype,), requires_grad=rg), label=f"x{i}"))
    names = [f"x{i}" for i in range(n_leaves)]
    shape_of = {n: leaf.shape for n, leaf in zip(names, leaves)}
    bound_of = {n: 2.0 for n in names}
    steps: list[Step] = []
    n_steps = draw(st.integers(min_ops, max_ops), label="steps")
    for k in range(n_steps):
        for _attempt in range(6):
            op = draw(st.sampled_from(ops), label="op")
            # Prefer recent values so programs grow deep, not only wide.
            args = tuple(
                names[-1 - draw(st.integers(0, len(names) - 1), label="arg (0 = newest)")] for _ in range(op.arity)
            )
            planned = op.plan(draw, [shape_of[a] for a in args], [bound_of[a] for a in args])
            if planned is not None and planned[2] <= MAX_BOUND and math.prod(planned[1]) <= MAX_NUMEL:
                break
        else:
            continue
        template, out_shape, out_bound = planned
        out = f"v{k}"
        steps.append(Step(out, op.name, args, template.format(*args), op.view, op.node))
        names.append(out)
        shape_of[out], bound_of[out] = out_shape, out_bound
    if not steps:
        steps.append(Step("v0", "sin", (names[0],), f"torch.sin({names[0]})", False, r"^SinBackward\d+$"))
        names.append("v0")
    final = steps[-1].out
    used = {a for s in steps for a in s.args}
    loose = [n for n in names if n not in used and n != final and n in shape_of]
    if loose:
        # Connect every value nobody read, so every leaf reaches the output.
        joined = " + ".join(f"{n}.sum()" for n in loose)
        steps.append(Step("out", "join", (final, *loose), f"{final} + ({joined})", False, r"^AddBackward\d+$"))
        final = "out"
    return Program(tuple(leaves), tuple(steps), final)
