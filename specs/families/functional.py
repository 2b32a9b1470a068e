"""``torch.autograd.functional``: Jacobians, Hessians and their products, and the options that change them."""

from __future__ import annotations

import torch
from hypothesis import strategies as st

from specs.engine.contracts import ErrorContract, Phase
from specs.engine.expect import Tolerance, expect, expect_close
from specs.engine.oracles import FD_STEP, FD_TOLERANCE
from specs.engine.registry import Family, record, rule
from specs.engine.script import Script, literal
from specs.engine.sections import Section
from specs.generators.examples import one_line_program, tensor
from specs.generators.strategies import programs, tensors

FAMILY = Family(
    name="functional",
    title="torch.autograd.functional",
    summary="jacobian, hessian, vjp, jvp, hvp and vhp: how they agree with each other and with finite "
    "differences, and what strict, vectorize, strategy and create_graph change.",
    gallery="plot_94_functional.py",
)


#: Two autograd paths to the same derivatives in float64 (reverse, batched, forward mode).
ROUNDOFF = Tolerance(1e-9, 1e-10, "float64: the same products summed in another order")

STRICT_OUTPUT = ErrorContract(
    RuntimeError,
    r"Output 0 of the user-provided function does not require gradients\. The outputs must be computed "
    r"in a differentiable manner from the input when running in strict mode",
    Phase.BACKWARD,
)
STRICT_HESSIAN = ErrorContract(
    RuntimeError,
    r"jacobian of the user-provided function with respect to input 0 is independent of the input\. "
    r"This is not allowed in strict mode",
    Phase.BACKWARD,
)
STRICT_VECTORIZE = ErrorContract(
    RuntimeError,
    r"`strict=True` and `vectorized=True` are not supported together",
    Phase.BACKWARD,
)
FORWARD_NEEDS_VECTORIZE = ErrorContract(
    NotImplementedError,
    r"Computing Jacobian using forward-AD or forward-over-reverse Hessian is\s*only implemented for "
    r"`vectorize=True`",
    Phase.BACKWARD,
    wording="the message reads 'isonly' (a missing space) on 2.13",
)
UNKNOWN_STRATEGY = ErrorContract(
    AssertionError,
    r'Expected strategy to be either "forward-mode" or "reverse-mode"',
    Phase.BACKWARD,
)
NOT_SCALAR = ErrorContract(
    RuntimeError,
    r"The Tensor returned by the function given to (hessian|hvp|vhp) should contain a single element",
    Phase.BACKWARD,
)
V_NEEDED = ErrorContract(
    RuntimeError,
    r"The vector v can only be None if the (user-provided function returns|input to the user-provided "
    r"function is) a single Tensor with a single element",
    Phase.BACKWARD,
)
NOT_A_TENSOR = ErrorContract(
    TypeError,
    r"The (inputs|outputs of the user-provided function|v) given to \w+ must be either a Tensor or a "
    r"tuple of Tensors",
    Phase.BACKWARD,
)

#: Inputs of at most this many elements: a Jacobian costs one backward pass per output element and
#: a Hessian one double backward per input element, and small ones reach every behaviour checked.
SMALL = 4
#: Programs of one float64 input: the functions the API is checked on.
functions = programs(max_leaves=1, max_ops=4, dtypes=(torch.float64,), zero_size=False).filter(
    lambda p: p.leaves[0].numel <= SMALL
)
#: A canonical function, sin(x) * x on three values, whose Jacobian is diagonal.
SIN_X = one_line_program("torch.sin(x0) * x0", tensor((0.5, -1.0, 1.5), (3,)))
#: A canonical function with fan-out and a reduction: a dense Jacobian.
MIXED = one_line_program("torch.tanh(x0) * x0.sum() + x0 ** 2", tensor((0.25, -0.5, 1.0, 2.0), (2, 2)))


#: The script line that makes the input the checks differentiate at: the program's leaf, contiguous, not requiring grad.
_INPUT = "x = x0.detach().contiguous()"
#: The script line defining the scalar function whose Hessian is checked.
_SCALAR = "f = lambda x: program(x).sum()"


def _finite_difference_jacobian(function, x: torch.Tensor) -> torch.Tensor:
    """d function(x) / dx by central differences, shaped out.shape + x.shape."""
    x = x.detach().clone()
    flat = x.view(-1)
    columns = []
    with torch.no_grad():
        out_shape = function(x).shape
        for j in range(flat.numel()):
            saved = flat[j].item()
            # clone(): a program of views returns x itself, which the next perturbation would change
            flat[j] = saved + FD_STEP
            up = function(x).reshape(-1).clone()
            flat[j] = saved - FD_STEP
            down = function(x).reshape(-1).clone()
            flat[j] = saved
            columns.append((up - down) / (2 * FD_STEP))
    jacobian = torch.stack(columns, dim=1) if columns else torch.zeros(out_shape.numel(), 0, dtype=x.dtype)
    return jacobian.reshape(tuple(out_shape) + tuple(x.shape))


def _flat(jacobian: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return jacobian.reshape(-1, x.numel())


def _rounded(t: torch.Tensor) -> list:
    return [round(v, 6) for v in t.detach().reshape(-1).tolist()]


def _direction(data, shape, label: str) -> torch.Tensor:
    return data.draw(
        tensors(shape=shape, dtypes=(torch.float64,), layouts=("contiguous",), requires_grad=False), label=label
    ).make()


@rule(
    "functional.jacobian-matches-finite-differences",
    section=Section.BEYOND,
    docs="functional-jacobian",
    given=dict(program=functions),
    examples=(dict(program=SIN_X), dict(program=MIXED)),
    references=(
        "autograd/test_functional.py::TestAutogradFunctional::test_jacobian_output",
        "docs: torch.autograd.functional.jacobian",
    ),
)
def jacobian_matches_finite_differences(program):
    """torch.autograd.functional.jacobian(f, x) has shape f(x).shape + x.shape and agrees with central finite differences of f."""
    script = program.script(_INPUT, "J = torch.autograd.functional.jacobian(program, x)", "print(J)")
    seen = script.run()
    x, jacobian, out = seen.x, seen.J, seen.out
    expect(
        tuple(jacobian.shape) == tuple(out.shape) + tuple(x.shape),
        what="shape of the Jacobian",
        expected=tuple(out.shape) + tuple(x.shape),
        observed=tuple(jacobian.shape),
        repro=script,
    )
    expect_close(
        jacobian,
        _finite_difference_jacobian(program, x),
        tolerance=FD_TOLERANCE,
        what="the Jacobian against finite differences",
        repro=script,
    )
    record(f"jacobian at a {tuple(x.shape)} input", _rounded(jacobian))


#: Programs of two float64 inputs, returned with a second output: tuple inputs and tuple outputs.
pairs = programs(
    min_leaves=2, max_leaves=2, max_ops=4, dtypes=(torch.float64,), all_require_grad=True, zero_size=False
).filter(lambda p: all(leaf.numel <= SMALL for leaf in p.leaves))


@rule(
    "functional.tuple-jacobians-are-nested",
    section=Section.BEYOND,
    docs="functional-jacobian",
    given=dict(program=pairs),
    references=(
        "autograd/test_functional.py::TestAutogradFunctional::test_jacobian_output",
        "docs: torch.autograd.functional.jacobian",
    ),
)
def tuple_jacobians_are_nested(program):
    """For tuple inputs and outputs, jacobian returns a nested tuple whose block [i][j] is the Jacobian of output i with respect to input j, of shape out_i.shape + in_j.shape."""
    script = program.script(
        "a, b = x0.detach().contiguous(), x1.detach().contiguous()",
        "",
        "def two_outputs(a, b):",
        "    return program(a, b), torch.sin(b) * 2.0",
        "",
        "J = torch.autograd.functional.jacobian(two_outputs, (a, b))",
        "print(J)",
    )
    seen = script.run()
    blocks, xs = seen.J, (seen.a, seen.b)
    expect(
        len(blocks) == 2 and all(len(row) == 2 for row in blocks),
        what="nesting of the Jacobian",
        expected="2 x 2 blocks",
        observed=[len(row) for row in blocks],
        repro=script,
    )
    for i in range(2):
        for j in range(2):

            def output_i_of_input_j(t, i=i, j=j):
                inputs = list(xs)
                inputs[j] = t
                return seen.two_outputs(*inputs)[i]

            expect_close(
                blocks[i][j],
                _finite_difference_jacobian(output_i_of_input_j, xs[j]),
                tolerance=FD_TOLERANCE,
                what=f"block [{i}][{j}] against finite differences",
                repro=script,
            )


@rule(
    "functional.vectorize-and-forward-mode-agree",
    section=Section.BEYOND,
    docs="functional-strategies",
    given=dict(program=functions),
    examples=(dict(program=MIXED),),
    references=(
        "autograd/test_functional.py::TestAutogradFunctional::test_jacobian_vectorize_correctness_simple",
        "docs: torch.autograd.functional.jacobian (vectorize, strategy)",
    ),
)
def vectorize_and_forward_mode_agree(program):
    """jacobian gives the same matrix row by row (the default), batched with vectorize=True, and column by column with strategy="forward-mode", vectorize=True."""
    script = program.script(
        _INPUT,
        "J = torch.autograd.functional.jacobian(program, x)",
        "Jv = torch.autograd.functional.jacobian(program, x, vectorize=True)",
        'Jf = torch.autograd.functional.jacobian(program, x, vectorize=True, strategy="forward-mode")',
        "print(J, Jv, Jf, sep='\\n')",
    )
    seen = script.run()
    expect_close(seen.Jv, seen.J, tolerance=ROUNDOFF, what="vectorize=True against the default", repro=script)
    expect_close(seen.Jf, seen.J, tolerance=ROUNDOFF, what='strategy="forward-mode" against the default', repro=script)
    record("forward-mode jacobian", _rounded(seen.Jf))


@rule(
    "functional.vjp-and-jvp-are-jacobian-products",
    section=Section.BEYOND,
    docs="functional-products",
    given=dict(program=functions, data=st.data()),
    references=(
        "autograd/test_functional.py::TestAutogradFunctional::test_jacobian_match_vjp_jvp",
        "docs: torch.autograd.functional.vjp, jvp",
    ),
)
def vjp_and_jvp_are_jacobian_products(program, data):
    """vjp(f, x, v) returns (f(x), vᵀJ) and jvp(f, x, u) returns (f(x), J u), where J is jacobian(f, x)."""
    x = program.inputs(requires_grad=False)[0]
    out = program(x)
    v = _direction(data, out.shape, "v")
    u = _direction(data, x.shape, "u")
    script = program.script(
        _INPUT,
        f"v = {literal(v)}",
        f"u = {literal(u)}",
        "J = torch.autograd.functional.jacobian(program, x)",
        "value_v, vjp = torch.autograd.functional.vjp(program, x, v)",
        "value_u, jvp = torch.autograd.functional.jvp(program, x, u)",
        "print(vjp, jvp, sep='\\n')",
    )
    seen = script.run()
    flat = _flat(seen.J, x)
    expect_close(seen.value_v, out, tolerance=ROUNDOFF, what="the value vjp returns against f(x)", repro=script)
    expect_close(
        seen.vjp, (v.reshape(1, -1) @ flat).reshape(x.shape), tolerance=ROUNDOFF, what="vjp against vᵀJ", repro=script
    )
    expect_close(seen.value_u, out, tolerance=ROUNDOFF, what="the value jvp returns against f(x)", repro=script)
    expect_close(
        seen.jvp, (flat @ u.reshape(-1, 1)).reshape(out.shape), tolerance=ROUNDOFF, what="jvp against J u", repro=script
    )


@rule(
    "functional.hvp-and-vhp-are-hessian-products",
    section=Section.BEYOND,
    docs="functional-products",
    given=dict(program=functions, data=st.data()),
    references=(
        "autograd/test_functional.py::TestAutogradFunctional::test_hessian_match_vhp_hvp",
        "docs: torch.autograd.functional.hvp, vhp",
    ),
)
def hvp_and_vhp_are_hessian_products(program, data):
    """For a scalar f, hvp(f, x, v) returns (f(x), H v) and vhp(f, x, v) returns (f(x), vᵀH), where H is hessian(f, x)."""
    x = program.inputs(requires_grad=False)[0]
    v = _direction(data, x.shape, "v")
    script = program.script(
        _INPUT,
        _SCALAR,
        f"v = {literal(v)}",
        "H = torch.autograd.functional.hessian(f, x)",
        "value, hvp = torch.autograd.functional.hvp(f, x, v)",
        "_, vhp = torch.autograd.functional.vhp(f, x, v)",
        "print(hvp, vhp, sep='\\n')",
    )
    seen = script.run()
    hessian = seen.H.reshape(x.numel(), x.numel())
    expect_close(
        seen.value, program(x).sum(), tolerance=ROUNDOFF, what="the value hvp returns against f(x)", repro=script
    )
    expect_close(
        seen.hvp,
        (hessian @ v.reshape(-1, 1)).reshape(x.shape),
        tolerance=ROUNDOFF,
        what="hvp against H v",
        repro=script,
    )
    expect_close(
        seen.vhp,
        (v.reshape(1, -1) @ hessian).reshape(x.shape),
        tolerance=ROUNDOFF,
        what="vhp against vᵀH",
        repro=script,
    )


@rule(
    "functional.hessian-strategies-agree",
    section=Section.BEYOND,
    docs="functional-strategies",
    given=dict(program=functions),
    examples=(dict(program=MIXED),),
    references=(
        "autograd/test_functional.py::TestAutogradFunctional::test_hessian_vectorize_correctness_simple",
        "docs: torch.autograd.functional.hessian (outer_jacobian_strategy)",
    ),
)
def hessian_strategies_agree(program):
    """hessian gives the same matrix by reverse-over-reverse, with vectorize=True, and forward-over-reverse (outer_jacobian_strategy="forward-mode", vectorize=True)."""
    script = program.script(
        _INPUT,
        _SCALAR,
        "H = torch.autograd.functional.hessian(f, x)",
        "Hv = torch.autograd.functional.hessian(f, x, vectorize=True)",
        'Hf = torch.autograd.functional.hessian(f, x, vectorize=True, outer_jacobian_strategy="forward-mode")',
        "print(H, Hv, Hf, sep='\\n')",
    )
    seen = script.run()
    expect_close(seen.Hv, seen.H, tolerance=ROUNDOFF, what="vectorize=True against the default", repro=script)
    expect_close(
        seen.Hf, seen.H, tolerance=ROUNDOFF, what="forward-over-reverse against reverse-over-reverse", repro=script
    )
    record("hessian", _rounded(seen.Hf))


APIS = ("jacobian", "vjp", "jvp")


def _call(api: str, function: str, strict: bool = False) -> str:
    """Code computing jacobian(function, x), or the product that vjp or jvp returns with a vector of ones."""
    options = ", strict=True" if strict else ""
    if api == "jacobian":
        return f"torch.autograd.functional.jacobian({function}, x{options})"
    v = f"torch.ones_like({function}(x))" if api == "vjp" else "torch.ones_like(x)"
    return f"torch.autograd.functional.{api}({function}, x, {v}{options})[1]"


#: A function whose output does not depend on its input, differentiated by ``$call`` at ``x``.
CONSTANT = """
x = $x.contiguous()

def constant(t):
    return torch.ones(2, dtype=t.dtype)

r = $call
print(r)
"""
#: The Hessian of a linear function, with or without strict (``$options``).
LINEAR = """
x = $x.contiguous()

def linear(t):
    return ($scale * t).sum()

H = torch.autograd.functional.hessian(linear, x$options)
print(H)
"""


@rule(
    "functional.strict-refuses-independent-outputs",
    section=Section.BEYOND,
    docs="functional-strict",
    given=dict(
        x=tensors(dtypes=(torch.float64,), max_ndim=2, zero_size=False, requires_grad=False), api=st.sampled_from(APIS)
    ),
    examples=(dict(x=tensor((1.0, 2.0), (2,), requires_grad=False), api="jacobian"),),
    contracts=(STRICT_OUTPUT,),
    references=(
        "autograd/test_functional.py::TestAutogradFunctional::test_jacobian_err_check_strict",
        "autograd/test_functional.py::TestAutogradFunctional::test_vjp_err_check_strict",
        "autograd/test_functional.py::TestAutogradFunctional::test_jvp_err_check_strict",
    ),
)
def strict_refuses_independent_outputs(x, api):
    """For an output that does not depend on the input, jacobian, vjp and jvp return zeros by default and raise a RuntimeError with strict=True."""
    relaxed = Script(CONSTANT, x=x.expression(), call=_call(api, "constant"))
    seen = relaxed.run()
    expect(
        bool((seen.r == 0).all()),
        what=f"{api} of a constant function without strict",
        expected="zeros",
        observed=seen.r,
        repro=relaxed,
    )
    strict = Script(CONSTANT, x=x.expression(), call=_call(api, "constant", strict=True))
    message = STRICT_OUTPUT.check(lambda: None, backward=lambda _: strict.run(), repro=strict)
    record(f"{api} strict message", message)


@rule(
    "functional.strict-hessian-refuses-linear-functions",
    section=Section.BEYOND,
    docs="functional-strict",
    given=dict(
        x=tensors(dtypes=(torch.float64,), max_ndim=2, zero_size=False, requires_grad=False),
        scale=st.sampled_from((0.5, -2.0, 3.0)),
    ),
    examples=(dict(x=tensor((1.0, -2.0), (2,), requires_grad=False), scale=0.5),),
    contracts=(STRICT_HESSIAN,),
    references=(
        "autograd/test_functional.py::TestAutogradFunctional::test_hessian_err_check_strict",
        "autograd/test_functional.py::TestAutogradFunctional::test_hvp_err_check_strict",
    ),
)
def strict_hessian_refuses_linear_functions(x, scale):
    """The Hessian of a linear function is zero, and hessian(..., strict=True) refuses it with a RuntimeError, because the gradient does not depend on the input."""
    relaxed = Script(LINEAR, x=x.expression(), scale=scale, options="")
    seen = relaxed.run()
    expect(
        bool((seen.H == 0).all()),
        what="hessian of a linear function without strict",
        expected="zeros",
        observed=seen.H,
        repro=relaxed,
    )
    strict = Script(LINEAR, x=x.expression(), scale=scale, options=", strict=True")
    message = STRICT_HESSIAN.check(lambda: None, backward=lambda _: strict.run(), repro=strict)
    record("message", message)


#: Options that exclude each other: the contract each combination meets, and the call that makes it.
EXCLUSIVE = {
    "strict+vectorize": (STRICT_VECTORIZE, "jacobian(program, x, strict=True, vectorize=True)"),
    "forward-mode alone": (FORWARD_NEEDS_VECTORIZE, 'jacobian(program, x, strategy="forward-mode")'),
    "forward-over-reverse alone": (FORWARD_NEEDS_VECTORIZE, 'hessian(f, x, outer_jacobian_strategy="forward-mode")'),
    "unknown strategy": (UNKNOWN_STRATEGY, 'jacobian(program, x, strategy="sideways")'),
}


@rule(
    "functional.options-that-exclude-each-other",
    section=Section.BEYOND,
    docs="functional-strategies",
    given=dict(program=functions, combination=st.sampled_from(tuple(EXCLUSIVE))),
    examples=(dict(program=SIN_X, combination="forward-mode alone"),),
    contracts=(STRICT_VECTORIZE, FORWARD_NEEDS_VECTORIZE, UNKNOWN_STRATEGY),
    references=(
        "autograd/test_functional.py::TestAutogradFunctional::test_jacobian_err_check",
        "docs: torch.autograd.functional.jacobian (strategy)",
    ),
)
def options_that_exclude_each_other(program, combination):
    """strict=True with vectorize=True raises a RuntimeError, forward-mode Jacobians and forward-over-reverse Hessians without vectorize=True raise NotImplementedError, and an unknown strategy raises an AssertionError."""
    contract, call = EXCLUSIVE[combination]
    script = program.script(
        _INPUT, *((_SCALAR,) if call.startswith("hessian(f") else ()), f"torch.autograd.functional.{call}"
    )
    message = contract.check(lambda: None, backward=lambda _: script.run(), repro=script)
    record(f"{combination} message", message)


RESULTS = ("jacobian", "hessian", "vjp", "jvp", "hvp", "vhp")


#: The APIs that differentiate a scalar function (``scalar``, the sum of ``f``).
SCALAR_APIS = ("hessian", "hvp", "vhp")


def _result(api: str, x: str, create_graph: bool) -> str:
    """Code computing ``api``'s result for ``f`` (or its sum, ``scalar``) at ``x``, with vectors of ones."""
    function = "scalar" if api in SCALAR_APIS else "f"
    options = f"create_graph={create_graph}"
    if api in ("jacobian", "hessian"):
        return f"torch.autograd.functional.{api}({function}, {x}, {options})"
    v = f"torch.ones_like(f({x}))" if api == "vjp" else f"torch.ones_like({x})"
    return f"torch.autograd.functional.{api}({function}, {x}, {v}, {options})[1]"


@rule(
    "functional.create-graph-makes-results-differentiable",
    section=Section.BEYOND,
    docs="functional-create-graph",
    given=dict(
        program=functions,
        api=st.sampled_from(RESULTS),
        create_graph=st.booleans(),
        grad_enabled=st.booleans(),
        input_requires_grad=st.booleans(),
    ),
    examples=(
        dict(program=SIN_X, api="jacobian", create_graph=True, grad_enabled=False, input_requires_grad=False),
        dict(program=SIN_X, api="hvp", create_graph=False, grad_enabled=True, input_requires_grad=True),
    ),
    references=(
        "autograd/test_functional.py::TestAutogradFunctional::test_jacobian_create_graph",
        "autograd/test_functional.py::TestAutogradFunctional::test_jacobian_no_grad",
    ),
)
def create_graph_makes_results_differentiable(program, api, create_graph, grad_enabled, input_requires_grad):
    """With create_graph=False the results of jacobian, hessian, vjp, jvp, hvp and vhp never require grad, and with create_graph=True a result that depends on the input does, even under torch.no_grad and for an input that does not require grad."""
    script = program.script(
        f"x = x0.detach().contiguous().requires_grad_({input_requires_grad})",
        "f = lambda t: torch.sin(program(t))  # sin(...) makes every derivative depend on the input",
        *(("scalar = lambda t: f(t).sum()",) if api in SCALAR_APIS else ()),
        f"with torch.set_grad_enabled({grad_enabled}):",
        f"    r = {_result(api, 'x', create_graph)}",
        "print(r.requires_grad)",
    )
    result = script.run().r
    expect(
        result.requires_grad == create_graph,
        what=f"{api}(..., create_graph={create_graph}).requires_grad",
        expected=create_graph,
        observed=result.requires_grad,
        repro=script,
    )
    if create_graph:
        # The graph is real: the result's gradient with respect to the input exists.
        differentiated = script.then(
            """
            point = x.detach().requires_grad_()
            with torch.enable_grad():
                again = $call
                second = torch.autograd.grad(again.sum(), point, allow_unused=True)[0]
            print(second)
            """,
            call=_result(api, "point", True),
        )
        second = differentiated.run().second
        expect(
            second is not None,
            what=f"gradient of {api}(..., create_graph=True) with respect to x",
            expected="a tensor",
            observed=second,
            repro=differentiated,
        )
    record(f"{api} requires_grad", result.requires_grad)


@rule(
    "functional.hessian-needs-a-single-element",
    section=Section.BEYOND,
    docs="functional-errors",
    given=dict(program=functions, api=st.sampled_from(("hessian", "hvp", "vhp", "vjp")), extra=st.integers(2, 4)),
    examples=(dict(program=SIN_X, api="hessian", extra=2), dict(program=SIN_X, api="vjp", extra=2)),
    contracts=(NOT_SCALAR, V_NEEDED),
    references=(
        "autograd/test_functional.py::TestAutogradFunctional::test_hessian_err_check",
        "autograd/test_functional.py::TestAutogradFunctional::test_vjp_err_check",
    ),
)
def hessian_needs_a_single_element(program, api, extra):
    """hessian, hvp and vhp of a function with more than one output element raise a RuntimeError, and so does vjp without v."""
    contract = V_NEEDED if api == "vjp" else NOT_SCALAR
    call = {"vjp": "vjp(f, x)", "hessian": "hessian(f, x)"}.get(api, f"{api}(f, x, torch.ones_like(x))")
    script = program.script(
        _INPUT,
        f"f = lambda t: program(t).sum() * torch.ones({extra}, dtype=t.dtype)",
        f"torch.autograd.functional.{call}",
    )
    message = contract.check(lambda: None, backward=lambda _: script.run(), repro=script)
    record(f"{api} message", message)


#: The functions of torch.autograd.functional, the function each is given (a vector function for the
#: Jacobian products, a scalar one for the Hessian products), and whether it takes a vector ``v``.
VALIDATING = {
    "jacobian": ("torch.sin", False),
    "vjp": ("torch.sin", True),
    "jvp": ("torch.sin", True),
    "hessian": ("lambda t: t.sin().sum()", False),
    "hvp": ("lambda t: t.sin().sum()", True),
    "vhp": ("lambda t: t.sin().sum()", True),
}
#: Each misuse: the call's arguments after the function name, and what the message names.
MISUSES = {
    "list input": ("$f, [x]$v", "inputs"),
    "float input": ("$f, 1.5", "inputs"),
    "float output": ("lambda t: 1.5, x$v", "outputs of the user-provided function"),
    "list v": ("$f, x, [x]", "v"),
}


@rule(
    "functional.inputs-and-outputs-are-tensors",
    section=Section.BEYOND,
    docs="functional-errors",
    given=dict(
        x=tensors(dtypes=(torch.float64,), max_ndim=2, requires_grad=False),
        function=st.sampled_from(sorted(VALIDATING)),
        wrong=st.sampled_from(sorted(MISUSES)),
    ),
    examples=tuple(
        dict(x=tensor((1.0, 2.0), (2,), requires_grad=False), function=function, wrong="list input")
        for function in sorted(VALIDATING)
    ),
    contracts=(NOT_A_TENSOR,),
    references=(
        "autograd/test_functional.py::TestAutogradFunctional::test_jacobian_err_check",
        "autograd/test_functional.py::TestAutogradFunctional::test_vjp_err_check",
        "autograd/test_functional.py::TestAutogradFunctional::test_jvp_err_check",
        "autograd/test_functional.py::TestAutogradFunctional::test_hessian_err_check",
        "autograd/test_functional.py::TestAutogradFunctional::test_hvp_err_check",
        "autograd/test_functional.py::TestAutogradFunctional::test_vhp_err_check",
    ),
)
def inputs_and_outputs_are_tensors(x, function, wrong):
    """jacobian, vjp, jvp, hessian, hvp and vhp accept a Tensor or a tuple of Tensors as inputs, as outputs of the function and as v; a list or a Python number raises a TypeError naming the function and the argument."""
    f, takes_v = VALIDATING[function]
    if wrong == "list v" and not takes_v:
        wrong = "list input"
    arguments, named = MISUSES[wrong]
    code = function + "(" + arguments.replace("$f", f).replace("$v", ", x" if takes_v else "") + ")"
    script = Script("x = $x\ntorch.autograd.functional.$code", x=x.expression(), code=code)
    message = NOT_A_TENSOR.check(lambda: None, backward=lambda _: script.run(), repro=script)
    expect(
        message.startswith(f"The {named} given to {function} must be"),
        what=f"the message of {code} names the argument and the function",
        expected=f"The {named} given to {function} must be ...",
        observed=message,
        repro=script,
    )
    record(f"{function}, {wrong}: message", message)
