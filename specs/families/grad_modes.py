"""Grad modes and detach: ``no_grad``, ``enable_grad``, ``set_grad_enabled``, ``inference_mode``,
``detach()`` and ``.data``."""
from __future__ import annotations

import threading

import torch
from hypothesis import strategies as st

from specs.engine.contracts import ErrorContract, Phase
from specs.engine.expect import EXACT, Tolerance, expect, expect_close
from specs.engine.registry import Change, Family, observe, rule
from specs.generators.strategies import programs, tensors

FAMILY = Family(
    name="grad-modes",
    title="Grad modes and detach",
    summary="Turning recording off (no_grad, set_grad_enabled, inference_mode) and taking tensors "
    "out of the graph (detach, .data).",
    gallery="plot_30_grad_modes.py",
)

EXCLUDING = "Excluding Tensors from Autograd"

#: Two runs of the same program differ only by the order of float sums in another layout.
ROUNDOFF = {
    torch.float32: Tolerance(1e-5, 1e-6, "float32: the same operations on copies in another memory layout"),
    torch.float64: Tolerance(1e-12, 1e-13, "float64: the same operations on copies in another memory layout"),
}

INFERENCE_SAVED = ErrorContract(
    RuntimeError, r"Inference tensors cannot be saved for backward", Phase.RECORD
)
INFERENCE_IN_PLACE = ErrorContract(
    RuntimeError, r"Inplace update to inference tensor outside InferenceMode is not allowed", Phase.RECORD,
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

MODES = ("no_grad", "inference_mode", "set_grad_enabled(False)")


def _mode(name: str):
    if name == "no_grad":
        return torch.no_grad()
    if name == "inference_mode":
        return torch.inference_mode()
    if name == "set_grad_enabled(False)":
        return torch.set_grad_enabled(False)
    return torch.enable_grad()


def _untracked(values: dict, program, what: str) -> None:
    for name, value in values.items():
        if name in program.leaf_names:
            continue
        # A view keeps its base's requires_grad flag (see no-grad-views-have-no-history).
        flag = value.requires_grad and not value._is_view()
        expect(not flag and value.grad_fn is None, f"{name} computed {what} is not recorded",
               "grad_fn=None (and requires_grad=False unless a view)", (value.requires_grad, value.grad_fn),
               program.repro(f"# run program() {what}; print({name}.grad_fn)"))


def _writable(tensor: torch.Tensor) -> bool:
    """False for tensors in which several elements share memory (expanded views refuse in-place ops)."""
    return all(stride != 0 or size <= 1 for size, stride in zip(tensor.shape, tensor.stride()))


@rule("grad-modes.no-grad-records-nothing", section=EXCLUDING, docs="grad-modes-no-grad",
      given=dict(program=programs(), mode=st.sampled_from(MODES)))
def no_grad_records_nothing(program, mode):
    """A program run with grad mode off (no_grad, set_grad_enabled(False), inference_mode) records no graph and computes the same values as with grad mode on."""
    leaves = program.inputs()
    recorded = program.trace(*leaves)
    with _mode(mode):
        plain = program.trace(*leaves)
    _untracked(plain, program, f"under {mode}")
    for name, value in plain.items():
        expect_close(value, recorded[name], EXACT, f"{name} under {mode} against grad mode",
                     program.repro(f"with torch.{mode}():", f"    print(program({', '.join(program.leaf_names)}))"))


@rule("grad-modes.no-grad-decorates-functions", section=EXCLUDING, docs="grad-modes-decorators",
      given=dict(program=programs(), mode=st.sampled_from(["no_grad", "inference_mode"])))
def no_grad_decorates_functions(program, mode):
    """torch.no_grad() and torch.inference_mode() used as decorators turn recording off while the decorated function runs, and restore grad mode when it returns."""
    decorated = _mode(mode)(program.function())
    out = decorated(*program.inputs())
    expect(out.grad_fn is None, f"result of a @torch.{mode}() function is not recorded",
           None, out.grad_fn, program.repro(f"# program decorated with @torch.{mode}()"))
    expect(torch.is_grad_enabled(), "grad mode after the decorated function returned", True, False)


@rule("grad-modes.decorators-without-parentheses", section=EXCLUDING, docs="grad-modes-decorators", since="2.1",
      given=dict(program=programs(), mode=st.sampled_from(["no_grad", "enable_grad", "inference_mode"])),
      history=(Change("2.1", "the grad-mode classes had to be instantiated to decorate: @torch.no_grad()"),))
def decorators_without_parentheses(program, mode):
    """Since torch 2.1, @torch.no_grad, @torch.enable_grad and @torch.inference_mode work without parentheses, like their instantiated forms."""
    decorated = getattr(torch, mode)(program.function())
    leaves = program.inputs()
    with torch.no_grad():
        out = decorated(*leaves)
    tracked = mode == "enable_grad"
    expect((out.grad_fn is not None) == tracked, f"result of a @torch.{mode} function (called under no_grad) has a grad_fn",
           tracked, out.grad_fn is not None, program.repro(f"# program decorated with @torch.{mode}"))
    expect_close(out, program(*leaves), EXACT, f"@torch.{mode} does not change the values")


@rule("grad-modes.generators-switch-per-step", section=EXCLUDING, docs="grad-modes-decorators",
      given=dict(program=programs(), steps=st.integers(1, 3)))
def generators_switch_per_step(program, steps):
    """A generator decorated with torch.no_grad() runs its body with grad mode off, while its caller keeps grad mode on between the yields."""

    @torch.no_grad()
    def generate(leaves):
        for _ in range(steps):
            yield torch.is_grad_enabled(), program(*leaves)

    leaves = program.inputs()
    for inside, out in generate(leaves):
        expect(not inside, "grad mode inside the generator body", False, inside)
        expect(out.grad_fn is None, "a value yielded from the no_grad generator is not recorded", None,
               out.grad_fn, program.repro("# yielded from a @torch.no_grad() generator"))
        expect(torch.is_grad_enabled(), "grad mode of the caller between yields", True, False)
        expect(program(*leaves).grad_fn is not None, "the caller records between yields", True, False)


@rule("grad-modes.enable-grad-inside-no-grad", section=EXCLUDING, docs="grad-modes-enable-grad",
      given=dict(program=programs(), form=st.sampled_from(["context", "decorator"])))
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
    expect(out.requires_grad and out.grad_fn is not None, f"enable_grad ({form}) inside no_grad records",
           True, out.requires_grad, program.repro("# program run under enable_grad inside no_grad"))
    expect(not after, "grad mode after enable_grad ends, still inside no_grad", False, after)


@rule("grad-modes.set-grad-enabled-forms", section=EXCLUDING, docs="grad-modes-set-grad-enabled",
      given=dict(program=programs(), enabled=st.booleans(), form=st.sampled_from(["call", "context", "decorator"])))
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
    repro = program.repro(f"# program run after torch.set_grad_enabled({enabled}) ({form})")
    expect(during == enabled, f"grad mode after set_grad_enabled({enabled}) ({form})", enabled, during, repro)
    expect((out.grad_fn is not None) == enabled, f"the program records exactly when set_grad_enabled({enabled})",
           enabled, out.grad_fn is not None, repro)
    if form != "call":
        expect(after == before, f"set_grad_enabled as {form} restores the previous mode", before, after)


@rule("grad-modes.inference-mode-makes-inference-tensors", section=EXCLUDING, docs="grad-modes-inference",
      given=dict(program=programs()))
def inference_mode_makes_inference_tensors(program):
    """Values computed inside inference_mode are inference tensors that record nothing; inside a nested inference_mode(False) they are normal tensors and recording is back on."""
    leaves = program.inputs()
    with torch.inference_mode():
        inside = program.trace(*leaves)
        grad_inside = torch.is_grad_enabled()
        with torch.inference_mode(False):
            nested = program(*leaves)
    expect(not grad_inside, "torch.is_grad_enabled() inside inference_mode", False, grad_inside)
    _untracked(inside, program, "under inference_mode")
    for name, value in inside.items():
        # A view of a normal tensor stays a normal tensor, even when taken in inference mode.
        if name not in program.leaf_names and not (value._is_view() and not value._base.is_inference()):
            expect(value.is_inference(), f"{name} computed in inference_mode is an inference tensor", True,
                   False, program.repro(f"# under torch.inference_mode(): print({name}.is_inference())"))
    expect(not nested.is_inference() and nested.requires_grad, "a result of inference_mode(False) nested inside",
           "a normal tensor that requires grad", (nested.is_inference(), nested.requires_grad))


@st.composite
def tracked_and_inference(draw):
    x = draw(tensors(), label="x")
    c = draw(tensors(shape=x.shape, dtypes=(x.dtype,), requires_grad=False), label="c")
    return x, c


def _inference_copy(spec):
    with torch.inference_mode():
        return spec.make()


@rule("grad-modes.inference-tensors-cannot-be-saved", section=EXCLUDING, docs="grad-modes-inference",
      given=dict(pair=tracked_and_inference()), contracts=(INFERENCE_SAVED,))
def inference_tensors_cannot_be_saved(pair):
    """An inference tensor used where autograd must save it for backward (x * c) raises a RuntimeError while recording; an op that saves nothing (x + c) accepts it."""
    xs, cs = pair
    repro = f"with torch.inference_mode():\n    c = {cs.expression()}\nx = {xs.expression()}\nx * c"
    INFERENCE_SAVED.check(lambda: xs.make() * _inference_copy(cs), repro=repro)
    x = xs.make()
    (x + _inference_copy(cs)).sum().backward()
    expect_close(x.grad, torch.ones_like(x), EXACT, "x.grad of (x + c).sum() with an inference tensor c")


@rule("grad-modes.inference-tensors-are-read-only-outside", section=EXCLUDING, docs="grad-modes-inference",
      given=dict(spec=tensors(requires_grad=False, layouts=("contiguous", "transposed", "sliced"))),
      contracts=(INFERENCE_IN_PLACE,))
def inference_tensors_are_read_only_outside(spec):
    """An in-place operation on an inference tensor outside inference mode raises a RuntimeError; a clone() made outside is a normal tensor that can be modified."""
    c = _inference_copy(spec)
    normal = c.clone()
    INFERENCE_IN_PLACE.check(lambda: c.add_(1), repro=f"with torch.inference_mode():\n    c = {spec.expression()}\nc.add_(1)")
    # Implementation detail seen in 2.13: the error is raised after the write, so c has changed.
    if c.numel() and torch.equal(c, normal + 1):
        observe("the refused in-place update of an inference tensor was applied before the error")
    normal.add_(1)
    expect(not normal.is_inference(), "clone() of an inference tensor outside inference mode", False, True)
    expect_close(normal, spec.make() + 1, EXACT, "the clone after add_(1)")


def _mode_in_new_thread() -> tuple[bool, bool]:
    seen = []
    worker = threading.Thread(target=lambda: seen.append((torch.is_grad_enabled(), torch.is_inference_mode_enabled())))
    worker.start()
    worker.join()
    return seen[0]


@rule("grad-modes.grad-mode-is-thread-local", section=EXCLUDING, docs="grad-modes-threads",
      given=dict(program=programs(), mode=st.sampled_from(MODES)))
def grad_mode_is_thread_local(program, mode):
    """Grad mode and inference mode are per thread: a thread started inside no_grad or inference_mode runs with grad mode on and records its programs."""
    leaves = program.inputs()
    results = []
    with _mode(mode):
        modes = _mode_in_new_thread()
        worker = threading.Thread(target=lambda: results.append(program(*leaves)))
        worker.start()
        worker.join()
    expect(modes == (True, False), f"(grad mode, inference mode) of a thread started under {mode}",
           (True, False), modes)
    expect(results[0].grad_fn is not None, f"a program run in a thread started under {mode} records", True, False,
           program.repro(f"# with torch.{mode}(): run program() in a new threading.Thread"))


@rule("grad-modes.factories-under-no-grad", section=EXCLUDING, docs="grad-modes-factories",
      given=dict(spec=tensors(zero_size=True)))
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
        expect(t.is_leaf and t.requires_grad, "a factory with requires_grad=True under no_grad", True,
               (t.is_leaf, t.requires_grad), f"with torch.no_grad():\n    t = torch.zeros({spec.shape}, requires_grad=True)")
        expect(not result.requires_grad, "t * 2 inside the no_grad block", False, result.requires_grad)
        expect((t * 2).requires_grad, "t * 2 after the block", True, False)


def _contiguous_leaves(program):
    return [x.detach().clone().requires_grad_(x.requires_grad) for x in program.inputs()]


@rule("grad-modes.in-place-updates-under-no-grad", section=EXCLUDING, docs="grad-modes-optimizer-updates",
      given=dict(program=programs(), lr=st.sampled_from([0.1, 0.01, 1.0])))
def in_place_updates_under_no_grad(program, lr):
    """Under no_grad a leaf that requires grad can be updated in place (the optimizer step): it stays a leaf that requires grad, its version counter advances, and the next backward differentiates at the new values."""
    leaves = _contiguous_leaves(program)
    program(*leaves).sum().backward()
    versions = [x._version for x in leaves]
    with torch.no_grad():
        for i in program.grad_leaves:
            leaves[i].sub_(lr * leaves[i].grad)
            leaves[i].grad = None
    repro = program.repro("out.sum().backward()", "with torch.no_grad():", f"    x0.sub_({lr} * x0.grad)")
    for i in program.grad_leaves:
        x = leaves[i]
        expect(x.is_leaf and x.requires_grad, f"x{i} after the update", "a leaf that requires grad",
               (x.is_leaf, x.requires_grad), repro)
        expect(x._version == versions[i] + 1, f"x{i}._version after one in-place update", versions[i] + 1,
               x._version, repro)
    program(*leaves).sum().backward()
    fresh = [x.detach().clone().requires_grad_(x.requires_grad) for x in leaves]
    program(*fresh).sum().backward()
    for i in program.grad_leaves:
        expect_close(leaves[i].grad, fresh[i].grad, ROUNDOFF[program.dtype],
                     f"x{i}.grad after the update against fresh leaves holding the new values", repro)


@rule("grad-modes.in-place-on-leaf-needs-no-grad", section=EXCLUDING, docs="grad-modes-optimizer-updates",
      given=dict(spec=tensors()), contracts=(LEAF_IN_PLACE,))
def in_place_on_leaf_needs_no_grad(spec):
    """With grad mode on, an in-place operation on a leaf that requires grad raises a RuntimeError: parameter updates belong under no_grad."""
    LEAF_IN_PLACE.check(lambda: spec.make().detach().clone().requires_grad_().sub_(0.1),
                        repro=f"x = {spec.expression()}.detach().clone().requires_grad_()\nx.sub_(0.1)")


@rule("grad-modes.detach-shares-storage-and-version", section=EXCLUDING, docs="grad-modes-detach",
      given=dict(program=programs(all_require_grad=True), data=st.data()))
def detach_shares_storage_and_version(program, data):
    """detach() returns an untracked leaf that shares its source's storage and version counter: an in-place change to it shows in the source and advances the source's version."""
    values = program.trace(*program.inputs())
    values["out.clone()"] = values[program.output].clone()
    candidates = [n for n, v in values.items() if _writable(v)]
    name = data.draw(st.sampled_from(candidates), label="detached value")
    source = values[name]
    d = source.detach()
    repro = program.repro(f"# {name} inside program()", f"d = {name}.detach(); d.mul_(2); print({name}._version)")
    expect(d.is_leaf and not d.requires_grad and d.grad_fn is None, f"{name}.detach() is an untracked leaf",
           (True, False, None), (d.is_leaf, d.requires_grad, d.grad_fn), repro)
    expect(d.data_ptr() == source.data_ptr(), f"{name}.detach() shares storage", source.data_ptr(), d.data_ptr(), repro)
    before = source._version
    expected = source.detach().clone() * 2
    d.mul_(2)
    expect(source._version == before + 1, f"{name}._version after d.mul_(2)", before + 1, source._version, repro)
    expect_close(source.detach(), expected, EXACT, f"{name} after d.mul_(2) on its detached alias", repro)


def _saved_exp(program, leaves):
    """exp of the program's (bounded) output: exp saves its result for backward."""
    return torch.exp(torch.tanh(program(*leaves)))


@rule("grad-modes.detach-in-place-is-detected", section=EXCLUDING, docs="grad-modes-detach",
      given=dict(program=programs()), contracts=(SAVED_MODIFIED,))
def detach_in_place_is_detected(program):
    """Modifying in place, through detach(), a tensor that autograd saved makes the next backward raise a RuntimeError instead of computing a wrong gradient."""

    def record():
        y = _saved_exp(program, program.inputs())
        y.detach().mul_(2)
        return y.sum()

    SAVED_MODIFIED.check(record, repro=program.repro("y = torch.exp(torch.tanh(out))", "y.detach().mul_(2)",
                                                     "y.sum().backward()"))


@rule("grad-modes.data-hides-in-place-writes", section=EXCLUDING, docs="grad-modes-data",
      given=dict(program=programs()))
def data_hides_in_place_writes(program):
    """Tensor.data shares storage but not the version counter: an in-place write through it goes unnoticed and backward silently uses the changed values (doubling exp's saved result doubles every gradient)."""
    clean = program.inputs()
    _saved_exp(program, clean).sum().backward()
    leaves = program.inputs()
    y = _saved_exp(program, leaves)
    before = y._version
    y.data.mul_(2)
    repro = program.repro("y = torch.exp(torch.tanh(out))", "y.data.mul_(2)", "y.sum().backward()", "print(x0.grad)")
    expect(y._version == before, "y._version after y.data.mul_(2)", before, y._version, repro)
    y.sum().backward()
    for i in program.grad_leaves:
        expect_close(leaves[i].grad, 2 * clean[i].grad, ROUNDOFF[program.dtype],
                     f"x{i}.grad after writing through .data: twice the true gradient", repro)


@rule("grad-modes.no-grad-views-are-not-modified-with-grad", section=EXCLUDING, docs="grad-modes-views",
      given=dict(program=programs(all_require_grad=True)), contracts=(NO_GRAD_VIEW,))
def no_grad_views_are_not_modified_with_grad(program):
    """A view of a tracked tensor taken under no_grad and then modified in place with grad mode on raises a RuntimeError, because whether the change should be recorded is ambiguous."""

    def record():
        base = torch.sin(program(*program.inputs()))
        with torch.no_grad():
            # view_as(base) is a view on every layout; view(-1) is not (transposed, sliced, expanded)
            view = base.view_as(base)
        view.mul_(2)

    NO_GRAD_VIEW.check(record, repro=program.repro("base = torch.sin(out)", "with torch.no_grad():",
                                                   "    view = base.view_as(base)", "view.mul_(2)"))


@rule("grad-modes.no-grad-views-have-no-history", section=EXCLUDING, docs="grad-modes-views",
      given=dict(program=programs(all_require_grad=True), data=st.data()))
def no_grad_views_have_no_history(program, data):
    """A view of a tracked tensor taken under no_grad has no grad_fn and sends no gradient back to its source, although (an implementation detail, pytorch/pytorch#11390) its requires_grad flag still reads True."""
    leaves = program.inputs()
    values = program.trace(*leaves)
    name = data.draw(st.sampled_from(sorted(values)), label="viewed value")
    with torch.no_grad():
        view = values[name].view_as(values[name])
    repro = program.repro(f"with torch.no_grad():\n    view = {name}.view_as({name})",
                          "print(view.requires_grad, view.grad_fn)")
    expect(view.grad_fn is None, f"grad_fn of a view of {name} taken under no_grad", None, view.grad_fn, repro)
    observe(f"requires_grad of a no_grad view of a tracked tensor: {view.requires_grad}")
    if view.requires_grad and view._is_view():
        (view * 2).sum().backward()
        for i, x in enumerate(leaves):
            expect(x.grad is None, f"x{i}.grad after backward through the no_grad view", None, x.grad, repro)
