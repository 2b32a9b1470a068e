"""
Gradients under torch.compile
=============================

``torch.compile`` traces a function into a graph and compiles it; AOTAutograd also traces and
compiles its backward. None of the rules of this tutorial change: gradients, custom Functions and
tensor hooks behave as in eager mode. The examples use the ``aot_eager`` backend, which runs the
traced graphs without generating kernels, so they build quickly.
"""

import torch

from specs.rendering.demo import law


# %%
# .. _compiled-programs:
#
# Compiled code has eager's gradients
# -----------------------------------
#
# ``fullgraph=True`` makes a graph break an error, so the whole function really is compiled.
def f(x, w):
    return torch.tanh(x @ w).sum(dim=0) * torch.sigmoid(w).mean()


x = torch.tensor([[0.5, -1.0], [2.0, 0.25], [0.0, 1.5]], dtype=torch.float64, requires_grad=True)
w = torch.tensor([[1.0, -0.5], [0.3, 0.8]], dtype=torch.float64, requires_grad=True)
torch.compile(f, backend="aot_eager", fullgraph=True)(x, w).sum().backward()
compiled_grads = (x.grad.clone(), w.grad.clone())
x.grad = w.grad = None
f(x, w).sum().backward()
assert torch.allclose(compiled_grads[0], x.grad) and torch.allclose(compiled_grads[1], w.grad)

law("compiled.aot-eager-matches-eager")

# %%
law("compiled.inductor-matches-eager")


# %%
# .. _compiled-custom:
#
# Custom Functions keep their backward
# ------------------------------------
#
# A custom ``autograd.Function`` called inside compiled code is traced with its own ``backward``:
# here a deliberately unusual backward (twice the true derivative) shows that the compiled graph
# uses it rather than differentiating the forward.
class DoubledSquare(torch.autograd.Function):
    @staticmethod
    def forward(ctx, t):
        ctx.save_for_backward(t)
        return t * t

    @staticmethod
    def backward(ctx, grad):
        (t,) = ctx.saved_tensors
        return 4 * t * grad  # twice d(t*t)/dt, on purpose


t = torch.tensor([1.0, -2.0], requires_grad=True)
torch.compile(lambda t: DoubledSquare.apply(t).sum(), backend="aot_eager", fullgraph=True)(t).backward()
assert t.grad.tolist() == [4.0, -8.0]

law("compiled.custom-function-matches-eager")


# %%
# .. _compiled-hooks:
#
# Tensor hooks inside compiled code
# ---------------------------------
#
# A hook registered on an intermediate inside the compiled function still runs during backward.
def hooked(t):
    y = torch.sin(t)
    y.register_hook(lambda grad: grad * 2)
    return (y * y).sum()


t = torch.tensor([0.5, 1.0], dtype=torch.float64, requires_grad=True)
torch.compile(hooked, backend="aot_eager")(t).backward()
assert torch.allclose(t.grad, 2 * 2 * torch.sin(t.detach()) * torch.cos(t.detach()))

law("compiled.tensor-hooks-are-honoured")

# %%
# .. _compiled-autograd:
#
# Compiled autograd
# -----------------
#
# Compiled autograd (a prototype since torch 2.4) goes further: it captures the *backward* pass
# that the autograd engine runs, for eager forward code too, and compiles it. The gradients do not
# change. It is a private API (``torch._dynamo.compiled_autograd``), so the rule that checks it
# reports itself not applicable on releases without it.
from torch._dynamo import compiled_autograd  # noqa: E402 - shown where it is used

t = torch.tensor([0.5, 1.0], dtype=torch.float64, requires_grad=True)
with compiled_autograd._enable(torch.compile(backend="aot_eager")):
    (torch.sin(t) * t).sum().backward()
assert torch.allclose(t.grad, torch.sin(t.detach()) + t.detach() * torch.cos(t.detach()))

law("compiled.compiled-autograd-matches-eager")

# %%
# APIs used on this page: ``torch.compile`` (``backend="aot_eager"``, ``fullgraph``),
# ``torch.autograd.Function``, ``Tensor.register_hook``,
# ``torch._dynamo.compiled_autograd._enable``.
