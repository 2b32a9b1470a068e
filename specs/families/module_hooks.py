"""Module hooks: nn.Module's full backward hooks and pre-hooks, their errors, and forward hooks around them."""

from __future__ import annotations

import torch
from hypothesis import strategies as st

from specs.engine.contracts import ErrorContract, Phase, WarningContract
from specs.engine.expect import Tolerance, expect, expect_close
from specs.engine.registry import Family, Feature, record, rule
from specs.engine.script import Script
from specs.engine.sections import Section
from specs.families._canonical import leaf, program
from specs.generators.program import TensorSpec
from specs.generators.strategies import programs, tensors

FAMILY = Family(
    name="module-hooks",
    title="Module hooks",
    summary="nn.Module's full backward hooks and backward pre-hooks: when they run, what they receive, "
    "how they replace gradients, and what they refuse.",
    gallery="plot_89_module_hooks.py",
)


SAME = Tolerance(0.0, 0.0, "the module hooks add identity nodes only: the same formulas on the same values")
SECOND_ORDER = Tolerance(
    1e-12, 1e-13, "float64: an analytic second derivative against autograd's, rounded in another order"
)
#: Scaling by a power of two is exact, so c * g is compared bit for bit.
SCALES = st.sampled_from([2.0, 0.5, -4.0])

FULL_PRE_HOOK = Feature(
    "nn.Module.register_full_backward_pre_hook", lambda: hasattr(torch.nn.Module, "register_full_backward_pre_hook")
)

NO_INPUT_GRAD = WarningContract(
    UserWarning,
    r"Full backward hook is firing when gradients are computed with respect to module outputs "
    r"since no inputs require gradients",
)
NON_FULL_DEPRECATED = WarningContract(FutureWarning, r"Using a non-full backward hook .*is deprecated")
HOOK_COUNT = ErrorContract(
    RuntimeError, r"Backward hook returned an invalid number of grad_input, got \d+, but expected \d+", Phase.BACKWARD
)
PRE_HOOK_COUNT = ErrorContract(
    RuntimeError,
    r"Backward pre hook returned an invalid number of grad_output, got \d+, but expected \d+",
    Phase.BACKWARD,
)
WRAPPED_IN_PLACE = ErrorContract(
    RuntimeError,
    r"Output 0 of BackwardHookFunction(Backward)? is a view and is being modified inplace",
    Phase.RECORD,
    wording="names the wrapping node: BackwardHookFunction in 2.13",
)
MIXED_HOOKS = ErrorContract(
    RuntimeError, r"Cannot use both regular backward hooks and full backward hooks on a single Module", Phase.RECORD
)

#: The weight x0 scales the input x1, then sin: one weight, one input, two nodes.
CANONICAL = program((leaf(0.5, -1.0, 2.0), leaf(1.5, 0.25, -0.75)), "v0 = x0 * x1", "v1 = torch.sin(v0)")
MODULE_PROGRAMS = programs(min_leaves=2, max_ops=5, all_require_grad=True)
#: For rules where the module only supplies a graph to act on: small ones are enough.
SMALL_MODULES = programs(min_leaves=2, max_leaves=2, max_ops=3, all_require_grad=True)


def _module_script(program, *lines: str, two_outputs: bool = False, in_place: bool = False) -> Script:
    """The program as a module ``m`` whose weight is leaf x0 and whose inputs are the other leaves, then ``lines``."""
    return program.script(
        "class M(torch.nn.Module):",
        "    def __init__(self, weight):",
        "        super().__init__()",
        "        self.weight = weight",
        "    def forward(self, *xs):",
        *(["        xs[0].mul_(1.0)"] if in_place else []),
        "        out = program(self.weight, *xs)",
        "        return out, torch.sin(out)" if two_outputs else "        return out",
        "m = M(x0)",
        *lines,
    )


def _inputs(program, suffix: str = "") -> str:
    """The module's inputs (every leaf but the weight x0) as call arguments, each followed by ``suffix``."""
    return ", ".join(name + suffix for name in program.leaf_names[1:])


#: The loss weights of :func:`_cotangent`, as a script line.
COTANGENT = "w = torch.arange(out.numel(), dtype=out.dtype).remainder(5).sub(2).div(2).reshape(out.shape)"


def _cotangent(out):
    """Fixed weights in {-1, -1/2, 0, 1/2, 1}: exact, and different across entries."""
    return (torch.arange(out.numel(), dtype=out.dtype).remainder(5).sub(2).div(2)).reshape(out.shape)


def _plain(program):
    """Gradients of sum(out * cotangent) with respect to every leaf, with no hook anywhere."""
    leaves = program.inputs()
    out = program(*leaves)
    return list(torch.autograd.grad((out * _cotangent(out)).sum(), leaves, allow_unused=True))


@rule(
    "module-hooks.full-hook-sees-input-and-output-gradients",
    section=Section.PRACTICAL,
    docs="module-hooks-full",
    given=dict(program=MODULE_PROGRAMS),
    examples=(dict(program=CANONICAL),),
    references=(
        "docs: torch.nn.Module.register_full_backward_hook",
        "test_autograd.py::TestAutograd::test_backward_hook_relative_ordering",
    ),
)
def full_hook_sees_input_and_output_gradients(program):
    """A full backward hook is called once per backward with grad_input, the gradients with respect to the module's inputs, and grad_output, the gradients with respect to its outputs."""
    script = _module_script(
        program,
        "seen = []",
        "m.register_full_backward_hook(lambda m, gi, go: seen.append((gi, go)))",
        f"out = m({_inputs(program)})",
        COTANGENT,
        "(out * w).sum().backward()",
        "print(seen)",
    )
    ran = script.run()
    cotangent = _cotangent(ran.out)
    plain = _plain(program)
    expect(len(ran.seen) == 1, what="calls of the full backward hook", expected=1, observed=len(ran.seen), repro=script)
    grad_input, grad_output = ran.seen[0]
    inputs = len(program.leaves) - 1
    expect(
        len(grad_input) == inputs and len(grad_output) == 1,
        what="(len(grad_input), len(grad_output))",
        expected=(inputs, 1),
        observed=(len(grad_input), len(grad_output)),
        repro=script,
    )
    expect_close(grad_output[0], cotangent, tolerance=SAME, what="grad_output[0]: d loss / d output", repro=script)
    for i, g in enumerate(grad_input):
        expect_close(
            g,
            plain[i + 1],
            tolerance=SAME,
            what=f"grad_input[{i}], against the gradient for x{i + 1} without hooks",
            repro=script,
        )
    record("grad_input", [[round(v, 6) for v in g.flatten().tolist()] for g in grad_input])


@rule(
    "module-hooks.full-hook-return-replaces-grad-input",
    section=Section.PRACTICAL,
    docs="module-hooks-full",
    given=dict(program=MODULE_PROGRAMS, c=SCALES),
    examples=(dict(program=CANONICAL, c=2.0),),
    references=("docs: torch.nn.Module.register_full_backward_hook",),
)
def full_hook_return_replaces_grad_input(program, c):
    """A tuple returned by a full backward hook replaces grad_input: the module's inputs receive it, while the gradients of its weights, computed inside the module, are unchanged."""
    script = _module_script(
        program,
        f"m.register_full_backward_hook(lambda m, gi, go: tuple(None if g is None else g * {c} for g in gi))",
        f"out = m({_inputs(program)})",
        COTANGENT,
        "(out * w).sum().backward()",
        *program.print_grads,
    )
    ran = script.run()
    plain = _plain(program)
    expect_close(ran.m.weight.grad, plain[0], tolerance=SAME, what="the weight's gradient", repro=script)
    for i, name in enumerate(program.leaf_names[1:]):
        expect_close(
            ran[name].grad,
            plain[i + 1] * c,
            tolerance=SAME,
            what=f"{name}.grad with grad_input scaled by {c}",
            repro=script,
        )
    record("weight_grad", [round(v, 6) for v in ran.m.weight.grad.flatten().tolist()])


@rule(
    "module-hooks.pre-hook-replaces-grad-output",
    section=Section.PRACTICAL,
    docs="module-hooks-pre",
    since="2.0",
    requires=(FULL_PRE_HOOK,),
    given=dict(program=MODULE_PROGRAMS, c=SCALES),
    examples=(dict(program=CANONICAL, c=2.0),),
    references=("docs: torch.nn.Module.register_full_backward_pre_hook",),
)
def pre_hook_replaces_grad_output(program, c):
    """A tuple returned by a full backward pre-hook replaces grad_output before the module's backward runs: the full backward hook sees it, and the weights and inputs all get gradients scaled by it."""
    script = _module_script(
        program,
        "seen = []",
        f"m.register_full_backward_pre_hook(lambda m, go: tuple(g * {c} for g in go))",
        "m.register_full_backward_hook(lambda m, gi, go: seen.append(go[0].detach().clone()))",
        f"out = m({_inputs(program)})",
        COTANGENT,
        "(out * w).sum().backward()",
        "print(seen)",
        *program.print_grads,
    )
    ran = script.run()
    plain = _plain(program)
    expect_close(
        ran.seen[0],
        _cotangent(ran.out) * c,
        tolerance=SAME,
        what="grad_output seen by the full hook after the pre-hook",
        repro=script,
    )
    for i, name in enumerate(program.leaf_names):
        expect_close(
            ran[name].grad,
            plain[i] * c,
            tolerance=SAME,
            what=f"{name}.grad with grad_output scaled by {c}",
            repro=script,
        )
    record("x0_grad", [round(v, 6) for v in ran.m.weight.grad.flatten().tolist()])


@rule(
    "module-hooks.hooks-run-once-pre-hook-first",
    section=Section.PRACTICAL,
    docs="module-hooks-pre",
    since="2.0",
    requires=(FULL_PRE_HOOK,),
    given=dict(program=SMALL_MODULES, passes=st.integers(1, 3)),
    examples=(dict(program=CANONICAL, passes=2),),
    references=(
        "test_autograd.py::TestAutograd::test_backward_hook_relative_ordering",
        "docs: torch.nn.Module.register_full_backward_pre_hook",
    ),
)
def hooks_run_once_pre_hook_first(program, passes):
    """In each backward through a module, including every pass over a retained graph, its full backward pre-hook runs once and then its full backward hook once."""
    script = _module_script(
        program,
        "log = []",
        "m.register_full_backward_hook(lambda m, gi, go: log.append('hook'))",
        "m.register_full_backward_pre_hook(lambda m, go: log.append('pre-hook'))",
        f"inputs = [{_inputs(program)}]",
        "loss = torch.sin(m(*inputs)).sum()",
        f"for _ in range({passes}):",
        "    grads = torch.autograd.grad(loss, inputs, create_graph=True, retain_graph=True)",
        "single = list(log)",
        "print(single)",
        "torch.autograd.grad(sum(g.sum() for g in grads), inputs, allow_unused=True)",
        "print(log)",
    )
    ran = script.run()
    expected = ["pre-hook", "hook"] * passes
    expect(
        ran.single == expected,
        what=f"calls after {passes} backward passes",
        expected=expected,
        observed=ran.single,
        repro=script,
    )
    # Whether a double backward calls them again is module-hooks.double-backward-reruns-hooks-only-through-the-output.
    record("calls_in_double_backward", (len(ran.log) - len(expected)) // 2)
    record("log", expected)


#: Modules whose first-order gradient reaches the module's output (tanh under sin), or only its inputs (MSELoss).
DOUBLE_BACKWARD_PATHS = {
    "through-the-output": ("torch.nn.Tanh()", "torch.sin(m(x)).sum()"),
    "inputs-only": ("torch.nn.MSELoss()", "m(x, torch.zeros_like(x))"),
}


@rule(
    "module-hooks.double-backward-reruns-hooks-only-through-the-output",
    section=Section.PRACTICAL,
    docs="module-hooks-full",
    given=dict(
        spec=tensors(min_ndim=1, dtypes=(torch.float64,), layouts=("contiguous",), zero_size=False),
        path=st.sampled_from(sorted(DOUBLE_BACKWARD_PATHS)),
    ),
    examples=(
        dict(spec=TensorSpec((2,), torch.float64, "contiguous", (0.5, -1.0), True), path="inputs-only"),
        dict(spec=TensorSpec((2,), torch.float64, "contiguous", (0.5, -1.0), True), path="through-the-output"),
    ),
    references=(
        "test_autograd.py::TestAutograd::test_full_backward_hook_double_backward",
        "docs: torch.nn.Module.register_full_backward_hook",
    ),
)
def double_backward_reruns_hooks_only_through_the_output(spec, path):
    """A module's full backward hook runs once in a backward with create_graph=True; a double backward through that gradient runs it once more only when it passes through the module's output again (sin(tanh(x)): the first gradient uses the output), and not when the first gradient uses only the module's inputs (MSELoss: 2(x - y)/n), and the second-order gradients are unchanged by the hook."""
    module, loss_code = DOUBLE_BACKWARD_PATHS[path]
    x = spec.make()
    m = eval(module)  # noqa: S307 - one of the two module expressions above
    calls = []
    m.register_full_backward_hook(lambda mod, grad_input, grad_output: calls.append(len(grad_input)))
    loss = eval(loss_code)  # noqa: S307 - one of the two loss expressions above
    (first,) = torch.autograd.grad(loss, x, create_graph=True)
    once = len(calls)
    (second,) = torch.autograd.grad(first.sum(), x)
    repro = (
        f"import torch\nx = {spec.expression()}\nm = {module}\ncalls = []\n"
        "m.register_full_backward_hook(lambda mod, gi, go: calls.append('hook'))\n"
        f"(first,) = torch.autograd.grad({loss_code}, x, create_graph=True)\nprint(calls)\n"
        "torch.autograd.grad(first.sum(), x)\nprint(calls)"
    )
    again = 1 if path == "through-the-output" else 0
    expect(
        once == 1, what="hook calls in the first backward (create_graph=True)", expected=1, observed=once, repro=repro
    )
    expect(
        len(calls) - once == again,
        what=f"further hook calls in the double backward ({path})",
        expected=again,
        observed=len(calls) - once,
        repro=repro,
    )
    with torch.no_grad():
        t = torch.tanh(x)
        # d/dx of cos(tanh x)(1 - tanh² x), and of 2x/n.
        expected = (
            -torch.sin(t) * (1 - t * t) ** 2 - 2 * t * (1 - t * t) * torch.cos(t)
            if path == "through-the-output"
            else torch.full_like(x, 2.0 / x.numel())
        )
    expect_close(second, expected, tolerance=SECOND_ORDER, what=f"second-order gradient ({path})", repro=repro)
    record("hook calls (first backward, double backward)", [once, len(calls) - once])


@rule(
    "module-hooks.unused-output-gets-none",
    section=Section.PRACTICAL,
    docs="module-hooks-full",
    given=dict(program=SMALL_MODULES, used=st.sampled_from([0, 1])),
    examples=(dict(program=CANONICAL, used=0),),
    references=("docs: torch.nn.Module.register_full_backward_hook",),
)
def unused_output_gets_none(program, used):
    """When a module returns two tensors and the loss uses only one, the full backward hook's grad_output holds None for the other."""
    script = _module_script(
        program,
        "seen = []",
        "m.register_full_backward_hook(lambda m, gi, go: seen.append(tuple(g is None for g in go)))",
        f"m({_inputs(program)})[{used}].sum().backward()",
        "print(seen)",
        two_outputs=True,
    )
    seen = script.run().seen
    expected = (used != 0, used != 1)
    expect(
        seen == [expected], what="which grad_output entries are None", expected=[expected], observed=seen, repro=script
    )
    record("none_entries", list(seen[0]))


@rule(
    "module-hooks.no-input-gradient-warns",
    section=Section.PRACTICAL,
    docs="module-hooks-full",
    since="2.0",
    given=dict(program=programs(min_leaves=2, max_ops=5)),
    contracts=(NO_INPUT_GRAD,),
    examples=(dict(program=CANONICAL),),
    references=("docs: torch.nn.Module.register_full_backward_hook",),
)
def no_input_gradient_warns(program):
    """When none of a module's inputs requires grad, its full backward hook still runs, with None for every grad_input, and a UserWarning says so, while its weights get their usual gradients."""
    script = _module_script(
        program,
        "seen = []",
        "m.register_full_backward_hook(lambda m, gi, go: seen.append(gi))",
        f"m({_inputs(program, '.detach()')}).sum().backward()",
        "print(seen, x0.grad)",
    )
    ran = NO_INPUT_GRAD.check(script.run, repro=script)
    expect(
        len(ran.seen) == 1 and all(g is None for g in ran.seen[0]),
        what="grad_input",
        expected="all None",
        observed=ran.seen,
        repro=script,
    )
    plain = program.with_leaves(requires_grad=False).inputs()
    plain[0].requires_grad_()
    program(*plain).sum().backward()
    expect_close(ran.m.weight.grad, plain[0].grad, tolerance=SAME, what="the weight's gradient", repro=script)
    record("grad_input_len", len(ran.seen[0]))


@rule(
    "module-hooks.hooks-must-return-one-gradient-per-tensor",
    section=Section.PRACTICAL,
    docs="module-hooks-errors",
    since="2.0",
    requires=(FULL_PRE_HOOK,),
    given=dict(program=SMALL_MODULES, which=st.sampled_from(["hook", "pre-hook"]), extra=st.integers(1, 2)),
    contracts=(HOOK_COUNT, PRE_HOOK_COUNT),
    examples=(dict(program=CANONICAL, which="hook", extra=1),),
    references=("docs: torch.nn.Module.register_full_backward_hook",),
)
def hooks_must_return_one_gradient_per_tensor(program, which, extra):
    """A full backward hook or pre-hook returning more gradients than the module has inputs or outputs makes backward raise a RuntimeError."""
    register = (
        f"m.register_full_backward_hook(lambda m, gi, go: tuple(gi) + (None,) * {extra})"
        if which == "hook"
        else f"m.register_full_backward_pre_hook(lambda m, go: tuple(go) + (None,) * {extra})"
    )
    forward = _module_script(program, register, f"out = m({_inputs(program)})")
    run, backward, repro = forward.recorded_then("out.sum().backward()")
    contract = HOOK_COUNT if which == "hook" else PRE_HOOK_COUNT
    record("message", contract.check(run, backward=backward, repro=repro))


@rule(
    "module-hooks.wrapped-tensors-are-not-writable",
    section=Section.PRACTICAL,
    docs="module-hooks-errors",
    given=dict(program=SMALL_MODULES, where=st.sampled_from(["input", "output"])),
    contracts=(WRAPPED_IN_PLACE,),
    examples=(dict(program=CANONICAL, where="output"),),
    references=("docs: torch.nn.Module.register_full_backward_hook",),
)
def wrapped_tensors_are_not_writable(program, where):
    """With a full backward hook, the module's forward receives and returns tensors wrapped for the hook, and writing in place to either raises a RuntimeError."""
    script = _module_script(
        program,
        "m.register_full_backward_hook(lambda m, gi, go: None)",
        f"out = m({_inputs(program, ' * 1.0')})",
        "out.add_(1.0)",
        in_place=(where == "input"),
    )
    record("message", WRAPPED_IN_PLACE.check(lambda: script.run().out, repro=script))


@rule(
    "module-hooks.forward-hooks-run-inside-the-backward-hooks",
    section=Section.PRACTICAL,
    docs="module-hooks-forward",
    given=dict(program=MODULE_PROGRAMS, a=SCALES, b=SCALES),
    examples=(dict(program=CANONICAL, a=2.0, b=0.5),),
    references=("docs: torch.nn.Module.register_full_backward_hook", "docs: torch.nn.Module.register_forward_hook"),
)
def forward_hooks_run_inside_the_backward_hooks(program, a, b):
    """With a forward pre-hook scaling the inputs by a and a forward hook scaling the output by b, grad_output is taken at the output the forward hook returned and grad_input at the inputs the pre-hook returned."""
    script = _module_script(
        program,
        "seen = []",
        f"m.register_forward_pre_hook(lambda m, xs: tuple(x * {a} for x in xs))",
        f"m.register_forward_hook(lambda m, xs, out: out * {b})",
        "m.register_full_backward_hook(lambda m, gi, go: seen.append((gi, go)))",
        f"out = m({_inputs(program)})",
        COTANGENT,
        "(out * w).sum().backward()",
        "print(seen)",
        *program.print_grads,
    )
    ran = script.run()
    cotangent = _cotangent(ran.out)
    scaled = [x.detach() * a for x in program.inputs()[1:]]
    for x in scaled:
        x.requires_grad_()
    weight = program.inputs()[0]
    plain = torch.autograd.grad((program(weight, *scaled) * b * cotangent).sum(), scaled, allow_unused=True)
    grad_input, grad_output = ran.seen[0]
    expect_close(
        grad_output[0],
        cotangent,
        tolerance=SAME,
        what="grad_output: d loss / d (the forward hook's output)",
        repro=script,
    )
    for i, (g, p) in enumerate(zip(grad_input, plain)):
        name = program.leaf_names[i + 1]
        expect_close(g, p, tolerance=SAME, what=f"grad_input[{i}]: d loss / d ({name} * {a})", repro=script)
        expect_close(ran[name].grad, p * a, tolerance=SAME, what=f"{name}.grad", repro=script)
    record("grad_output", [round(v, 6) for v in grad_output[0].flatten().tolist()])


@rule(
    "module-hooks.non-full-hook-is-deprecated",
    section=Section.PRACTICAL,
    docs="module-hooks-legacy",
    given=dict(program=programs(min_leaves=2, max_leaves=2, min_ops=2, max_ops=3, all_require_grad=True)),
    contracts=(NON_FULL_DEPRECATED, MIXED_HOOKS),
    examples=(dict(program=CANONICAL),),
    references=("docs: torch.nn.Module.register_backward_hook",),
)
def non_full_hook_is_deprecated(program):
    """A module with a non-full register_backward_hook whose forward records several nodes emits a FutureWarning when called, and a module cannot have both a non-full and a full backward hook."""
    setup = _module_script(program, "m.register_backward_hook(lambda m, gi, go: None)")
    call = f"out = m({_inputs(program, ' * 1.0')})"
    mixed = "m.register_full_backward_hook(lambda m, gi, go: None)"
    seen = setup.run()
    NON_FULL_DEPRECATED.check(lambda: Script(call).run(**seen), repro=setup.then(call))
    record("mixed", MIXED_HOOKS.check(lambda: Script(mixed).run(**seen), repro=setup.then(call).then(mixed)))
