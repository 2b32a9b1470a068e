"""
Non-scalar outputs and vector-Jacobian products
===============================================

``backward()`` differentiates a scalar. For an output with several elements you pass a vector
``v`` of the output's shape, and autograd computes the vector-Jacobian product
:math:`v^\\top J`: the gradient of the weighted sum :math:`\\sum_k v_k y_k`. This page covers the
seed tutorial's "gradients of non-scalar outputs" section.
"""

import warnings

import torch
import torch.autograd.forward_ad as fwAD

from specs.rendering.demo import law

# %%
# .. _vjp-implicit:
#
# A non-scalar output needs a ``gradient`` argument
# -------------------------------------------------
#
# Autograd only invents the starting gradient (a one) when the output has exactly one element;
# the shape does not matter. Otherwise you must pass ``gradient`` with exactly the output's shape:
# no broadcasting.
x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
y = x * 2
try:
    y.backward()
except RuntimeError as error:
    print("RuntimeError:", error)
    assert "implicitly created only for scalar outputs" in str(error)
else:
    raise AssertionError("backward() on a 3-element output succeeded")
try:
    y.backward(torch.ones(1))  # broadcastable, but not the same shape
except RuntimeError as error:
    print("RuntimeError:", error)
    assert "Mismatch in shape" in str(error)
else:
    raise AssertionError("a gradient of the wrong shape was accepted")
(x * 2).reshape(1, 1, 3)[..., :1].backward()  # one element of shape (1, 1, 1): fine
assert x.grad.tolist() == [2.0, 0.0, 0.0]

law("vjp.implicit-gradient-needs-one-element")

# %%
law("vjp.gradient-shape-must-match")

# %%
# .. _vjp-definition:
#
# ``y.backward(v)`` is the gradient of ``(y * v).sum()``: the seed's example
# --------------------------------------------------------------------------
#
# For :math:`y = 2x` the Jacobian is :math:`2I`, so :math:`v^\top J = 2v`. With the seed's
# :math:`v = (0.1, 1.0, 0.001)` the gradient is :math:`(0.2, 2.0, 0.002)`. The product is linear
# in ``v``, and several outputs each with their own ``v`` add up.
x = torch.randn(3, requires_grad=True)
y = x * 2
v = torch.tensor([0.1, 1.0, 0.001], dtype=torch.float)
y.backward(gradient=v)
print(f"x.grad after y.backward(v): {x.grad}")
assert torch.allclose(x.grad, 2 * v)

x2 = x.detach().clone().requires_grad_()
(x2 * 2 * v).sum().backward()
assert torch.allclose(x2.grad, x.grad)

law("vjp.backward-v-is-a-weighted-sum")

# %%
law("vjp.linear-in-v")

# %%
law("vjp.roots-add-up")


# %%
# .. _vjp-jacobian:
#
# The Jacobian, one row at a time
# -------------------------------
#
# With the one-hot vector :math:`e_k`, :math:`e_k^\top J` is row :math:`k` of the Jacobian. One
# backward pass per output element rebuilds the whole matrix, which is what
# ``torch.autograd.functional.jacobian`` returns (shape: output shape + input shape).
# ``is_grads_batched=True`` runs all the rows in one call.
def f(t):
    return torch.stack([t[0] * t[1], torch.sin(t[2]), t.sum()])


point = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64, requires_grad=True)
out = f(point)
rows = [torch.autograd.grad(out, point, e_k, retain_graph=True)[0] for e_k in torch.eye(3, dtype=torch.float64)]
jacobian = torch.autograd.functional.jacobian(f, point.detach())
assert jacobian.shape == (3, 3)
assert torch.allclose(torch.stack(rows), jacobian)
batched = torch.autograd.grad(out, point, torch.eye(3, dtype=torch.float64), is_grads_batched=True)[0]
assert torch.allclose(batched, jacobian)
print(jacobian)

law("vjp.one-hot-rows-build-the-jacobian")

# %%
law("vjp.batched-grad-outputs-give-jacobian-rows")

# %%
# .. _vjp-vs-jvp:
#
# VJP (reverse mode) and JVP (forward mode)
# -----------------------------------------
#
# **Correction to the seed tutorial.** It calls this product a "JVP" and says autograd "is
# designed to compute Jacobian-vector products". ``backward`` computes the
# **vector-Jacobian product** :math:`v^\top J` (reverse mode: one pass per *output* direction).
# The **Jacobian-vector product** :math:`J u` is forward mode (``torch.autograd.forward_ad`` or
# ``torch.func.jvp``: one pass per *input* direction). The two are adjoint:
# :math:`\langle v, J u\rangle = \langle J^\top v, u\rangle` for every ``v`` and ``u``.
u = torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)
w = torch.tensor([1.0, 0.5, -2.0], dtype=torch.float64)
with warnings.catch_warnings():
    # torch 2.13 warns once that torch.jit.script is deprecated on first forward-AD use.
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated", category=DeprecationWarning)
    with fwAD.dual_level():
        jvp = fwAD.unpack_dual(f(fwAD.make_dual(point.detach(), u))).tangent  # J u
vjp = torch.autograd.grad(f(point), point, w)[0]  # J^T w
assert torch.allclose(jvp, jacobian @ u) and torch.allclose(vjp, jacobian.T @ w)
assert torch.allclose((w * jvp).sum(), (vjp * u).sum())

law("vjp.adjoint-of-forward-mode")

# %%
# .. _vjp-apis:
#
# The same product through other APIs
# -----------------------------------
#
# ``torch.autograd.grad(y, inputs, grad_outputs=v)`` returns :math:`J^\top v` instead of adding it
# into ``.grad``; ``torch.autograd.functional.vjp`` takes a function and a point.
out_value, functional_vjp = torch.autograd.functional.vjp(f, point.detach(), w)
assert torch.allclose(functional_vjp, vjp)

law("vjp.grad-outputs-is-the-gradient-argument")

# %%
# .. _vjp-dtype:
#
# The gradient's dtype is the input's
# -----------------------------------
#
# A floating-point ``v`` of another dtype than the output is cast to the output's dtype; each
# ``.grad`` has the dtype of its own leaf.
x = torch.tensor([1.0, 2.0], requires_grad=True)
(x * 3).backward(torch.tensor([1.0, 1.0], dtype=torch.float64))
assert x.grad.dtype == torch.float32 and x.grad.tolist() == [3.0, 3.0]

law("vjp.gradient-dtype-follows-the-input")

# %%
# APIs used on this page: ``Tensor.backward(gradient)``, ``torch.autograd.backward``,
# ``torch.autograd.grad`` (``grad_outputs``, ``is_grads_batched``),
# ``torch.autograd.functional.jacobian``, ``torch.autograd.functional.vjp``,
# ``torch.autograd.forward_ad``.
