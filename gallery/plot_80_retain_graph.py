"""
retain_graph and saved tensors
==============================

To compute gradients, autograd keeps some forward values alive ("saved tensors"). A backward pass
frees them as it goes, which is why a graph can normally be walked only once; ``retain_graph=True``
keeps them, at the cost of the memory they hold.
"""

import weakref

import torch

from specs.rendering.demo import law

# %%
# .. _retain-graph-second-pass:
#
# A second backward through a freed graph fails
# ---------------------------------------------
#
# ``tanh`` saves its result for backward. After the first ``backward()`` that result is gone, so a
# second pass through the same graph raises. ``torch.autograd.grad`` frees the graph the same way.
x = torch.tensor([0.5, -1.0], requires_grad=True)
loss = torch.tanh(x).sum()
loss.backward()
try:
    loss.backward()
except RuntimeError as error:
    print("RuntimeError:", error)
    assert "backward through the graph a second time" in str(error)
else:
    raise AssertionError("a freed graph was walked twice")

law("retain-graph.second-pass-raises")

# %%
# .. _retain-graph-retain:
#
# ``retain_graph=True``: walk it again
# ------------------------------------
#
# With ``retain_graph=True`` the saved tensors survive the pass. Each further ``backward``
# accumulates once more into ``.grad``, so three passes leave three times the gradient. The
# option applies to one call only: the first pass without it frees the graph.
x = torch.tensor([0.5, -1.0], requires_grad=True)
loss = torch.tanh(x).sum()
for _ in range(3):
    loss.backward(retain_graph=True)
assert torch.allclose(x.grad, 3 * (1 - torch.tanh(x.detach()) ** 2))
loss.backward()  # frees the graph now

law("retain-graph.retained-graph-repeats")

# %%
law("retain-graph.last-pass-frees")


# %%
# .. _retain-graph-memory:
#
# What is kept, and for how long
# ------------------------------
#
# The memory autograd keeps for backward can be observed with saved-tensor hooks: the ``pack``
# hook sees every tensor as it is saved. Here it hands autograd a small box, and we keep only weak
# references to the boxes, so they die exactly when autograd lets go of them. (We box a
# ``detach()``-ed tensor: a saved *output* carries its ``grad_fn``, and holding it from the graph
# would make a reference cycle.)
class Box:
    def __init__(self, tensor):
        self.tensor = tensor


def record(x):
    boxes = []

    def pack(tensor):
        box = Box(tensor.detach())
        boxes.append(weakref.ref(box))
        return box

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda box: box.tensor):
        loss = torch.tanh(torch.sin(x)).sum()
    return loss, boxes


x = torch.tensor([0.5, -1.0], requires_grad=True)
loss, boxes = record(x)
assert len(boxes) == 2 and all(b() is not None for b in boxes)  # sin's input, tanh's result
loss.backward()
assert all(b() is None for b in boxes)  # released by the pass

loss, boxes = record(x)
loss.backward(retain_graph=True)
assert all(b() is not None for b in boxes)  # still held...
del loss
assert all(b() is None for b in boxes)  # ...until the graph is dropped

law("retain-graph.saved-tensors-released")

# %%
law("retain-graph.freed-saved-tensor-unreadable")

# %%
# .. _retain-graph-create-graph:
#
# ``create_graph=True`` retains the graph
# ---------------------------------------
#
# Higher-order gradients differentiate through the backward pass, so ``create_graph=True`` keeps
# the graph: ``retain_graph`` defaults to the value of ``create_graph``.
x = torch.tensor(2.0, requires_grad=True)
y = x**3
(g,) = torch.autograd.grad(y, x, create_graph=True)
(again,) = torch.autograd.grad(y, x)  # no error: the graph was kept
assert g.item() == again.item() == 12.0

law("retain-graph.create-graph-retains")

# %%
# .. _retain-graph-shared:
#
# Two losses over one shared subgraph
# -----------------------------------
#
# Freeing is per node. When two losses share part of a graph, the first ``backward`` frees the
# shared part, and the second fails. Either retain the graph in the first call, or (better) add the
# losses and call ``backward`` once.
x = torch.tensor([0.5, -1.0], requires_grad=True)
shared = torch.tanh(x)
first, second = shared.sum(), (shared * 2).sum()
first.backward()
try:
    second.backward()
except RuntimeError as error:
    print("RuntimeError:", error)
else:
    raise AssertionError("the shared subgraph was walked after being freed")

x.grad = None
shared = torch.tanh(x)
(shared.sum() + (shared * 2).sum()).backward()  # the fix: one pass over the sum
assert torch.allclose(x.grad, 3 * (1 - torch.tanh(x.detach()) ** 2))

law("retain-graph.shared-subgraph-freed-by-first-root")

# %%
# .. _retain-graph-implementation-detail:
#
# Graphs that save nothing can be walked twice
# --------------------------------------------
#
# The error is about freed *saved tensors*, not about the graph as such. A graph of additions,
# sums and views saves no tensor, so it can be walked twice without ``retain_graph``; PyTorch's
# own tests assert this (``test_backward_twice_without_saved_values``), and so does the rule
# below. Which ops save tensors is not documented op by op, though, so pass
# ``retain_graph=True`` whenever you mean to walk a graph again.
x = torch.tensor([1.0, 2.0], requires_grad=True)
loss = (x + 1).sum()
loss.backward()
loss.backward()
print("x.grad after two passes over (x + 1).sum():", x.grad.tolist())

law("retain-graph.unsaved-graph-may-repeat")

# %%
# APIs used on this page: ``Tensor.backward`` (``retain_graph=``), ``torch.autograd.grad``
# (``retain_graph=``, ``create_graph=``), ``torch.autograd.graph.saved_tensors_hooks``,
# ``weakref``.
