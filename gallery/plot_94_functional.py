"""
Jacobians and Hessians with torch.autograd.functional
=====================================================

``torch.autograd.functional`` wraps autograd in functions of functions: give it ``f`` and a point
``x`` and it returns the Jacobian, the Hessian, or their products with a vector. Its results agree
with each other and with finite differences; its options choose *how* they are computed
(``vectorize``, ``strategy``), how strict it is about inputs that do not matter (``strict``), and
whether the result can itself be differentiated (``create_graph``).
"""

import torch
from torch.autograd.functional import hessian, hvp, jacobian, jvp, vhp, vjp

from specs.rendering.demo import law

# %%
# .. _functional-jacobian:
#
# The Jacobian, and what it agrees with
# -------------------------------------
#
# ``jacobian(f, x)`` has shape ``f(x).shape + x.shape``. For ``f(x) = sin(x) * x`` it is diagonal,
# with :math:`\cos(x)\,x + \sin(x)` on the diagonal; central finite differences give the same
# numbers.
x = torch.tensor([0.5, -1.0, 1.5], dtype=torch.float64)


def f(t):
    return torch.sin(t) * t


J = jacobian(f, x)
assert J.shape == (3, 3)
assert torch.allclose(J, torch.diag(torch.cos(x) * x + torch.sin(x)))
h = 1e-6
columns = [(f(x + h * e) - f(x - h * e)) / (2 * h) for e in torch.eye(3, dtype=torch.float64)]
assert torch.allclose(J, torch.stack(columns, dim=1), atol=1e-8)

# %%
# With several inputs and outputs, pass the inputs as a tuple: the Jacobian is a tuple of tuples,
# block ``[i][j]`` for output ``i`` and input ``j``.
blocks = jacobian(lambda a, b: (a * b, b.sum()), (x, torch.ones(3, dtype=torch.float64)))
assert torch.allclose(blocks[0][1], torch.diag(x)) and blocks[1][0].abs().sum() == 0

law("functional.jacobian-matches-finite-differences")
law("functional.tuple-jacobians-are-nested")

# %%
# .. _functional-products:
#
# Products instead of matrices
# ----------------------------
#
# Often only a product is needed: ``vjp`` gives :math:`v^\top J` (one backward pass), ``jvp`` gives
# :math:`J u`, and for a scalar function ``hvp`` and ``vhp`` give :math:`H v` and :math:`v^\top H`.
# Each returns the pair ``(f(x), product)``.
v = torch.tensor([1.0, 2.0, -1.0], dtype=torch.float64)
value, left = vjp(f, x, v)
assert torch.allclose(value, f(x)) and torch.allclose(left, v @ J)
_, right = jvp(f, x, v)
assert torch.allclose(right, J @ v)


def energy(t):
    return (t**3).sum()


H = hessian(energy, x)  # diag(6 x)
assert torch.allclose(hvp(energy, x, v)[1], H @ v)
assert torch.allclose(vhp(energy, x, v)[1], v @ H)

law("functional.vjp-and-jvp-are-jacobian-products")
law("functional.hvp-and-vhp-are-hessian-products")

# %%
# .. _functional-strategies:
#
# How it is computed: vectorize and strategy
# ------------------------------------------
#
# By default ``jacobian`` runs one backward pass per output element. ``vectorize=True`` batches
# them with vmap, and ``strategy="forward-mode"`` (which needs ``vectorize=True``) builds the matrix
# column by column with forward-mode AD: cheaper when there are fewer inputs than outputs. The
# Hessian's outer Jacobian can likewise be forward mode ("forward-over-reverse"). The numbers do not
# change.
assert torch.allclose(jacobian(f, x, vectorize=True), J)
assert torch.allclose(jacobian(f, x, vectorize=True, strategy="forward-mode"), J)
assert torch.allclose(hessian(energy, x, vectorize=True, outer_jacobian_strategy="forward-mode"), H)

# %%
# Options that do not go together are refused before anything is computed.
try:
    jacobian(f, x, strategy="forward-mode")
except NotImplementedError as error:
    print("NotImplementedError:", error)

law("functional.vectorize-and-forward-mode-agree")
law("functional.hessian-strategies-agree")
law("functional.options-that-exclude-each-other")

# %%
# .. _functional-strict:
#
# strict: outputs that do not depend on the input
# -----------------------------------------------
#
# If an output does not depend on the input, its Jacobian is zero, and that is what you get by
# default. With ``strict=True`` the same call raises instead, which catches a function that
# accidentally detached its result. For ``hessian``, strict also refuses a *linear* function,
# whose gradient does not depend on the input.
assert torch.equal(jacobian(lambda t: torch.ones(2, dtype=t.dtype), x), torch.zeros(2, 3, dtype=torch.float64))
try:
    jacobian(lambda t: torch.ones(2, dtype=t.dtype), x, strict=True)
except RuntimeError as error:
    print("RuntimeError:", error)
assert torch.equal(hessian(lambda t: (2 * t).sum(), x), torch.zeros(3, 3, dtype=torch.float64))

law("functional.strict-refuses-independent-outputs")
law("functional.strict-hessian-refuses-linear-functions")

# %%
# .. _functional-create-graph:
#
# create_graph: results you can differentiate
# -------------------------------------------
#
# The results carry no graph unless ``create_graph=True``; then they do, even inside
# ``torch.no_grad()`` and even when ``x`` itself does not require grad (the functions detach ``x``
# and make their own copy that does).
with torch.no_grad():
    assert not jacobian(f, x).requires_grad
    differentiable = jacobian(f, x, create_graph=True)
assert differentiable.requires_grad

law("functional.create-graph-makes-results-differentiable")

# %%
# .. _functional-errors:
#
# What the functions refuse
# -------------------------
#
# Hessians are of scalar functions: ``hessian``, ``hvp`` and ``vhp`` of a function with several
# output elements raise, and so does ``vjp`` without ``v`` (it can only guess ``v = 1`` for a single
# element). Inputs, outputs and ``v`` must be tensors or tuples of tensors, in every one of the six
# functions; a list is a ``TypeError``.
try:
    hessian(f, x)
except RuntimeError as error:
    print("RuntimeError:", error)
try:
    jacobian(f, [x])
except TypeError as error:
    print("TypeError:", error)
try:
    vjp(torch.sin, x, [x])
    raise AssertionError("vjp accepted a list as v")
except TypeError as error:
    assert str(error).startswith("The v given to vjp must be")

law("functional.hessian-needs-a-single-element")
law("functional.inputs-and-outputs-are-tensors")

# %%
# APIs used on this page: ``torch.autograd.functional.jacobian``, ``hessian``, ``vjp``, ``jvp``,
# ``hvp``, ``vhp`` and their ``create_graph``, ``strict``, ``vectorize``, ``strategy`` and
# ``outer_jacobian_strategy`` options.
