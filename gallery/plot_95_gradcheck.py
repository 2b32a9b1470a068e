"""
Checking a backward with gradcheck
==================================

``torch.autograd.gradcheck`` compares the derivatives autograd computes with finite differences.
It is how PyTorch tests its own formulas and how you test a custom ``Function``. This page shows
what it accepts, what it catches (a wrong backward, a wrong jvp, a wrong double backward, a
backward that cannot take undefined gradients or vmap), and the guards around its inputs.
"""

import torch
from torch.autograd import gradcheck, gradgradcheck

from specs.families.gradcheck import (
    DetachedCube,
    NondeterministicSine,
    Sine,
    SineUndefinedAsOnes,
)
from specs.rendering.demo import law

x = torch.tensor([0.5, -1.0, 1.5], dtype=torch.float64, requires_grad=True)

# %%
# .. _gradcheck-verdicts:
#
# Right and wrong backwards
# -------------------------
#
# ``Sine`` (defined in ``specs/families/gradcheck.py``) is ``sin`` with a backward of
# ``cos(x) + error``. With no error gradcheck returns True; with one it raises ``GradcheckError``
# (a ``RuntimeError``), or returns False when asked not to raise.
assert gradcheck(lambda t: Sine.apply(t, 0.0), (x,))
assert gradcheck(lambda t: Sine.apply(t, 0.01), (x,), raise_exception=False) is False
try:
    gradcheck(lambda t: Sine.apply(t, 0.01), (x,))
except RuntimeError as error:
    print(type(error).__name__ + ":", str(error).splitlines()[0])

law("gradcheck.accepts-what-autograd-computes")
law("gradcheck.catches-a-wrong-backward")
law("gradcheck.keeps-the-function-own-errors")

# %%
# .. _gradcheck-fast-mode:
#
# Fast mode
# ---------
#
# The full check builds the whole Jacobian twice. ``fast_mode=True`` compares a single random
# projection :math:`u^\top J v` instead, which is much cheaper for large inputs and reaches the
# same verdict.
assert gradcheck(lambda t: Sine.apply(t, 0.0), (x,), fast_mode=True)
assert not gradcheck(lambda t: Sine.apply(t, 0.01), (x,), fast_mode=True, raise_exception=False)

law("gradcheck.fast-mode-agrees-with-slow-mode")

# %%
# .. _gradcheck-forward-ad:
#
# Forward mode is checked only when asked
# ---------------------------------------
#
# A Function's ``jvp`` is not looked at by default: ``Sine`` with a wrong jvp (its third argument)
# passes, and fails with ``check_forward_ad=True``.
assert gradcheck(lambda t: Sine.apply(t, 0.0, 0.01), (x,))
assert not gradcheck(lambda t: Sine.apply(t, 0.0, 0.01), (x,), check_forward_ad=True, raise_exception=False)

law("gradcheck.check-forward-ad-catches-a-wrong-jvp")

# %%
# .. _gradcheck-gradgradcheck:
#
# Second derivatives: gradgradcheck
# ---------------------------------
#
# ``DetachedCube`` computes the right gradient of :math:`x^3`, :math:`3x^2 g`, but from a detached
# ``x``, so differentiating its backward gives zero. gradcheck cannot see that; gradgradcheck can.
assert gradcheck(DetachedCube.apply, (x,))
assert not gradgradcheck(DetachedCube.apply, (x,), raise_exception=False)

law("gradcheck.gradgradcheck-catches-a-wrong-double-backward")

# %%
# .. _gradcheck-options:
#
# The extra checks: reentrancy, undefined gradients, batching
# -----------------------------------------------------------
#
# gradcheck also runs backward twice and wants the same answer (``nondet_tol`` relaxes that), runs
# it with an all-zero gradient and wants zeros back (a backward must be a product with
# ``grad_output``), runs it with undefined (None) output gradients and wants zeros again
# (``check_undefined_grad``), and, with ``check_batched_grad=True``, runs it under vmap.
assert not gradcheck(NondeterministicSine.apply, (x,), raise_exception=False)
assert gradcheck(NondeterministicSine.apply, (x,), nondet_tol=1e-6)
assert not gradcheck(SineUndefinedAsOnes.apply, (x,), raise_exception=False)
assert gradcheck(SineUndefinedAsOnes.apply, (x,), check_undefined_grad=False)
assert gradcheck(torch.sin, (x,), check_batched_grad=True)

law("gradcheck.backward-must-be-linear-in-the-gradient")
law("gradcheck.nondet-tol-allows-a-nondeterministic-backward")
law("gradcheck.check-undefined-grad")
law("gradcheck.check-batched-grad")

# %%
# .. _gradcheck-guards:
#
# Guards: float64, something to check, no overlapping memory
# ----------------------------------------------------------
#
# Finite differences in float32 are too coarse for gradcheck's tolerances, so it warns. It refuses
# inputs none of which requires grad, and inputs whose elements share memory (``expand``), whose
# finite differences would perturb several elements at once.
try:
    gradcheck(torch.sin, (x.detach(),), raise_exception=False)
except ValueError as error:
    print("ValueError:", error)

law("gradcheck.float32-inputs-warn")
law("gradcheck.guards-its-inputs")

# %%
# APIs used on this page: ``torch.autograd.gradcheck`` and ``gradgradcheck`` with ``raise_exception``,
# ``fast_mode``, ``check_forward_ad``, ``nondet_tol``, ``check_undefined_grad`` and
# ``check_batched_grad``; ``torch.autograd.Function`` with ``jvp`` and ``set_materialize_grads``.
