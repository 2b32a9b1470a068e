"""Accumulation: ``.grad`` sums across backward calls; zeroing; micro-batches; fan-out; broadcasting."""

from __future__ import annotations

import re
from typing import NamedTuple

import torch
from hypothesis import strategies as st

from specs.engine.contracts import ErrorContract, Phase
from specs.engine.expect import Tolerance, Violation, expect, expect_close
from specs.engine.oracles import DTYPE_TOLERANCE, FD_TOLERANCE, finite_difference_gradients, intermediate_gradient
from specs.engine.registry import Change, Family, record, rule
from specs.engine.script import Script
from specs.engine.sections import Section
from specs.engine.versions import at_least
from specs.families._canonical import leaf
from specs.families._canonical import program as canonical
from specs.generators.program import Program, Step, TensorSpec
from specs.generators.strategies import programs, shapes, tensors

FAMILY = Family(
    name="accumulation",
    title="Gradient accumulation",
    summary="How .grad sums across backward calls, how to reset it, and how micro-batches add up.",
    gallery="plot_20_accumulation.py",
)


#: Re-adding the same float k times differs from multiplying by k by a few units in the last
#: place; sums over batch chunks in another order differ by roundoff of the partial sums.
ROUNDOFF = {
    torch.float32: Tolerance(1e-5, 1e-6, "float32 sums of the same terms in another order"),
    torch.float64: Tolerance(1e-12, 1e-13, "float64 sums of the same terms in another order"),
}

EMPTY_INPUTS = ErrorContract(
    RuntimeError,
    r"[`']inputs[`'] argument to `?backward\(\)`? cannot be empty",
    Phase.BACKWARD,
    wording="older releases quote 'inputs' with straight quotes, newer ones with backticks",
)


def _one_pass(program):
    leaves = program.inputs()
    program(*leaves).sum().backward()
    return [leaves[i].grad for i in program.grad_leaves]


@rule(
    "accumulation.sums-across-backward",
    section=Section.ACCUMULATION,
    docs="accumulation-sums",
    given=dict(program=programs(), k=st.integers(2, 4)),
    references=("docs: torch.autograd.backward (gradients are accumulated in the leaves)",),
)
def sums_across_backward(program, k):
    """Calling backward k times without zeroing leaves the sum of the k gradients in .grad."""
    single = _one_pass(program)
    script = program.script(f"for _ in range({k}):", f"    {program.call}.sum().backward()", *program.print_grads)
    seen = script.run()
    for i, grad in zip(program.grad_leaves, single):
        expect_close(
            seen[f"x{i}"].grad,
            grad * k,
            tolerance=ROUNDOFF[program.dtype],
            what=f"x{i}.grad after {k} backward passes against {k} x one pass",
            repro=script,
        )


@rule(
    "accumulation.accumulates-in-place",
    section=Section.ACCUMULATION,
    docs="accumulation-sums",
    given=dict(program=programs()),
    references=("test_autograd.py::TestAutograd::test_accumulate_grad",),
)
def accumulates_in_place(program):
    """Without create_graph, a second backward adds into the existing .grad tensor rather than replacing it."""
    grads = ", ".join(f"{program.leaf_names[i]}.grad" for i in program.grad_leaves)
    script = program.script(
        "out.sum().backward()",
        f"before = [{grads}]",
        f"{program.call}.sum().backward()",
        f"after = [{grads}]",
        "print([a is b for a, b in zip(after, before)])",
    )
    seen = script.run()
    for i, grad, before in zip(program.grad_leaves, seen.after, seen.before):
        expect(
            grad is before,
            what=f"x{i}.grad is the same tensor object after a second backward",
            expected="the same object",
            observed="a new tensor",
            repro=script,
        )


@rule(
    "accumulation.zeroing-restarts-the-sum",
    section=Section.ACCUMULATION,
    docs="accumulation-zeroing",
    given=dict(program=programs(), k=st.integers(1, 3)),
)
def zeroing_restarts_the_sum(program, k):
    """After grad.zero_(), the next backward leaves exactly that pass's gradient in .grad."""
    single = _one_pass(program)
    script = program.script(
        f"for _ in range({k}):",
        f"    {program.call}.sum().backward()",
        *(f"{program.leaf_names[i]}.grad.zero_()" for i in program.grad_leaves),
        f"{program.call}.sum().backward()",
        *program.print_grads,
    )
    seen = script.run()
    for i, grad in zip(program.grad_leaves, single):
        expect_close(
            seen[f"x{i}"].grad,
            grad,
            tolerance=ROUNDOFF[program.dtype],
            what=f"x{i}.grad after zero_() and one pass",
            repro=script,
        )


def _zero_grad(specs, via: str, arguments: str = "") -> Script:
    """Parameters of a module after one backward, then zero_grad() called through ``via``."""
    zero_grad = {
        "module": f"model.zero_grad({arguments})",
        "optimizer": f"torch.optim.SGD(model.parameters(), lr=0.1).zero_grad({arguments})",
    }[via]
    return Script(
        """
        model = torch.nn.Module()
        model.params = torch.nn.ParameterList([torch.nn.Parameter(t) for t in [$tensors]])
        sum(torch.sin(p).sum() for p in model.params).backward()
        before = [p.grad for p in model.params]
        $zero_grad
        print([p.grad for p in model.params])
        """,
        tensors=", ".join(spec.expression(requires_grad=False) for spec in specs),
        zero_grad=zero_grad,
    )


param_lists = st.lists(tensors(zero_size=False), min_size=1, max_size=3)


#: The canonical parameters of the zero_grad rules: a 2x3 float32 matrix and a float64 vector.
CANONICAL_PARAMS = [
    TensorSpec((2, 3), torch.float32, "contiguous", (0.5, -1.0, 2.0, 0.25, -0.75, 1.5)),
    TensorSpec((2,), torch.float64, "contiguous", (1.0, -2.0)),
]


def _what_is_left(grad) -> str:
    """What zero_grad left in a .grad, as the release diff shows it."""
    if grad is None:
        return "None"
    return "zeros" if not grad.any() else "a nonzero tensor"


@rule(
    "accumulation.zero-grad-sets-none",
    section=Section.ACCUMULATION,
    docs="accumulation-zeroing",
    given=dict(specs=param_lists, via=st.sampled_from(["module", "optimizer"])),
    examples=(dict(specs=CANONICAL_PARAMS, via="module"), dict(specs=CANONICAL_PARAMS, via="optimizer")),
    references=(
        "test_nn.py::TestNN::test_zero_grad",
        "docs: torch.nn.Module.zero_grad",
        "docs: torch.optim.Optimizer.zero_grad (set_to_none)",
    ),
    history=(
        Change(
            "2.0",
            "Module.zero_grad() and Optimizer.zero_grad() default to set_to_none=True; "
            "before 2.0 they filled .grad with zeros",
        ),
    ),
)
def zero_grad_sets_none(specs, via):
    """Module.zero_grad() and Optimizer.zero_grad() reset every parameter's .grad to None by default (to zeros before torch 2.0)."""
    script = _zero_grad(specs, via)
    params = script.run().model.params
    left = sorted({_what_is_left(p.grad) for p in params})
    record(f"{via}.zero_grad() leaves .grad", " and ".join(left))
    for p in params:
        if at_least("2.0"):
            expect(p.grad is None, what=f"p.grad after {via}.zero_grad()", expected=None, observed=p.grad, repro=script)
        else:
            expect(
                p.grad is not None and not p.grad.any(),
                what=f"p.grad after {via}.zero_grad()",
                expected="zeros",
                observed=p.grad,
                repro=script,
            )


@rule(
    "accumulation.zero-grad-can-keep-tensors",
    section=Section.ACCUMULATION,
    docs="accumulation-zeroing",
    given=dict(specs=param_lists, via=st.sampled_from(["module", "optimizer"])),
)
def zero_grad_can_keep_tensors(specs, via):
    """zero_grad(set_to_none=False) fills each existing .grad with zeros in place, keeping the tensor object."""
    script = _zero_grad(specs, via, "set_to_none=False")
    seen = script.run()
    for p, grad in zip(seen.model.params, seen.before):
        expect(
            p.grad is grad,
            what="the same .grad object is kept",
            expected="same object",
            observed="new object",
            repro=script,
        )
        expect(not p.grad.any(), what=".grad is zero", expected="all zeros", observed=p.grad, repro=script)


@st.composite
def batches(draw):
    """A small regression problem: inputs X (n x f), targets y (n), weights w (f), a chunking of n."""
    n = draw(st.integers(1, 12), label="samples")
    f = draw(st.integers(1, 4), label="features")
    dtype = draw(st.sampled_from([torch.float32, torch.float64]), label="dtype")
    x = draw(tensors(shape=(n, f), dtypes=(dtype,), requires_grad=False), label="X")
    y = draw(tensors(shape=(n,), dtypes=(dtype,), requires_grad=False), label="y")
    w = draw(tensors(shape=(f,), dtypes=(dtype,), layouts=("contiguous",)), label="w")
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, n - 1)), max_size=4), label="cuts")) - {n})
    return x, y, w, [0, *cuts, n]


@rule(
    "accumulation.micro-batches-add-up",
    section=Section.ACCUMULATION,
    docs="accumulation-micro-batches",
    given=dict(batch=batches()),
)
def micro_batches_add_up(batch):
    """For a loss summed over samples, backward on each chunk of the batch in turn accumulates exactly the full-batch gradient."""
    xs, ys, ws, bounds = batch
    script = Script(
        """
        x = $x
        y = $y
        loss = lambda w, x, y: ((torch.tanh(x @ w) - y) ** 2).sum()
        full, chunked = $w, $w
        loss(full, x, y).backward()
        for lo, hi in zip($lows, $highs):
            loss(chunked, x[lo:hi], y[lo:hi]).backward()
        print(full.grad, chunked.grad)
        """,
        x=xs.expression(),
        y=ys.expression(),
        w=ws.expression(),
        lows=bounds[:-1],
        highs=bounds[1:],
    )
    seen = script.run()
    expect_close(
        seen.chunked.grad,
        seen.full.grad,
        tolerance=ROUNDOFF[ws.dtype],
        what=f"accumulated gradient of chunks {bounds}",
        repro=script,
    )


@rule(
    "accumulation.mean-micro-batches-need-scaling",
    section=Section.ACCUMULATION,
    docs="accumulation-micro-batches",
    given=dict(batch=batches(), chunks=st.integers(2, 4)),
)
def mean_micro_batches_need_scaling(batch, chunks):
    """With a mean-reduced loss and k equal chunks, dividing each chunk's loss by k reproduces the full-batch gradient; not dividing gives k times it."""
    xs, ys, ws, _ = batch
    script = Script(
        """
        x = $x.repeat($chunks, 1)
        y = $y.repeat($chunks)
        loss = lambda w, x, y: ((torch.tanh(x @ w) - y) ** 2).mean()
        full, scaled, unscaled = $w, $w, $w
        loss(full, x, y).backward()
        for part in torch.arange(x.shape[0]).chunk($chunks):
            (loss(scaled, x[part], y[part]) / $chunks).backward()
            loss(unscaled, x[part], y[part]).backward()
        print(full.grad, scaled.grad, unscaled.grad)
        """,
        x=xs.expression(),
        y=ys.expression(),
        w=ws.expression(),
        chunks=chunks,
    )
    seen = script.run()
    expect_close(
        seen.scaled.grad,
        seen.full.grad,
        tolerance=ROUNDOFF[ws.dtype],
        what=f"{chunks} chunks, each loss / {chunks}",
        repro=script,
    )
    expect_close(
        seen.unscaled.grad,
        seen.full.grad * chunks,
        tolerance=ROUNDOFF[ws.dtype],
        what=f"{chunks} unscaled chunks",
        repro=script,
    )


@rule(
    "accumulation.fan-out-sums-contributions",
    section=Section.ACCUMULATION,
    docs="accumulation-fan-out",
    given=dict(program=programs(all_require_grad=True), data=st.data()),
)
def fan_out_sums_contributions(program, data):
    """A tensor read by several operations receives the sum of the gradients that flow back along each use."""
    leaf = data.draw(st.sampled_from(range(len(program.leaves))), label="leaf")
    split, copies = program.split_uses(leaf)
    leaves = program.inputs()
    program(*leaves).sum().backward()
    parts = split.inputs()
    split(*parts).sum().backward()
    total = sum(parts[i].grad for i in copies)
    tolerance = FD_TOLERANCE if program.dtype == torch.float64 else DTYPE_TOLERANCE[torch.float32]
    expect_close(
        leaves[leaf].grad,
        total,
        tolerance=tolerance,
        what=f"x{leaf}.grad against the sum over its {len(copies)} uses, each read from its own copy",
        repro=program.repro("out.sum().backward()", f"print(x{leaf}.grad)")
        + "\n# with one copy per use:\n"
        + split.repro("out.sum().backward()", f"print({' + '.join(f'x{i}.grad' for i in copies)})"),
    )


@rule(
    "accumulation.broadcast-gradients-are-reduced",
    section=Section.ACCUMULATION,
    docs="accumulation-broadcast",
    given=dict(full=shapes(1, 3), data=st.data()),
)
def broadcast_gradients_are_reduced(full, data):
    """An input broadcast inside an op gets a gradient of its own shape: the sum of the broadcast gradient over the broadcast dimensions."""
    small = tuple(1 if data.draw(st.booleans(), label="broadcast dim") else n for n in full)
    small = small[data.draw(st.integers(0, len(small)), label="drop leading dims") :]
    a_spec = data.draw(tensors(shape=small, dtypes=(torch.float64,)), label="a")
    b_spec = data.draw(tensors(shape=full, dtypes=(torch.float64,), requires_grad=False), label="b")
    script = Script(
        "a = $a\nb = $b\ntorch.sin(a * b).sum().backward()\nprint(a.grad)", a=a_spec.expression(), b=b_spec.expression()
    )
    seen = script.run()
    a, b = seen.a, seen.b
    expanded = a.detach().expand(full).clone().requires_grad_()
    torch.sin(expanded * b).sum().backward()
    expected = expanded.grad
    lead = len(full) - len(small)
    if lead:
        expected = expected.sum(dim=tuple(range(lead)))
    for d, n in enumerate(small):
        if n == 1 and full[lead + d] != 1:
            expected = expected.sum(dim=d, keepdim=True)
    expect(
        a.grad.shape == a.shape,
        what="the gradient has the input's shape",
        expected=tuple(a.shape),
        observed=tuple(a.grad.shape),
        repro=script,
    )
    expect_close(
        a.grad,
        expected,
        tolerance=ROUNDOFF[torch.float64],
        what="a.grad against the reduced broadcast gradient",
        repro=script,
    )


@rule(
    "accumulation.backward-inputs-restricts-accumulation",
    section=Section.ACCUMULATION,
    docs="accumulation-inputs",
    given=dict(program=programs(min_leaves=2, all_require_grad=True), data=st.data()),
    references=("test_autograd.py::TestAutograd::test_backward_with_inputs",),
)
def backward_inputs_restricts_accumulation(program, data):
    """backward(inputs=[...]) accumulates into the listed leaves only; the others' .grad stays None."""
    chosen = data.draw(st.sets(st.sampled_from(range(len(program.leaves))), min_size=1), label="inputs")
    single = _one_pass(program)
    script = program.script(
        f"out.sum().backward(inputs=[{', '.join(f'x{i}' for i in sorted(chosen))}])",
        *(f"print({name}.grad)" for name in program.leaf_names),
    )
    seen = script.run()
    for i, grad in enumerate(single):
        if i in chosen:
            expect_close(
                seen[f"x{i}"].grad,
                grad,
                tolerance=ROUNDOFF[program.dtype],
                what=f"x{i}.grad (listed in inputs)",
                repro=script,
            )
        else:
            expect(
                seen[f"x{i}"].grad is None,
                what=f"x{i}.grad (not listed in inputs)",
                expected=None,
                observed=seen[f"x{i}"].grad,
                repro=script,
            )


@rule(
    "accumulation.backward-inputs-fills-non-leaves",
    section=Section.ACCUMULATION,
    docs="accumulation-inputs",
    given=dict(program=programs(all_require_grad=True), data=st.data()),
    references=("test_autograd.py::TestAutograd::test_backward_with_nonleaf_inputs",),
)
def backward_inputs_fills_non_leaves(program, data):
    """A non-leaf listed in backward(inputs=...) gets .grad, the gradient with respect to it, without retain_grad()."""
    name = data.draw(st.sampled_from([s.out for s in program.steps]), label="intermediate")
    script = program.script(f"out.sum().backward(inputs=[{name}])", f"print({name}.grad)", inline=True)
    seen = script.run()
    tolerance = FD_TOLERANCE if program.dtype == torch.float64 else DTYPE_TOLERANCE[torch.float32]
    expect_close(
        seen[name].grad,
        intermediate_gradient(program, name, program.inputs()),
        tolerance=tolerance,
        what=f"{name}.grad after backward(inputs=[{name}])",
        repro=script,
    )


@rule(
    "accumulation.backward-inputs-must-not-be-empty",
    section=Section.ACCUMULATION,
    docs="accumulation-inputs",
    given=dict(program=programs()),
    contracts=(EMPTY_INPUTS,),
)
def backward_inputs_must_not_be_empty(program):
    """backward(inputs=[]) raises a RuntimeError rather than computing nothing."""
    EMPTY_INPUTS.check(
        lambda: program(*program.inputs()).sum(),
        backward=lambda out: out.backward(inputs=[]),
        repro=program.repro("out.sum().backward(inputs=[])"),
    )


_SCALAR_COMBINATIONS = (
    "{0}.sum() + {1}.sum()",
    "torch.stack([{0}, {1}]).sum()",
    "{0}.reshape(()) + {1}.reshape(())",
    "{0}.view(()) + {1}.view(())",
    "{0} + {1}",
    "{0}.sum() * 2.0 + {1}.sum()",
    "torch.sin({0}) + torch.cos({1})",
)


@st.composite
def scalar_leaf_programs(draw):
    """Two or three 0-d leaves combined by one of the ways people sum scalars (parameters, losses)."""
    dtype = draw(st.sampled_from([torch.float32, torch.float64]), label="dtype")
    n = draw(st.integers(2, 3), label="leaves")
    leaves = tuple(draw(tensors(shape=(), dtypes=(dtype,)), label=f"x{i}") for i in range(n))
    template = draw(st.sampled_from(_SCALAR_COMBINATIONS), label="combination")
    code = template.format("x0", "x1")
    if n == 3:
        code = f"{code} + x2.sum()"
    return Program(leaves, (Step("out", "combine", tuple(f"x{i}" for i in range(n)), code),), "out")


@rule(
    "accumulation.leaves-own-their-grad",
    section=Section.ACCUMULATION,
    docs="accumulation-own-grad",
    given=dict(program=st.one_of(scalar_leaf_programs(), programs(min_leaves=2, all_require_grad=True))),
    references=("test_autograd.py::TestAutograd::test_no_grad_copy",),
)
def leaves_own_their_grad(program):
    """Every leaf gets a .grad tensor of its own, so accumulating a second backward pass adds to each leaf exactly once."""
    single = _one_pass(program)
    names = program.leaf_names
    repro = program.script(
        "for _ in range(2):",
        f"    {program.call}.sum().backward()",
        *(f"print({names[i]}.grad, {names[i]}.grad.data_ptr())" for i in program.grad_leaves),
    )
    seen = repro.run()
    grads = [seen[names[i]].grad for i in program.grad_leaves]
    for i, j in ((i, j) for i in range(len(grads)) for j in range(i + 1, len(grads))):
        if grads[i].numel() and grads[j].numel():
            expect(
                grads[i].data_ptr() != grads[j].data_ptr(),
                what=f"x{i}.grad and x{j}.grad are distinct tensors",
                expected="different storage",
                observed="the same storage",
                repro=repro,
            )
    for i, grad in zip(program.grad_leaves, single):
        expect_close(
            seen[names[i]].grad,
            grad * 2,
            tolerance=ROUNDOFF[program.dtype],
            what=f"x{i}.grad after 2 backward passes against 2 x one pass",
            repro=repro,
        )


EMPTY_GRAD_INPUTS = ErrorContract(RuntimeError, r"`inputs` argument to `grad\(\)` cannot be empty", Phase.BACKWARD)
#: The engine's own check, which releases without the Python-side one reach instead (PyTorch's
#: test_grad_empty_inputs still expects it); which releases those are was not established here.
EMPTY_GRAD_INPUTS_ENGINE = ErrorContract(ValueError, r"grad requires non-empty inputs", Phase.BACKWARD)
UNTRACKED_ROOT = ErrorContract(
    RuntimeError, r"element (\d+) of tensors does not require grad and does not have a grad_fn", Phase.BACKWARD
)


#: Built once: building the programs strategy costs more than drawing from it.
TRACKED_PROGRAMS = programs(all_require_grad=True)


class UnusedInput(NamedTuple):
    """A program and a tensor ``z`` it never uses, listed with ``chosen`` leaves in ``backward(inputs=...)``."""

    program: Program
    z: TensorSpec
    chosen: tuple[int, ...]


@st.composite
def unused_inputs(draw):
    program = draw(TRACKED_PROGRAMS, label="program")
    z = draw(tensors(), label="z")
    chosen = draw(st.sets(st.sampled_from(range(len(program.leaves)))), label="inputs")
    return UnusedInput(program, z, tuple(sorted(chosen)))


@rule(
    "accumulation.backward-inputs-allows-unused",
    section=Section.ACCUMULATION,
    docs="accumulation-inputs",
    given=dict(case=unused_inputs()),
    examples=(dict(case=UnusedInput(canonical(leaf(1.0, 2.0), "v0 = x0 * x0"), leaf(5.0), (0,))),),
    references=("test_autograd.py::TestAutograd::test_grad_unreachable_discovery",),
)
def backward_inputs_allows_unused(case):
    """backward(inputs=[...]) with a listed tensor the output does not depend on raises nothing and leaves that tensor's .grad None, while the used ones get their gradient."""
    program = case.program
    single = _one_pass(program)
    listed = ", ".join([*(f"x{i}" for i in case.chosen), "z"])
    script = program.script(
        f"z = {case.z.expression()}",
        f"out.sum().backward(inputs=[{listed}])",
        "print(z.grad)",
        *(f"print(x{i}.grad)" for i in case.chosen),
    )
    seen = script.run()
    expect(seen.z.grad is None, what="z.grad (listed, unused)", expected=None, observed=seen.z.grad, repro=script)
    record("z.grad", repr(seen.z.grad))
    for i in case.chosen:
        expect_close(
            seen[f"x{i}"].grad,
            single[program.grad_leaves.index(i)],
            tolerance=ROUNDOFF[program.dtype],
            what=f"x{i}.grad (listed, used)",
            repro=script,
        )


@rule(
    "accumulation.grad-inputs-must-not-be-empty",
    section=Section.ACCUMULATION,
    docs="accumulation-grad-empty",
    given=dict(program=programs()),
    contracts=(EMPTY_GRAD_INPUTS, EMPTY_GRAD_INPUTS_ENGINE),
    examples=(dict(program=canonical(leaf(1.0), "v0 = x0 * 2.0")),),
    references=("test_autograd.py::TestAutograd::test_grad_empty_inputs",),
)
def grad_inputs_must_not_be_empty(program):
    """torch.autograd.grad(out, inputs=[]) raises a RuntimeError (a ValueError where the engine's own check came first) rather than returning an empty tuple."""

    def check(contract):
        return contract.check(
            lambda: program(*program.inputs()).sum(),
            backward=lambda out: torch.autograd.grad(out, []),
            repro=program.repro("torch.autograd.grad(out.sum(), [])"),
        )

    try:
        check(EMPTY_GRAD_INPUTS)
    except Violation as violation:
        if not isinstance(violation.__cause__, ValueError):
            raise
        check(EMPTY_GRAD_INPUTS_ENGINE)


class Roots(NamedTuple):
    """Roots for one backward call: the program's output, with untracked tensors at ``untracked``."""

    program: Program
    count: int
    untracked: frozenset[int]
    api: str


@st.composite
def roots_with_untracked(draw):
    program = draw(TRACKED_PROGRAMS, label="program")
    count = draw(st.integers(2, 4), label="roots")
    untracked = draw(st.sets(st.sampled_from(range(count)), min_size=1, max_size=count - 1), label="untracked")
    return Roots(program, count, frozenset(untracked), draw(st.sampled_from(["backward", "grad"]), label="api"))


@rule(
    "accumulation.every-root-must-require-grad",
    section=Section.ACCUMULATION,
    docs="accumulation-roots",
    given=dict(roots=roots_with_untracked()),
    contracts=(UNTRACKED_ROOT,),
    examples=tuple(
        dict(roots=Roots(canonical(leaf(1.0, 2.0), "v0 = x0 * 3.0"), 2, frozenset({1}), api))
        for api in ("backward", "grad")
    ),
    references=("test_autograd.py::TestAutograd::test_multi_backward_no_grad",),
)
def every_root_must_require_grad(roots):
    """Among several roots of one backward or grad call, one that does not require grad raises a RuntimeError naming the first such root, and no .grad is written."""
    program = roots.program
    leaves = program.inputs()
    names = ["torch.zeros(())" if i in roots.untracked else "out.sum()" for i in range(roots.count)]
    call = (
        f"torch.autograd.backward([{', '.join(names)}])"
        if roots.api == "backward"
        else f"torch.autograd.grad([{', '.join(names)}], [{', '.join(program.leaf_names)}])"
    )

    def run(out):
        tensors_ = [torch.zeros(()) if i in roots.untracked else out.sum() for i in range(roots.count)]
        if roots.api == "backward":
            torch.autograd.backward(tensors_)
        else:
            torch.autograd.grad(tensors_, leaves)

    message = UNTRACKED_ROOT.check(lambda: program(*leaves), backward=run, repro=program.repro(call))
    first = min(roots.untracked)
    named = int(re.search(UNTRACKED_ROOT.pattern, message).group(1))
    expect(named == first, what="the root the message names", expected=first, observed=named, repro=program.repro(call))
    written = [f"x{i}" for i, leaf in enumerate(leaves) if leaf.grad is not None]
    expect(not written, what="leaves given a .grad by the failed call", expected=[], observed=written)


class GivenGradients(NamedTuple):
    """The program's output and copies of some leaves (``x.clone()``, whose gradient passes as is) as roots."""

    program: Program
    copied: tuple[int, ...]
    gradients: tuple[TensorSpec, ...]


@st.composite
def given_gradients(draw):
    program = draw(TRACKED_PROGRAMS, label="program")
    copied = tuple(draw(st.lists(st.sampled_from(range(len(program.leaves))), min_size=1, max_size=3), label="copied"))
    shapes_ = [tuple(program(*program.inputs()).shape), *(program.leaves[i].shape for i in copied)]
    gradients = tuple(
        draw(tensors(shape=shape, dtypes=(program.dtype,), requires_grad=False), label=f"g{k}")
        for k, shape in enumerate(shapes_)
    )
    return GivenGradients(program, copied, gradients)


@rule(
    "accumulation.given-gradients-are-not-modified",
    section=Section.ACCUMULATION,
    docs="accumulation-roots",
    given=dict(case=given_gradients()),
    examples=(
        dict(
            case=GivenGradients(
                canonical(leaf(1.0, 2.0), "v0 = x0 * x0"),
                (0, 0),
                tuple(leaf(a, b, requires_grad=False) for a, b in ((1.0, 1.0), (0.5, 2.0), (4.0, 8.0))),
            )
        ),
        # The output is a view of x0, so x0's gradient is a view of g0 (known bug given-gradient-becomes-grad).
        dict(
            case=GivenGradients(
                canonical(leaf(1.0, 2.0), "v0 = x0.view(2, 1)"),
                (),
                (leaf(1.0, 0.5, shape=(2, 1), requires_grad=False),),
            )
        ),
    ),
    references=("test_autograd.py::TestAutograd::test_input_buffer_accum",),
)
def given_gradients_are_not_modified(case):
    """The gradient tensors passed to backward keep their values, even where the engine adds other gradients to them on the way to a leaf and across repeated calls, and each leaf's .grad is the sum of what reached it."""
    program = case.program
    grads = [f"g{k}" for k in range(len(case.gradients))]
    roots = ["out", *(f"x{i}.clone()" for i in case.copied)]
    script = program.script(
        *(f"{name} = {spec.expression()}" for name, spec in zip(grads, case.gradients)),
        f"before = [{', '.join(f'{g}.clone()' for g in grads)}]",
        "for _ in range(2):",
        f"    out = {program.call}",
        f"    torch.autograd.backward([{', '.join(roots)}], [{', '.join(grads)}])",
        *program.print_grads,
    )
    seen = script.run()
    for name, before in zip(grads, seen.before):
        expect(
            torch.equal(seen[name], before),
            what=f"{name} after two backward calls that were given it",
            expected=before.tolist(),
            observed=seen[name].tolist(),
            repro=script,
        )
    leaves = program.inputs()
    through_program = finite_difference_gradients(program, leaves, program.grad_leaves, case.gradients[0].make())
    tolerance = FD_TOLERANCE if program.dtype == torch.float64 else DTYPE_TOLERANCE[torch.float32]
    for i, grad in zip(program.grad_leaves, through_program):
        expected = grad + sum(
            (spec.make() for k, spec in zip(case.copied, case.gradients[1:]) if k == i), torch.zeros_like(grad)
        )
        expect_close(
            seen[f"x{i}"].grad, 2 * expected, tolerance=tolerance, what=f"x{i}.grad after two calls", repro=script
        )
    record("given gradients after two calls", "unchanged")
