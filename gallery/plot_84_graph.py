"""
The graph API: edges, nodes and version counters
================================================

``torch.autograd.graph`` exposes the recorded graph itself: the ``Node`` objects behind every
``grad_fn``, gradient edges that name "the gradient flowing into this node", the version counters
autograd checks, and a few graph-wide switches. This page shows what each of them promises.
"""

import torch

from specs.rendering.demo import law

# %%
# .. _graph-gradient-edge:
#
# A gradient edge stands for a tensor, even after the tensor changes
# -------------------------------------------------------------------
#
# ``get_gradient_edge(t)`` returns ``GradientEdge(node, output_nr)``: the node that produced
# ``t`` (for a leaf, its ``AccumulateGrad`` node) and which of its outputs ``t`` is. Passing the
# edge as ``inputs`` of ``torch.autograd.grad`` gives the gradient with respect to ``t``. Because
# the edge names a node, not a tensor object, an edge taken before an in-place operation keeps
# naming the *old* value. Since torch 2.2.
x = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
a = x.exp()
edge = torch.autograd.graph.get_gradient_edge(a)
print(edge.node.name(), edge.output_nr)
a.mul_(2)  # a is now 2 * exp(x), recorded by a new node
old, new = torch.autograd.grad(torch.sin(a).sum(), [edge, a])
assert torch.allclose(new, torch.cos(a.detach()))
assert torch.allclose(old, 2 * new)  # d sin(2 u) / du = 2 cos(2 u): the old value's gradient

law("graph.gradient-edge-stands-for-its-tensor")
law("graph.gradient-edge-keeps-the-old-value")

# %%
# ``materialize_grads=True`` turns "no gradient" into zeros for tensors. An edge that the output
# does not reach has no tensor to take the shape of, so that combination raises.
stranger = torch.zeros(2, requires_grad=True) * 1.0
loss = (x * 3).sum()
print(torch.autograd.grad(loss, [stranger], materialize_grads=True, retain_graph=True))
try:
    torch.autograd.grad(loss, [torch.autograd.graph.get_gradient_edge(stranger)], materialize_grads=True)
except RuntimeError as error:
    print("RuntimeError:", error)

law("graph.unreached-edge-refuses-materialize-grads")

# %%
# .. _graph-nodes:
#
# Nodes: names, edges to the inputs, and a scratch dict
# -----------------------------------------------------
#
# Every ``grad_fn`` is a ``torch.autograd.graph.Node``; ``name()`` is its class name and
# ``next_functions`` lists, per input, the node the gradient goes to next: a leaf's one
# ``AccumulateGrad`` node (whose ``.variable`` is the leaf), or ``None`` for an input that does
# not require grad. ``metadata`` is a dict of your own per node. A Node hook must return one
# gradient per slot, or backward refuses it.
w = torch.tensor([1.0, 2.0, 3.0])  # does not require grad
y = x * w
z = x * x
assert isinstance(y.grad_fn, torch.autograd.graph.Node)
print(y.grad_fn.name(), y.grad_fn.next_functions)
assert y.grad_fn.next_functions[1][0] is None
assert y.grad_fn.next_functions[0][0] is z.grad_fn.next_functions[0][0]  # one AccumulateGrad per leaf
assert y.grad_fn.next_functions[0][0].variable is x
y.grad_fn.metadata["note"] = "scaled by w"
assert y.grad_fn.metadata == {"note": "scaled by w"}

law("graph.grad-fn-is-a-node")
law("graph.leaf-has-one-accumulate-grad-node")
law("graph.node-metadata-is-a-dict-per-node")
law("graph.node-hook-must-return-one-gradient-per-slot")

# %%
# Node hooks belong to the node, so whether they run depends on whether the node runs. Asking
# ``torch.autograd.grad`` for the gradient with respect to ``a`` stops *at* ``a``: its tensor hooks
# run, but ``a.grad_fn`` does not, and neither do its hooks. For the same reason ``a.retain_grad()``
# stores the gradient after ``a``'s tensor hooks but before ``a.grad_fn``'s pre-hooks.
a = x * 2
log = []
a.register_hook(lambda g: log.append("tensor hook"))
a.grad_fn.register_prehook(lambda grad_outputs: log.append("node pre-hook"))
torch.autograd.grad(torch.sin(a).sum(), [a])
assert log == ["tensor hook"]

law("graph.grad-to-a-tensor-skips-its-node-hooks")
law("graph.retained-grad-skips-node-prehooks")

# %%
# .. _graph-versions:
#
# Bumping a version counter by hand
# ---------------------------------
#
# Every in-place operation adds one to the tensor's version counter, and a node that saved the
# tensor refuses to run if the version moved. ``increment_version(t)`` does the bump without
# writing anything: for code that mutates a tensor behind autograd's back (since torch 2.1).
u = x.exp()
torch.autograd.graph.increment_version(u)
assert u._version == 1
try:
    u.sum().backward()
except RuntimeError as error:
    print("RuntimeError:", str(error)[:120], "...")

law("graph.increment-version-bumps-the-counter")

# %%
# .. _graph-mutation:
#
# Mutating saved tensors on purpose
# ---------------------------------
#
# Inside ``allow_mutation_on_saved_tensors()`` an in-place write to a saved tensor does not break
# backward: autograd clones the saved value before the write, and the gradients are those of the
# values as they were saved. The graph must be backwarded inside the same context, and the
# context does not nest.
with torch.autograd.graph.allow_mutation_on_saved_tensors():
    b = x.clone()
    s = torch.sin(b).sum()  # sin saves b
    b.mul_(10)
    s.backward()
assert torch.allclose(x.grad, torch.cos(x.detach()))
x.grad = None

law("graph.allow-mutation-on-saved-gives-original-gradients")
law("graph.allow-mutation-on-saved-needs-its-context")

# %%
# .. _graph-disable-hooks:
#
# Forbidding saved-tensor hooks in a region
# -----------------------------------------
#
# Code that relies on saved tensors being stored as they are (a custom pack scheme of its own, for
# instance) can forbid ``saved_tensors_hooks`` in a region; entering hooks there raises a
# ``RuntimeError`` with the message you gave, word for word.
with torch.autograd.graph.disable_saved_tensors_hooks("this library stores saved tensors itself"):
    try:
        with torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t):
            pass
    except RuntimeError as error:
        assert str(error) == "this library stores saved tensors itself"

law("graph.disabled-saved-tensors-hooks-raise-the-message")

# %%
# .. _graph-multi-grad-hook:
#
# Hooks over several tensors: when they do not fire
# -------------------------------------------------
#
# ``register_multi_grad_hook`` (see :ref:`hooks-multi`) waits for a backward that reaches at least
# one of its tensors and finishes: a pass that reaches none of them, or that raises, does not call
# it. Its mode is ``"all"`` or ``"any"``; an ``"any"`` hook runs before the tensor hooks of its
# tensors.
p = torch.tensor(1.0, requires_grad=True)
q = torch.tensor(2.0, requires_grad=True)
calls = []
torch.autograd.graph.register_multi_grad_hook([p, q], lambda grads: calls.append(grads))
(torch.tensor(3.0, requires_grad=True) * 2).backward()  # reaches neither p nor q
assert calls == []
(p * q).backward()
assert len(calls) == 1

law("graph.multi-grad-hook-waits-for-a-reached-tensor")
law("graph.multi-grad-hook-mode-is-all-or-any")
law("graph.any-hook-runs-before-tensor-hooks")

# %%
# APIs used on this page: ``torch.autograd.graph.get_gradient_edge``, ``GradientEdge``,
# ``torch.autograd.graph.Node`` (``name``, ``next_functions``, ``metadata``, ``register_prehook``),
# ``torch.autograd.graph.increment_version``, ``torch.autograd.graph.allow_mutation_on_saved_tensors``,
# ``torch.autograd.graph.disable_saved_tensors_hooks``, ``torch.autograd.graph.register_multi_grad_hook``.
