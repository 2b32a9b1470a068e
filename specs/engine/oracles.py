"""Independent oracles for gradients: central finite differences in float64.

Autograd's answer is compared with a number computed without autograd: the program is
re-evaluated with perturbed inputs under ``torch.no_grad``.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from specs.engine.expect import Tolerance

#: Step of the central difference.  Truncation error is O(h^2) ~ 1e-12 times the third
#: derivative, rounding error ~ 1e-16 * |f| / h ~ 1e-10 * |f|: both far below the tolerances.
FD_STEP = 1e-6

#: Autograd in float64 against the float64 finite-difference oracle.
FD_TOLERANCE = Tolerance(
    rtol=1e-5,
    atol=1e-6,
    reason="central differences with h=1e-6 in float64 are accurate to ~1e-10 relative to |f|",
)

#: The same program run in float32 against its float64 run, per dtype of the run.
DTYPE_TOLERANCE = {
    torch.float64: Tolerance(0.0, 1e-12, "float64 against float64: only summation order differs"),
    torch.float32: Tolerance(
        rtol=1e-4,
        atol=1e-5,
        reason="float32 unit roundoff 6e-8, amplified by up to 12 ops and sums of 64 terms",
    ),
}


def float64_copies(tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Detached, contiguous float64 copies: every element an independent variable."""
    return [t.detach().to(torch.float64).contiguous().clone() for t in tensors]


def finite_difference_gradients(
    function: Callable[..., torch.Tensor],
    inputs: Sequence[torch.Tensor],
    wrt: Sequence[int],
    cotangent: torch.Tensor | None = None,
    step: float = FD_STEP,
) -> list[torch.Tensor]:
    """d/d inputs[i] of ``sum(function(*inputs) * cotangent)`` for each i in ``wrt``, in float64."""
    xs = float64_copies(inputs)

    def scalar() -> float:
        out = function(*xs)
        if cotangent is not None:
            out = out * cotangent.to(torch.float64)
        return out.sum().item()

    grads = []
    with torch.no_grad():
        for i in wrt:
            flat = xs[i].view(-1)
            grad = torch.zeros_like(flat)
            for j in range(flat.numel()):
                saved = flat[j].item()
                flat[j] = saved + step
                up = scalar()
                flat[j] = saved - step
                down = scalar()
                flat[j] = saved
                grad[j] = (up - down) / (2 * step)
            grads.append(grad.view(xs[i].shape))
    return grads


def intermediate_gradient(program, name: str, leaves: Sequence[torch.Tensor], cotangent=None) -> torch.Tensor:
    """d sum(out * cotangent) / d ``name`` by finite differences, holding the leaves fixed.

    The program is re-rendered with ``name`` as a parameter instead of a computed value, so the
    oracle perturbs that intermediate alone.
    """
    values = program.trace(*float64_copies(leaves))
    suffix = program.function(inputs=[name])
    point = float64_copies(leaves) + [values[name].detach()]
    return finite_difference_gradients(suffix, point, [len(point) - 1], cotangent)[0]


def saved_bytes(record: Callable[[], object]) -> tuple[int, object]:
    """Run ``record()``; return the bytes autograd saved for backward meanwhile, and its result.

    A deterministic measure of the memory kept for backward: every tensor a node saves passes
    through the pack hook of ``torch.autograd.graph.saved_tensors_hooks`` exactly once.
    """
    total = [0]

    def pack(t: torch.Tensor) -> torch.Tensor:
        total[0] += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        result = record()
    return total[0], result
