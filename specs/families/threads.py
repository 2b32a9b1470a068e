"""Threads and reentrant backward: backward from several Python threads, and backward inside backward."""

from __future__ import annotations

import re
import string

import torch
from hypothesis import strategies as st

from specs.engine.contracts import ErrorContract, Phase
from specs.engine.expect import Tolerance, expect, expect_close
from specs.engine.registry import Family, Feature, record, rule
from specs.engine.script import Script
from specs.engine.sections import Section
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
    lambda: (
        hasattr(torch.autograd, "set_multithreading_enabled") and hasattr(torch.autograd, "is_multithreading_enabled")
    ),
)

FREED_GRAPH = ErrorContract(RuntimeError, r"Specify retain_graph=True", Phase.SECOND_BACKWARD)

CANONICAL = program((leaf(0.5, -1.0, 2.0), leaf(1.5, 0.25, -0.75)), "v0 = torch.exp(x0)", "v1 = v0 * x1")


#: Repro lines defining run_threads(count, target): target(k) in count threads started together,
#: giving ("ok", what it returned), ("error", what it raised) or ("still running", None) for each.
RUN_THREADS = string.Template("""\
import importlib.util
import threading

# torch imports torch._dynamo lazily on first use; import it here, once, before threads race for it
# (seen in a torch 2.3.1 matrix run: "partially initialized module 'torch._dynamo' has no attribute
# 'trace_rules'", after which every later use of dynamo in that process failed)
if importlib.util.find_spec("torch._dynamo") is not None:
    import torch._dynamo


def run_threads(count, target):
    results = [("still running", None)] * count
    start = threading.Barrier(count)

    def body(k):
        try:
            start.wait($seconds)
            results[k] = ("ok", target(k))
        except Exception as error:
            results[k] = ("error", error)

    threads = [threading.Thread(target=body, args=(k,)) for k in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join($seconds)
    return results

""").substitute(seconds=JOIN_SECONDS)

#: Repro lines defining Reentrant: y = f(x), whose backward differentiates f again with a nested
#: torch.autograd.grad (via="grad") or backward (via="backward").
REENTRANT = """\
class Reentrant(torch.autograd.Function):
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

"""

#: Defines Nested: an identity whose backward runs a whole backward of a fresh Nested graph one
#: level shallower, and raises ChildFailure at the bottom when asked to.
NESTED = Script("""\
import torch


class ChildFailure(Exception):
    pass


class Nested(torch.autograd.Function):
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
                Nested.apply(inner, ctx.depth - 1, ctx.reached, ctx.fail).backward()
        elif ctx.fail:
            raise ChildFailure("raised at the bottom of the nested backward calls")
        return grad, None, None, None

""")

#: Repro lines defining Probe: an identity whose backward records torch.is_grad_enabled() and then
#: flips grad mode (a careless backward, whose change must not leak out).
PROBE = """\
class Probe(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, seen):
        ctx.seen = seen
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        ctx.seen.append(torch.is_grad_enabled())
        torch.set_grad_enabled(not torch.is_grad_enabled())
        return grad, None

"""


def _fresh_leaves(program):
    """Code for a new list of the program's leaves (new tensors, same values, layout and requires_grad)."""
    return "[" + ", ".join(spec.expression() for spec in program.leaves) + "]"


def _grad_list(program):
    return "[" + ", ".join(f"{program.leaf_names[i]}.grad" for i in program.grad_leaves) + "]"


@rule(
    "threads.independent-graphs-match-sequential",
    section=Section.PRACTICAL,
    docs="threads-independent",
    given=dict(program=programs(max_ops=5), count=THREAD_COUNTS),
    examples=(dict(program=CANONICAL, count=4),),
    references=(
        "test_autograd.py::TestMultithreadAutograd::test_simple_backward",
        "docs: Autograd mechanics > Multithreaded Autograd",
    ),
)
def independent_graphs_match_sequential(program, count):
    """Threads that each record and backward their own graph at the same time get the same gradients, bit for bit, as one thread doing it alone."""
    script = program.script(
        RUN_THREADS,
        "out.sum().backward()",
        f"sequential = {_grad_list(program)}",
        "",
        "",
        "def work(k):",
        f"    xs = {_fresh_leaves(program)}",
        "    program(*xs).sum().backward()",
        f"    return [xs[i].grad for i in {list(program.grad_leaves)}]",
        "",
        "",
        f"results = run_threads({count}, work)",
        "print(sequential)",
        "print(results)",
    )
    seen = script.run()
    for k, (status, value) in enumerate(seen.results):
        expect(
            status == "ok",
            what=f"thread {k} finished without error",
            expected="ok",
            observed=(status, value),
            repro=script,
        )
        for i, grad, alone in zip(program.grad_leaves, value, seen.sequential):
            expect_close(grad, alone, tolerance=SAME, what=f"x{i}.grad in thread {k}", repro=script)
    record("threads_ok", sum(status == "ok" for status, _ in seen.results))


@rule(
    "threads.shared-leaf-accumulates-every-thread",
    section=Section.PRACTICAL,
    docs="threads-shared",
    given=dict(program=programs(max_ops=5), count=THREAD_COUNTS),
    examples=(dict(program=CANONICAL, count=3),),
    references=(
        "test_autograd.py::TestMultithreadAutograd::test_simple_backward_same_input",
        "docs: Autograd mechanics > Multithreaded Autograd",
    ),
)
def shared_leaf_accumulates_every_thread(program, count):
    """When n threads each record their own graph from the same leaves and call backward, each leaf's .grad ends up as it does after n backward calls made one after another in one thread."""
    # Against n sequential passes, not n x one pass: how .grad sums across passes is the
    # accumulation family's rule (accumulation.leaves-own-their-grad, a known failure for aliased 0-d grads).
    sequential = program.inputs()
    for _ in range(count):
        program(*sequential).sum().backward()
    script = program.script(
        RUN_THREADS,
        f"results = run_threads({count}, lambda k: {program.call}.sum().backward())",
        "print(results)",
        *program.print_grads,
    )
    seen = script.run()
    expect(
        all(status == "ok" for status, _ in seen.results),
        what="every thread finished",
        expected="ok",
        observed=seen.results,
        repro=script,
    )
    for i in program.grad_leaves:
        expect_close(
            seen[f"x{i}"].grad,
            sequential[i].grad,
            tolerance=SUMMED[program.dtype],
            what=f"x{i}.grad after {count} threads, against {count} passes in one thread",
            repro=script,
        )
    record("x0_grad", [round(v, 6) for v in seen.x0.grad.flatten().tolist()])


@rule(
    "threads.concurrent-grad-leaves-dot-grad-alone",
    section=Section.PRACTICAL,
    docs="threads-shared",
    given=dict(program=programs(max_ops=5), count=THREAD_COUNTS),
    examples=(dict(program=CANONICAL, count=3),),
    references=(
        "test_autograd.py::TestMultithreadAutograd::test_simple_backward_same_input",
        "docs: Autograd mechanics > Multithreaded Autograd",
    ),
)
def concurrent_grad_leaves_dot_grad_alone(program, count):
    """Threads calling torch.autograd.grad(..., retain_graph=True) on one shared graph each get the full gradient, and no leaf's .grad is written."""
    wrt = ", ".join(program.leaf_names[i] for i in program.grad_leaves)
    script = program.script(
        RUN_THREADS,
        "loss = out.sum()",
        f"expected = torch.autograd.grad(loss, [{wrt}], retain_graph=True)",
        f"results = run_threads({count}, lambda k: torch.autograd.grad(loss, [{wrt}], retain_graph=True))",
        f"grads = [x.grad for x in [{', '.join(program.leaf_names)}]]",
        "print(expected)",
        "print(results)",
        "print(grads)",
    )
    seen = script.run()
    for k, (status, value) in enumerate(seen.results):
        expect(
            status == "ok",
            what=f"thread {k} finished without error",
            expected="ok",
            observed=(status, value),
            repro=script,
        )
        for i, grad, reference in zip(program.grad_leaves, value, seen.expected):
            expect_close(grad, reference, tolerance=SAME, what=f"gradient for x{i} in thread {k}", repro=script)
    expect(
        all(grad is None for grad in seen.grads),
        what=".grad of the leaves",
        expected="None",
        observed=seen.grads,
        repro=script,
    )
    record("grads_none", all(grad is None for grad in seen.grads))


@rule(
    "threads.freed-shared-graph-refuses-later-threads",
    section=Section.PRACTICAL,
    docs="threads-shared",
    given=dict(program=SMALL_PROGRAMS, count=THREAD_COUNTS),
    contracts=(FREED_GRAPH,),
    examples=(dict(program=CANONICAL, count=2),),
    references=(
        "test_autograd.py::TestMultithreadAutograd::test_python_thread_in_middle",
        "docs: Autograd mechanics > Multithreaded Autograd",
    ),
)
def freed_shared_graph_refuses_later_threads(program, count):
    """When threads take turns calling backward without retain_graph on one shared graph that saves tensors, the first frees it and every later thread's backward raises a RuntimeError asking for retain_graph=True."""
    script = program.script(
        RUN_THREADS,
        "loss = torch.tanh(out).sum()  # tanh saves its result",
        "outcomes = []",
        f"for _ in range({count}):",
        "    outcomes += run_threads(1, lambda k: loss.backward())",
        "print(outcomes)",
    )
    outcomes = script.run().outcomes
    expect(
        outcomes[0][0] == "ok", what="the first thread's backward", expected="ok", observed=outcomes[0], repro=script
    )
    for k, (status, value) in enumerate(outcomes[1:], start=1):
        expect(
            status == "error"
            and isinstance(value, FREED_GRAPH.exception)
            and re.search(FREED_GRAPH.pattern, str(value)) is not None,
            what=f"thread {k}'s backward",
            expected=FREED_GRAPH.describe(),
            observed=(status, value),
            repro=script,
        )
    record("refused", count - 1)


@rule(
    "threads.reentrant-backward-gives-the-gradient",
    section=Section.CUSTOM,
    docs="threads-reentrant",
    given=dict(program=programs(max_ops=5), via=st.sampled_from(["grad", "backward"])),
    examples=(dict(program=CANONICAL, via="grad"), dict(program=CANONICAL, via="backward")),
    references=(
        "test_autograd.py::TestAutograd::test_simple_reentrant",
        "test_autograd.py::TestAutograd::test_reentrant_priority",
    ),
)
def reentrant_backward_gives_the_gradient(program, via):
    """A custom Function whose backward runs torch.autograd.grad or backward on a graph of its own (reentrant backward) gives the same gradient as differentiating that graph directly."""
    rest = ", ".join(f"{name}.detach()" for name in program.leaf_names[1:])
    script = program.script(
        REENTRANT,
        f"rest = [{rest}]",
        f"Reentrant.apply(x0, lambda t: program(t, *rest), {via!r}).sum().backward()",
        f"direct = {program.leaves[0].expression()}",
        "program(direct, *rest).sum().backward()",
        "print(x0.grad)",
        "print(direct.grad)",
    )
    seen = script.run()
    expect_close(
        seen.x0.grad, seen.direct.grad, tolerance=SAME, what=f"x0.grad through a reentrant {via}", repro=script
    )
    record("x0_grad", [round(v, 6) for v in seen.x0.grad.flatten().tolist()])


@rule(
    "threads.reentrant-backward-nests",
    section=Section.CUSTOM,
    docs="threads-reentrant",
    given=dict(depth=st.integers(1, 40)),
    examples=(dict(depth=300),),
    references=(
        "test_autograd.py::TestAutograd::test_deep_reentrant",
        "test_autograd.py::TestAutograd::test_simple_reentrant",
    ),
)
def reentrant_backward_nests(depth):
    """A backward that starts a backward inside its own backward, depth levels deep, completes and runs every level once."""
    script = NESTED.then(
        "reached = []\nx = torch.zeros((), requires_grad=True)\n"
        "Nested.apply(x, $depth, reached, False).backward()\n"
        "print(len(reached), reached[:3], reached[-3:], x.grad)",
        depth=depth,
    )
    seen = script.run()
    reached, x = seen.reached, seen.x
    expect(
        reached == list(range(depth, -1, -1)),
        what="levels run, outermost first",
        expected=f"{depth} .. 0",
        observed=reached[:5] + ["..."] + reached[-3:] if len(reached) > 8 else reached,
        repro=script,
    )
    expect(
        x.grad is not None and x.grad.item() == 1.0,
        what="x.grad of the identity",
        expected=1.0,
        observed=x.grad,
        repro=script,
    )
    record("levels", len(reached))


@rule(
    "threads.nested-backward-error-reaches-the-caller",
    section=Section.CUSTOM,
    docs="threads-reentrant",
    given=dict(depth=st.integers(1, 10)),
    examples=(dict(depth=3),),
    references=("test_autograd.py::TestAutograd::test_reentrant_child_error",),
)
def nested_backward_error_reaches_the_caller(depth):
    """An exception raised inside a backward nested depth levels deep comes out of the outermost backward call with its own type, and the outermost leaf receives no gradient."""
    script = NESTED.then(
        "reached = []\nx = torch.zeros((), requires_grad=True)\nerror = None\ntry:\n"
        "    Nested.apply(x, $depth, reached, True).backward()\n"
        "except ChildFailure as caught:\n    error = caught\n"
        "print(repr(error), len(reached), x.grad)",
        depth=depth,
    )
    seen = script.run()
    expect(
        seen.error is not None,
        what=f"the ChildFailure raised {depth} levels down came out",
        expected="ChildFailure",
        observed="no error",
        repro=script,
    )
    expect(
        len(seen.reached) == depth + 1,
        what="levels run before the failure",
        expected=depth + 1,
        observed=len(seen.reached),
        repro=script,
    )
    expect(
        seen.x.grad is None, what="x.grad after the failed backward", expected=None, observed=seen.x.grad, repro=script
    )
    record("outer_grad", None if seen.x.grad is None else seen.x.grad.item())


@rule(
    "threads.backward-inside-a-hook",
    section=Section.PRACTICAL,
    docs="threads-reentrant",
    given=dict(program=programs(max_ops=5), data=st.data()),
    examples=(dict(program=CANONICAL, data=None),),
    references=("test_autograd.py::TestAutograd::test_reentrant_with_leaf_variable_hook",),
)
def backward_inside_a_hook(program, data):
    """A tensor hook may itself record a graph under enable_grad and call backward on it: both the outer graph's leaves and the inner graph's leaves get their usual gradients."""
    values = program.trace(*program.inputs())
    names = [s.out for s in program.steps if values[s.out].requires_grad]
    name = "v0" if data is None else data.draw(st.sampled_from(names), label="hooked value")
    reference = program.inputs()
    program(*reference).sum().backward()
    # The steps run inline (so the hooked value has a name); the hook calls the same program as a function.
    script = program.script(
        program.source(),
        f"other = {_fresh_leaves(program)}",
        "",
        "",
        "def hook(grad):",
        "    with torch.enable_grad():  # hooks run with grad mode off, so a graph must be recorded under enable_grad",
        "        program(*other).sum().backward()",
        "",
        "",
        f"{name}.register_hook(hook)",
        "out.sum().backward()",
        *program.print_grads,
        "print([x.grad for x in other])",
        inline=True,
    )
    seen = script.run()
    for i in program.grad_leaves:
        expect_close(seen[f"x{i}"].grad, reference[i].grad, tolerance=SAME, what=f"outer x{i}.grad", repro=script)
        expect_close(
            seen.other[i].grad,
            reference[i].grad,
            tolerance=SAME,
            what=f"x{i}.grad of the graph the hook walked",
            repro=script,
        )
    record("x0_grad", [round(v, 6) for v in seen.x0.grad.flatten().tolist()])


@rule(
    "threads.backward-sets-grad-mode-for-its-nodes",
    section=Section.CUSTOM,
    docs="threads-grad-mode",
    given=dict(program=SMALL_PROGRAMS, create_graph=st.booleans(), caller=st.booleans()),
    examples=(dict(program=CANONICAL, create_graph=False, caller=True),),
    references=(
        "test_autograd.py::TestAutograd::test_grad_mode_restored_reentrant",
        "docs: Autograd mechanics > Grad mode and backward",
    ),
)
def backward_sets_grad_mode_for_its_nodes(program, create_graph, caller):
    """Inside a backward function grad mode is on exactly when create_graph=True, whatever the caller's mode, and a backward function that changes grad mode does not change the caller's."""
    script = program.script(
        PROBE,
        "seen = []",
        "y = Probe.apply(out, seen).sum()",
        f"with torch.set_grad_enabled({caller}):",
        f"    torch.autograd.grad(y, x0, create_graph={create_graph})",
        "    after = torch.is_grad_enabled()",
        "print(seen, after)",
    )
    seen = script.run()
    expect(
        seen.seen == [create_graph],
        what="grad mode inside the backward function",
        expected=[create_graph],
        observed=seen.seen,
        repro=script,
    )
    expect(
        seen.after == caller,
        what="the caller's grad mode after backward",
        expected=caller,
        observed=seen.after,
        repro=script,
    )
    record("inside", seen.seen)


@rule(
    "threads.multithreading-switch-is-thread-local",
    section=Section.PRACTICAL,
    docs="threads-independent",
    requires=(MULTITHREADING_SWITCH,),
    given=dict(program=programs(max_ops=5)),
    examples=(dict(program=CANONICAL),),
    references=(
        "test_autograd.py::TestMultithreadAutograd::test_set_multithreading_enabled_as_context_manager_and_function",
        "docs: torch.autograd.set_multithreading_enabled",
    ),
)
def multithreading_switch_is_thread_local(program):
    """torch.autograd.set_multithreading_enabled(False) used as a context manager turns the engine's worker threads off for the calling thread only, backward still gives the same gradients, and the previous setting returns on exit."""
    reference = program.inputs()
    program(*reference).sum().backward()
    script = program.script(
        RUN_THREADS,
        "with torch.autograd.set_multithreading_enabled(False):",
        "    inside = torch.autograd.is_multithreading_enabled()",
        "    elsewhere = run_threads(1, lambda k: torch.autograd.is_multithreading_enabled())[0]",
        "    out.sum().backward()",
        "after = torch.autograd.is_multithreading_enabled()",
        "print(inside, elsewhere, after)",
        *program.print_grads,
    )
    seen = script.run()
    observed = (seen.inside, seen.elsewhere, seen.after)
    expect(
        observed == (False, ("ok", True), True),
        what="(setting inside, in another thread, after exit)",
        expected=(False, ("ok", True), True),
        observed=observed,
        repro=script,
    )
    for i in program.grad_leaves:
        expect_close(
            seen[f"x{i}"].grad,
            reference[i].grad,
            tolerance=SAME,
            what=f"x{i}.grad with multithreading off",
            repro=script,
        )
    record("settings", [seen.inside, seen.elsewhere[1], seen.after])
