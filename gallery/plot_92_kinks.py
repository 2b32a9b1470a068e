"""
Gradients at kinks, ties and NaN traps
======================================

Where a function has a corner, a jump or a tie, it has no derivative, and each op simply picks a
value. These picks are conventions that a release can change, so every value on this page is
asserted, and was checked on torch 2.13.0. The second half shows how a NaN reaches a gradient
through a value that was masked away, and the standard fix.
"""

import torch
import torch.nn.functional as F

from specs.rendering.demo import law


def grad_of(function, values, dtype=torch.float64):
    x = torch.tensor(values, dtype=dtype, requires_grad=True)
    function(x).sum().backward()
    return x.grad


# %%
# .. _kinks-relu:
#
# The ReLU family at its corner
# -----------------------------
#
# ``relu`` takes the left-hand slope at 0 (gradient 0), ``leaky_relu`` too (its negative slope),
# while ``elu`` takes the right-hand one (1). ``relu6`` has gradient 0 at both corners, 0 and 6.
assert grad_of(torch.relu, [0.0]).item() == 0.0
assert grad_of(lambda t: F.leaky_relu(t, 0.1), [0.0]).item() == 0.1
assert grad_of(F.elu, [0.0]).item() == 1.0
assert grad_of(F.relu6, [0.0, 6.0]).tolist() == [0.0, 0.0]

# %%
# **Note on the seed tutorial.** Its ``MyCustomReLU`` zeroes the gradient where ``input < 0``, so
# at exactly 0 it passes the gradient (1), unlike the built-in ``torch.relu`` (0). On the seed's
# input ``[-1, 2, -0.5]`` the two agree, and the seed's expected ``[0., 1., 0.]`` is right. (The
# seed's class, exactly as written there, is defined on the custom-function page.)
from specs.families.custom_function import SeedReLU as MyCustomReLU  # noqa: E402

x = torch.tensor([-1.0, 2.0, -0.5], requires_grad=True)
MyCustomReLU.apply(x).backward(torch.tensor([1.0, 1.0, 1.0]))
assert x.grad.tolist() == [0.0, 1.0, 0.0]
assert grad_of(MyCustomReLU.apply, [0.0]).item() == 1.0
assert grad_of(torch.relu, [0.0]).item() == 0.0

law("kinks.relu-family-at-zero")

# %%
# .. _kinks-abs-sqrt:
#
# ``abs``, norms and ``sqrt`` at zero
# -----------------------------------
#
# ``abs`` at 0 gets 0 (its gradient is ``sign(x)``), and the norm of a zero vector gets 0 instead
# of the NaN that :math:`x / \|x\|` would give. ``sqrt`` at 0 has no convention: its gradient is
# the limit, ``+inf``, and even a zero incoming gradient turns that into NaN (:math:`0 \cdot \infty`).
assert grad_of(torch.abs, [0.0]).item() == 0.0
assert grad_of(torch.linalg.vector_norm, [0.0, 0.0]).tolist() == [0.0, 0.0]
assert grad_of(torch.sqrt, [0.0]).item() == float("inf")
assert grad_of(lambda t: torch.sqrt(t) * 0, [0.0]).isnan().item()

law("kinks.abs-and-norm-at-zero")

# %%
law("kinks.sqrt-at-zero-is-infinite")

# %%
# .. _kinks-power-atan2:
#
# Powers and ``atan2`` at zero
# ----------------------------
#
# :math:`\partial 0^b / \partial b = 0^b \ln 0` is :math:`-\infty` for :math:`b < 0`; for
# :math:`b \ge 0` the formula is :math:`0 \cdot (-\infty)` and PyTorch takes 0, the slope of
# :math:`0^b = 0` for :math:`b > 0`. :math:`x^0` is the constant 1, so its gradient at 0 is 0, and
# ``atan2`` at :math:`(0, 0)`, where both partial derivatives are :math:`0/0`, gets :math:`(0, 0)`.
assert grad_of(lambda b: torch.pow(0.0, b), [-1.0, 0.0, 1.0]).tolist() == [float("-inf"), 0.0, 0.0]
assert grad_of(lambda x: x**0.0, [0.0]).item() == 0.0
y, x = torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)
torch.atan2(y, x).sum().backward()
assert y.grad.item() == 0.0 and x.grad.item() == 0.0

law("kinks.power-and-atan2-at-zero")

# %%
# .. _kinks-clamp:
#
# ``clamp`` and ``hardtanh`` compute the same values, not the same gradients
# --------------------------------------------------------------------------
#
# At an input exactly equal to a bound, ``clamp`` passed the gradient (1) before torch 2.14, where ``hardtanh`` blocks
# it (0). Swapping one for the other changes training only when inputs sit on the bounds, e.g.
# after they were clamped once already.
#
# ``clamp``'s 1 was a departure from the autograd note's own convention (a convex or concave
# piece takes the subgradient of minimum norm): that gives 0 at a scalar bound, and ½ each to the
# input and a tensor bound, where torch 2.13 and earlier give 1 and 0. torch 2.14 moved clamp to
# the convention. The rule below states both, by release; its recorded history says when, and the
# release diff shows the recorded gradients change between 2.13 and 2.14 as expected history.
from specs.engine.versions import at_least

at_bounds = [-1.0, 1.0]
clamp_at_bounds = [0.0, 0.0] if at_least("2.14") else [1.0, 1.0]
assert grad_of(lambda t: t.clamp(-1.0, 1.0), at_bounds).tolist() == clamp_at_bounds
assert grad_of(lambda t: F.hardtanh(t, -1.0, 1.0), at_bounds).tolist() == [0.0, 0.0]

law("kinks.clamp-passes-gradient-at-its-bounds")

# %%
law("kinks.hardtanh-blocks-gradient-at-its-bounds")

# %%
# .. _kinks-steps:
#
# Steps have zero gradient
# ------------------------
#
# ``floor``, ``ceil``, ``round``, ``trunc`` and ``sign`` return float tensors that require grad, but
# their gradient is 0 everywhere, at the jumps too. Anything upstream of them learns nothing
# through them; a straight-through estimator needs a custom Function or ``x + (f(x) - x).detach()``.
for op in (torch.floor, torch.ceil, torch.round, torch.trunc, torch.sign):
    assert grad_of(op, [-1.0, -0.5, 0.0, 0.5, 1.5]).eq(0).all()
straight_through = grad_of(lambda t: t + (torch.round(t) - t).detach(), [0.3, 1.7])
assert straight_through.tolist() == [1.0, 1.0]

law("kinks.piecewise-constant-ops-have-zero-gradient")

# %%
# .. _kinks-ties:
#
# Ties: split, halve, or pick one
# -------------------------------
#
# A full reduction (``max()``, ``amax()``, ``min()``, ``amin()``) and ``amax``/``amin`` along a dim
# share the gradient evenly among the tied elements, as the note's minimum-norm convention asks.
# ``max(dim)``/``min(dim)`` return an index, and the whole gradient goes to it: a departure from
# that convention, which a release could correct. Elementwise ``torch.maximum``/``torch.minimum`` give each side
# half at a tie.
assert grad_of(lambda t: t.max(), [3.0, 1.0, 3.0, 3.0]).tolist() == [1 / 3, 0.0, 1 / 3, 1 / 3]
assert grad_of(lambda t: t.amax(dim=0), [3.0, 3.0]).tolist() == [0.5, 0.5]
values, index = torch.tensor([3.0, 3.0]).max(dim=0)
assert grad_of(lambda t: t.max(dim=0).values, [3.0, 3.0])[index].item() == 1.0
a = torch.tensor([2.0, 1.0], requires_grad=True)
b = torch.tensor([2.0, 5.0], requires_grad=True)
torch.maximum(a, b).sum().backward()
assert a.grad.tolist() == [0.5, 0.0] and b.grad.tolist() == [0.5, 1.0]

law("kinks.reductions-split-ties-evenly")

# %%
law("kinks.max-along-dim-picks-one-index")

# %%
law("kinks.maximum-and-minimum-halve-ties")

# %%
# .. _kinks-nan-masking:
#
# Masking after the fact does not remove a NaN
# --------------------------------------------
#
# Backward multiplies each local derivative by the incoming gradient. Masking an entry sends it a
# zero gradient, but the local derivative of ``1 / x`` at 0 is infinite, and :math:`0 \cdot \infty`
# is NaN: the masked entry's gradient is NaN, however the mask is applied.
x = torch.tensor([0.0, 2.0], requires_grad=True)
(1 / x)[x != 0].sum().backward()
print("gradient after masking 1/x:", x.grad)
assert x.grad[0].isnan() and x.grad[1].item() == -0.25

law("kinks.masking-after-division-keeps-nan")

# %%
# .. _kinks-nan-where:
#
# ``torch.where`` and the double-``where`` fix
# --------------------------------------------
#
# ``torch.where(cond, f(x), 0)`` still differentiates ``f`` at the entries it did not select. The
# anti-pattern: ``sqrt`` of a non-positive entry gives a NaN gradient there. The fix: make the
# unused branch's *input* safe too, so ``f`` is only ever evaluated where it is differentiable.
x = torch.tensor([-1.0, 0.0, 4.0], requires_grad=True)
torch.where(x > 0, torch.sqrt(x), 0.0).sum().backward()
assert x.grad[:2].isnan().all()  # the anti-pattern

x.grad = None
safe = torch.where(x > 0, x, 1.0)
torch.where(x > 0, torch.sqrt(safe), 0.0).sum().backward()
assert x.grad.tolist() == [0.0, 0.0, 0.25]  # the fix

law("kinks.where-does-not-guard-its-unused-branch")

# %%
law("kinks.double-where-is-safe")

# %%
# APIs used on this page: ``torch.relu``, ``torch.nn.functional`` (``leaky_relu``, ``elu``,
# ``relu6``, ``hardtanh``), ``torch.abs``, ``torch.linalg.vector_norm``, ``torch.sqrt``,
# ``Tensor.clamp``, ``torch.floor``, ``torch.ceil``, ``torch.round``, ``torch.trunc``,
# ``torch.sign``, ``Tensor.max``, ``Tensor.amax``, ``torch.maximum``, ``torch.where``,
# ``Tensor.detach``, ``torch.autograd.Function``.
