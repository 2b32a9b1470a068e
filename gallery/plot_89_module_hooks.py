"""
Module hooks: gradients at a module's boundary
==============================================

``nn.Module`` offers hooks on the gradients entering and leaving a whole module, whatever
operations its ``forward`` records: a *full backward pre-hook* sees the gradients with respect to
the module's outputs before its backward runs, a *full backward hook* sees those and the gradients
with respect to its inputs afterwards. Either may replace what it sees.
"""

import warnings

import torch

from specs.rendering.demo import law


class Scale(torch.nn.Module):
    """sin(weight * x): one weight, one input."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.tensor([0.5, -1.0, 2.0]))

    def forward(self, x):
        return torch.sin(self.weight * x)


# %%
# .. _module-hooks-full:
#
# What a full backward hook receives, and what its result replaces
# ----------------------------------------------------------------
#
# ``register_full_backward_hook(fn)`` calls ``fn(module, grad_input, grad_output)`` once per
# backward: ``grad_output`` holds the gradients with respect to the module's outputs (``None`` for
# an output the loss does not use), ``grad_input`` those with respect to its inputs. A tuple it
# returns replaces ``grad_input``; the weights' gradients, computed inside the module, stay as
# they were. If no input requires grad, the hook still fires, with ``None`` grad_inputs and a
# warning.
m = Scale()
x = torch.tensor([1.5, 0.25, -0.75], requires_grad=True)
seen = []
m.register_full_backward_hook(lambda mod, grad_input, grad_output: seen.append((grad_input, grad_output)))
m(x).sum().backward()
(grad_input,), (grad_output,) = seen[0]
assert torch.equal(grad_output, torch.ones(3))
assert torch.allclose(grad_input, x.grad)

m = Scale()
m.register_full_backward_hook(lambda mod, grad_input, grad_output: (grad_input[0] * 0,))
x.grad = None
m(x).sum().backward()
assert torch.equal(x.grad, torch.zeros(3)) and m.weight.grad.abs().sum() > 0

law("module-hooks.full-hook-sees-input-and-output-gradients")
law("module-hooks.full-hook-return-replaces-grad-input")
law("module-hooks.unused-output-gets-none")
law("module-hooks.no-input-gradient-warns")

# %%
# In a double backward the full hook runs again only if the second pass goes through the module's
# output again. The gradient of ``MSELoss`` is :math:`2(x - y)/n`, a formula in the module's
# inputs only, so differentiating it does not run the hook a second time.
calls = []
mse = torch.nn.MSELoss()
mse.register_full_backward_hook(lambda mod, grad_input, grad_output: calls.append("hook"))
x2 = torch.tensor([0.5, -1.0], dtype=torch.float64, requires_grad=True)
(first,) = torch.autograd.grad(mse(x2, torch.zeros_like(x2)), x2, create_graph=True)
(second,) = torch.autograd.grad(first.sum(), x2)
assert calls == ["hook"] and second.tolist() == [1.0, 1.0]

law("module-hooks.double-backward-reruns-hooks-only-through-the-output")

# %%
# .. _module-hooks-pre:
#
# Full backward pre-hooks
# -----------------------
#
# ``register_full_backward_pre_hook(fn)`` calls ``fn(module, grad_output)`` before the module's
# backward; a tuple it returns replaces ``grad_output``, so everything below, weights included,
# receives the replaced gradients, and the full hook then sees them too. In each backward the
# pre-hook runs first, then the hook, once each.
m = Scale()
order = []
m.register_full_backward_pre_hook(lambda mod, grad_output: (order.append("pre-hook"), (grad_output[0] * 2,))[1])
m.register_full_backward_hook(lambda mod, grad_input, grad_output: order.append("hook"))
x.grad = None
m(x).sum().backward()
assert order == ["pre-hook", "hook"]
assert torch.allclose(x.grad, 2 * torch.cos(m.weight * x).detach() * m.weight.detach())

law("module-hooks.pre-hook-replaces-grad-output")
law("module-hooks.hooks-run-once-pre-hook-first")

# %%
# .. _module-hooks-errors:
#
# What the hooks refuse
# ---------------------
#
# A hook must return one gradient per input (pre-hook: per output), or ``None``. To see the
# gradients at the boundary, the module's inputs and outputs are wrapped in identity nodes; those
# wrapped tensors are views that must not be written in place, inside ``forward`` or after it.
m = Scale()
m.register_full_backward_hook(lambda mod, grad_input, grad_output: None)
try:
    m(x).add_(1)
except RuntimeError as error:
    print("RuntimeError:", str(error)[:90], "...")

law("module-hooks.hooks-must-return-one-gradient-per-tensor")
law("module-hooks.wrapped-tensors-are-not-writable")

# %%
# .. _module-hooks-forward:
#
# Forward hooks run inside the backward hooks' boundary
# -----------------------------------------------------
#
# A forward pre-hook may replace the inputs and a forward hook the output. The full backward hook
# is set up around both: ``grad_output`` is taken at the output the forward hook returned, and
# ``grad_input`` at the inputs the forward pre-hook returned.
m = Scale()
m.register_forward_pre_hook(lambda mod, args: (args[0] * 3,))
m.register_forward_hook(lambda mod, args, out: out * 5)
seen = []
m.register_full_backward_hook(lambda mod, grad_input, grad_output: seen.append((grad_input[0], grad_output[0])))
x.grad = None
m(x).sum().backward()
grad_input, grad_output = seen[0]
assert torch.equal(grad_output, torch.ones(3))  # at the forward hook's output
assert torch.allclose(x.grad, 3 * grad_input)  # grad_input is at 3 * x

law("module-hooks.forward-hooks-run-inside-the-backward-hooks")

# %%
# .. _module-hooks-legacy:
#
# The old ``register_backward_hook``
# ----------------------------------
#
# The non-full ``register_backward_hook`` attaches to the last node of the forward only, so for a
# forward of several nodes its ``grad_input`` is not the module's. It warns then, and a module
# cannot carry both kinds.
m = Scale()
m.register_backward_hook(lambda mod, grad_input, grad_output: None)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    m(x)
print([f"{w.category.__name__}: {str(w.message)[:70]} ..." for w in caught])

law("module-hooks.non-full-hook-is-deprecated")

# %%
# APIs used on this page: ``nn.Module.register_full_backward_hook``,
# ``nn.Module.register_full_backward_pre_hook``, ``nn.Module.register_forward_pre_hook``,
# ``nn.Module.register_forward_hook``, ``nn.Module.register_backward_hook``.
