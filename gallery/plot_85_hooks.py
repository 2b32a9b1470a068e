"""
Hooks: watching and changing gradients
======================================

A hook is a function autograd calls for you during ``backward``. Tensor hooks see (and may
replace) the gradient with respect to one tensor; Node hooks see a backward node's inputs and
outputs; saved-tensor hooks decide how the tensors kept for backward are stored.
"""

import torch

from specs.rendering.demo import law

# %%
# .. _hooks-tensor:
#
# Tensor hooks see the gradient and may replace it
# ------------------------------------------------
#
# ``t.register_hook(fn)`` calls ``fn(grad)`` when the gradient with respect to ``t`` has been
# computed, for a leaf or an intermediate alike. If ``fn`` returns a tensor, that tensor is used
# instead: on an intermediate it is what flows on towards the inputs, on a leaf it is what
# ``.grad`` accumulates. Returning ``None`` keeps the gradient.
x = torch.tensor([1.0, 2.0], requires_grad=True)
h = x * 3
seen = []
h.register_hook(lambda g: seen.append(g.clone()))  # returns None: observe only
h.register_hook(lambda g: g * 10)  # replaces the gradient
(h**2).sum().backward()
assert torch.equal(seen[0], 2 * h.detach())  # d(h^2)/dh
assert torch.equal(x.grad, 10 * 3 * 2 * h.detach())  # the replaced gradient flowed on to x

law("hooks.tensor-hook-sees-the-gradient")

# %%
law("hooks.tensor-hook-return-replaces-the-gradient")

# %%
law("hooks.returning-none-keeps-the-gradient")

# %%
# .. _hooks-order:
#
# Order, chaining and removal
# ---------------------------
#
# Several hooks on one tensor run in registration order, each receiving what the previous one
# returned. ``register_hook`` returns a handle; ``handle.remove()`` unregisters the hook. Across
# kinds, one backward step runs: the tensor hook on a node's output, the node's pre-hook, the
# node itself and its post-hook, then the hooks of the next tensor down, and for a leaf its
# post-accumulate-grad hook last.
x = torch.tensor(1.0, requires_grad=True)
x.register_hook(lambda g: g + 1)
x.register_hook(lambda g: g * 5)
handle = x.register_hook(lambda g: g * 1000)
handle.remove()
(x * 2).backward()
assert x.grad.item() == (2 + 1) * 5

law("hooks.hooks-chain-in-registration-order")

# %%
law("hooks.removed-hook-does-not-run")

# %%
law("hooks.hooks-fire-in-a-fixed-order")

# %%
# .. _hooks-errors:
#
# What a hook may not do
# ----------------------
#
# A tensor that does not require grad gets no gradient, so a hook on it is refused at once. A hook
# that returns a gradient of another shape or dtype is caught when backward calls it.
try:
    torch.zeros(2).register_hook(print)
except RuntimeError as error:
    print("RuntimeError:", error)
else:
    raise AssertionError("a hook was registered on a tensor that does not require grad")

y = torch.ones(3, requires_grad=True) * 2
y.register_hook(lambda g: g[:2])  # wrong: drops an element
try:
    y.sum().backward()
except RuntimeError as error:
    assert "changed the size of value" in str(error)
    print("RuntimeError:", error)
else:
    raise AssertionError("a hook changed the gradient's size unnoticed")

law("hooks.hook-needs-requires-grad")

# %%
law("hooks.hook-must-keep-size-and-dtype")

# %%
# .. _hooks-post-accumulate:
#
# After ``.grad`` is updated: post-accumulate-grad hooks
# ------------------------------------------------------
#
# Since torch 2.1, ``p.register_post_accumulate_grad_hook(fn)`` calls ``fn(p)`` with the leaf
# itself once its ``.grad`` holds the new sum, which is where an optimizer step fused into
# backward would go. Such a hook must return ``None`` and only leaves accept one.
w = torch.tensor([1.0, -1.0], requires_grad=True)
totals = []
w.register_post_accumulate_grad_hook(lambda p: totals.append(p.grad.clone()))
for _ in range(2):
    (w * 3).sum().backward()
assert [t.tolist() for t in totals] == [[3.0, 3.0], [6.0, 6.0]]

law("hooks.post-accumulate-hook-sees-the-updated-grad")

# %%
law("hooks.post-accumulate-hook-is-for-leaves")

# %%
# .. _hooks-node:
#
# Node hooks
# ----------
#
# A ``grad_fn`` node accepts a pre-hook, ``register_prehook(fn(grad_outputs))``, called before the
# node runs with the gradients flowing into it, and a post-hook,
# ``register_hook(fn(grad_inputs, grad_outputs))``, called after it. Each may return a tuple that
# replaces the gradients it was given (the pre-hook its ``grad_outputs``, the post-hook its
# ``grad_inputs``).
x = torch.tensor([1.0, 2.0], requires_grad=True)
y = x * x
y.grad_fn.register_prehook(lambda grad_outputs: (grad_outputs[0] * 2,))
y.sum().backward()
assert torch.equal(x.grad, 2 * (2 * x.detach()))

law("hooks.node-prehook-replaces-grad-outputs")

# %%
law("hooks.node-hook-replaces-grad-inputs")

# %%
# .. _hooks-multi:
#
# One hook for several tensors
# ----------------------------
#
# ``torch.autograd.graph.register_multi_grad_hook(tensors, fn)`` calls ``fn`` once for a backward
# that reaches any of the tensors, with all their gradients (``None`` for a tensor the pass does
# not reach); a backward that reaches none of them, or that raises, does not call it. With
# ``mode="any"`` (since torch 2.3) it fires once, with the first gradient computed.
a = torch.tensor(1.0, requires_grad=True)
b = torch.tensor(2.0, requires_grad=True)
calls = []
torch.autograd.graph.register_multi_grad_hook((a, b), lambda grads: calls.append(grads))
(a * b).backward(inputs=[a])
assert len(calls) == 1 and calls[0][0].item() == 2.0 and calls[0][1] is None
(a * 3.0).backward(inputs=[a])
assert len(calls) == 2
c = torch.tensor(3.0, requires_grad=True)
(c * 2.0).backward()  # reaches neither a nor b
assert len(calls) == 2

law("hooks.multi-grad-hook-sees-all-gradients")

# %%
law("hooks.multi-grad-hook-any-fires-once")

# %%
# .. _hooks-saved-tensors:
#
# Saved-tensor hooks: how the tensors kept for backward are stored
# ----------------------------------------------------------------
#
# Inside ``torch.autograd.graph.saved_tensors_hooks(pack, unpack)``, every tensor an operation
# saves for backward goes through ``pack`` when it is saved, and backward uses what ``unpack``
# returns. ``a * b`` saves both factors, so ``pack`` is called twice. A plain backward inside the
# context packs nothing, but ``backward(create_graph=True)`` records the backward's own operations,
# and what they save is packed too. ``save_on_cpu`` is a ready
# pair of such hooks that moves saved tensors to CPU memory; gradients are unchanged. Counting the
# bytes ``pack`` sees is how the checkpointing page measures the memory autograd keeps.
a = torch.tensor([1.0, 2.0], requires_grad=True)
b = torch.tensor([3.0, 4.0], requires_grad=True)
packed = []
with torch.autograd.graph.saved_tensors_hooks(lambda t: packed.append(t) or t, lambda t: t * 0):
    product = a * b
product.sum().backward()
assert len(packed) == 2
assert torch.equal(a.grad, torch.zeros(2))  # backward used the unpacked (zeroed) b

law("hooks.pack-runs-while-recording")

# %%
law("hooks.unpack-result-is-used")

# %%
law("hooks.save-on-cpu-keeps-gradients")

# %%
# .. _hooks-in-place:
#
# Hooks, ``retain_grad`` and in-place operations
# ----------------------------------------------
#
# A hook belongs to the tensor's ``grad_fn`` at the moment it is registered. After an in-place
# op the tensor has a new ``grad_fn``: a hook registered before it receives the gradient with
# respect to the *old* value, one registered after it the gradient with respect to the *new*
# value, and runs first. ``retain_grad`` instead follows the tensor, and always stores the
# gradient after every tensor hook has run. Both rules hold since torch 2.0.
x = torch.tensor(1.0, requires_grad=True)
a = x * 1.0
log = []
a.retain_grad()
a.register_hook(lambda g: log.append(("before", g.item())))
a.mul_(2)
a.register_hook(lambda g: log.append(("after", g.item())))
(a * 3).backward()
assert log == [("after", 3.0), ("before", 6.0)]
assert a.grad.item() == 3.0  # the gradient with respect to the new value

law("hooks.hooks-bind-to-the-grad-fn")

# %%
law("hooks.retain-grad-runs-after-hooks")

# %%
law("hooks.retain-grad-follows-in-place")

# %%
# APIs used on this page: ``Tensor.register_hook``, ``RemovableHandle.remove``,
# ``Tensor.register_post_accumulate_grad_hook``, ``Node.register_hook``, ``Node.register_prehook``,
# ``torch.autograd.graph.register_multi_grad_hook``, ``torch.autograd.graph.saved_tensors_hooks``,
# ``torch.autograd.graph.save_on_cpu``, ``Tensor.retain_grad``.
