"""``torch.autograd.functional``: Jacobians, Hessians and their products, and the options that change them."""
from __future__ import annotations

import torch
from hypothesis import strategies as st
from torch.autograd import functional as AF

from specs.engine.contracts import ErrorContract, Phase
from specs.engine.expect import Tolerance, expect, expect_close
from specs.engine.oracles import FD_STEP, FD_TOLERANCE
from specs.engine.sections import Section
from specs.engine.registry import Family, record, rule
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
    RuntimeError, r"`strict=True` and `vectorized=True` are not supported together", Phase.BACKWARD,
)
FORWARD_NEEDS_VECTORIZE = ErrorContract(
    NotImplementedError,
    r"Computing Jacobian using forward-AD or forward-over-reverse Hessian is\s*only implemented for "
    r"`vectorize=True`",
    Phase.BACKWARD,
    wording="the message reads 'isonly' (a missing space) on 2.13",
)
UNKNOWN_STRATEGY = ErrorContract(
    AssertionError, r'Expected strategy to be either "forward-mode" or "reverse-mode"', Phase.BACKWARD,
)
NOT_SCALAR = ErrorContract(
    RuntimeError, r"The Tensor returned by the function given to (hessian|hvp|vhp) should contain a single element",
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
    r"The (inputs given to|outputs of the user-provided function given to) \w+ must be either a Tensor or a "
    r"tuple of Tensors",
    Phase.BACKWARD,
)

#: Inputs of at most this many elements: a Jacobian costs one backward pass per output element and
#: a Hessian one double backward per input element, and small ones reach every behaviour checked.
SMALL = 4
#: Programs of one float64 input: the functions the API is checked on.
functions = programs(max_leaves=1, max_ops=4, dtypes=(torch.float64,), zero_size=False).filter(
    lambda p: p.leaves[0].numel <= SMALL)
#: A canonical function, sin(x) * x on three values, whose Jacobian is diagonal.
SIN_X = one_line_program("torch.sin(x0) * x0", tensor((0.5, -1.0, 1.5), (3,)))
#: A canonical function with fan-out and a reduction: a dense Jacobian.
MIXED = one_line_program("torch.tanh(x0) * x0.sum() + x0 ** 2", tensor((0.25, -0.5, 1.0, 2.0), (2, 2)))


def _input(program) -> torch.Tensor:
    return program.inputs(requires_grad=False)[0].contiguous()


def _scalar(program):
    return lambda x: program(x).sum()


def _finite_difference_jacobian(function, x: torch.Tensor) -> torch.Tensor:
    """d function(x) / dx by central differences, shaped out.shape + x.shape."""
    x = x.detach().clone()
    flat = x.view(-1)
    columns = []
    with torch.no_grad():
        out_shape = function(x).shape
        for j in range(flat.numel()):
            saved = flat[j].item()
            flat[j] = saved + FD_STEP
            up = function(x).reshape(-1)
            flat[j] = saved - FD_STEP
            down = function(x).reshape(-1)
            flat[j] = saved
            columns.append((up - down) / (2 * FD_STEP))
    jacobian = torch.stack(columns, dim=1) if columns else torch.zeros(out_shape.numel(), 0, dtype=x.dtype)
    return jacobian.reshape(tuple(out_shape) + tuple(x.shape))


def _flat(jacobian: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return jacobian.reshape(-1, x.numel())


def _rounded(t: torch.Tensor) -> list:
    return [round(v, 6) for v in t.detach().reshape(-1).tolist()]


def _direction(data, shape, label: str) -> torch.Tensor:
    return data.draw(tensors(shape=shape, dtypes=(torch.float64,), layouts=("contiguous",), requires_grad=False),
                     label=label).make()


@rule("functional.jacobian-matches-finite-differences", section=Section.BEYOND, docs="functional-jacobian",
      given=dict(program=functions), examples=(dict(program=SIN_X), dict(program=MIXED)),
      references=("autograd/test_functional.py::TestAutogradFunctional::test_jacobian_output",
                  "docs: torch.autograd.functional.jacobian"))
def jacobian_matches_finite_differences(program):
    """torch.autograd.functional.jacobian(f, x) has shape f(x).shape + x.shape and agrees with central finite differences of f."""
    x = _input(program)
    jacobian = AF.jacobian(program, x)
    out = program(x)
    repro = program.repro("J = torch.autograd.functional.jacobian(program, x0.detach())")
    expect(tuple(jacobian.shape) == tuple(out.shape) + tuple(x.shape), what="shape of the Jacobian",
           expected=tuple(out.shape) + tuple(x.shape), observed=tuple(jacobian.shape), repro=repro)
    expect_close(jacobian, _finite_difference_jacobian(program, x), tolerance=FD_TOLERANCE,
                 what="the Jacobian against finite differences", repro=repro)
    record(f"jacobian at a {tuple(x.shape)} input", _rounded(jacobian))


#: Programs of two float64 inputs, returned with a second output: tuple inputs and tuple outputs.
pairs = programs(min_leaves=2, max_leaves=2, max_ops=4, dtypes=(torch.float64,), all_require_grad=True,
                 zero_size=False).filter(lambda p: all(leaf.numel <= SMALL for leaf in p.leaves))


@rule("functional.tuple-jacobians-are-nested", section=Section.BEYOND, docs="functional-jacobian",
      given=dict(program=pairs),
      references=("autograd/test_functional.py::TestAutogradFunctional::test_jacobian_output",
                  "docs: torch.autograd.functional.jacobian"))
def tuple_jacobians_are_nested(program):
    """For tuple inputs and outputs, jacobian returns a nested tuple whose block [i][j] is the Jacobian of output i with respect to input j, of shape out_i.shape + in_j.shape."""
    xs = tuple(x.contiguous() for x in program.inputs(requires_grad=False))

    def two_outputs(*inputs):
        out = program(*inputs)
        return out, torch.sin(inputs[1]) * 2.0

    blocks = AF.jacobian(two_outputs, xs)
    repro = program.repro("f = lambda a, b: (program(a, b), torch.sin(b) * 2.0)",
                          "J = torch.autograd.functional.jacobian(f, (x0.detach(), x1.detach()))")
    expect(len(blocks) == 2 and all(len(row) == 2 for row in blocks), what="nesting of the Jacobian", expected="2 x 2 blocks",
           observed=[len(row) for row in blocks], repro=repro)
    for i in range(2):
        for j in range(2):
            def output_i_of_input_j(t, i=i, j=j):
                inputs = list(xs)
                inputs[j] = t
                return two_outputs(*inputs)[i]

            expect_close(blocks[i][j], _finite_difference_jacobian(output_i_of_input_j, xs[j]), tolerance=FD_TOLERANCE,
                         what=f"block [{i}][{j}] against finite differences", repro=repro)


@rule("functional.vectorize-and-forward-mode-agree", section=Section.BEYOND, docs="functional-strategies",
      given=dict(program=functions), examples=(dict(program=MIXED),),
      references=("autograd/test_functional.py::TestAutogradFunctional::test_jacobian_vectorize_correctness_simple",
                  "docs: torch.autograd.functional.jacobian (vectorize, strategy)"))
def vectorize_and_forward_mode_agree(program):
    """jacobian gives the same matrix row by row (the default), batched with vectorize=True, and column by column with strategy="forward-mode", vectorize=True."""
    x = _input(program)
    rows = AF.jacobian(program, x)
    repro = program.repro("x = x0.detach()", "J = torch.autograd.functional.jacobian(program, x)",
                          "Jv = torch.autograd.functional.jacobian(program, x, vectorize=True)",
                          'Jf = torch.autograd.functional.jacobian(program, x, vectorize=True, '
                          'strategy="forward-mode")')
    expect_close(AF.jacobian(program, x, vectorize=True), rows, tolerance=ROUNDOFF, what="vectorize=True against the default",
                 repro=repro)
    forward = AF.jacobian(program, x, vectorize=True, strategy="forward-mode")
    expect_close(forward, rows, tolerance=ROUNDOFF, what='strategy="forward-mode" against the default', repro=repro)
    record("forward-mode jacobian", _rounded(forward))


@rule("functional.vjp-and-jvp-are-jacobian-products", section=Section.BEYOND, docs="functional-products",
      given=dict(program=functions, data=st.data()),
      references=("autograd/test_functional.py::TestAutogradFunctional::test_jacobian_match_vjp_jvp",
                  "docs: torch.autograd.functional.vjp, jvp"))
def vjp_and_jvp_are_jacobian_products(program, data):
    """vjp(f, x, v) returns (f(x), vᵀJ) and jvp(f, x, u) returns (f(x), J u), where J is jacobian(f, x)."""
    x = _input(program)
    out = program(x)
    flat = _flat(AF.jacobian(program, x), x)
    v = _direction(data, out.shape, "v")
    u = _direction(data, x.shape, "u")
    repro = program.repro("x = x0.detach()", "J = torch.autograd.functional.jacobian(program, x)",
                          "torch.autograd.functional.vjp(program, x, v)",
                          "torch.autograd.functional.jvp(program, x, u)")
    value, vjp = AF.vjp(program, x, v)
    expect_close(value, out, tolerance=ROUNDOFF, what="the value vjp returns against f(x)", repro=repro)
    expect_close(vjp, (v.reshape(1, -1) @ flat).reshape(x.shape), tolerance=ROUNDOFF, what="vjp against vᵀJ", repro=repro)
    value, jvp = AF.jvp(program, x, u)
    expect_close(value, out, tolerance=ROUNDOFF, what="the value jvp returns against f(x)", repro=repro)
    expect_close(jvp, (flat @ u.reshape(-1, 1)).reshape(out.shape), tolerance=ROUNDOFF, what="jvp against J u", repro=repro)


@rule("functional.hvp-and-vhp-are-hessian-products", section=Section.BEYOND, docs="functional-products",
      given=dict(program=functions, data=st.data()),
      references=("autograd/test_functional.py::TestAutogradFunctional::test_hessian_match_vhp_hvp",
                  "docs: torch.autograd.functional.hvp, vhp"))
def hvp_and_vhp_are_hessian_products(program, data):
    """For a scalar f, hvp(f, x, v) returns (f(x), H v) and vhp(f, x, v) returns (f(x), vᵀH), where H is hessian(f, x)."""
    x = _input(program)
    f = _scalar(program)
    hessian = AF.hessian(f, x).reshape(x.numel(), x.numel())
    v = _direction(data, x.shape, "v")
    repro = program.repro("f = lambda x: program(x).sum()", "H = torch.autograd.functional.hessian(f, x0.detach())",
                          "torch.autograd.functional.hvp(f, x0.detach(), v)")
    value, hvp = AF.hvp(f, x, v)
    expect_close(value, f(x), tolerance=ROUNDOFF, what="the value hvp returns against f(x)", repro=repro)
    expect_close(hvp, (hessian @ v.reshape(-1, 1)).reshape(x.shape), tolerance=ROUNDOFF, what="hvp against H v", repro=repro)
    value, vhp = AF.vhp(f, x, v)
    expect_close(vhp, (v.reshape(1, -1) @ hessian).reshape(x.shape), tolerance=ROUNDOFF, what="vhp against vᵀH", repro=repro)


@rule("functional.hessian-strategies-agree", section=Section.BEYOND, docs="functional-strategies",
      given=dict(program=functions), examples=(dict(program=MIXED),),
      references=("autograd/test_functional.py::TestAutogradFunctional::test_hessian_vectorize_correctness_simple",
                  "docs: torch.autograd.functional.hessian (outer_jacobian_strategy)"))
def hessian_strategies_agree(program):
    """hessian gives the same matrix by reverse-over-reverse, with vectorize=True, and forward-over-reverse (outer_jacobian_strategy="forward-mode", vectorize=True)."""
    x = _input(program)
    f = _scalar(program)
    reference = AF.hessian(f, x)
    repro = program.repro("f = lambda x: program(x).sum()",
                          'torch.autograd.functional.hessian(f, x0.detach(), vectorize=True, '
                          'outer_jacobian_strategy="forward-mode")')
    expect_close(AF.hessian(f, x, vectorize=True), reference, tolerance=ROUNDOFF, what="vectorize=True against the default",
                 repro=repro)
    forward = AF.hessian(f, x, vectorize=True, outer_jacobian_strategy="forward-mode")
    expect_close(forward, reference, tolerance=ROUNDOFF, what="forward-over-reverse against reverse-over-reverse", repro=repro)
    record("hessian", _rounded(forward))


APIS = ("jacobian", "vjp", "jvp")


def _call(api: str, function, x: torch.Tensor, **options):
    if api == "jacobian":
        return AF.jacobian(function, x, **options)
    v = torch.ones_like(function(x)) if api == "vjp" else torch.ones_like(x)
    return getattr(AF, api)(function, x, v, **options)[1]


@rule("functional.strict-refuses-independent-outputs", section=Section.BEYOND, docs="functional-strict",
      given=dict(x=tensors(dtypes=(torch.float64,), max_ndim=2, zero_size=False, requires_grad=False),
                 api=st.sampled_from(APIS)),
      examples=(dict(x=tensor((1.0, 2.0), (2,), requires_grad=False), api="jacobian"),),
      contracts=(STRICT_OUTPUT,),
      references=("autograd/test_functional.py::TestAutogradFunctional::test_jacobian_err_check_strict",
                  "autograd/test_functional.py::TestAutogradFunctional::test_vjp_err_check_strict",
                  "autograd/test_functional.py::TestAutogradFunctional::test_jvp_err_check_strict"))
def strict_refuses_independent_outputs(x, api):
    """For an output that does not depend on the input, jacobian, vjp and jvp return zeros by default and raise a RuntimeError with strict=True."""
    point = x.make().contiguous()

    def constant(t):
        return torch.ones(2, dtype=t.dtype)

    repro = f"x = {x.expression()}\ntorch.autograd.functional.{api}(lambda t: torch.ones(2, dtype=t.dtype), x, ...)"
    relaxed = _call(api, constant, point)
    expect(bool((relaxed == 0).all()), what=f"{api} of a constant function without strict", expected="zeros", observed=relaxed, repro=repro)
    message = STRICT_OUTPUT.check(lambda: constant, backward=lambda f: _call(api, f, point, strict=True),
                                  repro=repro + "  # strict=True")
    record(f"{api} strict message", message)


@rule("functional.strict-hessian-refuses-linear-functions", section=Section.BEYOND, docs="functional-strict",
      given=dict(x=tensors(dtypes=(torch.float64,), max_ndim=2, zero_size=False, requires_grad=False),
                 scale=st.sampled_from((0.5, -2.0, 3.0))),
      examples=(dict(x=tensor((1.0, -2.0), (2,), requires_grad=False), scale=0.5),),
      contracts=(STRICT_HESSIAN,),
      references=("autograd/test_functional.py::TestAutogradFunctional::test_hessian_err_check_strict",
                  "autograd/test_functional.py::TestAutogradFunctional::test_hvp_err_check_strict"))
def strict_hessian_refuses_linear_functions(x, scale):
    """The Hessian of a linear function is zero, and hessian(..., strict=True) refuses it with a RuntimeError, because the gradient does not depend on the input."""
    point = x.make().contiguous()

    def linear(t):
        return (scale * t).sum()

    repro = f"x = {x.expression()}\ntorch.autograd.functional.hessian(lambda t: ({scale} * t).sum(), x, strict=True)"
    relaxed = AF.hessian(linear, point)
    expect(bool((relaxed == 0).all()), what="hessian of a linear function without strict", expected="zeros", observed=relaxed, repro=repro)
    message = STRICT_HESSIAN.check(lambda: linear, backward=lambda f: AF.hessian(f, point, strict=True), repro=repro)
    record("message", message)


@rule("functional.options-that-exclude-each-other", section=Section.BEYOND, docs="functional-strategies",
      given=dict(program=functions, combination=st.sampled_from(("strict+vectorize", "forward-mode alone",
                                                                 "forward-over-reverse alone", "unknown strategy"))),
      examples=(dict(program=SIN_X, combination="forward-mode alone"),),
      contracts=(STRICT_VECTORIZE, FORWARD_NEEDS_VECTORIZE, UNKNOWN_STRATEGY),
      references=("autograd/test_functional.py::TestAutogradFunctional::test_jacobian_err_check",
                  "docs: torch.autograd.functional.jacobian (strategy)"))
def options_that_exclude_each_other(program, combination):
    """strict=True with vectorize=True raises a RuntimeError, forward-mode Jacobians and forward-over-reverse Hessians without vectorize=True raise NotImplementedError, and an unknown strategy raises an AssertionError."""
    x = _input(program)
    f = _scalar(program)
    calls = {
        "strict+vectorize": (STRICT_VECTORIZE, lambda: AF.jacobian(program, x, strict=True, vectorize=True),
                             "jacobian(program, x, strict=True, vectorize=True)"),
        "forward-mode alone": (FORWARD_NEEDS_VECTORIZE, lambda: AF.jacobian(program, x, strategy="forward-mode"),
                               'jacobian(program, x, strategy="forward-mode")'),
        "forward-over-reverse alone": (
            FORWARD_NEEDS_VECTORIZE, lambda: AF.hessian(f, x, outer_jacobian_strategy="forward-mode"),
            'hessian(lambda x: program(x).sum(), x, outer_jacobian_strategy="forward-mode")'),
        "unknown strategy": (UNKNOWN_STRATEGY, lambda: AF.jacobian(program, x, strategy="sideways"),
                             'jacobian(program, x, strategy="sideways")'),
    }
    contract, call, code = calls[combination]
    message = contract.check(lambda: None, backward=lambda _: call(),
                             repro=program.repro("x = x0.detach()", f"torch.autograd.functional.{code}"))
    record(f"{combination} message", message)


RESULTS = ("jacobian", "hessian", "vjp", "jvp", "hvp", "vhp")


def _result(api: str, function, x: torch.Tensor, create_graph: bool) -> torch.Tensor:
    def scalar(t):
        return function(t).sum()

    if api == "jacobian":
        return AF.jacobian(function, x, create_graph=create_graph)
    if api == "hessian":
        return AF.hessian(scalar, x, create_graph=create_graph)
    if api == "vjp":
        return AF.vjp(function, x, torch.ones_like(function(x)), create_graph=create_graph)[1]
    return getattr(AF, api)(function if api == "jvp" else scalar, x, torch.ones_like(x), create_graph=create_graph)[1]


@rule("functional.create-graph-makes-results-differentiable", section=Section.BEYOND, docs="functional-create-graph",
      given=dict(program=functions, api=st.sampled_from(RESULTS), create_graph=st.booleans(),
                 grad_enabled=st.booleans(), input_requires_grad=st.booleans()),
      examples=(dict(program=SIN_X, api="jacobian", create_graph=True, grad_enabled=False,
                     input_requires_grad=False),
                dict(program=SIN_X, api="hvp", create_graph=False, grad_enabled=True, input_requires_grad=True)),
      references=("autograd/test_functional.py::TestAutogradFunctional::test_jacobian_create_graph",
                  "autograd/test_functional.py::TestAutogradFunctional::test_jacobian_no_grad"))
def create_graph_makes_results_differentiable(program, api, create_graph, grad_enabled, input_requires_grad):
    """With create_graph=False the results of jacobian, hessian, vjp, jvp, hvp and vhp never require grad, and with create_graph=True a result that depends on the input does, even under torch.no_grad and for an input that does not require grad."""
    x = _input(program).requires_grad_(input_requires_grad)

    def curved(t):  # sin(...) makes every derivative depend on the input
        return torch.sin(program(t))

    with torch.set_grad_enabled(grad_enabled):
        result = _result(api, curved, x, create_graph)
    repro = program.repro("f = lambda t: torch.sin(program(t))",
                          f"x = x0.detach().requires_grad_({input_requires_grad})",
                          f"with torch.set_grad_enabled({grad_enabled}):",
                          f"    r = torch.autograd.functional.{api}(f, x, ..., create_graph={create_graph})",
                          "print(r.requires_grad)")
    expect(result.requires_grad == create_graph, what=f"{api}(..., create_graph={create_graph}).requires_grad",
           expected=create_graph, observed=result.requires_grad, repro=repro)
    if create_graph:
        # The graph is real: the result's gradient with respect to the input exists.
        point = x.detach().requires_grad_()
        with torch.enable_grad():
            again = _result(api, curved, point, True)
            second = torch.autograd.grad(again.sum(), point, allow_unused=True)[0]
        expect(second is not None, what=f"gradient of {api}(..., create_graph=True) with respect to x", expected="a tensor",
               observed=second, repro=repro)
    record(f"{api} requires_grad", result.requires_grad)


@rule("functional.hessian-needs-a-single-element", section=Section.BEYOND, docs="functional-errors",
      given=dict(program=functions, api=st.sampled_from(("hessian", "hvp", "vhp", "vjp")),
                 extra=st.integers(2, 4)),
      examples=(dict(program=SIN_X, api="hessian", extra=2), dict(program=SIN_X, api="vjp", extra=2)),
      contracts=(NOT_SCALAR, V_NEEDED),
      references=("autograd/test_functional.py::TestAutogradFunctional::test_hessian_err_check",
                  "autograd/test_functional.py::TestAutogradFunctional::test_vjp_err_check"))
def hessian_needs_a_single_element(program, api, extra):
    """hessian, hvp and vhp of a function with more than one output element raise a RuntimeError, and so does vjp without v."""
    x = _input(program)

    def several(t):
        return program(t).sum() * torch.ones(extra, dtype=t.dtype)

    if api == "vjp":
        contract, call = V_NEEDED, lambda: AF.vjp(several, x)
    elif api == "hessian":
        contract, call = NOT_SCALAR, lambda: AF.hessian(several, x)
    else:
        contract, call = NOT_SCALAR, lambda: getattr(AF, api)(several, x, torch.ones_like(x))
    message = contract.check(
        lambda: None, backward=lambda _: call(),
        repro=program.repro(f"f = lambda t: program(t).sum() * torch.ones({extra}, dtype=t.dtype)",
                            f"torch.autograd.functional.{api}(f, x0.detach(), ...)"))
    record(f"{api} message", message)


@rule("functional.inputs-and-outputs-are-tensors", section=Section.BEYOND, docs="functional-errors",
      given=dict(x=tensors(dtypes=(torch.float64,), max_ndim=2, requires_grad=False),
                 wrong=st.sampled_from(("list input", "float input", "float output"))),
      examples=(dict(x=tensor((1.0, 2.0), (2,), requires_grad=False), wrong="list input"),),
      contracts=(NOT_A_TENSOR,),
      references=("autograd/test_functional.py::TestAutogradFunctional::test_jacobian_err_check",))
def inputs_and_outputs_are_tensors(x, wrong):
    """jacobian accepts a Tensor or a tuple of Tensors as inputs and as outputs of the function; a list or a Python number raises a TypeError."""
    point = x.make()
    calls = {
        "list input": (lambda: AF.jacobian(torch.sin, [point]), "jacobian(torch.sin, [x])"),
        "float input": (lambda: AF.jacobian(torch.sin, 1.5), "jacobian(torch.sin, 1.5)"),
        "float output": (lambda: AF.jacobian(lambda t: 1.5, point), "jacobian(lambda t: 1.5, x)"),
    }
    call, code = calls[wrong]
    message = NOT_A_TENSOR.check(lambda: None, backward=lambda _: call(),
                                 repro=f"x = {x.expression()}\ntorch.autograd.functional.{code}")
    record(f"{wrong} message", message)
