"""
Sparse gradients
================

An embedding table may have millions of rows while a batch looks up a few dozen. With
``sparse=True`` its gradient is a sparse COO tensor holding only the rows that were used. It is
the same gradient as the dense one, stored differently; this page shows where sparse gradients
come from, how they accumulate with dense ones, and what layout ``.grad`` ends up with.
"""

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from specs.rendering.demo import law

# %%
# .. _sparse-embedding:
#
# A sparse embedding gradient is the dense one, stored sparsely
# -------------------------------------------------------------
#
# Row 1 is looked up twice and row 3 once. The gradient has one stored entry per lookup (repeats
# are not merged until the tensor is coalesced), and its dense value adds up the gradients of all
# lookups of a row.
table = torch.nn.Embedding(5, 2, sparse=True)
indices = torch.tensor([1, 3, 1])
upstream = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
(table(indices) * upstream).sum().backward()
grad = table.weight.grad
assert grad.layout == torch.sparse_coo
print("stored entries:", grad._nnz())
dense = grad.to_dense()
assert dense[1].tolist() == [6.0, 8.0] and dense[3].tolist() == [3.0, 4.0]
assert dense[[0, 2, 4]].abs().sum() == 0

fig, ax = plt.subplots(figsize=(3, 3))
ax.imshow(dense.numpy(), cmap="Blues")
ax.set_xlabel("embedding dimension")
ax.set_ylabel("row of the table")
ax.set_title("weight.grad.to_dense()")
fig.tight_layout()

# %%
# ``padding_idx`` marks a row that never learns: its gradient is zero, sparse or dense.
weight = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)
F.embedding(torch.tensor([0, 2, 0]), weight, padding_idx=0, sparse=True).sum().backward()
assert weight.grad.to_dense()[0].abs().sum() == 0

law("sparse.embedding-gradient-is-sparse")
law("sparse.padding-row-gets-no-gradient")

# %%
# .. _sparse-gather:
#
# gather with sparse_grad=True
# ----------------------------
#
# ``torch.gather`` can return its source's gradient as a sparse tensor too; it equals the dense
# gradient, a ``scatter_add`` of the incoming gradient.
source = torch.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
torch.gather(source, 1, torch.tensor([[2, 2, 0]]), sparse_grad=True).sum().backward()
assert source.grad.layout == torch.sparse_coo
assert source.grad.to_dense().tolist() == [[1.0, 0.0, 2.0]]

law("sparse.gather-sparse-grad-equals-dense")

# %%
# .. _sparse-accumulation:
#
# Sparse and dense gradients accumulate
# -------------------------------------
#
# Two sparse gradients give a sparse ``.grad``. As soon as a dense gradient joins, in either order,
# ``.grad`` is dense; the values are always the sum. A sparse gradient is added *into* an existing
# dense ``.grad``; a dense gradient *replaces* a sparse ``.grad`` with a new tensor.
weight = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)
F.embedding(indices, weight, sparse=True).sum().backward()
F.embedding(indices, weight, sparse=True).sum().backward()
assert weight.grad.layout == torch.sparse_coo
(weight * 1.0).sum().backward()
assert weight.grad.layout == torch.strided
assert weight.grad[1].tolist() == [5.0, 5.0]  # 2 lookups x 2 passes + 1 from the dense pass

law("sparse.mixed-accumulation-becomes-dense")
law("sparse.dense-grad-is-updated-in-place")

# %%
# .. _sparse-leaves:
#
# Sparse leaves
# -------------
#
# A sparse tensor can itself be a leaf. ``torch.sparse.mm(S, D)`` gives ``S`` a sparse gradient
# holding only the entries ``S`` stores (the dense gradient :math:`g D^\top`, masked), and converting
# between layouts sends back a gradient in the layout of the leaf it reaches. ``values()`` is
# differentiable; the raw accessor ``_values()`` is not.
S = torch.tensor([[1.0, 0.0], [0.0, 2.0]]).to_sparse().requires_grad_()
D = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
torch.sparse.mm(S, D).sum().backward()
assert S.grad.layout == torch.sparse_coo
assert S.grad.to_dense().tolist() == [[3.0, 0.0], [0.0, 7.0]]  # row sums of D, on S's entries only

law("sparse.sparse-mm-masks-the-gradient")
law("sparse.conversions-keep-the-leaf-layout")
law("sparse.private-values-are-not-differentiable")

# %%
# ``gradcheck`` takes sparse inputs: with ``masked=True`` it perturbs and compares only the stored
# entries. A sparse *output* it refuses; convert it with ``to_dense()`` first.
S64 = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64).to_sparse().requires_grad_()
D64 = D.detach().double()
assert torch.autograd.gradcheck(lambda s: torch.sparse.mm(s, D64), (S64,), masked=True)

law("sparse.gradcheck-takes-sparse-inputs-not-outputs")

# %%
# APIs used on this page: ``torch.nn.Embedding(sparse=True)``, ``torch.nn.functional.embedding``,
# ``torch.gather(sparse_grad=True)``, ``torch.sparse.mm``, ``Tensor.to_sparse``, ``Tensor.to_dense``,
# ``Tensor.values``, ``matplotlib``.
