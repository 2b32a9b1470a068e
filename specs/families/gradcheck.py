"""``torch.autograd.gradcheck`` and ``gradgradcheck`` as a tool: what they accept, what they catch, their guards.

Each check runs gradcheck on a function whose derivative is known to be right, or wrong in one
stated way (a custom Function with a perturbed backward, jvp or double backward), so the rule
knows the verdict gradcheck must reach.
"""

from __future__ import annotations

import functools
import inspect
import warnings

import torch
from hypothesis import strategies as st

from specs.engine.contracts import ErrorContract, Phase, WarningContract
from specs.engine.expect import expect
from specs.engine.registry import Family, record, rule
from specs.engine.script import Script
from specs.engine.sections import Section
from specs.generators.examples import one_line_program, tensor
from specs.generators.strategies import programs, tensors

try:
    from torch.autograd.gradcheck import GradcheckError
except ImportError:  # releases before GradcheckError raised a plain RuntimeError
    GradcheckError = RuntimeError

FAMILY = Family(
    name="gradcheck",
    title="gradcheck and gradgradcheck",
    summary="Checking a backward against finite differences: what gradcheck accepts and rejects, "
    "fast mode, the forward-mode, undefined-gradient and batched checks, and its guards.",
    gallery="plot_95_gradcheck.py",
)


JACOBIAN_MISMATCH = ErrorContract(
    GradcheckError,
    r"^Jacobian mismatch for output 0 with respect to input 0",
    Phase.BACKWARD,
)
FORWARD_MISMATCH = ErrorContract(
    GradcheckError,
    r"^Jacobian computed with forward mode mismatch for output 0 with respect to input 0",
    Phase.BACKWARD,
)
NOT_REENTRANT = ErrorContract(
    GradcheckError,
    r"Backward is not reentrant, i\.e\., running backward with same input and grad_output "
    r"multiple times gives different values",
    Phase.BACKWARD,
)
UNDEFINED_RAISES = ErrorContract(
    GradcheckError,
    r"Expected backward function to handle undefined output grads",
    Phase.BACKWARD,
)
UNDEFINED_NONZERO = ErrorContract(
    GradcheckError,
    r"Expected all input grads to be undefined or zero when all output grads are undefined",
    Phase.BACKWARD,
)
NOT_LINEAR = ErrorContract(GradcheckError, r"^backward not multiplied by grad_output", Phase.BACKWARD)
BATCHED = ErrorContract(GradcheckError, r"While computing batched gradients", Phase.BACKWARD)
NO_INPUT_REQUIRES_GRAD = ErrorContract(
    ValueError,
    r"gradcheck expects at least one input tensor to require gradient",
    Phase.BACKWARD,
)
OVERLAPPING_INPUT = ErrorContract(
    RuntimeError,
    r"The 0th input has a dimension with stride 0\. gradcheck only supports inputs that are "
    r"non-overlapping",
    Phase.BACKWARD,
)
NO_MODE = ErrorContract(
    AssertionError,
    r"Expected at least one of check_forward_ad or check_backward_ad to be True",
    Phase.BACKWARD,
)
NOT_DOUBLE = WarningContract(
    UserWarning,
    r"Input #0 requires gradient and is not a double precision floating point or complex",
)


class Sine(torch.autograd.Function):
    """sin(x), with a backward and a jvp that may each be off by a stated error: ``cos(x) + error``."""

    @staticmethod
    def forward(ctx, x, backward_error=0.0, jvp_error=0.0):
        ctx.save_for_backward(x)
        ctx.save_for_forward(x)
        ctx.backward_error, ctx.jvp_error = backward_error, jvp_error
        return torch.sin(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (torch.cos(x) + ctx.backward_error), None, None

    @staticmethod
    def jvp(ctx, u, _backward_error, _jvp_error):
        (x,) = ctx.saved_tensors
        return u * (torch.cos(x) + ctx.jvp_error)


class NondeterministicSine(torch.autograd.Function):
    """sin(x) whose backward uses cos(x) + calls * 1e-9: right to 1e-9, but different on every call."""

    calls = 0

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sin(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        NondeterministicSine.calls += 1
        return g * (torch.cos(x) + NondeterministicSine.calls * 1e-9)


class SineUndefinedRaises(torch.autograd.Function):
    """sin(x) that asks for undefined gradients (set_materialize_grads(False)) and refuses them."""

    @staticmethod
    def forward(ctx, x):
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(x)
        return torch.sin(x)

    @staticmethod
    def backward(ctx, g):
        if g is None:
            raise RuntimeError("this backward cannot handle an undefined gradient")
        (x,) = ctx.saved_tensors
        return g * torch.cos(x)


class SineUndefinedAsOnes(SineUndefinedRaises):
    """The same, but treating an undefined gradient as ones instead of zeros."""

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return (torch.ones_like(x) if g is None else g) * torch.cos(x)


class SineWithItem(torch.autograd.Function):
    """sin(x) whose backward reads a Python number from the gradient: right, but not batchable by vmap."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sin(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.cos(x) + 0.0 * g.sum().item()


class SineIgnoringZeroGrad(torch.autograd.Function):
    """sin(x) whose backward returns cos(x) when the incoming gradient is all zeros: right Jacobian, not linear."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sin(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.cos(x) if bool(g.any()) else torch.cos(x)


class DetachedCube(torch.autograd.Function):
    """x ** 3 whose backward is right, but built from a detached input: its own gradient is wrong (zero)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3 * x.detach() ** 2


#: Inputs of at most 4 float64 elements: gradcheck's slow mode costs two evaluations per element.
small = tensors(dtypes=(torch.float64,), max_ndim=2, layouts=("contiguous",), zero_size=False).filter(
    lambda s: s.numel <= 4
)
#: Errors far above gradcheck's float64 tolerance (atol=1e-5, rtol=1e-3 of |cos x| <= 1).
errors = st.sampled_from((0.01, -0.5, 1.0))
#: Generated programs for "gradcheck accepts what autograd computes": small, float64.
functions = programs(max_leaves=1, max_ops=4, dtypes=(torch.float64,), zero_size=False).filter(
    lambda p: p.leaves[0].numel <= 4
)
X = tensor((0.5, -1.0, 1.5), (3,))
MIXED = one_line_program("torch.tanh(x0) * x0.sum() + x0 ** 2", tensor((0.25, -0.5, 1.0, 2.0), (2, 2)))


#: The custom Functions that the gallery page shows: a repro imports them; it defines the others itself.
ON_THE_PAGE = (Sine, NondeterministicSine, SineUndefinedAsOnes, DetachedCube)

#: One call of gradcheck (or gradgradcheck) on ``$function`` at ``x``, and the verdict it returns.
CHECK = """
$using
x = $x
verdict = torch.autograd.$check($function, (x,)$options)$note
print(verdict)
"""


@functools.cache
def _using(*functions: type) -> str:
    """Script lines making ``functions`` available: imported when the page shows them, else their own source."""
    shown = [function.__name__ for function in functions if function in ON_THE_PAGE]
    lines = [f"from {__name__} import {', '.join(shown)}\n"] if shown else []
    lines += [inspect.getsource(function) for function in functions if function not in ON_THE_PAGE]
    return "\n".join(lines)


def _check(
    x: str, function: str, *, using: tuple[type, ...] = (), options: str = "", note: str = "", check: str = "gradcheck"
) -> Script:
    """The script running ``check`` on ``function`` at the input ``x`` (code), printing its verdict."""
    return Script(
        CHECK,
        using=_using(*using),
        x=x,
        function=function,
        options=options,
        note=f"  # {note}" if note else "",
        check=check,
    )


@rule(
    "gradcheck.accepts-what-autograd-computes",
    section=Section.BEYOND,
    docs="gradcheck-verdicts",
    given=dict(program=functions),
    examples=(dict(program=MIXED),),
    references=("test_autograd.py::TestAutograd::test_gradcheck_single_input", "docs: torch.autograd.gradcheck"),
)
def accepts_what_autograd_computes(program):
    """gradcheck (backward and forward mode) and gradgradcheck accept built-in operators on float64 inputs: autograd's derivatives agree with finite differences."""
    script = program.script(
        "x = x0.detach().contiguous().requires_grad_()",
        "verdict = torch.autograd.gradcheck(program, (x,), check_forward_ad=True)",
        "double_verdict = torch.autograd.gradgradcheck(program, (x,))",
        "print(verdict, double_verdict)",
    )
    seen = script.run()
    expect(
        seen.verdict is True,
        what="gradcheck(program, check_forward_ad=True)",
        expected=True,
        observed=seen.verdict,
        repro=script,
    )
    expect(
        seen.double_verdict is True,
        what="gradgradcheck(program)",
        expected=True,
        observed=seen.double_verdict,
        repro=script,
    )


@rule(
    "gradcheck.catches-a-wrong-backward",
    section=Section.BEYOND,
    docs="gradcheck-verdicts",
    given=dict(x=small, error=errors),
    examples=(dict(x=X, error=0.01),),
    contracts=(JACOBIAN_MISMATCH,),
    references=(
        "test_autograd.py::TestAutograd::test_gradcheck_jacobian_mismatch",
        "test_autograd.py::TestAutograd::test_gradcheck_custom_error",
    ),
)
def catches_a_wrong_backward(x, error):
    """A backward off by more than the tolerance makes gradcheck raise GradcheckError, a RuntimeError, naming the output and input, or return False with raise_exception=False."""
    wrong = dict(using=(Sine,), note=f"backward cos(x) + {error}")
    raising = _check(x.expression(), f"lambda t: Sine.apply(t, {error})", **wrong)
    message = JACOBIAN_MISMATCH.check(lambda: None, backward=lambda _: raising.run(), repro=raising)
    expect(
        issubclass(GradcheckError, RuntimeError),
        what="GradcheckError is a RuntimeError",
        expected=True,
        observed=False,
        repro=raising,
    )
    returning = _check(x.expression(), f"lambda t: Sine.apply(t, {error})", options=", raise_exception=False", **wrong)
    verdict = returning.run().verdict
    expect(
        verdict is False,
        what="gradcheck(..., raise_exception=False) of a wrong backward",
        expected=False,
        observed=verdict,
        repro=returning,
    )
    record("message first line", message.splitlines()[0])


#: A function that raises an exception of its own under gradcheck, and what became of that exception.
REFUSED = """
x = $x

class Refused(Exception):
    pass

def refuses(t):
    raise Refused("the function under test failed")

try:
    torch.autograd.gradcheck(refuses, (x,), raise_exception=$raise_exception)
    outcome = "returned"
except Refused:
    outcome = "Refused propagated"
except Exception as error:
    outcome = f"replaced by {type(error).__name__}: {error}"
print(outcome)
"""


@rule(
    "gradcheck.keeps-the-function-own-errors",
    section=Section.BEYOND,
    docs="gradcheck-verdicts",
    given=dict(x=small, raise_exception=st.booleans()),
    examples=(dict(x=X, raise_exception=False),),
    references=("test_autograd.py::TestAutograd::test_gradcheck_custom_error",),
)
def keeps_the_function_own_errors(x, raise_exception):
    """An exception raised by the checked function itself propagates out of gradcheck unchanged, even with raise_exception=False."""
    script = Script(REFUSED, x=x.expression(), raise_exception=raise_exception)
    outcome = script.run().outcome
    expect(
        outcome == "Refused propagated",
        what=f"the function's exception under gradcheck(raise_exception={raise_exception})",
        expected="Refused propagated",
        observed=outcome,
        repro=script,
    )
    record("propagated", f"Refused with raise_exception={raise_exception}")


@rule(
    "gradcheck.fast-mode-agrees-with-slow-mode",
    section=Section.BEYOND,
    docs="gradcheck-fast-mode",
    given=dict(x=small, error=st.sampled_from((0.0, 0.01, -0.5, 1.0))),
    examples=(dict(x=X, error=0.0), dict(x=X, error=0.01)),
    references=(
        "test_autograd.py::TestAutograd::test_gradcheck_single_input",
        "docs: Gradcheck mechanics > Fast backward mode gradcheck",
    ),
)
def fast_mode_agrees_with_slow_mode(x, error):
    """gradcheck with fast_mode=True, which compares one random projection of the Jacobian, reaches the same verdict as the full check: it accepts a right backward and rejects one that is off."""
    script = Script(
        """
        $using
        x = $x
        f = lambda t: Sine.apply(t, $error)  # backward cos(x) + $error
        slow = torch.autograd.gradcheck(f, (x,), raise_exception=False)
        fast = torch.autograd.gradcheck(f, (x,), raise_exception=False, fast_mode=True)
        print(slow, fast)
        """,
        using=_using(Sine),
        x=x.expression(),
        error=error,
    )
    seen = script.run()
    expect(
        seen.slow is (error == 0.0),
        what="the full check's verdict",
        expected=error == 0.0,
        observed=seen.slow,
        repro=script,
    )
    expect(
        seen.fast is seen.slow,
        what="fast mode's verdict against the full check's",
        expected=seen.slow,
        observed=seen.fast,
        repro=script,
    )
    record(f"fast verdict with error {error}", seen.fast)


@rule(
    "gradcheck.check-forward-ad-catches-a-wrong-jvp",
    section=Section.BEYOND,
    docs="gradcheck-forward-ad",
    given=dict(x=small, error=errors, fast_mode=st.booleans()),
    contracts=(FORWARD_MISMATCH,),
    examples=(dict(x=X, error=0.01, fast_mode=False),),
    references=("test_autograd.py::TestAutograd::test_gradcheck_forward_ad",),
)
def check_forward_ad_catches_a_wrong_jvp(x, error, fast_mode):
    """A custom Function whose jvp is wrong but whose backward is right passes gradcheck by default, and fails it with check_forward_ad=True."""
    wrong = dict(using=(Sine,), note=f"jvp cos(x) + {error}")
    function = f"lambda t: Sine.apply(t, 0.0, {error})"
    backward_only = _check(x.expression(), function, options=f", fast_mode={fast_mode}", **wrong)
    verdict = backward_only.run().verdict
    expect(
        verdict is True,
        what="gradcheck without check_forward_ad of a wrong jvp",
        expected=True,
        observed=verdict,
        repro=backward_only,
    )
    forward = _check(x.expression(), function, options=f", check_forward_ad=True, fast_mode={fast_mode}", **wrong)
    message = FORWARD_MISMATCH.check(lambda: None, backward=lambda _: forward.run(), repro=forward)
    record("message first line", message.splitlines()[0])


@rule(
    "gradcheck.nondet-tol-allows-a-nondeterministic-backward",
    section=Section.BEYOND,
    docs="gradcheck-options",
    given=dict(x=small),
    examples=(dict(x=X),),
    contracts=(NOT_REENTRANT,),
    references=("test_autograd.py::TestAutograd::test_gradcheck_nondeterministic",),
)
def nondet_tol_allows_a_nondeterministic_backward(x):
    """A backward that gives slightly different values on each call fails gradcheck as "not reentrant", and passes once nondet_tol exceeds the difference."""
    nondeterministic = dict(using=(NondeterministicSine,), note="backward: cos(x) + calls * 1e-9")
    strict = _check(x.expression(), "NondeterministicSine.apply", **nondeterministic)
    message = NOT_REENTRANT.check(lambda: None, backward=lambda _: strict.run(), repro=strict)
    record("message first line", message.splitlines()[0])
    tolerant = _check(x.expression(), "NondeterministicSine.apply", options=", nondet_tol=1e-6", **nondeterministic)
    verdict = tolerant.run().verdict
    expect(verdict is True, what="gradcheck(..., nondet_tol=1e-6)", expected=True, observed=verdict, repro=tolerant)


@rule(
    "gradcheck.backward-must-be-linear-in-the-gradient",
    section=Section.BEYOND,
    docs="gradcheck-options",
    given=dict(x=small, fast_mode=st.booleans()),
    examples=(dict(x=X, fast_mode=False),),
    contracts=(NOT_LINEAR,),
    references=("test_autograd.py::TestAutograd::test_gradcheck_backward_mul_by_grad_output",),
)
def backward_must_be_linear_in_the_gradient(x, fast_mode):
    """A backward whose Jacobian is right but which returns a non-zero gradient for an all-zero incoming gradient fails gradcheck: a backward must be a product with grad_output."""
    script = _check(
        x.expression(), "SineIgnoringZeroGrad.apply", using=(SineIgnoringZeroGrad,), options=f", fast_mode={fast_mode}"
    )
    message = NOT_LINEAR.check(lambda: None, backward=lambda _: script.run(), repro=script)
    record("message", message)


UNDEFINED = {
    "raises on None": (SineUndefinedRaises, UNDEFINED_RAISES),
    "treats None as ones": (SineUndefinedAsOnes, UNDEFINED_NONZERO),
}


@rule(
    "gradcheck.check-undefined-grad",
    section=Section.BEYOND,
    docs="gradcheck-options",
    given=dict(x=small, bug=st.sampled_from(sorted(UNDEFINED))),
    contracts=(UNDEFINED_RAISES, UNDEFINED_NONZERO),
    examples=tuple(dict(x=X, bug=bug) for bug in sorted(UNDEFINED)),
    references=("test_autograd.py::TestAutograd::test_gradcheck_undefined_grad",),
)
def check_undefined_grad(x, bug):
    """gradcheck also runs backward with undefined (None) output gradients and rejects a backward that then raises or returns non-zero gradients, unless check_undefined_grad=False."""
    function, contract = UNDEFINED[bug]
    buggy = dict(using=(function,), note=f"backward {bug}")
    checked = _check(x.expression(), f"{function.__name__}.apply", **buggy)
    with warnings.catch_warnings():
        # gradcheck adds a note that this check is newer than its callers; not what the rule is about
        warnings.filterwarnings("ignore", message="Backwards compatibility", category=UserWarning)
        message = contract.check(lambda: None, backward=lambda _: checked.run(), repro=checked)
    record(f"{bug} message first line", message.splitlines()[0])
    unchecked = _check(x.expression(), f"{function.__name__}.apply", options=", check_undefined_grad=False", **buggy)
    verdict = unchecked.run().verdict
    expect(
        verdict is True,
        what="gradcheck(..., check_undefined_grad=False)",
        expected=True,
        observed=verdict,
        repro=unchecked,
    )


@rule(
    "gradcheck.check-batched-grad",
    section=Section.BEYOND,
    docs="gradcheck-options",
    given=dict(x=small),
    examples=(dict(x=X),),
    contracts=(BATCHED,),
    references=("test_autograd.py::TestAutograd::test_gradcheck_check_batched_grad",),
)
def check_batched_grad(x):
    """With check_batched_grad=True, gradcheck also computes the backward under vmap: built-in sin passes, and a right backward that reads a Python number from its gradient fails."""
    builtin = _check(x.expression(), "torch.sin", options=", check_batched_grad=True")
    verdict = builtin.run().verdict
    expect(
        verdict is True,
        what="gradcheck(torch.sin, check_batched_grad=True)",
        expected=True,
        observed=verdict,
        repro=builtin,
    )
    item = dict(using=(SineWithItem,), note="backward calls .item()")
    unbatched = _check(x.expression(), "SineWithItem.apply", **item)
    verdict = unbatched.run().verdict
    expect(
        verdict is True,
        what="gradcheck(SineWithItem) without batched grad",
        expected=True,
        observed=verdict,
        repro=unbatched,
    )
    batched = _check(x.expression(), "SineWithItem.apply", options=", check_batched_grad=True", **item)
    message = BATCHED.check(lambda: None, backward=lambda _: batched.run(), repro=batched)
    record("message first line", message.splitlines()[0])


@rule(
    "gradcheck.gradgradcheck-catches-a-wrong-double-backward",
    section=Section.BEYOND,
    docs="gradcheck-gradgradcheck",
    given=dict(x=small.filter(lambda s: any(v != 0 for v in s.values))),
    contracts=(JACOBIAN_MISMATCH,),
    examples=(dict(x=X),),
    references=(
        "test_autograd.py::TestAutograd::test_gradcheck_jacobian_mismatch",
        "docs: torch.autograd.gradgradcheck",
    ),
)
def gradgradcheck_catches_a_wrong_double_backward(x):
    """A backward whose values are right but which is computed from a detached input passes gradcheck and fails gradgradcheck, which differentiates the backward itself."""
    once = _check(x.expression(), "DetachedCube.apply", using=(DetachedCube,), note="passes")
    verdict = once.run().verdict
    expect(verdict is True, what="gradcheck of DetachedCube", expected=True, observed=verdict, repro=once)
    twice = _check(x.expression(), "DetachedCube.apply", using=(DetachedCube,), check="gradgradcheck", note="fails")
    message = JACOBIAN_MISMATCH.check(lambda: None, backward=lambda _: twice.run(), repro=twice)
    record("message first line", message.splitlines()[0])


@rule(
    "gradcheck.float32-inputs-warn",
    section=Section.BEYOND,
    docs="gradcheck-guards",
    given=dict(
        x=tensors(dtypes=(torch.float32,), max_ndim=2, layouts=("contiguous",), zero_size=False).filter(
            lambda s: s.numel <= 4
        )
    ),
    examples=(dict(x=tensor((0.5, -1.0, 1.5), (3,), dtype=torch.float32)),),
    contracts=(NOT_DOUBLE,),
    references=(
        "test_autograd.py::TestAutograd::test_gradcheck_validates_inputs",
        "docs: torch.autograd.gradcheck (double precision)",
    ),
)
def float32_inputs_warn(x):
    """gradcheck warns (UserWarning) when an input that requires grad is not float64 or complex128, because finite differences in single precision are too coarse for its tolerances."""
    script = _check(x.expression(), "torch.sin", options=", raise_exception=False")
    verdict = NOT_DOUBLE.check(lambda: script.run().verdict, repro=script)
    record("verdict on float32 (after the warning)", verdict)


#: Inputs gradcheck refuses: the contract, the calls making the input from the expanded (stride-0) tensor, the options.
GUARDS = {
    "no input requires grad": (NO_INPUT_REQUIRES_GRAD, ".detach().contiguous()", ""),
    "overlapping input": (OVERLAPPING_INPUT, "", ""),
    "neither mode": (
        NO_MODE,
        ".detach().contiguous().requires_grad_()",
        ", check_forward_ad=False, check_backward_ad=False",
    ),
}


@rule(
    "gradcheck.guards-its-inputs",
    section=Section.BEYOND,
    docs="gradcheck-guards",
    given=dict(
        x=tensors(dtypes=(torch.float64,), min_ndim=1, max_ndim=2, layouts=("expanded",), zero_size=False).filter(
            lambda s: s.shape[0] >= 2
        ),
        guard=st.sampled_from(tuple(GUARDS)),
        raise_exception=st.booleans(),
    ),
    examples=tuple(
        dict(x=tensor((0.5, 1.0), (2, 2), layout="expanded"), guard=guard, raise_exception=False) for guard in GUARDS
    ),
    contracts=(NO_INPUT_REQUIRES_GRAD, OVERLAPPING_INPUT, NO_MODE),
    references=(
        "test_autograd.py::TestAutograd::test_gradcheck_validates_inputs",
        "test_autograd.py::TestAutograd::test_gradcheck_forward_ad",
    ),
)
def guards_its_inputs(x, guard, raise_exception):
    """gradcheck refuses, whatever raise_exception says, inputs none of which requires grad (ValueError), an input with a stride-0 dimension (RuntimeError), and turning off both the forward and the backward check (AssertionError)."""
    contract, made, options = GUARDS[guard]
    script = _check(
        x.expression() + made, "torch.sin", options=f", raise_exception={raise_exception}{options}", note=guard
    )
    message = contract.check(lambda: None, backward=lambda _: script.run(), repro=script)
    record(f"{guard} message", message)
