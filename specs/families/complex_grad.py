"""Complex autograd: PyTorch's convention (the conjugate Wirtinger derivative) and what follows from it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from hypothesis import strategies as st

from specs.engine.contracts import ErrorContract, Phase
from specs.engine.expect import Tolerance, expect, expect_close
from specs.engine.oracles import FD_STEP, FD_TOLERANCE
from specs.engine.registry import Family, rule
from specs.engine.sections import Section
from specs.generators.program import _compiled
from specs.generators.strategies import programs, tensors

FAMILY = Family(
    name="complex-grad",
    title="Complex gradients",
    summary="What .grad means for a complex tensor, and why a real loss still descends along it.",
    gallery="plot_91_complex.py",
)


#: Analytic formulas against autograd in complex128: rounding of a few complex products only.
ANALYTIC = Tolerance(1e-10, 1e-12, "complex128 products and sums of a few terms")

IMPLICIT_COMPLEX = ErrorContract(
    RuntimeError,
    r"grad can be implicitly created only for real scalar outputs",
    Phase.BACKWARD,
)

complex_constants = st.sampled_from([complex(0.5, -1.0), complex(-1.5, 0.25), complex(0.0, 1.0), complex(1.0, 0.0)])


def _pairs(t: torch.Tensor) -> torch.Tensor:
    """(real, imag) pairs; a .grad may be a lazily conjugated view, which view_as_real refuses."""
    return torch.view_as_real(t.resolve_conj())


@dataclass(frozen=True)
class ComplexStep:
    name: str
    code: str  # a template in ``z``
    constant: complex = 0j


#: Holomorphic steps, with a bound on |result| from a bound on |z| (so nothing overflows).
HOLOMORPHIC = ("scale", "square", "sin", "exp", "shift")
NON_HOLOMORPHIC = ("conj", "abs2", "real")


def _bound(name: str, b: float, c: complex) -> float:
    return {
        "scale": b * abs(c),
        "square": b * b,
        "sin": math.cosh(b),
        "exp": math.exp(b),
        "shift": b + abs(c),
        "conj": b,
        "abs2": b * b,
        "real": b,
    }[name]


def _code(name: str, c: complex) -> str:
    return {
        "scale": f"z * {c!r}",
        "square": "z * z",
        "sin": "torch.sin(z)",
        "exp": "torch.exp(z)",
        "shift": f"z + {c!r}",
        "conj": "torch.conj(z)",
        "abs2": "z * torch.conj(z)",
        "real": "torch.complex(z.real, torch.zeros_like(z.real))",
    }[name]


@dataclass(frozen=True)
class ComplexProgram:
    """z -> a chain of complex steps, as code; ``reduce`` turns the last value into a real scalar."""

    re: object  # TensorSpec of the real parts
    im: object  # TensorSpec of the imaginary parts
    steps: tuple[ComplexStep, ...]
    reduce: str = ""

    @property
    def holomorphic(self) -> bool:
        return all(s.name in HOLOMORPHIC for s in self.steps)

    def z(self) -> torch.Tensor:
        return torch.complex(
            self.re.make(requires_grad=False).contiguous(), self.im.make(requires_grad=False).contiguous()
        ).requires_grad_()

    def source(self) -> str:
        lines = ["def f(z):"] + [f"    z = {s.code}" for s in self.steps]
        lines.append(f"    return {self.reduce.replace('{0}', 'z') if self.reduce else 'z'}")
        return "\n".join(lines) + "\n"

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return _compiled(self.source(), "f")(z)

    def repro(self, *lines: str) -> str:
        head = [
            "import torch",
            "",
            f"z = torch.complex({self.re.expression(requires_grad=False)}, "
            f"{self.im.expression(requires_grad=False)}).requires_grad_()",
            "",
            self.source().rstrip(),
            "",
        ]
        return "\n".join(head + list(lines)) + "\n"

    def __repr__(self) -> str:
        return "\n" + self.repro()

    def derivative(self, z: torch.Tensor) -> torch.Tensor:
        """f'(z) of a holomorphic chain, by the chain rule written out by hand (no autograd)."""
        value, slope = z.detach().clone(), torch.ones_like(z.detach())
        for s in self.steps:
            if s.name == "scale":
                value, slope = value * s.constant, slope * s.constant
            elif s.name == "shift":
                value = value + s.constant
            elif s.name == "square":
                value, slope = value * value, slope * 2 * value
            elif s.name == "sin":
                value, slope = torch.sin(value), slope * torch.cos(value)
            elif s.name == "exp":
                value = torch.exp(value)
                slope = slope * value
            else:
                raise ValueError(f"{s.name} is not holomorphic")
        return slope


@st.composite
def complex_programs(draw, holomorphic: bool = False, max_steps: int = 4, reduce: bool = True):
    shape = draw(st.sampled_from([(), (1,), (3,), (2, 2)]), label="shape")
    re = draw(tensors(shape=shape, dtypes=(torch.float64,), requires_grad=False), label="real parts")
    im = draw(tensors(shape=shape, dtypes=(torch.float64,), requires_grad=False), label="imaginary parts")
    names = HOLOMORPHIC if holomorphic else HOLOMORPHIC + NON_HOLOMORPHIC
    steps, bound = [], 2 * math.sqrt(2)
    for _ in range(draw(st.integers(1, max_steps), label="steps")):
        name = draw(st.sampled_from(names), label="op")
        c = draw(complex_constants, label="constant")
        if _bound(name, bound, c) > 30:
            continue
        bound = _bound(name, bound, c)
        steps.append(ComplexStep(name, _code(name, c), c))
    if not steps:
        steps.append(ComplexStep("scale", _code("scale", 1j), 1j))
    text = ""
    if reduce:
        text = draw(
            st.sampled_from(
                [
                    "({0} * torch.conj({0})).real.sum()",
                    "{0}.real.sum()",
                    "{0}.imag.sum()",
                    "({0}.real * {0}.imag).sum()",
                    "torch.sin({0}.real).sum()",
                ]
            ),
            label="loss",
        )
    return ComplexProgram(re, im, tuple(steps), text)


def _partials(f, z: torch.Tensor, step: float = FD_STEP) -> torch.Tensor:
    """∂L/∂x + i·∂L/∂y for a real scalar L(z), by float64 central differences on real and imaginary parts."""
    base = z.detach().clone().contiguous()
    flat = base.view(-1)
    out = torch.zeros_like(flat)
    with torch.no_grad():
        for j in range(flat.numel()):
            parts = []
            for direction in (1, 1j):
                saved = flat[j].item()
                flat[j] = saved + step * direction
                up = f(base).item()
                flat[j] = saved - step * direction
                down = f(base).item()
                flat[j] = saved
                parts.append((up - down) / (2 * step))
            out[j] = complex(parts[0], parts[1])
    return out.view(z.shape)


@rule(
    "complex-grad.grad-is-dl-dx-plus-i-dl-dy",
    section=Section.BEYOND,
    docs="complex-convention",
    given=dict(program=complex_programs()),
    references=(
        "docs: Autograd mechanics > Complex Autograd Doc > How is the gradient computed? "
        "(its derivation calls the computed gradient ∂L/∂z*, a factor of 2 below what autograd returns)",
    ),
)
def grad_is_dl_dx_plus_i_dl_dy(program):
    """For a real loss L of a complex tensor z = x + iy, z.grad is ∂L/∂x + i·∂L/∂y (twice the conjugate Wirtinger derivative ∂L/∂z̄, although the note's derivation calls ∂L/∂z̄ itself the computed gradient), which agrees with float64 finite differences on the real and imaginary parts."""
    z = program.z()
    program(z).backward()
    expected = _partials(program, z)
    expect(z.grad.dtype == z.dtype, what="z.grad has z's complex dtype", expected=z.dtype, observed=z.grad.dtype)
    expect_close(
        _pairs(z.grad),
        _pairs(expected),
        tolerance=FD_TOLERANCE,
        what="z.grad against dL/dx + i dL/dy by central differences",
        repro=program.repro("f(z).backward()", "print(z.grad)"),
    )


@rule(
    "complex-grad.abs-squared-gives-2z",
    section=Section.BEYOND,
    docs="complex-convention",
    given=dict(
        re=tensors(dtypes=(torch.float64,), requires_grad=False),
        data=st.data(),
        dtype=st.sampled_from([torch.complex64, torch.complex128]),
    ),
    references=("docs: Autograd mechanics > Complex Autograd Doc",),
)
def abs_squared_gives_2z(re, data, dtype):
    """The gradient of sum |z|² is 2z (not z̄, and not z), for complex64 and complex128 tensors."""
    im = data.draw(tensors(shape=re.shape, dtypes=(torch.float64,), requires_grad=False), label="imaginary parts")
    z = torch.complex(re.make(), im.make()).to(dtype).requires_grad_()
    (z.abs() ** 2).sum().backward()
    tolerance = ANALYTIC if dtype == torch.complex128 else Tolerance(1e-5, 1e-6, "complex64 rounding")
    expect_close(
        _pairs(z.grad),
        _pairs(2 * z.detach()),
        tolerance=tolerance,
        what="grad of sum |z|^2",
        repro=f"z = torch.complex({re.expression(requires_grad=False)}, {im.expression(requires_grad=False)})"
        f".to({dtype}).requires_grad_()\n(z.abs() ** 2).sum().backward()\nprint(z.grad)",
    )


@rule(
    "complex-grad.holomorphic-gets-conjugate-derivative",
    section=Section.BEYOND,
    docs="complex-holomorphic",
    given=dict(program=complex_programs(holomorphic=True, reduce=False), data=st.data()),
    references=("docs: Autograd mechanics > Complex Autograd Doc",),
)
def holomorphic_gets_conjugate_derivative(program, data):
    """For a holomorphic f and a complex gradient v, f(z).backward(v) leaves conj(f'(z))·v in z.grad."""
    z = program.z()
    out = program(z)
    vr = data.draw(
        tensors(shape=out.shape, dtypes=(torch.float64,), layouts=("contiguous",), requires_grad=False), label="v real"
    )
    vi = data.draw(
        tensors(shape=out.shape, dtypes=(torch.float64,), layouts=("contiguous",), requires_grad=False), label="v imag"
    )
    v = torch.complex(vr.make(), vi.make())
    out.backward(v)
    expected = torch.conj(program.derivative(z)) * v
    expect_close(
        _pairs(z.grad),
        _pairs(expected),
        tolerance=ANALYTIC,
        what="z.grad against conj(f'(z)) * v",
        repro=program.repro(f"v = torch.tensor({v.tolist()!r})", "f(z).backward(v)", "print(z.grad)"),
    )


@rule(
    "complex-grad.real-function-through-complex-is-real",
    section=Section.BEYOND,
    docs="complex-real-through",
    given=dict(program=programs(dtypes=(torch.float64,), all_require_grad=True, max_ops=6), c=complex_constants),
    references=(
        "test_autograd.py::TestAutogradDeviceType::test_copy_r_to_c",
        "test_autograd.py::TestAutogradDeviceType::test_to_r_to_c",
    ),
)
def real_function_through_complex_is_real(program, c):
    """A real function computed through complex intermediates (here Re(c·exp(i·g(x)))) gives each real input a real .grad equal to that of the same function written with real operations."""
    leaves = program.inputs()
    phase = program(*leaves)
    torch.real(c * torch.exp(1j * phase)).sum().backward()
    real_leaves = program.inputs()
    phase = program(*real_leaves)
    (c.real * torch.cos(phase) - c.imag * torch.sin(phase)).sum().backward()
    repro = program.repro(f"torch.real({c!r} * torch.exp(1j * out)).sum().backward()", "print(x0.grad)")
    for i in program.grad_leaves:
        expect(
            leaves[i].grad.dtype == leaves[i].dtype,
            what=f"x{i}.grad stays real",
            expected=leaves[i].dtype,
            observed=leaves[i].grad.dtype,
            repro=repro,
        )
        expect_close(
            leaves[i].grad,
            real_leaves[i].grad,
            tolerance=Tolerance(1e-10, 1e-12, "float64, other formulas"),
            what=f"x{i}.grad through complex against the real formula",
            repro=repro,
        )


class _Square(torch.autograd.Function):
    """z ↦ z², with a backward chosen by the caller: the convention (conj) or the naive f'(z)·v."""

    conjugate = True

    @staticmethod
    def forward(ctx, z):
        ctx.save_for_backward(z)
        return z * z

    @staticmethod
    def backward(ctx, v):
        (z,) = ctx.saved_tensors
        slope = 2 * z
        return (torch.conj(slope) if _Square.conjugate else slope) * v


@rule(
    "complex-grad.gradcheck-checks-the-convention",
    section=Section.BEYOND,
    docs="complex-gradcheck",
    given=dict(program=complex_programs(reduce=False, max_steps=3)),
    references=("docs: Autograd mechanics > Complex Autograd Doc",),
)
def gradcheck_checks_the_convention(program):
    """torch.autograd.gradcheck accepts complex inputs: it passes for built-in ops, holomorphic or not, and rejects a custom backward that returns f'(z)·v instead of conj(f'(z))·v."""
    z = program.z()
    repro = program.repro("print(torch.autograd.gradcheck(f, (z,)))")
    expect(
        torch.autograd.gradcheck(program, (z,), raise_exception=False),
        what="gradcheck of built-in complex ops",
        expected=True,
        observed=False,
        repro=repro,
    )
    # Off the real axis, where conj(2z) and 2z differ.
    w = torch.complex(z.real.detach(), z.imag.detach().abs() + 0.5).requires_grad_()
    try:
        _Square.conjugate = True
        right = torch.autograd.gradcheck(_Square.apply, (w,), raise_exception=False)
        _Square.conjugate = False
        wrong = torch.autograd.gradcheck(_Square.apply, (w,), raise_exception=False)
    finally:
        _Square.conjugate = True
    expect(right, what="gradcheck of a custom z^2 whose backward returns conj(2z) * v", expected=True, observed=right)
    expect(not wrong, what="gradcheck of a custom z^2 whose backward returns 2z * v", expected=False, observed=wrong)


@rule(
    "complex-grad.gradient-descent-descends",
    section=Section.BEYOND,
    docs="complex-descent",
    given=dict(program=complex_programs(), lr=st.sampled_from([1e-6, 1e-7])),
    references=("docs: Autograd mechanics > Complex Autograd Doc",),
)
def gradient_descent_descends(program, lr):
    """A small step against z.grad lowers a real loss by about lr·‖z.grad‖², as for real parameters: the conjugate convention makes -z.grad a descent direction."""
    z = program.z()
    loss = program(z)
    loss.backward()
    norm2 = (z.grad.abs() ** 2).sum().item()
    with torch.no_grad():
        after = program(z - lr * z.grad).item()
    decrease = loss.item() - after
    repro = program.repro("loss = f(z); loss.backward()", f"print(loss.item() - f(z.detach() - {lr} * z.grad).item())")
    rounding = 1e-12 * (1 + abs(loss.item()))
    expect(
        math.isclose(decrease, lr * norm2, rel_tol=0.05, abs_tol=rounding),
        what="loss decrease of one step",
        expected=f"~ lr * |grad|^2 = {lr * norm2:.6g}",
        observed=f"{decrease:.6g}",
        repro=repro,
    )


@rule(
    "complex-grad.complex-output-needs-a-gradient",
    section=Section.BEYOND,
    docs="complex-convention",
    given=dict(program=complex_programs(reduce=False)),
    contracts=(IMPLICIT_COMPLEX,),
    references=("test_autograd.py::TestAutogradDeviceType::test_complex_scalar_backward",),
)
def complex_output_needs_a_gradient(program):
    """backward() without a gradient on a complex output raises a RuntimeError even when it has one element: a loss must be real."""
    IMPLICIT_COMPLEX.check(lambda: program(program.z()).sum(), repro=program.repro("f(z).sum().backward()"))
