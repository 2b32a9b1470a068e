"""
What .grad looks like: strides, dtype and complex views
=======================================================

``.grad`` has the shape of its leaf, but that leaves choices: its strides, its dtype, and, for
complex numbers seen as real pairs, which numbers it holds. This page states the contract: a new
``.grad`` copies a dense leaf's memory layout, an assigned ``.grad`` must match the leaf,
``grad_dtype`` (torch 2.10 and later) chooses the gradient's dtype, and ``view_as_real`` /
``view_as_complex`` pass gradients through unchanged, except in one corner that PyTorch's own
tests pin as a bug.
"""

import torch

from specs.rendering.demo import law

# %%
# .. _grad-layout-strides:
#
# A new .grad copies the leaf's strides
# -------------------------------------
#
# When backward creates ``.grad`` for a leaf whose elements fill a block of memory exactly once
# (row-major, transposed, channels_last), ``.grad`` gets the same strides, so an optimizer can
# update both with one elementwise pass. For other leaves (a slice with gaps, an ``expand``),
# ``.grad`` is row-major.
transposed = torch.randn(4, 3).t().requires_grad_()
(transposed * 2).sum().backward()
assert transposed.grad.stride() == transposed.stride() == (1, 3)

channels_last = torch.randn(2, 3, 4, 4).contiguous(memory_format=torch.channels_last).requires_grad_()
channels_last.sum().backward()
assert channels_last.grad.stride() == channels_last.stride()

sliced = torch.randn(3, 8)[:, ::2].requires_grad_()
sliced.sum().backward()
assert sliced.stride() == (8, 2) and sliced.grad.stride() == (4, 1)

# %%
# A ``.grad`` that already exists keeps its own strides: backward adds into it in place.
law("grad-layout.new-grad-copies-dense-leaf-strides")
law("grad-layout.existing-grad-keeps-its-strides")

# %%
# .. _grad-layout-assignment:
#
# Assigning .grad
# ---------------
#
# You may assign ``.grad`` yourself (optimizers and gradient clipping do), but only a tensor of the
# leaf's shape, dtype and device; anything else is refused at once and ``.grad`` is left as it was.
x = torch.zeros(3, requires_grad=True)
for wrong in (torch.zeros(4), torch.zeros(3, dtype=torch.float64)):
    try:
        x.grad = wrong
    except RuntimeError as error:
        print("RuntimeError:", str(error).split(".")[0])
assert x.grad is None

law("grad-layout.assigning-a-mismatched-grad-raises")

# %%
# .. _grad-layout-grad-dtype:
#
# grad_dtype: a gradient in another dtype
# ---------------------------------------
#
# Since torch 2.10 a leaf has ``grad_dtype``, by default its own dtype. Set it to another dtype and
# incoming gradients are cast to it (e.g. float32 gradients for a float64 parameter); set it to None
# and any dtype is accepted. It exists on leaves only, and cannot change under an existing ``.grad``.
if hasattr(torch.Tensor, "grad_dtype"):
    w = torch.tensor([0.5, -1.0], dtype=torch.float64, requires_grad=True)
    assert w.grad_dtype == torch.float64
    w.grad_dtype = torch.float32
    (w * 3).sum().backward()
    assert w.grad.dtype == torch.float32 and w.grad.tolist() == [3.0, 3.0]

law("grad-layout.grad-dtype-casts-incoming-gradients")
law("grad-layout.grad-dtype-is-for-leaves")
law("grad-layout.grad-dtype-none-accepts-any-dtype")
law("grad-layout.grad-dtype-is-locked-while-grad-exists")

# %%
# .. _grad-layout-complex-views:
#
# Complex numbers as real pairs
# -----------------------------
#
# ``view_as_real(z)`` shows a complex tensor as (real, imaginary) pairs. A real loss of that view
# gives ``z.grad`` = :math:`\partial L/\partial a + i\,\partial L/\partial b` for each
# :math:`z = a + ib`: the pair's gradient, packed back into one complex number. The other way round,
# a real tensor of pairs seen through ``view_as_complex`` gets the real gradient of the pairs.
z = torch.tensor([1.0 + 2.0j, -0.5 + 0.25j], requires_grad=True)
pairs = torch.view_as_real(z)
(pairs[:, 0] * 3 + pairs[:, 1] ** 2).sum().backward()
assert torch.allclose(z.grad, torch.complex(torch.full((2,), 3.0), 2 * z.detach().imag))

law("grad-layout.view-as-real-gradient-packs-the-pair")
law("grad-layout.view-as-complex-gradient-is-real-pairs")

# %%
# **A known bug.** Transposing the ``view_as_real`` view *in place* (``transpose_``) and then writing
# to it gives the complex base a gradient that is the transpose of the right one. PyTorch's test
# ``test_autograd_inplace_views_cross_dtype`` asserts this wrong result on purpose, so that a fix
# is noticed; this rule does the same, and will fail on the release that fixes it.
a = torch.tensor([[1 + 1j, 2 + 2j], [3 + 3j, 4 + 4j]], requires_grad=True)
upstream = torch.arange(8.0).reshape(2, 2, 2)
b = torch.view_as_real(a.clone()).transpose(0, 1)
b += 1
b.backward(upstream)
right, a.grad = a.grad, None
b = torch.view_as_real(a.clone())
b.transpose_(0, 1)
b += 1
b.backward(upstream)
assert torch.equal(a.grad, right.T) and not torch.equal(a.grad, right)

law("grad-layout.cross-dtype-in-place-transpose-is-transposed")

# %%
# APIs used on this page: ``Tensor.grad``, ``Tensor.stride``, ``torch.channels_last``,
# ``Tensor.grad_dtype``, ``torch.view_as_real``, ``torch.view_as_complex``, ``Tensor.transpose_``.
