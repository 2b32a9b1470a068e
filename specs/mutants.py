"""Semantic mutants of torch, applied from Python, and which rules catch each: what the spec proves.

    python -m specs.mutants all --jobs 2 --output build/mutants.json   # every mutant, 2 processes at a time
    python -m specs.mutants run relu-gradient-one-at-zero               # one mutant, in this process

Each mutant changes one documented behaviour of torch (a gradient at a kink, a warning, an
exception type, a hook's result, a grad mode that stops switching, ...) by monkeypatching its
Python surface, in a fresh process, before the families are imported; then the rules of the
families it concerns run on a small example budget.  A rule that fails under the mutant (and holds
without it, in the control run) *caught* it.  A mutant no rule catches is listed with why.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch

SCHEMA = "autograd-spec/mutants/1"
#: examples a rule runs on under a mutant: enough for a generated program to reach the mutated op
EXAMPLES = 8


@dataclass(frozen=True)
class Mutant:
    name: str
    #: the behaviour it breaks, in a sentence
    what: str
    #: the families whose rules run under it
    families: tuple[str, ...]
    apply: Callable[[], None]
    #: why no rule catches it, for a mutant known to survive
    survives: str = ""
    #: examples a rule runs on under this mutant, when :data:`EXAMPLES` does not reach the mutated case
    examples: int | None = None


MUTANTS: dict[str, Mutant] = {}


def mutant(name: str, what: str, families: tuple[str, ...], survives: str = "", examples: int | None = None):
    def register(apply: Callable[[], None]) -> Callable[[], None]:
        MUTANTS[name] = Mutant(name, what, families, apply, survives, examples)
        return apply

    return register


def _patch(owner, name: str, make: Callable) -> None:
    setattr(owner, name, make(getattr(owner, name)))


def _with_derivative(original: Callable, derivative: Callable) -> Callable:
    """``original`` (a unary op) with its backward replaced by ``grad * derivative(x)``."""

    class Mutated(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return original(x)

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * derivative(x)

    def patched(x, *args, **kwargs):
        if args or kwargs or not isinstance(x, torch.Tensor) or not x.requires_grad:
            return original(x, *args, **kwargs)
        return Mutated.apply(x)

    return patched


def _unary(name: str, derivative: Callable) -> None:
    """Patch ``torch.<name>`` and ``Tensor.<name>`` (and ``F.<name>`` when it exists) alike."""
    patched = _with_derivative(getattr(torch, name), derivative)
    setattr(torch, name, patched)
    setattr(torch.Tensor, name, lambda self, *a, **k: patched(self, *a, **k))
    if hasattr(torch.nn.functional, name):
        setattr(torch.nn.functional, name, patched)


# --------------------------------------------------------------------------- gradients at kinks
@mutant("abs-gradient-one-at-zero", "d|x|/dx at 0 is 1 instead of the subgradient 0", ("kinks",))
def _():
    _unary("abs", lambda x: torch.where(x == 0, torch.ones_like(x), torch.sign(x)))


# kinks.relu-family-at-zero draws one of five relu-like ops; eight examples do not reach relu at 0.
@mutant("relu-gradient-one-at-zero", "relu's gradient at 0 is 1 instead of 0", ("kinks",), examples=25)
def _():
    _unary("relu", lambda x: (x >= 0).to(x.dtype))


@mutant("sqrt-gradient-finite-at-zero", "sqrt's gradient at 0 is 0 instead of inf", ("kinks",))
def _():
    _unary("sqrt", lambda x: torch.where(x == 0, torch.zeros_like(x), 0.5 / torch.sqrt(x)))


@mutant("clamp-blocks-at-its-bounds", "clamp passes no gradient at its bounds (as hardtanh does)", ("kinks",))
def _():
    original = torch.clamp

    def clamp(x, min=None, max=None, **kwargs):
        if not isinstance(x, torch.Tensor) or not x.requires_grad or kwargs:
            return original(x, min, max, **kwargs)
        inside = torch.ones_like(x, dtype=torch.bool)
        if min is not None:
            inside &= x > min
        if max is not None:
            inside &= x < max
        return torch.where(inside, x, original(x, min, max).detach())

    torch.clamp = clamp
    torch.Tensor.clamp = lambda self, *a, **k: clamp(self, *a, **k)


@mutant("maximum-ties-go-to-the-first", "torch.maximum gives a tie's whole gradient to its first argument", ("kinks",))
def _():
    original = torch.maximum

    def maximum(a, b, **kwargs):
        if kwargs or not any(isinstance(t, torch.Tensor) and t.requires_grad for t in (a, b)):
            return original(a, b, **kwargs)
        return torch.where(a >= b, a, b)

    torch.maximum = maximum
    torch.Tensor.maximum = maximum


# --------------------------------------------------------------------------- leaves and backward
@mutant("backward-does-nothing", "Tensor.backward returns without computing anything", ("leaves", "vjp"))
def _():
    torch.Tensor.backward = lambda self, *args, **kwargs: None


@mutant("retain-grad-ignored", "Tensor.retain_grad does nothing", ("leaves",))
def _():
    torch.Tensor.retain_grad = lambda self: None


@mutant(
    "requires-grad-flag-ignored-for-integers", "requires_grad_() on an integer tensor is silently ignored", ("leaves",)
)
def _():
    def make(original):
        def requires_grad_(self, requires_grad=True):
            if not (self.is_floating_point() or self.is_complex()):
                return self
            return original(self, requires_grad)

        return requires_grad_

    _patch(torch.Tensor, "requires_grad_", make)


# --------------------------------------------------------------------------- accumulation
def _leaves_of(root: torch.Tensor) -> list[torch.Tensor]:
    found, stack, seen = [], [root.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if hasattr(node, "variable"):
            found.append(node.variable)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return found


@mutant("backward-overwrites-grad", "backward replaces .grad instead of adding into it", ("accumulation",))
def _():
    def make(original):
        def backward(self, *args, **kwargs):
            for leaf in _leaves_of(self):
                leaf.grad = None
            return original(self, *args, **kwargs)

        return backward

    _patch(torch.Tensor, "backward", make)


@mutant("module-zero-grad-does-nothing", "Module.zero_grad() leaves .grad as it was", ("accumulation",))
def _():
    torch.nn.Module.zero_grad = lambda self, set_to_none=True: None


@mutant("zero-grad-default-back-to-zeros", "zero_grad() fills zeros by default, as before torch 2.0", ("accumulation",))
def _():
    def make(original):
        return lambda self, set_to_none=False: original(self, set_to_none=set_to_none)

    _patch(torch.nn.Module, "zero_grad", make)
    _patch(torch.optim.Optimizer, "zero_grad", make)


@mutant("backward-inputs-ignored", "backward(inputs=...) accumulates into every leaf", ("accumulation",))
def _():
    def make(original):
        def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
            return original(self, gradient, retain_graph, create_graph)

        return backward

    _patch(torch.Tensor, "backward", make)


# --------------------------------------------------------------------------- retain_graph
def _force(name: str, value) -> None:
    """Make ``Tensor.backward``, ``torch.autograd.backward`` and ``.grad`` ignore their ``name`` argument."""

    def make(original):
        def forced(*args, **kwargs):
            kwargs[name] = value
            return original(*args, **kwargs)

        return forced

    _patch(torch.Tensor, "backward", make)
    _patch(torch.autograd, "backward", make)
    _patch(torch.autograd, "grad", make)


@mutant("retain-graph-always-true", "the graph is never freed: retain_graph=True whatever is passed", ("retain-graph",))
def _():
    _force("retain_graph", True)


@mutant("retain-graph-ignored", "retain_graph=True is ignored: the graph is always freed", ("retain-graph",))
def _():
    _force("retain_graph", False)


# --------------------------------------------------------------------------- grad modes
@mutant("no-grad-stops-switching", "torch.no_grad() leaves grad mode on", ("grad-modes",))
def _():
    torch.no_grad.__enter__ = lambda self: None
    torch.no_grad.__exit__ = lambda self, *exc: None


@mutant("enable-grad-stops-switching", "torch.enable_grad() inside no_grad leaves grad mode off", ("grad-modes",))
def _():
    torch.enable_grad.__enter__ = lambda self: None
    torch.enable_grad.__exit__ = lambda self, *exc: None


@mutant("inference-mode-is-no-grad", "inference_mode() behaves as no_grad(): no inference tensors", ("grad-modes",))
def _():
    def make(original):
        return lambda self, mode=True: original(self, False)

    _patch(torch.inference_mode, "__init__", make)


# --------------------------------------------------------------------------- anomaly mode
@mutant("detect-anomaly-does-nothing", "detect_anomaly() switches nothing on", ("anomaly",))
def _():
    torch.autograd.detect_anomaly.__enter__ = lambda self: None
    torch.autograd.detect_anomaly.__exit__ = lambda self, *exc: None


@mutant("check-nan-always-on", "detect_anomaly(check_nan=False) still checks for NaN", ("anomaly",))
def _():
    def make(original):
        return lambda self, check_nan=True: original(self, True)

    _patch(torch.autograd.detect_anomaly, "__init__", make)


# --------------------------------------------------------------------------- checkpointing
@mutant(
    "checkpoint-keeps-activations",
    "checkpoint() runs the function plainly, saving every activation",
    ("checkpointing",),
)
def _():
    import torch.utils.checkpoint as module

    module.checkpoint = lambda function, *args, use_reentrant=None, **kwargs: function(*args)


@mutant("checkpoint-warning-dropped", "checkpoint() without use_reentrant no longer warns", ("checkpointing",))
def _():
    import torch.utils.checkpoint as module

    original = module.checkpoint

    def checkpoint(function, *args, use_reentrant=None, **kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return original(function, *args, use_reentrant=use_reentrant, **kwargs)

    module.checkpoint = checkpoint


# --------------------------------------------------------------------------- custom Function
@mutant(
    "once-differentiable-allows-double-backward",
    "@once_differentiable no longer refuses double backward",
    ("custom-function",),
)
def _():
    import torch.autograd.function as module

    module.once_differentiable = lambda backward: backward


@mutant("mark-non-differentiable-ignored", "ctx.mark_non_differentiable does nothing", ("custom-function",))
def _():
    torch.autograd.function.FunctionCtx.mark_non_differentiable = lambda self, *tensors: None


@mutant(
    "mark-dirty-ignored",
    "ctx.mark_dirty does nothing: a Function's in-place output is not rebased onto it",
    ("custom-function", "function-api"),
)
def _():
    torch.autograd.function.FunctionCtx.mark_dirty = lambda self, *tensors: None


@mutant(
    "gradcheck-always-passes", "gradcheck accepts a wrong backward", ("custom-function", "complex-grad", "gradcheck")
)
def _():
    torch.autograd.gradcheck = lambda *args, **kwargs: True


# --------------------------------------------------------------------------- hooks
@mutant("tensor-hook-result-ignored", "a tensor hook's returned gradient is ignored", ("hooks",))
def _():
    def make(original):
        def register_hook(self, hook):
            def ignoring(grad):
                hook(grad)

            return original(self, ignoring)

        return register_hook

    _patch(torch.Tensor, "register_hook", make)


@mutant("removed-hook-still-runs", "RemovableHandle.remove() does not remove the hook", ("hooks",))
def _():
    torch.utils.hooks.RemovableHandle.remove = lambda self: None


@mutant("saved-tensor-hooks-ignored", "saved_tensors_hooks(pack, unpack) installs nothing", ("hooks",))
def _():
    torch.autograd.graph.saved_tensors_hooks.__enter__ = lambda self: None
    torch.autograd.graph.saved_tensors_hooks.__exit__ = lambda self, *exc: None


# --------------------------------------------------------------------------- errors and their types
@mutant(
    "backward-errors-change-type",
    "errors raised by backward become ValueError instead of RuntimeError",
    ("vjp", "retain-graph", "inplace"),
)
def _():
    def make(original):
        def backward(self, *args, **kwargs):
            try:
                return original(self, *args, **kwargs)
            except RuntimeError as error:
                raise ValueError(str(error)) from None

        return backward

    _patch(torch.Tensor, "backward", make)


@mutant("in-place-check-swallowed", "backward through a modified saved tensor returns silently", ("inplace",))
def _():
    def make(original):
        def backward(self, *args, **kwargs):
            try:
                return original(self, *args, **kwargs)
            except RuntimeError as error:
                if "modified by an inplace operation" not in str(error):
                    raise
                return None

        return backward

    _patch(torch.Tensor, "backward", make)


# --------------------------------------------------------------------------- vjp, higher order, complex
@mutant("grad-outputs-doubled", "torch.autograd.grad uses twice the grad_outputs it is given", ("vjp", "higher-order"))
def _():
    def make(original):
        def grad(outputs, inputs, grad_outputs=None, *args, **kwargs):
            if grad_outputs is not None:
                if isinstance(grad_outputs, torch.Tensor):
                    grad_outputs = grad_outputs * 2
                else:
                    grad_outputs = [None if g is None else g * 2 for g in grad_outputs]
            return original(outputs, inputs, grad_outputs, *args, **kwargs)

        return grad

    _patch(torch.autograd, "grad", make)


@mutant("create-graph-ignored", "torch.autograd.grad(create_graph=True) builds no graph", ("higher-order",))
def _():
    def make(original):
        def grad(*args, **kwargs):
            kwargs["create_graph"] = False
            return original(*args, **kwargs)

        return grad

    _patch(torch.autograd, "grad", make)


@mutant("complex-gradient-conjugated", "gradients of complex inputs come back conjugated", ("complex-grad",))
def _():
    def make(original):
        def backward(self, *args, **kwargs):
            leaves = [leaf for leaf in _leaves_of(self) if leaf.is_complex()]
            before = {id(leaf): leaf.grad for leaf in leaves}
            result = original(self, *args, **kwargs)
            for leaf in leaves:
                if leaf.grad is not None and leaf.grad is not before[id(leaf)]:
                    leaf.grad = leaf.grad.conj().resolve_conj()
            return result

        return backward

    _patch(torch.Tensor, "backward", make)


# --------------------------------------------------------------------------- forward mode, compiled
@mutant("make-dual-scales-the-tangent", "make_dual attaches twice the tangent it is given", ("forward-mode",))
def _():
    import torch.autograd.forward_ad as module

    def make(original):
        return lambda tensor, tangent, *args, **kwargs: original(tensor, tangent * 2, *args, **kwargs)

    _patch(module, "make_dual", make)


@mutant("compiled-gradients-off", "torch.compile'd functions return gradients 1% too large", ("compiled",))
def _():
    class Scale(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, grad):
            return grad * 1.01

    original = torch.compile

    def compile(function=None, **kwargs):
        compiled = original(function, **kwargs)
        return lambda *args: compiled(
            *(Scale.apply(a) if isinstance(a, torch.Tensor) and a.requires_grad else a for a in args)
        )

    torch.compile = compile


# --------------------------------------------------------------------------- the derivative atlas
@mutant(
    "tanh-gradient-sech-not-sech-squared",
    "tanh's gradient is sech(x) instead of sech(x)^2: right at 0 only",
    ("atlas",),
)
def _():
    _unary("tanh", lambda x: 1 / torch.cosh(x))


# --------------------------------------------------------------------------- the autograd.Function API
@mutant(
    "function-instantiation-warning-dropped", "instantiating an autograd.Function no longer warns", ("function-api",)
)
def _():
    torch.autograd.Function.__init__ = lambda self, *args, **kwargs: None


# --------------------------------------------------------------------------- torch.autograd.functional
@mutant(
    "functional-jacobian-strict-ignored",
    "functional.jacobian (and hessian, built on it) ignores strict=True",
    ("functional",),
)
def _():
    import torch.autograd.functional as module

    def make(original):
        def jacobian(func, inputs, create_graph=False, strict=False, **kwargs):
            return original(func, inputs, create_graph=create_graph, strict=False, **kwargs)

        return jacobian

    _patch(module, "jacobian", make)


# --------------------------------------------------------------------------- gradient layout
@mutant(
    "new-grad-always-contiguous", "a new .grad is row-major contiguous whatever its leaf's strides", ("grad-layout",)
)
def _():
    def make(original):
        def backward(self, *args, **kwargs):
            fresh = [leaf for leaf in _leaves_of(self) if leaf.grad is None]
            result = original(self, *args, **kwargs)
            for leaf in fresh:
                if leaf.grad is not None and not leaf.grad.is_sparse:
                    leaf.grad = leaf.grad.contiguous()
            return result

        return backward

    _patch(torch.Tensor, "backward", make)


@mutant(
    "grad-assignment-checks-dropped",
    "assigning a .grad of the wrong type, shape, dtype or device is silently ignored instead of raising",
    ("grad-layout",),
)
def _():
    descriptor = torch._C.TensorBase.grad

    def assign(self, value):
        try:
            descriptor.__set__(self, value)
        except (RuntimeError, TypeError):
            pass

    torch.Tensor.grad = property(descriptor.__get__, assign, descriptor.__delete__)


# --------------------------------------------------------------------------- gradcheck
@mutant(
    "gradcheck-ignores-check-forward-ad", "gradcheck(check_forward_ad=True) checks only the backward", ("gradcheck",)
)
def _():
    def make(original):
        def gradcheck(*args, **kwargs):
            kwargs["check_forward_ad"] = False
            kwargs.setdefault("check_backward_ad", True)
            return original(*args, **kwargs)

        return gradcheck

    _patch(torch.autograd, "gradcheck", make)


# --------------------------------------------------------------------------- the graph API
@mutant(
    "increment-version-does-nothing", "torch.autograd.graph.increment_version leaves the version counter", ("graph",)
)
def _():
    torch.autograd.graph.increment_version = lambda tensor: None


@mutant("multi-grad-hook-any-acts-as-all", 'register_multi_grad_hook(mode="any") behaves as mode="all"', ("graph",))
def _():
    def make(original):
        def register_multi_grad_hook(tensors, fn, *, mode="all"):
            return original(tensors, fn, mode="all" if mode == "any" else mode)

        return register_multi_grad_hook

    _patch(torch.autograd.graph, "register_multi_grad_hook", make)


# --------------------------------------------------------------------------- module hooks
@mutant("full-backward-hook-result-ignored", "what a module's full backward hook returns is ignored", ("module-hooks",))
def _():
    def make(original):
        def register_full_backward_hook(self, hook, prepend=False):
            def ignoring(module, grad_input, grad_output):
                hook(module, grad_input, grad_output)

            return original(self, ignoring, prepend=prepend)

        return register_full_backward_hook

    _patch(torch.nn.Module, "register_full_backward_hook", make)


# --------------------------------------------------------------------------- saved tensors
@mutant(
    "saved-tensors-unpack-result-ignored",
    "backward uses the tensor that was saved, not what unpack returns",
    ("saved-tensors", "hooks"),
)
def _():
    def make(original):
        def __init__(self, pack_hook, unpack_hook):
            def pack(tensor):
                return tensor, pack_hook(tensor)

            def unpack(packed):
                unpack_hook(packed[1])
                return packed[0]

            original(self, pack, unpack)

        return __init__

    _patch(torch.autograd.graph.saved_tensors_hooks, "__init__", make)


# --------------------------------------------------------------------------- sparse gradients
@mutant("sparse-embedding-gradient-dense", "an embedding with sparse=True gets a dense gradient", ("sparse",))
def _():
    def make(original):
        def embedding(
            input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False, sparse=False
        ):
            return original(input, weight, padding_idx, max_norm, norm_type, scale_grad_by_freq, False)

        return embedding

    _patch(torch.nn.functional, "embedding", make)


# --------------------------------------------------------------------------- threads
@mutant(
    "multithreading-switch-process-wide",
    "set_multithreading_enabled(False) applies to every thread, not only the calling one",
    ("threads",),
)
def _():
    import torch.autograd.grad_mode as module

    switch = module.set_multithreading_enabled
    process_wide = {"enabled": True}

    class ProcessWide(switch):
        def __init__(self, mode: bool) -> None:
            super().__init__(mode)
            self.before, process_wide["enabled"] = process_wide["enabled"], mode

        def __exit__(self, *exc) -> None:
            super().__exit__(*exc)
            process_wide["enabled"] = self.before

    torch.autograd.set_multithreading_enabled = module.set_multithreading_enabled = ProcessWide
    torch.autograd.is_multithreading_enabled = lambda: process_wide["enabled"]


@mutant(
    "autograd-grad-writes-dot-grad",
    "torch.autograd.grad also accumulates into its leaf inputs' .grad",
    ("threads", "vjp"),
)
def _():
    def make(original):
        def grad(outputs, inputs, *args, **kwargs):
            results = original(outputs, inputs, *args, **kwargs)
            if kwargs.get("is_grads_batched"):  # a batch of gradients has no .grad to go into
                return results
            many = isinstance(inputs, (tuple, list))
            for tensor, result in zip(inputs if many else (inputs,), results):
                if isinstance(tensor, torch.Tensor) and tensor.is_leaf and result is not None:
                    with torch.no_grad():
                        tensor.grad = result.detach().clone() if tensor.grad is None else tensor.grad + result
            return results

        return grad

    _patch(torch.autograd, "grad", make)


# --------------------------------------------------------------------------- DistributedDataParallel
def _ddp_never_syncs() -> None:
    # DDP all-reduces only when require_backward_grad_sync is true at forward (no_sync() clears it).
    DDP = torch.nn.parallel.DistributedDataParallel
    DDP.require_backward_grad_sync = property(lambda self: False, lambda self, value: None)


#: patches that must run in the processes the distributed family spawns, by mutant name
_WORKER_PATCHES: dict[str, Callable[[], None]] = {"ddp-never-all-reduces": _ddp_never_syncs}


def _serve_mutated(name: str, *args) -> None:
    """A DDP worker's entry point under mutant ``name``: patch torch in the worker, then serve."""
    _WORKER_PATCHES[name]()
    from specs.families import distributed

    distributed._serve(*args)  # the original: this fresh process imported the family unpatched


@mutant(
    "ddp-never-all-reduces",
    "DistributedDataParallel never all-reduces: each rank keeps its own gradient",
    ("distributed",),
)
def _():
    # The workers are spawned fresh processes: a patch here never reaches them, so the family's
    # worker entry point is replaced by one (picklable by name from specs.mutants, never __main__)
    # that applies the patch in the worker before serving.
    import functools

    from specs import mutants
    from specs.families import distributed

    _ddp_never_syncs()
    distributed._serve = functools.partial(mutants._serve_mutated, "ddp-never-all-reduces")


# =========================================================================== running them
CONTROL = "none"


def run(name: str, examples: int = EXAMPLES) -> dict:
    """Apply mutant ``name`` (or nothing, for ``none``) in this process and run its families' rules."""
    import hypothesis

    from specs.engine import registry

    chosen = MUTANTS.get(name)
    if chosen is not None:
        chosen.apply()
    families = set(chosen.families) if chosen else {m for x in MUTANTS.values() for m in x.families}
    # No shrinking: the first failing example is evidence enough, and shrinking under a mutant that
    # breaks everything would take minutes.
    settings = hypothesis.settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        print_blob=False,
        phases=(hypothesis.Phase.explicit, hypothesis.Phase.generate),
        report_multiple_bugs=False,
    )
    started = time.perf_counter()
    failed, held = {}, []
    rules = [r for r in registry.rules() if r.family in families]
    for error in registry.IMPORT_ERRORS.values():
        failed["(family import)"] = error[:300]
    for rule in rules:
        if rule.not_applicable():
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rule.run(settings)
        except registry.RuleFailed as failure:
            failed[rule.id] = f"{type(failure.cause).__name__}: {failure.cause}"[:300]
        except Exception as error:  # noqa: BLE001 - a mutant may break the machinery itself; that is caught too
            failed[rule.id] = f"{type(error).__name__}: {error}"[:300]
        else:
            held.append(rule.id)
    return {
        "mutant": name,
        "families": sorted(families),
        "rules_run": len(rules),
        "failed": failed,
        "held": held,
        "seconds": round(time.perf_counter() - started, 1),
    }


def _run_in_subprocess(name: str, examples: int, timeout: float) -> dict:
    started = time.perf_counter()
    command = [sys.executable, "-m", "specs.mutants", "run", name, f"--examples={examples}", "--json"]
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
    except subprocess.TimeoutExpired:
        result = {"mutant": name, "failed": {}, "held": [], "error": f"timed out after {timeout:.0f} s"}
    except (json.JSONDecodeError, IndexError):
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        result = {"mutant": name, "failed": {}, "held": [], "error": f"crashed: {tail}"}
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    return result


def run_all(names: list[str], jobs: int = 2, examples: int = EXAMPLES, timeout: float = 600) -> dict:
    """The control and every mutant, each in a fresh process, ``jobs`` at a time: the mutation table."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(
            pool.map(
                lambda n: _run_in_subprocess(n, (MUTANTS[n].examples if n in MUTANTS else None) or examples, timeout),
                [CONTROL, *names],
            )
        )
    control, runs = results[0], results[1:]
    broken = set(control["failed"])  # rules failing without any mutant catch nothing
    table = []
    for result in runs:
        chosen = MUTANTS[result["mutant"]]
        caught = sorted(set(result["failed"]) - broken)
        table.append(
            {
                "mutant": chosen.name,
                "what": chosen.what,
                "families": list(chosen.families),
                "caught_by": caught,
                "evidence": {r: result["failed"][r] for r in caught[:3]},
                "error": result.get("error", ""),
                "survives": "" if caught else chosen.survives,
                "examples": chosen.examples or examples,
                "seconds": result["wall_seconds"],
            }
        )
    killed = sum(1 for row in table if row["caught_by"])
    return {
        "schema": SCHEMA,
        "torch": torch.__version__,
        "examples_per_rule": examples,
        "jobs": jobs,
        "control_failures": sorted(broken),
        "mutants": table,
        "killed": killed,
        "total": len(table),
        "kill_rate": round(killed / len(table), 3) if table else 0.0,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }


def format_table(data: dict) -> str:
    lines = [f"{'mutant':<44}{'caught by':<10} rules (first three) / why not caught"]
    for row in data["mutants"]:
        caught = row["caught_by"]
        detail = (
            ", ".join(caught[:3]) + (" ..." if len(caught) > 3 else "")
            if caught
            else (f"NOT CAUGHT: {row['survives'] or row['error'] or 'no reason recorded'}")
        )
        lines.append(f"{row['mutant']:<44}{len(caught):<10} {detail}")
    lines.append(
        f"killed {data['killed']} of {data['total']} ({data['kill_rate']:.0%}) in {data['wall_seconds']} s, "
        f"{data['jobs']} processes at a time, {data['examples_per_rule']} examples a rule"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m specs.mutants", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("run", help="run one mutant here")
    one.add_argument("name", choices=[CONTROL, *MUTANTS])
    one.add_argument("--examples", type=int, default=EXAMPLES)
    one.add_argument("--json", action="store_true", help="print the result as one JSON line")
    every = commands.add_parser("all", help="run every mutant, each in a fresh process")
    every.add_argument("names", nargs="*", help="only these mutants")
    every.add_argument("--jobs", type=int, default=2)
    every.add_argument("--examples", type=int, default=EXAMPLES)
    every.add_argument("--output", type=Path, default=Path("build") / "mutants.json")
    args = parser.parse_args(argv)
    if args.command == "run":
        result = run(args.name, args.examples)
        print(json.dumps(result) if args.json else json.dumps(result, indent=2))
        return 0
    unknown = [n for n in args.names if n not in MUTANTS]
    if unknown:
        parser.error(f"unknown mutants: {', '.join(unknown)}")
    data = run_all(args.names or list(MUTANTS), args.jobs, args.examples)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(data, indent=2) + "\n")
    print(format_table(data))
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
