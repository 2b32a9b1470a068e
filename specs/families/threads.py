"""Threads and reentrant backward: backward from several Python threads, and backward inside backward."""
from __future__ import annotations

import re
import threading

import torch
from hypothesis import strategies as st

from specs.engine.contracts import ErrorContract, Phase
from specs.engine.expect import Tolerance, expect, expect_close
from specs.engine.sections import Section
from specs.engine.registry import Family, Feature, record, rule
from specs.families._canonical import leaf, program
from specs.generators.strategies import programs

FAMILY = Family(
    name="threads",
    title="Threads and reentrant backward",
    summary="Backward called from several Python threads, on separate or shared graphs, and backward "
            "called from inside a backward (a custom Function's backward or a hook).",
    gallery="plot_98_threads.py",
)


SAME = Tolerance(0.0, 0.0, "the same formulas on the same values, on the CPU")
#: The same n gradients added in another order differ by roundoff.
SUMMED = {
    torch.float32: Tolerance(1e-5, 1e-6, "float32: n additions, in whatever order the threads finish"),
    torch.float64: Tolerance(1e-12, 1e-13, "float64: n additions, in whatever order the threads finish"),
}
#: Every thread a rule starts must end well within this many seconds.
JOIN_SECONDS = 30
THREAD_COUNTS = st.integers(2, 4)

#: Programs for rules where the program only supplies a graph to act on: small ones are enough.
SMALL_PROGRAMS = programs(max_leaves=1, max_ops=3)

MULTITHREADING_SWITCH = Feature(
    "torch.autograd.set_multithreading_enabled",
    lambda: hasattr(torch.autograd, "set_multithreading_enabled") and hasattr(torch.autograd, "is_multithreading_enabled"))

FREED_GRAPH = ErrorContract(RuntimeError, r"Specify retain_graph=True", Phase.SECOND_BACKWARD)

CANONICAL = program((leaf(0.5, -1.0, 2.0), leaf(1.5, 0.25, -0.75)), "v0 = torch.exp(x0)", "v1 = v0 * x1")


class ChildFailure(Exception):
    """Raised inside a nested backward, to see it reach the outer caller."""


def _run_threads(count, target):
    """Run ``target(k)`` in ``count`` threads started together; return what each returned or raised."""
    results: list = [None] * count
    start = threading.Barrier(count)

    def body(k):
        start.wait(JOIN_SECONDS)
        try:
            results[k] = ("ok", target(k))
        except Exception as error:  # noqa: BLE001 - reported to the rule, which decides
            results[k] = ("error", error)

    threads = [threading.Thread(target=body, args=(k,)) for k in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_SECONDS)
    alive = [k for k, thread in enumerate(threads) if thread.is_alive()]
    expect(not alive, what=f"threads finished within {JOIN_SECONDS} s", expected="all", observed=f"still running: {alive}")
    return results


def _grads(program, leaves):
    return [leaves[i].grad for i in program.grad_leaves]


@rule("threads.independent-graphs-match-sequential", section=Section.PRACTICAL, docs="threads-independent",
      given=dict(program=programs(max_ops=5), count=THREAD_COUNTS), examples=(dict(program=CANONICAL, count=4),),
      references=("test_autograd.py::TestMultithreadAutograd::test_simple_backward",
                  "docs: Autograd mechanics > Multithreaded Autograd"))
def independent_graphs_match_sequential(program, count):
    """Threads that each record and backward their own graph at the same time get the same gradients, bit for bit, as one thread doing it alone."""
    sequential = program.inputs()
    program(*sequential).sum().backward()

    def work(k):
        leaves = program.inputs()
        program(*leaves).sum().backward()
        return _grads(program, leaves)

    results = _run_threads(count, work)
    repro = program.repro(f"# {count} threads, each: xs = fresh leaves; program(*xs).sum().backward()")
    for k, (status, value) in enumerate(results):
        expect(status == "ok", what=f"thread {k} finished without error", expected="ok", observed=value, repro=repro)
        for i, grad in zip(program.grad_leaves, value):
            expect_close(grad, sequential[i].grad, tolerance=SAME, what=f"x{i}.grad in thread {k}", repro=repro)
    record("threads_ok", sum(status == "ok" for status, _ in results))


@rule("threads.shared-leaf-accumulates-every-thread", section=Section.PRACTICAL, docs="threads-shared",
      given=dict(program=programs(max_ops=5), count=THREAD_COUNTS), examples=(dict(program=CANONICAL, count=3),),
      references=("test_autograd.py::TestMultithreadAutograd::test_simple_backward_same_input",
                  "docs: Autograd mechanics > Multithreaded Autograd"))
def shared_leaf_accumulates_every_thread(program, count):
    """When n threads each record their own graph from the same leaves and call backward, each leaf's .grad ends up as it does after n backward calls made one after another in one thread."""
    # Against n sequential passes, not n x one pass: how .grad sums across passes is the
    # accumulation family's rule (accumulation.leaves-own-their-grad, a known failure for aliased 0-d grads).
    sequential = program.inputs()
    for _ in range(count):
        program(*sequential).sum().backward()
    leaves = program.inputs()
    results = _run_threads(count, lambda k: program(*leaves).sum().backward())
    repro = program.repro(f"# {count} threads, each: program(x0, ...).sum().backward() on the same x0, ...")
    expect(all(status == "ok" for status, _ in results), what="every thread finished", expected="ok", observed=results, repro=repro)
    for i in program.grad_leaves:
        expect_close(leaves[i].grad, sequential[i].grad, tolerance=SUMMED[program.dtype],
                     what=f"x{i}.grad after {count} threads, against {count} passes in one thread", repro=repro)
    record("x0_grad", [round(v, 6) for v in leaves[0].grad.flatten().tolist()])


@rule("threads.concurrent-grad-leaves-dot-grad-alone", section=Section.PRACTICAL, docs="threads-shared",
      given=dict(program=programs(max_ops=5), count=THREAD_COUNTS), examples=(dict(program=CANONICAL, count=3),),
      references=("test_autograd.py::TestMultithreadAutograd::test_simple_backward_same_input",
                  "docs: Autograd mechanics > Multithreaded Autograd"))
def concurrent_grad_leaves_dot_grad_alone(program, count):
    """Threads calling torch.autograd.grad(..., retain_graph=True) on one shared graph each get the full gradient, and no leaf's .grad is written."""
    leaves = program.inputs()
    out = program(*leaves).sum()
    wrt = [leaves[i] for i in program.grad_leaves]
    expected = torch.autograd.grad(out, wrt, retain_graph=True)
    results = _run_threads(count, lambda k: torch.autograd.grad(out, wrt, retain_graph=True))
    repro = program.repro(f"# {count} threads, each: torch.autograd.grad(out.sum(), [x0, ...], retain_graph=True)")
    for k, (status, value) in enumerate(results):
        expect(status == "ok", what=f"thread {k} finished without error", expected="ok", observed=value, repro=repro)
        for i, grad, reference in zip(program.grad_leaves, value, expected):
            expect_close(grad, reference, tolerance=SAME, what=f"gradient for x{i} in thread {k}", repro=repro)
    expect(all(x.grad is None for x in leaves), what=".grad of the leaves", expected="None", observed=[x.grad for x in leaves], repro=repro)
    record("grads_none", all(x.grad is None for x in leaves))


@rule("threads.freed-shared-graph-refuses-later-threads", section=Section.PRACTICAL, docs="threads-shared",
      given=dict(program=SMALL_PROGRAMS, count=THREAD_COUNTS), contracts=(FREED_GRAPH,),
      examples=(dict(program=CANONICAL, count=2),),
      references=("test_autograd.py::TestMultithreadAutograd::test_python_thread_in_middle",
                  "docs: Autograd mechanics > Multithreaded Autograd"))
def freed_shared_graph_refuses_later_threads(program, count):
    """When threads take turns calling backward without retain_graph on one shared graph that saves tensors, the first frees it and every later thread's backward raises a RuntimeError asking for retain_graph=True."""
    leaves = program.inputs()
    loss = torch.tanh(program(*leaves)).sum()  # tanh saves its result
    outcomes = []
    for _ in range(count):
        outcomes += _run_threads(1, lambda k: loss.backward())
    repro = program.repro("loss = torch.tanh(out).sum()",
                          f"# {count} threads, one after another, each: loss.backward()")
    expect(outcomes[0][0] == "ok", what="the first thread's backward", expected="ok", observed=outcomes[0][1], repro=repro)
    for k, (status, value) in enumerate(outcomes[1:], start=1):
        expect(status == "error" and isinstance(value, FREED_GRAPH.exception)
               and re.search(FREED_GRAPH.pattern, str(value)) is not None,
               what=f"thread {k}'s backward", expected=FREED_GRAPH.describe(), observed=value, repro=repro)
    record("refused", count - 1)


class _Reentrant(torch.autograd.Function):
    """y = f(x), where backward differentiates f again with a nested autograd call."""

    @staticmethod
    def forward(ctx, x, f, via):
        ctx.save_for_backward(x)
        ctx.f, ctx.via = f, via
        with torch.no_grad():
            return f(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        with torch.enable_grad():
            inner = x.detach().requires_grad_()
            out = ctx.f(inner)
            if ctx.via == "grad":
                (gx,) = torch.autograd.grad(out, inner, grad)
            else:
                out.backward(grad)
                gx = inner.grad
        return gx, None, None


@rule("threads.reentrant-backward-gives-the-gradient", section=Section.CUSTOM, docs="threads-reentrant",
      given=dict(program=programs(max_ops=5), via=st.sampled_from(["grad", "backward"])),
      examples=(dict(program=CANONICAL, via="grad"), dict(program=CANONICAL, via="backward")),
      references=("test_autograd.py::TestAutograd::test_simple_reentrant",
                  "test_autograd.py::TestAutograd::test_reentrant_priority"))
def reentrant_backward_gives_the_gradient(program, via):
    """A custom Function whose backward runs torch.autograd.grad or backward on a graph of its own (reentrant backward) gives the same gradient as differentiating that graph directly."""
    rest = [x.detach() for x in program.inputs()[1:]]
    x0 = program.inputs()[0]
    _Reentrant.apply(x0, lambda t: program(t, *rest), via).sum().backward()
    direct = program.inputs()[0]
    program(direct, *rest).sum().backward()
    repro = program.repro(f"# a Function whose backward calls torch.autograd.{via} on program(x0, ...) again",
                          "Reentrant.apply(x0).sum().backward()")
    expect_close(x0.grad, direct.grad, tolerance=SAME, what=f"x0.grad through a reentrant {via}", repro=repro)
    record("x0_grad", [round(v, 6) for v in x0.grad.flatten().tolist()])


class _Nested(torch.autograd.Function):
    """Identity whose backward runs a whole backward of a fresh ``_Nested`` graph one level shallower."""

    @staticmethod
    def forward(ctx, x, depth, reached, fail):
        ctx.depth, ctx.reached, ctx.fail = depth, reached, fail
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        ctx.reached.append(ctx.depth)
        if ctx.depth > 0:
            with torch.enable_grad():
                inner = torch.zeros((), requires_grad=True)
                _Nested.apply(inner, ctx.depth - 1, ctx.reached, ctx.fail).backward()
        elif ctx.fail:
            raise ChildFailure("raised at the bottom of the nested backward calls")
        return grad, None, None, None


@rule("threads.reentrant-backward-nests", section=Section.CUSTOM, docs="threads-reentrant",
      given=dict(depth=st.integers(1, 40)), examples=(dict(depth=300),),
      references=("test_autograd.py::TestAutograd::test_deep_reentrant",
                  "test_autograd.py::TestAutograd::test_simple_reentrant"))
def reentrant_backward_nests(depth):
    """A backward that starts a backward inside its own backward, depth levels deep, completes and runs every level once."""
    reached = []
    x = torch.zeros((), requires_grad=True)
    _Nested.apply(x, depth, reached, False).backward()
    expect(reached == list(range(depth, -1, -1)), what="levels run, outermost first", expected=f"{depth} .. 0",
           observed=reached[:5] + ["..."] + reached[-3:] if len(reached) > 8 else reached,
           repro=f"# a Function whose backward calls backward on a fresh copy of itself, {depth} levels deep")
    expect(x.grad is not None and x.grad.item() == 1.0, what="x.grad of the identity", expected=1.0, observed=x.grad)
    record("levels", len(reached))


@rule("threads.nested-backward-error-reaches-the-caller", section=Section.CUSTOM, docs="threads-reentrant",
      given=dict(depth=st.integers(1, 10)), examples=(dict(depth=3),),
      references=("test_autograd.py::TestAutograd::test_reentrant_child_error",))
def nested_backward_error_reaches_the_caller(depth):
    """An exception raised inside a backward nested depth levels deep comes out of the outermost backward call with its own type, and the outermost leaf receives no gradient."""
    reached = []
    x = torch.zeros((), requires_grad=True)
    repro = f"# a Function whose backward nests {depth} backward calls; the innermost raises ChildFailure"
    try:
        _Nested.apply(x, depth, reached, True).backward()
    except ChildFailure:
        pass
    else:
        raise AssertionError(f"the ChildFailure raised {depth} levels down did not come out\n{repro}")
    expect(len(reached) == depth + 1, what="levels run before the failure", expected=depth + 1, observed=len(reached), repro=repro)
    expect(x.grad is None, what="x.grad after the failed backward", expected=None, observed=x.grad, repro=repro)
    record("outer_grad", None if x.grad is None else x.grad.item())


@rule("threads.backward-inside-a-hook", section=Section.PRACTICAL, docs="threads-reentrant",
      given=dict(program=programs(max_ops=5), data=st.data()), examples=(dict(program=CANONICAL, data=None),),
      references=("test_autograd.py::TestAutograd::test_reentrant_with_leaf_variable_hook",))
def backward_inside_a_hook(program, data):
    """A tensor hook may itself record a graph under enable_grad and call backward on it: both the outer graph's leaves and the inner graph's leaves get their usual gradients."""
    leaves = program.inputs()
    values = program.trace(*leaves)
    names = [s.out for s in program.steps if values[s.out].requires_grad]
    name = "v0" if data is None else data.draw(st.sampled_from(names), label="hooked value")
    other = program.inputs()

    def hook(grad):
        with torch.enable_grad():  # hooks run with grad mode off, so a graph must be recorded under enable_grad
            program(*other).sum().backward()

    values[name].register_hook(hook)
    values[program.output].sum().backward()
    reference = program.inputs()
    program(*reference).sum().backward()
    repro = program.repro(f"# {name}.register_hook(h), h: with torch.enable_grad(): program(*fresh).sum().backward()",
                          "out.sum().backward()")
    for i in program.grad_leaves:
        expect_close(leaves[i].grad, reference[i].grad, tolerance=SAME, what=f"outer x{i}.grad", repro=repro)
        expect_close(other[i].grad, reference[i].grad, tolerance=SAME, what=f"x{i}.grad of the graph the hook walked", repro=repro)
    record("x0_grad", [round(v, 6) for v in leaves[0].grad.flatten().tolist()])


class _GradModeProbe(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, seen):
        ctx.seen = seen
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        ctx.seen.append(torch.is_grad_enabled())
        torch.set_grad_enabled(not torch.is_grad_enabled())  # a careless backward: must not leak out
        return grad, None


@rule("threads.backward-sets-grad-mode-for-its-nodes", section=Section.CUSTOM, docs="threads-grad-mode",
      given=dict(program=SMALL_PROGRAMS, create_graph=st.booleans(), caller=st.booleans()),
      examples=(dict(program=CANONICAL, create_graph=False, caller=True),),
      references=("test_autograd.py::TestAutograd::test_grad_mode_restored_reentrant",
                  "docs: Autograd mechanics > Grad mode and backward"))
def backward_sets_grad_mode_for_its_nodes(program, create_graph, caller):
    """Inside a backward function grad mode is on exactly when create_graph=True, whatever the caller's mode, and a backward function that changes grad mode does not change the caller's."""
    seen = []
    x0 = program.inputs()[0]
    y = _GradModeProbe.apply(program(x0, *program.inputs()[1:]), seen).sum()
    with torch.set_grad_enabled(caller):
        torch.autograd.grad(y, x0, create_graph=create_graph)
        after = torch.is_grad_enabled()
    repro = program.repro("# a Function whose backward records torch.is_grad_enabled() and flips it",
                          f"with torch.set_grad_enabled({caller}):",
                          f"    torch.autograd.grad(Probe.apply(out).sum(), x0, create_graph={create_graph})")
    expect(seen == [create_graph], what="grad mode inside the backward function", expected=[create_graph], observed=seen, repro=repro)
    expect(after == caller, what="the caller's grad mode after backward", expected=caller, observed=after, repro=repro)
    record("inside", seen)


@rule("threads.multithreading-switch-is-thread-local", section=Section.PRACTICAL, docs="threads-independent",
      requires=(MULTITHREADING_SWITCH,), given=dict(program=programs(max_ops=5)), examples=(dict(program=CANONICAL),),
      references=("test_autograd.py::TestMultithreadAutograd::test_set_multithreading_enabled_as_context_manager_and_function",
                  "docs: torch.autograd.set_multithreading_enabled"))
def multithreading_switch_is_thread_local(program):
    """torch.autograd.set_multithreading_enabled(False) used as a context manager turns the engine's worker threads off for the calling thread only, backward still gives the same gradients, and the previous setting returns on exit."""
    reference = program.inputs()
    program(*reference).sum().backward()
    leaves = program.inputs()
    with torch.autograd.set_multithreading_enabled(False):
        inside = torch.autograd.is_multithreading_enabled()
        elsewhere = _run_threads(1, lambda k: torch.autograd.is_multithreading_enabled())[0]
        program(*leaves).sum().backward()
    after = torch.autograd.is_multithreading_enabled()
    repro = program.repro("with torch.autograd.set_multithreading_enabled(False):", "    out.sum().backward()")
    expect((inside, elsewhere, after) == (False, ("ok", True), True),
           what="(setting inside, in another thread, after exit)", expected=(False, ("ok", True), True),
           observed=(inside, elsewhere, after), repro=repro)
    for i in program.grad_leaves:
        expect_close(leaves[i].grad, reference[i].grad, tolerance=SAME, what=f"x{i}.grad with multithreading off", repro=repro)
    record("settings", [inside, elsewhere[1], after])
