"""Higher-order derivatives: ``create_graph``, ``torch.autograd.grad`` and its options, Hessians."""

from __future__ import annotations

import math

import torch
from hypothesis import strategies as st

from specs.engine.contracts import ErrorContract, Phase, WarningContract
from specs.engine.expect import Tolerance, expect, expect_close
from specs.engine.oracles import FD_TOLERANCE, intermediate_gradient
from specs.engine.registry import Change, Family, rule
from specs.engine.script import literal
from specs.engine.sections import Section
from specs.engine.versions import at_least
from specs.generators.strategies import programs, tensors

FAMILY = Family(
    name="higher-order",
    title="Higher-order derivatives",
    summary="Gradients of gradients: create_graph, torch.autograd.grad and its options, Hessians "
    "and Hessian-vector products.",
    gallery="plot_50_higher_order.py",
)


#: The same second derivatives computed along two autograd paths in float64.
ROUNDOFF = Tolerance(1e-10, 1e-11, "float64: the same products summed in another order")
#: Central differences of float64 gradients with h=1e-5: truncation ~1e-10 * |f'''|, rounding
#: ~1e-16 * |grad| / h ~ 1e-8 for gradients up to 1e3.
FD_OF_GRADIENTS = Tolerance(1e-5, 1e-5, "central differences (h=1e-5) of float64 gradients")
FD_STEP = 1e-5

NO_GRAPH = ErrorContract(
    RuntimeError, r"element 0 of tensors does not require grad and does not have a grad_fn", Phase.BACKWARD
)
UNUSED_INPUT = ErrorContract(
    RuntimeError,
    r"(The differentiated Tensor at index \d+|One of the differentiated Tensors) appears to not have been used "
    r"in the graph\. Set allow_unused=True",
    Phase.BACKWARD,
    wording="2.13 names the index ('The differentiated Tensor at index 1'); older releases said "
    "'One of the differentiated Tensors'",
)
MATERIALIZE_NEEDS_ALLOW_UNUSED = ErrorContract(
    ValueError, r"Expected allow_unused to be True or not passed when materialize_grads=True", Phase.BACKWARD
)
REFERENCE_CYCLE = WarningContract(
    UserWarning, r"Using backward\(\) with create_graph=True will create a reference cycle"
)

float64_programs = programs(dtypes=(torch.float64,), all_require_grad=True)


def _gradients(program, leaves, create_graph: bool) -> list[torch.Tensor]:
    grads = torch.autograd.grad(program(*leaves).sum(), leaves, create_graph=create_graph, allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for x, g in zip(leaves, grads)]


def _hvp(program, leaves, directions) -> list[torch.Tensor]:
    """H u by differentiating <grad, u> again (create_graph=True on the first pass)."""
    grads = _gradients(program, leaves, create_graph=True)
    inner = sum((g * u).sum() for g, u in zip(grads, directions))
    if not inner.requires_grad:  # the gradient does not depend on the inputs: H = 0
        return [torch.zeros_like(x) for x in leaves]
    second = torch.autograd.grad(inner, leaves, allow_unused=True)
    return [torch.zeros_like(x) if h is None else h for x, h in zip(leaves, second)]


def _directions(data, leaves) -> list[torch.Tensor]:
    return [
        data.draw(
            tensors(shape=x.shape, dtypes=(torch.float64,), layouts=("contiguous",), requires_grad=False), label=f"u{i}"
        ).make()
        for i, x in enumerate(leaves)
    ]


def _contiguous(program) -> list[torch.Tensor]:
    return [x.detach().contiguous().clone().requires_grad_() for x in program.inputs()]


@rule(
    "higher-order.hvp-matches-finite-differences",
    section=Section.HIGHER_ORDER,
    docs="higher-order-create-graph",
    given=dict(program=float64_programs, data=st.data()),
    references=("test_autograd.py::TestAutograd::test_hessian_vector",),
)
def hvp_matches_finite_differences(program, data):
    """With create_graph=True the gradient is itself differentiable: differentiating <grad f, u> gives the Hessian-vector product H u, which agrees with central differences of the gradient along u."""
    leaves = _contiguous(program)
    directions = _directions(data, leaves)
    hvp = _hvp(program, leaves, directions)
    with torch.no_grad():
        up = [(x + FD_STEP * u).requires_grad_() for x, u in zip(leaves, directions)]
        down = [(x - FD_STEP * u).requires_grad_() for x, u in zip(leaves, directions)]
    g_up, g_down = _gradients(program, up, False), _gradients(program, down, False)
    xs = f"[{', '.join(program.leaf_names)}]"
    repro = program.repro(
        f"u = [{', '.join(literal(u) for u in directions)}]",
        f"g = torch.autograd.grad(out.sum(), {xs}, create_graph=True, allow_unused=True)",
        "inner = sum((a * b).sum() for a, b in zip(g, u) if a is not None)",
        f"print(torch.autograd.grad(inner, {xs}, allow_unused=True) if inner.requires_grad else 'H = 0')",
    )
    for i, (h, a, b) in enumerate(zip(hvp, g_up, g_down)):
        expect_close(
            h,
            (a - b) / (2 * FD_STEP),
            tolerance=FD_OF_GRADIENTS,
            what=f"(H u) for x{i} against differences of gradients",
            repro=repro,
        )


@rule(
    "higher-order.hvp-matches-functional",
    section=Section.HIGHER_ORDER,
    docs="higher-order-hessian",
    given=dict(program=programs(dtypes=(torch.float64,), all_require_grad=True, zero_size=False), data=st.data()),
)
def hvp_matches_functional(program, data):
    """The double-backward Hessian-vector product equals torch.autograd.functional.hvp."""
    leaves = _contiguous(program)
    directions = _directions(data, leaves)
    hvp = _hvp(program, leaves, directions)
    _, functional = torch.autograd.functional.hvp(
        lambda *xs: program(*xs).sum(), tuple(x.detach() for x in leaves), tuple(directions)
    )
    for i, (h, f) in enumerate(zip(hvp, functional)):
        expect_close(
            h,
            f,
            tolerance=ROUNDOFF,
            what=f"double-backward H u for x{i} against functional.hvp",
            repro=program.repro(
                f"u = ({''.join(literal(u) + ', ' for u in directions)})",
                f"xs = ({''.join(n + '.detach(), ' for n in program.leaf_names)})",
                "print(torch.autograd.functional.hvp(lambda *xs: program(*xs).sum(), xs, u))",
            ),
        )


@rule(
    "higher-order.hessian-is-symmetric",
    section=Section.HIGHER_ORDER,
    docs="higher-order-hessian",
    given=dict(program=programs(dtypes=(torch.float64,), zero_size=False, max_ops=8)),
)
def hessian_is_symmetric(program):
    """The Hessian of a twice continuously differentiable program, from torch.autograd.functional.hessian, is symmetric and has shape input shape + input shape."""
    leaves = program.inputs()
    x0 = leaves[0].detach().contiguous()
    hessian = torch.autograd.functional.hessian(lambda x: program(x, *leaves[1:]).sum(), x0)
    rest = "".join(f", {n}" for n in program.leaf_names[1:])
    repro = program.repro(
        f"H = torch.autograd.functional.hessian(lambda x: program(x{rest}).sum(), x0.detach().contiguous())", "print(H)"
    )
    expect(
        tuple(hessian.shape) == tuple(x0.shape) * 2,
        what="shape of the Hessian",
        expected=tuple(x0.shape) * 2,
        observed=tuple(hessian.shape),
        repro=repro,
    )
    square = hessian.reshape(x0.numel(), x0.numel())
    expect_close(square, square.T, tolerance=ROUNDOFF, what="the Hessian against its transpose", repro=repro)


@rule(
    "higher-order.second-grad-needs-create-graph",
    section=Section.HIGHER_ORDER,
    docs="higher-order-create-graph",
    given=dict(program=float64_programs),
    contracts=(NO_GRAPH,),
)
def second_grad_needs_create_graph(program):
    """Without create_graph the returned gradients are not recorded (no grad_fn), so differentiating them again raises a RuntimeError."""

    def record():
        leaves = program.inputs()
        grad = torch.autograd.grad(program(*leaves).sum(), leaves[0])[0]
        expect(
            grad.grad_fn is None and not grad.requires_grad,
            what="a gradient computed without create_graph",
            expected="untracked",
            observed=(grad.requires_grad, grad.grad_fn),
        )
        return grad.sum(), leaves[0]

    NO_GRAPH.check(
        record,
        backward=lambda pair: torch.autograd.grad(*pair),
        repro=program.repro(
            "g = torch.autograd.grad(out.sum(), x0)[0]", "print(g.grad_fn)", "torch.autograd.grad(g.sum(), x0)"
        ),
    )


@rule(
    "higher-order.grad-leaves-dot-grad-alone",
    section=Section.HIGHER_ORDER,
    docs="higher-order-autograd-grad",
    given=dict(program=programs(), create_graph=st.booleans()),
    references=("test_autograd.py::TestAutograd::test_grad",),
)
def grad_leaves_dot_grad_alone(program, create_graph):
    """torch.autograd.grad returns the gradients and writes no .grad: leaves without one keep None, and an existing .grad keeps its values."""
    leaves = program.inputs()
    wanted = [leaves[i] for i in program.grad_leaves]
    torch.autograd.grad(program(*leaves).sum(), wanted, create_graph=create_graph, allow_unused=True)
    repro = program.repro(f"torch.autograd.grad(out.sum(), [x0], create_graph={create_graph})", "print(x0.grad)")
    for x in leaves:
        expect(
            x.grad is None, what="a leaf's .grad after torch.autograd.grad", expected=None, observed=x.grad, repro=repro
        )
    program(*leaves).sum().backward()
    before = [x.grad.clone() for x in wanted]
    torch.autograd.grad(program(*leaves).sum(), wanted, create_graph=create_graph, allow_unused=True)
    for x, saved in zip(wanted, before):
        expect(
            torch.equal(x.grad, saved),
            what="an existing .grad after torch.autograd.grad",
            expected=saved,
            observed=x.grad,
            repro=repro,
        )


@st.composite
def with_unused_leaf(draw):
    program = draw(programs(all_require_grad=True), label="program")
    unused = draw(tensors(dtypes=(program.dtype,)), label="unused")
    return program, unused


@rule(
    "higher-order.unused-input-raises",
    section=Section.HIGHER_ORDER,
    docs="higher-order-unused",
    given=dict(pair=with_unused_leaf()),
    contracts=(UNUSED_INPUT,),
    history=(
        Change(
            "2.13",
            "the message began 'One of the differentiated Tensors appears to not have been "
            "used in the graph' instead of naming the input's index",
        ),
    ),
    references=("test_autograd.py::TestAutograd::test_grad_unreachable",),
)
def unused_input_raises(pair):
    """torch.autograd.grad with respect to an input the output does not depend on raises a RuntimeError unless allow_unused=True."""
    program, spec = pair
    UNUSED_INPUT.check(
        lambda: (program(*program.inputs()).sum(), program.inputs() + [spec.make()]),
        backward=lambda pair: torch.autograd.grad(*pair),
        repro=program.repro(f"unused = {spec.expression()}", "torch.autograd.grad(out.sum(), [x0, unused])"),
    )


@rule(
    "higher-order.allow-unused-gives-none",
    section=Section.HIGHER_ORDER,
    docs="higher-order-unused",
    given=dict(pair=with_unused_leaf()),
    references=("test_autograd.py::TestAutograd::test_grad_unreachable",),
)
def allow_unused_gives_none(pair):
    """With allow_unused=True the gradient for an unused input is None and the others are unchanged."""
    program, spec = pair
    leaves = program.inputs()
    expected = _gradients(program, leaves, create_graph=False)
    *grads, unused = torch.autograd.grad(program(*leaves).sum(), leaves + [spec.make()], allow_unused=True)
    repro = program.repro(f"print(torch.autograd.grad(out.sum(), [x0, {spec.expression()}], allow_unused=True))")
    expect(unused is None, what="the gradient for the unused input", expected=None, observed=unused, repro=repro)
    for i, (g, e) in enumerate(zip(grads, expected)):
        expect_close(
            g,
            e,
            tolerance=ROUNDOFF if program.dtype == torch.float64 else FD_TOLERANCE,
            what=f"gradient for x{i}",
            repro=repro,
        )


@rule(
    "higher-order.materialize-grads-gives-zeros",
    section=Section.HIGHER_ORDER,
    docs="higher-order-unused",
    since="2.1",
    given=dict(pair=with_unused_leaf(), create_graph=st.booleans()),
    contracts=(MATERIALIZE_NEEDS_ALLOW_UNUSED,),
    history=(
        Change(
            "2.13",
            "the zeros for unused inputs could require grad without create_graph "
            "(pytorch/pytorch#168059); fixed by 2.13, the exact release is not pinned",
        ),
    ),
    references=("test_autograd.py::TestAutograd::test_grad_materialize_grads",),
)
def materialize_grads_gives_zeros(pair, create_graph):
    """With materialize_grads=True (since torch 2.1) an unused input gets zeros of its shape instead of None; combining it with allow_unused=False raises a ValueError."""
    program, spec = pair
    unused_input = spec.make()
    *_, zeros = torch.autograd.grad(
        program(*program.inputs()).sum(),
        program.inputs() + [unused_input],
        create_graph=create_graph,
        materialize_grads=True,
    )
    repro = program.repro(
        f"unused = {spec.expression()}",
        f"print(torch.autograd.grad(out.sum(), [x0, unused], create_graph={create_graph}, materialize_grads=True))",
    )
    expect(
        zeros is not None and zeros.shape == unused_input.shape and not zeros.any(),
        what="the materialized gradient of an unused input",
        expected=f"zeros of shape {tuple(unused_input.shape)}",
        observed=zeros,
        repro=repro,
    )
    if at_least("2.13"):
        expect(
            zeros.requires_grad == create_graph,
            what="the zeros require grad exactly when create_graph",
            expected=create_graph,
            observed=zeros.requires_grad,
            repro=repro,
        )
    MATERIALIZE_NEEDS_ALLOW_UNUSED.check(
        lambda: (program(*program.inputs()).sum(), program.inputs()),
        backward=lambda pair: torch.autograd.grad(*pair, materialize_grads=True, allow_unused=False),
        repro=program.repro("torch.autograd.grad(out.sum(), [x0], materialize_grads=True, allow_unused=False)"),
    )


@rule(
    "higher-order.retain-graph-defaults-to-create-graph",
    section=Section.HIGHER_ORDER,
    docs="higher-order-retain",
    given=dict(program=float64_programs),
)
def retain_graph_defaults_to_create_graph(program):
    """retain_graph defaults to create_graph: after torch.autograd.grad(..., create_graph=True) the same graph can be differentiated again and gives the same gradients."""
    leaves = program.inputs()
    out = program(*leaves).sum()
    first = torch.autograd.grad(out, leaves, create_graph=True, allow_unused=True)
    second = torch.autograd.grad(out, leaves, allow_unused=True)
    for i, (a, b) in enumerate(zip(first, second)):
        expect_close(
            b,
            a,
            tolerance=ROUNDOFF,
            what=f"second gradient wrt x{i} through the kept graph",
            repro=program.repro(
                "loss = out.sum()",
                f"print(torch.autograd.grad(loss, [{', '.join(program.leaf_names)}], create_graph=True, allow_unused=True))",
                f"print(torch.autograd.grad(loss, [{', '.join(program.leaf_names)}], allow_unused=True))",
            ),
        )


@rule(
    "higher-order.backward-create-graph-warns",
    section=Section.HIGHER_ORDER,
    docs="higher-order-backward",
    given=dict(program=float64_programs, data=st.data()),
    contracts=(REFERENCE_CYCLE,),
    references=("test_autograd.py::TestAutograd::test_backward_create_graph_warns",),
)
def backward_create_graph_warns(program, data):
    """backward(create_graph=True) warns (once per process unless torch.set_warn_always(True)) that it creates a reference cycle between a parameter and its .grad, and leaves a .grad that can be differentiated again to give H u."""
    leaves = _contiguous(program)
    directions = _directions(data, leaves)
    expected = _hvp(program, _contiguous(program), directions)
    # The warning is a warn-once of the C++ core: set_warn_always makes every call show it.
    always = torch.is_warn_always_enabled()
    torch.set_warn_always(True)
    try:
        REFERENCE_CYCLE.check(
            lambda: program(*leaves).sum().backward(create_graph=True),
            program.repro("torch.set_warn_always(True)", "out.sum().backward(create_graph=True)"),
        )
    finally:
        torch.set_warn_always(always)
    inner = sum((x.grad * u).sum() for x, u in zip(leaves, directions))
    hvp = [torch.zeros_like(x) for x in leaves]
    if inner.requires_grad:
        found = torch.autograd.grad(inner, leaves, allow_unused=True)
        hvp = [torch.zeros_like(x) if h is None else h for x, h in zip(leaves, found)]
    for x in leaves:
        x.grad = None  # break the cycle the warning is about
    for i, (h, e) in enumerate(zip(hvp, expected)):
        expect_close(h, e, tolerance=ROUNDOFF, what=f"H u from x{i}.grad after backward(create_graph=True)")


@rule(
    "higher-order.nth-derivative-of-a-power",
    section=Section.HIGHER_ORDER,
    docs="higher-order-create-graph",
    given=dict(x=st.integers(-200, 200).map(lambda k: k / 100), k=st.integers(1, 5), n=st.integers(1, 5)),
)
def nth_derivative_of_a_power(x, k, n):
    """Repeating torch.autograd.grad with create_graph=True n times gives the n-th derivative: for x**k, k!/(k-n)! x**(k-n), and 0 once n > k."""
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    value = t**k
    for _ in range(n):
        if not value.requires_grad:
            value = torch.zeros_like(t)
            break
        value = torch.autograd.grad(value, t, create_graph=True)[0]
    exact = math.factorial(k) // math.factorial(k - n) * x ** (k - n) if n <= k else 0.0
    expect_close(
        value.detach(),
        torch.tensor(exact, dtype=torch.float64),
        tolerance=ROUNDOFF,
        what=f"derivative {n} of x**{k} at x = {x}",
        repro=f"t = torch.tensor({x}, dtype=torch.float64, requires_grad=True)\nv = t**{k}\n"
        f"for _ in range({n}): v = torch.autograd.grad(v, t, create_graph=True)[0] if v.requires_grad else 0 * t\n"
        "print(v)",
    )


@rule(
    "higher-order.grad-of-an-intermediate",
    section=Section.HIGHER_ORDER,
    docs="higher-order-autograd-grad",
    given=dict(program=float64_programs, data=st.data()),
    references=("test_autograd.py::TestAutograd::test_grad_nonleaf",),
)
def grad_of_an_intermediate(program, data):
    """torch.autograd.grad with respect to an intermediate value returns the gradient of the output with respect to it, without retain_grad and without touching any .grad."""
    leaves = program.inputs()
    values = program.trace(*leaves)
    name = data.draw(st.sampled_from([s.out for s in program.steps]), label="intermediate")
    grad = torch.autograd.grad(values[program.output].sum(), values[name])[0]
    expect_close(
        grad,
        intermediate_gradient(program, name, leaves),
        tolerance=FD_TOLERANCE,
        what=f"d out.sum() / d {name} against finite differences",
        repro=program.repro(f"print(torch.autograd.grad(out.sum(), {name}))", inline=True),
    )
    expect(
        all(x.grad is None for x in leaves),
        what="leaves' .grad after autograd.grad",
        expected=None,
        observed=[x.grad for x in leaves],
    )
