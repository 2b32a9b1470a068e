"""
Forward mode and torch.func
===========================

Reverse mode computes vector-Jacobian products :math:`v^\\top J`; forward mode computes
Jacobian-vector products :math:`J u` by carrying a *tangent* alongside every value. This page shows
PyTorch's dual tensors, the ``torch.func`` transforms built on both modes, and the identities that
tie all of them to the reverse mode of the rest of this tutorial.
"""

import warnings

import torch
import torch.autograd.forward_ad as fwAD
import torch.func

from specs.rendering.demo import law

# torch 2.13 warns once, on first forward-AD use, that torch.jit.script is deprecated.
warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated", category=DeprecationWarning)

# %%
# .. _forward-mode-dual:
#
# Dual tensors carry a tangent
# ----------------------------
#
# Inside ``fwAD.dual_level()``, ``make_dual(p, t)`` pairs a value with a tangent (a direction).
# Every operation then computes its result *and* the result's tangent, the directional derivative
# along ``t``; ``unpack_dual`` splits them again. For :math:`f(x) = x \sin x` the tangent along
# :math:`u` is :math:`(\sin x + x \cos x)\,u`.
x = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
u = torch.tensor([1.0, 0.0, -2.0], dtype=torch.float64)
with fwAD.dual_level():
    y = torch.sin(fwAD.make_dual(x, u)) * fwAD.make_dual(x, u)
    primal, tangent = fwAD.unpack_dual(y)
assert torch.allclose(primal, x * torch.sin(x))
assert torch.allclose(tangent, (torch.sin(x) + x * torch.cos(x)) * u)

# The same number by central differences, without any AD:
h = 1e-6
difference = ((x + h * u) * torch.sin(x + h * u) - (x - h * u) * torch.sin(x - h * u)) / (2 * h)
assert torch.allclose(tangent, difference, atol=1e-8)

law("forward-mode.dual-carries-primal-and-tangent")

# %%
# ``make_dual(p, t)`` is a view of ``p``: an in-place op on the dual changes ``p`` and bumps its
# version, and updates the tangent ``t`` itself. Backward goes through ``make_dual`` and
# ``unpack_dual`` to both ``p`` and ``t``.
p, t = x.clone(), u.clone()
with fwAD.dual_level():
    dual = fwAD.make_dual(p, t)
    dual.mul_(2)
assert dual._base is p and p._version == 1 and torch.equal(p, 2 * x) and torch.equal(t, 2 * u)
p, t = x.clone().requires_grad_(), u.clone().requires_grad_()
with fwAD.dual_level():
    primal, tangent = fwAD.unpack_dual(fwAD.make_dual(p, t))
    (primal * 3 + tangent * 5).sum().backward()
assert torch.equal(p.grad, torch.full_like(x, 3.0)) and torch.equal(t.grad, torch.full_like(u, 5.0))

law("forward-mode.dual-is-a-view-of-its-primal")

# %%
law("forward-mode.tangent-is-the-directional-derivative")

# %%
# .. _forward-mode-levels:
#
# Tangents live in a level
# ------------------------
#
# A tangent belongs to the dual level it was created in: once the ``with`` block exits, results
# computed inside it are plain tensors again. ``make_dual`` outside any level is an error, and
# levels do not nest (there is one forward-mode level at a time).
assert fwAD.unpack_dual(y).tangent is None
try:
    fwAD.make_dual(x, u)
except RuntimeError as error:
    print("RuntimeError:", error)
    assert "no level exists" in str(error)
else:
    raise AssertionError("make_dual worked outside a dual level")
with fwAD.dual_level():
    try:
        with fwAD.dual_level():
            pass
    except RuntimeError as error:
        print("RuntimeError:", error)
        assert "Nested forward mode AD is not supported" in str(error)
    else:
        raise AssertionError("a nested dual level was entered")

law("forward-mode.tangents-end-with-their-level")

# %%
law("forward-mode.make-dual-needs-a-level")

# %%
law("forward-mode.levels-do-not-nest")

# %%
# .. _forward-mode-errors:
#
# A tangent must look like its primal
# -----------------------------------
#
# The tangent must be floating point (or complex) and have exactly the primal's shape: no
# broadcasting, not even a reshape with as many elements.
with fwAD.dual_level():
    try:
        fwAD.make_dual(x, torch.ones(3, dtype=torch.int64))
    except ValueError as error:
        print("ValueError:", error)
        assert "Expected tangent to be floating point or complex" in str(error)
    else:
        raise AssertionError("an integer tangent was accepted")
    try:
        fwAD.make_dual(x, torch.ones(1, 3, dtype=torch.float64))
    except RuntimeError as error:
        print("RuntimeError:", error)
        assert "different size than that of the original Tensor" in str(error)
    else:
        raise AssertionError("a tangent of another shape was accepted")

law("forward-mode.tangents-must-be-floating")

# %%
law("forward-mode.tangent-shape-must-match")

# %%
# .. _forward-mode-grad-modes:
#
# ``no_grad`` is about reverse mode only
# --------------------------------------
#
# ``torch.no_grad()`` stops the *recording* of a graph for ``backward``; forward mode records
# nothing, so tangents still flow. ``torch.inference_mode()`` is stricter and drops tangents too,
# and so does ``detach()``.
with fwAD.dual_level():
    d = fwAD.make_dual(x, u)
    with torch.no_grad():
        assert torch.equal(fwAD.unpack_dual(d * 3).tangent, 3 * u)
    with torch.inference_mode():
        assert fwAD.unpack_dual(d * 3).tangent is None
    assert fwAD.unpack_dual(d.detach()).tangent is None

law("forward-mode.no-grad-keeps-tangents")

# %%
law("forward-mode.inference-mode-and-detach-drop-tangents")


# %%
# .. _forward-mode-func-jvp:
#
# ``torch.func.jvp`` and the adjoint identity
# -------------------------------------------
#
# ``torch.func.jvp(f, primals, tangents)`` is the functional form of dual tensors. Reverse mode is
# its *adjoint*: for any cotangent :math:`v`, :math:`\langle v, J u\rangle = \langle J^\top v,
# u\rangle`. That identity is a cheap, strong test that the two modes agree (it is how JAX's
# ``check_grads`` catches transposition bugs).
def f(t):
    return torch.sin(t) * t.sum()


v = torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64)
_, ju = torch.func.jvp(f, (x,), (u,))
_, vjp_fn = torch.func.vjp(f, x)
(jtv,) = vjp_fn(v)
assert torch.allclose((v * ju).sum(), (jtv * u).sum())

law("forward-mode.jvp-is-the-adjoint-of-vjp")

# %%
# .. _forward-mode-jacobians:
#
# Three ways to a Jacobian
# ------------------------
#
# ``jacfwd`` builds the Jacobian column by column with forward mode, ``jacrev`` row by row with
# reverse mode, and ``torch.autograd.functional.jacobian`` is the older reverse-mode API. They
# agree, and the Jacobian's shape is the output's shape followed by the input's. Prefer
# ``jacfwd`` when there are fewer inputs than outputs, ``jacrev`` otherwise.
J_fwd = torch.func.jacfwd(f)(x)
J_rev = torch.func.jacrev(f)(x)
J_old = torch.autograd.functional.jacobian(f, x)
assert J_fwd.shape == (3, 3)
assert torch.allclose(J_fwd, J_rev) and torch.allclose(J_rev, J_old)

law("forward-mode.jacobians-agree")

# %%
# .. _forward-mode-func-grad:
#
# ``torch.func.grad`` returns gradients instead of accumulating them
# ------------------------------------------------------------------
#
# ``torch.func.grad(f)`` is a function that returns the gradient of a scalar-valued ``f``: the
# same numbers as ``torch.autograd.grad``, and, unlike ``backward()``, nothing is written to
# ``.grad``. A non-scalar output is an error, as with ``backward()`` without an argument.
w = torch.tensor([0.5, 1.0, 2.0], requires_grad=True)
g = torch.func.grad(lambda t: (t**3).sum())(w)
assert torch.allclose(g, 3 * w.detach() ** 2)
assert w.grad is None
try:
    torch.func.grad(lambda t: t * 2)(w)
except RuntimeError as error:
    print("RuntimeError:", error)
    assert "to return a scalar Tensor" in str(error)
else:
    raise AssertionError("torch.func.grad accepted a non-scalar output")

law("forward-mode.func-grad-equals-autograd-grad")


# %%
# .. _forward-mode-hessian:
#
# Hessians: forward over reverse
# ------------------------------
#
# ``torch.func.hessian`` is ``jacfwd(jacrev(f))``: forward mode applied to the reverse-mode
# gradient. The same second derivatives come out of reverse over reverse
# (``torch.autograd.functional.hessian``), and a Hessian-vector product :math:`H u` comes out of
# pushing a dual tensor through ``torch.autograd.grad(..., create_graph=True)``.
def scalar(t):
    return (torch.sin(t) * t).sum()


H = torch.func.hessian(scalar)(x)
assert torch.allclose(H, torch.autograd.functional.hessian(scalar, x))
assert torch.allclose(H, torch.diag(2 * torch.cos(x) - x * torch.sin(x)))
with fwAD.dual_level():
    point = fwAD.make_dual(x.clone().requires_grad_(), u)
    (grad,) = torch.autograd.grad(scalar(point), point, create_graph=True)
    assert torch.allclose(fwAD.unpack_dual(grad).tangent, H @ u)

law("forward-mode.hessian-is-forward-over-reverse")

# %%
# .. _forward-mode-vmap:
#
# Per-sample gradients with ``vmap``
# ----------------------------------
#
# Reverse mode sums a loss's gradient over the batch. To get one gradient per sample, map
# ``torch.func.grad`` over the batch dimension with ``vmap``; it gives what a Python loop of
# single-sample gradients gives, in one vectorised call.
weights = torch.tensor([0.3, -0.2], dtype=torch.float64)
samples = torch.tensor([[1.0, 2.0], [0.5, -1.0], [3.0, 0.0]], dtype=torch.float64)
targets = torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64)


def loss(w, sample, target):
    return (torch.tanh(sample @ w) - target) ** 2


per_sample = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0, 0))(weights, samples, targets)
assert per_sample.shape == (3, 2)
for i in range(3):
    w_i = weights.clone().requires_grad_()
    loss(w_i, samples[i], targets[i]).backward()
    assert torch.allclose(per_sample[i], w_i.grad)

law("forward-mode.vmap-per-sample-grads-equal-a-loop")

# %%
# APIs used on this page: ``torch.autograd.forward_ad`` (``dual_level``, ``make_dual``,
# ``unpack_dual``), ``torch.no_grad``, ``torch.inference_mode``, ``torch.func.jvp``,
# ``torch.func.vjp``, ``torch.func.jacfwd``, ``torch.func.jacrev``,
# ``torch.autograd.functional.jacobian``, ``torch.func.grad``, ``torch.func.hessian``,
# ``torch.autograd.functional.hessian``, ``torch.func.vmap``.
