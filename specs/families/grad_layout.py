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
from specs.engine.sections import Section
from specs.engine.registry import Change, Family, Feature, record, rule
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

WRONG_TYPE = ErrorContract(TypeError, r"assigned grad expected to be a Tensor or None but got grad of type int",
                           Phase.RECORD)
WRONG_SIZE = ErrorContract(
    RuntimeError, r"attempting to assign a gradient of size '\[[\d, ]*\]' to a tensor of size|assigned grad has "
    r"data of a different size", Phase.RECORD,
    wording="'attempting to assign a gradient of size ...' by 2.2; 'assigned grad has data of a different size' before",
)
WRONG_DTYPE = ErrorContract(
    RuntimeError, r"attempting to assign a gradient with dtype '\w+' to a tensor with (grad_)?dtype|assigned grad "
    r"has data of a different type", Phase.RECORD,
    wording="names grad_dtype since 2.10; 'assigned grad has data of a different type' in old releases",
)
WRONG_DEVICE = ErrorContract(
    RuntimeError, r"attempting to assign a gradient with device type '\w+' to a tensor with device type|assigned "
    r"grad has data located on a different device", Phase.RECORD,
)
OWN_GRAD = ErrorContract(RuntimeError, r"can't assign Variable as its own grad", Phase.RECORD)
LEAVES_ONLY = ErrorContract(RuntimeError, r"grad_dtype can only be (set|accessed) on leaf tensors", Phase.RECORD)
LOCKED = ErrorContract(
    RuntimeError, r"Cannot set grad_dtype to '\w+' because there is already a gradient with dtype '\w+'",
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


def _leaf(spec, channels_last: bool) -> torch.Tensor:
    leaf = spec.make(requires_grad=False)
    if channels_last and leaf.dim() == 4:
        leaf = leaf.contiguous(memory_format=torch.channels_last)
    return leaf.requires_grad_()


@rule("grad-layout.new-grad-copies-dense-leaf-strides", section=Section.PRACTICAL, docs="grad-layout-strides",
      given=dict(spec=tensors(zero_size=False), channels_last=st.booleans()),
      examples=(dict(spec=tensor(tuple(v / 4 for v in range(6)), (3, 2), layout="transposed"), channels_last=False),
                dict(spec=tensor(tuple(v / 4 for v in range(12)), (2, 3), layout="sliced"), channels_last=False)),
      references=("test_autograd.py::TestAutograd::test_strided_leaf_grad_layout",
                  "docs: torch.autograd (Default gradient layouts)"))
def new_grad_copies_dense_leaf_strides(spec, channels_last):
    """A .grad created by backward copies its leaf's strides when the leaf is dense and non-overlapping (transposed and channels_last ones included), and is row-major contiguous otherwise (sliced or expanded leaves)."""
    leaf = _leaf(spec, channels_last)
    (torch.sin(leaf) * 1.5).sum().backward()
    reference = leaf.detach().contiguous().requires_grad_()
    (torch.sin(reference) * 1.5).sum().backward()
    repro = (f"x = {spec.expression()}" + ("  # then .contiguous(memory_format=torch.channels_last)"
                                           if channels_last and leaf.dim() == 4 else "")
             + "\n(torch.sin(x) * 1.5).sum().backward()\nprint(x.stride(), x.grad.stride())")
    if _dense_non_overlapping(leaf):
        expect(_significant(leaf.grad.stride(), leaf.shape) == _significant(leaf.stride(), leaf.shape),
               what="strides of the .grad of a dense, non-overlapping leaf", expected=leaf.stride(), observed=leaf.grad.stride(), repro=repro)
    else:
        expect(leaf.grad.is_contiguous(), what="the .grad of a leaf that is not dense and non-overlapping",
               expected="row-major contiguous", observed=leaf.grad.stride(), repro=repro)
    expect_close(leaf.grad, reference.grad, tolerance=ELEMENTWISE, what="the .grad against that of a contiguous copy", repro=repro)
    record(f"{spec.layout} leaf {tuple(leaf.shape)}: leaf and .grad strides",
           [list(leaf.stride()), list(leaf.grad.stride())])


@rule("grad-layout.existing-grad-keeps-its-strides", section=Section.PRACTICAL, docs="grad-layout-strides",
      given=dict(spec=tensors(min_ndim=2, zero_size=False, layouts=("contiguous", "transposed"))),
      examples=(dict(spec=tensor(tuple(v / 4 for v in range(6)), (3, 2), layout="transposed")),),
      references=("docs: torch.autograd (Default gradient layouts)",
                  "test_autograd.py::TestAutograd::test_accumulate_grad_tensor_reference"))
def existing_grad_keeps_its_strides(spec):
    """When .grad already exists, backward adds into it in place, keeping that tensor and its strides even where they differ from the leaf's."""
    leaf = spec.make()
    other = torch.ones(leaf.shape[:-2] + leaf.shape[-2:][::-1], dtype=leaf.dtype).transpose(-2, -1)
    if leaf.is_contiguous():
        existing = other  # a transposed .grad for a row-major leaf
    else:
        existing = torch.ones(leaf.shape, dtype=leaf.dtype)  # a row-major .grad for a transposed leaf
    leaf.grad = existing
    strides = existing.stride()
    (leaf * 2.0).sum().backward()
    repro = f"x = {spec.expression()}\nx.grad = <ones with other strides>\n(x * 2.0).sum().backward()"
    expect(leaf.grad is existing, what="the .grad after backward", expected="the tensor assigned before", observed="a new tensor", repro=repro)
    expect(leaf.grad.stride() == strides, what="strides of the existing .grad", expected=strides, observed=leaf.grad.stride(), repro=repro)
    expect(bool((leaf.grad == 3.0).all()), what="the accumulated values", expected="1 + 2 everywhere", observed=leaf.grad, repro=repro)
    record("leaf and .grad strides", [list(leaf.stride()), list(leaf.grad.stride())])


MISMATCHES = ("int", "shape", "dtype", "device", "itself")


@rule("grad-layout.assigning-a-mismatched-grad-raises", section=Section.PRACTICAL, docs="grad-layout-assignment",
      given=dict(spec=tensors(min_ndim=1, zero_size=False, layouts=("contiguous",)),
                 mismatch=st.sampled_from(MISMATCHES)),
      examples=tuple(dict(spec=tensor((1.0, 2.0, 3.0), (3,), dtype=torch.float32), mismatch=m) for m in MISMATCHES),
      contracts=(WRONG_TYPE, WRONG_SIZE, WRONG_DTYPE, WRONG_DEVICE, OWN_GRAD),
      history=(Change("2.10", "the dtype message names grad_dtype (it said 'with dtype ... to a tensor with dtype')"),),
      references=("test_autograd.py::TestAutograd::test_grad_assignment",))
def assigning_a_mismatched_grad_raises(spec, mismatch):
    """Assigning to .grad something that is not a tensor raises TypeError, and a tensor of another shape, dtype or device, or the tensor itself, raises RuntimeError, leaving .grad unchanged."""
    leaf = spec.make()
    other_dtype = torch.float64 if leaf.dtype == torch.float32 else torch.float32
    values = {
        "int": (WRONG_TYPE, lambda: 0),
        "shape": (WRONG_SIZE, lambda: torch.zeros(leaf.numel() + 1, dtype=leaf.dtype)),
        "dtype": (WRONG_DTYPE, lambda: torch.zeros_like(leaf, dtype=other_dtype)),
        "device": (WRONG_DEVICE, lambda: torch.zeros_like(leaf, device="meta")),
        "itself": (OWN_GRAD, lambda: leaf),
    }
    contract, value = values[mismatch]

    def assign():
        leaf.grad = value()

    message = contract.check(assign, repro=f"x = {spec.expression()}\nx.grad = ...  # {mismatch} mismatch")
    expect(leaf.grad is None, what="the .grad after a refused assignment", expected=None, observed=leaf.grad)
    record(f"{mismatch} message", message)


@rule("grad-layout.grad-dtype-casts-incoming-gradients", section=Section.PRACTICAL, docs="grad-layout-grad-dtype",
      since="2.10", requires=(GRAD_DTYPE,),
      given=dict(spec=tensors(zero_size=False, layouts=("contiguous",)), grad_dtype=st.sampled_from(DTYPES)),
      examples=(dict(spec=tensor((0.5, -1.0), (2,)), grad_dtype=torch.float32),),
      references=("test_autograd.py::TestAutograd::test_grad_dtype",))
def grad_dtype_casts_incoming_gradients(spec, grad_dtype):
    """A leaf's grad_dtype defaults to its dtype, and once set to another floating dtype the engine casts the gradient to it, so .grad has grad_dtype and the cast value."""
    leaf = spec.make()
    expect(leaf.grad_dtype == leaf.dtype, what="the default grad_dtype", expected=leaf.dtype, observed=leaf.grad_dtype)
    leaf.grad_dtype = grad_dtype
    (torch.sin(leaf) * 1.5).sum().backward()
    expected = (1.5 * torch.cos(leaf.detach())).to(grad_dtype)
    repro = f"x = {spec.expression()}\nx.grad_dtype = {grad_dtype}\n(torch.sin(x) * 1.5).sum().backward()"
    expect(leaf.grad.dtype == grad_dtype, what="the dtype of .grad", expected=grad_dtype, observed=leaf.grad.dtype, repro=repro)
    expect_close(leaf.grad, expected, tolerance=CAST, what="the .grad against the cast gradient", repro=repro)
    record(".grad dtype", str(leaf.grad.dtype))


@rule("grad-layout.grad-dtype-is-for-leaves", section=Section.PRACTICAL, docs="grad-layout-grad-dtype",
      since="2.10", requires=(GRAD_DTYPE,),
      given=dict(spec=tensors(zero_size=False), access=st.sampled_from(("set", "read"))), contracts=(LEAVES_ONLY,),
      examples=(dict(spec=tensor((1.0, 2.0), (2,)), access="set"), dict(spec=tensor((1.0, 2.0), (2,)), access="read")),
      references=("test_autograd.py::TestAutograd::test_grad_dtype",))
def grad_dtype_is_for_leaves(spec, access):
    """grad_dtype belongs to leaves: reading or setting it on a non-leaf raises a RuntimeError."""

    def record_then_access():
        non_leaf = spec.make() * 2
        if access == "set":
            non_leaf.grad_dtype = torch.float64
        else:
            return non_leaf.grad_dtype

    with warnings.catch_warnings(record=True) as seen:
        # 2.13 also warns that a non-leaf's .grad is being accessed: recorded, not asserted
        warnings.simplefilter("always")
        message = LEAVES_ONLY.check(record_then_access, repro=f"y = {spec.expression()} * 2\ny.grad_dtype  # {access}")
    record(f"{access} message", message)
    record(f"{access} warnings", sorted({type(w.message).__name__ for w in seen}))


@rule("grad-layout.grad-dtype-none-accepts-any-dtype", section=Section.PRACTICAL, docs="grad-layout-grad-dtype",
      since="2.10", requires=(GRAD_DTYPE,),
      given=dict(spec=tensors(zero_size=False, layouts=("contiguous",)), grad_dtype=st.sampled_from(DTYPES)),
      examples=(dict(spec=tensor((0.5, -1.0), (2,)), grad_dtype=torch.float32),),
      references=("test_autograd.py::TestAutograd::test_grad_dtype",))
def grad_dtype_none_accepts_any_dtype(spec, grad_dtype):
    """With grad_dtype = None a .grad of any floating dtype may be assigned, and backward accumulates into it in that dtype."""
    leaf = spec.make()
    leaf.grad_dtype = None
    existing = torch.ones(leaf.shape, dtype=grad_dtype)
    leaf.grad = existing
    (torch.sin(leaf) * 1.5).sum().backward()
    expected = (1.0 + 1.5 * torch.cos(leaf.detach()).double()).to(grad_dtype)
    repro = (f"x = {spec.expression()}\nx.grad_dtype = None\nx.grad = torch.ones(x.shape, dtype={grad_dtype})\n"
             "(torch.sin(x) * 1.5).sum().backward()")
    expect(leaf.grad is existing and leaf.grad.dtype == grad_dtype, what="the .grad after backward",
           expected=f"the assigned {grad_dtype} tensor", observed=f"{leaf.grad.dtype}, same object: {leaf.grad is existing}", repro=repro)
    expect_close(leaf.grad, expected, tolerance=CAST, what="the accumulated .grad", repro=repro)
    record(".grad dtype", str(leaf.grad.dtype))


@rule("grad-layout.grad-dtype-is-locked-while-grad-exists", section=Section.PRACTICAL, docs="grad-layout-grad-dtype",
      since="2.10", requires=(GRAD_DTYPE,),
      given=dict(spec=tensors(zero_size=False, layouts=("contiguous",))), contracts=(LOCKED,),
      examples=(dict(spec=tensor((0.5, -1.0), (2,))),),
      references=("test_autograd.py::TestAutograd::test_grad_dtype",))
def grad_dtype_is_locked_while_grad_exists(spec):
    """Changing grad_dtype to a dtype other than that of an existing .grad raises a RuntimeError, and works once .grad is None."""
    leaf = spec.make()
    other = torch.float64 if leaf.dtype == torch.float32 else torch.float32

    def change():
        leaf.sum().backward()
        leaf.grad_dtype = other

    message = LOCKED.check(change, repro=f"x = {spec.expression()}\nx.sum().backward()\nx.grad_dtype = {other}")
    record("message", message)
    leaf.grad = None
    leaf.grad_dtype = other
    expect(leaf.grad_dtype == other, what="grad_dtype after clearing .grad", expected=other, observed=leaf.grad_dtype)


def _complex_specs():
    return tensors(dtypes=(torch.float64,), min_ndim=1, max_ndim=3, zero_size=False, layouts=("contiguous",),
                   requires_grad=False)


@st.composite
def complex_cases(draw):
    """A complex128 tensor (its real and imaginary parts drawn) and real weights for a loss of its real view."""
    real = draw(_complex_specs(), label="real part")
    imag = draw(tensors(shape=real.shape, dtypes=(torch.float64,), layouts=("contiguous",), requires_grad=False),
                label="imaginary part")
    weights = draw(tensors(shape=real.shape + (2,), dtypes=(torch.float64,), layouts=("contiguous",),
                           requires_grad=False), label="weights")
    return torch.complex(real.make(), imag.make()), weights.make()


#: z = [1 + 2i, -0.5 + 0.25i] with weights [[1, 2], [-1, 0.5]] for its (real, imaginary) pairs.
COMPLEX = (torch.tensor([1.0 + 2.0j, -0.5 + 0.25j], dtype=torch.complex128),
           torch.tensor([[1.0, 2.0], [-1.0, 0.5]], dtype=torch.float64))


def _pair_repro(z: torch.Tensor, w: torch.Tensor, line: str) -> str:
    return (f"z = torch.tensor({z.tolist()}, dtype=torch.complex128, requires_grad=True)\n"
            f"w = torch.tensor({w.tolist()}, dtype=torch.float64)\n{line}")


@rule("grad-layout.view-as-real-gradient-packs-the-pair", section=Section.BEYOND, docs="grad-layout-complex-views",
      given=dict(case=complex_cases()), examples=(dict(case=COMPLEX),),
      references=("autograd/test_complex.py::TestAutogradComplex::test_view_func_for_complex_views",
                  "docs: Autograd mechanics > Autograd for Complex Numbers"))
def view_as_real_gradient_packs_the_pair(case):
    """For a real loss of view_as_real(z), z.grad is dL/d(real part) + i dL/d(imaginary part), the finite differences of the loss in the (real, imaginary) pairs."""
    value, weights = case
    z = value.clone().requires_grad_()

    def loss(pairs):
        return torch.sin(pairs) * weights

    loss(torch.view_as_real(z)).sum().backward()
    (oracle,) = finite_difference_gradients(loss, [torch.view_as_real(value)], [0])
    repro = _pair_repro(value, weights, "(torch.sin(torch.view_as_real(z)) * w).sum().backward()")
    expect_close(torch.view_as_real(z.grad.resolve_conj()), oracle, tolerance=FD_TOLERANCE,
                 what="z.grad as (real, imaginary) pairs against finite differences", repro=repro)
    pairs = torch.view_as_real(z.grad.resolve_conj()).reshape(-1, 2)
    record("z.grad as pairs", [[round(v, 6) for v in pair] for pair in pairs.tolist()])


@rule("grad-layout.view-as-complex-gradient-is-real-pairs", section=Section.BEYOND, docs="grad-layout-complex-views",
      given=dict(case=complex_cases()), examples=(dict(case=COMPLEX),),
      references=("autograd/test_complex.py::TestAutogradComplex::test_view_func_for_complex_views",
                  "docs: Autograd mechanics > Autograd for Complex Numbers"))
def view_as_complex_gradient_is_real_pairs(case):
    """For a real tensor x of (real, imaginary) pairs and a real loss of view_as_complex(x), x.grad is the real gradient of the loss in x, by finite differences."""
    value, weights = case
    pairs = torch.view_as_real(value).clone()
    x = pairs.clone().requires_grad_()
    scale = torch.view_as_complex(weights.contiguous())

    def loss(t):
        c = torch.view_as_complex(t)
        return (torch.sin(c) * scale).real + c.imag ** 2

    loss(x).sum().backward()
    (oracle,) = finite_difference_gradients(loss, [pairs], [0])
    repro = (f"x = torch.tensor({pairs.tolist()}, dtype=torch.float64, requires_grad=True)\n"
             "c = torch.view_as_complex(x)\n((torch.sin(c) * scale).real + c.imag ** 2).sum().backward()")
    expect_close(x.grad, oracle, tolerance=FD_TOLERANCE, what="x.grad against finite differences", repro=repro)
    record("x.grad", [[round(v, 6) for v in pair] for pair in x.grad.reshape(-1, 2).tolist()])


@rule("grad-layout.cross-dtype-in-place-transpose-is-transposed", section=Section.BEYOND,
      docs="grad-layout-complex-views",
      given=dict(n=st.integers(2, 4), real=value_tuples(16), imag=value_tuples(16)),
      examples=(dict(n=2, real=(0.5, 1.0, -1.0, 2.0) + (0.0,) * 12, imag=(0.25, 0.0, 1.5, -0.5) + (0.0,) * 12),),
      references=("test_autograd.py::TestAutograd::test_autograd_inplace_views_cross_dtype",))
def cross_dtype_in_place_transpose_is_transposed(n, real, imag):
    """A known bug that PyTorch's own tests pin: transposing a view_as_real view of a complex square matrix in place (transpose_) and then writing to it gives the base a gradient that is the transpose of the gradient of the same computation done out of place."""
    size = n * n
    real = torch.tensor(real[:size], dtype=torch.float64)
    imag = torch.tensor(imag[:size], dtype=torch.float64)
    upstream = torch.arange(size * 2, dtype=torch.float64).reshape(n, n, 2)
    source = torch.complex(real, imag).reshape(n, n)
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
    repro = (f"a = torch.complex(torch.tensor({real.tolist()}), torch.tensor({imag.tolist()}))"
             f".reshape({n}, {n}).double().requires_grad_()\n"
             "b = torch.view_as_real(a.clone()); b.transpose_(0, 1); b += 1\n"
             f"b.backward(torch.arange({size * 2}, dtype=torch.float64).reshape({n}, {n}, 2))")
    expect(torch.equal(in_place, out_of_place.T), what="the in-place gradient against the out-of-place one",
           expected="its transpose (the pinned bug)", observed=in_place, repro=repro)
    expect(not torch.equal(in_place, out_of_place), what="the in-place gradient against the out-of-place one",
           expected="different (the bug is still there)", observed="equal: the bug was fixed", repro=repro)
    record("bug present", not torch.equal(in_place, out_of_place))
    record("in-place gradient as pairs", torch.view_as_real(in_place).tolist())
