"""
Leaves, requires_grad and the graph
===================================

Autograd tracks tensors that *require grad*, records every operation on them as a node of a graph,
and after ``backward()`` leaves gradients in the ``.grad`` of the *leaves*: the tensors you created
yourself. This page covers the seed tutorial's "basics" and "computational graph" sections.
"""

import warnings

import torch

from specs.rendering.demo import law

# %%
# .. _leaves-created:
#
# Tensors you create are leaves
# -----------------------------
#
# A tensor made by a factory (``torch.tensor``, ``torch.zeros``, ...) is a *leaf*: nothing
# computed it, so it has no ``grad_fn``. It is tracked only if you ask, either at creation with
# ``requires_grad=True`` or later with ``requires_grad_()``.
x = torch.tensor(2.0, requires_grad=True)
y = torch.tensor(3.0)
y.requires_grad_()
assert x.is_leaf and x.grad_fn is None and x.requires_grad
assert torch.zeros(3).requires_grad is False

law("leaves.created-tensors-are-leaves")

# %%
# .. _leaves-dtypes:
#
# Only floating-point and complex tensors can require grad
# --------------------------------------------------------
#
# Derivatives need a continuum: integer and boolean tensors cannot be tracked, and asking for it
# is an error, not a silent no-op.
try:
    torch.tensor([1, 2, 3], requires_grad=True)
except RuntimeError as error:
    print("RuntimeError:", error)
else:
    raise AssertionError("an integer tensor was allowed to require grad")

law("leaves.integer-dtypes-cannot-require-grad")

# %%
# .. _leaves-propagation:
#
# ``requires_grad`` flows forward
# -------------------------------
#
# When at least one input of an operation requires grad, the result requires grad too, gets a
# ``grad_fn`` and is *not* a leaf. When no input does, the result is an untracked leaf.
z = x**2 + y**3
assert z.requires_grad and not z.is_leaf and z.grad_fn is not None
untracked = torch.tensor(2.0) * 3
assert not untracked.requires_grad and untracked.is_leaf

law("leaves.requires-grad-propagates")

# %%
# .. _leaves-grad-fn:
#
# ``grad_fn`` names the operation
# -------------------------------
#
# Each recorded result points at the backward node of the operation that produced it. Node names
# follow ``<Op>Backward<N>``; the number tells overloads apart. The exact text of a node's repr
# (``<AddBackward0 object at 0x...>``) is an illustration, not an interface, so we compare names.
print(z.grad_fn)
assert z.grad_fn.name() == "AddBackward0"

law("leaves.grad-fn-names-the-op")

# %%
# .. _leaves-backward:
#
# ``backward()`` fills ``.grad``: the seed's worked example
# ---------------------------------------------------------
#
# For :math:`z = x^2 + y^3` at :math:`x = 2, y = 3`: :math:`\partial z/\partial x = 2x = 4` and
# :math:`\partial z/\partial y = 3y^2 = 27`.
z.backward()
print(f"dz/dx = {x.grad.item()}, dz/dy = {y.grad.item()}")
assert x.grad.item() == 4.0
assert y.grad.item() == 27.0

law("leaves.backward-computes-the-gradient")

# %%
# .. _leaves-grad-lands:
#
# Gradients land on leaves only
# -----------------------------
#
# ``backward`` writes ``.grad`` of the leaves that require grad, and nowhere else: not on
# intermediate results, not on leaves that were not tracked.
a = torch.tensor([1.0, 2.0], requires_grad=True)
b = torch.tensor([3.0, 4.0])  # not tracked
c = a * b
c.sum().backward()
assert torch.equal(a.grad, b)
assert b.grad is None

law("leaves.only-leaves-get-grad")

# %%
# .. _leaves-non-leaf-grad:
#
# Reading ``.grad`` of an intermediate warns
# ------------------------------------------
#
# An intermediate's ``.grad`` stays ``None``, and reading it emits a ``UserWarning``, because it
# is nearly always a mistake (the leaf was meant).
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    assert c.grad is None
assert any("not a leaf Tensor" in str(w.message) for w in caught)

law("leaves.non-leaf-grad-access-warns")

# %%
# .. _leaves-retain-grad:
#
# ``retain_grad()`` keeps an intermediate gradient
# ------------------------------------------------
#
# To see the gradient with respect to an intermediate, call ``retain_grad()`` on it before
# ``backward``. On a leaf it does nothing (leaves keep their gradient anyway); on a tensor that
# does not require grad it is an error.
a = torch.tensor([1.0, 2.0], requires_grad=True)
h = a * 3
h.retain_grad()
(h**2).sum().backward()
assert torch.equal(h.grad, 2 * h.detach())  # d(h^2)/dh
assert h.retains_grad

law("leaves.retain-grad-keeps-intermediate-gradient")

# %%
law("leaves.retain-grad-needs-requires-grad")

# %%
# .. _leaves-next-functions:
#
# What the graph is made of (and what it is not)
# ----------------------------------------------
#
# The seed tutorial says "tensors are nodes and operations are edges". It is the other way round
# in PyTorch: the **nodes** are backward functions (``grad_fn`` objects such as ``MulBackward0``,
# and one ``AccumulateGrad`` node per tracked leaf, which writes ``.grad``); the **edges** are
# the ``(node, input_number)`` pairs in ``node.next_functions``, which say where each
# gradient goes next. Tensors are the values carried along the edges. An input that does not
# require grad appears as ``(None, 0)``.
p = torch.tensor([1.0, 2.0], requires_grad=True)
q = torch.tensor([5.0, 6.0])
r = p * q
(edge_to_p, _), (edge_to_q, _) = r.grad_fn.next_functions
assert edge_to_p.name().endswith("AccumulateGrad") and edge_to_p.variable is p
assert edge_to_q is None

# %%
# Here is the graph autograd recorded for the seed's example ``z = x**2 + y**3``, drawn by
# walking ``z.grad_fn.next_functions`` (``specs/graph_drawing.py``; the picture is the walk, no
# more). Boxes are nodes: blue for backward functions, green for the ``AccumulateGrad`` node of
# each leaf. Arrows are the edges, pointing the way gradients flow during ``backward()``. The
# yellow notes are the tensors each node *saved* for backward: ``PowBackward0`` keeps its input,
# because the derivative of :math:`x^2` is :math:`2x`. The tensors ``x``, ``y`` and ``z``
# themselves are not nodes. (``z`` is recorded afresh: the ``backward()`` above freed what the
# first graph saved.)
from specs.rendering import graph_drawing

z = x**2 + y**3
picture = graph_drawing.show(z, {"x": x, "y": y, "z": z}, title="z = x**2 + y**3")
assert [node.name for node in picture.graph.nodes].count("PowBackward0") == 2
assert sorted(line for node in picture.graph.nodes for line in node.saved) == ["self = x", "self = y"]

# %%
# And the graph of ``r = p * q``: the input that needs no gradient is an edge to ``None``, and
# ``MulBackward0`` saves only what the gradient it must compute needs: ``q`` for ``p``'s gradient,
# nothing for the ``q`` that needs none.
picture = graph_drawing.show(r, {"p": p, "q": q, "r": r}, title="r = p * q, q without grad")
assert [node.kind for node in picture.graph.nodes] == ["op", "leaf", "none"]
assert [line for node in picture.graph.nodes for line in node.saved] == ["other = q"]

law("leaves.graph-reaches-exactly-the-grad-leaves")


# %%
# .. _leaves-dynamic:
#
# The graph is rebuilt on every run
# ---------------------------------
#
# PyTorch records the graph while the forward code runs ("define by run"), so ordinary Python
# control flow decides what is recorded, and each run records a fresh graph.
def f(t):
    return torch.sin(t) if t.sum() > 0 else torch.cos(t)


assert f(torch.tensor(1.0, requires_grad=True)).grad_fn.name() == "SinBackward0"
assert f(torch.tensor(-1.0, requires_grad=True)).grad_fn.name() == "CosBackward0"

law("leaves.graph-is-recorded-each-run")

# %%
# .. _leaves-requires-grad-flag:
#
# Only leaves can change their ``requires_grad``
# ----------------------------------------------
#
# Turning tracking off on an intermediate would cut the graph in a hidden way, so it is refused;
# ``detach()`` gives an untracked tensor explicitly (see the page on excluding tensors).
try:
    h.requires_grad_(False)
except RuntimeError as error:
    print("RuntimeError:", error)
else:
    raise AssertionError("a non-leaf's requires_grad was changed")

law("leaves.requires-grad-flag-is-for-leaves")

# %%
# .. _leaves-integer-results:
#
# Integer results leave the graph
# -------------------------------
#
# Comparisons, ``argmax`` and integer casts produce integer or boolean tensors, which cannot carry
# gradients, so they are untracked even when their input is tracked.
assert not (p > 1).requires_grad and not p.argmax().requires_grad and not p.long().requires_grad

law("leaves.integer-results-are-not-tracked")

# %%
# Index-valued ops (``argsort``, ``searchsorted``, the inverse indices of ``unique``, ``isin``) are
# integer or boolean too, so they are untracked as well.
assert not p.argsort().requires_grad and not torch.isin(p, p[:1]).requires_grad

law("leaves.integer-indices-are-not-tracked")

# %%
# .. _leaves-no-graph:
#
# ``backward()`` needs a graph
# ----------------------------
#
# A result that no tracked tensor contributed to has no graph to walk back through.
try:
    (torch.tensor(2.0) ** 2).backward()
except RuntimeError as error:
    print("RuntimeError:", error)
else:
    raise AssertionError("backward without a graph succeeded")

law("leaves.backward-needs-a-graph")

# %%
# .. _leaves-writes:
#
# Writing a tracked value makes the target tracked
# ------------------------------------------------
#
# ``x[0] = y``, ``x += y``, ``x.copy_(y)`` and ``x[0].mul_(y)`` record the write: ``x`` (and the base of
# a written view) now requires grad and has a ``grad_fn``, and the gradient reaches ``y``.
y = torch.tensor(3.0, requires_grad=True)
buffer = torch.zeros(2)
buffer[0] = y
(buffer * torch.tensor([2.0, 5.0])).sum().backward()
assert buffer.requires_grad and not buffer.is_leaf and y.grad.item() == 2.0

law("leaves.writing-a-tracked-value-tracks-the-target")

# %%
# .. _leaves-numpy:
#
# ``numpy()`` refuses a tracked tensor
# ------------------------------------
#
# A NumPy array cannot carry the graph, so ``numpy()`` on a tensor that requires grad raises;
# ``detach().numpy()`` is the way out, and under ``no_grad`` ``numpy()`` works.
try:
    y.numpy()
except RuntimeError as error:
    print("RuntimeError:", error)
else:
    raise AssertionError("numpy() on a tensor that requires grad succeeded")
with torch.no_grad():
    assert y.numpy() == 3.0

law("leaves.numpy-needs-no-grad")

# %%
# APIs used on this page: ``requires_grad``, ``requires_grad_``, ``is_leaf``, ``grad_fn``,
# ``Node.name``, ``Node.next_functions``, ``Tensor.backward``, ``retain_grad``, ``retains_grad``.
