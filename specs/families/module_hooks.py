"""Module hooks: nn.Module's full backward hooks and pre-hooks, their errors, and forward hooks around them."""
from __future__ import annotations

import torch
from hypothesis import strategies as st

from specs.engine.contracts import ErrorContract, Phase, WarningContract
from specs.engine.expect import Tolerance, expect, expect_close
from specs.engine.sections import Section
from specs.engine.registry import Family, Feature, record, rule
from specs.families._canonical import leaf, program
from specs.generators.strategies import programs

FAMILY = Family(
    name="module-hooks",
    title="Module hooks",
    summary="nn.Module's full backward hooks and backward pre-hooks: when they run, what they receive, "
            "how they replace gradients, and what they refuse.",
    gallery="plot_89_module_hooks.py",
)


SAME = Tolerance(0.0, 0.0, "the module hooks add identity nodes only: the same formulas on the same values")
#: Scaling by a power of two is exact, so c * g is compared bit for bit.
SCALES = st.sampled_from([2.0, 0.5, -4.0])

FULL_PRE_HOOK = Feature("nn.Module.register_full_backward_pre_hook",
                        lambda: hasattr(torch.nn.Module, "register_full_backward_pre_hook"))

NO_INPUT_GRAD = WarningContract(
    UserWarning, r"Full backward hook is firing when gradients are computed with respect to module outputs "
    r"since no inputs require gradients")
NON_FULL_DEPRECATED = WarningContract(FutureWarning, r"Using a non-full backward hook .*is deprecated")
HOOK_COUNT = ErrorContract(
    RuntimeError, r"Backward hook returned an invalid number of grad_input, got \d+, but expected \d+",
    Phase.BACKWARD)
PRE_HOOK_COUNT = ErrorContract(
    RuntimeError, r"Backward pre hook returned an invalid number of grad_output, got \d+, but expected \d+",
    Phase.BACKWARD)
WRAPPED_IN_PLACE = ErrorContract(
    RuntimeError, r"Output 0 of BackwardHookFunction(Backward)? is a view and is being modified inplace", Phase.RECORD,
    wording="names the wrapping node: BackwardHookFunction in 2.13")
MIXED_HOOKS = ErrorContract(
    RuntimeError, r"Cannot use both regular backward hooks and full backward hooks on a single Module",
    Phase.RECORD)

#: The weight x0 scales the input x1, then sin: one weight, one input, two nodes.
CANONICAL = program((leaf(0.5, -1.0, 2.0), leaf(1.5, 0.25, -0.75)), "v0 = x0 * x1", "v1 = torch.sin(v0)")
MODULE_PROGRAMS = programs(min_leaves=2, max_ops=5, all_require_grad=True)
#: For rules where the module only supplies a graph to act on: small ones are enough.
SMALL_MODULES = programs(min_leaves=2, max_leaves=2, max_ops=3, all_require_grad=True)


class ProgramModule(torch.nn.Module):
    """``forward(*inputs) = program(weight, *inputs)``: leaf x0 is the module's weight, the others its inputs."""

    def __init__(self, program, weight, two_outputs=False, in_place=False):
        super().__init__()
        self.program, self.weight, self.two_outputs, self.in_place = program, weight, two_outputs, in_place

    def forward(self, *inputs):
        if self.in_place:
            inputs[0].mul_(1.0)
        out = self.program(self.weight, *inputs)
        return (out, torch.sin(out)) if self.two_outputs else out


def _module(program, **options):
    leaves = program.inputs()
    return ProgramModule(program, leaves[0], **options), leaves[1:]


def _cotangent(out):
    """Fixed weights in {-1, -1/2, 0, 1/2, 1}: exact, and different across entries."""
    return (torch.arange(out.numel(), dtype=out.dtype).remainder(5).sub(2).div(2)).reshape(out.shape)


def _plain(program):
    """Gradients of sum(out * cotangent) with respect to every leaf, with no hook anywhere."""
    leaves = program.inputs()
    out = program(*leaves)
    return list(torch.autograd.grad((out * _cotangent(out)).sum(), leaves, allow_unused=True))


def _clone(grads):
    return [None if g is None else g.detach().clone() for g in grads]


REPRO_MODULE = ("class M(torch.nn.Module):",
                "    def forward(self, *xs): return program(x0, *xs)  # x0 is the weight",
                "m = M()")


@rule("module-hooks.full-hook-sees-input-and-output-gradients", section=Section.PRACTICAL, docs="module-hooks-full",
      given=dict(program=MODULE_PROGRAMS), examples=(dict(program=CANONICAL),),
      references=("docs: torch.nn.Module.register_full_backward_hook",
                  "test_autograd.py::TestAutograd::test_backward_hook_relative_ordering"))
def full_hook_sees_input_and_output_gradients(program):
    """A full backward hook is called once per backward with grad_input, the gradients with respect to the module's inputs, and grad_output, the gradients with respect to its outputs."""
    module, inputs = _module(program)
    seen = []
    module.register_full_backward_hook(lambda m, gi, go: seen.append((_clone(gi), _clone(go))))
    out = module(*inputs)
    cotangent = _cotangent(out)
    (out * cotangent).sum().backward()
    plain = _plain(program)
    repro = program.repro(*REPRO_MODULE, "m.register_full_backward_hook(lambda m, gi, go: print(gi, go))",
                          "(m(x1, ...) * w).sum().backward()")
    expect(len(seen) == 1, what="calls of the full backward hook", expected=1, observed=len(seen), repro=repro)
    grad_input, grad_output = seen[0]
    expect(len(grad_input) == len(inputs) and len(grad_output) == 1, what="(len(grad_input), len(grad_output))",
           expected=(len(inputs), 1), observed=(len(grad_input), len(grad_output)), repro=repro)
    expect_close(grad_output[0], cotangent, tolerance=SAME, what="grad_output[0]: d loss / d output", repro=repro)
    for i, g in enumerate(grad_input):
        expect_close(g, plain[i + 1], tolerance=SAME, what=f"grad_input[{i}], against the gradient for x{i + 1} without hooks", repro=repro)
    record("grad_input", [[round(v, 6) for v in g.flatten().tolist()] for g in grad_input])


@rule("module-hooks.full-hook-return-replaces-grad-input", section=Section.PRACTICAL, docs="module-hooks-full",
      given=dict(program=MODULE_PROGRAMS, c=SCALES), examples=(dict(program=CANONICAL, c=2.0),),
      references=("docs: torch.nn.Module.register_full_backward_hook",))
def full_hook_return_replaces_grad_input(program, c):
    """A tuple returned by a full backward hook replaces grad_input: the module's inputs receive it, while the gradients of its weights, computed inside the module, are unchanged."""
    module, inputs = _module(program)
    module.register_full_backward_hook(lambda m, gi, go: tuple(None if g is None else g * c for g in gi))
    out = module(*inputs)
    (out * _cotangent(out)).sum().backward()
    plain = _plain(program)
    repro = program.repro(*REPRO_MODULE,
                          f"m.register_full_backward_hook(lambda m, gi, go: tuple(g * {c} for g in gi))",
                          "(m(x1, ...) * w).sum().backward()")
    expect_close(module.weight.grad, plain[0], tolerance=SAME, what="the weight's gradient", repro=repro)
    for i, x in enumerate(inputs):
        expect_close(x.grad, plain[i + 1] * c, tolerance=SAME, what=f"x{i + 1}.grad with grad_input scaled by {c}", repro=repro)
    record("weight_grad", [round(v, 6) for v in module.weight.grad.flatten().tolist()])


@rule("module-hooks.pre-hook-replaces-grad-output", section=Section.PRACTICAL, docs="module-hooks-pre", since="2.0",
      requires=(FULL_PRE_HOOK,), given=dict(program=MODULE_PROGRAMS, c=SCALES),
      examples=(dict(program=CANONICAL, c=2.0),),
      references=("docs: torch.nn.Module.register_full_backward_pre_hook",))
def pre_hook_replaces_grad_output(program, c):
    """A tuple returned by a full backward pre-hook replaces grad_output before the module's backward runs: the full backward hook sees it, and the weights and inputs all get gradients scaled by it."""
    module, inputs = _module(program)
    seen = []
    module.register_full_backward_pre_hook(lambda m, go: tuple(g * c for g in go))
    module.register_full_backward_hook(lambda m, gi, go: seen.append(go[0].detach().clone()))
    out = module(*inputs)
    cotangent = _cotangent(out)
    (out * cotangent).sum().backward()
    plain = _plain(program)
    repro = program.repro(*REPRO_MODULE,
                          f"m.register_full_backward_pre_hook(lambda m, go: tuple(g * {c} for g in go))",
                          "(m(x1, ...) * w).sum().backward()")
    expect_close(seen[0], cotangent * c, tolerance=SAME, what="grad_output seen by the full hook after the pre-hook", repro=repro)
    for i, x in enumerate([module.weight, *inputs]):
        expect_close(x.grad, plain[i] * c, tolerance=SAME, what=f"x{i}.grad with grad_output scaled by {c}", repro=repro)
    record("x0_grad", [round(v, 6) for v in module.weight.grad.flatten().tolist()])


@rule("module-hooks.hooks-run-once-pre-hook-first", section=Section.PRACTICAL, docs="module-hooks-pre", since="2.0",
      requires=(FULL_PRE_HOOK,), given=dict(program=SMALL_MODULES, passes=st.integers(1, 3)),
      examples=(dict(program=CANONICAL, passes=2),),
      references=("test_autograd.py::TestAutograd::test_backward_hook_relative_ordering",
                  "docs: torch.nn.Module.register_full_backward_pre_hook"))
def hooks_run_once_pre_hook_first(program, passes):
    """In each backward through a module, including every pass over a retained graph, its full backward pre-hook runs once and then its full backward hook once."""
    module, inputs = _module(program)
    log = []
    module.register_full_backward_hook(lambda m, gi, go: log.append("hook"))
    module.register_full_backward_pre_hook(lambda m, go: log.append("pre-hook"))
    loss = torch.sin(module(*inputs)).sum()
    for _ in range(passes):
        grads = torch.autograd.grad(loss, inputs, create_graph=True, retain_graph=True)
    repro = program.repro(*REPRO_MODULE, "# register a full backward hook and pre-hook that log their calls",
                          f"# {passes} x torch.autograd.grad(sin(m(x1, ...)).sum(), [x1, ...], retain_graph=True)")
    expected = ["pre-hook", "hook"] * passes
    expect(log == expected, what=f"calls after {passes} backward passes", expected=expected, observed=log, repro=repro)
    # Whether a double backward calls them again depends on whether it differentiates through the
    # module's backward once more (test_full_backward_hook_double_backward pins one case): recorded only.
    torch.autograd.grad(sum(g.sum() for g in grads), inputs, allow_unused=True)
    record("calls_in_double_backward", (len(log) - len(expected)) // 2)
    record("log", expected)


@rule("module-hooks.unused-output-gets-none", section=Section.PRACTICAL, docs="module-hooks-full",
      given=dict(program=SMALL_MODULES, used=st.sampled_from([0, 1])),
      examples=(dict(program=CANONICAL, used=0),),
      references=("docs: torch.nn.Module.register_full_backward_hook",))
def unused_output_gets_none(program, used):
    """When a module returns two tensors and the loss uses only one, the full backward hook's grad_output holds None for the other."""
    module, inputs = _module(program, two_outputs=True)
    seen = []
    module.register_full_backward_hook(lambda m, gi, go: seen.append(tuple(g is None for g in go)))
    module(*inputs)[used].sum().backward()
    expected = (used != 0, used != 1)
    expect(seen == [expected], what="which grad_output entries are None", expected=[expected], observed=seen,
           repro=program.repro(*REPRO_MODULE, "# forward returns (out, torch.sin(out))",
                         f"m(x1, ...)[{used}].sum().backward()"))
    record("none_entries", list(seen[0]))


@rule("module-hooks.no-input-gradient-warns", section=Section.PRACTICAL, docs="module-hooks-full", since="2.0",
      given=dict(program=programs(min_leaves=2, max_ops=5)), contracts=(NO_INPUT_GRAD,),
      examples=(dict(program=CANONICAL),),
      references=("docs: torch.nn.Module.register_full_backward_hook",))
def no_input_gradient_warns(program):
    """When none of a module's inputs requires grad, its full backward hook still runs, with None for every grad_input, and a UserWarning says so, while its weights get their usual gradients."""
    leaves = program.inputs()
    weight = leaves[0]
    inputs = [x.detach() for x in leaves[1:]]
    module = ProgramModule(program, weight)
    seen = []
    module.register_full_backward_hook(lambda m, gi, go: seen.append(gi))
    repro = program.repro(*REPRO_MODULE, "m.register_full_backward_hook(print)",
                          "m(x1.detach(), ...).sum().backward()")
    NO_INPUT_GRAD.check(lambda: module(*inputs).sum().backward(), repro=repro)
    expect(len(seen) == 1 and all(g is None for g in seen[0]), what="grad_input", expected="all None", observed=seen, repro=repro)
    plain = program.with_leaves(requires_grad=False).inputs()
    plain[0].requires_grad_()
    program(*plain).sum().backward()
    expect_close(weight.grad, plain[0].grad, tolerance=SAME, what="the weight's gradient", repro=repro)
    record("grad_input_len", len(seen[0]))


@rule("module-hooks.hooks-must-return-one-gradient-per-tensor", section=Section.PRACTICAL, docs="module-hooks-errors",
      since="2.0", requires=(FULL_PRE_HOOK,),
      given=dict(program=SMALL_MODULES, which=st.sampled_from(["hook", "pre-hook"]), extra=st.integers(1, 2)),
      contracts=(HOOK_COUNT, PRE_HOOK_COUNT), examples=(dict(program=CANONICAL, which="hook", extra=1),),
      references=("docs: torch.nn.Module.register_full_backward_hook",))
def hooks_must_return_one_gradient_per_tensor(program, which, extra):
    """A full backward hook or pre-hook returning more gradients than the module has inputs or outputs makes backward raise a RuntimeError."""
    def recorded():
        module, inputs = _module(program)
        if which == "hook":
            module.register_full_backward_hook(lambda m, gi, go: tuple(gi) + (None,) * extra)
        else:
            module.register_full_backward_pre_hook(lambda m, go: tuple(go) + (None,) * extra)
        return module(*inputs)

    contract = HOOK_COUNT if which == "hook" else PRE_HOOK_COUNT
    record("message", contract.check(recorded, backward=lambda out: out.sum().backward(), repro=program.repro(
        *REPRO_MODULE, f"# a full backward {which} returning {extra} gradient(s) too many",
        "m(x1, ...).sum().backward()")))


@rule("module-hooks.wrapped-tensors-are-not-writable", section=Section.PRACTICAL, docs="module-hooks-errors",
      given=dict(program=SMALL_MODULES, where=st.sampled_from(["input", "output"])),
      contracts=(WRAPPED_IN_PLACE,), examples=(dict(program=CANONICAL, where="output"),),
      references=("docs: torch.nn.Module.register_full_backward_hook",))
def wrapped_tensors_are_not_writable(program, where):
    """With a full backward hook, the module's forward receives and returns tensors wrapped for the hook, and writing in place to either raises a RuntimeError."""
    def recorded():
        module, inputs = _module(program, in_place=(where == "input"))
        module.register_full_backward_hook(lambda m, gi, go: None)
        out = module(*[x * 1.0 for x in inputs])
        out.add_(1.0)
        return out

    record("message", WRAPPED_IN_PLACE.check(recorded, repro=program.repro(
        *REPRO_MODULE, "m.register_full_backward_hook(lambda m, gi, go: None)",
        "# inside forward: xs[0].mul_(1.0)" if where == "input" else "m(x1 * 1.0, ...).add_(1.0)")))


@rule("module-hooks.forward-hooks-run-inside-the-backward-hooks", section=Section.PRACTICAL, docs="module-hooks-forward",
      given=dict(program=MODULE_PROGRAMS, a=SCALES, b=SCALES), examples=(dict(program=CANONICAL, a=2.0, b=0.5),),
      references=("docs: torch.nn.Module.register_full_backward_hook",
                  "docs: torch.nn.Module.register_forward_hook"))
def forward_hooks_run_inside_the_backward_hooks(program, a, b):
    """With a forward pre-hook scaling the inputs by a and a forward hook scaling the output by b, grad_output is taken at the output the forward hook returned and grad_input at the inputs the pre-hook returned."""
    module, inputs = _module(program)
    seen = []
    module.register_forward_pre_hook(lambda m, args: tuple(x * a for x in args))
    module.register_forward_hook(lambda m, args, out: out * b)
    module.register_full_backward_hook(lambda m, gi, go: seen.append((_clone(gi), _clone(go))))
    out = module(*inputs)
    cotangent = _cotangent(out)
    (out * cotangent).sum().backward()
    scaled = [x.detach() * a for x in inputs]
    for x in scaled:
        x.requires_grad_()
    w = program.inputs()[0]
    plain = torch.autograd.grad((program(w, *scaled) * b * cotangent).sum(), scaled, allow_unused=True)
    repro = program.repro(*REPRO_MODULE, f"m.register_forward_pre_hook(lambda m, xs: tuple(x * {a} for x in xs))",
                          f"m.register_forward_hook(lambda m, xs, out: out * {b})",
                          "m.register_full_backward_hook(lambda m, gi, go: print(gi, go))",
                          "(m(x1, ...) * w).sum().backward()")
    grad_input, grad_output = seen[0]
    expect_close(grad_output[0], cotangent, tolerance=SAME, what="grad_output: d loss / d (the forward hook's output)", repro=repro)
    for i, (g, p) in enumerate(zip(grad_input, plain)):
        expect_close(g, p, tolerance=SAME, what=f"grad_input[{i}]: d loss / d (x{i + 1} * {a})", repro=repro)
        expect_close(inputs[i].grad, p * a, tolerance=SAME, what=f"x{i + 1}.grad", repro=repro)
    record("grad_output", [round(v, 6) for v in grad_output[0].flatten().tolist()])


@rule("module-hooks.non-full-hook-is-deprecated", section=Section.PRACTICAL, docs="module-hooks-legacy",
      given=dict(program=programs(min_leaves=2, max_leaves=2, min_ops=2, max_ops=3, all_require_grad=True)),
      contracts=(NON_FULL_DEPRECATED, MIXED_HOOKS), examples=(dict(program=CANONICAL),),
      references=("docs: torch.nn.Module.register_backward_hook",))
def non_full_hook_is_deprecated(program):
    """A module with a non-full register_backward_hook whose forward records several nodes emits a FutureWarning when called, and a module cannot have both a non-full and a full backward hook."""
    module, inputs = _module(program)
    module.register_backward_hook(lambda m, gi, go: None)
    repro = program.repro(*REPRO_MODULE, "m.register_backward_hook(lambda m, gi, go: None)", "m(x1, ...)")
    NON_FULL_DEPRECATED.check(lambda: module(*[x * 1.0 for x in inputs]), repro=repro)
    record("mixed", MIXED_HOOKS.check(lambda: module.register_full_backward_hook(lambda m, gi, go: None),
                                      repro=repro + "m.register_full_backward_hook(lambda m, gi, go: None)\n"))
