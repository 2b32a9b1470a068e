"""
In-place operations and the version counter
===========================================

An in-place op (a method ending in ``_``, an indexed assignment, an ``out=`` argument) overwrites
a tensor's memory. Autograd may still need the old values, so every tensor carries a version
counter, and backward refuses to use a saved tensor whose version moved on.
"""

import re

import torch

from specs.rendering.demo import law

# %%
# .. _inplace-version:
#
# Every write bumps ``_version``
# ------------------------------
#
# ``_version`` counts the in-place writes to a tensor's memory. Views and ``detach()`` share the
# counter with their base, because they share the memory.
t = torch.zeros(3)
assert t._version == 0
t.add_(1.0)
t[0] = 5.0
torch.mul(t, 2.0, out=t)
assert t._version == 3
_ = t + 1  # reading does not count
assert t._version == 3

view, detached = t[1:], t.detach()
view.mul_(2.0)
assert t._version == detached._version == view._version == 4

law("inplace.version-counts-writes")

# %%
law("inplace.aliases-share-the-version")

# %%
# .. _inplace-saved:
#
# Overwriting a saved tensor is caught at backward
# ------------------------------------------------
#
# ``exp`` saves its result for backward (:math:`(e^x)' = e^x`). Overwrite that result and backward
# raises, naming the saved and current versions. The wording of the op name changed in torch 2.13
# (``output 0 of Exp``; earlier releases said ``output 0 of ExpBackward0``), so the check below
# accepts both.
x = torch.tensor([0.0, 1.0, 2.0], requires_grad=True)
y = torch.exp(x)
y.add_(1.0)  # the anti-pattern: y is needed by exp's backward
try:
    y.sum().backward()
except RuntimeError as error:
    message = str(error)
    print("RuntimeError:", message)
else:
    raise AssertionError("backward used an overwritten saved tensor")
assert re.search(r"output 0 of Exp(Backward0)?, is at version 1; expected version 0", message)

# The fix: write the new value to a new tensor.
x.grad = None
y = torch.exp(x)
z = y + 1.0
z.sum().backward()
assert torch.allclose(x.grad, torch.exp(x.detach()))

law("inplace.modified-saved-tensor-raises")

# %%
# .. _inplace-leaves:
#
# Leaves that require grad refuse in-place writes
# -----------------------------------------------
#
# Writing into a parameter would make ``.grad`` meaningless, so it is an error, also through a
# view or an indexed assignment. Under ``torch.no_grad()`` the write is allowed and not recorded:
# that is how an optimizer updates its parameters.
w = torch.tensor([1.0, 2.0], requires_grad=True)
for attempt in (lambda: w.mul_(2.0), lambda: w.__setitem__(0, 0.0)):
    try:
        attempt()
    except RuntimeError as error:
        print("RuntimeError:", error)
    else:
        raise AssertionError("an in-place write to a leaf that requires grad was allowed")

torch.sin(w).sum().backward()
with torch.no_grad():
    w -= 0.1 * w.grad  # an SGD step
assert w.is_leaf and w.grad_fn is None and w._version == 1

law("inplace.leaf-requiring-grad-refuses")

# %%
law("inplace.leaf-write-allowed-without-grad")

# %%
law("inplace.view-of-leaf-refuses")

# %%
# .. _inplace-views:
#
# Writing through a view of an intermediate is tracked
# ----------------------------------------------------
#
# A write through a view of an intermediate result is recorded on the base (its ``grad_fn``
# becomes a ``CopySlices`` node), and gradients come out right.
x = torch.ones(4, requires_grad=True)
y = x * 2
y[:2].mul_(3.0)
y.sum().backward()
assert x.grad.tolist() == [6.0, 6.0, 2.0, 2.0]

law("inplace.view-of-intermediate-is-tracked")

# %%
# .. _inplace-safe:
#
# When an in-place op is safe
# ---------------------------
#
# An in-place op is safe when no node saved the tensor it overwrites. ``sin`` saves its *input*,
# not its output, so scaling ``sin``'s result in place is fine; ``exp`` saves its *output*, so
# the same rewrite after ``exp`` is caught at backward. The rules below check this on generated
# programs rewritten op by op.
a = torch.tensor([0.5, 1.0], requires_grad=True)
torch.sin(a).mul_(2.0).sum().backward()
assert torch.allclose(a.grad, 2 * torch.cos(a.detach()))

law("inplace.unsaved-writes-match-out-of-place")

# %%
law("inplace.saved-output-writes-are-caught")

# %%
# .. _inplace-output-saving:
#
# In-place activations: ``relu_``, ``sigmoid_``
# ---------------------------------------------
#
# ``relu_`` and ``sigmoid_`` save their *result*: they write first and save after, so they are
# correct on an intermediate. They replace the tensor's ``grad_fn`` and return the tensor itself.
# Writing to that result once more is what breaks backward.
x = torch.tensor([-1.0, 2.0], requires_grad=True)
h = x * 1.0
assert h.relu_() is h and h.grad_fn.name().startswith("ReluBackward")
h.sum().backward()
assert x.grad.tolist() == [0.0, 1.0]

law("inplace.output-saving-ops-in-place")

# %%
law("inplace.write-replaces-grad-fn")

# %%
# .. _inplace-refused:
#
# Writes that are always refused
# ------------------------------
#
# The views returned together by ``unbind``, ``split`` and ``chunk`` cannot be written in place,
# and ``out=`` does not record a graph, so it is refused when an input requires grad.
x = torch.ones(2, 3, requires_grad=True)
try:
    (x * 2).unbind(0)[0].mul_(2.0)
except RuntimeError as error:
    print("RuntimeError:", error)
else:
    raise AssertionError("an unbind output was written in place")

law("inplace.multi-output-views-refuse")

# %%
law("inplace.out-argument-refuses-grad")

# %%
# APIs used on this page: ``Tensor._version``, ``Tensor.detach``, in-place methods (``add_``,
# ``mul_``, ``relu_``, ``sigmoid_``), indexed assignment, ``out=``, ``torch.no_grad``,
# ``Tensor.unbind``.
