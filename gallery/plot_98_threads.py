"""
Threads and reentrant backward
==============================

``backward`` may be called from several Python threads at once, and from inside another
``backward`` (a custom Function's backward, or a hook, that differentiates something itself).
This page states what you get in each case.
"""

import threading

import torch

from specs.rendering.demo import law

# %%
# .. _threads-independent:
#
# Separate graphs in separate threads
# -----------------------------------
#
# Each thread that records its own graph from its own leaves and calls ``backward`` gets exactly
# the gradients it would get alone: the threads share the engine, not the results.
results = {}


def train_step(k):
    w = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
    (torch.exp(w) * k).sum().backward()
    results[k] = w.grad


threads = [threading.Thread(target=train_step, args=(k,)) for k in (1.0, 2.0, 3.0)]
for t in threads:
    t.start()
for t in threads:
    t.join()
for k, grad in results.items():
    assert torch.allclose(grad, k * torch.exp(torch.tensor([0.5, -1.0, 2.0])))

law("threads.independent-graphs-match-sequential")

# %%
# The engine itself runs backward on worker threads (one per device).
# ``torch.autograd.set_multithreading_enabled(False)`` turns that off for the calling thread, as a
# context manager that restores the previous setting; the gradients are the same.
with torch.autograd.set_multithreading_enabled(False):
    assert not torch.autograd.is_multithreading_enabled()
assert torch.autograd.is_multithreading_enabled()

law("threads.multithreading-switch-is-thread-local")

# %%
# .. _threads-shared:
#
# Shared leaves and shared graphs
# -------------------------------
#
# Threads that each record a graph from the *same* leaves all accumulate into the leaves'
# ``.grad``: n threads leave the sum of n gradients (in an order that may vary, so the last bits
# may too). ``torch.autograd.grad`` writes no ``.grad`` and is the safe way to differentiate one
# shared graph from several threads, with ``retain_graph=True``. Without it, the first backward
# frees the graph's saved tensors and every later one raises.
w = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
threads = [threading.Thread(target=lambda: torch.exp(w).sum().backward()) for _ in range(3)]
for t in threads:
    t.start()
for t in threads:
    t.join()
assert torch.allclose(w.grad, 3 * torch.exp(w.detach()))

law("threads.shared-leaf-accumulates-every-thread")
law("threads.concurrent-grad-leaves-dot-grad-alone")
law("threads.freed-shared-graph-refuses-later-threads")

# %%
# .. _threads-reentrant:
#
# Backward inside backward
# ------------------------
#
# A custom Function's backward may itself record a graph (under ``enable_grad``: backward runs
# with grad mode off) and differentiate it with ``torch.autograd.grad`` or ``backward``. This
# *reentrant* backward gives the usual gradients, nests hundreds of levels deep, and an error
# raised deep inside comes out of the outermost call. A tensor hook may do the same.


class SinViaReentrantGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sin(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        with torch.enable_grad():
            inner = x.detach().requires_grad_()
            (g,) = torch.autograd.grad(torch.sin(inner), inner, grad)
        return g


x = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
SinViaReentrantGrad.apply(x).sum().backward()
assert torch.allclose(x.grad, torch.cos(x.detach()))

law("threads.reentrant-backward-gives-the-gradient")
law("threads.reentrant-backward-nests")
law("threads.nested-backward-error-reaches-the-caller")
law("threads.backward-inside-a-hook")

# %%
# .. _threads-grad-mode:
#
# Grad mode inside backward
# -------------------------
#
# Backward sets grad mode for the backward functions it runs: on when ``create_graph=True``,
# off otherwise, whatever the caller's mode. A backward function that changes grad mode does not
# change the caller's.


seen = []


class Probe(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        seen.append(torch.is_grad_enabled())
        return grad


y = Probe.apply(x).sum()
torch.autograd.grad(y, x, retain_graph=True)
torch.autograd.grad(y, x, create_graph=True)
assert seen == [False, True]

law("threads.backward-sets-grad-mode-for-its-nodes")

# %%
# APIs used on this page: ``threading.Thread``, ``Tensor.backward``, ``torch.autograd.grad``,
# ``torch.autograd.Function``, ``torch.enable_grad``, ``torch.is_grad_enabled``.
