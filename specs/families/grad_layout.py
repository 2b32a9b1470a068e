"""The ``.grad`` contract: its strides, its dtype (``grad_dtype``), what may be assigned to it, and complex views.

The strides a new ``.grad`` gets are judged against an independent reading of the leaf's strides
(is it dense and non-overlapping?), not against torch's own helpers.
"""

from __future__ import annotations

import warnings

import torch
from hypothesis import strategies as st

from specs.engine.contracts import ErrorContract, Phase
from specs.engine.expect import EXACT, Tolerance, expect, expect_close
from specs.engine.oracles import FD_TOLERANCE, finite_difference_gradients
from specs.engine.registry import Change, Family, Feature, record, rule
from specs.engine.script import Script, literal
from specs.engine.sections import Section
from specs.generators.examples import tensor
from specs.generators.strategies import tensors, value_tuples

FAMILY = Family(
    name="grad-layout",
    title="The .grad layout and dtype contract",
    summary="What .grad looks like: the strides a new .grad copies from its leaf, grad_dtype, what may "
    "be assigned to .grad, and gradients through view_as_real and view_as_complex.",
    gallery="plot_97_grad_layout.py",
)


GRAD_DTYPE = Feature("Tensor.grad_dtype", lambda: hasattr(torch.Tensor, "grad_dtype"))

WRONG_TYPE = ErrorContract(
    TypeError, r"assigned grad expected to be a Tensor or None but got grad of type int", Phase.RECORD
)
WRONG_SIZE = ErrorContract(
    RuntimeError,
    r"attempting to assign a gradient of size '\[[\d, ]*\]' to a tensor of size|assigned grad has "
    r"data of a different size",
    Phase.RECORD,
    wording="'attempting to assign a gradient of size ...' by 2.2; 'assigned grad has data of a different size' before",
)
WRONG_DTYPE = ErrorContract(
    RuntimeError,
    r"attempting to assign a gradient with dtype '\w+' to a tensor with (grad_)?dtype|assigned grad "
    r"has data of a different type",
    Phase.RECORD,
    wording="names grad_dtype since 2.10; 'assigned grad has data of a different type' in old releases",
)
WRONG_DEVICE = ErrorContract(
    RuntimeError,
    r"attempting to assign a gradient with device type '\w+' to a tensor with device type|assigned "
    r"grad has data located on a different device",
    Phase.RECORD,
)
OWN_GRAD = ErrorContract(RuntimeError, r"can't assign Variable as its own grad", Phase.RECORD)
LEAVES_ONLY = ErrorContract(RuntimeError, r"grad_dtype can only be (set|accessed) on leaf tensors", Phase.RECORD)
LOCKED = ErrorContract(
    RuntimeError,
    r"Cannot set grad_dtype to '\w+' because there is already a gradient with dtype '\w+'",
    Phase.RECORD,
)

#: The same float64 values through one elementwise op: the layout of the result cannot change a value.
ELEMENTWISE = EXACT
#: A float64 gradient cast to float32 by the engine against the cast done here.
CAST = Tolerance(1e-6, 1e-7, "float32 rounding of the same float64 gradient")

DTYPES = (torch.float32, torch.float64)


def _dense_non_overlapping(t: torch.Tensor) -> bool:
    """Whether the elements of ``t`` fill a block of memory exactly once, read from its sizes and strides."""
    dims = sorted((stride, size) for size, stride in zip(t.shape, t.stride()) if size != 1)
    expected = 1
    for stride, size in dims:
        if stride != expected:
            return False
        expected *= size
    return True


def _significant(strides, shape) -> tuple:
    """Strides of the dimensions longer than 1 (the others are arbitrary and do not address memory)."""
    return tuple(s for s, n in zip(strides, shape) if n > 1)


#: How the leaf ``x`` is laid out before it requires grad (channels_last applies to 4-d leaves only).
MEMORY_FORMATS = {False: "", True: ".contiguous(memory_format=torch.channels_last)"}


@rule(
    "grad-layout.new-grad-copies-dense-leaf-strides",
    section=Section.PRACTICAL,
    docs="grad-layout-strides",
    given=dict(spec=tensors(zero_size=False), channels_last=st.booleans()),
    examples=(
        dict(spec=tensor(tuple(v / 4 for v in range(6)), (3, 2), layout="transposed"), channels_last=False),
        dict(spec=tensor(tuple(v / 4 for v in range(12)), (2, 3), layout="sliced"), channels_last=False),
    ),
    references=(
        "test_autograd.py::TestAutograd::test_strided_leaf_grad_layout",
        "docs: torch.autograd (Default gradient layouts)",
    ),
)
def new_grad_copies_dense_leaf_strides(spec, channels_last):
    """A .grad created by backward copies its leaf's strides when the leaf is dense and non-overlapping (transposed and channels_last ones included), and is row-major contiguous otherwise (sliced or expanded leaves)."""
    script = Script(
        """
        x = $x$memory_format
        x.requires_grad_()
        (torch.sin(x) * 1.5).sum().backward()
        reference = x.detach().contiguous().requires_grad_()
        (torch.sin(reference) * 1.5).sum().backward()
        print(x.stride(), x.grad.stride(), x.grad)
        """,
        x=spec.expression(requires_grad=False),
        memory_format=MEMORY_FORMATS[channels_last and len(spec.shape) == 4],
    )
    seen = script.run()
    leaf, reference, repro = seen.x, seen.reference, script
    if _dense_non_overlapping(leaf):
        expect(
            _significant(leaf.grad.stride(), leaf.shape) == _significant(leaf.stride(), leaf.shape),
            what="strides of the .grad of a dense, non-overlapping leaf",
            expected=leaf.stride(),
            observed=leaf.grad.stride(),
            repro=repro,
        )
    else:
        expect(
            leaf.grad.is_contiguous(),
            what="the .grad of a leaf that is not dense and non-overlapping",
            expected="row-major contiguous",
            observed=leaf.grad.stride(),
            repro=repro,
        )
    expect_close(
        leaf.grad,
        reference.grad,
        tolerance=ELEMENTWISE,
        what="the .grad against that of a contiguous copy",
        repro=repro,
    )
    record(
        f"{spec.layout} leaf {tuple(leaf.shape)}: leaf and .grad strides",
        [list(leaf.stride()), list(leaf.grad.stride())],
    )


@rule(
    "grad-layout.existing-grad-keeps-its-strides",
    section=Section.PRACTICAL,
    docs="grad-layout-strides",
    given=dict(spec=tensors(min_ndim=2, zero_size=False, layouts=("contiguous", "transposed"))),
    examples=(dict(spec=tensor(tuple(v / 4 for v in range(6)), (3, 2), layout="transposed")),),
    references=(
        "docs: torch.autograd (Default gradient layouts)",
        "test_autograd.py::TestAutograd::test_accumulate_grad_tensor_reference",
    ),
)
def existing_grad_keeps_its_strides(spec):
    """When .grad already exists, backward adds into it in place, keeping that tensor and its strides even where they differ from the leaf's."""
    script = Script(
        """
        x = $x
        if x.is_contiguous():  # a transposed .grad for a row-major leaf
            existing = torch.ones(x.shape[:-2] + x.shape[-2:][::-1], dtype=x.dtype).transpose(-2, -1)
        else:  # a row-major .grad for a transposed leaf
            existing = torch.ones(x.shape, dtype=x.dtype)
        x.grad = existing
        strides = existing.stride()
        (x * 2.0).sum().backward()
        print(x.grad is existing, strides, x.grad.stride(), x.grad)
        """,
        x=spec.expression(),
    )
    seen = script.run()
    leaf, existing, strides, repro = seen.x, seen.existing, seen.strides, script
    expect(
        leaf.grad is existing,
        what="the .grad after backward",
        expected="the tensor assigned before",
        observed="a new tensor",
        repro=repro,
    )
    expect(
        leaf.grad.stride() == strides,
        what="strides of the existing .grad",
        expected=strides,
        observed=leaf.grad.stride(),
        repro=repro,
    )
    expect(
        bool((leaf.grad == 3.0).all()),
        what="the accumulated values",
        expected="1 + 2 everywhere",
        observed=leaf.grad,
        repro=repro,
    )
    record("leaf and .grad strides", [list(leaf.stride()), list(leaf.grad.stride())])


MISMATCHES = ("int", "shape", "dtype", "device", "itself")


@rule(
    "grad-layout.assigning-a-mismatched-grad-raises",
    section=Section.PRACTICAL,
    docs="grad-layout-assignment",
    given=dict(
        spec=tensors(min_ndim=1, zero_size=False, layouts=("contiguous",)), mismatch=st.sampled_from(MISMATCHES)
    ),
    examples=tuple(dict(spec=tensor((1.0, 2.0, 3.0), (3,), dtype=torch.float32), mismatch=m) for m in MISMATCHES),
    contracts=(WRONG_TYPE, WRONG_SIZE, WRONG_DTYPE, WRONG_DEVICE, OWN_GRAD),
    history=(Change("2.10", "the dtype message names grad_dtype (it said 'with dtype ... to a tensor with dtype')"),),
    references=("test_autograd.py::TestAutograd::test_grad_assignment",),
)
def assigning_a_mismatched_grad_raises(spec, mismatch):
    """Assigning to .grad something that is not a tensor raises TypeError, and a tensor of another shape, dtype or device, or the tensor itself, raises RuntimeError, leaving .grad unchanged."""
    other_dtype = torch.float64 if spec.dtype == torch.float32 else torch.float32
    values = {
        "int": (WRONG_TYPE, "0"),
        "shape": (WRONG_SIZE, "torch.zeros(x.numel() + 1, dtype=x.dtype)"),
        "dtype": (WRONG_DTYPE, f"torch.zeros_like(x, dtype={other_dtype})"),
        "device": (WRONG_DEVICE, "torch.zeros_like(x, device='meta')"),
        "itself": (OWN_GRAD, "x"),
    }
    contract, value = values[mismatch]
    leaf = Script("x = $x", x=spec.expression())
    assign = f"x.grad = {value}"
    seen = leaf.run()
    message = contract.check(lambda: Script(assign).run(x=seen.x), repro=leaf.then(assign))
    after = leaf.then(
        """
        try:
            $assign
        except (TypeError, RuntimeError) as error:
            print(type(error).__name__, error)
        print(x.grad)
        """,
        assign=assign,
    )
    grad = after.run().x.grad
    expect(grad is None, what="the .grad after a refused assignment", expected=None, observed=grad, repro=after)
    record(f"{mismatch} message", message)


@rule(
    "grad-layout.grad-dtype-casts-incoming-gradients",
    section=Section.PRACTICAL,
    docs="grad-layout-grad-dtype",
    since="2.10",
    requires=(GRAD_DTYPE,),
    given=dict(spec=tensors(zero_size=False, layouts=("contiguous",)), grad_dtype=st.sampled_from(DTYPES)),
    examples=(dict(spec=tensor((0.5, -1.0), (2,)), grad_dtype=torch.float32),),
    references=("test_autograd.py::TestAutograd::test_grad_dtype",),
)
def grad_dtype_casts_incoming_gradients(spec, grad_dtype):
    """A leaf's grad_dtype defaults to its dtype, and once set to another floating dtype the engine casts the gradient to it, so .grad has grad_dtype and the cast value."""
    script = Script(
        """
        x = $x
        default = x.grad_dtype
        x.grad_dtype = $grad_dtype
        (torch.sin(x) * 1.5).sum().backward()
        print(default, x.grad.dtype, x.grad)
        """,
        x=spec.expression(),
        grad_dtype=grad_dtype,
    )
    seen = script.run()
    leaf, repro = seen.x, script
    expect(
        seen.default == leaf.dtype,
        what="the default grad_dtype",
        expected=leaf.dtype,
        observed=seen.default,
        repro=repro,
    )
    expected = (1.5 * torch.cos(leaf.detach())).to(grad_dtype)
    expect(
        leaf.grad.dtype == grad_dtype,
        what="the dtype of .grad",
        expected=grad_dtype,
        observed=leaf.grad.dtype,
        repro=repro,
    )
    expect_close(leaf.grad, expected, tolerance=CAST, what="the .grad against the cast gradient", repro=repro)
    record(".grad dtype", str(leaf.grad.dtype))


#: Clearing .grad, then the change of grad_dtype it had refused.
CLEARED = "x.grad = None\n$change\nprint(x.grad_dtype)"
#: Setting and reading the grad_dtype of the non-leaf ``y``.
ACCESSES = {"set": "y.grad_dtype = torch.float64", "read": "print(y.grad_dtype)"}


@rule(
    "grad-layout.grad-dtype-is-for-leaves",
    section=Section.PRACTICAL,
    docs="grad-layout-grad-dtype",
    since="2.10",
    requires=(GRAD_DTYPE,),
    given=dict(spec=tensors(zero_size=False), access=st.sampled_from(("set", "read"))),
    contracts=(LEAVES_ONLY,),
    examples=(dict(spec=tensor((1.0, 2.0), (2,)), access="set"), dict(spec=tensor((1.0, 2.0), (2,)), access="read")),
    references=("test_autograd.py::TestAutograd::test_grad_dtype",),
)
def grad_dtype_is_for_leaves(spec, access):
    """grad_dtype belongs to leaves: reading or setting it on a non-leaf raises a RuntimeError."""

    script = Script("y = $x * 2\n$access", x=spec.expression(), access=ACCESSES[access])
    with warnings.catch_warnings(record=True) as seen:
        # 2.13 also warns that a non-leaf's .grad is being accessed: recorded, not asserted
        warnings.simplefilter("always")
        message = LEAVES_ONLY.check(script.run, repro=script)
    record(f"{access} message", message)
    record(f"{access} warnings", sorted({type(w.message).__name__ for w in seen}))


@rule(
    "grad-layout.grad-dtype-none-accepts-any-dtype",
    section=Section.PRACTICAL,
    docs="grad-layout-grad-dtype",
    since="2.10",
    requires=(GRAD_DTYPE,),
    given=dict(spec=tensors(zero_size=False, layouts=("contiguous",)), grad_dtype=st.sampled_from(DTYPES)),
    examples=(dict(spec=tensor((0.5, -1.0), (2,)), grad_dtype=torch.float32),),
    references=("test_autograd.py::TestAutograd::test_grad_dtype",),
)
def grad_dtype_none_accepts_any_dtype(spec, grad_dtype):
    """With grad_dtype = None a .grad of any floating dtype may be assigned, and backward accumulates into it in that dtype."""
    script = Script(
        """
        x = $x
        x.grad_dtype = None
        existing = torch.ones(x.shape, dtype=$grad_dtype)
        x.grad = existing
        (torch.sin(x) * 1.5).sum().backward()
        print(x.grad is existing, x.grad.dtype, x.grad)
        """,
        x=spec.expression(),
        grad_dtype=grad_dtype,
    )
    seen = script.run()
    leaf, existing, repro = seen.x, seen.existing, script
    expected = (1.0 + 1.5 * torch.cos(leaf.detach()).double()).to(grad_dtype)
    expect(
        leaf.grad is existing and leaf.grad.dtype == grad_dtype,
        what="the .grad after backward",
        expected=f"the assigned {grad_dtype} tensor",
        observed=f"{leaf.grad.dtype}, same object: {leaf.grad is existing}",
        repro=repro,
    )
    expect_close(leaf.grad, expected, tolerance=CAST, what="the accumulated .grad", repro=repro)
    record(".grad dtype", str(leaf.grad.dtype))


@rule(
    "grad-layout.grad-dtype-is-locked-while-grad-exists",
    section=Section.PRACTICAL,
    docs="grad-layout-grad-dtype",
    since="2.10",
    requires=(GRAD_DTYPE,),
    given=dict(spec=tensors(zero_size=False, layouts=("contiguous",))),
    contracts=(LOCKED,),
    examples=(dict(spec=tensor((0.5, -1.0), (2,))),),
    references=("test_autograd.py::TestAutograd::test_grad_dtype",),
)
def grad_dtype_is_locked_while_grad_exists(spec):
    """Changing grad_dtype to a dtype other than that of an existing .grad raises a RuntimeError, and works once .grad is None."""
    other = torch.float64 if spec.dtype == torch.float32 else torch.float32
    leaf = Script("x = $x\nx.sum().backward()", x=spec.expression())
    change = f"x.grad_dtype = {other}"
    seen = leaf.run()
    message = LOCKED.check(lambda: Script(change).run(x=seen.x), repro=leaf.then(change))
    record("message", message)
    Script(CLEARED, change=change).run(x=seen.x)
    expect(
        seen.x.grad_dtype == other,
        what="grad_dtype after clearing .grad",
        expected=other,
        observed=seen.x.grad_dtype,
        repro=leaf.then(CLEARED, change=change),
    )


def _complex_specs():
    return tensors(
        dtypes=(torch.float64,), min_ndim=1, max_ndim=3, zero_size=False, layouts=("contiguous",), requires_grad=False
    )


@st.composite
def complex_cases(draw):
    """A complex128 tensor (its real and imaginary parts drawn) and real weights for a loss of its real view."""
    real = draw(_complex_specs(), label="real part")
    imag = draw(
        tensors(shape=real.shape, dtypes=(torch.float64,), layouts=("contiguous",), requires_grad=False),
        label="imaginary part",
    )
    weights = draw(
        tensors(shape=real.shape + (2,), dtypes=(torch.float64,), layouts=("contiguous",), requires_grad=False),
        label="weights",
    )
    return torch.complex(real.make(), imag.make()), weights.make()


#: z = [1 + 2i, -0.5 + 0.25i] with weights [[1, 2], [-1, 0.5]] for its (real, imaginary) pairs.
COMPLEX = (
    torch.tensor([1.0 + 2.0j, -0.5 + 0.25j], dtype=torch.complex128),
    torch.tensor([[1.0, 2.0], [-1.0, 0.5]], dtype=torch.float64),
)


@rule(
    "grad-layout.view-as-real-gradient-packs-the-pair",
    section=Section.BEYOND,
    docs="grad-layout-complex-views",
    given=dict(case=complex_cases()),
    examples=(dict(case=COMPLEX),),
    references=(
        "autograd/test_complex.py::TestAutogradComplex::test_view_func_for_complex_views",
        "docs: Autograd mechanics > Autograd for Complex Numbers",
    ),
)
def view_as_real_gradient_packs_the_pair(case):
    """For a real loss of view_as_real(z), z.grad is dL/d(real part) + i dL/d(imaginary part), the finite differences of the loss in the (real, imaginary) pairs."""
    value, weights = case
    script = Script(
        """
        z = $z.requires_grad_()
        w = $w
        (torch.sin(torch.view_as_real(z)) * w).sum().backward()
        print(torch.view_as_real(z.grad.resolve_conj()))
        """,
        z=literal(value),
        w=literal(weights),
    )
    z, repro = script.run().z, script

    def loss(pairs):
        return torch.sin(pairs) * weights

    (oracle,) = finite_difference_gradients(loss, [torch.view_as_real(value)], [0])
    expect_close(
        torch.view_as_real(z.grad.resolve_conj()),
        oracle,
        tolerance=FD_TOLERANCE,
        what="z.grad as (real, imaginary) pairs against finite differences",
        repro=repro,
    )
    pairs = torch.view_as_real(z.grad.resolve_conj()).reshape(-1, 2)
    record("z.grad as pairs", [[round(v, 6) for v in pair] for pair in pairs.tolist()])


@rule(
    "grad-layout.view-as-complex-gradient-is-real-pairs",
    section=Section.BEYOND,
    docs="grad-layout-complex-views",
    given=dict(case=complex_cases()),
    examples=(dict(case=COMPLEX),),
    references=(
        "autograd/test_complex.py::TestAutogradComplex::test_view_func_for_complex_views",
        "docs: Autograd mechanics > Autograd for Complex Numbers",
    ),
)
def view_as_complex_gradient_is_real_pairs(case):
    """For a real tensor x of (real, imaginary) pairs and a real loss of view_as_complex(x), x.grad is the real gradient of the loss in x, by finite differences."""
    value, weights = case
    pairs = torch.view_as_real(value).clone()
    scale = torch.view_as_complex(weights.contiguous())
    script = Script(
        """
        x = $pairs.requires_grad_()
        scale = $scale
        c = torch.view_as_complex(x)
        ((torch.sin(c) * scale).real + c.imag ** 2).sum().backward()
        print(x.grad)
        """,
        pairs=literal(pairs),
        scale=literal(scale),
    )
    x, repro = script.run().x, script

    def loss(t):
        c = torch.view_as_complex(t)
        return (torch.sin(c) * scale).real + c.imag**2

    (oracle,) = finite_difference_gradients(loss, [pairs], [0])
    expect_close(x.grad, oracle, tolerance=FD_TOLERANCE, what="x.grad against finite differences", repro=repro)
    record("x.grad", [[round(v, 6) for v in pair] for pair in x.grad.reshape(-1, 2).tolist()])


@rule(
    "grad-layout.cross-dtype-in-place-transpose-is-transposed",
    section=Section.BEYOND,
    docs="grad-layout-complex-views",
    given=dict(n=st.integers(2, 4), real=value_tuples(16), imag=value_tuples(16)),
    examples=(dict(n=2, real=(0.5, 1.0, -1.0, 2.0) + (0.0,) * 12, imag=(0.25, 0.0, 1.5, -0.5) + (0.0,) * 12),),
    references=("test_autograd.py::TestAutograd::test_autograd_inplace_views_cross_dtype",),
)
def cross_dtype_in_place_transpose_is_transposed(n, real, imag):
    """A known bug that PyTorch's own tests pin: transposing a view_as_real view of a complex square matrix in place (transpose_) and then writing to it gives the base a gradient that is the transpose of the gradient of the same computation done out of place."""
    size = n * n
    script = Script(
        """
        real = torch.tensor($real, dtype=torch.float64)
        imag = torch.tensor($imag, dtype=torch.float64)
        source = torch.complex(real, imag).reshape($n, $n)
        upstream = torch.arange($size2, dtype=torch.float64).reshape($n, $n, 2)
        grads = []
        for in_place in (False, True):
            a = source.clone().requires_grad_()
            b = torch.view_as_real(a.clone())
            if in_place:
                b.transpose_(0, 1)
            else:
                b = b.transpose(0, 1)
            b += 1
            b.backward(upstream)
            grads.append(a.grad)
        out_of_place, in_place = grads
        print(out_of_place)
        print(in_place)
        """,
        real=list(real[:size]),
        imag=list(imag[:size]),
        n=n,
        size2=size * 2,
    )
    seen = script.run()
    out_of_place, in_place, repro = seen.out_of_place, seen.in_place, script
    expect(
        torch.equal(in_place, out_of_place.T),
        what="the in-place gradient against the out-of-place one",
        expected="its transpose (the pinned bug)",
        observed=in_place,
        repro=repro,
    )
    expect(
        not torch.equal(in_place, out_of_place),
        what="the in-place gradient against the out-of-place one",
        expected="different (the bug is still there)",
        observed="equal: the bug was fixed",
        repro=repro,
    )
    record("bug present", not torch.equal(in_place, out_of_place))
    record("in-place gradient as pairs", torch.view_as_real(in_place).tolist())
