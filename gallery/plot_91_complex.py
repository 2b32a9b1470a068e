"""
Complex gradients
=================

A complex tensor can require grad, and ``backward()`` fills its ``.grad`` with a complex tensor.
Which complex number that is, is a convention; PyTorch's is chosen so that a real loss still goes
down when you step against ``.grad``, exactly as for real parameters.
"""

import torch

from specs.rendering.demo import law

# %%
# .. _complex-convention:
#
# The convention: the partial derivatives as one complex number
# -------------------------------------------------------------
#
# Write :math:`z = x + iy`. For a *real* loss :math:`L(z)`, PyTorch's ``z.grad`` is
# :math:`\partial L/\partial x + i\,\partial L/\partial y`, which is twice the conjugate Wirtinger
# derivative :math:`\partial L/\partial \bar z`. For :math:`L = |z|^2 = x^2 + y^2` that is
# :math:`2x + 2iy = 2z`. (JAX returns :math:`\partial L/\partial z` instead, the conjugate of
# this up to the factor; ports between the two need a ``conj``.)
z = torch.tensor([1.0 + 2.0j, -0.5 + 0.0j], requires_grad=True)
(z.abs() ** 2).sum().backward()
assert torch.allclose(z.grad, 2 * z.detach())

# The same numbers from the real and imaginary parts as two real leaves:
x = torch.tensor([1.0, -0.5], requires_grad=True)
y = torch.tensor([2.0, 0.0], requires_grad=True)
(x**2 + y**2).sum().backward()
assert torch.allclose(z.grad, torch.complex(x.grad, y.grad))

# %%
# A loss must be real: ``backward()`` will not invent a starting gradient for a complex output.
try:
    (z * z).sum().backward()
except RuntimeError as error:
    print("RuntimeError:", error)
    assert "real scalar outputs" in str(error)
else:
    raise AssertionError("backward() on a complex scalar succeeded")

law("complex-grad.grad-is-dl-dx-plus-i-dl-dy")

# %%
law("complex-grad.abs-squared-gives-2z")

# %%
law("complex-grad.complex-output-needs-a-gradient")

# %%
# .. _complex-holomorphic:
#
# Holomorphic functions: the conjugate of the derivative
# ------------------------------------------------------
#
# For a holomorphic :math:`f` (``z * z``, ``exp``, ``sin``, ...) and an incoming gradient
# :math:`v`, the convention works out to :math:`\overline{f'(z)}\,v`: for ``z * z`` with ``v = 1``,
# ``z.grad`` is :math:`\overline{2z}`, not :math:`2z`.
z = torch.tensor([1.0 + 2.0j], requires_grad=True)
(z * z).backward(torch.ones(1, dtype=torch.complex64))
assert torch.allclose(z.grad, torch.conj(2 * z.detach()))
assert not torch.allclose(z.grad, 2 * z.detach())

law("complex-grad.holomorphic-gets-conjugate-derivative")

# %%
# .. _complex-real-through:
#
# Real functions through complex intermediates
# --------------------------------------------
#
# A real function may be computed with complex numbers in between, e.g.
# :math:`2\,\mathrm{Re}(e^{ix}) = 2\cos x`. The real input's gradient is real and is the one of the
# real formula: :math:`-2 \sin x`.
x = torch.tensor([0.3, 1.2], dtype=torch.float64, requires_grad=True)
(2 * torch.polar(torch.ones_like(x), x).real).sum().backward()
assert x.grad.dtype == torch.float64
assert torch.allclose(x.grad, -2 * torch.sin(x.detach()))

law("complex-grad.real-function-through-complex-is-real")


# %%
# .. _complex-gradcheck:
#
# ``gradcheck`` knows the convention
# ----------------------------------
#
# ``torch.autograd.gradcheck`` accepts complex inputs and checks a backward against finite
# differences of the real and imaginary parts. A custom Function for ``z * z`` whose backward
# returns the textbook :math:`f'(z)\,v = 2z\,v` fails it; :math:`\overline{2z}\,v` passes.
class Square(torch.autograd.Function):
    @staticmethod
    def forward(ctx, t):
        ctx.save_for_backward(t)
        return t * t

    @staticmethod
    def backward(ctx, v):
        (t,) = ctx.saved_tensors
        return torch.conj(2 * t) * v


class NaiveSquare(Square):
    @staticmethod
    def backward(ctx, v):
        (t,) = ctx.saved_tensors
        return 2 * t * v  # the derivative without the conjugate: wrong here


w = torch.tensor([0.5 + 1.0j, -1.0 + 0.5j], dtype=torch.complex128, requires_grad=True)
assert torch.autograd.gradcheck(Square.apply, (w,))
assert not torch.autograd.gradcheck(NaiveSquare.apply, (w,), raise_exception=False)

law("complex-grad.gradcheck-checks-the-convention")

# %%
# .. _complex-descent:
#
# Why this convention: gradient descent works unchanged
# -----------------------------------------------------
#
# Because ``z.grad`` packs the two real partial derivatives, ``z - lr * z.grad`` is ordinary
# gradient descent on the pair :math:`(x, y)`, and any optimizer works on complex parameters as
# they are. Here SGD pulls ``z`` to the target.
target = torch.tensor([1.0 - 1.0j, 0.5j])
z = torch.zeros(2, dtype=torch.complex64, requires_grad=True)
optimizer = torch.optim.SGD([z], lr=0.1)
for _ in range(100):
    optimizer.zero_grad()
    loss = ((z - target).abs() ** 2).sum()
    loss.backward()
    optimizer.step()
assert torch.allclose(z.detach(), target, atol=1e-4)

law("complex-grad.gradient-descent-descends")

# %%
# APIs used on this page: complex tensors with ``requires_grad``, ``Tensor.backward``,
# ``torch.complex``, ``torch.polar``, ``torch.conj``, ``torch.autograd.Function``,
# ``torch.autograd.gradcheck``, ``torch.optim.SGD``.
