"""
Gradient accumulation
=====================

``.grad`` is a running sum: every ``backward()`` *adds* to it. That is a feature (it is how
micro-batching and shared weights work) and a classic bug (forgetting to reset it between
optimizer steps).
"""

import torch

from specs.rendering.demo import law

# %%
# .. _accumulation-sums:
#
# Gradients add up across backward calls: the seed's example
# ----------------------------------------------------------
#
# Two results computed from the same leaf, each differentiated once: ``.grad`` ends up as
# :math:`2 + 3 = 5`.
#
# **Correction to the seed tutorial.** It passes ``retain_graph=True`` to the first ``backward``
# and says this is needed because the second call "follows on the same graph portion". It is not
# needed: ``y1`` and ``y2`` are two separate graphs that only share the leaf ``x``, and a leaf's
# ``AccumulateGrad`` node saves nothing. The code below runs without it.
x = torch.tensor(1.0, requires_grad=True)
y1 = x * 2
y2 = x * 3
y1.backward()
assert x.grad.item() == 2.0
y2.backward()  # no retain_graph needed: y2's graph was never freed
assert x.grad.item() == 5.0
print(f"after both passes x.grad = {x.grad.item()}")

law("accumulation.sums-across-backward")

# %%
law("accumulation.accumulates-in-place")

# %%
# .. _accumulation-own-grad:
#
# Each leaf needs a gradient tensor of its own: a torch bug
# ---------------------------------------------------------
#
# Accumulation adds into ``.grad`` in place, so two leaves must never share one ``.grad`` tensor.
# This specification found that they can: when the gradients of two 0-d leaves come from one
# broadcast (``x.sum() + y.sum()``, ``torch.stack([x, y]).sum()``), torch hands both leaves views of
# the same memory, and the second backward pass adds into both at once. The rule is listed in
# ``specs/known-failures.txt`` for the releases it fails on; the example below prints what the
# installed torch does, and the page checks that a wrong result is a *listed* known failure.
from specs.engine.registry import get

a = torch.tensor(0.5, requires_grad=True)
b = torch.tensor(0.25, requires_grad=True)
for _ in range(2):
    (a.sum() + b.sum()).backward()
print(f"after two passes: a.grad = {a.grad.item()}, b.grad = {b.grad.item()} (correct: 2.0 and 2.0)")
print("the two .grad tensors share memory:", a.grad.data_ptr() == b.grad.data_ptr())
holds = a.grad.item() == 2.0 and b.grad.item() == 2.0
assert holds or get("accumulation.leaves-own-their-grad").known_failure()

# %%
# Writing the sum without the reductions avoids it, because each leaf then receives its gradient
# along its own edge of the graph:
a = torch.tensor(0.5, requires_grad=True)
b = torch.tensor(0.25, requires_grad=True)
for _ in range(2):
    (a + b).backward()
assert a.grad.item() == 2.0 and b.grad.item() == 2.0

law("accumulation.leaves-own-their-grad")

# %%
# .. _accumulation-zeroing:
#
# Resetting gradients
# -------------------
#
# ``x.grad.zero_()`` clears the sum in place. ``Module.zero_grad()`` and
# ``Optimizer.zero_grad()`` instead set every ``.grad`` to ``None`` (the default since torch 2.0;
# earlier releases filled them with zeros). ``None`` and zeros differ observably: optimizers skip
# parameters whose ``.grad`` is ``None``.
x.grad.zero_()
assert x.grad.item() == 0.0

model = torch.nn.Linear(3, 1)
model(torch.ones(2, 3)).sum().backward()
assert model.weight.grad is not None
model.zero_grad()
assert model.weight.grad is None

law("accumulation.zeroing-restarts-the-sum")

# %%
law("accumulation.zero-grad-sets-none")

# %%
law("accumulation.zero-grad-can-keep-tensors")

# %%
# .. _accumulation-micro-batches:
#
# Micro-batching: a large batch in small pieces
# ---------------------------------------------
#
# When a batch does not fit in memory, run it in chunks and let the gradients accumulate before
# the optimizer step. With a *summed* loss the result is the full-batch gradient exactly (up to
# rounding). With a *mean* loss each chunk's loss must be divided by the number of chunks,
# otherwise the gradient is that many times too large.
torch.manual_seed(0)
inputs, targets = torch.randn(8, 3, dtype=torch.float64), torch.randn(8, dtype=torch.float64)
w_full = torch.zeros(3, dtype=torch.float64, requires_grad=True)
torch.nn.functional.mse_loss(inputs @ w_full, targets).backward()

w_chunks = torch.zeros(3, dtype=torch.float64, requires_grad=True)
for chunk_x, chunk_y in zip(inputs.chunk(4), targets.chunk(4)):
    (torch.nn.functional.mse_loss(chunk_x @ w_chunks, chunk_y) / 4).backward()
assert torch.allclose(w_chunks.grad, w_full.grad)

law("accumulation.micro-batches-add-up")

# %%
law("accumulation.mean-micro-batches-need-scaling")

# %%
# .. _accumulation-fan-out:
#
# A value used twice gets the sum of both uses
# --------------------------------------------
#
# Accumulation happens inside one backward pass too: when a tensor feeds several operations, the
# gradients flowing back along each use are added. For :math:`y = x \cdot x + x` at
# :math:`x = 3` that is :math:`3 + 3 + 1 = 7`.
x = torch.tensor(3.0, requires_grad=True)
(x * x + x).backward()
assert x.grad.item() == 7.0

law("accumulation.fan-out-sums-contributions")

# %%
# .. _accumulation-broadcast:
#
# Broadcast inputs get reduced gradients
# --------------------------------------
#
# A bias of shape ``(3,)`` added to a ``(4, 3)`` batch is used four times; its gradient is the
# sum over the broadcast dimension and has the bias's own shape.
bias = torch.zeros(3, requires_grad=True)
(torch.ones(4, 3) + bias).sum().backward()
assert bias.grad.shape == (3,) and torch.equal(bias.grad, torch.full((3,), 4.0))

law("accumulation.broadcast-gradients-are-reduced")

# %%
# .. _accumulation-inputs:
#
# Choosing where gradients go: ``backward(inputs=...)``
# -----------------------------------------------------
#
# ``inputs`` restricts accumulation to the listed tensors. Listed intermediates get a ``.grad``
# without ``retain_grad()``. An empty list is an error rather than a silent no-op.
a = torch.tensor(1.0, requires_grad=True)
b = torch.tensor(2.0, requires_grad=True)
(a * b).backward(inputs=[a])
assert a.grad.item() == 2.0 and b.grad is None

law("accumulation.backward-inputs-restricts-accumulation")

# %%
law("accumulation.backward-inputs-fills-non-leaves")

# %%
law("accumulation.backward-inputs-must-not-be-empty")

# %%
# A listed tensor the output does not depend on is allowed: its ``.grad`` stays ``None``.
unused = torch.tensor(1.0, requires_grad=True)
(a * b).backward(inputs=[a, unused])
assert unused.grad is None and a.grad.item() == 4.0

law("accumulation.backward-inputs-allows-unused")

# %%
# .. _accumulation-grad-empty:
#
# ``torch.autograd.grad`` needs inputs
# ------------------------------------
#
# ``grad`` returns one gradient per input; with no inputs it raises instead of returning nothing.
try:
    torch.autograd.grad(a * b, [])
except (RuntimeError, ValueError) as error:
    print(type(error).__name__ + ":", error)
else:
    raise AssertionError("grad with inputs=[] succeeded")

law("accumulation.grad-inputs-must-not-be-empty")

# %%
# .. _accumulation-roots:
#
# Several roots
# -------------
#
# Every root of one call must require grad: an untracked one raises, naming the first such root,
# and nothing is accumulated.
c = torch.tensor(1.0, requires_grad=True)
try:
    torch.autograd.backward([c * 2, torch.tensor(0.0)])
except RuntimeError as error:
    print("RuntimeError:", error)
else:
    raise AssertionError("backward with an untracked root succeeded")
assert c.grad is None

law("accumulation.every-root-must-require-grad")

# %%
# The gradients given with the roots are read, never written: here both reach ``c`` through a
# ``clone`` each and are added on the way, yet ``g`` keeps its value.
g = torch.tensor(1.0)
torch.autograd.backward([c.clone(), c.clone()], [g, torch.tensor(2.0)])
assert g.item() == 1.0 and c.grad.item() == 3.0

# %%
# Except in one case, which this specification found (a torch bug, listed as a known failure): when
# a leaf's gradient is a *view* of the given gradient (the output is ``x.view(...)``,
# ``x.unsqueeze(0)``, or ``x.sum()`` of a 0-d ``x``), the leaf keeps that view as its ``.grad``, and
# the next backward accumulates into it in place, that is into the caller's ``g``. Pass
# ``g.clone()`` if you reuse ``g``.
from specs.engine.known_bugs import GIVEN_GRADIENT_BECOMES_GRAD

x = torch.zeros(2, requires_grad=True)
g = torch.ones(2, 1)
for _ in range(2):
    x.view(2, 1).backward(g)
print("g after two backward calls:", g.flatten().tolist())
if GIVEN_GRADIENT_BECOMES_GRAD.affects():
    assert g.flatten().tolist() == [2.0, 2.0]  # the bug: g was written
else:
    assert g.flatten().tolist() == [1.0, 1.0]

law("accumulation.given-gradients-are-not-modified")

# %%
# APIs used on this page: ``Tensor.backward`` (``inputs=``), ``Tensor.grad``, ``zero_``,
# ``Module.zero_grad``, ``Optimizer.zero_grad``, ``torch.nn.functional.mse_loss``.
