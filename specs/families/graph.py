"""torch.autograd.graph: gradient edges, Node introspection, version counters and graph-wide hooks."""

from __future__ import annotations

import inspect

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
    name="graph",
    title="The graph API",
    summary="torch.autograd.graph: gradient edges, Nodes and their metadata, version counters, "
    "mutation of saved tensors, and hooks over several tensors.",
    gallery="plot_84_graph.py",
)


SAME = Tolerance(0.0, 0.0, "the same backward formulas on the same values")
#: Scaling by a power of two is exact, so c * g is compared bit for bit.
SCALES = st.sampled_from([2.0, 0.5, -4.0])

#: Programs for rules where the program only supplies a graph to act on: small ones are enough.
SMALL_PROGRAMS = programs(max_leaves=1, max_ops=3)

GRADIENT_EDGE = Feature(
    "torch.autograd.graph.get_gradient_edge", lambda: hasattr(torch.autograd.graph, "get_gradient_edge")
)
MATERIALIZE_GRADS = Feature(
    "torch.autograd.grad(materialize_grads=...)",
    lambda: "materialize_grads" in inspect.signature(torch.autograd.grad).parameters,
)
NODE_METADATA = Feature(
    "torch.autograd.graph.Node.metadata", lambda: hasattr(getattr(torch.autograd.graph, "Node", None), "metadata")
)
NODE_CLASS = Feature("torch.autograd.graph.Node", lambda: hasattr(torch.autograd.graph, "Node"))
NODE_PREHOOK = Feature(
    "Node.register_prehook", lambda: hasattr(getattr(torch.autograd.graph, "Node", None), "register_prehook")
)
INCREMENT_VERSION = Feature(
    "torch.autograd.graph.increment_version", lambda: hasattr(torch.autograd.graph, "increment_version")
)
ALLOW_MUTATION = Feature(
    "torch.autograd.graph.allow_mutation_on_saved_tensors",
    lambda: hasattr(torch.autograd.graph, "allow_mutation_on_saved_tensors"),
)
DISABLE_HOOKS = Feature(
    "torch.autograd.graph.disable_saved_tensors_hooks",
    lambda: hasattr(torch.autograd.graph, "disable_saved_tensors_hooks"),
)
MULTI_GRAD_HOOK = Feature(
    "torch.autograd.graph.register_multi_grad_hook", lambda: hasattr(torch.autograd.graph, "register_multi_grad_hook")
)
MULTI_GRAD_MODE = Feature(
    "register_multi_grad_hook(mode=...)",
    lambda: (
        hasattr(torch.autograd.graph, "register_multi_grad_hook")
        and "mode" in inspect.signature(torch.autograd.graph.register_multi_grad_hook).parameters
    ),
)

UNREACHED_EDGE = ErrorContract(
    RuntimeError, r"materialize_grads cannot be used when the given input is a GradientEdge", Phase.BACKWARD
)
HOOK_ARITY = ErrorContract(
    RuntimeError, r"hook '.*' has returned an incorrect number of values \(got \d+, but expected \d+\)", Phase.BACKWARD
)
VERSION_MISMATCH = ErrorContract(
    RuntimeError,
    r"one of the variables needed for gradient computation has been modified by an inplace "
    r"operation: .* is at version \d+; expected version \d+ instead",
    Phase.BACKWARD,
)
OUTSIDE_MUTATION_CONTEXT = ErrorContract(
    AssertionError, r"Trying to backward outside of the 'allow_mutation_on_saved_tensors' context", Phase.BACKWARD
)
NESTED_MUTATION_CONTEXT = ErrorContract(
    RuntimeError, r"allow_mutation_on_saved_tensors contexts cannot be nested", Phase.RECORD
)
HOOKS_DISABLED = ErrorContract(
    RuntimeError,
    r".+",
    Phase.RECORD,
    wording="the message given to disable_saved_tensors_hooks, verbatim (checked for equality)",
)
BAD_MODE = ErrorContract(ValueError, r"Expects mode to be one of \('all', 'any'\)", Phase.RECORD)

#: x0 -> exp -> mul by x1 -> sum: an edge into a node with two inputs, one a leaf.
CANONICAL = program(
    (leaf(0.5, -1.0, 2.0), leaf(1.5, 0.25, -0.75)), "v0 = torch.exp(x0)", "v1 = v0 * x1", "v2 = v1.sum()"
)


#: Repro lines collecting, for each leaf, the AccumulateGrad objects reached from out.grad_fn (by id).
WALK_TO_LEAVES = """\
found, seen, stack = {}, {}, [out.grad_fn]
while stack:
    node = stack.pop()
    if node is None or id(node) in seen:
        continue
    seen[id(node)] = node  # kept alive: an id names one object only while that object lives
    for next_node, _ in node.next_functions:
        if next_node is not None and hasattr(next_node, "variable"):
            found.setdefault(id(next_node.variable), {})[id(next_node)] = next_node
        stack.append(next_node)"""


def _value(program, data):
    return data.draw(st.sampled_from(list(program.leaf_names[:1]) + [s.out for s in program.steps]), label="value")


@rule(
    "graph.gradient-edge-stands-for-its-tensor",
    section=Section.BEYOND,
    docs="graph-gradient-edge",
    since="2.2",
    requires=(GRADIENT_EDGE,),
    given=dict(program=programs(max_ops=5, all_require_grad=True), data=st.data()),
    examples=(dict(program=CANONICAL, data=None),),
    references=(
        "test_autograd.py::TestAutograd::test_grad_to_node",
        "test_autograd.py::TestAutograd::test_grad_to_node_set",
        "docs: torch.autograd.graph.get_gradient_edge",
    ),
)
def gradient_edge_stands_for_its_tensor(program, data):
    """torch.autograd.grad with inputs=get_gradient_edge(t) returns the same gradient as with inputs=t, for a leaf (whose edge points to its AccumulateGrad node) and for an intermediate alike."""
    name = "v0" if data is None else _value(program, data)
    script = program.script(
        f"t = {name}",
        "edge = torch.autograd.graph.get_gradient_edge(t)",
        "by_edge, by_tensor = torch.autograd.grad(out.sum(), [edge, t])",
        "print(by_edge, by_tensor, type(edge.node).__name__)",
        inline=True,
    )
    seen = script.run()
    expect_close(
        seen.by_edge,
        seen.by_tensor,
        tolerance=SAME,
        what=f"the gradient with respect to the edge of {name}",
        repro=script,
    )
    expected_node = "AccumulateGrad" if seen.t.grad_fn is None else type(seen.t.grad_fn).__name__
    expect(
        type(seen.edge.node).__name__ == expected_node,
        what="the node the edge points to",
        expected=expected_node,
        observed=type(seen.edge.node).__name__,
        repro=script,
    )
    record("edge_node", type(seen.edge.node).__name__)
    record("output_nr", seen.edge.output_nr)


@rule(
    "graph.gradient-edge-keeps-the-old-value",
    section=Section.INPLACE,
    docs="graph-gradient-edge",
    since="2.2",
    requires=(GRADIENT_EDGE,),
    given=dict(program=programs(max_ops=5), c=SCALES),
    examples=(dict(program=CANONICAL, c=2.0),),
    references=("test_autograd.py::TestAutograd::test_grad_to_node_inplace",),
)
def gradient_edge_keeps_the_old_value(program, c):
    """An edge taken with get_gradient_edge(a) before an in-place a.mul_(c) still names the old value: the gradient through it is c times the gradient with respect to the new a."""
    script = program.script(
        "a = out.clone()",
        "edge = torch.autograd.graph.get_gradient_edge(a)",
        f"a.mul_({c})",
        "old, new = torch.autograd.grad(torch.sin(a).sum(), [edge, a])",
        "print(old, new)",
    )
    seen = script.run()
    old, new = seen.old, seen.new
    expect_close(
        new, torch.cos(seen.a.detach()), tolerance=SAME, what="the gradient with respect to the new a", repro=script
    )
    expect_close(
        old, c * new, tolerance=SAME, what=f"the gradient through the old edge, against {c} * the new one", repro=script
    )
    if new.numel():
        record("old_over_new", round((old / new).flatten()[0].item(), 6))


@rule(
    "graph.unreached-edge-refuses-materialize-grads",
    section=Section.BEYOND,
    docs="graph-gradient-edge",
    since="2.2",
    requires=(GRADIENT_EDGE, MATERIALIZE_GRADS),
    given=dict(program=SMALL_PROGRAMS),
    contracts=(UNREACHED_EDGE,),
    examples=(dict(program=CANONICAL),),
    references=("test_autograd.py::TestAutograd::test_grad_to_node",),
)
def unreached_edge_refuses_materialize_grads(program):
    """With materialize_grads=True, a tensor the output does not depend on gets zeros, but a GradientEdge the output does not reach makes autograd.grad raise a RuntimeError."""
    script = program.script(
        f"stranger = torch.zeros(2, dtype={program.dtype}, requires_grad=True) * 1.0",
        "loss = out.sum()",
        "zeros, = torch.autograd.grad(loss, [stranger], materialize_grads=True, retain_graph=True)",
        "print(zeros)",
    )
    seen = script.run()
    expect_close(
        seen.zeros,
        torch.zeros_like(seen.stranger),
        tolerance=SAME,
        what="materialized gradient of an unused tensor",
        repro=script,
    )
    by_edge = (
        "edge = torch.autograd.graph.get_gradient_edge(stranger)\n"
        "torch.autograd.grad(loss, [edge], materialize_grads=True)"
    )
    message = UNREACHED_EDGE.check(
        lambda: seen.loss,
        backward=lambda loss: Script(by_edge).run(loss=loss, stranger=seen.stranger),
        repro=script.then(by_edge),
    )
    record("message", message)


@rule(
    "graph.grad-fn-is-a-node",
    section=Section.GRAPH,
    docs="graph-nodes",
    since="2.0",
    requires=(NODE_CLASS,),
    given=dict(program=programs(max_ops=5)),
    examples=(dict(program=CANONICAL),),
    references=("test_autograd.py::TestAutograd::test_autograd_node_isinstance", "docs: torch.autograd.graph.Node"),
)
def grad_fn_is_a_node(program):
    """Every grad_fn, and every node reached through next_functions, is an instance of torch.autograd.graph.Node whose name() is its class name, and a leaf is reached as the AccumulateGrad node whose .variable is that leaf."""
    script = program.script(
        "nodes, seen, stack = [], {}, [out.grad_fn]",
        "while stack:",
        "    node = stack.pop()",
        "    if node is None or id(node) in seen:",
        "        continue",
        "    seen[id(node)] = node",
        "    nodes.append(node)",
        "    stack.extend(next_node for next_node, _ in node.next_functions)",
        "print([(node.name(), isinstance(node, torch.autograd.graph.Node)) for node in nodes])",
    )
    ran = script.run()
    leaves = [ran[name] for name in program.leaf_names]
    for node in ran.nodes:
        expect(
            isinstance(node, torch.autograd.graph.Node),
            what=f"{type(node).__name__} is a Node",
            expected=True,
            observed=False,
            repro=script,
        )
        if hasattr(node, "variable"):
            expect(
                node.name().endswith("AccumulateGrad"),
                what="name() of a leaf's node",
                expected="...AccumulateGrad",
                observed=node.name(),
                repro=script,
            )
            expect(
                any(node.variable is x for x in leaves),
                what="AccumulateGrad.variable is one of the leaves",
                expected=True,
                observed=False,
                repro=script,
            )
        else:
            expect(
                node.name() == type(node).__name__,
                what="name() of a backward node",
                expected=type(node).__name__,
                observed=node.name(),
                repro=script,
            )
    record("node_names", sorted({node.name() for node in ran.nodes}))


@rule(
    "graph.leaf-has-one-accumulate-grad-node",
    section=Section.GRAPH,
    docs="graph-nodes",
    given=dict(program=programs(max_ops=5, all_require_grad=True)),
    examples=(dict(program=CANONICAL),),
    references=("test_autograd.py::TestAutograd::test_next_functions",),
)
def leaf_has_one_accumulate_grad_node(program):
    """All the nodes that read one leaf point, through next_functions, to the same AccumulateGrad object, and an input that does not require grad appears there as None."""
    script = program.script(
        WALK_TO_LEAVES,
        f"counts = [len(found.get(id(x), set())) for x in [{', '.join(program.leaf_names)}]]",
        "product = x0 * torch.zeros_like(x0).detach()",
        "nexts = [n is None for n, _ in product.grad_fn.next_functions]",
        "print(counts, nexts)",
    )
    seen = script.run()
    for i, (spec, count) in enumerate(zip(program.leaves, seen.counts)):
        expect(
            count == (1 if spec.requires_grad else 0),
            what=f"AccumulateGrad objects for x{i}",
            expected=1 if spec.requires_grad else 0,
            observed=count,
            repro=script,
        )
    expect(
        seen.nexts == [False, True],
        what="next_functions of x0 * constant: (AccumulateGrad, None)",
        expected=[False, True],
        observed=seen.nexts,
        repro=script,
    )
    record("mul_next_functions", [None if n is None else n.name() for n, _ in seen.product.grad_fn.next_functions])


@rule(
    "graph.node-metadata-is-a-dict-per-node",
    section=Section.BEYOND,
    docs="graph-nodes",
    since="2.0",
    requires=(NODE_METADATA,),
    given=dict(program=programs(min_ops=2, max_ops=5)),
    examples=(dict(program=CANONICAL),),
    references=("docs: torch.autograd.graph.Node.metadata",),
)
def node_metadata_is_a_dict_per_node(program):
    """grad_fn.metadata is an empty dict at first, the same object on every access, separate for each node, and what is stored in it is still there after backward."""
    values = ", ".join(list(program.leaf_names) + [step.out for step in program.steps])
    script = program.script(
        f"nodes = list({{id(v.grad_fn): v.grad_fn for v in [{values}] if v.grad_fn is not None}}.values())",
        "fresh = [(dict(node.metadata), type(node.metadata).__name__, node.metadata is node.metadata) for node in nodes]",
        "for k, node in enumerate(nodes):",
        "    node.metadata['tag'] = k",
        "out.sum().backward()",
        "tags = [node.metadata.get('tag') for node in nodes]",
        "print(fresh, tags)",
        inline=True,
    )
    ran = script.run()
    for metadata, kind, same in ran.fresh:
        expect(
            metadata == {} and kind == "dict",
            what="metadata of a new node",
            expected={},
            observed=(metadata, kind),
            repro=script,
        )
        expect(same, what="metadata is the same dict on each access", expected=True, observed=False, repro=script)
    expect(
        ran.tags == list(range(len(ran.nodes))),
        what="tags stored per node, read after backward",
        expected=list(range(len(ran.nodes))),
        observed=ran.tags,
        repro=script,
    )
    record("metadata_type", type(ran.nodes[0].metadata).__name__)


@rule(
    "graph.node-hook-must-return-one-gradient-per-slot",
    section=Section.BEYOND,
    docs="graph-nodes",
    since="2.0",
    requires=(NODE_PREHOOK,),
    given=dict(program=SMALL_PROGRAMS, extra=st.integers(1, 2)),
    contracts=(HOOK_ARITY,),
    examples=(dict(program=CANONICAL, extra=1),),
    references=("test_autograd.py::TestAutograd::test_hooks",),
)
def node_hook_must_return_one_gradient_per_slot(program, extra):
    """A Node pre-hook that returns more gradients than the node has outputs makes backward raise a RuntimeError."""

    recorded = program.script(f"out.grad_fn.register_prehook(lambda go: tuple(go) + (go[0],) * {extra})")
    backward = "out.sum().backward()"
    message = HOOK_ARITY.check(
        lambda: recorded.run().out, backward=lambda out: Script(backward).run(out=out), repro=recorded.then(backward)
    )
    record("message", message)


@rule(
    "graph.increment-version-bumps-the-counter",
    section=Section.INPLACE,
    docs="graph-versions",
    since="2.1",
    requires=(INCREMENT_VERSION,),
    given=dict(program=SMALL_PROGRAMS, times=st.integers(1, 3)),
    contracts=(VERSION_MISMATCH,),
    examples=(dict(program=CANONICAL, times=1),),
    references=("test_autograd.py::TestAutograd::test_increment_version",),
)
def increment_version_bumps_the_counter(program, times):
    """torch.autograd.graph.increment_version(t) adds one to t._version without touching its values, so a backward that needs t as saved raises the in-place modification error."""
    recorded = program.script(
        "y = torch.exp(out)  # exp saves its result",
        "before, values = y._version, y.detach().clone()",
        f"for _ in range({times}):",
        "    torch.autograd.graph.increment_version(y)",
        "delta, same = y._version - before, torch.equal(values, y.detach())",
        "print(delta, same)",
    )
    seen = {}
    backward = "y.sum().backward()"
    VERSION_MISMATCH.check(
        lambda: seen.setdefault("run", recorded.run()).y,
        backward=lambda y: Script(backward).run(y=y),
        repro=recorded.then(backward),
    )
    delta, same = seen["run"].delta, seen["run"].same
    expect(
        delta == times, what=f"_version after {times} calls", expected=f"+{times}", observed=f"+{delta}", repro=recorded
    )
    expect(same, what="values after increment_version", expected="unchanged", observed="changed", repro=recorded)
    record("version_delta", delta)


@rule(
    "graph.allow-mutation-on-saved-gives-original-gradients",
    section=Section.INPLACE,
    docs="graph-mutation",
    since="2.0",
    requires=(ALLOW_MUTATION,),
    given=dict(program=programs(max_ops=5), c=SCALES),
    examples=(dict(program=CANONICAL, c=2.0),),
    references=(
        "test_autograd.py::TestAllowMutationOnSaved::test_basic",
        "test_autograd.py::TestAllowMutationOnSaved::test_same_tensor_many_times",
    ),
)
def allow_mutation_on_saved_gives_original_gradients(program, c):
    """Inside allow_mutation_on_saved_tensors, writing in place to a tensor that sin and a product saved does not raise, and backward gives the gradients of the values as they were when saved."""
    plain = program.inputs()
    a = program(*plain).clone()
    (torch.sin(a) * a).sum().backward()
    # The lines below continue the with block that the program's call runs in.
    script = program.script(
        "    a = out.clone()",
        "    loss = (torch.sin(a) * a).sum()",
        f"    a.mul_({c})",
        "    loss.backward()",
        *program.print_grads,
        within="torch.autograd.graph.allow_mutation_on_saved_tensors()",
    )
    seen = script.run()
    for i in program.grad_leaves:
        expect_close(
            seen[f"x{i}"].grad,
            plain[i].grad,
            tolerance=SAME,
            what=f"x{i}.grad after mutating a saved tensor",
            repro=script,
        )
    record("x0_grad", [round(v, 6) for v in seen.x0.grad.flatten().tolist()])


@rule(
    "graph.allow-mutation-on-saved-needs-its-context",
    section=Section.INPLACE,
    docs="graph-mutation",
    since="2.0",
    requires=(ALLOW_MUTATION,),
    given=dict(program=SMALL_PROGRAMS),
    contracts=(OUTSIDE_MUTATION_CONTEXT, NESTED_MUTATION_CONTEXT),
    examples=(dict(program=CANONICAL),),
    references=(
        "test_autograd.py::TestAllowMutationOnSaved::test_backward_out_of_context",
        "test_autograd.py::TestAllowMutationOnSaved::test_disallow_nesting",
    ),
)
def allow_mutation_on_saved_needs_its_context(program):
    """A graph recorded inside allow_mutation_on_saved_tensors raises an AssertionError when backward runs after the context has exited, and entering the context inside itself raises a RuntimeError."""
    context = "torch.autograd.graph.allow_mutation_on_saved_tensors()"
    # The indented line continues the with block that the program's call runs in.
    recorded = program.script("    loss = torch.sin(out).sum()", within=context)
    backward = "loss.backward()"
    record(
        "outside",
        OUTSIDE_MUTATION_CONTEXT.check(
            lambda: recorded.run().loss,
            backward=lambda loss: Script(backward).run(loss=loss),
            repro=recorded.then(backward),
        ),
    )
    nested = program.script(within=f"{context}, {context}")
    record("nested", NESTED_MUTATION_CONTEXT.check(nested.run, repro=nested))


@rule(
    "graph.disabled-saved-tensors-hooks-raise-the-message",
    section=Section.BEYOND,
    docs="graph-disable-hooks",
    since="2.0",
    requires=(DISABLE_HOOKS,),
    given=dict(
        message=st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=40),
        hooks_first=st.booleans(),
    ),
    contracts=(HOOKS_DISABLED,),
    examples=(dict(message="saved tensor hooks are off here", hooks_first=False),),
    references=(
        "test_autograd.py::TestAutograd::test_disabling_saved_tensor_hooks",
        "test_autograd.py::TestAutograd::test_disabling_saved_tensor_hooks_nested",
    ),
)
def disabled_saved_tensors_hooks_raise_the_message(message, hooks_first):
    """Inside disable_saved_tensors_hooks(message), entering saved_tensors_hooks raises a RuntimeError whose text is exactly message, as does disabling them while hooks are active, and hooks work again once the context has exited."""
    hooks = "torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t)"
    disabled = f"torch.autograd.graph.disable_saved_tensors_hooks({message!r})"
    contexts = f"{hooks}, {disabled}" if hooks_first else f"{disabled}, {hooks}"
    enter = Script("with $contexts:\n    pass", contexts=contexts)
    seen = HOOKS_DISABLED.check(enter.run, repro=enter)
    expect(seen == message, what="the error's text", expected=message, observed=seen, repro=enter)
    with torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t):
        pass
    record("message", seen)


@rule(
    "graph.multi-grad-hook-waits-for-a-reached-tensor",
    section=Section.BEYOND,
    docs="graph-multi-grad-hook",
    requires=(MULTI_GRAD_HOOK,),
    given=dict(program=SMALL_PROGRAMS, fail=st.booleans()),
    examples=(dict(program=CANONICAL, fail=False), dict(program=CANONICAL, fail=True)),
    references=("test_autograd.py::TestAutograd::test_multi_grad_all_hooks",),
)
def multi_grad_hook_waits_for_a_reached_tensor(program, fail):
    """A multi-grad hook is not called by a backward that reaches none of its tensors, nor by a backward that raises before finishing, and it is called once by the next backward that reaches them."""
    if fail:
        first = (
            "",
            "",
            "def stop(g):",
            "    raise KeyError('stop')",
            "",
            "",
            "other = (strangers[0] * 2).sum()",
            "other.register_hook(stop)",
            "raised = False",
            "try:",
            "    other.backward()",
            "except KeyError:",
            "    raised = True",
        )
    else:
        first = (
            f"unrelated = torch.zeros(2, dtype={program.dtype}, requires_grad=True)",
            "(unrelated * 3).sum().backward()",
        )
    script = program.script(
        f"strangers = [torch.ones(2, dtype={program.dtype}, requires_grad=True) for _ in range(2)]",
        "calls = []",
        "torch.autograd.graph.register_multi_grad_hook(strangers + [x0], lambda grads: calls.append(len(grads)))",
        *first,
        "before = list(calls)",
        f"{program.call}.sum().backward()",
        "print(before, calls)",
    )
    ran = script.run()
    if fail:
        expect(ran.raised, what="the hook's KeyError came out of backward", expected=True, observed=False, repro=script)
    what = "calls after a backward that raised" if fail else "calls after a backward reaching none of the tensors"
    expect(ran.before == [], what=what, expected=[], observed=ran.before, repro=script)
    expect(
        ran.calls == [3], what="calls after a backward that reaches x0", expected=[3], observed=ran.calls, repro=script
    )
    record("calls", ran.calls)


@rule(
    "graph.multi-grad-hook-mode-is-all-or-any",
    section=Section.BEYOND,
    docs="graph-multi-grad-hook",
    since="2.3",
    requires=(MULTI_GRAD_MODE,),
    given=dict(
        mode=st.text(st.characters(min_codepoint=97, max_codepoint=122), max_size=6).filter(
            lambda m: m not in ("all", "any")
        )
    ),
    contracts=(BAD_MODE,),
    examples=(dict(mode="every"),),
    references=("test_autograd.py::TestAutograd::test_multi_grad_hooks_invalid_mode",),
)
def multi_grad_hook_mode_is_all_or_any(mode):
    """register_multi_grad_hook raises a ValueError at registration for a mode other than "all" or "any"."""
    script = Script(
        "x = torch.ones(2, requires_grad=True)\ntorch.autograd.graph.register_multi_grad_hook([x], print, mode=$mode)",
        mode=repr(mode),
    )
    message = BAD_MODE.check(script.run, repro=script)
    record("message", message)


@rule(
    "graph.any-hook-runs-before-tensor-hooks",
    section=Section.BEYOND,
    docs="graph-multi-grad-hook",
    since="2.3",
    requires=(MULTI_GRAD_MODE,),
    given=dict(program=programs(min_leaves=2, max_ops=5, all_require_grad=True)),
    examples=(dict(program=CANONICAL),),
    references=("test_autograd.py::TestAutograd::test_multi_grad_any_hooks",),
)
def any_hook_runs_before_tensor_hooks(program):
    """A mode="any" multi-grad hook runs once per backward, before any tensor hook of its tensors runs."""
    script = program.script(
        "log = []",
        f"torch.autograd.graph.register_multi_grad_hook([{', '.join(program.leaf_names)}], "
        "lambda grads: log.append('any'), mode='any')",
        *(f"{x}.register_hook(lambda g: log.append({x!r}))" for x in program.leaf_names),
        "out.sum().backward()",
        "print(log)",
    )
    log = script.run().log
    expect(
        log.count("any") == 1 and log[0] == "any",
        what="the any-hook runs once, first",
        expected="['any', ...]",
        observed=log,
        repro=script,
    )
    record("order", log)


@rule(
    "graph.grad-to-a-tensor-skips-its-node-hooks",
    section=Section.BEYOND,
    docs="graph-nodes",
    since="2.0",
    requires=(NODE_PREHOOK,),
    given=dict(program=programs(max_ops=5), data=st.data()),
    examples=(dict(program=CANONICAL, data=None),),
    references=(
        "test_autograd.py::TestAutograd::test_hook_edge_case_when_called_with_grad",
        "docs: Autograd mechanics > Whether a particular hook will be fired",
    ),
)
def grad_to_a_tensor_skips_its_node_hooks(program, data):
    """torch.autograd.grad(loss, [a]) for an intermediate a runs a's tensor hooks but not the pre-hooks or hooks of a.grad_fn, whereas backward(inputs=[a]) runs all three."""
    values = program.trace(*program.inputs())
    names = [s.out for s in program.steps if values[s.out].grad_fn is not None]
    name = "v0" if data is None else data.draw(st.sampled_from(names), label="intermediate")
    script = program.script(
        f"a = {name}",
        "log = []",
        "a.register_hook(lambda g: log.append('tensor hook'))",
        "a.grad_fn.register_prehook(lambda go: log.append('node pre-hook'))",
        "a.grad_fn.register_hook(lambda gi, go: log.append('node hook'))",
        "loss = torch.tanh(out).sum()",
        "torch.autograd.grad(loss, [a], retain_graph=True)",
        "by_grad = list(log)",
        "log.clear()",
        "loss.backward(inputs=[a])",
        "print(by_grad, log)",
        inline=True,
    )
    seen = script.run()
    by_grad, log = seen.by_grad, seen.log
    expect(
        by_grad == ["tensor hook"],
        what="hooks run by autograd.grad",
        expected=["tensor hook"],
        observed=by_grad,
        repro=script,
    )
    expect(
        sorted(log) == ["node hook", "node pre-hook", "tensor hook"],
        what="hooks run by backward(inputs=[a])",
        expected="all three",
        observed=log,
        repro=script,
    )
    record("by_grad", by_grad)
    record("by_backward", log)


@rule(
    "graph.retained-grad-skips-node-prehooks",
    section=Section.BEYOND,
    docs="graph-nodes",
    since="2.0",
    requires=(NODE_PREHOOK,),
    given=dict(program=programs(max_ops=5), c=SCALES, d=SCALES),
    examples=(dict(program=CANONICAL, c=2.0, d=0.5),),
    references=(
        "test_autograd.py::TestAutograd::test_prehook_ordering",
        "docs: Autograd mechanics > Backward hooks execution",
    ),
)
def retained_grad_skips_node_prehooks(program, c, d):
    """A non-leaf's retained .grad includes what its tensor hooks return but not what pre-hooks on its grad_fn return, although both change the gradients that flow on to the leaves."""
    script = program.script(
        "a = out * 1.0",
        "a.retain_grad()",
        f"a.register_hook(lambda g: g * {c})",
        f"a.grad_fn.register_prehook(lambda go: (go[0] * {d},))",
        "torch.sin(a).sum().backward()",
        "print(a.grad)",
        *program.print_grads,
    )
    seen = script.run()
    plain = program.inputs()
    torch.sin(program(*plain) * 1.0).sum().backward()
    expect_close(
        seen.a.grad,
        torch.cos(seen.a.detach()) * c,
        tolerance=SAME,
        what=f"a.grad: the tensor hook's {c} x, not the pre-hook's",
        repro=script,
    )
    for i in program.grad_leaves:
        expect_close(
            seen[f"x{i}"].grad,
            plain[i].grad * (c * d),
            tolerance=SAME,
            what=f"x{i}.grad, scaled by both hooks",
            repro=script,
        )
    record("a_grad_over_cos", c)
