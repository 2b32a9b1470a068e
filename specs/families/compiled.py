"""torch.compile: compiled forward and backward give eager's gradients; hooks; compiled autograd.

Compiling is slow (seconds on a small machine), so these rules draw from narrow strategies: small
programs, compiled with ``dynamic=False``; each distinct program is compiled once and cached.
"""

from __future__ import annotations

import functools
import sys

import torch
from hypothesis import strategies as st

from specs.engine.expect import Tolerance, expect, expect_close
from specs.engine.registry import Family, Feature, rule
from specs.engine.sections import Section
from specs.engine.versions import at_least
from specs.families.custom_function import Cube
from specs.generators.program import Program, Step
from specs.generators.strategies import tensors

FAMILY = Family(
    name="compiled",
    title="torch.compile",
    summary="What changes for gradients when code is compiled with torch.compile: nothing, which these rules check.",
    gallery="plot_93_compile.py",
)


#: The first torch release whose torch.compile runs on each Python newer than 3.10 (2.0 refuses 3.11:
#: "Python 3.11+ not yet supported for torch.compile").
COMPILE_SINCE_FOR_PYTHON = {(3, 11): "2.1", (3, 12): "2.4", (3, 13): "2.6"}


def _compile_supported() -> bool:
    if not hasattr(torch, "compile"):
        return False
    since = COMPILE_SINCE_FOR_PYTHON.get(sys.version_info[:2])
    return since is None or at_least(since)


TORCH_COMPILE = Feature(
    f"torch.compile (new in 2.0) on Python {sys.version_info[0]}.{sys.version_info[1]}", _compile_supported
)
COMPILED_AUTOGRAD = Feature(
    "torch._dynamo.compiled_autograd._enable (prototype since 2.4)",
    lambda: _compiled_autograd() is not None,
)
INDUCTOR = Feature("a working inductor backend (a C++ compiler)", lambda: _inductor_works())

#: A compiled graph may fuse and reorder the same float64 operations.
COMPILED = Tolerance(1e-9, 1e-10, "float64: compiled kernels may reorder and fuse the same operations")

#: Unary steps of the compiled programs: few, so each distinct program is compiled once and reused.
UNARY = {"sin": "torch.sin({0})", "tanh": "torch.tanh({0})", "square": "{0} ** 2"}


@st.composite
def small_programs(draw):
    """``x0`` (2x3) through two generated unary steps, times ``x1`` (3), summed over dim 0.

    Only the values vary freely: at most 9 program texts and one shape, so compiling stays cheap.
    """
    leaves = tuple(
        draw(tensors(shape=shape, dtypes=(torch.float64,), layouts=("contiguous",)), label=name)
        for name, shape in (("x0", (2, 3)), ("x1", (3,)))
    )
    steps, last = [], "x0"
    for k in range(2):
        name = draw(st.sampled_from(sorted(UNARY)), label=f"step {k}")
        steps.append(Step(f"v{k}", name, (last,), UNARY[name].format(last)))
        last = f"v{k}"
    steps.append(Step("v2", "mul", (last, "x1"), f"{last} * x1"))
    steps.append(Step("v3", "sum_dim", ("v2",), "v2.sum(dim=0)"))
    return Program(leaves, tuple(steps), "v3")


def _compiled_autograd():
    try:
        from torch._dynamo import compiled_autograd
    except ImportError:
        return None
    return compiled_autograd if hasattr(compiled_autograd, "_enable") else None


@functools.lru_cache(maxsize=1)
def _inductor_works() -> bool:
    import shutil

    return hasattr(torch, "compile") and (shutil.which("gcc") or shutil.which("c++")) is not None


@functools.lru_cache(maxsize=256)
def compiled(function, backend: str = "aot_eager"):
    """``torch.compile(function)``, once per function object (programs cache their function by source)."""
    return torch.compile(function, backend=backend, fullgraph=True, dynamic=False)


def _eager_grads(program: Program, function) -> list[torch.Tensor]:
    leaves = program.inputs()
    function(*leaves).sum().backward()
    return [x.grad for x in leaves]


def _compare(program: Program, got, want, what: str, repro: str) -> None:
    for i, (g, w) in enumerate(zip(got, want)):
        expect(g is not None, what=f"x{i}.grad is set ({what})", expected="a tensor", observed=None, repro=repro)
        expect_close(g, w, tolerance=COMPILED, what=f"x{i}.grad, {what}, against eager", repro=repro)


#: Every example is a compilation (a tenth of a second to seconds): fewer under the everyday profiles.
COMPILES = 5


@rule(
    "compiled.aot-eager-matches-eager",
    section=Section.BEYOND,
    docs="compiled-programs",
    since="2.0",
    requires=(TORCH_COMPILE,),
    max_examples=COMPILES,
    given=dict(program=small_programs()),
)
def aot_eager_matches_eager(program):
    """A program compiled with torch.compile(backend="aot_eager", fullgraph=True) returns eager's output, and backward through it leaves eager's gradients in every leaf's .grad."""
    function = program.function()
    leaves = program.inputs()
    out = compiled(function)(*leaves)
    repro = program.repro(
        "compiled = torch.compile(program, backend='aot_eager', fullgraph=True)",
        "compiled(x0).sum().backward()  # against program(x0).sum().backward()",
    )
    expect_close(
        out, function(*program.inputs()), tolerance=COMPILED, what="compiled output against eager", repro=repro
    )
    out.sum().backward()
    _compare(program, [x.grad for x in leaves], _eager_grads(program, function), "aot_eager", repro)


def _through_cube(x, y):
    return (Cube.apply(torch.sin(x)) * y).sum(dim=-1)


@rule(
    "compiled.custom-function-matches-eager",
    section=Section.BEYOND,
    docs="compiled-custom",
    since="2.0",
    requires=(TORCH_COMPILE,),
    max_examples=COMPILES,
    given=dict(
        x=tensors(shape=(2, 3), dtypes=(torch.float64,), layouts=("contiguous",)),
        y=tensors(shape=(2, 3), dtypes=(torch.float64,), layouts=("contiguous",)),
    ),
)
def custom_function_matches_eager(x, y):
    """A custom autograd.Function inside a compiled function runs its own backward: the gradients equal eager's and the analytic 3·sin²(x)·cos(x)·y."""
    a, b = x.make(), y.make()
    compiled(_through_cube)(a, b).sum().backward()
    xd, yd = x.make(requires_grad=False), y.make(requires_grad=False)
    analytic = 3 * torch.sin(xd) ** 2 * torch.cos(xd) * yd
    repro = (
        f"x = {x.expression()}\ny = {y.expression()}\n# Cube: forward x**3, backward 3*x**2*g\n"
        "torch.compile(lambda x, y: (Cube.apply(torch.sin(x)) * y).sum(dim=-1), backend='aot_eager')(x, y)"
        ".sum().backward()"
    )
    expect_close(a.grad, analytic, tolerance=COMPILED, what="x.grad through a compiled custom Function", repro=repro)
    expect_close(
        b.grad, torch.sin(xd) ** 3, tolerance=COMPILED, what="y.grad through a compiled custom Function", repro=repro
    )


HOOK_SCALES = (2.0, -1.0, 0.5)


def _hooked(x, scale):
    y = torch.sin(x)
    y.register_hook(lambda grad: grad * scale)
    return (y * y).sum()


@rule(
    "compiled.tensor-hooks-are-honoured",
    section=Section.BEYOND,
    docs="compiled-hooks",
    since="2.0",
    requires=(TORCH_COMPILE,),
    max_examples=COMPILES,
    given=dict(
        x=tensors(shape=(3,), dtypes=(torch.float64,), layouts=("contiguous",)), scale=st.sampled_from(HOOK_SCALES)
    ),
)
def tensor_hooks_are_honoured(x, scale):
    """A hook registered on an intermediate tensor inside a compiled function changes the gradient exactly as in eager mode."""
    a = x.make()
    torch.compile(_hooked, backend="aot_eager", dynamic=False)(a, scale).backward()
    xd = x.make(requires_grad=False)
    expected = scale * 2 * torch.sin(xd) * torch.cos(xd)
    repro = (
        f"x = {x.expression()}\ndef f(x):\n    y = torch.sin(x)\n    y.register_hook(lambda g: g * {scale})\n"
        "    return (y * y).sum()\ntorch.compile(f, backend='aot_eager')(x).backward()\nprint(x.grad)"
    )
    expect_close(a.grad, expected, tolerance=COMPILED, what=f"x.grad with a hook scaling by {scale}", repro=repro)


@rule(
    "compiled.compiled-autograd-matches-eager",
    section=Section.BEYOND,
    docs="compiled-autograd",
    since="2.4",
    requires=(TORCH_COMPILE, COMPILED_AUTOGRAD),
    max_examples=COMPILES,
    given=dict(program=small_programs()),
)
def compiled_autograd_matches_eager(program):
    """With compiled autograd enabled, backward of an eager program is itself traced and compiled, and leaves eager's gradients in .grad."""
    import torch._dynamo

    function = program.function()
    leaves = program.inputs()
    with _compiled_autograd()._enable(torch.compile(backend="aot_eager", dynamic=False)):
        function(*leaves).sum().backward()
    repro = program.repro(
        "from torch._dynamo import compiled_autograd",
        "with compiled_autograd._enable(torch.compile(backend='aot_eager')):",
        "    out.sum().backward()",
    )
    _compare(program, [x.grad for x in leaves], _eager_grads(program, function), "compiled autograd", repro)


def _inductor_program(x, w):
    return torch.tanh(x @ w).sum(dim=0) * torch.sigmoid(w).mean()


@rule(
    "compiled.inductor-matches-eager",
    section=Section.BEYOND,
    docs="compiled-programs",
    since="2.0",
    requires=(TORCH_COMPILE, INDUCTOR),
    max_examples=COMPILES,
    given=dict(
        x=tensors(shape=(3, 2), dtypes=(torch.float64,), layouts=("contiguous",)),
        w=tensors(shape=(2, 2), dtypes=(torch.float64,), layouts=("contiguous",)),
    ),
)
def inductor_matches_eager(x, w):
    """The default inductor backend, which generates and compiles C++ kernels for forward and backward, gives eager's gradients (one fixed program, generated values)."""
    a, b = x.make(), w.make()
    compiled(_inductor_program, "inductor")(a, b).sum().backward()
    ea, eb = x.make(), w.make()
    _inductor_program(ea, eb).sum().backward()
    repro = (
        f"x = {x.expression()}\nw = {w.expression()}\n"
        "f = lambda x, w: torch.tanh(x @ w).sum(dim=0) * torch.sigmoid(w).mean()\n"
        "torch.compile(f)(x, w).sum().backward()  # against f(x, w).sum().backward()"
    )
    expect_close(a.grad, ea.grad, tolerance=COMPILED, what="x.grad from inductor", repro=repro)
    expect_close(b.grad, eb.grad, tolerance=COMPILED, what="w.grad from inductor", repro=repro)
