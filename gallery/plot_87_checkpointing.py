"""
Checkpointing: trading recomputation for the memory autograd keeps
==================================================================

To compute gradients, autograd keeps tensors from the forward pass (inputs of products, results
of ``tanh``, ...) until backward uses them; for a deep network they dominate memory. Activation
checkpointing keeps only a segment's inputs and recomputes the rest during backward: the same
gradients for less memory and more time. The seed tutorial names the technique among its
practical tips; this page measures it.
"""

import contextlib
import warnings

import matplotlib.pyplot as plt
import torch
from torch.utils.checkpoint import checkpoint, checkpoint_sequential

from specs.families.checkpointing import make_chain, saved_bytes, sqrt_segments
from specs.rendering.demo import law

# %%
# .. _checkpointing-memory:
#
# Measuring what autograd keeps
# -----------------------------
#
# Every tensor saved for backward passes through the ``pack`` hook of
# ``torch.autograd.graph.saved_tensors_hooks``, so adding up ``numel() * element_size()`` there
# measures, deterministically, the bytes kept for backward (see the hooks page). For a chain of
# identical ``Linear`` + ``Tanh`` layers the plain forward keeps the same bytes per layer, so
# memory grows linearly with depth; under ``no_grad`` nothing is kept. ``checkpoint_sequential``
# with :math:`s` segments keeps one input per checkpointed segment plus the layers of the last
# segment, which it runs without checkpointing: with :math:`s \approx \sqrt{N}` both parts grow
# like :math:`\sqrt{N}`.
width, batch = 32, 16
depths = [1, 2, 4, 8, 16, 24, 32, 48, 64]
plain, checkpointed, no_grad = [], [], []
for depth in depths:
    model, x = make_chain(depth, width, batch, torch.float32, seed=0)
    plain.append(saved_bytes(lambda: model(x))[0])
    segments = sqrt_segments(depth)
    checkpointed.append(saved_bytes(lambda: checkpoint_sequential(model, segments, x, use_reentrant=False))[0])
    with torch.no_grad():
        no_grad.append(saved_bytes(lambda: model(x))[0])

per_layer = plain[0]
assert plain == [d * per_layer for d in depths]  # linear in depth
assert all(b == 0 for b in no_grad)
assert checkpointed[-1] < plain[-1] / 4  # 64 layers: well under a quarter

fig, ax = plt.subplots(figsize=(6, 4))
kib = [1024.0] * len(depths)
ax.plot(depths, [b / k for b, k in zip(plain, kib)], "o-", label="plain forward")
ax.plot(
    depths,
    [b / k for b, k in zip(checkpointed, kib)],
    "s-",
    label=r"checkpoint_sequential, $\lceil\sqrt{N}\rceil$ segments",
)
ax.plot(depths, [b / k for b, k in zip(no_grad, kib)], "^-", label="under no_grad")
ax.set_xlabel("depth N (Linear + Tanh layers, width 32, batch 16)")
ax.set_ylabel("KiB kept for backward")
ax.set_title("Bytes packed by saved-tensor hooks")
ax.legend()
fig.tight_layout()

for depth, p, c in zip(depths, plain, checkpointed):
    print(f"N={depth:2d}: plain {p / 1024:7.1f} KiB, checkpointed {c / 1024:6.1f} KiB")

law("checkpointing.memory-is-linear-in-depth")

# %%
law("checkpointing.no-grad-keeps-nothing")

# %%
law("checkpointing.sqrt-segments-keep-sqrt-memory")

# %%
law("checkpointing.keeps-only-the-inputs")

# %%
# .. _checkpointing-same:
#
# Same gradients, forward run twice
# ---------------------------------
#
# ``checkpoint(f, *inputs, use_reentrant=...)`` runs ``f`` without keeping its intermediates, and
# runs it again during backward to get them back. Both variants give the gradients of the plain
# program.
calls = []


def block(t):
    calls.append(torch.is_grad_enabled())
    return torch.tanh(torch.sin(t) * 3)


x = torch.linspace(-1, 1, 5, dtype=torch.float64, requires_grad=True)
block(x).sum().backward()
expected = x.grad.clone()
for use_reentrant in (True, False):
    x.grad = None
    calls.clear()
    out = checkpoint(block, x, use_reentrant=use_reentrant)
    assert len(calls) == 1  # the forward
    out.sum().backward()
    assert len(calls) == 2  # ... and the recomputation in backward
    assert torch.allclose(x.grad, expected, rtol=1e-12, atol=0)

law("checkpointing.same-gradients")

# %%
law("checkpointing.recomputes-the-forward")


# %%
# .. _checkpointing-rng:
#
# Random operations are replayed exactly
# --------------------------------------
#
# The recomputation must see the same random numbers as the forward, or dropout would drop
# different elements in the two runs and the gradient would be wrong. ``checkpoint`` saves the
# RNG state and restores it for the recomputation (``preserve_rng_state=True``, the default).
def noisy(t):
    return torch.nn.functional.dropout(t, p=0.5, training=True) * 2


torch.manual_seed(0)
x = torch.ones(8, requires_grad=True)
noisy(x).sum().backward()
plain_grad = x.grad.clone()
torch.manual_seed(0)
x.grad = None
checkpoint(noisy, x, use_reentrant=False).sum().backward()
assert torch.equal(x.grad, plain_grad)

law("checkpointing.preserves-the-rng-state")

# %%
# .. _checkpointing-sequential:
#
# ``checkpoint_sequential``
# -------------------------
#
# For an ``nn.Sequential`` model, ``checkpoint_sequential(model, segments, x)`` splits the modules
# into ``segments`` runs and checkpoints all but the last; the gradients of the input and of every
# parameter are those of ``model(x)``.
model, x = make_chain(9, 4, 2, torch.float64, seed=1)
model(x).sum().backward()
expected = [p.grad.clone() for p in model.parameters()]
model.zero_grad()
checkpoint_sequential(model, 3, x, use_reentrant=False).sum().backward()
assert all(torch.allclose(p.grad, g, rtol=1e-12, atol=0) for p, g in zip(model.parameters(), expected))

law("checkpointing.sequential-same-gradients")

# %%
# .. _checkpointing-use-reentrant:
#
# Pass ``use_reentrant`` explicitly
# ---------------------------------
#
# There are two implementations. The older, *reentrant* one runs a nested backward and cannot be
# used with ``torch.autograd.grad`` or ``backward(inputs=...)``; the *non-reentrant* one
# (``use_reentrant=False``, recommended) can. Called without ``use_reentrant``, ``checkpoint``
# still uses the reentrant one, and since torch 2.1 it warns (``checkpoint_sequential`` since
# 2.2). The warning has promised, in different releases, that omitting the argument would become
# an error "in 2.4", "in 2.5" and "starting in 2.9" (2.15 says "in a future release"); in 2.13 it
# is still a warning. The spec matches only the warning's stable part, the request to pass
# ``use_reentrant`` explicitly, and records the sentence announcing the exception on every
# release, so the release diff shows the schedule move; when the exception comes, the two rules
# below fail and say so.
x = torch.tensor([0.5, 1.5], requires_grad=True)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    out = checkpoint(torch.tanh, x)
assert any("use_reentrant" in str(w.message) and "explicitly" in str(w.message) for w in caught)
try:
    torch.autograd.grad(out.sum(), [x])
except RuntimeError as error:
    print("RuntimeError:", error)
else:
    raise AssertionError("reentrant checkpoint allowed autograd.grad")
(grad,) = torch.autograd.grad(checkpoint(torch.tanh, x, use_reentrant=False).sum(), [x])
assert torch.allclose(grad, 1 - torch.tanh(x.detach()) ** 2)

law("checkpointing.warns-without-use-reentrant")

# %%
law("checkpointing.default-is-reentrant")

# %%
# .. _checkpointing-nested:
#
# Nesting, options and a recomputation that differs
# -------------------------------------------------
#
# A checkpoint may run inside a checkpointed function, with either implementation at either level;
# the gradients are still the plain ones.
x = torch.linspace(-1, 1, 5, dtype=torch.float64, requires_grad=True)
torch.tanh(torch.sin(x) * 3).sum().backward()
expected = x.grad.clone()
x.grad = None
inner = lambda t: torch.sin(t) * 3  # noqa: E731
checkpoint(lambda t: torch.tanh(checkpoint(inner, t, use_reentrant=False)), x, use_reentrant=True).sum().backward()
assert torch.allclose(x.grad, expected, rtol=1e-12, atol=0)

law("checkpointing.nested-same-gradients")

# %%
# A reentrant checkpoint whose function returns only detached tensors still hands back a result
# that claims ``requires_grad``; the error comes at backward. The non-reentrant one is honest: the
# detached output does not require grad, and an output that does gets its gradient.
out = checkpoint(lambda t: torch.sin(t).detach(), x, use_reentrant=True)
assert out.requires_grad
try:
    out.sum().backward()
except RuntimeError as error:
    print("RuntimeError:", error)
else:
    raise AssertionError("backward through detached reentrant outputs was accepted")
dead, live = checkpoint(lambda t: (torch.sin(t).detach(), torch.sin(t)), x, use_reentrant=False)
assert not dead.requires_grad and live.requires_grad

law("checkpointing.reentrant-needs-an-output-requiring-grad")

# %%
# ``context_fn`` and ``debug`` belong to the non-reentrant implementation; the reentrant one
# refuses them, and any other unknown keyword, with a ``ValueError``.
for keyword in (dict(context_fn=lambda: (contextlib.nullcontext(), contextlib.nullcontext())), dict(debug=True)):
    try:
        checkpoint(torch.sin, x, use_reentrant=True, **keyword)
    except ValueError as error:
        print("ValueError:", error)
    else:
        raise AssertionError(f"use_reentrant=True accepted {list(keyword)}")

law("checkpointing.reentrant-refuses-non-reentrant-options")

# %%
# The non-reentrant implementation checks the tensors the recomputation saves against those the
# forward saved: fewer of them, or one of another shape or dtype, is a ``CheckpointError`` at
# backward.
calls = []


def unsteady(t):
    calls.append(1)
    return torch.tanh(torch.tanh(t)) if len(calls) == 1 else torch.tanh(t)


try:
    checkpoint(unsteady, x, use_reentrant=False).sum().backward()
except RuntimeError as error:
    print(type(error).__name__, str(error).splitlines()[0])
else:
    raise AssertionError("a recomputation that saved fewer tensors was accepted")

law("checkpointing.recomputation-must-save-the-same")

# %%
# APIs used on this page: ``torch.utils.checkpoint.checkpoint`` (``context_fn``, ``debug``),
# ``torch.utils.checkpoint.checkpoint_sequential``, ``torch.autograd.graph.saved_tensors_hooks``,
# ``torch.autograd.grad``, ``torch.nn.functional.dropout``, ``torch.no_grad``, ``matplotlib``.
