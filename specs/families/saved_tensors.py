"""Saved tensors: what a node keeps for backward, how to read it, and the hooks that store it."""

from __future__ import annotations

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
    name="saved-tensors",
    title="Saved tensors",
    summary="The tensors a node keeps for backward: the _saved_* attributes, per-tensor and default "
    "saved-tensor hooks, and the rules those hooks must follow.",
    gallery="plot_88_saved_tensors.py",
)


SAME = Tolerance(0.0, 0.0, "the same backward formulas on the same values")
#: Scaling by a power of two is exact, so c * g is compared bit for bit.
SCALES = st.sampled_from([2.0, 0.5, -4.0])

#: Programs for rules where the program only supplies a graph to act on: small ones are enough.
SMALL_PROGRAMS = programs(max_leaves=1, max_ops=3)

RAW_SAVED = Feature(
    "grad_fn._raw_saved_* with register_hooks",
    lambda: hasattr(torch._C._autograd, "SavedTensor") and hasattr(torch._C._autograd.SavedTensor, "register_hooks"),
)

HOOKS_ALREADY_SET = ErrorContract(
    RuntimeError, r"Calling register_hooks on a saved tensor whose hooks have already been set", Phase.RECORD
)
HOOKS_AFTER_FREE = ErrorContract(
    RuntimeError, r"Calling register_hooks on a saved tensor after it has been freed", Phase.SECOND_BACKWARD
)
PACK_MODIFIES_INPUT = ErrorContract(
    RuntimeError, r"A saved tensor pack hook is modifying its input in place", Phase.RECORD
)
UNPACK_NOT_A_TENSOR = ErrorContract(
    TypeError, r"Output of saved tensor unpack_hook expected to be a Tensor but got result of type", Phase.BACKWARD
)
DETACHED_SAVED = ErrorContract(
    RuntimeError, r"Trying to use a saved tensor that has been detached in-place", Phase.BACKWARD
)


CANONICAL = program(leaf(0.5, -1.0, 2.0), "v0 = torch.sin(x0)", "v1 = v0 * x0")
CANONICAL_32 = program(leaf(0.25, 1.5, dtype=torch.float32), "v0 = x0 * 2.0", "v1 = torch.tanh(v0)")


#: Repro lines for hooks-are-thread-local: saved-tensor hooks entered in one thread ("parent" or
#: "child") while the other thread records torch.tanh of the program.
THREAD_LOCAL_HOOKS = {
    "parent": """\
import threading

log, here = [], []
ready, done = threading.Event(), threading.Event()


def other_thread():
    ready.wait(10)
    torch.tanh($call)
    done.set()


thread = threading.Thread(target=other_thread)
thread.start()
with torch.autograd.graph.saved_tensors_hooks(lambda t: (log.append("parent"), t)[1], lambda t: t):
    ready.set()
    done.wait(10)
    torch.tanh($call)
    here.extend(log)
thread.join(10)
print(here, log)""",
    "child": """\
import threading

log, here = [], []
ready, done = threading.Event(), threading.Event()


def other_thread():
    with torch.autograd.graph.saved_tensors_hooks(lambda t: (log.append("child"), t)[1], lambda t: t):
        ready.set()
        done.wait(10)


thread = threading.Thread(target=other_thread)
thread.start()
ready.wait(10)
torch.tanh($call)
done.set()
thread.join(10)
print(here, log)""",
}


def _value(program, data, values):
    """A value that requires grad (a leaf that does, or any intermediate), drawn by name."""
    names = [n for n, v in values.items() if v.requires_grad]
    return names[-1] if data is None else data.draw(st.sampled_from(names), label="value")


#: Repro lines defining a pack hook that returns a numbered token, an unpack hook that returns the
#: tensor, and their log.
TOKEN_HOOKS = """\
log = {"packed": [], "unpacked": []}


def pack(t):
    log["packed"].append(len(log["packed"]))
    return log["packed"][-1], t


def unpack(token):
    log["unpacked"].append(token[0])
    return token[1]

"""


@rule(
    "saved-tensors.saved-input-is-the-tensor-itself",
    section=Section.PRACTICAL,
    docs="saved-attributes",
    given=dict(program=programs(max_ops=5), data=st.data()),
    examples=(dict(program=CANONICAL, data=None),),
    references=(
        "test_autograd.py::TestAutograd::test_no_unnecessary_unwrapping",
        "test_autograd.py::TestAutograd::test_grad_fn_attr_bindings",
        "docs: Autograd mechanics > Saved tensors",
    ),
)
def saved_input_is_the_tensor_itself(program, data):
    """When a node saves one of its inputs, its _saved_ attribute returns that very tensor object, (v ** 2).grad_fn._saved_self is v for a leaf or an intermediate v, and an input needed only for a gradient nobody needs is not saved (None)."""
    name = _value(program, data, program.trace(*program.inputs()))
    script = program.script(
        f"v = {name}",
        "square = v ** 2",
        "other = v.detach() * 2  # does not require grad",
        "product = v * other",
        "print(square.grad_fn._saved_self is v, product.grad_fn._saved_other is other, product.grad_fn._saved_self)",
        inline=True,
    )
    seen = script.run()
    v, square, other, product = seen.v, seen.square, seen.other, seen.product
    expect(
        square.grad_fn._saved_self is v,
        what=f"(v ** 2).grad_fn._saved_self is v for v = {name}",
        expected=True,
        observed=False,
        repro=script,
    )
    expect(
        product.grad_fn._saved_other is other,
        what="(v * other).grad_fn._saved_other is other",
        expected=True,
        observed=False,
        repro=script,
    )
    expect(
        product.grad_fn._saved_self is None,
        what="v saved by v * other, needed only for other's gradient",
        expected="None (other does not require grad)",
        observed=product.grad_fn._saved_self,
        repro=script,
    )
    record("saved_exponent", square.grad_fn._saved_exponent)
    record("raw_type", type(square.grad_fn._raw_saved_self).__name__)


@rule(
    "saved-tensors.saved-output-is-a-new-tensor",
    section=Section.PRACTICAL,
    docs="saved-attributes",
    given=dict(program=SMALL_PROGRAMS),
    examples=(dict(program=CANONICAL),),
    references=(
        "test_autograd.py::TestAutograd::test_no_unnecessary_unwrapping",
        "test_autograd.py::TestAutograd::test_saved_variable_version_counter",
        "docs: Autograd mechanics > Saved tensors",
    ),
)
def saved_output_is_a_new_tensor(program):
    """When a node saves its own output, as exp does, _saved_result is a different Python object from the output that shares its storage and its version counter."""
    script = program.script(
        "y = torch.exp(out)",
        "saved = y.grad_fn._saved_result",
        "print(saved is y, torch.equal(saved, y.detach()), saved.data_ptr() == y.data_ptr())",
        "with torch.no_grad():",
        "    y.mul_(1.0)",
        "print(saved._version, y._version)",
    )
    seen = script.run()
    y, saved = seen.y, seen.saved
    expect(
        saved is not y,
        what="_saved_result is not the output object",
        expected="a new object",
        observed="the output itself",
        repro=script,
    )
    expect(
        torch.equal(saved, y.detach()),
        what="_saved_result's values",
        expected="the output's",
        observed=saved,
        repro=script,
    )
    if y.numel():
        expect(
            saved.data_ptr() == y.data_ptr(),
            what="_saved_result shares the output's storage",
            expected=True,
            observed=False,
            repro=script,
        )
    expect(
        saved._version == y._version,
        what="version of _saved_result after y.mul_(1.0)",
        expected=y._version,
        observed=saved._version,
        repro=script,
    )
    record("same_object", saved is y)


@rule(
    "saved-tensors.per-tensor-hooks-pack-once-unpack-per-access",
    section=Section.BEYOND,
    docs="saved-per-tensor-hooks",
    requires=(RAW_SAVED,),
    given=dict(program=programs(max_ops=5), c=SCALES, reads=st.integers(0, 3)),
    examples=(dict(program=CANONICAL, c=2.0, reads=2),),
    references=(
        "test_autograd.py::TestAutograd::test_saved_tensor_constructor_with_hooks",
        "test_autograd.py::TestAutograd::test_saved_variable_packing_unpacking_saved_original_with_hooks",
        "docs: Autograd mechanics > Registering hooks for a saved tensor",
    ),
)
def per_tensor_hooks_pack_once_unpack_per_access(program, c, reads):
    """grad_fn._raw_saved_result.register_hooks(pack, unpack) calls pack once at registration and unpack on every read of _saved_result and once for backward, and backward uses what unpack returns."""
    script = program.script(
        "y = torch.exp(out)",
        "log = []",
        "y.grad_fn._raw_saved_result.register_hooks(lambda t: (log.append('pack'), t)[1],",
        f"                                           lambda t: (log.append('unpack'), t * {c})[1])",
        "registered = list(log)",
        f"reads = [y.grad_fn._saved_result for _ in range({reads})]",
        "read = list(log)",
        "(grad,) = torch.autograd.grad(y.sum(), [out])",
        "print(registered, read, log)",
        "print(grad)",
    )
    seen = script.run()
    expect(
        seen.registered == ["pack"],
        what="calls right after register_hooks",
        expected=["pack"],
        observed=seen.registered,
        repro=script,
    )
    for value in seen.reads:
        expect_close(value, c * seen.y.detach(), tolerance=SAME, what="_saved_result read through unpack", repro=script)
    expect(
        seen.read == ["pack"] + ["unpack"] * reads,
        what=f"calls after {reads} reads",
        expected=1 + reads,
        observed=seen.read,
        repro=script,
    )
    expect(
        seen.log == ["pack"] + ["unpack"] * (reads + 1),
        what="calls after backward",
        expected=2 + reads,
        observed=seen.log,
        repro=script,
    )
    expect_close(
        seen.grad,
        c * seen.y.detach(),
        tolerance=SAME,
        what=f"d sum(exp(out)) / d out with unpack returning {c} * t",
        repro=script,
    )
    record("calls", seen.log)


@rule(
    "saved-tensors.per-tensor-hooks-register-once-while-alive",
    section=Section.BEYOND,
    docs="saved-per-tensor-hooks",
    requires=(RAW_SAVED,),
    given=dict(program=SMALL_PROGRAMS),
    contracts=(HOOKS_ALREADY_SET, HOOKS_AFTER_FREE),
    examples=(dict(program=CANONICAL),),
    references=(
        "test_autograd.py::TestAutograd::test_custom_function_saved_tensors",
        "test_autograd.py::TestAutograd::test_grad_fn_attr_bindings",
    ),
)
def per_tensor_hooks_register_once_while_alive(program):
    """Registering hooks on a saved tensor that already has them raises a RuntimeError, and so does registering them after backward has freed it."""
    identity_hooks = "y.grad_fn._raw_saved_result.register_hooks(lambda t: t, lambda t: t)"
    twice = program.script("y = torch.exp(out)", identity_hooks, identity_hooks)
    record("twice", HOOKS_ALREADY_SET.check(twice.run, repro=twice))
    recorded, backward = program.script("y = torch.exp(out)"), "y.sum().backward()"
    record(
        "freed",
        HOOKS_AFTER_FREE.check(
            lambda: recorded.run().y,
            backward=lambda y: Script(backward).run(y=y),
            again=lambda y: Script(identity_hooks).run(y=y),
            repro=recorded.then(f"{backward}\n{identity_hooks}"),
        ),
    )


@rule(
    "saved-tensors.pack-once-per-save-unpack-once-per-use",
    section=Section.PRACTICAL,
    docs="saved-default-hooks",
    given=dict(program=programs(max_ops=5, all_require_grad=True)),
    examples=(dict(program=CANONICAL),),
    references=(
        "test_autograd.py::TestAutograd::test_unpack_hooks_exec_count",
        "docs: Autograd mechanics > Hooks for saved tensors",
    ),
)
def pack_once_per_save_unpack_once_per_use(program):
    """Under saved_tensors_hooks, one backward calls unpack exactly once for each object pack returned while the forward was recorded, and calls pack not at all."""
    # The program is called again under the hooks: the first call (out) only shows the plain program.
    script = program.script(
        TOKEN_HOOKS,
        "with torch.autograd.graph.saved_tensors_hooks(pack, unpack):",
        f"    loss = torch.tanh({program.call}).sum()",
        "packed = list(log['packed'])",
        "loss.backward()",
        "print(packed, log)",
    )
    seen = script.run()
    packed, log = seen.packed, seen.log
    expect(
        len(packed) >= 1,
        what="pack calls while recording (tanh saves its result)",
        expected=">= 1",
        observed=len(packed),
        repro=script,
    )
    expect(
        log["packed"] == packed,
        what="pack calls during backward",
        expected=0,
        observed=len(log["packed"]) - len(packed),
        repro=script,
    )
    expect(
        sorted(log["unpacked"]) == packed,
        what="tokens unpacked in backward, each once",
        expected=packed,
        observed=sorted(log["unpacked"]),
        repro=script,
    )
    record("packs", len(packed))


@rule(
    "saved-tensors.innermost-hooks-win",
    section=Section.BEYOND,
    docs="saved-default-hooks",
    given=dict(program=SMALL_PROGRAMS),
    examples=(dict(program=CANONICAL),),
    references=("test_autograd.py::TestAutograd::test_setting_default_saved_variable_hooks_twice_should_use_inner",),
)
def innermost_hooks_win(program):
    """With saved_tensors_hooks nested, only the innermost pair packs what is saved inside it, and the outer pair packs again once the inner context has exited."""
    # The program is called again under the hooks: the first call (out) only shows the plain program.
    script = program.script(
        "log = []",
        "hooks = torch.autograd.graph.saved_tensors_hooks",
        "with hooks(lambda t: (log.append('outer'), t)[1], lambda t: t):",
        "    with hooks(lambda t: (log.append('inner'), t)[1], lambda t: t):",
        f"        inner = torch.tanh({program.call})",
        "    middle = len(log)",
        "    torch.tanh(inner)",
        "print(log[:middle], log[middle:])",
    )
    seen = script.run()
    log, middle = seen.log, seen.middle
    expect(
        middle >= 1 and set(log[:middle]) == {"inner"},
        what="packs inside the inner context",
        expected="inner only",
        observed=log[:middle],
        repro=script,
    )
    expect(
        log[middle:] == ["outer"],
        what="packs after the inner context exited",
        expected=["outer"],
        observed=log[middle:],
        repro=script,
    )
    record("log", log)


@rule(
    "saved-tensors.hooks-are-thread-local",
    section=Section.BEYOND,
    docs="saved-default-hooks",
    given=dict(program=SMALL_PROGRAMS, where=st.sampled_from(["parent", "child"])),
    examples=(dict(program=CANONICAL, where="parent"),),
    references=(
        "test_autograd.py::TestMultithreadAutograd::test_dataparallel_saved_tensors_hooks",
        "docs: Autograd mechanics > Hooks for saved tensors",
    ),
)
def hooks_are_thread_local(program, where):
    """Saved-tensor hooks apply only in the thread that entered them: a graph recorded in another thread at the same time is not packed by them."""
    script = program.script(string.Template(THREAD_LOCAL_HOOKS[where]).substitute(call=program.call))
    seen = script.run()
    log, here = seen.log, seen.here
    expect(not seen.thread.is_alive(), what="the other thread finished", expected=True, observed=False, repro=script)
    if where == "parent":
        expect(
            here and set(here) == {"parent"},
            what="packs in the thread with hooks",
            expected="parent only",
            observed=here,
            repro=script,
        )
    expect(
        log == here,
        what="packs from the thread without hooks",
        expected=[],
        observed=log[len(here) :] if where == "parent" else log,
        repro=script,
    )
    record("packs_in_other_thread", len(log) - len(here))


@rule(
    "saved-tensors.pack-must-not-modify-its-input",
    section=Section.PRACTICAL,
    docs="saved-hook-rules",
    since="2.0",
    given=dict(program=SMALL_PROGRAMS),
    contracts=(PACK_MODIFIES_INPUT,),
    examples=(dict(program=CANONICAL),),
    references=(
        "test_autograd.py::TestAutograd::test_pack_hook_with_inplace_modification_should_fail",
        "docs: Autograd mechanics > Hooks for saved tensors",
    ),
)
def pack_must_not_modify_its_input(program):
    """A pack hook that modifies the tensor it receives in place makes the operation that saves it raise a RuntimeError."""
    recorded = program.script(
        "a = out * 1.0",
        "with torch.autograd.graph.saved_tensors_hooks(lambda t: t.add_(1.0), lambda t: t):",
        "    y = torch.tanh(a)",
    )
    record("message", PACK_MODIFIES_INPUT.check(recorded.run, repro=recorded))


@rule(
    "saved-tensors.unpack-must-return-a-tensor",
    section=Section.PRACTICAL,
    docs="saved-hook-rules",
    since="2.0",
    given=dict(program=SMALL_PROGRAMS, result=st.sampled_from(["text", 3, None])),
    contracts=(UNPACK_NOT_A_TENSOR,),
    examples=(dict(program=CANONICAL, result="text"),),
    references=("test_autograd.py::TestAutograd::test_saved_variable_packing_unpacking_saved_original_with_hooks",),
)
def unpack_must_return_a_tensor(program, result):
    """An unpack hook that returns something other than a tensor makes backward raise a TypeError."""
    # The indented line continues the with block that the program's call runs in.
    recorded = program.script(
        "    loss = torch.tanh(out).sum()",
        within=f"torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: {result!r})",
    )
    backward = "loss.backward()"
    record(
        "message",
        UNPACK_NOT_A_TENSOR.check(
            lambda: recorded.run().loss,
            backward=lambda loss: Script(backward).run(loss=loss),
            repro=recorded.then(backward),
        ),
    )


@rule(
    "saved-tensors.hook-exceptions-propagate",
    section=Section.PRACTICAL,
    docs="saved-hook-rules",
    given=dict(program=SMALL_PROGRAMS, which=st.sampled_from(["pack", "unpack"])),
    examples=(dict(program=CANONICAL, which="pack"), dict(program=CANONICAL, which="unpack")),
    references=("test_autograd.py::TestAutograd::test_saved_tensor_hooks_custom_error_propagation",),
)
def hook_exceptions_propagate(program, which):
    """An exception raised by a pack hook comes out of the forward operation, and one raised by an unpack hook comes out of backward, with its own type and message."""
    hooks = "fail, lambda t: t" if which == "pack" else "lambda t: t, fail"
    # The program is called again under the hooks: the first call (out) only shows the plain program.
    script = program.script(
        "",
        "",
        "class HookError(Exception):",
        "    pass",
        "",
        "",
        "def fail(t):",
        f"    raise HookError('from {which}')",
        "",
        "",
        "phase, error = 'forward', None",
        "try:",
        f"    with torch.autograd.graph.saved_tensors_hooks({hooks}):",
        f"        loss = torch.tanh({program.call}).sum()",
        "    phase = 'backward'",
        "    loss.backward()",
        "except HookError as caught:",
        "    error = caught",
        "print(phase, repr(error))",
    )
    seen = script.run()
    expect(
        seen.error is not None,
        what=f"the HookError raised by the {which} hook came out",
        expected=f"HookError('from {which}')",
        observed="no error",
        repro=script,
    )
    expected = "forward" if which == "pack" else "backward"
    expect(
        seen.phase == expected and str(seen.error) == f"from {which}",
        what=f"where the {which} hook's error came out",
        expected=f"HookError('from {which}') from {expected}",
        observed=f"HookError({str(seen.error)!r}) from {seen.phase}",
        repro=script,
    )
    record("phase", seen.phase)


@rule(
    "saved-tensors.hooks-pack-what-double-backward-saves",
    section=Section.BEYOND,
    docs="saved-default-hooks",
    since="2.0",
    given=dict(program=programs(max_ops=5, all_require_grad=True)),
    examples=(dict(program=CANONICAL),),
    references=("test_autograd.py::TestAutograd::test_default_saved_tensors_hooks_double_backward",),
)
def hooks_pack_what_double_backward_saves(program):
    """A backward with create_graph=True run inside saved_tensors_hooks packs the tensors its own graph saves, and the second backward unpacks them and gives the same second derivatives as without hooks."""
    leaves = ", ".join(program.leaf_names)
    second = f"second = torch.autograd.grad(sum(g.sum() for g in first), [{leaves}], allow_unused=True)"
    loss = "loss = torch.sin(out).sum()  # recorded outside the hooks"
    plain_leaves = program.inputs()
    first = torch.autograd.grad(torch.sin(program(*plain_leaves)).sum(), plain_leaves, create_graph=True)
    plain = torch.autograd.grad(sum(g.sum() for g in first), plain_leaves, allow_unused=True)
    script = program.script(
        TOKEN_HOOKS,
        loss,
        "with torch.autograd.graph.saved_tensors_hooks(pack, unpack):",
        f"    first = torch.autograd.grad(loss, [{leaves}], create_graph=True)",
        second,
        "print(log)",
        "print(second)",
    )
    seen = script.run()
    log = seen.log
    expect(
        len(log["packed"]) >= 1,
        what="packs during backward(create_graph=True) (sin's gradient saves its input)",
        expected=">= 1",
        observed=len(log["packed"]),
        repro=script,
    )
    expect(
        len(log["unpacked"]) >= 1 and set(log["unpacked"]) <= set(log["packed"]),
        what="the second backward unpacks what the first one packed",
        expected="some of the packed tokens",
        observed=log["unpacked"],
        repro=script,
    )
    for i, (p, h) in enumerate(zip(plain, seen.second)):
        expect_close(h, p, tolerance=SAME, what=f"second derivative for x{i} with identity hooks", repro=script)
    record("packs", len(log["packed"]))


@rule(
    "saved-tensors.detached-saved-input-is-refused",
    section=Section.PRACTICAL,
    docs="saved-hook-rules",
    since="2.0",
    given=dict(program=SMALL_PROGRAMS),
    contracts=(DETACHED_SAVED,),
    examples=(dict(program=CANONICAL),),
    references=("test_autograd.py::TestAutograd::test_saved_variable_saved_original_inplace_detach",),
)
def detached_saved_input_is_refused(program):
    """Detaching in place (detach_) a tensor that a node saved as its input makes backward raise a RuntimeError."""
    recorded = program.script("a = out * 1.0", "loss = (a ** 2).sum()  # pow saves its input a", "a.detach_()")
    backward = "loss.backward()"
    record(
        "message",
        DETACHED_SAVED.check(
            lambda: recorded.run().loss,
            backward=lambda loss: Script(backward).run(loss=loss),
            repro=recorded.then(backward),
        ),
    )


@rule(
    "saved-tensors.pack-sees-the-live-tensor",
    section=Section.PRACTICAL,
    docs="saved-default-hooks",
    given=dict(program=programs(max_ops=5), c=SCALES),
    examples=(dict(program=CANONICAL, c=2.0),),
    references=(
        "test_autograd.py::TestAutograd::test_wrapped_number_saved_tensors_hooks",
        "docs: Autograd mechanics > Hooks for saved tensors",
    ),
)
def pack_sees_the_live_tensor(program, c):
    """A pack hook runs with grad mode off and receives the saved tensor itself (a saved output with its grad_fn), and a Python number operand, as in out * c, is never packed."""
    script = program.script(
        "packed = []",
        "",
        "",
        "def pack(t):",
        "    packed.append((torch.is_grad_enabled(), t))",
        "    return t",
        "",
        "",
        "with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):",
        f"    scaled = out * {c}  # saves no tensor for the number",
        "    packs_for_number = len(packed)",
        "    y = torch.exp(scaled)  # saves its result y",
        "print(packs_for_number, [(grad_mode, t.grad_fn is y.grad_fn) for grad_mode, t in packed])",
    )
    seen = script.run()
    expect(
        seen.packs_for_number == 0,
        what=f"packs for out * {c}",
        expected=0,
        observed=seen.packs_for_number,
        repro=script,
    )
    expect(len(seen.packed) == 1, what="packs for exp", expected=1, observed=len(seen.packed), repro=script)
    grad_mode, packed = seen.packed[0]
    expect(not grad_mode, what="grad mode inside pack", expected=False, observed=grad_mode, repro=script)
    expect(
        packed.grad_fn is seen.y.grad_fn,
        what="the tensor pack receives is exp's output, with its grad_fn",
        expected=type(seen.y.grad_fn).__name__,
        observed=type(packed.grad_fn).__name__ if packed.grad_fn else None,
        repro=script,
    )
    record("grad_mode_in_pack", grad_mode)
