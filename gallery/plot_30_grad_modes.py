"""
Grad modes and detach
=====================

Recording a graph costs time and memory, and some computations (evaluation, parameter updates)
must not be recorded at all. PyTorch offers switches for a whole block of code (grad modes) and a
way to take one tensor out of the graph (``detach()``). This page covers the seed tutorial's
"excluding tensors from autograd" section.
"""

import threading
import warnings

import torch

from specs.rendering.demo import law

# %%
# .. _grad-modes-no-grad:
#
# ``torch.no_grad()`` turns recording off: the seed's example
# -----------------------------------------------------------
#
# Inside the block, results of operations get no ``grad_fn`` and do not require grad, whatever
# their inputs. The values themselves are exactly those of a recorded run.
a = torch.tensor([1.0, 2.0], requires_grad=True)
b = a * 2
with torch.no_grad():
    c = a * 3
print(f"c.requires_grad inside no_grad: {c.requires_grad}")
assert b.requires_grad and not c.requires_grad and c.grad_fn is None
assert torch.equal(c, (a * 3).detach())

law("grad-modes.no-grad-records-nothing")


# %%
# .. _grad-modes-decorators:
#
# Grad modes as decorators
# ------------------------
#
# ``torch.no_grad()``, ``torch.enable_grad()`` and ``torch.inference_mode()`` also decorate
# functions. Since torch 2.1 the parentheses may be left out (``@torch.no_grad``); older releases
# need ``@torch.no_grad()``. On a generator the mode holds only while the generator's own code
# runs: the caller keeps its mode between the yields.
@torch.no_grad()
def evaluate(t):
    return t * 3


assert evaluate(a).grad_fn is None
assert torch.is_grad_enabled()  # restored when the function returned


@torch.no_grad()
def batches(t):
    for k in range(2):
        yield torch.is_grad_enabled(), t * k


for inside, value in batches(a):
    assert not inside and value.grad_fn is None
    assert torch.is_grad_enabled()  # the caller's mode between yields

law("grad-modes.no-grad-decorates-functions")

# %%
law("grad-modes.decorators-without-parentheses")

# %%
law("grad-modes.generators-switch-per-step")

# %%
# A decorated generator used as a coroutine keeps the mode at every resumption: ``send`` and
# ``throw`` resume it with grad mode off, and so does its cleanup on ``close``.
cleanup = []


@torch.no_grad()
def accumulate():
    received = None
    try:
        while True:
            try:
                received = yield torch.is_grad_enabled(), received
            except ValueError:
                received = "thrown"
    finally:
        cleanup.append(torch.is_grad_enabled())


c = accumulate()
assert next(c) == (False, None)
assert c.send(3) == (False, 3) and torch.is_grad_enabled()
assert c.throw(ValueError()) == (False, "thrown") and torch.is_grad_enabled()
c.close()
assert cleanup == [False] and torch.is_grad_enabled()

law("grad-modes.coroutines-keep-mode-across-send-throw-close")

# %%
# Decorating a class is deprecated: it warns (a ``FutureWarning`` since torch 2.4), and the
# result is a function that builds the instance with the mode on while ``__init__`` runs.
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")

    @torch.no_grad()
    class Holder:
        def __init__(self):
            self.inside = torch.is_grad_enabled()


assert any("Decorating classes is deprecated" in str(w.message) for w in caught)
assert Holder().inside is False and torch.is_grad_enabled()

law("grad-modes.class-decoration-warns")

# %%
# .. _grad-modes-enable-grad:
#
# ``enable_grad()`` inside ``no_grad()``
# --------------------------------------
#
# A block that must record, called from code that runs under ``no_grad``, can switch recording
# back on locally.
with torch.no_grad():
    with torch.enable_grad():
        recorded = a * 3
    assert not torch.is_grad_enabled()
assert recorded.grad_fn is not None

law("grad-modes.enable-grad-inside-no-grad")

# %%
# .. _grad-modes-set-grad-enabled:
#
# ``set_grad_enabled(mode)``: a switch with an argument
# -----------------------------------------------------
#
# ``torch.set_grad_enabled(flag)`` takes the mode as data (handy for ``train``/``eval`` code
# paths). Called as a plain function it changes the mode *at once and for good*, which is easy to
# leak; as a context manager or decorator it restores the previous mode.
is_training = False
with torch.set_grad_enabled(is_training):
    assert (a * 2).grad_fn is None
assert torch.is_grad_enabled()

torch.set_grad_enabled(False)  # a plain call: no block, no restoring
assert not torch.is_grad_enabled()
torch.set_grad_enabled(True)  # so switch back explicitly

law("grad-modes.set-grad-enabled-forms")

# %%
# .. _grad-modes-inference:
#
# ``inference_mode()``: no recording, and no way back
# ---------------------------------------------------
#
# ``inference_mode`` skips even the bookkeeping that ``no_grad`` keeps (version counters, view
# tracking). Tensors made inside it are *inference tensors*: later they may be read by autograd
# only where nothing needs to be saved for backward, and cannot be modified in place outside
# inference mode. ``clone()`` turns one into a normal tensor.
with torch.inference_mode():
    frozen = torch.tensor([1.0, 2.0]) * 2
assert frozen.is_inference() and not frozen.requires_grad

w = torch.tensor([3.0, 4.0], requires_grad=True)
(w + frozen).sum().backward()  # addition saves nothing: fine
assert torch.equal(w.grad, torch.ones(2))
try:
    w * frozen  # multiplication must save `frozen` for w's gradient
except RuntimeError as error:
    print("RuntimeError:", error)
    assert "Inference tensors cannot be saved for backward" in str(error)
else:
    raise AssertionError("an inference tensor was saved for backward")
try:
    frozen.add_(1)
except RuntimeError as error:
    print("RuntimeError:", error)
    assert "Inplace update to inference tensor outside InferenceMode" in str(error)
else:
    raise AssertionError("an inference tensor was modified outside inference mode")
usable = frozen.clone()  # the fix: a normal copy
assert not usable.is_inference()
(w * usable).sum().backward()

# %%
# Two kinds of results stay normal tensors inside ``inference_mode``: a view of a normal tensor,
# and a normal tensor modified in place, whose version counter still advances (so a backward
# that saved it will refuse to run).
normal = torch.tensor([1.0, 2.0])
before = normal._version
with torch.inference_mode():
    view = w[:1]
    normal.mul_(2)
assert not view.is_inference() and not normal.is_inference() and normal._version > before

law("grad-modes.inference-mode-makes-inference-tensors")

# %%
law("grad-modes.inference-tensors-cannot-be-saved")

# %%
law("grad-modes.inference-tensors-are-read-only-outside")

# %%
# .. _grad-modes-threads:
#
# Grad mode belongs to a thread
# -----------------------------
#
# Each thread has its own grad mode, and a new thread starts with recording on, even when it is
# started from inside ``no_grad``. Code that spawns workers must set the mode inside them.
seen = []
with torch.no_grad():
    worker = threading.Thread(target=lambda: seen.append(torch.is_grad_enabled()))
    worker.start()
    worker.join()
assert seen == [True]

law("grad-modes.grad-mode-is-thread-local")

# %%
# .. _grad-modes-factories:
#
# Creating tracked tensors under ``no_grad``
# ------------------------------------------
#
# ``no_grad`` stops *recording*, not *requiring*: a factory called with ``requires_grad=True``
# inside the block returns a leaf that requires grad, ready for later use.
with torch.no_grad():
    weight = torch.zeros(3, requires_grad=True)
    assert weight.requires_grad and weight.is_leaf
    assert (weight * 2).grad_fn is None

law("grad-modes.factories-under-no-grad")

# %%
# .. _grad-modes-optimizer-updates:
#
# Updating parameters: the optimizer pattern
# ------------------------------------------
#
# A gradient-descent step changes a leaf in place. With recording on that is refused (it would
# overwrite a value the graph may need); under ``no_grad`` it is exactly what optimizers do. The
# leaf stays a leaf that requires grad, and its version counter records the change.
x = torch.tensor([1.0, -2.0], requires_grad=True)
(x**2).sum().backward()
try:
    x.sub_(0.1 * x.grad)  # anti-pattern: recording is on
except RuntimeError as error:
    print("RuntimeError:", error)
else:
    raise AssertionError("an in-place update of a leaf was recorded")
with torch.no_grad():
    x.sub_(0.1 * x.grad)  # the fix
assert x.is_leaf and x.requires_grad
assert torch.allclose(x, torch.tensor([0.8, -1.6]))

law("grad-modes.in-place-updates-under-no-grad")

# %%
law("grad-modes.in-place-on-leaf-needs-no-grad")

# %%
# .. _grad-modes-detach:
#
# ``detach()``: the same data, out of the graph
# ---------------------------------------------
#
# ``b.detach()`` is an untracked leaf that **shares storage** with ``b`` and also shares its
# *version counter*. So an in-place change through the detached tensor is visible to autograd:
# if the graph saved ``b``, the next backward refuses to run instead of computing with a changed
# value.
#
# **Correction to the seed tutorial.** It suggests ``detach()`` to "copy a tensor without its
# history". ``detach()`` copies nothing; writing to the result writes to the original. For a
# copy, use ``detach().clone()``.
b = a * 2
d = b.detach()
print(f"b.requires_grad: {b.requires_grad}, d.requires_grad: {d.requires_grad}")
assert not d.requires_grad and d.grad_fn is None and d.is_leaf
assert d.data_ptr() == b.data_ptr()
d.mul_(10)
assert torch.equal(b, torch.tensor([20.0, 40.0])) and b._version == 1
copy = b.detach().clone()
copy.zero_()
assert torch.equal(b, torch.tensor([20.0, 40.0]))

y = torch.exp(a)  # exp saves its result y for backward
y.detach().mul_(2)
try:
    y.sum().backward()
except RuntimeError as error:
    print("RuntimeError:", error)
    assert "modified by an inplace operation" in str(error)
else:
    raise AssertionError("backward used a value changed through detach()")

law("grad-modes.detach-shares-storage-and-version")

# %%
law("grad-modes.detach-in-place-is-detected")

# %%
# .. _grad-modes-data:
#
# ``.data``: the silent-wrong-gradient pitfall
# --------------------------------------------
#
# ``.data`` also shares storage, but **not** the version counter. The same in-place change made
# through ``.data`` goes unnoticed: backward runs and silently uses the changed value. Here
# doubling ``exp``'s saved result doubles the gradient. Prefer ``detach()`` (an error) or
# ``no_grad`` (an explicit update) to ``.data``.
a.grad = None
y = torch.exp(a)
y.data.mul_(2)
assert y._version == 0  # nothing recorded the change
y.sum().backward()
true_gradient = torch.exp(a.detach())
assert torch.allclose(a.grad, 2 * true_gradient)  # wrong, and no error
print(f"gradient after writing through .data: {a.grad.tolist()}, true: {true_gradient.tolist()}")

law("grad-modes.data-hides-in-place-writes")

# %%
# .. _grad-modes-views:
#
# Views taken under ``no_grad``
# -----------------------------
#
# A view taken under ``no_grad`` has no history: no gradient flows back through it. Its
# ``requires_grad`` flag nevertheless reads ``True`` (a long-standing quirk, kept as an
# implementation detail), so test for ``grad_fn``, not for the flag. Modifying such a view in
# place once recording is back on is refused, since it is unclear whether the change should be
# recorded.
base = torch.sin(a)
with torch.no_grad():
    view = base[:1]
assert view.grad_fn is None
print(f"view.requires_grad: {view.requires_grad} (an implementation detail)")
try:
    view.mul_(2)
except RuntimeError as error:
    print("RuntimeError:", error)
    assert "created in no_grad mode" in str(error)
else:
    raise AssertionError("a no_grad view was modified with grad mode on")

law("grad-modes.no-grad-views-have-no-history")

# %%
law("grad-modes.no-grad-views-are-not-modified-with-grad")

# %%
# APIs used on this page: ``torch.no_grad``, ``torch.enable_grad``, ``torch.set_grad_enabled``,
# ``torch.is_grad_enabled``, ``torch.inference_mode``, ``Tensor.is_inference``,
# ``Tensor.detach``, ``Tensor.data``, ``Tensor.clone``, ``Tensor._version``, ``threading.Thread``.
