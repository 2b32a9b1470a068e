"""Hooks: tensor hooks, Node hooks, post-accumulate-grad hooks, multi-grad hooks, saved-tensor hooks."""

from __future__ import annotations

import torch
from hypothesis import strategies as st

from specs.engine.contracts import ErrorContract, Phase
from specs.engine.expect import Tolerance, expect, expect_close
from specs.engine.oracles import DTYPE_TOLERANCE, FD_TOLERANCE, finite_difference_gradients, intermediate_gradient
from specs.engine.registry import Change, Family, Feature, rule
from specs.engine.sections import Section
from specs.generators.strategies import programs, tensors

FAMILY = Family(
    name="hooks",
    title="Hooks",
    summary="Functions autograd calls during backward: on tensors, on Nodes, after accumulation, on saved tensors.",
    gallery="plot_85_hooks.py",
)


#: Hooks here scale gradients by powers of two, which every backward formula passes through exactly.
SCALES = st.sampled_from([2.0, 0.5, -4.0, 0.25])
EXACT_SCALING = Tolerance(0.0, 0.0, "multiplying by a power of two is exact and commutes with the backward formulas")

NO_REQUIRES_GRAD = ErrorContract(
    RuntimeError, r"cannot register a hook on a tensor that doesn't require gradient", Phase.RECORD
)
CHANGED_SIZE = ErrorContract(RuntimeError, r"hook '.*' has changed the size of value", Phase.BACKWARD)
CHANGED_TYPE = ErrorContract(RuntimeError, r"hook '.*' has changed the type of value", Phase.BACKWARD)
POST_ACCUMULATE_NON_LEAF = ErrorContract(
    RuntimeError, r"post accumulate grad hooks cannot be registered on non-leaf tensors", Phase.RECORD
)
POST_ACCUMULATE_RETURNS = ErrorContract(RuntimeError, r"post accumulate grad hooks should return None", Phase.BACKWARD)

POST_ACCUMULATE = Feature(
    "Tensor.register_post_accumulate_grad_hook",
    lambda: hasattr(torch.Tensor, "register_post_accumulate_grad_hook"),
)
MULTI_GRAD_HOOK = Feature(
    "torch.autograd.graph.register_multi_grad_hook",
    lambda: hasattr(torch.autograd.graph, "register_multi_grad_hook"),
)


def _tolerance(program):
    return FD_TOLERANCE if program.dtype == torch.float64 else DTYPE_TOLERANCE[torch.float32]


def _plain_grads(program):
    leaves = program.inputs()
    program(*leaves).sum().backward()
    return [leaves[i].grad for i in program.grad_leaves]


def _intermediate(program, data):
    return data.draw(st.sampled_from([s.out for s in program.steps]), label="intermediate")


@rule(
    "hooks.tensor-hook-sees-the-gradient",
    section=Section.PRACTICAL,
    docs="hooks-tensor",
    given=dict(program=programs(all_require_grad=True), data=st.data()),
    references=("test_autograd.py::TestAutograd::test_hooks",),
)
def tensor_hook_sees_the_gradient(program, data):
    """A hook registered with Tensor.register_hook is called during backward with the gradient of the output with respect to that tensor, leaf or not."""
    leaves = program.inputs()
    values = program.trace(*leaves)
    name = _intermediate(program, data)
    seen = {}
    values[name].register_hook(lambda g: seen.__setitem__(name, g.detach().clone()))
    leaves[0].register_hook(lambda g: seen.__setitem__("x0", g.detach().clone()))
    values[program.output].sum().backward()
    repro = program.repro(
        f"{name}.register_hook(lambda g: print('{name}', g))",
        "x0.register_hook(lambda g: print('x0', g))",
        "out.sum().backward()",
        inline=True,
    )
    expect(
        set(seen) == {name, "x0"},
        what="hooks that fired",
        expected=sorted({name, "x0"}),
        observed=sorted(seen),
        repro=repro,
    )
    expect_close(
        seen[name],
        intermediate_gradient(program, name, leaves),
        tolerance=_tolerance(program),
        what=f"the gradient {name}'s hook received, against finite differences",
        repro=repro,
    )
    expect_close(
        seen["x0"],
        finite_difference_gradients(program, leaves, [0])[0],
        tolerance=_tolerance(program),
        what="the gradient x0's hook received, against finite differences",
        repro=repro,
    )


@rule(
    "hooks.tensor-hook-return-replaces-the-gradient",
    section=Section.PRACTICAL,
    docs="hooks-tensor",
    given=dict(program=programs(), where=st.sampled_from(["leaf", "output"]), c=SCALES),
    references=("test_autograd.py::TestAutograd::test_hooks",),
)
def tensor_hook_return_replaces_the_gradient(program, where, c):
    """A tensor hook's return value replaces the gradient: on a leaf it is what .grad accumulates, on a non-leaf it is what flows on to the inputs."""
    plain = _plain_grads(program)
    leaves = program.inputs()
    out = program(*leaves)
    target = leaves[0] if where == "leaf" else out
    target.register_hook(lambda g: g * c)
    out.sum().backward()
    repro = program.repro(
        f"{'x0' if where == 'leaf' else 'out'}.register_hook(lambda g: g * {c})",
        "out.sum().backward()",
        "print(x0.grad)",
    )
    for i, grad in zip(program.grad_leaves, plain):
        factor = c if (where == "output" or i == 0) else 1.0
        expect_close(
            leaves[i].grad,
            grad * factor,
            tolerance=EXACT_SCALING,
            what=f"x{i}.grad with a hook on {'x0' if where == 'leaf' else 'out'} returning g * {c}",
            repro=repro,
        )


@rule(
    "hooks.returning-none-keeps-the-gradient",
    section=Section.PRACTICAL,
    docs="hooks-tensor",
    given=dict(program=programs(all_require_grad=True), data=st.data()),
    references=("test_autograd.py::TestAutograd::test_hooks",),
)
def returning_none_keeps_the_gradient(program, data):
    """A tensor hook that returns None leaves the gradient unchanged."""
    plain = _plain_grads(program)
    leaves = program.inputs()
    values = program.trace(*leaves)
    name = _intermediate(program, data)
    calls = []
    for value in (values[name], leaves[0]):
        value.register_hook(lambda g: calls.append(1))
    values[program.output].sum().backward()
    expect(len(calls) == 2, what="hooks that fired", expected=2, observed=len(calls))
    for i, grad in zip(program.grad_leaves, plain):
        expect_close(
            leaves[i].grad,
            grad,
            tolerance=EXACT_SCALING,
            what=f"x{i}.grad with hooks returning None",
            repro=program.repro(
                f"{name}.register_hook(lambda g: None)",
                "x0.register_hook(lambda g: None)",
                "out.sum().backward()",
                *program.print_grads,
                inline=True,
            ),
        )


@rule(
    "hooks.hooks-chain-in-registration-order",
    section=Section.PRACTICAL,
    docs="hooks-order",
    given=dict(
        program=programs(), factors=st.lists(SCALES, min_size=2, max_size=4), where=st.sampled_from(["leaf", "output"])
    ),
    references=("test_autograd.py::TestAutograd::test_hooks",),
)
def hooks_chain_in_registration_order(program, factors, where):
    """Several hooks on one tensor run in the order they were registered, each receiving the gradient the previous one returned."""
    leaves = program.inputs()
    out = program(*leaves)
    target = leaves[0] if where == "leaf" else out
    received = []

    def hook(k, c):
        return lambda g: (received.append((k, g.detach().clone())), g * c)[1]

    for k, c in enumerate(factors):
        target.register_hook(hook(k, c))
    out.sum().backward()
    expect(
        [k for k, _ in received] == list(range(len(factors))),
        what="the order hooks ran in",
        expected=list(range(len(factors))),
        observed=[k for k, _ in received],
    )
    first = received[0][1]
    scale = 1.0
    for (k, g), c in zip(received, factors):
        expect_close(
            g,
            first * scale,
            tolerance=EXACT_SCALING,
            what=f"hook {k} receives hook {k - 1}'s result",
            repro=program.repro(
                *(
                    f"{'x0' if where == 'leaf' else 'out'}.register_hook("
                    f"lambda g: print('hook {k} receives', g) or g * {c})"
                    for k, c in enumerate(factors)
                ),
                "out.sum().backward()",
            ),
        )
        scale *= c


@rule(
    "hooks.removed-hook-does-not-run",
    section=Section.PRACTICAL,
    docs="hooks-order",
    given=dict(program=programs(), c=SCALES),
    references=("test_autograd.py::TestAutograd::test_hooks",),
)
def removed_hook_does_not_run(program, c):
    """After handle.remove(), the hook that register_hook returned the handle for is no longer called."""
    plain = _plain_grads(program)
    leaves = program.inputs()
    out = program(*leaves)
    calls = []
    handle = out.register_hook(lambda g: (calls.append(1), g * c)[1])
    handle.remove()
    out.sum().backward()
    expect(
        not calls,
        what="calls of the removed hook",
        expected=0,
        observed=len(calls),
        repro=program.repro(
            f"h = out.register_hook(lambda g: print('called') or g * {c})",
            "h.remove()",
            "out.sum().backward()",
            *program.print_grads,
        ),
    )
    for i, grad in zip(program.grad_leaves, plain):
        expect_close(leaves[i].grad, grad, tolerance=EXACT_SCALING, what=f"x{i}.grad after the hook was removed")


@rule(
    "hooks.hook-needs-requires-grad",
    section=Section.PRACTICAL,
    docs="hooks-errors",
    given=dict(spec=tensors(requires_grad=False)),
    contracts=(NO_REQUIRES_GRAD,),
)
def hook_needs_requires_grad(spec):
    """register_hook on a tensor that does not require grad raises a RuntimeError."""
    NO_REQUIRES_GRAD.check(
        lambda: spec.make().register_hook(lambda g: None), repro=f"{spec.expression()}.register_hook(print)"
    )


@rule(
    "hooks.hook-must-keep-size-and-dtype",
    section=Section.PRACTICAL,
    docs="hooks-errors",
    given=dict(program=programs(max_ops=4), change=st.sampled_from(["size", "dtype"])),
    contracts=(CHANGED_SIZE, CHANGED_TYPE),
)
def hook_must_keep_size_and_dtype(program, change):
    """A tensor hook that returns a gradient of another size or dtype makes backward raise a RuntimeError."""
    if change == "size":
        contract, replace = CHANGED_SIZE, lambda g: torch.zeros(g.numel() + 1, dtype=g.dtype)
        code = "torch.zeros(g.numel() + 1, dtype=g.dtype)"
    else:
        other = torch.float32 if program.dtype == torch.float64 else torch.float64
        contract, replace, code = CHANGED_TYPE, lambda g: g.to(other), f"g.to({other})"

    def record():
        out = program(*program.inputs())
        out.register_hook(replace)
        return out

    contract.check(
        record,
        backward=lambda out: out.sum().backward(),
        repro=program.repro(f"out.register_hook(lambda g: {code})", "out.sum().backward()"),
    )


@rule(
    "hooks.post-accumulate-hook-sees-the-updated-grad",
    section=Section.PRACTICAL,
    docs="hooks-post-accumulate",
    since="2.1",
    requires=(POST_ACCUMULATE,),
    given=dict(program=programs(), k=st.integers(1, 3)),
    references=("docs: Autograd mechanics > Backward Hooks execution",),
)
def post_accumulate_hook_sees_the_updated_grad(program, k):
    """A post-accumulate-grad hook is called once per backward with the leaf itself, after its .grad has been updated, with grad mode off."""
    plain = _plain_grads(program)
    repro = program.script(
        "seen, after = [], []",
        "x0.register_post_accumulate_grad_hook(",
        "    lambda p: seen.append((p is x0, p.grad.detach().clone(), torch.is_grad_enabled())))",
        f"for _ in range({k}):",
        f"    {program.call}.sum().backward()",
        "    after.append(x0.grad.detach().clone())",
        "print(seen)",
    )
    ran = repro.run()
    seen, after = ran.seen, ran.after
    expect(len(seen) == k, what=f"calls in {k} backward passes", expected=k, observed=len(seen), repro=repro)
    expect_close(
        seen[0][1], plain[0], tolerance=EXACT_SCALING, what="x0.grad seen by the hook in the first pass", repro=repro
    )
    for n, ((same, grad, grad_mode), final) in enumerate(zip(seen, after), start=1):
        expect(same, what="the hook receives the leaf itself", expected=True, observed=same, repro=repro)
        expect(not grad_mode, what="grad mode inside the hook", expected=False, observed=grad_mode, repro=repro)
        # Against .grad once backward returned, not against n x one pass: how .grad sums is the
        # accumulation family's rule.
        expect_close(
            grad,
            final,
            tolerance=EXACT_SCALING,
            what=f"x0.grad seen by the hook in pass {n}, against .grad after it",
            repro=repro,
        )


@rule(
    "hooks.post-accumulate-hook-is-for-leaves",
    section=Section.PRACTICAL,
    docs="hooks-post-accumulate",
    since="2.1",
    requires=(POST_ACCUMULATE,),
    given=dict(program=programs(max_ops=4, all_require_grad=True)),
    contracts=(POST_ACCUMULATE_NON_LEAF, POST_ACCUMULATE_RETURNS),
    references=("test_autograd.py::TestAutograd::test_post_accumulate_grad_hook_on_non_leaf",),
)
def post_accumulate_hook_is_for_leaves(program):
    """A post-accumulate-grad hook can only be registered on a leaf and must return None, else a RuntimeError is raised."""
    POST_ACCUMULATE_NON_LEAF.check(
        lambda: program(*program.inputs()).register_post_accumulate_grad_hook(lambda p: None),
        repro=program.repro("out.register_post_accumulate_grad_hook(lambda p: None)"),
    )

    def record():
        leaves = program.inputs()
        leaves[0].register_post_accumulate_grad_hook(lambda p: p.grad)
        return program(*leaves)

    POST_ACCUMULATE_RETURNS.check(
        record,
        backward=lambda out: out.sum().backward(),
        repro=program.repro(
            "x0.register_post_accumulate_grad_hook(lambda p: p.grad)", f"{program.call}.sum().backward()"
        ),
    )


@rule(
    "hooks.node-prehook-replaces-grad-outputs",
    section=Section.PRACTICAL,
    docs="hooks-node",
    since="2.0",
    given=dict(program=programs(), c=SCALES),
    references=("test_autograd.py::TestAutograd::test_grad_fn_prehooks",),
)
def node_prehook_replaces_grad_outputs(program, c):
    """A Node pre-hook (grad_fn.register_prehook) receives the gradients flowing into the node, and a tuple it returns replaces them."""
    plain = _plain_grads(program)
    leaves = program.inputs()
    out = program(*leaves)
    seen = []
    out.grad_fn.register_prehook(lambda go: (seen.append(go[0].detach().clone()), (go[0] * c,))[1])
    out.sum().backward()
    repro = program.repro(
        f"out.grad_fn.register_prehook(lambda go: (go[0] * {c},))", "out.sum().backward()", *program.print_grads
    )
    expect(len(seen) == 1, what="pre-hook calls", expected=1, observed=len(seen), repro=repro)
    expect_close(
        seen[0],
        torch.ones_like(out),
        tolerance=EXACT_SCALING,
        what="grad_outputs[0] of out.sum()'s cotangent",
        repro=repro,
    )
    for i, grad in zip(program.grad_leaves, plain):
        expect_close(
            leaves[i].grad,
            grad * c,
            tolerance=EXACT_SCALING,
            what=f"x{i}.grad with grad_outputs scaled by {c}",
            repro=repro,
        )


@rule(
    "hooks.node-hook-replaces-grad-inputs",
    section=Section.PRACTICAL,
    docs="hooks-node",
    given=dict(program=programs(), c=SCALES),
    references=("docs: Autograd mechanics > Backward Hooks execution",),
)
def node_hook_replaces_grad_inputs(program, c):
    """A Node post-hook (grad_fn.register_hook) runs after the node with its grad_inputs and grad_outputs, and a tuple it returns replaces the grad_inputs."""
    plain = _plain_grads(program)
    leaves = program.inputs()
    out = program(*leaves)
    seen = []

    def hook(grad_inputs, grad_outputs):
        seen.append(grad_outputs[0].detach().clone())
        return tuple(None if g is None else g * c for g in grad_inputs)

    out.grad_fn.register_hook(hook)
    out.sum().backward()
    repro = program.repro(
        f"out.grad_fn.register_hook(lambda gi, go: tuple(None if g is None else g * {c} for g in gi))",
        "out.sum().backward()",
        *program.print_grads,
    )
    expect(len(seen) == 1, what="post-hook calls", expected=1, observed=len(seen), repro=repro)
    expect_close(
        seen[0],
        torch.ones_like(out),
        tolerance=EXACT_SCALING,
        what="grad_outputs[0] seen by the post-hook",
        repro=repro,
    )
    for i, grad in zip(program.grad_leaves, plain):
        expect_close(
            leaves[i].grad,
            grad * c,
            tolerance=EXACT_SCALING,
            what=f"x{i}.grad with grad_inputs scaled by {c}",
            repro=repro,
        )


@rule(
    "hooks.hooks-fire-in-a-fixed-order",
    section=Section.PRACTICAL,
    docs="hooks-order",
    since="2.1",
    requires=(POST_ACCUMULATE,),
    given=dict(program=programs()),
    history=(Change("2.0", "tensor hooks on a node's output could run after that node's pre-hooks"),),
    references=(
        "docs: Autograd mechanics > Backward Hooks execution",
        "test_autograd.py::TestAutograd::test_prehook_ordering",
    ),
)
def hooks_fire_in_a_fixed_order(program):
    """For one backward through out's node to leaf x0, the hooks run in this order: tensor hook on out, the node's pre-hook, the node's post-hook, tensor hook on x0, x0's post-accumulate-grad hook."""
    leaves = program.inputs()
    out = program(*leaves)
    log = []
    leaves[0].register_post_accumulate_grad_hook(lambda p: log.append("x0 post-accumulate"))
    leaves[0].register_hook(lambda g: log.append("x0 tensor hook"))
    out.grad_fn.register_hook(lambda gi, go: log.append("node post-hook"))
    out.grad_fn.register_prehook(lambda go: log.append("node pre-hook"))
    out.register_hook(lambda g: log.append("out tensor hook"))
    out.sum().backward()
    expected = ["out tensor hook", "node pre-hook", "node post-hook", "x0 tensor hook", "x0 post-accumulate"]
    expect(
        log == expected,
        what="the order hooks ran in",
        expected=expected,
        observed=log,
        repro=program.repro(
            "log = []",
            "x0.register_post_accumulate_grad_hook(lambda p: log.append('x0 post-accumulate'))",
            "x0.register_hook(lambda g: log.append('x0 tensor hook'))",
            "out.grad_fn.register_hook(lambda gi, go: log.append('node post-hook'))",
            "out.grad_fn.register_prehook(lambda go: log.append('node pre-hook'))",
            "out.register_hook(lambda g: log.append('out tensor hook'))",
            "out.sum().backward()",
            "print(log)",
        ),
    )


@rule(
    "hooks.multi-grad-hook-sees-all-gradients",
    section=Section.BEYOND,
    docs="hooks-multi",
    requires=(MULTI_GRAD_HOOK,),
    given=dict(program=programs(min_leaves=2, all_require_grad=True), data=st.data()),
    references=("test_autograd.py::TestAutograd::test_multi_grad_all_hooks",),
)
def multi_grad_hook_sees_all_gradients(program, data):
    """register_multi_grad_hook calls its hook once for a backward that reaches any of its tensors, with the gradients of all of them (None for a tensor the pass does not reach), and not at all for a backward that reaches none of them or that raises."""
    chosen = sorted(data.draw(st.sets(st.sampled_from(range(len(program.leaves))), min_size=1), label="inputs"))
    names = program.leaf_names
    others = [name for i, name in enumerate(names) if i not in chosen]
    script = program.script(
        "calls, unreached_calls = [], []",
        f"torch.autograd.graph.register_multi_grad_hook([{', '.join(names)}], lambda grads: calls.append(list(grads)))",
        *(
            [
                f"torch.autograd.graph.register_multi_grad_hook([{', '.join(others)}], "
                "lambda grads: unreached_calls.append(grads))"
            ]
            if others
            else []
        ),
        f"{program.call}.sum().backward(inputs=[{', '.join(names[i] for i in chosen)}])",
        "print(calls, unreached_calls)",
    )
    seen = script.run()
    expect(
        len(seen.calls) == 1, what="calls of the multi-grad hook", expected=1, observed=len(seen.calls), repro=script
    )
    for i, grad in enumerate(seen.calls[0]):
        if i in chosen:
            expect_close(
                grad,
                seen[names[i]].grad,
                tolerance=Tolerance(0, 0, "the same gradient tensor"),
                what=f"entry {i}",
                repro=script,
            )
        else:
            expect(grad is None, what=f"entry {i}, not reached", expected=None, observed=grad, repro=script)
    expect(
        not seen.unreached_calls,
        what="calls of a multi-grad hook on only the tensors this backward does not reach",
        expected=0,
        observed=len(seen.unreached_calls),
        repro=script,
    )
    raising = program.script(
        "class BackwardFailed(Exception):",
        "    pass",
        "def raise_in_backward(grad):",
        "    raise BackwardFailed('a tensor hook raised on purpose')",
        "failed_calls = []",
        f"torch.autograd.graph.register_multi_grad_hook([{', '.join(names)}], lambda grads: failed_calls.append(grads))",
        f"loss = {program.call}.sum()",
        "loss.register_hook(raise_in_backward)",
        "try:",
        "    loss.backward()",
        "except BackwardFailed as error:",
        "    print('backward raised:', error)",
        "print(failed_calls)",
    )
    failed_calls = raising.run().failed_calls
    expect(
        not failed_calls,
        what="calls of the multi-grad hook when the backward raises before reaching its tensors",
        expected=0,
        observed=len(failed_calls),
        repro=raising,
    )


@rule(
    "hooks.multi-grad-hook-any-fires-once",
    section=Section.BEYOND,
    docs="hooks-multi",
    since="2.3",
    requires=(MULTI_GRAD_HOOK,),
    given=dict(program=programs(min_leaves=2, all_require_grad=True)),
    references=("test_autograd.py::TestAutograd::test_multi_grad_any_hooks",),
)
def multi_grad_hook_any_fires_once(program):
    """With mode="any", register_multi_grad_hook calls its hook once per backward, with the first of the gradients computed."""
    leaves = program.inputs()
    calls = []
    torch.autograd.graph.register_multi_grad_hook(leaves, lambda g: calls.append(g.detach().clone()), mode="any")
    program(*leaves).sum().backward()
    repro = program.repro(
        f"torch.autograd.graph.register_multi_grad_hook([{', '.join(program.leaf_names)}], print, mode='any')",
        "out.sum().backward()",
    )
    expect(len(calls) == 1, what="calls of the mode='any' hook", expected=1, observed=len(calls), repro=repro)
    expect(
        any(calls[0].shape == x.shape and torch.equal(calls[0], x.grad) for x in leaves),
        what="the gradient passed is one of the tensors' gradients",
        expected="one of the .grad",
        observed=calls[0],
        repro=repro,
    )


@rule(
    "hooks.pack-runs-while-recording",
    section=Section.PRACTICAL,
    docs="hooks-saved-tensors",
    given=dict(program=programs(all_require_grad=True)),
    references=(
        "docs: Autograd mechanics > Hooks for saved tensors",
        "test_autograd.py::TestAutograd::test_default_saved_tensors_hooks_double_backward",
    ),
)
def pack_runs_while_recording(program):
    """Under saved_tensors_hooks, pack is called while the forward is recorded and not during a plain backward, but a backward with create_graph=True run inside the hooks packs what it saves, and backward receives the unpacked tensors unchanged when unpack returns what was packed."""
    grad_leaves = ", ".join(program.leaf_names[i] for i in program.grad_leaves)
    script = program.script(
        "log, tokens_packed = [], set()",
        "def pack(t):",
        "    log.append('pack')",
        "    tokens_packed.add(len(log))",
        "    return len(log), t",
        "def unpack(packed):",
        "    log.append(('unpack', packed[0]))",
        "    return packed[1]",
        "with torch.autograd.graph.saved_tensors_hooks(pack, unpack):",
        f"    out = torch.tanh({program.call})",
        "    packs = log.count('pack')",
        "    out.sum().backward(retain_graph=True)",
        "    plain = log.count('pack') - packs",
        f"    torch.autograd.grad(out.sum(), [{grad_leaves}], create_graph=True)",
        "    double = log.count('pack') - packs - plain",
        "print('pack calls while recording:', packs, 'in a plain backward:', plain, 'in a create_graph backward:', double)",
        *program.print_grads,
    )
    seen = script.run()
    expect(
        seen.packs >= 1,
        what="pack calls while recording (tanh saves its result)",
        expected=">= 1",
        observed=seen.packs,
        repro=script,
    )
    expect(
        seen.plain == 0,
        what="pack calls during a plain backward inside the hooks",
        expected=0,
        observed=seen.plain,
        repro=script,
    )
    expect(
        seen.double >= 1,
        what="pack calls during a create_graph=True backward inside the hooks (tanh's backward saves)",
        expected=">= 1",
        observed=seen.double,
        repro=script,
    )
    tokens = {entry[1] for entry in seen.log if entry != "pack"}
    expect(
        tokens <= seen.tokens_packed,
        what="unpack receives what pack returned",
        expected="pack's results",
        observed=tokens,
        repro=script,
    )
    leaves = program.inputs()
    torch.tanh(program(*leaves)).sum().backward()
    for i in program.grad_leaves:
        name = program.leaf_names[i]
        expect_close(
            seen[name].grad,
            leaves[i].grad,
            tolerance=Tolerance(0, 0, "the same tensors reach backward"),
            what=f"{name}.grad with identity saved-tensor hooks",
            repro=script,
        )


@st.composite
def factor_pairs(draw):
    shape = draw(st.lists(st.integers(1, 3), max_size=3).map(tuple), label="shape")
    dtype = draw(st.sampled_from([torch.float32, torch.float64]), label="dtype")
    a = draw(tensors(shape=shape, dtypes=(dtype,)), label="a")
    b = draw(tensors(shape=shape, dtypes=(dtype,)), label="b")
    return a, b


@rule(
    "hooks.unpack-result-is-used",
    section=Section.PRACTICAL,
    docs="hooks-saved-tensors",
    given=dict(pair=factor_pairs(), c=SCALES),
    references=("docs: Autograd mechanics > Hooks for saved tensors",),
)
def unpack_result_is_used(pair, c):
    """The product a * b saves both factors, so pack is called twice, and backward uses what unpack returns: unpacking c * t gives a.grad = c * b."""
    a_spec, b_spec = pair
    a, b = a_spec.make(), b_spec.make()
    packs = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: packs.append(t) or t, lambda t: t * c):
        product = a * b
    product.sum().backward()
    repro = (
        f"a = {a_spec.expression()}\nb = {b_spec.expression()}\n"
        f"with torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t * {c}):\n"
        "    (a * b).sum().backward()\nprint(a.grad, b.grad)"
    )
    expect(len(packs) == 2, what="pack calls for a * b", expected=2, observed=len(packs), repro=repro)
    expect_close(
        a.grad, c * b.detach(), tolerance=EXACT_SCALING, what="a.grad with unpack returning c * t", repro=repro
    )
    expect_close(
        b.grad, c * a.detach(), tolerance=EXACT_SCALING, what="b.grad with unpack returning c * t", repro=repro
    )


@rule(
    "hooks.save-on-cpu-keeps-gradients",
    section=Section.PRACTICAL,
    docs="hooks-saved-tensors",
    given=dict(program=programs()),
    references=("test_autograd.py::TestAutograd::test_graph_save_on_cpu",),
)
def save_on_cpu_keeps_gradients(program):
    """Recording under torch.autograd.graph.save_on_cpu gives bit-identical gradients."""
    plain = _plain_grads(program)
    leaves = program.inputs()
    with torch.autograd.graph.save_on_cpu(pin_memory=False):
        out = program(*leaves)
    out.sum().backward()
    for i, grad in zip(program.grad_leaves, plain):
        expect_close(
            leaves[i].grad,
            grad,
            tolerance=Tolerance(0, 0, "the same values are saved and restored"),
            what=f"x{i}.grad under save_on_cpu",
            repro=program.repro(
                "out.sum().backward()",
                *program.print_grads,
                within="torch.autograd.graph.save_on_cpu(pin_memory=False)",
            ),
        )


def _sin_loss_after_scaling(program, c, before=None, after=None, retain=False):
    """``a = out.clone()``, hooks before ``a.mul_(c)``, hooks after, loss ``sin(a).sum()``."""
    out = program(*program.inputs())
    a = out.clone()
    if retain:
        a.retain_grad()
    if before:
        a.register_hook(before)
    a.mul_(c)
    if after:
        a.register_hook(after)
    torch.sin(a).sum().backward()
    return a


@rule(
    "hooks.hooks-bind-to-the-grad-fn",
    section=Section.PRACTICAL,
    docs="hooks-in-place",
    since="2.0",
    given=dict(program=programs(max_ops=6), c=SCALES),
    history=(Change("2.0", "a hook registered before an in-place op moved to the new grad_fn"),),
    references=("test_autograd.py::TestAutograd::test_tensor_hooks_inplace",),
)
def hooks_bind_to_the_grad_fn(program, c):
    """Across an in-place op, a hook registered before it receives the gradient with respect to the old value, and a hook registered after it receives the gradient with respect to the new value and runs first."""
    log = {}
    a = _sin_loss_after_scaling(
        program,
        c,
        before=lambda g: log.setdefault("before", (len(log), g.clone())) and None,
        after=lambda g: log.setdefault("after", (len(log), g.clone())) and None,
    )
    new_grad = torch.cos(a.detach())
    repro = program.repro(
        "a = out.clone()",
        "a.register_hook(lambda g: print('before', g))",
        f"a.mul_({c})",
        "a.register_hook(lambda g: print('after', g))",
        "torch.sin(a).sum().backward()",
    )
    expect(
        log["after"][0] == 0 and log["before"][0] == 1,
        what="the hook registered after the in-place op runs first",
        expected="after, then before",
        observed=sorted(log, key=lambda k: log[k][0]),
        repro=repro,
    )
    expect_close(
        log["after"][1],
        new_grad,
        tolerance=EXACT_SCALING,
        what="gradient seen by the hook registered after",
        repro=repro,
    )
    expect_close(
        log["before"][1],
        new_grad * c,
        tolerance=EXACT_SCALING,
        what="gradient seen by the hook registered before",
        repro=repro,
    )


@rule(
    "hooks.retain-grad-runs-after-hooks",
    section=Section.PRACTICAL,
    docs="hooks-in-place",
    since="2.0",
    given=dict(program=programs(), c=SCALES, retain_first=st.booleans()),
    history=(Change("2.0", "retain_grad stored the gradient at its own place in the hook order"),),
    references=("test_autograd.py::TestAutograd::test_retains_grad_can_always_observe_tensor_prehook",),
)
def retain_grad_runs_after_hooks(program, c, retain_first):
    """retain_grad() stores the gradient after every tensor hook on that tensor has run, whether it was called before or after register_hook."""
    leaves = program.inputs()
    out = program(*leaves)
    a = out * 1.0
    if retain_first:
        a.retain_grad()
    a.register_hook(lambda g: g * c)
    if not retain_first:
        a.retain_grad()
    torch.sin(a).sum().backward()
    expect_close(
        a.grad,
        torch.cos(a.detach()) * c,
        tolerance=EXACT_SCALING,
        what=f"a.grad with retain_grad() {'before' if retain_first else 'after'} a hook returning g * {c}",
        repro=program.repro(
            "a = out * 1.0",
            "a.retain_grad()",
            f"a.register_hook(lambda g: g * {c})",
            "torch.sin(a).sum().backward()",
            "print(a.grad)",
        ),
    )


@rule(
    "hooks.retain-grad-follows-in-place",
    section=Section.PRACTICAL,
    docs="hooks-in-place",
    since="2.0",
    given=dict(program=programs(), c=SCALES),
    history=(Change("2.0", "retain_grad could stay with the old grad_fn and report the pre-in-place gradient"),),
    references=("test_autograd.py::TestAutograd::test_retain_grad_inplace",),
)
def retain_grad_follows_in_place(program, c):
    """After an in-place op on a tensor that retains grad, its .grad is the gradient with respect to the new value."""
    a = _sin_loss_after_scaling(program, c, retain=True)
    expect_close(
        a.grad,
        torch.cos(a.detach()),
        tolerance=EXACT_SCALING,
        what="a.grad after a.mul_(c)",
        repro=program.repro(
            "a = out.clone()", "a.retain_grad()", f"a.mul_({c})", "torch.sin(a).sum().backward()", "print(a.grad)"
        ),
    )
