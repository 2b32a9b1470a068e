"""
Custom autograd functions
=========================

Subclass ``torch.autograd.Function`` to give an operation your own backward: for an op autograd
cannot see through, or a surrogate gradient. Autograd checks what your backward returns, but not
whether it is the right derivative: that is what ``gradcheck`` is for.
"""

import warnings

import torch

from specs.families.custom_function import (
    Cube,
    DirtyNotInput,
    DirtyNotReturned,
    DoubleInPlace,
    GradOfWrongShape,
    OnceCube,
    OneGradForTwo,
    ReluWithMask,
    ScaledProduct,
    ScaleWithTrailing,
    SeedReLU,
    SinSetupContext,
    SortWithIndices,
    TwoOutputs,
    WrongCube,
)
from specs.rendering.demo import law

# %%
# .. _custom-function-seed:
#
# The seed's custom ReLU
# ----------------------
#
# ``forward(ctx, ...)`` computes the result and stashes what backward needs on ``ctx``;
# ``backward(ctx, grad_output)`` returns one gradient per input. ``SeedReLU`` is the seed
# tutorial's class, unchanged (see ``specs/custom_function.py``). ``forward`` runs with grad mode
# off, so nothing inside it is recorded.
x = torch.tensor([-1.0, 2.0, -0.5], requires_grad=True)
y = SeedReLU.apply(x)
y.backward(torch.tensor([1.0, 1.0, 1.0]))
print("output:", y.tolist(), "grad:", x.grad.tolist())
assert y.tolist() == [0.0, 2.0, 0.0]
assert x.grad.tolist() == [0.0, 1.0, 0.0]

# %%
# **Note on the seed's ReLU.** It zeroes the gradient only where ``x < 0``, so at ``x == 0`` it
# passes the gradient through, whereas ``torch.relu`` gives 0 there. Both are valid subgradients;
# they are not the same function's gradient.
zero = torch.tensor([0.0], requires_grad=True)
SeedReLU.apply(zero).sum().backward()
native = torch.tensor([0.0], requires_grad=True)
torch.relu(native).sum().backward()
assert zero.grad.item() == 1.0 and native.grad.item() == 0.0

law("custom-function.seed-relu")

# %%
law("custom-function.grad-mode-inside")

# %%
# .. _custom-function-ctx:
#
# ``save_for_backward`` and ``saved_tensors``
# -------------------------------------------
#
# Save tensors with ``ctx.save_for_backward`` (not as plain ``ctx`` attributes): then autograd
# checks their versions (see the in-place page) and frees them after backward (see the
# ``retain_graph`` page).
x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
Cube.apply(x).sum().backward()
assert x.grad.tolist() == [3.0, 12.0]

law("custom-function.saved-tensors-reach-backward")

# %%
# .. _custom-function-needs-input-grad:
#
# ``needs_input_grad`` and non-tensor inputs
# ------------------------------------------
#
# ``ctx.needs_input_grad`` says which inputs need a gradient, so backward can skip the others.
# A non-tensor input (here the float ``scale``) never needs one, and its slot must be ``None``.
a = torch.tensor([1.0, 2.0], requires_grad=True)
b = torch.tensor([3.0, 4.0])  # not tracked
out = ScaledProduct.apply(a, b, 0.5)
out.sum().backward()
assert out.grad_fn.needs_seen == (True, False, False)
assert a.grad.tolist() == [1.5, 2.0] and b.grad is None

law("custom-function.needs-input-grad")

# %%
law("custom-function.non-tensor-inputs-get-none")

# %%
# .. _custom-function-checks:
#
# What autograd checks: the number and shapes of gradients
# --------------------------------------------------------
#
# Backward must return one gradient per forward input, each of a shape that broadcasts to its
# input's shape; autograd raises at backward otherwise.
for anti_pattern in (lambda: OneGradForTwo.apply(a, a), lambda: GradOfWrongShape.apply(a)):
    try:
        anti_pattern().sum().backward()
    except RuntimeError as error:
        print("RuntimeError:", error)
    else:
        raise AssertionError("a malformed backward was accepted")

law("custom-function.wrong-gradient-count-raises")

# %%
# Extra values after the last gradient are allowed only when they are ``None``: autograd drops
# them. ``ScaleWithTrailing.apply(a, scale, trailing)`` returns ``trailing`` extra values.
b = torch.tensor([0.5, -1.5], dtype=torch.float64, requires_grad=True)
ScaleWithTrailing.apply(b, 3.0, ("none", "none")).sum().backward()
assert torch.equal(b.grad, torch.full_like(b, 3.0))
try:
    ScaleWithTrailing.apply(b, 3.0, ("none", "zeros")).sum().backward()
except RuntimeError as error:
    print("RuntimeError:", error)
else:
    raise AssertionError("a non-None extra gradient was accepted")

law("custom-function.extra-trailing-nones-are-ignored")

# %%
law("custom-function.wrong-gradient-shape-raises")

# %%
# .. _custom-function-gradcheck:
#
# ``gradcheck``: is the backward the right derivative?
# ----------------------------------------------------
#
# Autograd cannot tell a wrong derivative from a right one. ``torch.autograd.gradcheck`` compares
# backward with finite differences (use float64); ``gradgradcheck`` does the same for the
# backward of the backward. The anti-pattern ``WrongCube`` returns :math:`2x^2` instead of
# :math:`3x^2` for :math:`x^3`; gradcheck catches it.
x = torch.tensor([0.5, -1.5], dtype=torch.float64, requires_grad=True)
assert torch.autograd.gradcheck(Cube.apply, (x,))
assert torch.autograd.gradgradcheck(Cube.apply, (x,))
assert torch.autograd.gradcheck(WrongCube.apply, (x,), raise_exception=False) is False

law("custom-function.gradcheck-accepts-correct")

# %%
law("custom-function.gradcheck-catches-wrong-backward")

# %%
# .. _custom-function-once-differentiable:
#
# ``@once_differentiable``
# ------------------------
#
# A backward that is not written in differentiable torch ops (NumPy, an external kernel) can be
# marked ``@once_differentiable``: first derivatives work, and a double backward through it
# raises instead of silently returning a wrong second derivative.
x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
(g,) = torch.autograd.grad((OnceCube.apply(x) * x).sum(), x, create_graph=True)
assert g.tolist() == [4.0, 32.0]
try:
    g.sum().backward()
except RuntimeError as error:
    print("RuntimeError:", error)
else:
    raise AssertionError("a once-differentiable backward was differentiated")

law("custom-function.once-differentiable-refuses-double-backward")

# %%
# .. _custom-function-mark-dirty:
#
# In-place Functions: ``mark_dirty``
# ----------------------------------
#
# A forward that modifies an input in place must say so with ``ctx.mark_dirty``, and return it.
# The returned tensor is the input itself, now with the Function's node as its ``grad_fn``.
x = torch.tensor([1.0, 2.0], requires_grad=True)
h = x * 1.0
assert DoubleInPlace.apply(h) is h
h.sum().backward()
assert h.tolist() == [2.0, 4.0] and x.grad.tolist() == [2.0, 2.0]

law("custom-function.mark-dirty-for-in-place")

# %%
# Misusing ``mark_dirty`` is caught while recording, except for marking a tensor that is not an
# input, which only warns. An in-place Function on a view of a non-leaf writes through to its
# base; on a view of a leaf that requires grad it is refused.
x = torch.tensor([1.0, 2.0], requires_grad=True)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    DirtyNotInput.apply(x)
assert any("not an input" in str(w.message) for w in caught)
try:
    DirtyNotReturned.apply(x * 1.0)
    raise AssertionError("a dirtied input that was not returned was accepted")
except RuntimeError as error:
    assert "not returned as output" in str(error)
h = x * 1.0
DoubleInPlace.apply(h[:1])
h.sum().backward()
assert x.grad.tolist() == [2.0, 1.0]

law("custom-function.mark-dirty-misuse")

# %%
# .. _custom-function-non-differentiable:
#
# Outputs without gradients
# -------------------------
#
# ``ctx.mark_non_differentiable`` marks an output (sort indices, or a floating-point mask that
# autograd would otherwise track) as untracked; backward
# still receives a zero gradient for it. When an output is unused, its gradient arrives as zeros,
# or as ``None`` after ``ctx.set_materialize_grads(False)``, which saves allocating them.
x = torch.tensor([3.0, 1.0, 2.0], requires_grad=True)
values, indices = SortWithIndices.apply(x)
assert not indices.requires_grad and values.requires_grad
values.sum().backward()
assert x.grad.tolist() == [1.0, 1.0, 1.0]

relu, mask = ReluWithMask.apply(torch.tensor([-1.0, 2.0], requires_grad=True))
assert relu.requires_grad and not mask.requires_grad

first, _ = TwoOutputs.apply(x, False)
first.sum().backward()
assert first.grad_fn.grads_seen[1] is None

law("custom-function.mark-non-differentiable")

# %%
law("custom-function.set-materialize-grads")

# %%
# .. _custom-function-torch-func:
#
# The ``setup_context`` style and ``torch.func`` (torch 2.0 and later)
# --------------------------------------------------------------------
#
# Since torch 2.0 ``forward`` may take only the inputs, with a separate
# ``setup_context(ctx, inputs, output)`` filling ``ctx``. Only Functions written this way work
# under ``torch.func`` transforms; ``generate_vmap_rule = True`` lets ``vmap`` batch them.
x = torch.tensor([[0.0, 1.0], [2.0, 3.0]], dtype=torch.float64)
per_sample = torch.func.vmap(torch.func.grad(lambda t: SinSetupContext.apply(t).sum()))(x)
assert torch.allclose(per_sample, torch.cos(x))

law("custom-function.setup-context-style")

# %%
law("custom-function.generated-vmap-rule")

# %%
law("custom-function.vmap-needs-a-rule")

# %%
# APIs used on this page: ``torch.autograd.Function`` (``forward``, ``backward``,
# ``setup_context``, ``apply``, ``generate_vmap_rule``), ``ctx.save_for_backward``,
# ``ctx.saved_tensors``, ``ctx.needs_input_grad``, ``ctx.mark_dirty``,
# ``ctx.mark_non_differentiable``, ``ctx.set_materialize_grads``,
# ``torch.autograd.function.once_differentiable``, ``torch.autograd.gradcheck``,
# ``torch.autograd.gradgradcheck``, ``torch.func.vmap``, ``torch.func.grad``.
