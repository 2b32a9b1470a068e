"""
The custom Function API, at its edges
=====================================

:doc:`plot_70_custom_function` shows how a ``torch.autograd.Function`` is written. This page
collects what happens at the edges: a backward that returns ``None``, a forward that returns its
input, forward-mode AD and ``torch.func`` through a Function, and the mistakes autograd refuses.
"""

import warnings

import torch
import torch.autograd.forward_ad as fwAD

from specs.rendering.demo import law

# %%
# .. _function-api-gradients:
#
# ``None`` from backward means "no gradient", not zero
# ----------------------------------------------------
#
# A backward may return ``None`` for an input: that input then gets no gradient at all, so its
# ``.grad`` stays ``None``. With ``clear_saved_tensors_on_access = True`` a Function frees its saved
# tensors on the first read of ``ctx.saved_tensors``, and a second read raises.


class TwoXPlusY(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, y):
        return 2 * x + y

    @staticmethod
    def backward(ctx, grad):
        return 2 * grad, None  # deliberately no gradient for y


x = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
y = torch.tensor([1.0, 1.0, 1.0], requires_grad=True)
TwoXPlusY.apply(x, y).sum().backward()
assert torch.equal(x.grad, torch.full((3,), 2.0)) and y.grad is None

law("function-api.none-gradient-stays-none")
law("function-api.saved-tensors-cleared-on-access")

# %%
# .. _function-api-views:
#
# Returning an input, or a view of one
# ------------------------------------
#
# A forward that returns its input unchanged still gives back a *new* tensor object, recorded by
# the Function: the gradient is whatever the Function's backward says. Such an output, like a
# view of an input, must not be written in place: autograd cannot combine its view handling with
# your backward, and refuses.


class Identity(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x

    @staticmethod
    def backward(ctx, grad):
        return 3 * grad  # not the true derivative, to show which backward runs


x = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
out = Identity.apply(x)
assert out is not x
out.sum().backward()
assert torch.equal(x.grad, torch.full((3,), 3.0))
try:
    Identity.apply(x * 1.0).mul_(2)
except RuntimeError as error:
    print("RuntimeError:", str(error)[:110], "...")

law("function-api.returned-input-is-a-new-tensor")
law("function-api.view-outputs-are-not-writable")

# %%
# .. _function-api-forward-mode:
#
# Forward mode and ``torch.func`` need more than ``backward``
# -----------------------------------------------------------
#
# Forward-mode AD calls the Function's ``jvp`` staticmethod, with the tensors kept by
# ``ctx.save_for_forward``, and uses what it returns as the tangent; without ``jvp`` it raises.
# ``torch.func`` transforms additionally need the forward written without ``ctx`` and a separate
# ``setup_context``.


class XExpX(torch.autograd.Function):
    @staticmethod
    def forward(x):
        return x * torch.exp(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_forward(inputs[0])

    @staticmethod
    def jvp(ctx, x_t):
        (x,) = ctx.saved_tensors
        return x_t * (1 + x) * torch.exp(x)

    @staticmethod
    def backward(ctx, grad):
        raise NotImplementedError


x = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
with fwAD.dual_level():
    tangent = fwAD.unpack_dual(XExpX.apply(fwAD.make_dual(x, torch.ones(3, dtype=torch.float64)))).tangent
assert torch.allclose(tangent, (1 + x) * torch.exp(x))

law("function-api.forward-mode-uses-jvp")
law("function-api.forward-mode-needs-jvp")
law("function-api.func-transforms-need-setup-context")

# %%
# .. _function-api-definition:
#
# Mistakes in the definition
# --------------------------
#
# A Function needs a ``forward``, and a ``backward`` or a ``vjp`` (not both); the missing or doubled
# method is reported when it would be used. Its methods are static, so instantiating the class
# warns.
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    Identity()
print([str(w.message)[:80] for w in caught])

law("function-api.definition-errors")
law("function-api.instantiating-warns")

# %%
# APIs used on this page: ``torch.autograd.Function`` (``forward``, ``setup_context``, ``backward``,
# ``jvp``, ``vjp``, ``clear_saved_tensors_on_access``), ``ctx.save_for_forward``,
# ``torch.autograd.forward_ad``, ``torch.func.grad``.
