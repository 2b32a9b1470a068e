"""
Higher-order derivatives
========================

A gradient computed with ``create_graph=True`` is itself a recorded result, so it can be
differentiated again: second derivatives, Hessian-vector products, Hessians. This page covers the
seed tutorial's "higher-order derivatives" section and the options of ``torch.autograd.grad``.
"""

import warnings

import torch

from specs.engine.versions import at_least
from specs.rendering.demo import law

# %%
# .. _higher-order-create-graph:
#
# Gradients of gradients: the seed's example
# ------------------------------------------
#
# For :math:`y = x^3` at :math:`x = 2`: :math:`dy/dx = 3x^2 = 12` and
# :math:`d^2y/dx^2 = 6x = 12`. Without ``create_graph=True`` the first gradient is a plain
# number with no history, and asking for its gradient fails.
x = torch.tensor(2.0, requires_grad=True)
y = x**3
grad_y_x = torch.autograd.grad(outputs=y, inputs=x, create_graph=True)[0]
grad2_y_x2 = torch.autograd.grad(outputs=grad_y_x, inputs=x)[0]
print(f"dy/dx = {grad_y_x.item()}, d2y/dx2 = {grad2_y_x2.item()}")
assert grad_y_x.item() == 12.0 and grad2_y_x2.item() == 12.0

plain = torch.autograd.grad(x**3, x)[0]  # anti-pattern: no create_graph
assert plain.grad_fn is None
try:
    torch.autograd.grad(plain, x)
except RuntimeError as error:
    print("RuntimeError:", error)
else:
    raise AssertionError("a gradient without create_graph was differentiated")

law("higher-order.second-grad-needs-create-graph")

# %%
law("higher-order.nth-derivative-of-a-power")

# %%
law("higher-order.hvp-matches-finite-differences")

# %%
# .. _higher-order-autograd-grad:
#
# ``torch.autograd.grad`` returns, ``backward`` accumulates
# ---------------------------------------------------------
#
# ``torch.autograd.grad`` hands the gradients back and leaves every ``.grad`` alone, which is
# what you want inside a loss (gradient penalties) or an inner optimisation loop. It can also
# differentiate with respect to an intermediate value.
w = torch.tensor([1.0, 2.0], requires_grad=True)
h = w * 3
(g,) = torch.autograd.grad((h**2).sum(), h)
assert torch.equal(g, 2 * h.detach()) and w.grad is None

law("higher-order.grad-leaves-dot-grad-alone")

# %%
law("higher-order.grad-of-an-intermediate")

# %%
# .. _higher-order-unused:
#
# Inputs the output does not depend on
# ------------------------------------
#
# Asking for the gradient with respect to an unused input is an error by default (it usually
# means a bug in the model). ``allow_unused=True`` returns ``None`` for it; since torch 2.1,
# ``materialize_grads=True`` returns zeros instead. The error's wording changed in torch 2.13,
# which names the input's index instead of saying "One of the differentiated Tensors".
a = torch.tensor(1.0, requires_grad=True)
unused = torch.tensor(5.0, requires_grad=True)
try:
    torch.autograd.grad(a * 2, [a, unused])
except RuntimeError as error:
    print("RuntimeError:", error)
    assert "appears to not have been used in the graph" in str(error)
else:
    raise AssertionError("an unused input was accepted")
assert torch.autograd.grad(a * 2, [a, unused], allow_unused=True)[1] is None
if at_least("2.1"):
    assert torch.autograd.grad(a * 2, [a, unused], materialize_grads=True)[1].item() == 0.0

law("higher-order.unused-input-raises")

# %%
law("higher-order.allow-unused-gives-none")

# %%
law("higher-order.materialize-grads-gives-zeros")

# %%
# .. _higher-order-retain:
#
# ``create_graph`` keeps the graph
# --------------------------------
#
# ``retain_graph`` defaults to the value of ``create_graph``: a graph differentiated with
# ``create_graph=True`` is kept (the new graph refers to it), so it can be walked again.
z = torch.tensor(0.5, requires_grad=True)
out = torch.exp(z) * z
first = torch.autograd.grad(out, z, create_graph=True)[0]
again = torch.autograd.grad(out, z)[0]  # no retain_graph needed
assert torch.equal(first.detach(), again)

law("higher-order.retain-graph-defaults-to-create-graph")


# %%
# .. _higher-order-hessian:
#
# Hessians and Hessian-vector products
# ------------------------------------
#
# Differentiating :math:`\langle \nabla f, u\rangle` gives :math:`H u` at the cost of about two
# gradients, without forming :math:`H`. ``torch.autograd.functional.hvp`` does the same, and
# ``torch.autograd.functional.hessian`` builds the whole (symmetric) matrix.
def f(t):
    return (t[0] ** 2 * t[1] + torch.sin(t[1]) * t[2]).sum()


p = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
u = torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64)
(grad,) = torch.autograd.grad(f(p), p, create_graph=True)
(hvp,) = torch.autograd.grad((grad * u).sum(), p)
hessian = torch.autograd.functional.hessian(f, p.detach())
assert torch.allclose(hessian, hessian.T)
assert torch.allclose(hvp, hessian @ u)
assert torch.allclose(torch.autograd.functional.hvp(f, p.detach(), u)[1], hvp)
print(hessian)

law("higher-order.hvp-matches-functional")

# %%
law("higher-order.hessian-is-symmetric")

# %%
# .. _higher-order-backward:
#
# ``backward(create_graph=True)`` and its reference cycle
# -------------------------------------------------------
#
# ``backward`` also accepts ``create_graph=True``; the ``.grad`` it leaves has a history. That
# history points back at the parameter, which holds the ``.grad``: a reference cycle, which
# PyTorch warns about (once per process). Prefer ``torch.autograd.grad``, or set ``.grad`` to
# ``None`` when done.
q = torch.tensor(2.0, requires_grad=True)
always = torch.is_warn_always_enabled()
torch.set_warn_always(True)  # the warning is shown once per process otherwise
try:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (q**3).backward(create_graph=True)
finally:
    torch.set_warn_always(always)
assert any("reference cycle" in str(w.message) for w in caught)
assert q.grad.item() == 12.0 and q.grad.grad_fn is not None
(second,) = torch.autograd.grad(q.grad, q)
assert second.item() == 12.0
q.grad = None  # break the cycle

law("higher-order.backward-create-graph-warns")

# %%
# APIs used on this page: ``torch.autograd.grad`` (``create_graph``, ``retain_graph``,
# ``allow_unused``, ``materialize_grads``), ``Tensor.backward(create_graph=True)``,
# ``torch.autograd.functional.hessian``, ``torch.autograd.functional.hvp``,
# ``torch.set_warn_always``.
