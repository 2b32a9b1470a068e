"""Grad modes and detach: ``no_grad``, ``enable_grad``, ``set_grad_enabled``, ``inference_mode``,
``detach()`` and ``.data``."""

from __future__ import annotations

import threading

import torch
from hypothesis import strategies as st

from specs.engine.contracts import ErrorContract, Phase, WarningContract
from specs.engine.expect import EXACT, Tolerance, expect, expect_close
from specs.engine.registry import Change, Family, observe, record, rule
from specs.engine.sections import Section
from specs.engine.versions import at_least
from specs.generators.strategies import programs, tensors

FAMILY = Family(
    name="grad-modes",
    title="Grad modes and detach",
    summary="Turning recording off (no_grad, set_grad_enabled, inference_mode) and taking tensors "
    "out of the graph (detach, .data).",
    gallery="plot_30_grad_modes.py",
)


#: Two runs of the same program differ only by the order of float sums in another layout.
ROUNDOFF = {
    torch.float32: Tolerance(1e-5, 1e-6, "float32: the same operations on copies in another memory layout"),
    torch.float64: Tolerance(1e-12, 1e-13, "float64: the same operations on copies in another memory layout"),
}

INFERENCE_SAVED = ErrorContract(RuntimeError, r"Inference tensors cannot be saved for backward", Phase.RECORD)
INFERENCE_IN_PLACE = ErrorContract(
    RuntimeError,
    r"Inplace update to inference tensor outside InferenceMode is not allowed",
    Phase.RECORD,
    wording="the message lacks spaces after its periods ('allowed.You can')",
)
LEAF_IN_PLACE = ErrorContract(
    RuntimeError, r"a leaf Variable that requires grad is being used in an in-place operation", Phase.RECORD
)
SAVED_MODIFIED = ErrorContract(
    RuntimeError,
    r"one of the variables needed for gradient computation has been modified by an inplace operation: "
    r".*output 0 of Exp(Backward0)?\b",
    Phase.BACKWARD,
    wording="2.13 names the forward op ('output 0 of Exp'); older releases the node ('ExpBackward0')",
)
NO_GRAD_VIEW = ErrorContract(
    RuntimeError,
    r"A view was created in no_grad mode and is being modified inplace with grad mode enabled",
    Phase.RECORD,
)

CLASS_DECORATION_PATTERN = r"Decorating classes is deprecated and will be disabled in future versions"
#: The category from 2.4 on; before, warnings.warn's default (see the rule's history).
CLASS_DECORATION = WarningContract(FutureWarning, CLASS_DECORATION_PATTERN)
CLASS_DECORATION_BEFORE_2_4 = WarningContract(UserWarning, CLASS_DECORATION_PATTERN)

MODES = ("no_grad", "inference_mode", "set_grad_enabled(False)")


def _mode(name: str):
    if name == "no_grad":
        return torch.no_grad()
    if name == "inference_mode":
        return torch.inference_mode()
    if name == "set_grad_enabled(False)":
        return torch.set_grad_enabled(False)
    return torch.enable_grad()


def _untracked(values: dict, program, what: str, within: str) -> None:
    for name, value in values.items():
        if name in program.leaf_names:
            continue
        # A view keeps its base's requires_grad flag (see no-grad-views-have-no-history).
        flag = value.requires_grad and not value._is_view()
        expect(
            not flag and value.grad_fn is None,
            what=f"{name} computed {what} is not recorded",
            expected="grad_fn=None (and requires_grad=False unless a view)",
            observed=(value.requires_grad, value.grad_fn),
            repro=program.repro(f"print({name}.requires_grad, {name}.grad_fn)", inline=True, within=within),
        )


def _writable(tensor: torch.Tensor) -> bool:
    """False for tensors in which several elements share memory (expanded views refuse in-place ops)."""
    return all(stride != 0 or size <= 1 for size, stride in zip(tensor.shape, tensor.stride()))


@rule(
    "grad-modes.no-grad-records-nothing",
    section=Section.EXCLUDING,
    docs="grad-modes-no-grad",
    given=dict(program=programs(), mode=st.sampled_from(MODES)),
    references=(
        "test_autograd.py::TestAutograd::test_no_grad",
        "docs: Autograd mechanics > Locally disabling gradient computation > No-grad Mode",
    ),
)
def no_grad_records_nothing(program, mode):
    """A program run with grad mode off (no_grad, set_grad_enabled(False), inference_mode) records no graph and computes the same values as with grad mode on."""
    leaves = program.inputs()
    recorded = program.trace(*leaves)
    with _mode(mode):
        plain = program.trace(*leaves)
    _untracked(plain, program, f"under {mode}", f"torch.{mode if '(' in mode else mode + '()'}")
    for name, value in plain.items():
        expect_close(
            value,
            recorded[name],
            tolerance=EXACT,
            what=f"{name} under {mode} against grad mode",
            repro=program.repro(f"with torch.{mode}():", f"    print(program({', '.join(program.leaf_names)}))"),
        )


@rule(
    "grad-modes.no-grad-decorates-functions",
    section=Section.EXCLUDING,
    docs="grad-modes-decorators",
    given=dict(program=programs(), mode=st.sampled_from(["no_grad", "inference_mode"])),
    references=("test_autograd.py::TestAutograd::test_no_grad",),
)
def no_grad_decorates_functions(program, mode):
    """torch.no_grad() and torch.inference_mode() used as decorators turn recording off while the decorated function runs, and restore grad mode when it returns."""
    decorated = _mode(mode)(program.function())
    out = decorated(*program.inputs())
    expect(
        out.grad_fn is None,
        what=f"result of a @torch.{mode}() function is not recorded",
        expected=None,
        observed=out.grad_fn,
        repro=program.repro(
            f"decorated = torch.{mode}()(program)", f"print(decorated({', '.join(program.leaf_names)}).grad_fn)"
        ),
    )
    expect(
        torch.is_grad_enabled(), what="grad mode after the decorated function returned", expected=True, observed=False
    )


@rule(
    "grad-modes.decorators-without-parentheses",
    section=Section.EXCLUDING,
    docs="grad-modes-decorators",
    since="2.1",
    given=dict(program=programs(), mode=st.sampled_from(["no_grad", "enable_grad", "inference_mode"])),
    history=(Change("2.1", "the grad-mode classes had to be instantiated to decorate: @torch.no_grad()"),),
    references=("test_autograd.py::TestAutograd::test_enable_grad_decorator_no_paren",),
)
def decorators_without_parentheses(program, mode):
    """Since torch 2.1, @torch.no_grad, @torch.enable_grad and @torch.inference_mode work without parentheses, like their instantiated forms."""
    decorated = getattr(torch, mode)(program.function())
    leaves = program.inputs()
    with torch.no_grad():
        out = decorated(*leaves)
    tracked = mode == "enable_grad"
    expect(
        (out.grad_fn is not None) == tracked,
        what=f"result of a @torch.{mode} function (called under no_grad) has a grad_fn",
        expected=tracked,
        observed=out.grad_fn is not None,
        repro=program.repro(
            f"decorated = torch.{mode}(program)",
            "with torch.no_grad():",
            f"    print(decorated({', '.join(program.leaf_names)}).grad_fn)",
        ),
    )
    expect_close(out, program(*leaves), tolerance=EXACT, what=f"@torch.{mode} does not change the values")


@rule(
    "grad-modes.generators-switch-per-step",
    section=Section.EXCLUDING,
    docs="grad-modes-decorators",
    given=dict(program=programs(), steps=st.integers(1, 3)),
    references=("test_autograd.py::TestAutograd::test_set_grad_generator_functions",),
)
def generators_switch_per_step(program, steps):
    """A generator decorated with torch.no_grad() runs its body with grad mode off, while its caller keeps grad mode on between the yields."""

    @torch.no_grad()
    def generate(leaves):
        for _ in range(steps):
            yield torch.is_grad_enabled(), program(*leaves)

    leaves = program.inputs()
    for inside, out in generate(leaves):
        expect(not inside, what="grad mode inside the generator body", expected=False, observed=inside)
        expect(
            out.grad_fn is None,
            what="a value yielded from the no_grad generator is not recorded",
            expected=None,
            observed=out.grad_fn,
            repro=program.repro(
                "@torch.no_grad()",
                "def generate():",
                f"    for _ in range({steps}):",
                f"        yield torch.is_grad_enabled(), {program.call}",
                "for inside, value in generate():",
                "    print(inside, value.grad_fn, torch.is_grad_enabled())",
            ),
        )
        expect(torch.is_grad_enabled(), what="grad mode of the caller between yields", expected=True, observed=False)
        expect(
            program(*leaves).grad_fn is not None,
            what="the caller records between yields",
            expected=True,
            observed=False,
        )


@rule(
    "grad-modes.coroutines-keep-mode-across-send-throw-close",
    section=Section.EXCLUDING,
    docs="grad-modes-decorators",
    given=dict(
        program=programs(),
        mode=st.sampled_from(["no_grad", "enable_grad"]),
        steps=st.lists(st.sampled_from(["send", "throw"]), min_size=1, max_size=4),
    ),
    examples=(dict(program=None, mode="no_grad", steps=["send", "throw"]),),
    references=("test_autograd.py::TestAutograd::test_set_grad_coroutines",),
)
def coroutines_keep_mode_across_send_throw_close(program, mode, steps):
    """A generator decorated with torch.no_grad() or torch.enable_grad() runs with that mode at every resumption, by next(), send() or throw(), and in its cleanup on close(); the caller keeps its own mode between them, and values sent in arrive unchanged."""
    outer = mode != "enable_grad"
    recording = mode == "enable_grad"
    cleanup: list[bool] = []
    if program is None:
        leaves, run = (torch.ones(2, requires_grad=True),), lambda t: t * 2
    else:
        leaves, run = program.inputs(), program.function()

    @_mode(mode)
    def coroutine():
        received = None
        try:
            while True:
                try:
                    received = yield torch.is_grad_enabled(), received, run(*leaves)
                except ValueError:
                    received = "thrown"
        finally:
            cleanup.append(torch.is_grad_enabled())

    lines = (
        f"@torch.{mode}()",
        "def coroutine():",
        "    received = None",
        "    try:",
        "        while True:",
        "            try:",
        f"                received = yield torch.is_grad_enabled(), received, {program.call if program else 't * 2'}",
        "            except ValueError:",
        "                received = 'thrown'",
        "    finally:",
        "        print('cleanup', torch.is_grad_enabled())",
        f"with torch.set_grad_enabled({outer}):",
        "    c = coroutine()",
        "    print(next(c), torch.is_grad_enabled())",
        *(
            f"    print(c.send({k}), torch.is_grad_enabled())"
            if step == "send"
            else "    print(c.throw(ValueError()), torch.is_grad_enabled())"
            for k, step in enumerate(steps)
        ),
        "    c.close()",
        "    print(torch.is_grad_enabled())",
    )
    repro = (
        program.repro(*lines)
        if program is not None
        else "import torch\nt = torch.ones(2, requires_grad=True)\n" + "\n".join(lines)
    )
    seen = []
    with torch.set_grad_enabled(outer):
        c = coroutine()
        answers = [("next", None, next(c), torch.is_grad_enabled())]
        for k, step in enumerate(steps):
            sent = k if step == "send" else "thrown"
            answer = c.send(k) if step == "send" else c.throw(ValueError())
            answers.append((step, sent, answer, torch.is_grad_enabled()))
        c.close()
        after_close = torch.is_grad_enabled()
    for step, sent, (inside, received, out), between in answers:
        seen.append(inside)
        expect(
            inside == recording,
            what=f"grad mode inside the @{mode} coroutine after {step}",
            expected=recording,
            observed=inside,
            repro=repro,
        )
        expect(received == sent, what=f"the value received after {step}", expected=sent, observed=received, repro=repro)
        expect(
            (out.grad_fn is not None) == recording,
            what=f"a value computed inside after {step} is recorded",
            expected=recording,
            observed=out.grad_fn is not None,
            repro=repro,
        )
        expect(
            between == outer, what=f"the caller's grad mode after {step}", expected=outer, observed=between, repro=repro
        )
    expect(
        cleanup == [recording],
        what="grad mode in the coroutine's cleanup on close()",
        expected=[recording],
        observed=cleanup,
        repro=repro,
    )
    expect(
        after_close == outer,
        what="the caller's grad mode after close()",
        expected=outer,
        observed=after_close,
        repro=repro,
    )
    record("modes inside (resumptions, cleanup)", [seen, cleanup])


@rule(
    "grad-modes.class-decoration-warns",
    section=Section.EXCLUDING,
    docs="grad-modes-decorators",
    since="2.0",
    given=dict(program=programs(), mode=st.sampled_from(["no_grad", "enable_grad", "inference_mode"])),
    history=(
        Change(
            "2.4",
            "a UserWarning (warnings.warn's default category) with the same message, since 2.0; inferred from "
            "the source history, not run here",
        ),
    ),
    contracts=(CLASS_DECORATION,),
    references=("test_autograd.py::TestAutograd::test_grad_mode_class_decoration",),
)
def class_decoration_warns(program, mode):
    """Decorating a class with torch.no_grad(), torch.enable_grad() or torch.inference_mode() emits a FutureWarning that class decoration is deprecated; the result is a function that builds an instance of the class with the mode on while __init__ runs, and restores the caller's mode."""
    run = program.function()
    outer = mode != "enable_grad"
    recording = mode == "enable_grad"

    class Holder:
        def __init__(self, *xs):
            self.inside = torch.is_grad_enabled()
            self.out = run(*xs)

    contract = CLASS_DECORATION if at_least("2.4") else CLASS_DECORATION_BEFORE_2_4
    args = ", ".join(program.leaf_names)
    repro = program.repro(
        f"@torch.{mode}()",
        "class Holder:",
        "    def __init__(self, *xs):",
        "        self.inside, self.out = torch.is_grad_enabled(), program(*xs)",
        f"with torch.set_grad_enabled({outer}):",
        f"    h = Holder({args})",
        "    print(type(h).__name__, h.inside, h.out.grad_fn, torch.is_grad_enabled())",
    )
    decorated = contract.check(lambda: _mode(mode)(Holder), repro=repro)
    with torch.set_grad_enabled(outer):
        made = decorated(*program.inputs())
        after = torch.is_grad_enabled()
    expect(
        isinstance(made, Holder),
        what="calling the decorated class builds an instance",
        expected="Holder",
        observed=type(made).__name__,
        repro=repro,
    )
    expect(
        made.inside == recording,
        what=f"grad mode in __init__ of a @{mode} class",
        expected=recording,
        observed=made.inside,
        repro=repro,
    )
    expect(
        (made.out.grad_fn is not None) == recording,
        what="a value computed in __init__ is recorded",
        expected=recording,
        observed=made.out.grad_fn is not None,
        repro=repro,
    )
    expect(after == outer, what="the caller's grad mode after the call", expected=outer, observed=after, repro=repro)


@rule(
    "grad-modes.enable-grad-inside-no-grad",
    section=Section.EXCLUDING,
    docs="grad-modes-enable-grad",
    given=dict(program=programs(), form=st.sampled_from(["context", "decorator"])),
)
def enable_grad_inside_no_grad(program, form):
    """torch.enable_grad() inside a no_grad block records again, and on leaving it recording is off again."""
    leaves = program.inputs()
    with torch.no_grad():
        if form == "context":
            with torch.enable_grad():
                out = program(*leaves)
        else:
            out = torch.enable_grad()(program.function())(*leaves)
        after = torch.is_grad_enabled()
    expect(
        out.requires_grad and out.grad_fn is not None,
        what=f"enable_grad ({form}) inside no_grad records",
        expected=True,
        observed=out.requires_grad,
        repro=program.repro(
            "with torch.no_grad():",
            *(
                ("    with torch.enable_grad():", f"        out = {program.call}")
                if form == "context"
                else (f"    out = torch.enable_grad()(program)({', '.join(program.leaf_names)})",)
            ),
            "print(out.requires_grad, out.grad_fn)",
        ),
    )
    expect(not after, what="grad mode after enable_grad ends, still inside no_grad", expected=False, observed=after)


@rule(
    "grad-modes.set-grad-enabled-forms",
    section=Section.EXCLUDING,
    docs="grad-modes-set-grad-enabled",
    given=dict(program=programs(), enabled=st.booleans(), form=st.sampled_from(["call", "context", "decorator"])),
    references=(
        "test_autograd.py::TestAutograd::test_set_grad_enabled",
        "test_autograd.py::TestAutograd::test_set_grad_enabled_wraps",
    ),
)
def set_grad_enabled_forms(program, enabled, form):
    """torch.set_grad_enabled(mode) sets grad mode at once when called, and for a block or a function when used as a context manager or decorator, restoring the previous mode afterwards."""
    leaves = program.inputs()
    with torch.no_grad():
        before = torch.is_grad_enabled()
        if form == "call":
            torch.set_grad_enabled(enabled)
            try:
                out = program(*leaves)
                during = torch.is_grad_enabled()
            finally:
                torch.set_grad_enabled(before)
        elif form == "context":
            with torch.set_grad_enabled(enabled):
                out, during = program(*leaves), torch.is_grad_enabled()
        else:
            run = program.function()

            @torch.set_grad_enabled(enabled)
            def decorated(*xs):
                return run(*xs), torch.is_grad_enabled()

            out, during = decorated(*leaves)
        after = torch.is_grad_enabled()
    args = ", ".join(program.leaf_names)
    forms = {
        "call": (
            "with torch.no_grad():",
            f"    torch.set_grad_enabled({enabled})",
            f"    out = {program.call}",
            "    during = torch.is_grad_enabled()",
            "print(during, out.grad_fn)",
        ),
        "context": (
            "with torch.no_grad():",
            f"    with torch.set_grad_enabled({enabled}):",
            f"        out, during = {program.call}, torch.is_grad_enabled()",
            "    after = torch.is_grad_enabled()",
            "print(during, out.grad_fn, after)",
        ),
        "decorator": (
            f"@torch.set_grad_enabled({enabled})",
            "def decorated(*xs):",
            "    return program(*xs), torch.is_grad_enabled()",
            "with torch.no_grad():",
            f"    out, during = decorated({args})",
            "    after = torch.is_grad_enabled()",
            "print(during, out.grad_fn, after)",
        ),
    }
    repro = program.repro(*forms[form])
    expect(
        during == enabled,
        what=f"grad mode after set_grad_enabled({enabled}) ({form})",
        expected=enabled,
        observed=during,
        repro=repro,
    )
    expect(
        (out.grad_fn is not None) == enabled,
        what=f"the program records exactly when set_grad_enabled({enabled})",
        expected=enabled,
        observed=out.grad_fn is not None,
        repro=repro,
    )
    if form != "call":
        expect(
            after == before,
            what=f"set_grad_enabled as {form} restores the previous mode",
            expected=before,
            observed=after,
        )


@rule(
    "grad-modes.inference-mode-makes-inference-tensors",
    section=Section.EXCLUDING,
    docs="grad-modes-inference",
    given=dict(program=programs()),
    references=(
        "docs: Autograd mechanics > Inference Mode",
        "test_autograd.py::TestAutogradInferenceMode::test_normal_tensor_view_output_in_inference_mode",
        "test_autograd.py::TestAutogradInferenceMode::test_normal_tensor_inplace_output_in_inference_mode",
    ),
)
def inference_mode_makes_inference_tensors(program):
    """Values computed inside inference_mode are inference tensors that record nothing, except views of normal tensors and normal tensors modified in place there, which stay normal tensors (the in-place op still advancing their version); inside a nested inference_mode(False) results are normal tensors and recording is back on."""
    leaves = program.inputs()
    target = program.inputs()[0].detach().clone()
    version = target._version
    with torch.inference_mode():
        inside = program.trace(*leaves)
        grad_inside = torch.is_grad_enabled()
        view = leaves[0].view(leaves[0].shape)
        target.mul_(2.0)
        with torch.inference_mode(False):
            nested = program(*leaves)
    expect(not grad_inside, what="torch.is_grad_enabled() inside inference_mode", expected=False, observed=grad_inside)
    _untracked(inside, program, "under inference_mode", "torch.inference_mode()")
    for name, value in inside.items():
        if name not in program.leaf_names and not (value._is_view() and not value._base.is_inference()):
            expect(
                value.is_inference(),
                what=f"{name} computed in inference_mode is an inference tensor",
                expected=True,
                observed=False,
                repro=program.repro(f"# under torch.inference_mode(): print({name}.is_inference())"),
            )
    expect(
        not view.is_inference(),
        what="a view of the normal tensor x0 taken in inference_mode",
        expected="a normal tensor",
        observed="an inference tensor",
        repro=program.repro("with torch.inference_mode():\n    print(x0.view(x0.shape).is_inference())"),
    )
    expect(
        not target.is_inference() and target._version > version,
        what="a normal tensor multiplied in place in inference_mode",
        expected="still normal, its version advanced",
        observed=(target.is_inference(), target._version - version),
        repro=program.repro(
            "t = x0.detach().clone()\nwith torch.inference_mode():\n    t.mul_(2.0)\n"
            "print(t.is_inference(), t._version)"
        ),
    )
    expect(
        not nested.is_inference() and nested.requires_grad,
        what="a result of inference_mode(False) nested inside",
        expected="a normal tensor that requires grad",
        observed=(nested.is_inference(), nested.requires_grad),
    )


@st.composite
def tracked_and_inference(draw):
    x = draw(tensors(), label="x")
    c = draw(tensors(shape=x.shape, dtypes=(x.dtype,), requires_grad=False), label="c")
    return x, c


def _inference_copy(spec):
    with torch.inference_mode():
        return spec.make()


@rule(
    "grad-modes.inference-tensors-cannot-be-saved",
    section=Section.EXCLUDING,
    docs="grad-modes-inference",
    given=dict(pair=tracked_and_inference()),
    contracts=(INFERENCE_SAVED,),
    references=("test_autograd.py::TestAutogradInferenceMode::test_mix_inference_and_normal_tensor_functional_op",),
)
def inference_tensors_cannot_be_saved(pair):
    """An inference tensor used where autograd must save it for backward (x * c) raises a RuntimeError while recording; an op that saves nothing (x + c) accepts it."""
    xs, cs = pair
    repro = f"with torch.inference_mode():\n    c = {cs.expression()}\nx = {xs.expression()}\nx * c"
    INFERENCE_SAVED.check(lambda: xs.make() * _inference_copy(cs), repro=repro)
    x = xs.make()
    (x + _inference_copy(cs)).sum().backward()
    expect_close(x.grad, torch.ones_like(x), tolerance=EXACT, what="x.grad of (x + c).sum() with an inference tensor c")


@rule(
    "grad-modes.inference-tensors-are-read-only-outside",
    section=Section.EXCLUDING,
    docs="grad-modes-inference",
    given=dict(spec=tensors(requires_grad=False, layouts=("contiguous", "transposed", "sliced"))),
    contracts=(INFERENCE_IN_PLACE,),
    references=(
        "test_autograd.py::TestAutogradInferenceMode::test_inference_mode_inf_tensor_in_normal_mode_inplace_op",
    ),
)
def inference_tensors_are_read_only_outside(spec):
    """An in-place operation on an inference tensor outside inference mode raises a RuntimeError; a clone() made outside is a normal tensor that can be modified."""
    c = _inference_copy(spec)
    normal = c.clone()
    INFERENCE_IN_PLACE.check(
        lambda: c.add_(1), repro=f"with torch.inference_mode():\n    c = {spec.expression()}\nc.add_(1)"
    )
    # Implementation detail seen in 2.13: the error is raised after the write, so c has changed.
    if c.numel() and torch.equal(c, normal + 1):
        observe("the refused in-place update of an inference tensor was applied before the error")
    normal.add_(1)
    expect(
        not normal.is_inference(),
        what="clone() of an inference tensor outside inference mode",
        expected=False,
        observed=True,
    )
    expect_close(normal, spec.make() + 1, tolerance=EXACT, what="the clone after add_(1)")


def _mode_in_new_thread() -> tuple[bool, bool]:
    seen = []
    worker = threading.Thread(target=lambda: seen.append((torch.is_grad_enabled(), torch.is_inference_mode_enabled())))
    worker.start()
    worker.join()
    return seen[0]


@rule(
    "grad-modes.grad-mode-is-thread-local",
    section=Section.EXCLUDING,
    docs="grad-modes-threads",
    given=dict(program=programs(), mode=st.sampled_from(MODES)),
)
def grad_mode_is_thread_local(program, mode):
    """Grad mode and inference mode are per thread: a thread started inside no_grad or inference_mode runs with grad mode on and records its programs."""
    leaves = program.inputs()
    results = []
    with _mode(mode):
        modes = _mode_in_new_thread()
        worker = threading.Thread(target=lambda: results.append(program(*leaves)))
        worker.start()
        worker.join()
    expect(
        modes == (True, False),
        what=f"(grad mode, inference mode) of a thread started under {mode}",
        expected=(True, False),
        observed=modes,
    )
    expect(
        results[0].grad_fn is not None,
        what=f"a program run in a thread started under {mode} records",
        expected=True,
        observed=False,
        repro=program.repro(
            "import threading",
            "results = []",
            f"with torch.{mode if '(' in mode else mode + '()'}:",
            f"    worker = threading.Thread(target=lambda: results.append({program.call}))",
            "    worker.start()",
            "    worker.join()",
            "print(results[0].grad_fn)",
        ),
    )


@rule(
    "grad-modes.factories-under-no-grad",
    section=Section.EXCLUDING,
    docs="grad-modes-factories",
    given=dict(spec=tensors(zero_size=True)),
)
def factories_under_no_grad(spec):
    """Under no_grad a factory called with requires_grad=True still returns a leaf that requires grad, and operations on it inside the block are not recorded."""
    with torch.no_grad():
        made = [
            torch.tensor(list(spec.values), dtype=spec.dtype, requires_grad=True),
            torch.zeros(spec.shape, dtype=spec.dtype, requires_grad=True),
            torch.ones(spec.shape, dtype=spec.dtype, requires_grad=True),
        ]
        inside = [t * 2 for t in made]
    for t, result in zip(made, inside):
        expect(
            t.is_leaf and t.requires_grad,
            what="a factory with requires_grad=True under no_grad",
            expected=True,
            observed=(t.is_leaf, t.requires_grad),
            repro=f"with torch.no_grad():\n    t = torch.zeros({spec.shape}, requires_grad=True)\n"
            "print(t.is_leaf, t.requires_grad)",
        )
        expect(
            not result.requires_grad,
            what="t * 2 inside the no_grad block",
            expected=False,
            observed=result.requires_grad,
        )
        expect((t * 2).requires_grad, what="t * 2 after the block", expected=True, observed=False)


def _contiguous_leaves(program):
    return [x.detach().clone().requires_grad_(x.requires_grad) for x in program.inputs()]


@rule(
    "grad-modes.in-place-updates-under-no-grad",
    section=Section.EXCLUDING,
    docs="grad-modes-optimizer-updates",
    given=dict(program=programs(), lr=st.sampled_from([0.1, 0.01, 1.0])),
)
def in_place_updates_under_no_grad(program, lr):
    """Under no_grad a leaf that requires grad can be updated in place (the optimizer step): it stays a leaf that requires grad, its version counter advances, and the next backward differentiates at the new values."""
    leaves = _contiguous_leaves(program)
    program(*leaves).sum().backward()
    versions = [x._version for x in leaves]
    with torch.no_grad():
        for i in program.grad_leaves:
            leaves[i].sub_(lr * leaves[i].grad)
            leaves[i].grad = None
    repro = program.repro(
        "out.sum().backward()",
        "with torch.no_grad():",
        *(f"    x{i}.sub_({lr} * x{i}.grad)" for i in program.grad_leaves),
        *(f"print(x{i}.is_leaf, x{i}.requires_grad, x{i}._version)" for i in program.grad_leaves),
    )
    for i in program.grad_leaves:
        x = leaves[i]
        expect(
            x.is_leaf and x.requires_grad,
            what=f"x{i} after the update",
            expected="a leaf that requires grad",
            observed=(x.is_leaf, x.requires_grad),
            repro=repro,
        )
        expect(
            x._version == versions[i] + 1,
            what=f"x{i}._version after one in-place update",
            expected=versions[i] + 1,
            observed=x._version,
            repro=repro,
        )
    program(*leaves).sum().backward()
    fresh = [x.detach().clone().requires_grad_(x.requires_grad) for x in leaves]
    program(*fresh).sum().backward()
    for i in program.grad_leaves:
        expect_close(
            leaves[i].grad,
            fresh[i].grad,
            tolerance=ROUNDOFF[program.dtype],
            what=f"x{i}.grad after the update against fresh leaves holding the new values",
            repro=repro,
        )


@rule(
    "grad-modes.in-place-on-leaf-needs-no-grad",
    section=Section.EXCLUDING,
    docs="grad-modes-optimizer-updates",
    given=dict(spec=tensors()),
    contracts=(LEAF_IN_PLACE,),
    references=("docs: Autograd mechanics > Locally disabling gradient computation > No-grad Mode",),
)
def in_place_on_leaf_needs_no_grad(spec):
    """With grad mode on, an in-place operation on a leaf that requires grad raises a RuntimeError: parameter updates belong under no_grad."""
    LEAF_IN_PLACE.check(
        lambda: spec.make().detach().clone().requires_grad_().sub_(0.1),
        repro=f"x = {spec.expression()}.detach().clone().requires_grad_()\nx.sub_(0.1)",
    )


@rule(
    "grad-modes.detach-shares-storage-and-version",
    section=Section.EXCLUDING,
    docs="grad-modes-detach",
    given=dict(program=programs(all_require_grad=True), data=st.data()),
)
def detach_shares_storage_and_version(program, data):
    """detach() returns an untracked leaf that shares its source's storage and version counter: an in-place change to it shows in the source and advances the source's version."""
    values = program.trace(*program.inputs())
    values["out.clone()"] = values[program.output].clone()
    candidates = [n for n, v in values.items() if _writable(v)]
    name = data.draw(st.sampled_from(candidates), label="detached value")
    source = values[name]
    d = source.detach()
    repro = program.repro(f"# {name} inside program()", f"d = {name}.detach(); d.mul_(2); print({name}._version)")
    expect(
        d.is_leaf and not d.requires_grad and d.grad_fn is None,
        what=f"{name}.detach() is an untracked leaf",
        expected=(True, False, None),
        observed=(d.is_leaf, d.requires_grad, d.grad_fn),
        repro=repro,
    )
    expect(
        d.data_ptr() == source.data_ptr(),
        what=f"{name}.detach() shares storage",
        expected=source.data_ptr(),
        observed=d.data_ptr(),
        repro=repro,
    )
    before = source._version
    expected = source.detach().clone() * 2
    d.mul_(2)
    expect(
        source._version == before + 1,
        what=f"{name}._version after d.mul_(2)",
        expected=before + 1,
        observed=source._version,
        repro=repro,
    )
    expect_close(
        source.detach(), expected, tolerance=EXACT, what=f"{name} after d.mul_(2) on its detached alias", repro=repro
    )


def _saved_exp(program, leaves):
    """exp of the program's (bounded) output: exp saves its result for backward."""
    return torch.exp(torch.tanh(program(*leaves)))


@rule(
    "grad-modes.detach-in-place-is-detected",
    section=Section.EXCLUDING,
    docs="grad-modes-detach",
    given=dict(program=programs()),
    contracts=(SAVED_MODIFIED,),
    references=("test_autograd.py::TestAutograd::test_detach_then_inplace_raises_in_autograd",),
)
def detach_in_place_is_detected(program):
    """Modifying in place, through detach(), a tensor that autograd saved makes the next backward raise a RuntimeError instead of computing a wrong gradient."""

    def record():
        y = _saved_exp(program, program.inputs())
        y.detach().mul_(2)
        return y.sum()

    SAVED_MODIFIED.check(
        record, repro=program.repro("y = torch.exp(torch.tanh(out))", "y.detach().mul_(2)", "y.sum().backward()")
    )


@rule(
    "grad-modes.data-hides-in-place-writes",
    section=Section.EXCLUDING,
    docs="grad-modes-data",
    given=dict(program=programs()),
)
def data_hides_in_place_writes(program):
    """Tensor.data shares storage but not the version counter: an in-place write through it goes unnoticed and backward silently uses the changed values (doubling exp's saved result doubles every gradient)."""
    clean = program.inputs()
    _saved_exp(program, clean).sum().backward()
    leaves = program.inputs()
    y = _saved_exp(program, leaves)
    before = y._version
    y.data.mul_(2)
    repro = program.repro("y = torch.exp(torch.tanh(out))", "y.data.mul_(2)", "y.sum().backward()", "print(x0.grad)")
    expect(
        y._version == before, what="y._version after y.data.mul_(2)", expected=before, observed=y._version, repro=repro
    )
    y.sum().backward()
    for i in program.grad_leaves:
        expect_close(
            leaves[i].grad,
            2 * clean[i].grad,
            tolerance=ROUNDOFF[program.dtype],
            what=f"x{i}.grad after writing through .data: twice the true gradient",
            repro=repro,
        )


@rule(
    "grad-modes.no-grad-views-are-not-modified-with-grad",
    section=Section.EXCLUDING,
    docs="grad-modes-views",
    given=dict(program=programs(all_require_grad=True)),
    contracts=(NO_GRAD_VIEW,),
    references=("test_autograd.py::TestAutograd::test_autograd_views_codegen",),
)
def no_grad_views_are_not_modified_with_grad(program):
    """A view of a tracked tensor taken under no_grad and then modified in place with grad mode on raises a RuntimeError, because whether the change should be recorded is ambiguous."""
    # view_as(base): a view of any strides (view(-1) would refuse a transposed result).
    script = program.script(
        "base = torch.sin(out)", "with torch.no_grad():", "    view = base.view_as(base)", "view.mul_(2)"
    )
    NO_GRAD_VIEW.check(script.run, repro=script)


@rule(
    "grad-modes.no-grad-views-have-no-history",
    section=Section.EXCLUDING,
    docs="grad-modes-views",
    given=dict(program=programs(all_require_grad=True), data=st.data()),
)
def no_grad_views_have_no_history(program, data):
    """A view of a tracked tensor taken under no_grad has no grad_fn and sends no gradient back to its source, although (an implementation detail, pytorch/pytorch#11390) its requires_grad flag still reads True."""
    leaves = program.inputs()
    values = program.trace(*leaves)
    name = data.draw(st.sampled_from(sorted(values)), label="viewed value")
    with torch.no_grad():
        view = values[name].view_as(values[name])
    repro = program.repro(
        f"with torch.no_grad():\n    view = {name}.view_as({name})",
        "print(view.requires_grad, view.grad_fn)",
        inline=True,
    )
    expect(
        view.grad_fn is None,
        what=f"grad_fn of a view of {name} taken under no_grad",
        expected=None,
        observed=view.grad_fn,
        repro=repro,
    )
    observe(f"requires_grad of a no_grad view of a tracked tensor: {view.requires_grad}")
    if view.requires_grad and view._is_view():
        (view * 2).sum().backward()
        for i, x in enumerate(leaves):
            expect(
                x.grad is None,
                what=f"x{i}.grad after backward through the no_grad view",
                expected=None,
                observed=x.grad,
                repro=repro,
            )
