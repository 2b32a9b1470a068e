"""
The derivative atlas
====================

The atlas is a table of 639 differentiable ops of ``torch``, ``torch.linalg``, ``torch.special``,
``torch.fft``, ``torch.masked`` and ``torch.nn.functional`` (``specs/atlas/table.py``): for each,
the code that calls it, the domain of its inputs and its special points. Generic laws check every
op against float64 finite differences and against its other modes; at the special points, what
torch returns is recorded, so that a release that changes one op's gradient at one kink shows up
in the release diff.
"""

import matplotlib.pyplot as plt
import torch

from specs.atlas import evaluate
from specs.atlas.table import TABLE
from specs.rendering.demo import law

# %%
# .. _atlas-laws:
#
# Laws over every op
# ------------------
#
# An entry is data. Its code is what runs, and what a failure prints as the repro.
entry = TABLE["torch.atan2(a, b)"]
case = evaluate.generic(entry, seed=0)
print(case.repro("out.sum().backward()"))
a, b = case.tensors()
torch.atan2(a, b).sum().backward()
assert torch.allclose(a.grad, b.detach() / (a.detach() ** 2 + b.detach() ** 2))

# %%
# Reverse mode is compared with central differences along a random direction ``v`` and cotangent
# ``w`` (one backward and two evaluations, however many inputs), forward mode with reverse mode
# through the adjoint identity, and second derivatives both ways. Each law runs on every entry of
# the table at its canonical input, then on entries and inputs that hypothesis draws.
law("atlas.reverse-matches-finite-differences")
law("atlas.forward-is-adjoint-of-reverse")
law("atlas.second-order-matches-finite-differences")
law("atlas.forward-over-forward-matches-reverse-over-reverse")
law("atlas.derivatives-keep-dtype-and-shape")
law("atlas.missing-derivatives-raise")

# %%
# .. _atlas-edges:
#
# Kinks, ties and bounds
# ----------------------
#
# Where an op is not differentiable it still returns a gradient. PyTorch's note on
# non-differentiable functions asks for the subgradient of minimum norm where the function is
# locally convex or concave: 0 for ``relu`` at 0, and an even split for a tie between maxima.
# ``clamp`` departs from it at its bounds (it passes the gradient on), and ``max`` along a
# dimension gives a tie to one element.
points = torch.linspace(-1.5, 1.5, 301, dtype=torch.float64)
figure, axes = plt.subplots(1, 3, figsize=(10, 3))
for axis, (title, function, kink) in zip(
    axes,
    [
        ("relu at 0", torch.relu, 0.0),
        ("clamp(x, -0.5, 1) at its bounds", lambda t: t.clamp(-0.5, 1.0), 1.0),
        ("maximum(x, 0.5) at the tie", lambda t: torch.maximum(t, torch.full_like(t, 0.5)), 0.5),
    ],
):
    axis.plot(points, function(points), label="value")
    x = torch.tensor([kink], dtype=torch.float64, requires_grad=True)
    function(x).sum().backward()
    slope = x.grad.item()
    span = torch.tensor([kink - 0.6, kink + 0.6], dtype=torch.float64)
    axis.plot(
        span,
        function(torch.tensor([kink], dtype=torch.float64)) + slope * (span - kink),
        "--",
        label=f"torch's gradient: {slope:g}",
    )
    axis.set_title(title)
    axis.legend(loc="upper left", fontsize=8)
figure.tight_layout()

assert torch.relu(torch.tensor([0.0], requires_grad=True)).sum().grad_fn is not None
law("atlas.edges-are-recorded")

# %%
# .. _atlas-conventions:
#
# The convention, and the ops that depart from it
# -----------------------------------------------
#
# The oracle is independent of torch's formulas: each smooth piece meeting at the point is reached
# by a small nudge, its gradient is taken by finite differences, and the minimum-norm point of the
# segment between the pieces' gradients is the convention's answer. Ops known to depart are listed
# in the table with the reason; any other departure fails the rule.
law("atlas.kinks-take-the-minimum-norm-subgradient")

# %%
# The same note asks that a NaN in the incoming gradient is not silently dropped where it is used.
law("atlas.nan-in-the-incoming-gradient-propagates")
departures = sorted(f"{name} @ {p.name}" for name, e in TABLE.items() for p in e.points if p.departs)
print("\n".join(departures))

# %%
# APIs used: :func:`torch.autograd.grad`, :mod:`torch.autograd.forward_ad`, :func:`torch.func.jvp`,
# :class:`torch.overrides.TorchFunctionMode` (the coverage meter).
