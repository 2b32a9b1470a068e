"""
What autograd computes
======================

Differentiation measures how an output changes when an input moves a little. Autograd computes
those derivatives for any program written with torch operations, exactly (up to floating-point
rounding) and without you deriving a formula.
"""

# %%
# Three ways to get a derivative
# ------------------------------
#
# Take :math:`f(x) = x^3 \sin x`. By hand, the product rule gives
# :math:`f'(x) = 3x^2 \sin x + x^3 \cos x`. A computer-algebra system would produce the same
# expression symbolically (and, for large programs, expressions that grow very long). A finite
# difference only approximates it. *Automatic* differentiation does something else: it runs the
# program, records each elementary operation, and applies the chain rule to the recorded
# operations. Its result is exact for the program that ran.
import torch

x = torch.tensor(1.3, dtype=torch.float64, requires_grad=True)
f = x**3 * torch.sin(x)
f.backward()

by_hand = 3 * x.detach() ** 2 * torch.sin(x.detach()) + x.detach() ** 3 * torch.cos(x.detach())
h = 1e-6
with torch.no_grad():
    finite_difference = ((x + h) ** 3 * torch.sin(x + h) - (x - h) ** 3 * torch.sin(x - h)) / (2 * h)

print(f"autograd {x.grad.item():.12f}")
print(f"by hand  {by_hand.item():.12f}")
print(f"finite   {finite_difference.item():.12f}")
assert torch.allclose(x.grad, by_hand, rtol=1e-14, atol=0)  # exact up to rounding
assert torch.allclose(x.grad, finite_difference, rtol=1e-8)  # only approximately

# %%
# What "records each elementary operation" means: running ``f`` left behind this graph (drawn
# by ``specs/graph_drawing.py`` from ``f.grad_fn`` and its ``next_functions``). Each box is the
# backward function of one operation, the green box writes ``x.grad``, and the yellow notes are
# the values each operation saved to apply its part of the chain rule. ``x`` is used twice, so
# two arrows reach its ``AccumulateGrad`` node and their gradients are added: the product rule.
from specs.rendering import graph_drawing

f = x**3 * torch.sin(x)
picture = graph_drawing.show(f, {"x": x, "f": f}, title="f = x**3 * sin(x)")
assert sum(target == len(picture.graph.nodes) - 1 for _, target, _ in picture.graph.edges) == 2

# %%
# Reverse mode: one backward pass for every input
# -----------------------------------------------
#
# PyTorch's autograd works in *reverse mode*: after the forward run it walks the recorded
# operations from the output back to the inputs, carrying the derivative of the output with
# respect to each intermediate value. One such pass gives the derivative of a scalar output with
# respect to *all* inputs at once, which is why it suits training: a loss is one number, the
# parameters are many. (Forward mode, the other direction, needs one pass per input direction; see
# the forward-mode page.)
torch.manual_seed(0)
weights = torch.randn(10_000, dtype=torch.float64, requires_grad=True)
data = torch.randn(10_000, dtype=torch.float64)
loss = torch.tanh(weights * data).sum()
loss.backward()  # one pass ...
assert weights.grad.shape == weights.shape  # ... ten thousand partial derivatives
expected = data * (1 - torch.tanh(weights.detach() * data) ** 2)
assert torch.allclose(weights.grad, expected)

# %%
# The general law behind this page is checked on generated programs: whatever the program,
# the gradient autograd leaves in ``.grad`` agrees with float64 finite differences.
from specs.rendering.demo import law

law("leaves.backward-computes-the-gradient")

# %%
# APIs used on this page: ``Tensor.backward``, ``Tensor.grad``, ``torch.no_grad``.
