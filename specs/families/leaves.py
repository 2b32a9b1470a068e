"""Leaves and the graph: ``requires_grad``, ``grad_fn``, ``is_leaf``, where ``.grad`` lands."""

from __future__ import annotations

import re
import warnings
from typing import NamedTuple

import torch
from hypothesis import strategies as st

from specs.engine.contracts import ErrorContract, Phase, WarningContract
from specs.engine.expect import expect, expect_close
from specs.engine.oracles import DTYPE_TOLERANCE, FD_TOLERANCE, finite_difference_gradients, intermediate_gradient
from specs.engine.registry import Family, record, rule
from specs.engine.script import literal
from specs.engine.sections import Section
from specs.families._canonical import leaf
from specs.families._canonical import program as canonical
from specs.generators.program import TensorSpec
from specs.generators.strategies import programs, tensors

FAMILY = Family(
    name="leaves",
    title="Leaves and the graph",
    summary="Which tensors autograd tracks, the graph it records, and where gradients land.",
    gallery="plot_10_leaves.py",
)


INTEGER_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.bool)

INTEGER_REQUIRES_GRAD = ErrorContract(
    RuntimeError,
    r"(?i)only Tensors of floating point (and complex )?dtype can require gradients",
    Phase.RECORD,
    wording="the factory path says 'floating point and complex dtype', requires_grad_() says "
    "'floating point dtype' although complex tensors are accepted",
)
NO_GRAPH = ErrorContract(
    RuntimeError,
    r"element 0 of tensors does not require grad and does not have a grad_fn",
    Phase.BACKWARD,
)
RETAIN_GRAD_WITHOUT_REQUIRES_GRAD = ErrorContract(
    RuntimeError, r"can't retain_grad on Tensor that has requires_grad=False", Phase.RECORD
)
NON_LEAF_FLAG = ErrorContract(RuntimeError, r"you can only change requires_grad flags of leaf variables", Phase.RECORD)
NON_LEAF_GRAD_ACCESS = WarningContract(
    UserWarning, r"\.grad attribute of a Tensor that is not a leaf Tensor is being accessed"
)


def _tolerance(program):
    return FD_TOLERANCE if program.dtype == torch.float64 else DTYPE_TOLERANCE[torch.float32]


def _quiet_grad(tensor: torch.Tensor):
    """``tensor.grad`` without the non-leaf access warning (a rule of its own)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return tensor.grad


@rule(
    "leaves.created-tensors-are-leaves",
    section=Section.BASICS,
    docs="leaves-created",
    given=dict(spec=tensors(requires_grad=None)),
)
def created_tensors_are_leaves(spec):
    """A tensor the user creates is a leaf with no grad_fn, and requires grad only when asked to."""
    t = spec.make()
    repro = f"import torch\nt = {spec.expression()}\nprint(t.is_leaf, t.grad_fn, t.requires_grad)"
    expect(t.is_leaf, what="a created tensor is a leaf", expected=True, observed=t.is_leaf, repro=repro)
    expect(t.grad_fn is None, what="a created tensor has no grad_fn", expected=None, observed=t.grad_fn, repro=repro)
    expect(
        t.requires_grad == spec.requires_grad,
        what="requires_grad is what was asked for",
        expected=spec.requires_grad,
        observed=t.requires_grad,
        repro=repro,
    )
    plain = torch.zeros(spec.shape, dtype=spec.dtype)
    expect(
        not plain.requires_grad,
        what="factories default to requires_grad=False",
        expected=False,
        observed=plain.requires_grad,
    )


@rule(
    "leaves.requires-grad-propagates",
    section=Section.BASICS,
    docs="leaves-propagation",
    given=dict(program=programs()),
    references=(
        "test_autograd.py::TestAutograd::test_requires_grad",
        "docs: Autograd mechanics > Locally disabling gradient computation > Setting requires_grad",
    ),
)
def requires_grad_propagates(program):
    """In grad mode an op's result requires grad, has a grad_fn and is not a leaf exactly when one of its inputs requires grad."""
    values = program.trace(*program.inputs())
    ancestors = program.ancestors()
    tracked = {n for n, leaf in zip(program.leaf_names, program.leaves) if leaf.requires_grad}
    for name, value in values.items():
        if name in program.leaf_names:
            continue
        expected = bool(ancestors[name] & tracked)
        observed = (value.requires_grad, value.grad_fn is not None, not value.is_leaf)
        expect(
            observed == (expected,) * 3,
            what=f"{name} (computed from {sorted(ancestors[name])}) requires_grad / has grad_fn / non-leaf",
            expected=(expected,) * 3,
            observed=observed,
            repro=program.repro(f"print({name}.requires_grad, {name}.grad_fn)", inline=True),
        )


@rule(
    "leaves.grad-fn-names-the-op",
    section=Section.GRAPH,
    docs="leaves-grad-fn",
    given=dict(program=programs(all_require_grad=True)),
)
def grad_fn_names_the_op(program):
    """A recorded result's grad_fn is the backward node of the op that produced it, named after that op (SinBackward0 for torch.sin)."""
    values = program.trace(*program.inputs())
    for step in program.steps:
        name = values[step.out].grad_fn.name()
        expect(
            re.search(r"Backward\d*$", name) is not None,
            what=f"{step.out} = {step.code}: node name ends in Backward<N>",
            expected="<Op>Backward<N>",
            observed=name,
            repro=program.repro(f"print({step.out}.grad_fn)", inline=True),
        )
        if step.node:
            expect(
                re.search(step.node, name) is not None,
                what=f"{step.out} = {step.code}: node of {step.op}",
                expected=step.node,
                observed=name,
                repro=program.repro(f"print({step.out}.grad_fn)", inline=True),
            )


@rule(
    "leaves.backward-computes-the-gradient",
    section=Section.BASICS,
    docs="leaves-backward",
    given=dict(program=programs(), data=st.data()),
    references=("test_autograd.py::TestAutograd::test_backward",),
)
def backward_computes_the_gradient(program, data):
    """out.backward(v) leaves in each leaf's .grad the vector-Jacobian product vᵀ·∂out/∂leaf, which agrees with float64 finite differences."""
    leaves = program.inputs()
    out = program(*leaves)
    v = data.draw(
        tensors(shape=out.shape, dtypes=(out.dtype,), layouts=("contiguous",), requires_grad=False), label="cotangent"
    ).make()
    out.backward(v)
    expected = finite_difference_gradients(program, leaves, program.grad_leaves, v)
    repro = program.repro(f"out.backward({literal(v)})", *(f"print(x{i}.grad)" for i in program.grad_leaves))
    for i, grad in zip(program.grad_leaves, expected):
        expect_close(
            leaves[i].grad,
            grad,
            tolerance=_tolerance(program),
            what=f"x{i}.grad against finite differences",
            repro=repro,
        )


@rule("leaves.only-leaves-get-grad", section=Section.BASICS, docs="leaves-grad-lands", given=dict(program=programs()))
def only_leaves_get_grad(program):
    """backward() fills .grad of the leaves that require grad and of no other tensor."""
    leaves = program.inputs()
    values = program.trace(*leaves)
    values[program.output].sum().backward()
    repro = program.repro("out.sum().backward()", *(f"print({name}.grad)" for name in program.leaf_names))
    for name, value in values.items():
        should = value.is_leaf and value.requires_grad
        has = _quiet_grad(value) is not None
        expect(
            has == should,
            what=f"{name}.grad is {'set' if should else 'None'}",
            expected=should,
            observed=has,
            repro=repro,
        )


@rule(
    "leaves.retain-grad-keeps-intermediate-gradient",
    section=Section.GRAPH,
    docs="leaves-retain-grad",
    given=dict(program=programs(all_require_grad=True), data=st.data()),
    references=("test_autograd.py::TestAutograd::test_retain_grad",),
)
def retain_grad_keeps_intermediate_gradient(program, data):
    """After retain_grad(), a non-leaf's .grad holds the gradient of the output with respect to that intermediate value."""
    leaves = program.inputs()
    values = program.trace(*leaves)
    name = data.draw(st.sampled_from([s.out for s in program.steps]), label="intermediate")
    values[name].retain_grad()
    expect(
        values[name].retains_grad,
        what=f"{name}.retains_grad after retain_grad()",
        expected=True,
        observed=values[name].retains_grad,
    )
    values[program.output].sum().backward()
    expected = intermediate_gradient(program, name, leaves)
    expect_close(
        values[name].grad,
        expected,
        tolerance=_tolerance(program),
        what=f"{name}.grad against finite differences",
        repro=program.repro(f"{name}.retain_grad()", "out.sum().backward()", f"print({name}.grad)", inline=True),
    )
    leaf = leaves[0]
    leaf.retain_grad()
    expect(not leaf.retains_grad, what="retain_grad() on a leaf is a no-op", expected=False, observed=leaf.retains_grad)


@rule(
    "leaves.retain-grad-needs-requires-grad",
    section=Section.GRAPH,
    docs="leaves-retain-grad",
    given=dict(spec=tensors(requires_grad=False)),
    contracts=(RETAIN_GRAD_WITHOUT_REQUIRES_GRAD,),
)
def retain_grad_needs_requires_grad(spec):
    """retain_grad() on a tensor that does not require grad raises a RuntimeError."""
    RETAIN_GRAD_WITHOUT_REQUIRES_GRAD.check(
        lambda: spec.make().retain_grad(), repro=f"{spec.expression()}.retain_grad()"
    )


@rule(
    "leaves.non-leaf-grad-access-warns",
    section=Section.GRAPH,
    docs="leaves-non-leaf-grad",
    given=dict(program=programs(all_require_grad=True)),
    contracts=(NON_LEAF_GRAD_ACCESS,),
    references=("test_autograd.py::TestAutograd::test_tensor_grad_warnings",),
)
def non_leaf_grad_access_warns(program):
    """Reading .grad of a non-leaf that does not retain grad gives None and a UserWarning; a leaf's .grad gives no warning."""
    leaves = program.inputs()
    values = program.trace(*leaves)
    values[program.output].sum().backward()
    for step in program.steps:
        grad = NON_LEAF_GRAD_ACCESS.check(
            lambda: values[step.out].grad, repro=program.repro(f"print({step.out}.grad)", inline=True)
        )
        expect(grad is None, what=f"{step.out}.grad of a non-leaf", expected=None, observed=grad)
    NON_LEAF_GRAD_ACCESS.check_absent(lambda: leaves[0].grad)


@rule(
    "leaves.integer-dtypes-cannot-require-grad",
    section=Section.BASICS,
    docs="leaves-dtypes",
    given=dict(dtype=st.sampled_from(INTEGER_DTYPES), shape=st.lists(st.integers(0, 3), max_size=3)),
    contracts=(INTEGER_REQUIRES_GRAD,),
    references=("test_autograd.py::TestAutogradDeviceType::test_set_requires_grad_only_for_floats",),
)
def integer_dtypes_cannot_require_grad(dtype, shape):
    """Only floating-point and complex tensors can require grad: asking an integer or bool tensor to raises a RuntimeError."""
    INTEGER_REQUIRES_GRAD.check(
        lambda: torch.zeros(shape, dtype=dtype, requires_grad=True),
        repro=f"torch.zeros({shape}, dtype={dtype}, requires_grad=True)",
    )
    INTEGER_REQUIRES_GRAD.check(
        lambda: torch.zeros(shape, dtype=dtype).requires_grad_(),
        repro=f"torch.zeros({shape}, dtype={dtype}).requires_grad_()",
    )
    for ok in (torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.complex64):
        t = torch.zeros(shape, dtype=ok, requires_grad=True)
        expect(t.requires_grad, what=f"a {ok} tensor can require grad", expected=True, observed=t.requires_grad)


@rule(
    "leaves.backward-needs-a-graph",
    section=Section.BASICS,
    docs="leaves-no-graph",
    given=dict(program=programs()),
    contracts=(NO_GRAPH,),
    references=("test_autograd.py::TestAutograd::test_backward_badcalls",),
)
def backward_needs_a_graph(program):
    """backward() on a result that no tensor requiring grad contributed to raises a RuntimeError."""
    untracked = program.with_leaves(requires_grad=False)
    NO_GRAPH.check(lambda: untracked(*untracked.inputs()).sum(), repro=untracked.repro("out.sum().backward()"))


@rule(
    "leaves.graph-reaches-exactly-the-grad-leaves",
    section=Section.GRAPH,
    docs="leaves-next-functions",
    given=dict(program=programs()),
    references=("test_autograd.py::TestAutograd::test_next_functions",),
)
def graph_reaches_exactly_the_grad_leaves(program):
    """Following grad_fn.next_functions from the output reaches, through AccumulateGrad nodes, exactly the leaves that require grad."""
    leaves = program.inputs()
    out = program(*leaves)
    # Keep every visited node alive: older releases hand out short-lived Python wrappers whose
    # ids would otherwise be reused.
    visited, stack, reached = [], [out.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or any(node is seen for seen in visited):
            continue
        visited.append(node)
        if hasattr(node, "variable"):
            reached.add(id(node.variable))
        stack.extend(child for child, _ in node.next_functions)
    expected = {id(leaves[i]) for i in program.grad_leaves}
    expect(
        reached == expected,
        what="leaves reached through AccumulateGrad nodes",
        expected=sorted(f"x{i}" for i in program.grad_leaves),
        observed=sorted(f"x{i}" for i, x in enumerate(leaves) if id(x) in reached),
        repro=program.repro("print(out.grad_fn.next_functions)"),
    )


@rule(
    "leaves.requires-grad-flag-is-for-leaves",
    section=Section.BASICS,
    docs="leaves-requires-grad-flag",
    given=dict(program=programs(all_require_grad=True), data=st.data()),
    contracts=(NON_LEAF_FLAG,),
    references=("test_autograd.py::TestAutograd::test_requires_grad_",),
)
def requires_grad_flag_is_for_leaves(program, data):
    """requires_grad_(False) on a non-leaf raises a RuntimeError (detach() is the way out of the graph); on a leaf it works."""
    values = program.trace(*program.inputs())
    name = data.draw(st.sampled_from([s.out for s in program.steps]), label="intermediate")
    NON_LEAF_FLAG.check(
        lambda: values[name].requires_grad_(False), repro=program.repro(f"{name}.requires_grad_(False)", inline=True)
    )
    leaf = values["x0"].requires_grad_(False)
    expect(not leaf.requires_grad, what="requires_grad_(False) on a leaf", expected=False, observed=leaf.requires_grad)


@rule(
    "leaves.integer-results-are-not-tracked",
    section=Section.BASICS,
    docs="leaves-integer-results",
    given=dict(program=programs(all_require_grad=True)),
    references=("test_autograd.py::TestAutograd::test_integer_outputs",),
)
def integer_results_are_not_tracked(program):
    """Comparisons, argmax and integer casts of a tracked tensor do not require grad and have no grad_fn."""
    values = program.trace(*program.inputs())
    for name, value in values.items():
        results = {"v > 0": value > 0, "v.long()": value.long()}
        if value.numel():
            results["v.argmax()"] = value.argmax()
        for what, result in results.items():
            expect(
                not result.requires_grad and result.grad_fn is None,
                what=f"{what.replace('v', name, 1)} is not tracked",
                expected="requires_grad=False, grad_fn=None",
                observed=(result.requires_grad, result.grad_fn),
                repro=program.repro(f"print(({name} > 0).requires_grad)", inline=True),
            )


@rule(
    "leaves.graph-is-recorded-each-run",
    section=Section.GRAPH,
    docs="leaves-dynamic",
    given=dict(program=programs(all_require_grad=True)),
    references=("docs: Autograd mechanics > How autograd encodes the history",),
)
def graph_is_recorded_each_run(program):
    """Every forward run records a new graph of the operations actually executed, Python control flow included."""
    leaves = program.inputs()
    first, second = program(*leaves), program(*leaves)
    expect(
        first.grad_fn is not second.grad_fn,
        what="two runs record two graphs",
        expected="distinct grad_fn objects",
        observed="the same grad_fn object",
    )
    taken = first.sum() > 0
    branch = torch.sin(first) if taken else torch.cos(first)
    name = branch.grad_fn.name()
    wanted = "SinBackward" if taken else "CosBackward"
    expect(
        name.startswith(wanted),
        what="the node of the branch that ran",
        expected=wanted,
        observed=name,
        repro=program.repro("branch = torch.sin(out) if out.sum() > 0 else torch.cos(out)", "print(branch.grad_fn)"),
    )


NUMPY_REQUIRES_GRAD = ErrorContract(RuntimeError, r"Can't call numpy\(\) on Tensor that requires grad", Phase.RECORD)

#: The four ways of writing a value into an existing tensor, each with what ``y`` ends up
#: contributing to ``loss = (target * w).sum()``: the oracle is ∂loss/∂y, derived by hand.
WRITE_FORMS = ("target[0] = y", "target += y", "target.copy_(y)", "target[0].mul_(y)")


class Write(NamedTuple):
    """A tracked value ``y`` written into an untracked ``target`` of shape (2, *y.shape), weighted by ``w``."""

    y: TensorSpec
    target: TensorSpec
    weights: TensorSpec
    form: str


@st.composite
def writes(draw):
    dtype = draw(st.sampled_from([torch.float32, torch.float64]), label="dtype")
    y = draw(tensors(dtypes=(dtype,), layouts=("contiguous",), max_ndim=2), label="y")
    shape = (2, *y.shape)
    # An expanded target cannot be written to at all (its elements share memory): not this rule.
    layouts = ("contiguous", "transposed", "sliced")
    target = draw(tensors(shape=shape, dtypes=(dtype,), layouts=layouts, requires_grad=False), label="target")
    weights = draw(tensors(shape=shape, dtypes=(dtype,), layouts=("contiguous",), requires_grad=False), label="w")
    return Write(y, target, weights, draw(st.sampled_from(WRITE_FORMS), label="form"))


def _written_gradient(write: Write, target: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    if write.form == "target[0] = y":
        return w[0]
    if write.form == "target[0].mul_(y)":
        return w[0] * target[0]
    return w.sum(0)  # += and copy_ broadcast y over dim 0


@rule(
    "leaves.writing-a-tracked-value-tracks-the-target",
    section=Section.BASICS,
    docs="leaves-writes",
    given=dict(write=writes()),
    examples=tuple(
        dict(
            write=Write(
                leaf(1.5, -2.0),
                leaf(1.0, 2.0, 3.0, 4.0, shape=(2, 2), requires_grad=False),
                leaf(0.5, 1.0, 2.0, -1.0, shape=(2, 2), requires_grad=False),
                form,
            )
        )
        for form in WRITE_FORMS
    ),
    references=(
        "test_autograd.py::TestAutograd::test_leaf_assignment",
        "test_autograd.py::TestAutograd::test_requires_grad_inplace",
        "test_autograd.py::TestAutogradDeviceType::test_copy_",
        "test_autograd.py::TestAutogradDeviceType::test_inplace_on_view_makes_base_require_grad",
    ),
)
def writing_a_tracked_value_tracks_the_target(write):
    """Writing a tensor that requires grad into one that does not (x[0] = y, x += y, x.copy_(y), x[0].mul_(y)) makes the written tensor and its base require grad and routes the gradient to y."""
    y, target, w = write.y.make(), write.target.make(), write.weights.make()
    original = target.detach().clone()
    base = target._base if target._base is not None else target
    repro = (
        f"import torch\ny = {write.y.expression()}\ntarget = {write.target.expression()}\n"
        f"{write.form}\nprint(target.requires_grad, target.grad_fn)\n"
        f"(target * {literal(w)}).sum().backward()\nprint(y.grad)"
    )
    exec(write.form, {}, {"target": target, "y": y})  # noqa: S102 - the form is one of WRITE_FORMS
    for name, tensor in (("target", target), ("its base", base)):
        observed = (tensor.requires_grad, tensor.grad_fn is not None)
        expect(
            observed == (True, True),
            what=f"{name} after {write.form}: requires_grad / has grad_fn",
            expected=(True, True),
            observed=observed,
            repro=repro,
        )
    record(write.form, {"target": target.grad_fn.name(), "base": base.grad_fn.name()})
    (target * w).sum().backward()
    tolerance = FD_TOLERANCE if y.dtype == torch.float64 else DTYPE_TOLERANCE[torch.float32]
    expect_close(
        y.grad,
        _written_gradient(write, original, w),
        tolerance=tolerance,
        what=f"y.grad after {write.form}",
        repro=repro,
    )


@rule(
    "leaves.numpy-needs-no-grad",
    section=Section.BASICS,
    docs="leaves-numpy",
    given=dict(program=programs(all_require_grad=True)),
    contracts=(NUMPY_REQUIRES_GRAD,),
    examples=(dict(program=canonical(leaf(1.0, -2.0), "v0 = x0 * 3.0")),),
    references=("test_autograd.py::TestAutograd::test_numpy_requires_grad",),
)
def numpy_needs_no_grad(program):
    """numpy() on a tensor that requires grad, leaf or not, raises a RuntimeError, and under no_grad it returns the tensor's values."""
    values = program.trace(*program.inputs())
    for name, value in values.items():
        NUMPY_REQUIRES_GRAD.check(lambda: value.numpy(), repro=program.repro(f"{name}.numpy()", inline=True))
        with torch.no_grad():
            array = value.numpy()
        expect(
            array.shape == tuple(value.shape) and array.tolist() == value.detach().tolist(),
            what=f"{name}.numpy() under no_grad",
            expected=value.detach().tolist(),
            observed=array.tolist(),
            repro=program.repro(f"with torch.no_grad():\n    print({name}.numpy())", inline=True),
        )
    record("under no_grad", "returns the values")


#: Integer-valued ops beyond comparisons and casts (``searchsorted`` searches the sorted values).
INTEGER_OPS = {
    "{v}.argsort()": lambda v: v.argsort(),
    "torch.searchsorted({v}.sort().values, {v})": lambda v: torch.searchsorted(v.sort().values, v),
    "torch.unique({v}, return_inverse=True)[1]": lambda v: torch.unique(v, return_inverse=True)[1],
    "torch.isin({v}, {v}[:1])": lambda v: torch.isin(v, v[:1]),
}


@rule(
    "leaves.integer-indices-are-not-tracked",
    section=Section.BASICS,
    docs="leaves-integer-results",
    given=dict(program=programs(all_require_grad=True)),
    examples=(dict(program=canonical(leaf(3.0, 1.0, 2.0, 1.0), "v0 = x0 * 2.0")),),
    references=(
        "test_autograd.py::TestAutograd::test_integer_outputs",
        "test_autograd.py::TestAutogradDeviceType::test_non_differentiable_ops",
    ),
)
def integer_indices_are_not_tracked(program):
    """argsort, searchsorted, unique's inverse indices and isin of a tracked tensor are integer or bool tensors that do not require grad and have no grad_fn."""
    values = program.trace(*program.inputs())
    for name, value in values.items():
        flat = value.flatten().contiguous()  # searchsorted warns on a strided sequence
        for code, op in INTEGER_OPS.items():
            result = op(flat)
            what = code.format(v=f"{name}.flatten()")
            observed = (result.dtype.is_floating_point, result.requires_grad, result.grad_fn)
            expect(
                observed == (False, False, None),
                what=f"{what}: floating / requires_grad / grad_fn",
                expected=(False, False, None),
                observed=observed,
                repro=program.repro(f"print(({what}).requires_grad)", inline=True),
            )
            if name == program.output:
                record(code.format(v="out"), {"dtype": str(result.dtype), "requires_grad": result.requires_grad})
