"""Custom ``torch.autograd.Function``: forward, backward, ctx, and the checks autograd makes on them.

The Functions are defined at module level so they can be imported (and pickled) by name.
"""

from __future__ import annotations

import torch
from hypothesis import strategies as st
from torch.autograd.function import once_differentiable

from specs.engine.contracts import ErrorContract, Phase, WarningContract
from specs.engine.expect import EXACT, Tolerance, expect, expect_close
from specs.engine.oracles import FD_TOLERANCE, finite_difference_gradients
from specs.engine.registry import Family, record, rule
from specs.engine.script import literal
from specs.engine.sections import Section
from specs.generators.program import TensorSpec
from specs.generators.strategies import tensors

FAMILY = Family(
    name="custom-function",
    title="Custom autograd functions",
    summary="Writing forward and backward yourself: ctx, saved tensors, the checks on what backward "
    "returns, in-place and non-differentiable outputs, torch.func support, and gradcheck.",
    gallery="plot_70_custom_function.py",
)


#: An analytic gradient against autograd running the same formula in the same dtype.
ANALYTIC = {
    torch.float32: Tolerance(1e-5, 1e-6, "float32: the same formula, evaluated in another order"),
    torch.float64: Tolerance(1e-12, 1e-13, "float64: the same formula, evaluated in another order"),
}

GRAD_FOR_NON_TENSOR = ErrorContract(
    RuntimeError,
    r"function \w+ returned a gradient different than None at position \d+, but the corresponding "
    r"forward input was not a Variable",
    Phase.BACKWARD,
)
WRONG_COUNT = ErrorContract(
    RuntimeError,
    r"function \w+ returned an incorrect number of gradients \(expected \d+, got \d+\)",
    Phase.BACKWARD,
)
WRONG_SHAPE = ErrorContract(
    RuntimeError,
    r"Function \w+ returned an invalid gradient at index \d+ - got \[[\d, ]*\] but expected shape "
    r"compatible with \[[\d, ]*\]",
    Phase.BACKWARD,
)
ONCE_DIFFERENTIABLE = ErrorContract(
    RuntimeError,
    r"trying to differentiate twice a function that was marked with @once_differentiable",
    Phase.SECOND_BACKWARD,
)
DIRTY_LEAF = ErrorContract(
    RuntimeError,
    r"a leaf Variable that requires grad has been used in an in-place operation",
    Phase.RECORD,
    wording="'has been used', where a plain in-place op on a leaf says 'is being used'",
)
DIRTY_NOT_INPUT = WarningContract(UserWarning, r"ctx\.mark_dirty\(\) received a tensor that was not an input")
DIRTY_NOT_RETURNED = ErrorContract(
    RuntimeError,
    r"Some elements marked as dirty during the forward method were not returned as output",
    Phase.RECORD,
)
DIRTY_LEAF_VIEW = ErrorContract(
    RuntimeError, r"a view of a leaf Variable that requires grad is being used in an in-place operation", Phase.RECORD
)
NO_VMAP_RULE = ErrorContract(
    RuntimeError,
    r"You tried to vmap over \w+, but it does not have vmap support\. Please override and implement "
    r"the vmap staticmethod or set generate_vmap_rule=True",
    Phase.RECORD,
)


def _using(*functions: type) -> str:
    """The repro line importing ``functions`` (defined in this module) by name."""
    return f"from {__name__} import {', '.join(f.__name__ for f in functions)}\n"


# ------------------------------------------------------------------------------- the Functions
class SeedReLU(torch.autograd.Function):
    """The seed tutorial's custom ReLU, as written there."""

    @staticmethod
    def forward(ctx, input_tensor):
        ctx.save_for_backward(input_tensor)
        return input_tensor.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_output):
        (input_tensor,) = ctx.saved_tensors
        grad_input = grad_output.clone()
        grad_input[input_tensor < 0] = 0
        return grad_input


class Cube(torch.autograd.Function):
    """x ** 3 with a backward written in torch ops, so it is itself differentiable."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x**2


class WrongCube(torch.autograd.Function):
    """The anti-pattern: x ** 3 with a wrong derivative (2x^2 instead of 3x^2)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 2 * x**2


class OnceCube(torch.autograd.Function):
    """x ** 3 whose backward is declared not differentiable."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x**2


class ScaledProduct(torch.autograd.Function):
    """a * b * scale for tensors a, b and a Python float scale; computes only the gradients needed."""

    @staticmethod
    def forward(ctx, a, b, scale):
        ctx.save_for_backward(a, b)
        ctx.scale = scale
        return a * b * scale

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        ctx.needs_seen = ctx.needs_input_grad
        grad_a = grad * b * ctx.scale if ctx.needs_input_grad[0] else None
        grad_b = grad * a * ctx.scale if ctx.needs_input_grad[1] else None
        return grad_a, grad_b, None


class GradForScale(torch.autograd.Function):
    """The anti-pattern: a gradient returned for the non-tensor input ``scale``."""

    @staticmethod
    def forward(ctx, a, scale):
        return a * scale

    @staticmethod
    def backward(ctx, grad):
        return grad, grad.sum()


class OneGradForTwo(torch.autograd.Function):
    """The anti-pattern: two tensor inputs, one gradient returned."""

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, grad):
        return (grad,)


class GradOfWrongShape(torch.autograd.Function):
    """The anti-pattern: a gradient with one element too many along the last dimension."""

    @staticmethod
    def forward(ctx, a):
        return a * 2

    @staticmethod
    def backward(ctx, grad):
        return torch.cat([grad, grad[..., :1]], dim=-1) * 2


class ScaleWithTrailing(torch.autograd.Function):
    """``a * scale``, whose backward returns ``trailing`` extra values after its three gradients ("none" for a
    None, "zeros" for a tensor of zeros like ``a``)."""

    @staticmethod
    def forward(ctx, a, scale, trailing):
        ctx.scale, ctx.trailing = scale, trailing
        return a * scale

    @staticmethod
    def backward(ctx, grad):
        extra = [None if kind == "none" else torch.zeros_like(grad) for kind in ctx.trailing]
        return (grad * ctx.scale, None, None, *extra)


class DoubleInPlace(torch.autograd.Function):
    """Doubles its input in place and says so with mark_dirty."""

    @staticmethod
    def forward(ctx, x):
        x.mul_(2)
        ctx.mark_dirty(x)
        return x

    @staticmethod
    def backward(ctx, grad):
        return grad * 2


class DirtyNotInput(torch.autograd.Function):
    """Marks dirty a tensor it made itself (not an input), and returns it."""

    @staticmethod
    def forward(ctx, x):
        y = x.clone()
        y.add_(1)
        ctx.mark_dirty(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        return grad


class DirtyNotReturned(torch.autograd.Function):
    """Doubles its input in place and marks it dirty, but returns a copy instead of the input."""

    @staticmethod
    def forward(ctx, x):
        x.mul_(2)
        ctx.mark_dirty(x)
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * 2


class SortWithIndices(torch.autograd.Function):
    """Sorted values (differentiable) and their indices (marked non-differentiable)."""

    @staticmethod
    def forward(ctx, x):
        values, indices = torch.sort(x, dim=-1)
        ctx.mark_non_differentiable(indices)
        ctx.save_for_backward(indices)
        return values, indices

    @staticmethod
    def backward(ctx, grad_values, grad_indices):
        ctx.grad_indices_seen = grad_indices
        (indices,) = ctx.saved_tensors
        return torch.zeros_like(grad_values).scatter(-1, indices, grad_values)


class ReluWithMask(torch.autograd.Function):
    """relu(x) (differentiable) and its floating-point mask x > 0 (marked non-differentiable)."""

    @staticmethod
    def forward(ctx, x):
        mask = (x > 0).to(x.dtype)
        ctx.mark_non_differentiable(mask)
        ctx.save_for_backward(mask)
        return x * mask, mask

    @staticmethod
    def backward(ctx, grad_values, grad_mask):
        ctx.grad_mask_seen = grad_mask
        (mask,) = ctx.saved_tensors
        return grad_values * mask


class TwoOutputs(torch.autograd.Function):
    """(2x, 3x); ``materialize`` is passed to ctx.set_materialize_grads."""

    @staticmethod
    def forward(ctx, x, materialize):
        ctx.set_materialize_grads(materialize)
        return x * 2, x * 3

    @staticmethod
    def backward(ctx, grad_first, grad_second):
        ctx.grads_seen = (grad_first, grad_second)
        total = torch.zeros_like(grad_first) if grad_first is not None else None
        for grad, factor in ((grad_first, 2), (grad_second, 3)):
            if grad is not None:
                total = grad * factor if total is None else total + grad * factor
        return total, None


class SinSetupContext(torch.autograd.Function):
    """sin in the setup_context style (torch >= 2.0), with a generated vmap rule."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return torch.sin(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * torch.cos(x)


class SinWithoutVmap(torch.autograd.Function):
    """sin in the setup_context style, with neither a vmap staticmethod nor generate_vmap_rule."""

    @staticmethod
    def forward(x):
        return torch.sin(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * torch.cos(x)


class RecordsGradMode(torch.autograd.Function):
    """Identity times one, remembering whether grad mode was on in forward and in backward."""

    @staticmethod
    def forward(ctx, x):
        ctx.forward_grad_enabled = torch.is_grad_enabled()
        return x * 1

    @staticmethod
    def backward(ctx, grad):
        ctx.backward_grad_enabled = torch.is_grad_enabled()
        return grad


# ------------------------------------------------------------------------------- the rules
def _cotangent(data, shape, dtype):
    return data.draw(
        tensors(shape=shape, dtypes=(dtype,), layouts=("contiguous",), requires_grad=False), label="cotangent"
    ).make()


@rule(
    "custom-function.seed-relu",
    section=Section.CUSTOM,
    docs="custom-function-seed",
    given=dict(spec=tensors(), data=st.data()),
)
def seed_relu(spec, data):
    """The seed tutorial's custom ReLU returns max(x, 0) and passes the upstream gradient where x >= 0 and zero where x < 0; it agrees with torch.relu everywhere except at x == 0, where torch.relu's gradient is 0."""
    x = spec.make()
    y = SeedReLU.apply(x)
    v = _cotangent(data, spec.shape, spec.dtype)
    y.backward(v)
    plain = x.detach()
    repro = (
        f"{_using(SeedReLU)}x = {spec.expression()}\ny = SeedReLU.apply(x)\ny.backward({literal(v)})\nprint(y, x.grad)"
    )
    expect_close(y.detach(), plain.clamp(min=0), tolerance=EXACT, what="the output", repro=repro)
    expect_close(x.grad, torch.where(plain >= 0, v, torch.zeros_like(v)), tolerance=EXACT, what="x.grad", repro=repro)
    native = spec.make()
    torch.relu(native).backward(v)
    off_zero = plain != 0
    expect_close(
        x.grad[off_zero],
        native.grad[off_zero],
        tolerance=EXACT,
        what="x.grad against torch.relu where x != 0",
        repro=repro,
    )


@rule(
    "custom-function.saved-tensors-reach-backward",
    section=Section.CUSTOM,
    docs="custom-function-ctx",
    given=dict(spec=tensors(dtypes=(torch.float64,)), data=st.data()),
    references=("docs: Extending torch.autograd",),
)
def saved_tensors_reach_backward(spec, data):
    """Tensors passed to ctx.save_for_backward come back from ctx.saved_tensors in backward, so a backward written from them (here x ** 3) agrees with finite differences."""
    x = spec.make()
    v = _cotangent(data, spec.shape, spec.dtype)
    Cube.apply(x).backward(v)
    expected = finite_difference_gradients(lambda t: t**3, [x], [0], v)[0]
    expect_close(
        x.grad,
        expected,
        tolerance=FD_TOLERANCE,
        what="Cube's gradient against finite differences",
        repro=f"{_using(Cube)}x = {spec.expression()}\nCube.apply(x).backward({literal(v)})\nprint(x.grad)",
    )


@st.composite
def _two_operands(draw):
    shape = draw(st.sampled_from([(), (3,), (2, 3)]), label="shape")
    dtype = draw(st.sampled_from([torch.float32, torch.float64]), label="dtype")
    a = draw(tensors(shape=shape, dtypes=(dtype,), requires_grad=None), label="a")
    b = draw(tensors(shape=shape, dtypes=(dtype,), requires_grad=None), label="b")
    return a, b, draw(st.sampled_from([0.5, -2.0]), label="scale")


@rule(
    "custom-function.needs-input-grad",
    section=Section.CUSTOM,
    docs="custom-function-needs-input-grad",
    given=dict(case=_two_operands().filter(lambda c: c[0].requires_grad or c[1].requires_grad)),
    references=("docs: Extending torch.autograd (needs_input_grad)",),
)
def needs_input_grad(case):
    """ctx.needs_input_grad has one bool per forward input, true exactly for the tensors that require grad (never for non-tensors); backward returns None for the others and the needed gradients are right."""
    a_spec, b_spec, scale = case
    a, b = a_spec.make(), b_spec.make()
    out = ScaledProduct.apply(a, b, scale)
    out.sum().backward()
    wanted = (a_spec.requires_grad, b_spec.requires_grad, False)
    expect(
        tuple(out.grad_fn.needs_seen) == wanted,
        what="ctx.needs_input_grad in backward",
        expected=wanted,
        observed=tuple(out.grad_fn.needs_seen),
        repro=f"{_using(ScaledProduct)}a = {a_spec.expression()}\n"
        f"b = {b_spec.expression()}\nout = ScaledProduct.apply(a, b, {scale})\nout.sum().backward()\n"
        "print(out.grad_fn.needs_seen)",
    )
    for t, other, needed in ((a, b, wanted[0]), (b, a, wanted[1])):
        if needed:
            expect_close(
                t.grad, (other * scale).detach().expand_as(t), tolerance=ANALYTIC[t.dtype], what="the needed gradient"
            )
        else:
            expect(
                t.grad is None,
                what="no gradient for an input that does not require grad",
                expected=None,
                observed=t.grad,
            )


@rule(
    "custom-function.non-tensor-inputs-get-none",
    section=Section.CUSTOM,
    docs="custom-function-needs-input-grad",
    given=dict(spec=tensors(), scale=st.sampled_from([0.5, 3.0])),
    contracts=(GRAD_FOR_NON_TENSOR,),
    references=("test_autograd.py::TestAutograd::test_custom_function_non_tensor_inputs_outputs",),
)
def non_tensor_inputs_get_none(spec, scale):
    """backward must return None in the position of a non-tensor forward input: returning a tensor there raises a RuntimeError at backward."""
    GRAD_FOR_NON_TENSOR.check(
        lambda: GradForScale.apply(spec.make(), scale).sum(),
        repro=f"{_using(GradForScale)}x = {spec.expression()}\nGradForScale.apply(x, {scale}).sum().backward()",
    )


@rule(
    "custom-function.wrong-gradient-count-raises",
    section=Section.CUSTOM,
    docs="custom-function-checks",
    given=dict(spec=tensors()),
    contracts=(WRONG_COUNT,),
)
def wrong_gradient_count_raises(spec):
    """backward must return one gradient (or None) per forward input: returning fewer raises a RuntimeError at backward that gives both counts."""
    message = WRONG_COUNT.check(
        lambda: OneGradForTwo.apply(spec.make(), spec.make()).sum(),
        repro=f"{_using(OneGradForTwo)}x = {spec.expression()}\nOneGradForTwo.apply(x, x).sum().backward()",
    )
    expect(
        "(expected 2, got 1)" in message,
        what="the counts in the message",
        expected="(expected 2, got 1)",
        observed=message,
    )


#: The canonical input of the trailing-values rule.
PAIR = TensorSpec((2,), torch.float64, "contiguous", (0.5, -1.0))


@rule(
    "custom-function.extra-trailing-nones-are-ignored",
    section=Section.CUSTOM,
    docs="custom-function-checks",
    given=dict(
        spec=tensors(),
        scale=st.sampled_from([-2.0, -0.5, 0.5, 3.0]),
        nones=st.integers(1, 3),
        value_last=st.booleans(),
    ),
    contracts=(WRONG_COUNT,),
    examples=(
        dict(spec=PAIR, scale=3.0, nones=2, value_last=False),
        dict(spec=PAIR, scale=3.0, nones=1, value_last=True),
    ),
    references=("test_autograd.py::TestAutograd::test_too_many_grads",),
)
def extra_trailing_nones_are_ignored(spec, scale, nones, value_last):
    """backward may return more values than forward had inputs when every extra one is None: they are dropped and the gradients are those of the declared inputs; an extra value that is a tensor, even after Nones, raises a RuntimeError at backward giving both counts."""
    trailing = ("none",) * nones + (("zeros",) if value_last else ())
    repro = (
        f"{_using(ScaleWithTrailing)}x = {spec.expression()}\n"
        f"ScaleWithTrailing.apply(x, {scale}, {trailing!r}).sum().backward()\nprint(x.grad)"
    )
    if value_last:
        message = WRONG_COUNT.check(lambda: ScaleWithTrailing.apply(spec.make(), scale, trailing).sum(), repro=repro)
        counts = f"(expected 3, got {3 + len(trailing)})"
        expect(counts in message, what="the counts in the message", expected=counts, observed=message, repro=repro)
        if spec is PAIR:
            record(f"{nones} None(s) then a tensor", message)
        return
    x = spec.make()
    ScaleWithTrailing.apply(x, scale, trailing).sum().backward()
    expected = torch.full(spec.shape, scale, dtype=spec.dtype)
    expect_close(x.grad, expected, tolerance=EXACT, what=f"x.grad with {nones} trailing None(s)", repro=repro)
    if spec is PAIR:
        record(f"{nones} trailing None(s): x.grad", [round(v, 6) for v in x.grad.tolist()])


@rule(
    "custom-function.wrong-gradient-shape-raises",
    section=Section.CUSTOM,
    docs="custom-function-checks",
    given=dict(spec=tensors(min_ndim=1).filter(lambda s: s.shape[-1] >= 2)),
    contracts=(WRONG_SHAPE,),
    references=("test_autograd.py::TestAutograd::test_invalid_gradients",),
)
def wrong_gradient_shape_raises(spec):
    """A gradient whose shape does not broadcast to its input's shape raises a RuntimeError at backward naming both shapes."""
    message = WRONG_SHAPE.check(
        lambda: GradOfWrongShape.apply(spec.make()).sum(),
        repro=f"{_using(GradOfWrongShape)}x = {spec.expression()}\nGradOfWrongShape.apply(x).sum().backward()",
    )
    expected = f"expected shape compatible with [{', '.join(map(str, spec.shape))}]"
    expect(expected in message, what="the input's shape in the message", expected=expected, observed=message)


@rule(
    "custom-function.once-differentiable-refuses-double-backward",
    section=Section.CUSTOM,
    docs="custom-function-once-differentiable",
    given=dict(spec=tensors(dtypes=(torch.float64,))),
    contracts=(ONCE_DIFFERENTIABLE,),
    references=("test_autograd.py::TestAutograd::test_once_differentiable",),
)
def once_differentiable_refuses_double_backward(spec):
    """A backward decorated with @once_differentiable gives correct first derivatives, but differentiating through it again raises a RuntimeError."""
    x = spec.make()
    (first,) = torch.autograd.grad((OnceCube.apply(x) * x).sum(), x, create_graph=True)
    expect_close(first.detach(), 4 * x.detach() ** 3, tolerance=ANALYTIC[torch.float64], what="d(x^3 * x)/dx = 4x^3")
    state = {}

    def backward(out):
        (state["grad"],) = torch.autograd.grad(out, x, create_graph=True)

    ONCE_DIFFERENTIABLE.check(
        lambda: (OnceCube.apply(x) * x).sum(),
        backward=backward,
        again=lambda out: state["grad"].sum().backward(),
        repro=f"{_using(OnceCube)}x = {spec.expression()}\n"
        "(g,) = torch.autograd.grad((OnceCube.apply(x) * x).sum(), x, create_graph=True)\n"
        "g.sum().backward()",
    )


@rule(
    "custom-function.mark-dirty-for-in-place",
    section=Section.CUSTOM,
    docs="custom-function-mark-dirty",
    given=dict(spec=tensors(layouts=("contiguous",)), data=st.data()),
    contracts=(DIRTY_LEAF,),
    references=("docs: Extending torch.autograd (mark_dirty)",),
)
def mark_dirty_for_in_place(spec, data):
    """A Function that writes its input in place and calls ctx.mark_dirty returns that same tensor, with a bumped version and its own node as grad_fn, and its backward is used; on a leaf that requires grad it raises a RuntimeError."""
    x = spec.make()
    h = x * 1.0
    before = h._version
    out = DoubleInPlace.apply(h)
    v = _cotangent(data, spec.shape, spec.dtype)
    repro = (
        f"{_using(DoubleInPlace)}x = {spec.expression()}\nh = x * 1.0\nbefore = h._version\n"
        f"out = DoubleInPlace.apply(h)\nprint(out is h, h._version - before, h.grad_fn)\n"
        f"out.backward({literal(v)})\nprint(x.grad)"
    )
    expect(
        out is h and h._version > before,
        what="the dirtied input is returned, with a new version",
        expected="same object, bumped version",
        observed=(out is h, h._version - before),
        repro=repro,
    )
    expect(
        type(h.grad_fn).__name__.startswith("DoubleInPlace"),
        what="h.grad_fn is the Function's node",
        expected="DoubleInPlaceBackward",
        observed=type(h.grad_fn).__name__,
        repro=repro,
    )
    out.backward(v)
    expect_close(x.grad, 2 * v, tolerance=EXACT, what="x.grad through the custom backward", repro=repro)
    DIRTY_LEAF.check(
        lambda: DoubleInPlace.apply(spec.make()),
        repro=f"{_using(DoubleInPlace)}DoubleInPlace.apply({spec.expression()})",
    )


@rule(
    "custom-function.mark-dirty-misuse",
    section=Section.CUSTOM,
    docs="custom-function-mark-dirty",
    given=dict(spec=tensors(min_ndim=1, layouts=("contiguous",), zero_size=False), data=st.data()),
    contracts=(DIRTY_NOT_RETURNED, DIRTY_LEAF_VIEW),
    examples=(dict(spec=TensorSpec((3,), torch.float64, "contiguous", (1.0, -2.0, 0.5), True), data=None),),
    references=("test_autograd.py::TestAutograd::test_autograd_python_custom_function_inplace",),
)
def mark_dirty_misuse(spec, data):
    """ctx.mark_dirty on a tensor that is not an input only warns (a UserWarning) and the custom backward is still used; a dirtied input that is not returned raises a RuntimeError while recording; an in-place Function applied to a view of a non-leaf works and its gradient reaches the base, while on a view of a leaf that requires grad it raises a RuntimeError."""
    x = spec.make()
    rows = spec.shape[0]
    k = data.draw(st.integers(1, rows), label="view rows") if data is not None else rows
    v = _cotangent(data, spec.shape, spec.dtype) if data is not None else torch.ones(spec.shape, dtype=spec.dtype)
    using = _using(DirtyNotInput, DirtyNotReturned, DoubleInPlace)
    out = DIRTY_NOT_INPUT.check(
        lambda: DirtyNotInput.apply(x), repro=f"{using}x = {spec.expression()}\nDirtyNotInput.apply(x)"
    )
    (grad,) = torch.autograd.grad(out, x, v)
    expect_close(grad, v, tolerance=EXACT, what="the gradient through the custom backward despite the warning")
    DIRTY_NOT_RETURNED.check(
        lambda: DirtyNotReturned.apply(x * 1.0),
        repro=f"{using}DirtyNotReturned.apply({spec.expression()} * 1.0)",
    )
    h = x * 1.0
    DoubleInPlace.apply(h.narrow(0, 0, k))
    h.backward(v)
    expected = v.clone()
    expected[:k] *= 2
    repro = (
        f"{using}x = {spec.expression()}\nh = x * 1.0\nDoubleInPlace.apply(h.narrow(0, 0, {k}))\n"
        f"h.backward({literal(v)})\nprint(x.grad)"
    )
    expect_close(
        x.grad, expected, tolerance=EXACT, what=f"x.grad after doubling the first {k} rows of h in place", repro=repro
    )
    DIRTY_LEAF_VIEW.check(
        lambda: DoubleInPlace.apply(x.narrow(0, 0, k)),
        repro=f"{using}DoubleInPlace.apply({spec.expression()}.narrow(0, 0, {k}))",
    )


@rule(
    "custom-function.mark-non-differentiable",
    section=Section.CUSTOM,
    docs="custom-function-non-differentiable",
    given=dict(spec=tensors(min_ndim=1, dtypes=(torch.float64,)), data=st.data()),
    references=("test_autograd.py::TestAutograd::test_mark_non_differentiable",),
)
def mark_non_differentiable(spec, data):
    """An output passed to ctx.mark_non_differentiable, an integer one (sort's indices) or a floating-point one (relu's mask), does not require grad; backward still receives a zero-filled gradient for it, and the other outputs' gradients are right."""
    x = spec.make()
    values, indices = SortWithIndices.apply(x)
    expect(
        (indices.requires_grad, indices.grad_fn) == (False, None),
        what="the marked output is not tracked",
        expected=(False, None),
        observed=(indices.requires_grad, indices.grad_fn),
    )
    expect(values.requires_grad, what="the other output is tracked", expected=True, observed=values.requires_grad)
    v = _cotangent(data, spec.shape, spec.dtype)
    values.backward(v)
    seen = values.grad_fn.grad_indices_seen
    expect(
        seen is not None and seen.shape == indices.shape and not seen.any(),
        what="backward's gradient for the marked output",
        expected="zeros of the indices' shape",
        observed=seen,
    )
    reference = spec.make()
    torch.sort(reference, dim=-1).values.backward(v)
    expect_close(
        x.grad,
        reference.grad,
        tolerance=EXACT,
        what="x.grad against torch.sort's gradient",
        repro=f"{_using(SortWithIndices)}x = {spec.expression()}\n"
        f"SortWithIndices.apply(x)[0].backward({literal(v)})\nprint(x.grad)",
    )
    # A floating-point output would be tracked if the mark were lost (integer ones never are).
    x = spec.make()
    relu, mask = ReluWithMask.apply(x)
    repro = (
        f"{_using(ReluWithMask)}x = {spec.expression()}\nrelu, mask = ReluWithMask.apply(x)\n"
        f"relu.backward({literal(v)})\nprint(mask.requires_grad, mask.grad_fn, x.grad)"
    )
    expect(
        (mask.requires_grad, mask.grad_fn) == (False, None),
        what="the marked floating-point output is not tracked",
        expected=(False, None),
        observed=(mask.requires_grad, mask.grad_fn),
        repro=repro,
    )
    relu.backward(v)
    seen = relu.grad_fn.grad_mask_seen
    expect(
        seen is not None and seen.shape == mask.shape and not seen.any(),
        what="backward's gradient for the marked mask",
        expected="zeros of the mask's shape",
        observed=seen,
        repro=repro,
    )
    expect_close(
        x.grad,
        v * (x.detach() > 0).to(v.dtype),
        tolerance=EXACT,
        what="x.grad of relu: v where x > 0, else 0",
        repro=repro,
    )


@rule(
    "custom-function.set-materialize-grads",
    section=Section.CUSTOM,
    docs="custom-function-non-differentiable",
    given=dict(spec=tensors(), materialize=st.sampled_from([True, False])),
    references=(
        "test_autograd.py::TestAutograd::test_materialize_grads",
        "test_autograd.py::TestAutograd::test_dont_materialize_grads",
    ),
)
def set_materialize_grads(spec, materialize):
    """When an output is unused, backward receives zeros for its gradient by default and None after ctx.set_materialize_grads(False)."""
    x = spec.make()
    first, _second = TwoOutputs.apply(x, materialize)
    first.sum().backward()
    unused = first.grad_fn.grads_seen[1]
    repro = (
        f"{_using(TwoOutputs)}x = {spec.expression()}\nfirst, second = TwoOutputs.apply(x, {materialize})\n"
        "first.sum().backward()\nprint(first.grad_fn.grads_seen[1], x.grad)"
    )
    if materialize:
        expect(
            unused is not None and unused.shape == x.shape and not unused.any(),
            what="the unused output's gradient",
            expected="zeros",
            observed=unused,
            repro=repro,
        )
    else:
        expect(unused is None, what="the unused output's gradient", expected=None, observed=unused, repro=repro)
    expect_close(x.grad, torch.full_like(x, 2.0), tolerance=EXACT, what="x.grad from the used output", repro=repro)


@rule(
    "custom-function.grad-mode-inside",
    section=Section.CUSTOM,
    docs="custom-function-seed",
    given=dict(spec=tensors(requires_grad=None)),
    references=("test_autograd.py::TestAutograd::test_no_grad_python_function",),
)
def grad_mode_inside(spec):
    """forward runs with grad mode off; the output requires grad only when a tensor input does; backward runs with grad mode off unless create_graph=True."""
    x = spec.make()
    out = RecordsGradMode.apply(x)
    repro = (
        f"{_using(RecordsGradMode)}x = {spec.expression()}\nout = RecordsGradMode.apply(x)\nprint(out.requires_grad)"
    )
    expect(
        out.requires_grad == spec.requires_grad,
        what="the output requires grad when an input does",
        expected=spec.requires_grad,
        observed=out.requires_grad,
        repro=repro,
    )
    if not spec.requires_grad:
        return
    expect(
        out.grad_fn.forward_grad_enabled is False,
        what="grad mode in forward",
        expected=False,
        observed=out.grad_fn.forward_grad_enabled,
        repro=repro + "\nprint(out.grad_fn.forward_grad_enabled)",
    )
    for create_graph in (False, True):
        out = RecordsGradMode.apply(x)
        torch.autograd.grad(out.sum(), x, create_graph=create_graph)
        expect(
            out.grad_fn.backward_grad_enabled is create_graph,
            what=f"grad mode in backward, create_graph={create_graph}",
            expected=create_graph,
            observed=out.grad_fn.backward_grad_enabled,
            repro=f"{repro}\ntorch.autograd.grad(out.sum(), x, create_graph={create_graph})\n"
            "print(out.grad_fn.backward_grad_enabled)",
        )


@rule(
    "custom-function.setup-context-style",
    section=Section.CUSTOM,
    docs="custom-function-torch-func",
    since="2.0",
    given=dict(spec=tensors(dtypes=(torch.float64,)), data=st.data()),
    references=("test_autograd.py::TestAutograd::test_custom_function_setup_context_simple",),
)
def setup_context_style(spec, data):
    """A Function whose forward takes no ctx and whose setup_context(ctx, inputs, output) saves what backward needs differentiates like the combined style, under backward() and under torch.func.grad."""
    x = spec.make()
    v = _cotangent(data, spec.shape, spec.dtype)
    SinSetupContext.apply(x).backward(v)
    expected = torch.cos(x.detach()) * v
    repro = (
        f"{_using(SinSetupContext)}x = {spec.expression()}\nv = {literal(v)}\nSinSetupContext.apply(x).backward(v)\n"
        "print(x.grad, torch.func.grad(lambda t: (SinSetupContext.apply(t) * v).sum())(x.detach()))"
    )
    expect_close(
        x.grad, expected, tolerance=ANALYTIC[torch.float64], what="x.grad of the setup_context-style sin", repro=repro
    )
    functional = torch.func.grad(lambda t: (SinSetupContext.apply(t) * v).sum())(x.detach())
    expect_close(
        functional,
        expected,
        tolerance=ANALYTIC[torch.float64],
        what="torch.func.grad of the same Function",
        repro=repro,
    )


@st.composite
def _batches(draw):
    batch = draw(st.integers(1, 4), label="batch")
    feature = draw(st.sampled_from([(), (3,), (2, 2)]), label="per-sample shape")
    return draw(tensors(shape=(batch, *feature), dtypes=(torch.float64,), requires_grad=False), label="x")


@rule(
    "custom-function.generated-vmap-rule",
    section=Section.CUSTOM,
    docs="custom-function-torch-func",
    since="2.0",
    given=dict(spec=_batches()),
    references=("test_autograd.py::TestAutograd::test_custom_function_vmap_defaults",),
)
def generated_vmap_rule(spec):
    """With generate_vmap_rule = True, torch.func.vmap of a Function and of its torch.func.grad give, sample by sample, what a Python loop over the batch gives."""
    x = spec.make()
    batched = torch.func.vmap(SinSetupContext.apply)(x)
    looped = torch.stack([SinSetupContext.apply(row) for row in x]) if len(x) else torch.sin(x)
    expect_close(
        batched,
        looped,
        tolerance=EXACT,
        what="vmap(f)(x) against a loop over samples",
        repro=f"{_using(SinSetupContext)}x = {spec.expression()}\nprint(torch.func.vmap(SinSetupContext.apply)(x))",
    )
    per_sample = torch.func.vmap(torch.func.grad(lambda t: SinSetupContext.apply(t).sum()))(x)
    expect_close(
        per_sample, torch.cos(x), tolerance=ANALYTIC[torch.float64], what="per-sample gradients from vmap(grad(f))"
    )


@rule(
    "custom-function.vmap-needs-a-rule",
    section=Section.CUSTOM,
    docs="custom-function-torch-func",
    since="2.0",
    given=dict(spec=_batches()),
    contracts=(NO_VMAP_RULE,),
    references=("test_autograd.py::TestAutograd::test_custom_function_vmap_defaults",),
)
def vmap_needs_a_rule(spec):
    """torch.func.vmap over a Function that has neither a vmap staticmethod nor generate_vmap_rule = True raises a RuntimeError."""
    NO_VMAP_RULE.check(
        lambda: torch.func.vmap(SinWithoutVmap.apply)(spec.make()),
        repro=f"{_using(SinWithoutVmap)}torch.func.vmap(SinWithoutVmap.apply)({spec.expression()})",
    )


#: gradcheck's own defaults for float64 (eps=1e-6, atol=1e-5, rtol=1e-3), stated here as data.
GRADCHECK = dict(eps=1e-6, atol=1e-5, rtol=1e-3)

small = tensors(dtypes=(torch.float64,), max_ndim=2, layouts=("contiguous",))


@rule(
    "custom-function.gradcheck-accepts-correct",
    section=Section.CUSTOM,
    docs="custom-function-gradcheck",
    given=dict(spec=small),
    references=("test_autograd.py::TestAutograd::test_gradcheck_single_input",),
)
def gradcheck_accepts_correct(spec):
    """A Function whose backward is right (x ** 3) passes torch.autograd.gradcheck and gradgradcheck in float64."""
    x = spec.make()
    repro = f"{_using(Cube)}x = {spec.expression()}\nprint(torch.autograd.gradcheck(Cube.apply, (x,)), torch.autograd.gradgradcheck(Cube.apply, (x,)))"
    expect(
        torch.autograd.gradcheck(Cube.apply, (x,), **GRADCHECK),
        what="gradcheck of Cube",
        expected=True,
        observed=False,
        repro=repro,
    )
    expect(
        torch.autograd.gradgradcheck(Cube.apply, (x,), **GRADCHECK),
        what="gradgradcheck of Cube",
        expected=True,
        observed=False,
        repro=repro,
    )


@rule(
    "custom-function.gradcheck-catches-wrong-backward",
    section=Section.CUSTOM,
    docs="custom-function-gradcheck",
    given=dict(spec=small.filter(lambda s: any(abs(v) >= 0.1 for v in s.values))),
    references=("test_autograd.py::TestAutograd::test_gradcheck_jacobian_mismatch",),
)
def gradcheck_catches_wrong_backward(spec):
    """gradcheck rejects a Function whose backward is wrong (2x^2 for x ** 3) wherever the error exceeds its tolerance: it raises GradcheckError, or returns False when raise_exception=False."""
    x = spec.make()
    repro = f"{_using(WrongCube)}x = {spec.expression()}\nprint(torch.autograd.gradcheck(WrongCube.apply, (x,), raise_exception=False))"
    passed = torch.autograd.gradcheck(WrongCube.apply, (x,), raise_exception=False, **GRADCHECK)
    expect(
        passed is False,
        what="gradcheck(..., raise_exception=False) of WrongCube",
        expected=False,
        observed=passed,
        repro=repro,
    )
    try:
        torch.autograd.gradcheck(WrongCube.apply, (x,), **GRADCHECK)
    except RuntimeError as error:
        expect(
            "Jacobian mismatch" in str(error),
            what="the gradcheck error",
            expected="Jacobian mismatch ...",
            observed=str(error),
            repro=repro,
        )
    else:
        raise AssertionError("gradcheck accepted a wrong backward\n" + repro)
