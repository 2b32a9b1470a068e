"""Forward mode and torch.func: dual numbers, JVPs, and agreement with reverse mode."""

from __future__ import annotations

import contextlib
import warnings

import torch
from hypothesis import strategies as st

from specs.engine.contracts import ErrorContract, Phase
from specs.engine.expect import Tolerance, expect, expect_close
from specs.engine.oracles import FD_STEP, FD_TOLERANCE, float64_copies
from specs.engine.registry import Family, Feature, rule
from specs.engine.script import literal
from specs.engine.sections import Section
from specs.generators.strategies import programs, tensors

FAMILY = Family(
    name="forward-mode",
    title="Forward mode and torch.func",
    summary="Dual numbers and Jacobian-vector products, and how forward mode, torch.func and reverse mode agree.",
    gallery="plot_90_forward_mode.py",
)


TORCH_FUNC = Feature("torch.func (functorch was merged into torch in 2.0)", lambda: _has_module("torch.func"))

#: The same derivative computed by two AD code paths in float64: products summed in another order.
AGREEMENT = Tolerance(1e-10, 1e-10, "float64 AD through two code paths: only summation order differs")

NO_LEVEL = ErrorContract(
    RuntimeError, r"Trying to create a dual Tensor for forward AD but no level exists", Phase.RECORD
)
NESTED_LEVEL = ErrorContract(RuntimeError, r"Nested forward mode AD is not supported at the moment", Phase.RECORD)
INTEGER_DUAL = ErrorContract(
    ValueError,
    r"Expected (primal|tangent) to be floating point or complex, but got: torch\.(u?int\d+|bool)",
    Phase.RECORD,
)
TANGENT_SIZE = ErrorContract(
    RuntimeError,
    r"Trying to set a forward gradient that has a different size than that of the original Tensor, this is not "
    r"supported\. Tensor is of size \[[\d, ]*\] while the given forward gradient is of size \[[\d, ]*\]",
    Phase.RECORD,
)

#: make_dual copies the tangent into the primal's layout, which an expanded primal cannot hold.
NON_OVERLAPPING = ("contiguous", "transposed", "sliced")

float64_programs = programs(dtypes=(torch.float64,), all_require_grad=True)


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


@contextlib.contextmanager
def quiet():
    """Hide torch 2.13's one-off warning, on first forward-AD use, that torch.jit.script is deprecated."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated", category=DeprecationWarning)
        yield


def _fw():
    import torch.autograd.forward_ad as fwAD

    return fwAD


def _like(data, tensor: torch.Tensor, label: str, dtype=torch.float64) -> torch.Tensor:
    spec = data.draw(
        tensors(shape=tensor.shape, dtypes=(dtype,), layouts=("contiguous",), requires_grad=False), label=label
    )
    return spec.make()


def _tangents(data, leaves) -> list[torch.Tensor]:
    return [_like(data, x, f"u{i}", x.dtype) for i, x in enumerate(leaves)]


def forward_tangent(program, leaves, tangents) -> torch.Tensor:
    """J·u of ``program`` at ``leaves`` through torch.autograd.forward_ad (zeros when nothing propagates)."""
    fwAD = _fw()
    with quiet(), fwAD.dual_level():
        duals = [fwAD.make_dual(x.detach().contiguous().clone(), u) for x, u in zip(leaves, tangents)]
        out = program(*duals)
        primal, tangent = fwAD.unpack_dual(out)
    return torch.zeros_like(primal) if tangent is None else tangent


def directional_difference(program, leaves, tangents, step: float = FD_STEP) -> torch.Tensor:
    """(f(x + h u) - f(x - h u)) / 2h in float64, without any AD."""
    xs, us = float64_copies(leaves), float64_copies(tangents)
    with torch.no_grad():
        up = program(*[x + step * u for x, u in zip(xs, us)])
        down = program(*[x - step * u for x, u in zip(xs, us)])
    return (up - down) / (2 * step)


def _dual_repro(program, tangents, *lines: str) -> str:
    return program.repro(
        "import torch.autograd.forward_ad as fwAD",
        f"tangents = [{', '.join(literal(u) for u in tangents)}]",
        "with fwAD.dual_level():",
        f"    duals = [fwAD.make_dual(x.detach().clone(), u) for x, u in zip([{', '.join(program.leaf_names)}], "
        "tangents)]",
        "    print(fwAD.unpack_dual(program(*duals)).tangent)",
        *lines,
    )


# ------------------------------------------------------------------------------ dual numbers
@rule(
    "forward-mode.dual-carries-primal-and-tangent",
    section=Section.BEYOND,
    docs="forward-mode-dual",
    given=dict(spec=tensors(requires_grad=False, layouts=NON_OVERLAPPING), data=st.data()),
    references=("test_autograd.py::TestAutogradForwardMode::test_basic_packing_unpacking",),
)
def dual_carries_primal_and_tangent(spec, data):
    """Inside a dual level, unpack_dual(make_dual(p, t)) is a (primal, tangent) named tuple holding p's values and t's values."""
    fwAD = _fw()
    primal = spec.make()
    tangent = _like(data, primal, "tangent", spec.dtype)
    repro = (
        f"import torch.autograd.forward_ad as fwAD\nwith fwAD.dual_level():\n"
        f"    d = fwAD.make_dual({spec.expression()}, {literal(tangent)})\n    print(fwAD.unpack_dual(d))"
    )
    with quiet(), fwAD.dual_level():
        unpacked = fwAD.unpack_dual(fwAD.make_dual(primal, tangent))
        expect(
            tuple(getattr(unpacked, "_fields", ())) == ("primal", "tangent"),
            what="unpack_dual's fields",
            expected=("primal", "tangent"),
            observed=getattr(unpacked, "_fields", type(unpacked)),
            repro=repro,
        )
        expect(
            torch.equal(unpacked.primal, primal),
            what="the primal's values",
            expected=primal,
            observed=unpacked.primal,
            repro=repro,
        )
        expect(
            unpacked.tangent is not None and torch.equal(unpacked.tangent, tangent),
            what="the tangent's values",
            expected=tangent,
            observed=unpacked.tangent,
            repro=repro,
        )


@rule(
    "forward-mode.dual-is-a-view-of-its-primal",
    section=Section.BEYOND,
    docs="forward-mode-dual",
    given=dict(spec=tensors(requires_grad=False, dtypes=(torch.float64,), layouts=("contiguous",)), data=st.data()),
    references=("test_autograd.py::TestAutogradForwardMode::test_advanced_packing_unpacking",),
)
def dual_is_a_view_of_its_primal(spec, data):
    """make_dual(p, t) is a view of p sharing its version counter, so an in-place op on the dual changes p and bumps p's version (and updates the tangent t itself in place); and backward from unpack_dual's primal and tangent reaches p and t with the gradients of the expression they enter."""
    fwAD = _fw()
    # a tensor of its own (spec.make() may be a view), so that the dual's base is p itself
    primal = spec.make().clone()
    tangent = _like(data, primal, "tangent")
    before, scale = primal.clone(), 3.0
    repro = (
        f"import torch.autograd.forward_ad as fwAD\np, t = {spec.expression()}.clone(), {literal(tangent)}\n"
        f"with fwAD.dual_level():\n    d = fwAD.make_dual(p, t)\n    d.mul_({scale})\n"
        "    print(d._base is p, p._version, d._version, p, t)"
    )
    with quiet(), fwAD.dual_level():
        dual = fwAD.make_dual(primal, tangent)
        expect(dual._base is primal, what="the dual's base", expected="p", observed=dual._base, repro=repro)
        start = primal._version
        dual.mul_(scale)
        expect(
            primal._version == dual._version == start + 1,
            what="p's and the dual's versions after an in-place op on the dual",
            expected=(start + 1, start + 1),
            observed=(primal._version, dual._version),
            repro=repro,
        )
        expect_close(primal, before * scale, tolerance=AGREEMENT, what="p after the dual's in-place op", repro=repro)
        updated = fwAD.unpack_dual(dual).tangent
        expect(
            updated is not None and updated.data_ptr() == tangent.data_ptr() and torch.equal(updated, tangent),
            what="the dual's tangent after the in-place op is t, updated in place",
            expected="t itself",
            observed=updated,
            repro=repro,
        )
    # the drawn values serve again: as the leaves to differentiate, and as the weights whose sums they enter
    p, t = before.clone().requires_grad_(), tangent.clone().requires_grad_()
    a, b = tangent.clone(), before.clone() + 1.0
    backward_repro = (
        f"import torch.autograd.forward_ad as fwAD\np = {literal(before)}.requires_grad_()\n"
        f"t = {literal(tangent)}.requires_grad_()\na, b = {literal(a)}, {literal(b)}\n"
        "with fwAD.dual_level():\n    primal, tangent = fwAD.unpack_dual(fwAD.make_dual(p, t))\n"
        "    (primal * a + tangent * b).sum().backward()\nprint(p.grad, t.grad)"
    )
    with quiet(), fwAD.dual_level():
        unpacked = fwAD.unpack_dual(fwAD.make_dual(p, t))
        (unpacked.primal * a + unpacked.tangent * b).sum().backward()
    expect_close(p.grad, a, tolerance=AGREEMENT, what="p.grad through make_dual and unpack_dual", repro=backward_repro)
    expect_close(t.grad, b, tolerance=AGREEMENT, what="t.grad through make_dual and unpack_dual", repro=backward_repro)


@rule(
    "forward-mode.tangent-is-the-directional-derivative",
    section=Section.BEYOND,
    docs="forward-mode-dual",
    given=dict(program=programs(), data=st.data()),
)
def tangent_is_the_directional_derivative(program, data):
    """The tangent of a program's output, with tangent u_i on each input x_i, is the directional derivative Σ J_i u_i, which agrees with float64 central differences along u."""
    leaves = program.inputs()
    tangents = _tangents(data, leaves)
    tangent = forward_tangent(program, leaves, tangents)
    expected = directional_difference(program, leaves, tangents)
    tolerance = (
        FD_TOLERANCE
        if program.dtype == torch.float64
        else Tolerance(1e-4, 1e-4, "float32 forward mode against a float64 central difference")
    )
    expect_close(
        tangent,
        expected,
        tolerance=tolerance,
        what="forward-mode tangent against (f(x+hu) - f(x-hu)) / 2h",
        repro=_dual_repro(program, tangents),
    )


@rule(
    "forward-mode.tangents-end-with-their-level",
    section=Section.BEYOND,
    docs="forward-mode-levels",
    given=dict(program=programs(), data=st.data()),
    references=(
        "test_autograd.py::TestAutogradForwardMode::test_default_level",
        "test_autograd.py::TestAutogradForwardMode::test_grad_cleanup",
    ),
)
def tangents_end_with_their_level(program, data):
    """A result computed inside a dual level has no tangent once the level has exited, and a tensor that was never made dual has none inside it."""
    fwAD = _fw()
    leaves = program.inputs(requires_grad=False)
    tangents = _tangents(data, leaves)
    with quiet(), fwAD.dual_level():
        out = program(*[fwAD.make_dual(x.contiguous(), u) for x, u in zip(leaves, tangents)])
        plain = fwAD.unpack_dual(leaves[0]).tangent
    repro = _dual_repro(program, tangents, "out = program(*duals)", "print(fwAD.unpack_dual(out).tangent)")
    expect(
        plain is None, what="tangent of a tensor that was never made dual", expected=None, observed=plain, repro=repro
    )
    after = fwAD.unpack_dual(out).tangent
    expect(after is None, what="tangent after the dual level exited", expected=None, observed=after, repro=repro)


@rule(
    "forward-mode.make-dual-needs-a-level",
    section=Section.BEYOND,
    docs="forward-mode-levels",
    given=dict(spec=tensors(requires_grad=False)),
    contracts=(NO_LEVEL,),
    references=("docs: torch.autograd > Forward-mode Automatic Differentiation",),
)
def make_dual_needs_a_level(spec):
    """make_dual outside any dual level raises a RuntimeError."""
    fwAD = _fw()
    with quiet():
        NO_LEVEL.check(
            lambda: fwAD.make_dual(spec.make(), spec.make()),
            repro=f"import torch.autograd.forward_ad as fwAD\nfwAD.make_dual({spec.expression()}, {spec.expression()})",
        )


@rule(
    "forward-mode.levels-do-not-nest",
    section=Section.BEYOND,
    docs="forward-mode-levels",
    given=dict(program=programs(), data=st.data()),
    contracts=(NESTED_LEVEL,),
    references=("test_autograd.py::TestAutogradForwardMode::test_nested_level",),
)
def levels_do_not_nest(program, data):
    """Entering a dual level inside another raises a RuntimeError, and the outer level's tangents are intact afterwards."""
    fwAD = _fw()
    leaves = program.inputs(requires_grad=False)
    tangents = _tangents(data, leaves)
    expected = forward_tangent(program, leaves, tangents)

    def nested():
        with fwAD.dual_level():
            pass

    with quiet(), fwAD.dual_level():
        duals = [fwAD.make_dual(x.contiguous(), u) for x, u in zip(leaves, tangents)]
        NESTED_LEVEL.check(
            nested,
            repro="import torch.autograd.forward_ad as fwAD\nwith fwAD.dual_level():\n"
            "    with fwAD.dual_level():\n        pass",
        )
        tangent = fwAD.unpack_dual(program(*duals)).tangent
    tangent = torch.zeros_like(expected) if tangent is None else tangent
    expect_close(
        tangent,
        expected,
        tolerance=AGREEMENT,
        what="tangent computed after the refused nested level",
        repro=_dual_repro(program, tangents),
    )


@rule(
    "forward-mode.tangents-must-be-floating",
    section=Section.BEYOND,
    docs="forward-mode-errors",
    given=dict(
        spec=tensors(requires_grad=False),
        dtype=st.sampled_from([torch.int64, torch.int32, torch.uint8, torch.bool]),
        which=st.sampled_from(["primal", "tangent"]),
    ),
    contracts=(INTEGER_DUAL,),
    references=("test_autograd.py::TestAutogradForwardMode::test_make_dual_forbid_integral_dtype",),
)
def tangents_must_be_floating(spec, dtype, which):
    """make_dual refuses an integer or bool primal or tangent with a ValueError naming which one."""
    fwAD = _fw()
    real = spec.make()
    integer = torch.zeros(spec.shape, dtype=dtype)
    args = (integer, real) if which == "primal" else (real, integer)
    repro = (
        f"import torch.autograd.forward_ad as fwAD\nwith fwAD.dual_level():\n"
        f"    real = {spec.expression()}\n    integer = torch.zeros({spec.shape}, dtype={dtype})\n"
        f"    fwAD.make_dual({'integer, real' if which == 'primal' else 'real, integer'})"
    )
    with quiet(), fwAD.dual_level():
        message = INTEGER_DUAL.check(lambda: fwAD.make_dual(*args), repro=repro)
    expect(
        message.startswith(f"Expected {which}"),
        what="the message names the offending argument",
        expected=which,
        observed=message,
        repro=repro,
    )


@st.composite
def _wrong_shapes(draw):
    spec = draw(tensors(requires_grad=False), label="primal")
    shape = spec.shape
    options = {shape + (1,), (2,) + shape, shape + (2,)}
    if shape:
        options |= {shape[1:], shape[:-1] + (shape[-1] + 1,)}
    wrong = draw(st.sampled_from(sorted(options - {shape})), label="tangent shape")
    return spec, wrong


@rule(
    "forward-mode.tangent-shape-must-match",
    section=Section.BEYOND,
    docs="forward-mode-errors",
    given=dict(case=_wrong_shapes()),
    contracts=(TANGENT_SIZE,),
    references=("test_autograd.py::TestAutogradForwardMode::test_size_check",),
)
def tangent_shape_must_match(case):
    """A tangent whose shape differs from its primal's, even when it is broadcastable or has as many elements, raises a RuntimeError."""
    fwAD = _fw()
    spec, wrong = case
    with quiet(), fwAD.dual_level():
        TANGENT_SIZE.check(
            lambda: fwAD.make_dual(spec.make(), torch.zeros(wrong, dtype=spec.dtype)),
            repro=f"import torch.autograd.forward_ad as fwAD\nwith fwAD.dual_level():\n"
            f"    fwAD.make_dual({spec.expression()}, torch.zeros({wrong}))",
        )


# ------------------------------------------------------------------------------ grad modes
@rule(
    "forward-mode.no-grad-keeps-tangents",
    section=Section.BEYOND,
    docs="forward-mode-grad-modes",
    given=dict(program=programs(), data=st.data()),
    references=("test_autograd.py::TestAutogradForwardMode::test_advanced_packing_unpacking",),
)
def no_grad_keeps_tangents(program, data):
    """torch.no_grad() switches reverse mode off but not forward mode: tangents propagate through a program run under it, with the same values as outside it."""
    fwAD = _fw()
    leaves = program.inputs()
    tangents = _tangents(data, leaves)
    expected = forward_tangent(program, leaves, tangents)
    with quiet(), fwAD.dual_level():
        duals = [fwAD.make_dual(x.detach().contiguous(), u) for x, u in zip(leaves, tangents)]
        with torch.no_grad():
            out = program(*duals)
        tangent = fwAD.unpack_dual(out).tangent
    repro = _dual_repro(program, tangents, "# the same, with program(*duals) under torch.no_grad()")
    expect(
        not out.requires_grad,
        what="no_grad still stops reverse mode",
        expected=False,
        observed=out.requires_grad,
        repro=repro,
    )
    tangent = torch.zeros_like(expected) if tangent is None else tangent
    expect_close(
        tangent,
        expected,
        tolerance=AGREEMENT if program.dtype == torch.float64 else Tolerance(1e-6, 1e-6, "float32, same ops"),
        what="tangent under no_grad against tangent in grad mode",
        repro=repro,
    )


@rule(
    "forward-mode.inference-mode-and-detach-drop-tangents",
    section=Section.BEYOND,
    docs="forward-mode-grad-modes",
    given=dict(program=programs(), data=st.data()),
    references=("test_autograd.py::TestAutogradForwardMode::test_advanced_packing_unpacking",),
)
def inference_mode_and_detach_drop_tangents(program, data):
    """Under torch.inference_mode() a program of dual tensors computes no tangent, and detach() returns a tensor without a tangent."""
    fwAD = _fw()
    leaves = program.inputs(requires_grad=False)
    tangents = _tangents(data, leaves)
    with quiet(), fwAD.dual_level():
        duals = [fwAD.make_dual(x.contiguous(), u) for x, u in zip(leaves, tangents)]
        with torch.inference_mode():
            inferred = fwAD.unpack_dual(program(*duals)).tangent
        detached = fwAD.unpack_dual(duals[0].detach()).tangent
    repro = _dual_repro(program, tangents, "# the same, with program(*duals) under torch.inference_mode()")
    expect(
        inferred is None,
        what="tangent of a result computed under inference_mode",
        expected=None,
        observed=inferred,
        repro=repro,
    )
    expect(detached is None, what="tangent of a detached dual tensor", expected=None, observed=detached, repro=repro)


# ------------------------------------------------------------------------------ torch.func
@rule(
    "forward-mode.jvp-is-the-adjoint-of-vjp",
    section=Section.BEYOND,
    docs="forward-mode-func-jvp",
    since="2.0",
    requires=(TORCH_FUNC,),
    given=dict(program=float64_programs, data=st.data()),
)
def jvp_is_the_adjoint_of_vjp(program, data):
    """torch.func.jvp returns forward_ad's J·u, and for every cotangent v, <v, J·u> equals <Jᵀ·v, u> from torch.func.vjp and from torch.autograd.grad."""
    import torch.func

    leaves = program.inputs()
    tangents = _tangents(data, leaves)
    primals = float64_copies(leaves)  # torch.func refuses primals whose elements share memory (expanded)
    with quiet():
        out, jvp = torch.func.jvp(program.function(), tuple(primals), tuple(tangents))
        _, vjp_fn = torch.func.vjp(program.function(), *primals)
    v = _like(data, out, "v")
    repro = _dual_repro(
        program,
        tangents,
        f"v = {literal(v)}",
        "# torch.func.jvp(program, (x0, ...), tangents) and torch.func.vjp(program, x0, ...)[1](v)",
    )
    expect_close(
        jvp,
        forward_tangent(program, leaves, tangents),
        tolerance=AGREEMENT,
        what="torch.func.jvp against forward_ad",
        repro=repro,
    )
    left = (v * jvp).sum()
    by_func = sum((g * u).sum() for g, u in zip(vjp_fn(v), tangents))
    grads = torch.autograd.grad(program(*leaves), leaves, v, allow_unused=True)
    by_grad = sum((g * u).sum() for g, u in zip(grads, tangents) if g is not None)
    dots = Tolerance(1e-10, 1e-10, "float64 dot products of up to 64 terms")
    expect_close(left, by_func, tolerance=dots, what="<v, J u> (func.jvp) against <J^T v, u> (func.vjp)", repro=repro)
    expect_close(
        left, by_grad, tolerance=dots, what="<v, J u> (func.jvp) against <J^T v, u> (autograd.grad)", repro=repro
    )


@rule(
    "forward-mode.jacobians-agree",
    section=Section.BEYOND,
    docs="forward-mode-jacobians",
    since="2.0",
    requires=(TORCH_FUNC,),
    given=dict(program=programs(dtypes=(torch.float64,), all_require_grad=True, max_ops=8, zero_size=False)),
)
def jacobians_agree(program):
    """torch.func.jacfwd (forward mode), torch.func.jacrev (reverse mode) and torch.autograd.functional.jacobian return the same Jacobian for every input, of shape output shape + input shape."""
    import torch.func

    leaves = float64_copies(program.inputs())
    argnums = tuple(range(len(leaves)))
    function = program.function()
    with quiet():
        forward = torch.func.jacfwd(function, argnums=argnums)(*leaves)
        reverse = torch.func.jacrev(function, argnums=argnums)(*leaves)
    classic = torch.autograd.functional.jacobian(function, tuple(leaves))
    out_shape = tuple(program(*leaves).shape)
    repro = program.repro("print(torch.func.jacfwd(program)(x0), torch.func.jacrev(program)(x0))")
    for i, (f, r, c) in enumerate(zip(forward, reverse, classic)):
        expected_shape = out_shape + tuple(leaves[i].shape)
        expect(
            tuple(f.shape) == expected_shape,
            what=f"shape of jacfwd wrt x{i}",
            expected=expected_shape,
            observed=tuple(f.shape),
            repro=repro,
        )
        expect_close(f, r, tolerance=AGREEMENT, what=f"jacfwd against jacrev wrt x{i}", repro=repro)
        expect_close(
            c, r, tolerance=AGREEMENT, what=f"autograd.functional.jacobian against jacrev wrt x{i}", repro=repro
        )


@rule(
    "forward-mode.func-grad-equals-autograd-grad",
    section=Section.BEYOND,
    docs="forward-mode-func-grad",
    since="2.0",
    requires=(TORCH_FUNC,),
    given=dict(program=programs(all_require_grad=True)),
)
def func_grad_equals_autograd_grad(program):
    """torch.func.grad of a scalar function returns what torch.autograd.grad returns, and leaves .grad of the inputs untouched."""
    import torch.func

    leaves = program.inputs()
    argnums = tuple(range(len(leaves)))
    function = program.function()
    functional = torch.func.grad(lambda *xs: function(*xs).sum(), argnums=argnums)(*leaves)
    expected = torch.autograd.grad(program(*leaves).sum(), leaves, allow_unused=True)
    repro = program.repro("print(torch.func.grad(lambda *xs: program(*xs).sum(), argnums=(0,))(x0))")
    tolerance = (
        Tolerance(1e-12, 1e-12, "float64, same formulas")
        if program.dtype == torch.float64
        else Tolerance(1e-5, 1e-6, "float32, same formulas, possibly batched differently")
    )
    for i, (got, want) in enumerate(zip(functional, expected)):
        want = torch.zeros_like(leaves[i]) if want is None else want
        expect_close(
            got, want, tolerance=tolerance, what=f"torch.func.grad against torch.autograd.grad wrt x{i}", repro=repro
        )
        expect(
            leaves[i].grad is None,
            what=f"x{i}.grad after torch.func.grad",
            expected=None,
            observed=leaves[i].grad,
            repro=repro,
        )


def _scalar(program):
    function = program.function()
    return lambda x0, *rest: torch.sin(function(x0, *rest)).sum()


@rule(
    "forward-mode.hessian-is-forward-over-reverse",
    section=Section.BEYOND,
    docs="forward-mode-hessian",
    since="2.0",
    requires=(TORCH_FUNC,),
    given=dict(program=programs(dtypes=(torch.float64,), max_ops=5, zero_size=False), data=st.data()),
)
def hessian_is_forward_over_reverse(program, data):
    """torch.func.hessian equals the reverse-over-reverse torch.autograd.functional.hessian, and H·u equals the tangent that forward mode pushes through torch.autograd.grad."""
    import torch.func

    fwAD = _fw()
    leaves = float64_copies(program.inputs())
    f = _scalar(program)
    with quiet():
        hessian = torch.func.hessian(f)(*leaves)
    classic = torch.autograd.functional.hessian(lambda x0: f(x0, *leaves[1:]), leaves[0], vectorize=True)
    repro = program.repro(
        f"f = lambda x0: torch.sin(program(x0{''.join(', ' + n for n in program.leaf_names[1:])})).sum()",
        "print(torch.func.hessian(f)(x0), torch.autograd.functional.hessian(f, x0))",
    )
    expect_close(
        hessian,
        classic,
        tolerance=AGREEMENT,
        what="torch.func.hessian against autograd.functional.hessian",
        repro=repro,
    )
    u = _like(data, leaves[0], "u")
    with quiet(), fwAD.dual_level(), torch.enable_grad():
        x0 = fwAD.make_dual(leaves[0].clone().requires_grad_(), u)
        (g,) = torch.autograd.grad(f(x0, *leaves[1:]), x0, create_graph=True)
        hu = fwAD.unpack_dual(g).tangent
    n = leaves[0].numel()
    expected = (hessian.reshape(n, n) @ u.reshape(n)).reshape(u.shape)
    hu = torch.zeros_like(expected) if hu is None else hu.detach()
    expect_close(hu, expected, tolerance=AGREEMENT, what="forward-over-reverse H·u against hessian @ u", repro=repro)


@st.composite
def _per_sample(draw):
    program = draw(
        programs(min_leaves=2, max_leaves=2, dtypes=(torch.float64,), all_require_grad=True, max_ops=8), label="program"
    )
    batch = draw(st.integers(1, 4), label="batch size")
    samples = [
        draw(
            tensors(
                shape=program.leaves[1].shape, dtypes=(torch.float64,), layouts=("contiguous",), requires_grad=False
            ),
            label=f"sample {b}",
        )
        for b in range(batch)
    ]
    return program, samples


@rule(
    "forward-mode.vmap-per-sample-grads-equal-a-loop",
    section=Section.BEYOND,
    docs="forward-mode-vmap",
    since="2.0",
    requires=(TORCH_FUNC,),
    given=dict(case=_per_sample()),
)
def vmap_per_sample_grads_equal_a_loop(case):
    """vmap(grad(loss), in_dims=(None, 0)) over a batch of samples returns, for each sample, the gradient a separate torch.autograd.grad call gives for that sample alone."""
    import torch.func

    program, samples = case
    function = program.function()
    weights = program.leaves[0].make(requires_grad=False).contiguous()
    batch = torch.stack([s.make() for s in samples])

    def loss(w, x):
        return function(w, x).sum()

    per_sample = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0))(weights, batch)
    repro = program.repro(
        f"batch = torch.stack([{', '.join(s.expression() for s in samples)}])",
        "loss = lambda w, x: program(w, x).sum()",
        "print(torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0))(x0, batch))",
    )
    expect(
        tuple(per_sample.shape) == (len(samples),) + tuple(weights.shape),
        what="shape of the per-sample gradients",
        expected=(len(samples),) + tuple(weights.shape),
        observed=tuple(per_sample.shape),
        repro=repro,
    )
    for b in range(len(samples)):
        w = weights.clone().requires_grad_()
        (single,) = torch.autograd.grad(loss(w, batch[b]), w)
        expect_close(
            per_sample[b],
            single,
            tolerance=AGREEMENT,
            what=f"vmapped gradient of sample {b} against a single-sample grad",
            repro=repro,
        )
