"""Evaluating atlas entries: inputs at generic and special points, outputs, derivatives in every
mode and order, and the copy-paste repro of one op at one input.

The code an entry states is the code that runs (compiled once, evaluated with the arguments
bound), and the repro prints that same code after the argument values, so what fails is what is
shown.
"""

from __future__ import annotations

import functools
import math
import random
import re
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.autograd import forward_ad

from specs.atlas.model import Entry, Point

NAMESPACE = {"torch": torch, "F": F}

#: Exceptions a missing derivative may raise, and what their messages say.
NOT_IMPLEMENTED_TYPES = (NotImplementedError, RuntimeError)
NOT_IMPLEMENTED_MESSAGE = re.compile(
    r"not implemented|isn't implemented|not supported|does not support|doesn't support|unsupported"
    r"|is not differentiable|not differentiable|does not require grad|does not have a grad_fn",
    re.IGNORECASE,
)


@functools.cache
def _compiled(code: str):
    return compile(code, f"<atlas: {code}>", "eval")


@dataclass(frozen=True)
class Case:
    """One entry at one input: flat float64 values per argument, reshaped to ``shapes``."""

    entry: Entry
    values: dict[str, tuple[float, ...]]
    shapes: dict[str, tuple[int, ...]]
    label: str

    def tensors(self, requires_grad: bool = True) -> tuple[torch.Tensor, ...]:
        return tuple(
            torch.tensor(self.values[a.name], dtype=torch.float64)
            .reshape(self.shapes[a.name])
            .requires_grad_(requires_grad)
            for a in self.entry.args
        )

    def call(self, tensors) -> list[torch.Tensor]:
        """The entry's outputs that can carry a gradient (complex ones as real views), in order."""
        bound = dict(zip((a.name for a in self.entry.args), tensors))
        # one namespace (globals) so that lambdas in the code see the arguments; deprecation and
        # beta notices of the ops are not findings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", FutureWarning)
            return floating(eval(_compiled(self.entry.code), {**NAMESPACE, **bound}))

    def code(self) -> str:
        """This case as code that rebuilds it (``ev.Case(TABLE[...], ...)``: the inputs as literals)."""
        values = ", ".join(f"{name!r}: {_floats(flat)}" for name, flat in self.values.items())
        return f"ev.Case(TABLE[{self.entry.name!r}], {{{values}}}, {self.shapes!r}, {self.label!r})"

    def repro(self, *after: str) -> str:
        lines = ["import torch", "import torch.nn.functional as F"]
        for a in self.entry.args:
            values = [float(v) for v in self.values[a.name]]
            lines.append(
                f"{a.name} = torch.tensor({values!r}, dtype=torch.float64)"
                f".reshape({tuple(self.shapes[a.name])!r}).requires_grad_()"
            )
        lines.append(f"out = {self.entry.code}")
        lines.extend(after)
        return "\n".join(lines)


def _float(value: float) -> str:
    """A float as code (``float('nan')`` and ``float('inf')`` where ``repr`` is not code)."""
    return repr(float(value)) if math.isfinite(value) else f"float({str(float(value))!r})"


def _floats(values) -> str:
    """A tuple of floats as code."""
    items = [_float(v) for v in values]
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"


_DOTTED = re.compile(r"\b(?:torch|F)(?:\.[A-Za-z_]\w*)+")


#: What a function that a release removed (but still names) says when called, e.g. torch.cholesky and
#: torch.qr from 2.14: "This function was deprecated since version 1.9 and is now removed".
REMOVED_MESSAGE = re.compile(r"\b(?:is now|has been|was) removed\b", re.IGNORECASE)


@functools.cache
def unavailable(code: str) -> tuple[str, ...]:
    """The ``torch``/``F`` names in ``code`` that the installed torch lacks (older releases), or that
    it still names but has removed (calling them raises a "now removed" error, newer releases)."""
    missing = []
    for dotted in _DOTTED.findall(code):
        head, *rest = dotted.split(".")
        value = NAMESPACE[head]
        for part in rest:
            if not hasattr(value, part):
                missing.append(dotted)
                break
            value = getattr(value, part)
    # Removals so far were of old top-level torch functions with a torch.linalg successor; trying
    # only those keeps this to a fraction of the table.
    if not missing and code.startswith("torch.") and not code.startswith(("torch.linalg.", "torch.special.")):
        entry = _ENTRIES_BY_CODE().get(code)
        if entry is not None:
            try:
                generic(entry, 0).call(generic(entry, 0).tensors(requires_grad=False))
            except Exception as exc:  # noqa: BLE001 - only a removal message counts here
                if REMOVED_MESSAGE.search(str(exc)):
                    missing.append(f"{code.split('(')[0]} (removed: {template(exc)[:120]})")
    return tuple(missing)


@functools.cache
def _ENTRIES_BY_CODE() -> dict[str, Entry]:
    from specs.atlas.table import TABLE

    return {entry.code: entry for entry in TABLE.values()}


def floating(out) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        if out.is_complex():
            return [torch.view_as_real(out.resolve_conj())]
        return [out] if out.is_floating_point() else []
    if isinstance(out, (tuple, list)):
        return [t for item in out for t in floating(item)]
    return []


def generic(entry: Entry, seed: int) -> Case:
    """The entry at a generic point of its domain: values from a seeded Python RNG (not torch's,
    so the canonical inputs are the same on every torch release), rounded to 6 decimals."""
    rng = random.Random(f"{entry.name}/{seed}")
    values = {a.name: tuple(round(rng.uniform(a.lo, a.hi), 6) for _ in range(math.prod(a.shape))) for a in entry.args}
    return Case(entry, values, {a.name: a.shape for a in entry.args}, f"generic point (seed {seed})")


def special(entry: Entry, point: Point) -> Case:
    base = generic(entry, 0)
    values = dict(base.values)
    shapes = dict(base.shapes)
    for name, flat in point.values.items():
        values[name] = tuple(float(v) for v in flat)
        shapes[name] = point.shapes.get(name, shapes[name])
    return Case(entry, values, shapes, point.name)


def directions(tensors, seed: int, label: str) -> tuple[torch.Tensor, ...]:
    """Random directions (or cotangents) shaped like ``tensors``, from a seeded Python RNG; zero
    where a tensor is not finite (masked-out outputs), so that no law reads inf - inf."""
    rng = random.Random(f"{label}/{seed}")
    return tuple(
        torch.where(
            torch.isfinite(t.detach()),
            torch.tensor([rng.uniform(-1.0, 1.0) for _ in range(t.numel())], dtype=t.dtype).reshape(t.shape),
            0.0,
        )
        for t in tensors
    )


def dot(xs, ys) -> torch.Tensor:
    """Σ⟨x, y⟩; a term with an exact zero factor is 0 (a zero cotangent selects nothing, even where
    the output is infinite, as masked ops' outputs are)."""
    total = torch.zeros((), dtype=torch.float64)
    for x, y in zip(xs, ys):
        if x is not None and y is not None:
            x, y = x.double(), y.double()
            total = total + torch.where((x == 0) | (y == 0), 0.0, x * y).sum()
    return total


def norm(xs) -> float:
    """The 2-norm of finite entries (a NaN tangent at a masked-out output does not poison a scale)."""
    return math.sqrt(sum(float(torch.nan_to_num(x.double(), 0.0, 0.0, 0.0).pow(2).sum()) for x in xs if x is not None))


def vjp(case: Case, inputs, outputs, cotangents, create_graph: bool = False):
    """Jᵀw for each input (zeros where an input does not reach the outputs)."""
    live = [(o, w) for o, w in zip(outputs, cotangents) if o.requires_grad]
    if not live:
        return tuple(torch.zeros_like(x) for x in inputs)
    grads = torch.autograd.grad(
        [o for o, _ in live], inputs, [w for _, w in live], allow_unused=True, create_graph=create_graph
    )
    return tuple(torch.zeros_like(x) if g is None else g for x, g in zip(inputs, grads))


def directional_fd(case: Case, inputs, direction, step: float, function=None):
    """Central difference (f(x+hv) - f(x-hv)) / 2h of the outputs (or of ``function``) along v."""
    function = function or (lambda xs: case.call(xs))
    with torch.no_grad():
        plus = function(tuple(x.detach() + step * v for x, v in zip(inputs, direction)))
        minus = function(tuple(x.detach() - step * v for x, v in zip(inputs, direction)))
    return [(p.double() - m.double()) / (2 * step) for p, m in zip(plus, minus)]


def jvp_forward(case: Case, inputs, tangents):
    """Forward-mode J·v via dual tensors (zeros where an output has no tangent)."""
    with forward_ad.dual_level():
        duals = tuple(forward_ad.make_dual(x.detach(), v) for x, v in zip(inputs, tangents))
        outputs = case.call(duals)
        result = []
        for out in outputs:
            tangent = forward_ad.unpack_dual(out).tangent
            result.append(torch.zeros_like(out.detach()) if tangent is None else tangent.clone())
    return result


def second_directional_forward(case: Case, inputs, direction):
    """f''[v, v] by forward-over-forward (torch.func.jvp nested)."""

    def first(*xs):
        return tuple(torch.func.jvp(lambda *ys: tuple(case.call(ys)), xs, tuple(direction))[1])

    return list(torch.func.jvp(first, tuple(x.detach() for x in inputs), tuple(direction))[1])


def first_derivative_along(case: Case, cotangents, direction):
    """x -> [<Jᵀw, u>] at x: the first derivative as a function, for finite differences of it."""

    def first(xs):
        xs = tuple(x.detach().requires_grad_() for x in xs)
        with torch.enable_grad():
            return [dot(vjp(case, xs, case.call(xs), cotangents), direction)]

    return first


def poked(outputs, position: int, fill: float) -> list[torch.Tensor]:
    """Cotangents that are zero except ``fill`` at flat ``position`` of the outputs that require grad."""
    result, offset = [], 0
    for out in outputs:
        size = out.numel() if out.requires_grad else 0
        one = torch.zeros(out.shape, dtype=out.dtype)
        if offset <= position < offset + size:
            one.view(-1)[position - offset] = fill
        result.append(one)
        offset += size
    return result


def modes(case: Case, inputs, outputs, cotangents, direction) -> dict:
    """Every mode and order of derivative, by name: (a key for caching it, the call that takes it)."""
    return {
        "reverse": ("vjp", lambda: vjp(case, inputs, outputs, cotangents)),
        "forward": ("jvp", lambda: jvp_forward(case, inputs, direction)),
        "reverse order 2": ("rev2", lambda: reverse_second(case, inputs, cotangents, direction, order=2)),
        "reverse order 3": ("rev3", lambda: reverse_second(case, inputs, cotangents, direction, order=3)),
        "forward over forward": ("fwdfwd", lambda: second_directional_forward(case, inputs, direction)),
    }


def reverse_second(case: Case, inputs, cotangents, direction, order: int = 2):
    """vᵀ∇(…vᵀ∇⟨w, f⟩) taken ``order`` times by reverse-over-reverse; returns the last gradient."""
    outputs = case.call(inputs)
    grads = vjp(case, inputs, outputs, cotangents, create_graph=True)
    for _ in range(order - 1):
        scalar = dot(grads, direction)
        if not scalar.requires_grad:
            return tuple(torch.zeros_like(x) for x in inputs)
        grads = torch.autograd.grad(scalar, inputs, allow_unused=True, create_graph=True)
        grads = tuple(torch.zeros_like(x) if g is None else g for x, g in zip(inputs, grads))
    return grads


def template(exc: BaseException) -> str:
    """An exception as ``Type: first line`` with numbers and quoted names replaced, for the report."""
    line = (str(exc).strip().splitlines() or [""])[0]
    line = re.sub(r"\d+(\.\d+)?(e[-+]?\d+)?", "N", line)
    return f"{type(exc).__name__}: {line[:160]}"


def is_not_implemented(exc: BaseException) -> bool:
    return isinstance(exc, NOT_IMPLEMENTED_TYPES) and bool(NOT_IMPLEMENTED_MESSAGE.search(str(exc)))


def rounded(tensor: torch.Tensor, limit: int = 8) -> list:
    """At most ``limit`` values, rounded to 6 significant digits; NaN and inf as strings."""
    # clone(): an efficient zero tensor (torch returns them for some zero gradients) has no storage
    flat = tensor.detach().double().clone().reshape(-1)[:limit].tolist()
    return [v if math.isfinite(v) else str(v) for v in (float(f"{v:.6g}") if math.isfinite(v) else v for v in flat)]
