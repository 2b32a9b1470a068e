"""The custom Function API's edges: None gradients, returned inputs and views, jvp, func transforms, definition errors."""

from __future__ import annotations

import torch
from hypothesis import strategies as st

from specs.engine.contracts import ErrorContract, Phase, WarningContract
from specs.engine.expect import Tolerance, expect, expect_close
from specs.engine.registry import Family, Feature, record, rule
from specs.engine.script import Script
from specs.engine.sections import Section
from specs.generators.program import TensorSpec
from specs.generators.strategies import tensors

FAMILY = Family(
    name="function-api",
    title="The custom Function API, at its edges",
    summary="What torch.autograd.Function does with None gradients, inputs returned as-is, view outputs, "
    "jvp and torch.func, and what it refuses when a Function is defined or used wrongly.",
    gallery="plot_71_function_api.py",
)


SAME = Tolerance(0.0, 0.0, "the same formula on the same values")
SCALES = st.sampled_from([2.0, 0.5, -4.0])

SETUP_CONTEXT = Feature(
    "autograd.Function.setup_context (forward without ctx)", lambda: hasattr(torch.autograd.Function, "setup_context")
)
FUNC_TRANSFORMS = Feature("torch.func.grad", lambda: hasattr(torch, "func") and hasattr(torch.func, "grad"))
CLEAR_ON_ACCESS = Feature(
    "autograd.Function.clear_saved_tensors_on_access",
    lambda: hasattr(torch.autograd.Function, "clear_saved_tensors_on_access"),
)

NEEDS_JVP = ErrorContract(
    NotImplementedError,
    r"You must implement the jvp function for custom autograd.Function to use it with "
    r"forward mode AD",
    Phase.RECORD,
)
VIEW_OUTPUT_WRITTEN = ErrorContract(
    RuntimeError,
    r"Output 0 of \w+ is a view and is being modified inplace\. This view was created inside a "
    r"custom Function \(or because an input was returned as-is\)",
    Phase.RECORD,
)
NEEDS_SETUP_CONTEXT = ErrorContract(
    RuntimeError,
    r"it must override the setup_context staticmethod",
    Phase.BACKWARD,
    wording="raised by torch.func.grad, which runs forward and backward in one call",
)
READ_TWICE = ErrorContract(
    RuntimeError, r"saved_tensors can only be accessed once when clear_saved_tensors_on_access=True", Phase.BACKWARD
)
NO_FORWARD = ErrorContract(
    NotImplementedError, r"You must implement the forward function for custom autograd.Function", Phase.RECORD
)
NO_BACKWARD = ErrorContract(
    NotImplementedError,
    r"You must implement either the backward or vjp method for your custom "
    r"autograd.Function to use it with backward mode AD",
    Phase.BACKWARD,
)
BOTH_BACKWARDS = ErrorContract(
    RuntimeError, r"Implementing both 'backward' and 'vjp' for a custom Function is not allowed", Phase.BACKWARD
)
INSTANTIATED = WarningContract(
    DeprecationWarning,
    r"should not be instantiated\. Methods on autograd functions ?are all static",
    wording="releases before 2.1 lack the space before 'are'",
)

FLOAT64 = tensors(dtypes=(torch.float64,), max_ndim=2)
#: make_dual refuses a primal whose elements overlap in memory (an expanded tensor).
NO_OVERLAP = tensors(dtypes=(torch.float64,), max_ndim=2, layouts=("contiguous", "transposed", "sliced"))
CANONICAL = TensorSpec((3,), torch.float64, "contiguous", (0.5, -1.0, 2.0), True)


def _using(*functions: type) -> str:
    """The repro line importing ``functions`` (defined in this module) by name."""
    return f"from {__name__} import {', '.join(f.__name__ for f in functions)}"


class FirstOnly(torch.autograd.Function):
    """2 x + y, whose backward returns None for y."""

    @staticmethod
    def forward(ctx, x, y):
        return x * 2 + y

    @staticmethod
    def backward(ctx, grad):
        return grad * 2, None


@rule(
    "function-api.none-gradient-stays-none",
    section=Section.CUSTOM,
    docs="function-api-gradients",
    given=dict(spec=FLOAT64),
    examples=(dict(spec=CANONICAL),),
    references=("test_autograd.py::TestAutograd::test_function_returns_undefined_tensor",),
)
def none_gradient_stays_none(spec):
    """When a Function's backward returns None for an input that requires grad, that input's .grad stays None rather than becoming zeros, and torch.autograd.grad returns None for it."""
    script = Script(
        """
        $using
        x = $x
        y = $y
        FirstOnly.apply(x, y).sum().backward()
        grads = torch.autograd.grad(FirstOnly.apply(x, y).sum(), [x, y], allow_unused=True)
        print(x.grad, y.grad, grads)
        """,
        using=_using(FirstOnly),
        x=spec.expression(),
        y=spec.expression(),
    )
    seen = script.run()
    expect(seen.y.grad is None, what="y.grad", expected=None, observed=seen.y.grad, repro=script)
    expect_close(seen.x.grad, torch.full_like(seen.x, 2.0), tolerance=SAME, what="x.grad", repro=script)
    expect(seen.grads[1] is None, what="torch.autograd.grad for y", expected=None, observed=seen.grads[1], repro=script)
    record("y_grad", None if seen.y.grad is None else seen.y.grad.tolist())


class AsIs(torch.autograd.Function):
    """Returns its input unchanged; its backward scales by 3 so that its use is visible."""

    @staticmethod
    def forward(ctx, x):
        return x

    @staticmethod
    def backward(ctx, grad):
        return grad * 3


class ViewOf(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * 3


@rule(
    "function-api.returned-input-is-a-new-tensor",
    section=Section.CUSTOM,
    docs="function-api-views",
    given=dict(spec=FLOAT64, kind=st.sampled_from(["as-is", "view"])),
    examples=(dict(spec=CANONICAL, kind="as-is"),),
    references=("test_autograd.py::TestAutograd::test_function_returns_input",),
)
def returned_input_is_a_new_tensor(spec, kind):
    """A Function that returns its input as-is, or a view of it, gives back a new tensor object recorded by the Function, so the gradient is what the Function's backward returns."""
    function = AsIs if kind == "as-is" else ViewOf
    script = Script(
        """
        $using
        x = $x
        out = $function.apply(x)
        print(out is not x, type(out.grad_fn).__name__)
        out.sum().backward()
        print(x.grad)
        """,
        using=_using(function),
        x=spec.expression(),
        function=function.__name__,
    )
    seen = script.run()
    expect(
        seen.out is not seen.x, what="the output is a new object", expected="not x", observed="x itself", repro=script
    )
    node = type(seen.out.grad_fn).__name__
    expect(
        node.endswith("Backward"),
        what="the output's grad_fn",
        expected="the Function's node",
        observed=node,
        repro=script,
    )
    expect_close(
        seen.x.grad,
        torch.full_like(seen.x, 3.0),
        tolerance=SAME,
        what="x.grad, from the Function's backward",
        repro=script,
    )
    record("grad_fn", node)


@rule(
    "function-api.view-outputs-are-not-writable",
    section=Section.CUSTOM,
    docs="function-api-views",
    given=dict(spec=FLOAT64, kind=st.sampled_from(["as-is", "view"])),
    contracts=(VIEW_OUTPUT_WRITTEN,),
    examples=(dict(spec=CANONICAL, kind="view"),),
    references=(
        "test_autograd.py::TestAutograd::test_inplace_not_requires_grad",
        "test_autograd.py::TestAutograd::test_function_returns_input",
    ),
)
def view_outputs_are_not_writable(spec, kind):
    """Writing in place to a Function's output that is a view of an input (an input returned as-is included) raises a RuntimeError."""
    function = AsIs if kind == "as-is" else ViewOf
    script = Script(
        """
        $using
        x = $x * 1.0
        out = $function.apply(x)
        out.mul_(2.0)
        """,
        using=_using(function),
        x=spec.expression(),
        function=function.__name__,
    )
    record("message", VIEW_OUTPUT_WRITTEN.check(lambda: script.run().out, repro=script))


class ScaledJvp(torch.autograd.Function):
    """y = x * exp(x), whose jvp returns ``scale`` times the true tangent."""

    @staticmethod
    def forward(x, scale):
        return x * torch.exp(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, scale = inputs
        ctx.save_for_forward(x)
        ctx.scale = scale

    @staticmethod
    def jvp(ctx, x_t, _):
        (x,) = ctx.saved_tensors
        return ctx.scale * x_t * (1 + x) * torch.exp(x)

    @staticmethod
    def backward(ctx, grad):
        raise AssertionError("reverse mode is not used here")


@rule(
    "function-api.forward-mode-uses-jvp",
    section=Section.CUSTOM,
    docs="function-api-forward-mode",
    since="2.0",
    requires=(SETUP_CONTEXT,),
    given=dict(spec=NO_OVERLAP, c=SCALES),
    examples=(dict(spec=CANONICAL, c=2.0),),
    references=(
        "test_autograd.py::TestAutograd::test_custom_function_save_for_forward",
        "docs: Extending torch.autograd > Forward mode AD",
    ),
)
def forward_mode_uses_jvp(spec, c):
    """Forward-mode AD through a Function uses what its jvp staticmethod returns as the output's tangent, with the tensors save_for_forward kept."""
    x = spec.make(requires_grad=False)
    script = Script(
        """
        import torch.autograd.forward_ad as fwAD
        $using
        x = $x
        with fwAD.dual_level():
            y = ScaledJvp.apply(fwAD.make_dual(x, torch.ones_like(x)), $c)
            tangent = fwAD.unpack_dual(y).tangent
        print(tangent)
        """,
        using=_using(ScaledJvp),
        x=spec.expression(requires_grad=False),
        c=c,
    )
    got = script.run().tangent
    _, true = torch.func.jvp(lambda t: t * torch.exp(t), (x,), (torch.ones_like(x),))
    expect_close(
        got,
        c * true,
        tolerance=Tolerance(1e-12, 1e-12, "the same float64 formula, written twice"),
        what=f"the tangent, against {c} x the true one",
        repro=script,
    )
    if got is not None and got.numel():
        record("tangent_over_true", round((got / true).flatten()[0].item(), 6))


class NoJvp(torch.autograd.Function):
    @staticmethod
    def forward(x):
        return torch.exp(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.saved_tensors[0]


@rule(
    "function-api.forward-mode-needs-jvp",
    section=Section.CUSTOM,
    docs="function-api-forward-mode",
    since="2.0",
    requires=(SETUP_CONTEXT,),
    given=dict(spec=NO_OVERLAP),
    contracts=(NEEDS_JVP,),
    examples=(dict(spec=CANONICAL),),
    references=("docs: Extending torch.autograd > Forward mode AD",),
)
def forward_mode_needs_jvp(spec):
    """Applying a Function without a jvp staticmethod to a dual tensor raises a NotImplementedError, although the same Function works in reverse mode."""
    reverse = Script(
        "$using\nx = $x\nNoJvp.apply(x).sum().backward()\nprint(x.grad)", using=_using(NoJvp), x=spec.expression()
    )
    x = reverse.run().x
    expect_close(x.grad, torch.exp(x.detach()), tolerance=SAME, what="x.grad in reverse mode", repro=reverse)
    forward = Script(
        """
        import torch.autograd.forward_ad as fwAD
        $using
        x = $x
        with fwAD.dual_level():
            y = NoJvp.apply(fwAD.make_dual(x, torch.ones(x.shape, dtype=x.dtype)))
        """,
        using=_using(NoJvp),
        x=spec.expression(requires_grad=False),
    )
    record("message", NEEDS_JVP.check(lambda: forward.run().y, repro=forward))


class OldStyle(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sin(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * torch.cos(x)


@rule(
    "function-api.func-transforms-need-setup-context",
    section=Section.CUSTOM,
    docs="function-api-forward-mode",
    since="2.0",
    requires=(FUNC_TRANSFORMS, SETUP_CONTEXT),
    given=dict(spec=FLOAT64),
    contracts=(NEEDS_SETUP_CONTEXT,),
    examples=(dict(spec=CANONICAL),),
    references=(
        "test_autograd.py::TestAutograd::test_old_style_autograd_function_with_grad_no_compile",
        "docs: Extending torch.func with autograd.Function",
    ),
)
def func_transforms_need_setup_context(spec):
    """A Function whose forward takes ctx (no separate setup_context) works with backward but makes torch.func.grad raise a RuntimeError."""
    reverse = Script(
        "$using\nx = $x\nOldStyle.apply(x).sum().backward()\nprint(x.grad)", using=_using(OldStyle), x=spec.expression()
    )
    x = reverse.run().x
    expect_close(x.grad, torch.cos(x.detach()), tolerance=SAME, what="x.grad with backward", repro=reverse)
    script = Script(
        "$using\nx = $x\nprint(torch.func.grad(lambda t: OldStyle.apply(t).sum())(x))",
        using=_using(OldStyle),
        x=spec.expression(requires_grad=False),
    )
    record("message", NEEDS_SETUP_CONTEXT.check(lambda: None, backward=lambda _: script.run(), repro=script))


class ReadsTwice(torch.autograd.Function):
    clear_saved_tensors_on_access = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sin(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        ctx.saved_tensors  # noqa: B018 - the second read is the point
        return grad * torch.cos(x)


@rule(
    "function-api.saved-tensors-cleared-on-access",
    section=Section.CUSTOM,
    docs="function-api-gradients",
    requires=(CLEAR_ON_ACCESS,),
    given=dict(spec=FLOAT64),
    contracts=(READ_TWICE,),
    examples=(dict(spec=CANONICAL),),
    references=("test_autograd.py::TestAutograd::test_clear_saved_tensors_on_access",),
)
def saved_tensors_cleared_on_access(spec):
    """With clear_saved_tensors_on_access = True on a Function, a second read of ctx.saved_tensors in its backward raises a RuntimeError."""
    forward = Script("$using\nx = $x\nout = ReadsTwice.apply(x)", using=_using(ReadsTwice), x=spec.expression())
    run, backward, repro = forward.recorded_then("out.sum().backward()")
    record("message", READ_TWICE.check(run, backward=backward, repro=repro))


class NoForward(torch.autograd.Function):
    @staticmethod
    def backward(ctx, grad):
        return grad


class NoBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2


class BothBackwards(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, grad):
        return grad * 2

    @staticmethod
    def vjp(ctx, grad):
        return grad * 2


DEFINITIONS = {
    "no forward": (NoForward, NO_FORWARD),
    "no backward": (NoBackward, NO_BACKWARD),
    "backward and vjp": (BothBackwards, BOTH_BACKWARDS),
}


@rule(
    "function-api.definition-errors",
    section=Section.CUSTOM,
    docs="function-api-definition",
    given=dict(spec=FLOAT64, mistake=st.sampled_from(sorted(DEFINITIONS))),
    contracts=(NO_FORWARD, NO_BACKWARD, BOTH_BACKWARDS),
    examples=(dict(spec=CANONICAL, mistake="no backward"),),
    references=("test_autograd.py::TestAutograd::test_custom_function_error",),
)
def definition_errors(spec, mistake):
    """A Function without forward raises NotImplementedError when applied, one without backward (or vjp) raises NotImplementedError at backward, and one defining both backward and vjp raises RuntimeError at backward."""
    function, contract = DEFINITIONS[mistake]
    forward = Script(
        "$using\nx = $x\nout = $function.apply(x)",
        using=_using(function),
        x=spec.expression(),
        function=function.__name__,
    )
    run, backward, repro = forward.recorded_then("out.sum().backward()")
    record(mistake, contract.check(run, backward=backward, repro=repro))


@rule(
    "function-api.instantiating-warns",
    section=Section.CUSTOM,
    docs="function-api-definition",
    given=dict(function=st.sampled_from([FirstOnly, AsIs, OldStyle])),
    contracts=(INSTANTIATED,),
    examples=(dict(function=AsIs),),
    references=("test_autograd.py::TestAutograd::test_naughty_autograd_function_attribute_access",),
)
def instantiating_warns(function):
    """Instantiating a Function subclass, whose methods are all static, emits a DeprecationWarning."""
    script = Script(
        "$using\ninstance = $function()\nprint(type(instance).__name__)",
        using=_using(function),
        function=function.__name__,
    )
    instance = INSTANTIATED.check(lambda: script.run().instance, repro=script)
    expect(
        isinstance(instance, function),
        what="what instantiation returned",
        expected=function.__name__,
        observed=type(instance).__name__,
        repro=script,
    )
    record("warned", True)
