"""Non-scalar outputs: ``backward(gradient)``, vector-Jacobian products and Jacobians."""

from __future__ import annotations

import math
import warnings

import torch
from hypothesis import strategies as st

from specs.engine.contracts import ErrorContract, Phase
from specs.engine.expect import Tolerance, expect, expect_close
from specs.engine.oracles import DTYPE_TOLERANCE
from specs.engine.registry import Family, rule
from specs.engine.script import literal
from specs.engine.sections import Section
from specs.generators.strategies import programs, tensors

FAMILY = Family(
    name="vjp",
    title="Non-scalar outputs and vector-Jacobian products",
    summary="What backward(gradient) computes for a non-scalar output, and how it relates to the "
    "Jacobian and to forward mode.",
    gallery="plot_40_vjp.py",
)


#: VJPs computed two ways in the same dtype: the same products, summed in another order.
ROUNDOFF = {
    torch.float32: Tolerance(1e-5, 1e-5, "float32 sums of up to 64 products in another order"),
    torch.float64: Tolerance(1e-11, 1e-12, "float64 sums of up to 64 products in another order"),
}

IMPLICIT_GRADIENT = ErrorContract(
    RuntimeError, r"grad can be implicitly created only for (real )?scalar outputs", Phase.BACKWARD
)
SHAPE_MISMATCH = ErrorContract(
    RuntimeError,
    r"Mismatch in shape: grad_output\[0\] has a shape of torch\.Size\(\[[\d, ]*\]\) and output\[0\] has a "
    r"shape of torch\.Size\(\[[\d, ]*\]\)",
    Phase.BACKWARD,
)
GRADIENT_COUNT = ErrorContract(RuntimeError, r"got 2 tensors and 1 gradients", Phase.BACKWARD)

float64_programs = programs(dtypes=(torch.float64,))


def _cotangent(data, out: torch.Tensor, label: str = "v", dtype: torch.dtype | None = None) -> torch.Tensor:
    spec = data.draw(
        tensors(shape=out.shape, dtypes=(dtype or out.dtype,), layouts=("contiguous",), requires_grad=False),
        label=label,
    )
    return spec.make()


def _vjp(program, v: torch.Tensor) -> list[torch.Tensor]:
    """Jᵀv for each leaf that requires grad, through out.backward(v) on fresh leaves."""
    leaves = program.inputs()
    program(*leaves).backward(v)
    return [leaves[i].grad for i in program.grad_leaves]


@rule(
    "vjp.implicit-gradient-needs-one-element",
    section=Section.NON_SCALAR,
    docs="vjp-implicit",
    given=dict(program=programs()),
    contracts=(IMPLICIT_GRADIENT,),
)
def implicit_gradient_needs_one_element(program):
    """backward() without a gradient argument works for an output with exactly one element, of any shape, and raises a RuntimeError for any other output."""
    out = program(*program.inputs())
    repro = program.repro("out.backward()")
    if out.numel() == 1:
        leaves = program.inputs()
        program(*leaves).backward()
        expect(
            leaves[0].grad is not None,
            what="backward() on a one-element output fills .grad",
            expected="a tensor",
            observed=None,
            repro=repro,
        )
    else:
        IMPLICIT_GRADIENT.check(lambda: program(*program.inputs()), repro=repro)


@rule(
    "vjp.gradient-shape-must-match",
    section=Section.NON_SCALAR,
    docs="vjp-implicit",
    given=dict(program=programs(), data=st.data()),
    contracts=(SHAPE_MISMATCH,),
)
def gradient_shape_must_match(program, data):
    """The gradient passed to backward must have exactly the output's shape: a different shape, even a broadcastable one, raises a RuntimeError."""
    shape = tuple(program(*program.inputs()).shape)
    options = {(1,) + shape, shape + (1,), (2,) + shape}
    if shape:
        options |= {shape[1:], shape[:-1] + (shape[-1] + 1,)}
    if math.prod(shape) != 1:
        options.add((1,))
    wrong = data.draw(st.sampled_from(sorted(options - {shape})), label="gradient shape")
    SHAPE_MISMATCH.check(
        lambda: program(*program.inputs()),
        backward=lambda out: out.backward(torch.ones(wrong, dtype=out.dtype)),
        repro=program.repro(f"out.backward(torch.ones({wrong}))"),
    )


@rule(
    "vjp.backward-v-is-a-weighted-sum",
    section=Section.NON_SCALAR,
    docs="vjp-definition",
    given=dict(program=programs(), data=st.data()),
)
def backward_v_is_a_weighted_sum(program, data):
    """y.backward(v) leaves in .grad what (y * v).sum().backward() leaves: the gradient of the v-weighted sum of the outputs."""
    v = _cotangent(data, program(*program.inputs()))
    direct = _vjp(program, v)
    leaves = program.inputs()
    (program(*leaves) * v).sum().backward()
    repro = program.repro(
        f"v = {literal(v)}", "out.backward(v)  # against (out * v).sum().backward()", *program.print_grads
    )
    for i, grad in zip(program.grad_leaves, direct):
        expect_close(
            grad,
            leaves[i].grad,
            tolerance=ROUNDOFF[program.dtype],
            what=f"x{i}.grad of y.backward(v) against (y * v).sum()",
            repro=repro,
        )


@rule(
    "vjp.linear-in-v",
    section=Section.NON_SCALAR,
    docs="vjp-definition",
    given=dict(
        program=float64_programs,
        data=st.data(),
        a=st.sampled_from([2.0, -0.5, 3.0]),
        b=st.sampled_from([1.0, -1.5, 0.25]),
    ),
)
def linear_in_v(program, data, a, b):
    """The vector-Jacobian product is linear in v: backward(a*v1 + b*v2) gives a times the gradient for v1 plus b times the gradient for v2."""
    out = program(*program.inputs())
    v1, v2 = _cotangent(data, out, "v1"), _cotangent(data, out, "v2")
    combined = _vjp(program, a * v1 + b * v2)
    parts = zip(_vjp(program, v1), _vjp(program, v2))
    repro = program.repro(
        f"v1, v2 = {literal(v1)}, {literal(v2)}", f"out.backward({a} * v1 + {b} * v2)", *program.print_grads
    )
    for i, grad, (g1, g2) in zip(program.grad_leaves, combined, parts):
        expect_close(
            grad, a * g1 + b * g2, tolerance=ROUNDOFF[torch.float64], what=f"x{i}.grad for a*v1 + b*v2", repro=repro
        )


@rule(
    "vjp.one-hot-rows-build-the-jacobian",
    section=Section.NON_SCALAR,
    docs="vjp-jacobian",
    given=dict(program=programs(dtypes=(torch.float64,), all_require_grad=True, max_ops=8, zero_size=False)),
)
def one_hot_rows_build_the_jacobian(program):
    """Backward with the one-hot vector e_k gives row k of the Jacobian: stacking them rebuilds torch.autograd.functional.jacobian, of shape output shape + input shape."""
    leaves = program.inputs()
    out = program(*leaves)
    rows = [[] for _ in leaves]
    for k in range(out.numel()):
        e_k = torch.zeros(out.numel(), dtype=out.dtype)
        e_k[k] = 1.0
        grads = torch.autograd.grad(out, leaves, e_k.view(out.shape), retain_graph=True, allow_unused=True)
        for i, (x, g) in enumerate(zip(leaves, grads)):
            rows[i].append(torch.zeros_like(x) if g is None else g)
    jacobians = torch.autograd.functional.jacobian(program.function(), tuple(program.inputs()))
    repro = program.repro(f"print(torch.autograd.functional.jacobian(program, ({', '.join(program.leaf_names)},)))")
    for i, (x, jac) in enumerate(zip(leaves, jacobians)):
        expect(
            tuple(jac.shape) == tuple(out.shape) + tuple(x.shape),
            what=f"shape of the Jacobian wrt x{i}",
            expected=tuple(out.shape) + tuple(x.shape),
            observed=tuple(jac.shape),
            repro=repro,
        )
        stacked = torch.stack(rows[i]).reshape(jac.shape)
        expect_close(
            stacked,
            jac,
            tolerance=ROUNDOFF[torch.float64],
            what=f"one-hot VJPs wrt x{i} against functional.jacobian",
            repro=repro,
        )


def _jvp_forward_mode(program, leaves, tangents) -> torch.Tensor:
    import torch.autograd.forward_ad as fwAD

    with warnings.catch_warnings():
        # torch 2.13 warns once, on first forward-AD use, that torch.jit.script is deprecated.
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated", category=DeprecationWarning)
        with fwAD.dual_level():
            duals = [fwAD.make_dual(x.detach().contiguous().clone(), u) for x, u in zip(leaves, tangents)]
            tangent = fwAD.unpack_dual(program(*duals)).tangent
    out = program(*leaves)
    return torch.zeros_like(out) if tangent is None else tangent


@rule(
    "vjp.adjoint-of-forward-mode",
    section=Section.NON_SCALAR,
    docs="vjp-vs-jvp",
    given=dict(program=programs(dtypes=(torch.float64,), all_require_grad=True), data=st.data()),
)
def adjoint_of_forward_mode(program, data):
    """Reverse mode is the adjoint of forward mode: for every v and u, <v, J u> from forward-mode AD equals the sum over inputs of <Jᵀ v, u> from backward(v)."""
    leaves = program.inputs()
    out = program(*leaves)
    v = _cotangent(data, out)
    tangents = [
        data.draw(
            tensors(shape=x.shape, dtypes=(torch.float64,), layouts=("contiguous",), requires_grad=False), label=f"u{i}"
        ).make()
        for i, x in enumerate(leaves)
    ]
    jvp = _jvp_forward_mode(program, leaves, tangents)
    out.backward(v)
    left = (v * jvp).sum()
    right = sum((x.grad * u).sum() for x, u in zip(leaves, tangents))
    expect_close(
        left,
        right,
        tolerance=Tolerance(1e-10, 1e-10, "float64 dot products of up to 64 terms each"),
        what="<v, J u> (forward mode) against <J^T v, u> (reverse mode)",
        repro=program.repro(
            "import torch.autograd.forward_ad as fwAD",
            f"v = {literal(v)}",
            f"u = [{', '.join(literal(u) for u in tangents)}]",
            "out.backward(v)",
            "with fwAD.dual_level():",
            f"    jvp = fwAD.unpack_dual(program(*[fwAD.make_dual(x.detach(), t) for x, t in zip([{', '.join(program.leaf_names)}], u)])).tangent",
            f"print((v * jvp).sum(), sum((x.grad * t).sum() for x, t in zip([{', '.join(program.leaf_names)}], u)))",
        ),
    )


@rule(
    "vjp.roots-add-up",
    section=Section.NON_SCALAR,
    docs="vjp-definition",
    given=dict(program=float64_programs, data=st.data()),
    contracts=(GRADIENT_COUNT,),
    references=("test_autograd.py::TestAutograd::test_multi_backward",),
)
def roots_add_up(program, data):
    """torch.autograd.backward([y1, y2], [v1, v2]) accumulates J1ᵀv1 + J2ᵀv2; a gradient list of another length raises a RuntimeError."""
    leaves = program.inputs()
    y1 = program(*leaves)
    y2 = torch.sin(program(*leaves))
    v1, v2 = _cotangent(data, y1, "v1"), _cotangent(data, y2, "v2")
    torch.autograd.backward([y1, y2], [v1, v2])
    first = _vjp(program, v1)
    second = program.inputs()
    torch.sin(program(*second)).backward(v2)
    repro = program.repro(
        f"v1, v2 = {literal(v1)}, {literal(v2)}",
        f"torch.autograd.backward([out, torch.sin({program.call})], [v1, v2])",
        *program.print_grads,
    )
    for i, g1 in zip(program.grad_leaves, first):
        expect_close(
            leaves[i].grad,
            g1 + second[i].grad,
            tolerance=ROUNDOFF[torch.float64],
            what=f"x{i}.grad from two roots",
            repro=repro,
        )
    GRADIENT_COUNT.check(
        lambda: [program(*program.inputs()), torch.zeros(())],
        backward=lambda outs: torch.autograd.backward(outs, [torch.ones_like(outs[0])]),
        repro=program.repro("torch.autograd.backward([out, torch.zeros(())], [torch.ones_like(out)])"),
    )


@rule(
    "vjp.gradient-dtype-follows-the-input",
    section=Section.NON_SCALAR,
    docs="vjp-dtype",
    given=dict(program=programs(), data=st.data()),
)
def gradient_dtype_follows_the_input(program, data):
    """A floating-point gradient argument of another dtype than the output is accepted and cast: every .grad has its leaf's dtype and the values of the same-dtype call."""
    out = program(*program.inputs())
    other = torch.float64 if out.dtype == torch.float32 else torch.float32
    v = _cotangent(data, out, dtype=other)
    same = _vjp(program, v.to(out.dtype))
    leaves = program.inputs()
    program(*leaves).backward(v)
    repro = program.repro(f"out.backward({literal(v)})", *(f"print(x{i}.grad.dtype)" for i in program.grad_leaves))
    for i, grad in zip(program.grad_leaves, same):
        expect(
            leaves[i].grad.dtype == leaves[i].dtype,
            what=f"x{i}.grad dtype with a {other} gradient argument",
            expected=leaves[i].dtype,
            observed=leaves[i].grad.dtype,
            repro=repro,
        )
        expect_close(
            leaves[i].grad,
            grad,
            tolerance=DTYPE_TOLERANCE[torch.float32],
            what=f"x{i}.grad against a same-dtype gradient",
            repro=repro,
        )


@rule(
    "vjp.grad-outputs-is-the-gradient-argument",
    section=Section.NON_SCALAR,
    docs="vjp-apis",
    given=dict(program=programs(all_require_grad=True), data=st.data()),
    references=("test_autograd.py::TestAutograd::test_grad",),
)
def grad_outputs_is_the_gradient_argument(program, data):
    """torch.autograd.grad(y, inputs, grad_outputs=v) and torch.autograd.functional.vjp return the same Jᵀv that y.backward(v) accumulates."""
    v = _cotangent(data, program(*program.inputs()))
    direct = _vjp(program, v)
    leaves = program.inputs()
    grads = torch.autograd.grad(program(*leaves), leaves, grad_outputs=v, allow_unused=True)
    _, functional = torch.autograd.functional.vjp(program.function(), tuple(program.inputs()), v)
    repro = program.repro(f"v = {literal(v)}", "print(torch.autograd.grad(out, [x0], v))")
    for i, (expected, via_grad, via_functional) in enumerate(zip(direct, grads, functional)):
        expected = expected if expected is not None else torch.zeros_like(leaves[i])
        via_grad = via_grad if via_grad is not None else torch.zeros_like(leaves[i])
        expect_close(
            via_grad,
            expected,
            tolerance=ROUNDOFF[program.dtype],
            what=f"autograd.grad wrt x{i} against backward(v)",
            repro=repro,
        )
        expect_close(
            via_functional,
            expected,
            tolerance=ROUNDOFF[program.dtype],
            what=f"functional.vjp wrt x{i} against backward(v)",
            repro=repro,
        )


@rule(
    "vjp.batched-grad-outputs-give-jacobian-rows",
    section=Section.NON_SCALAR,
    docs="vjp-jacobian",
    given=dict(program=programs(dtypes=(torch.float64,), all_require_grad=True, zero_size=False, max_ops=8)),
    references=("test_autograd.py::TestAutograd::test_grad_batched_grad",),
)
def batched_grad_outputs_give_jacobian_rows(program):
    """torch.autograd.grad with is_grads_batched=True treats dim 0 of grad_outputs as a batch: the identity matrix as that batch gives every row of the Jacobian in one call."""
    leaves = program.inputs()
    out = program(*leaves)
    eye = torch.eye(out.numel(), dtype=out.dtype).reshape((out.numel(),) + tuple(out.shape))
    batched = torch.autograd.grad(out, leaves[0], eye, retain_graph=True, is_grads_batched=True)[0]
    jacobian = torch.autograd.functional.jacobian(lambda x0: program(x0, *leaves[1:]), leaves[0].detach())
    expect_close(
        batched.reshape(jacobian.shape),
        jacobian,
        tolerance=ROUNDOFF[torch.float64],
        what="batched VJPs with the identity against functional.jacobian",
        repro=program.repro(
            "eye = torch.eye(out.numel()).reshape(-1, *out.shape)",
            "print(torch.autograd.grad(out, x0, eye, is_grads_batched=True))",
        ),
    )
