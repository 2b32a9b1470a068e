"""
Saved tensors: what backward keeps, and hooks that store it
============================================================

To compute gradients, many backward formulas need values from the forward pass: ``x ** 2`` needs
``x``, ``exp(x)`` needs its own result. The node keeps them as *saved tensors*. This page shows how
to look at them, and how saved-tensor hooks decide where and how they are stored.
"""

import threading

import torch

from specs.rendering.demo import law

# %%
# .. _saved-attributes:
#
# Looking at what a node saved
# ----------------------------
#
# A node's saved values are attributes named ``_saved_<argument>``. A saved *input* is the very
# tensor object you passed in. A saved *output* is a different Python object, made when you read
# it, that shares the output's storage and version counter (the node cannot hold the output
# itself without a reference cycle).
x = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
square = x**2
assert square.grad_fn._saved_self is x
print("exponent saved too:", square.grad_fn._saved_exponent)
y = x.exp()
saved = y.grad_fn._saved_result
assert saved is not y and torch.equal(saved, y) and saved.data_ptr() == y.data_ptr()

law("saved-tensors.saved-input-is-the-tensor-itself")
law("saved-tensors.saved-output-is-a-new-tensor")

# %%
# .. _saved-per-tensor-hooks:
#
# Hooks on one saved tensor
# -------------------------
#
# ``_raw_saved_<argument>`` is the saved tensor's own handle. ``register_hooks(pack, unpack)`` on
# it calls ``pack`` at once and ``unpack`` whenever the value is needed: each time you read
# ``_saved_<argument>``, and when backward runs. Backward computes with what ``unpack`` returns.
# Each saved tensor takes one pair of hooks, and only while the graph still holds it.
y = x.exp()
calls = []
y.grad_fn._raw_saved_result.register_hooks(
    lambda t: (calls.append("pack"), t)[1], lambda t: (calls.append("unpack"), 2 * t)[1]
)
print(y.grad_fn._saved_result)  # one read: one unpack
(g,) = torch.autograd.grad(y.sum(), x)
assert calls == ["pack", "unpack", "unpack"]
assert torch.allclose(g, 2 * x.detach().exp())  # backward used the doubled result

law("saved-tensors.per-tensor-hooks-pack-once-unpack-per-access")
law("saved-tensors.per-tensor-hooks-register-once-while-alive")

# %%
# .. _saved-default-hooks:
#
# Hooks for every tensor saved in a region
# ----------------------------------------
#
# ``torch.autograd.graph.saved_tensors_hooks(pack, unpack)`` applies a pair of hooks to everything
# saved while the context is active (see also :ref:`hooks-saved-tensors`). ``pack`` runs with grad
# mode off and receives the saved tensor itself; Python numbers (``x * 2``) are not packed. One
# backward unpacks each packed value once. When contexts nest, the innermost pair wins; the hooks
# belong to the thread that entered them; and a backward with ``create_graph=True`` run inside the
# context packs what *its* graph saves, for the second backward.
log = []
with torch.autograd.graph.saved_tensors_hooks(lambda t: (log.append("outer"), t)[1], lambda t: t):
    with torch.autograd.graph.saved_tensors_hooks(lambda t: (log.append("inner"), t)[1], lambda t: t):
        torch.tanh(x)
    torch.tanh(x)

    def elsewhere():
        torch.tanh(torch.ones(2, requires_grad=True))  # another thread: no hooks there

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
assert log == ["inner", "outer"]

law("saved-tensors.pack-once-per-save-unpack-once-per-use")
law("saved-tensors.pack-sees-the-live-tensor")
law("saved-tensors.innermost-hooks-win")
law("saved-tensors.hooks-are-thread-local")
law("saved-tensors.hooks-pack-what-double-backward-saves")

# %%
# .. _saved-hook-rules:
#
# What the hooks, and you, must not do
# ------------------------------------
#
# ``pack`` receives the live tensor: writing to it in place would change the forward's values,
# so autograd raises. ``unpack`` must return a tensor. An exception raised in a hook comes out
# of the forward (``pack``) or of ``backward`` (``unpack``) unchanged. And a saved input must not
# be detached in place, or backward refuses to use it.
b = x * 1.0
try:
    with torch.autograd.graph.saved_tensors_hooks(lambda t: t.add_(1), lambda t: t):
        torch.tanh(b)
except RuntimeError as error:
    print("RuntimeError:", str(error)[:80], "...")

with torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: "not a tensor"):
    loss = torch.tanh(x).sum()
try:
    loss.backward()
except TypeError as error:
    print("TypeError:", error)

law("saved-tensors.pack-must-not-modify-its-input")
law("saved-tensors.unpack-must-return-a-tensor")
law("saved-tensors.hook-exceptions-propagate")
law("saved-tensors.detached-saved-input-is-refused")

# %%
# APIs used on this page: ``grad_fn._saved_*`` and ``grad_fn._raw_saved_*`` (``register_hooks``),
# ``torch.autograd.graph.saved_tensors_hooks``, ``Tensor.detach_``.
