"""Sparse gradients: sparse embeddings, ``sparse_grad=True``, sparse leaves, and sparse and dense ``.grad`` mixed."""

from __future__ import annotations

import inspect
import textwrap

import torch
import torch.nn.functional as F
from hypothesis import strategies as st

from specs.engine.contracts import ErrorContract, Phase
from specs.engine.expect import Tolerance, expect, expect_close
from specs.engine.registry import Family, Feature, record, rule
from specs.engine.script import Script, literal
from specs.engine.sections import Section

FAMILY = Family(
    name="sparse",
    title="Sparse gradients",
    summary="Gradients stored as sparse COO tensors: sparse embeddings, gather with sparse_grad=True, "
    "sparse leaves, and what layout .grad has when sparse and dense gradients accumulate.",
    gallery="plot_96_sparse.py",
)


#: A sparse gradient and its dense counterpart hold the same sums, possibly added in another order.
SAME_SUMS = Tolerance(1e-12, 1e-12, "float64: the same terms, summed in another order")

SPARSE_OUTPUT = ErrorContract(
    ValueError,
    r"Sparse output is not supported at gradcheck yet",
    Phase.BACKWARD,
)
MASKED_GRADCHECK = Feature(
    "gradcheck(masked=...)", lambda: "masked" in inspect.signature(torch.autograd.gradcheck).parameters
)
NOT_DIFFERENTIABLE = ErrorContract(
    RuntimeError,
    r"element 0 of tensors does not require grad and does not have a grad_fn",
    Phase.BACKWARD,
)


#: The raw accessor of a sparse leaf ``x`` (recorded), and the backward that refuses it.
PRIVATE_VALUES = "out = x._values().sum()"
BACKWARD = "out.backward()"
#: gradcheck of a function of the sparse leaf ``s`` whose output is sparse too.
GRADCHECK_SPARSE_OUTPUT = "torch.autograd.gradcheck(lambda s: s * 2.0, (s,), masked=True)  # a sparse output"


def _values(draw, count: int, label: str) -> torch.Tensor:
    values = draw(st.lists(st.integers(-128, 127).map(lambda k: k / 64), min_size=count, max_size=count), label=label)
    return torch.tensor(values, dtype=torch.float64)


#: The imports of every script below (the functional API is used as ``F``, as on the page).
IMPORTS = "import torch\nimport torch.nn.functional as F"


class Lookup:
    """An embedding table, a batch of indices into it (repeats likely) and the gradient flowing back."""

    def __init__(
        self,
        rows: int,
        width: int,
        weight: torch.Tensor,
        indices: torch.Tensor,
        upstream: torch.Tensor,
        padding_idx: int | None = None,
    ):
        self.rows, self.width, self.padding_idx = rows, width, padding_idx
        self.weight, self.indices, self.upstream = weight, indices, upstream

    def one_hot_gradient(self) -> torch.Tensor:
        """The oracle: row r of the gradient is the sum of the upstream rows of the lookups of r."""
        one_hot = F.one_hot(self.indices.reshape(-1), self.rows).to(torch.float64)
        grad = one_hot.T @ self.upstream.reshape(-1, self.width)
        if self.padding_idx is not None:
            grad[self.padding_idx] = 0
        return grad

    def code(self) -> str:
        """The lookup as code: the table ``weight`` (no grad), ``indices``, ``upstream`` and ``padding_idx``."""
        return (
            f"weight = {literal(self.weight)}\nindices = {literal(self.indices)}\n"
            f"upstream = {literal(self.upstream)}\npadding_idx = {self.padding_idx}"
        )

    def __repr__(self) -> str:
        return self.code()


#: The gradient an embedding gives its table, as a function ``grad_of(sparse)`` of the table's
#: ``weight``, ``indices``, ``upstream`` and ``padding_idx`` (defined before it by :meth:`Lookup.code`).
EMBEDDINGS = {
    "nn.Embedding": """
        def grad_of(sparse):
            module = torch.nn.Embedding($rows, $width, sparse=sparse, padding_idx=padding_idx, dtype=torch.float64)
            with torch.no_grad():
                module.weight.copy_(weight)
            (module(indices) * upstream).sum().backward()
            return module.weight.grad
        """,
    "F.embedding": """
        def grad_of(sparse):
            leaf = weight.clone().requires_grad_()
            (F.embedding(indices, leaf, padding_idx=padding_idx, sparse=sparse) * upstream).sum().backward()
            return leaf.grad
        """,
}


def _embedding_script(kind: str, lookup: Lookup, then: str) -> Script:
    """The lookup, ``grad_of`` for ``kind``, then the lines ``then`` (which call it and print)."""
    template = f"$imports\n$lookup\n{textwrap.dedent(EMBEDDINGS[kind]).strip()}\n{then}"
    return Script(template, imports=IMPORTS, lookup=lookup.code(), rows=lookup.rows, width=lookup.width)


@st.composite
def lookups(draw, padding: bool = False):
    rows = draw(st.integers(1, 5), label="rows")
    width = draw(st.integers(1, 3), label="width")
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=2), label="index shape"))
    count = int(torch.tensor(shape).prod())
    indices = torch.tensor(draw(st.lists(st.integers(0, rows - 1), min_size=count, max_size=count), label="indices"))
    weight = _values(draw, rows * width, "weight").reshape(rows, width)
    upstream = _values(draw, count * width, "upstream").reshape(shape + (width,))
    padding_idx = draw(st.integers(0, rows - 1), label="padding_idx") if padding else None
    return Lookup(rows, width, weight, indices.reshape(shape), upstream, padding_idx)


#: Two lookups of row 1 and one of row 3 in a 4 x 2 table: the repeated row's gradient is a sum.
REPEATED = Lookup(
    4,
    2,
    torch.tensor([[0.5, -1.0], [1.0, 2.0], [0.0, 0.25], [-0.5, 1.5]], dtype=torch.float64),
    torch.tensor([1, 3, 1]),
    torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=torch.float64),
)
#: The same lookups with row 1 as the padding row.
PADDED = Lookup(4, 2, REPEATED.weight, REPEATED.indices, REPEATED.upstream, padding_idx=1)
#: S = [[1, 0, 2], [0, -1, 0]] (three stored entries), D of ones-and-twos, an upstream of ones.
PRODUCT = (
    torch.tensor([[1.0, 0.0, 2.0], [0.0, -1.0, 0.0]], dtype=torch.float64),
    torch.tensor([[True, False, True], [False, True, False]]),
    torch.tensor([[1.0, 2.0], [2.0, 1.0], [1.0, 1.0]], dtype=torch.float64),
    torch.ones(2, 2, dtype=torch.float64),
)
#: A source row gathered twice from column 2 and once from column 0.
GATHER = (
    torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64),
    torch.tensor([[2, 2, 0]]),
    torch.tensor([[1.0, 0.5, 2.0]], dtype=torch.float64),
)


@rule(
    "sparse.embedding-gradient-is-sparse",
    section=Section.BEYOND,
    docs="sparse-embedding",
    given=dict(lookup=lookups(), kind=st.sampled_from(("nn.Embedding", "F.embedding"))),
    examples=(dict(lookup=REPEATED, kind="nn.Embedding"),),
    references=("test_autograd.py::TestAutograd::test_sparse_backward", "docs: torch.nn.Embedding (sparse)"),
)
def embedding_gradient_is_sparse(lookup, kind):
    """An embedding with sparse=True leaves a sparse COO .grad on its weight whose dense value is the dense embedding's gradient: each row gets the sum of the gradients of all lookups of that row."""
    script = _embedding_script(
        kind,
        lookup,
        "sparse = grad_of(True)\ndense = grad_of(False)\n"
        "print(sparse.layout, sparse._nnz(), sparse.to_dense())\nprint(dense.layout, dense)",
    )
    seen = script.run()
    sparse, dense, repro = seen.sparse, seen.dense, script
    expect(
        sparse.layout == torch.sparse_coo,
        what="layout of the sparse embedding's .grad",
        expected=torch.sparse_coo,
        observed=sparse.layout,
        repro=repro,
    )
    expect(
        dense.layout == torch.strided,
        what="layout of the dense embedding's .grad",
        expected=torch.strided,
        observed=dense.layout,
        repro=repro,
    )
    expect_close(
        sparse.to_dense(),
        lookup.one_hot_gradient(),
        tolerance=SAME_SUMS,
        what="the sparse .grad against one-hot sums",
        repro=repro,
    )
    expect_close(
        dense, lookup.one_hot_gradient(), tolerance=SAME_SUMS, what="the dense .grad against one-hot sums", repro=repro
    )
    record("sparse grad", [[round(v, 6) for v in row] for row in sparse.to_dense().tolist()])
    record("nnz (one entry per lookup, uncoalesced)", sparse._nnz())


@rule(
    "sparse.padding-row-gets-no-gradient",
    section=Section.BEYOND,
    docs="sparse-embedding",
    given=dict(lookup=lookups(padding=True), sparse=st.booleans()),
    examples=(dict(lookup=PADDED, sparse=True),),
    references=("docs: torch.nn.Embedding (padding_idx)",),
)
def padding_row_gets_no_gradient(lookup, sparse):
    """The padding_idx row of an embedding gets a zero gradient, sparse or dense, however often it is looked up."""
    script = _embedding_script(
        "F.embedding", lookup, f"grad = grad_of({sparse})\ndense = grad{'.to_dense()' if sparse else ''}\nprint(dense)"
    )
    dense = script.run().dense
    repro = script
    expect(
        bool((dense[lookup.padding_idx] == 0).all()),
        what="the padding row of .grad",
        expected="zeros",
        observed=dense[lookup.padding_idx],
        repro=repro,
    )
    expect_close(
        dense,
        lookup.one_hot_gradient(),
        tolerance=SAME_SUMS,
        what=".grad against one-hot sums without the padding row",
        repro=repro,
    )
    record(f"grad (sparse={sparse})", dense.tolist())


@st.composite
def gathers(draw):
    rows = draw(st.integers(1, 3), label="rows")
    cols = draw(st.integers(1, 4), label="cols")
    picks = draw(st.integers(1, 4), label="picks per row")
    source = _values(draw, rows * cols, "source").reshape(rows, cols)
    index = torch.tensor(
        draw(st.lists(st.integers(0, cols - 1), min_size=rows * picks, max_size=rows * picks), label="index")
    ).reshape(rows, picks)
    upstream = _values(draw, rows * picks, "upstream").reshape(rows, picks)
    return source, index, upstream


@rule(
    "sparse.gather-sparse-grad-equals-dense",
    section=Section.BEYOND,
    docs="sparse-gather",
    given=dict(case=gathers()),
    examples=(dict(case=GATHER),),
    references=(
        "test_autograd.py::TestAutograd::test_sparse_gather_dim0",
        "test_autograd.py::TestAutograd::test_sparse_gather_both_scalar",
    ),
)
def gather_sparse_grad_equals_dense(case):
    """torch.gather(..., sparse_grad=True) gives the source a sparse COO gradient equal to the dense one, in which repeated indices add up."""
    source, index, upstream = case
    script = Script(
        """
        source = $source
        index = $index
        upstream = $upstream
        grads = {}
        for sparse_grad in (True, False):
            x = source.clone().requires_grad_()
            (torch.gather(x, 1, index, sparse_grad=sparse_grad) * upstream).sum().backward()
            grads[sparse_grad] = x.grad
        print(grads[True].layout, grads[True].to_dense())
        print(grads[False])
        """,
        source=literal(source),
        index=literal(index),
        upstream=literal(upstream),
    )
    grads = script.run().grads
    oracle = torch.zeros_like(source).scatter_add_(1, index, upstream)
    repro = script
    expect(
        grads[True].layout == torch.sparse_coo,
        what="layout with sparse_grad=True",
        expected=torch.sparse_coo,
        observed=grads[True].layout,
        repro=repro,
    )
    expect_close(
        grads[True].to_dense(),
        oracle,
        tolerance=SAME_SUMS,
        what="sparse gather gradient against scatter_add",
        repro=repro,
    )
    expect_close(
        grads[False], oracle, tolerance=SAME_SUMS, what="dense gather gradient against scatter_add", repro=repro
    )
    record("sparse grad", grads[True].to_dense().tolist())


ORDERS = ("sparse, sparse", "sparse, dense", "dense, sparse", "sparse, dense, sparse")


@rule(
    "sparse.mixed-accumulation-becomes-dense",
    section=Section.BEYOND,
    docs="sparse-accumulation",
    given=dict(lookup=lookups(), order=st.sampled_from(ORDERS)),
    examples=(dict(lookup=REPEATED, order="sparse, dense"), dict(lookup=REPEATED, order="sparse, sparse")),
    references=(
        "test_autograd.py::TestAutograd::test_sparse_backward",
        "test_autograd.py::TestAutograd::test_accumulate_grad_tensor_reference",
    ),
)
def mixed_accumulation_becomes_dense(lookup, order):
    """Sparse gradients accumulate into a sparse .grad, and once a dense gradient joins, in any order, .grad is dense; either way its value is the sum of all the gradients."""
    script = Script(
        """
        $imports
        $lookup
        leaf = weight.clone().requires_grad_()
        for sparse in $steps:
            (F.embedding(indices, leaf, sparse=sparse) * upstream).sum().backward()
        print(leaf.grad.layout, leaf.grad.to_dense())
        """,
        imports=IMPORTS,
        lookup=lookup.code(),
        steps=tuple(step == "sparse" for step in order.split(", ")),
    )
    weight = script.run().leaf
    expected = lookup.one_hot_gradient() * len(order.split(", "))
    layout = torch.sparse_coo if "dense" not in order else torch.strided
    repro = script
    expect(
        weight.grad.layout == layout,
        what=f"layout of .grad after {order}",
        expected=layout,
        observed=weight.grad.layout,
        repro=repro,
    )
    expect_close(
        weight.grad.to_dense(), expected, tolerance=SAME_SUMS, what=f".grad after {order} against the sum", repro=repro
    )
    record(f"layout after {order}", str(weight.grad.layout))


@rule(
    "sparse.dense-grad-is-updated-in-place",
    section=Section.BEYOND,
    docs="sparse-accumulation",
    given=dict(lookup=lookups()),
    examples=(dict(lookup=REPEATED),),
    references=("test_autograd.py::TestAutograd::test_accumulate_grad_tensor_reference",),
)
def dense_grad_is_updated_in_place(lookup):
    """A sparse gradient arriving at a dense .grad is added into that same tensor, while a dense gradient arriving at a sparse .grad replaces it with a new dense tensor."""
    script = Script(
        """
        $imports
        $lookup
        def grads(first_sparse):
            leaf = weight.clone().requires_grad_()
            (F.embedding(indices, leaf, sparse=first_sparse) * upstream).sum().backward()
            first = leaf.grad
            (F.embedding(indices, leaf, sparse=not first_sparse) * upstream).sum().backward()
            return first, leaf.grad
        dense_first, dense_after = grads(False)
        sparse_first, sparse_after = grads(True)
        print("dense .grad kept:", dense_after is dense_first)
        print("sparse .grad kept:", sparse_after is sparse_first, sparse_after.layout)
        """,
        imports=IMPORTS,
        lookup=lookup.code(),
    )
    seen = script.run()
    repro = script
    expect(
        seen.dense_after is seen.dense_first,
        what="the dense .grad after a sparse gradient arrives",
        expected="the same object",
        observed="a new tensor",
        repro=repro,
    )
    sparse, after = seen.sparse_first, seen.sparse_after
    expect(
        after is not sparse and after.layout == torch.strided,
        what="the sparse .grad after a dense gradient arrives",
        expected="a new dense tensor",
        observed=f"same object: {after is sparse}, layout {after.layout}",
        repro=repro,
    )


@st.composite
def sparse_products(draw):
    rows = draw(st.integers(1, 3), label="rows")
    inner = draw(st.integers(1, 3), label="inner")
    cols = draw(st.integers(1, 3), label="cols")
    matrix = _values(draw, rows * inner, "S values").reshape(rows, inner)
    keep = torch.tensor(
        draw(st.lists(st.booleans(), min_size=rows * inner, max_size=rows * inner), label="S pattern")
    ).reshape(rows, inner)
    dense = _values(draw, inner * cols, "D").reshape(inner, cols)
    upstream = _values(draw, rows * cols, "upstream").reshape(rows, cols)
    matrix = matrix * keep
    # to_sparse() stores exactly the non-zero entries: that is the leaf's pattern.
    return matrix, matrix != 0, dense, upstream


@rule(
    "sparse.sparse-mm-masks-the-gradient",
    section=Section.BEYOND,
    docs="sparse-leaves",
    given=dict(case=sparse_products()),
    examples=(dict(case=PRODUCT),),
    references=("test_autograd.py::TestAutograd::test_sparse_mm_backward", "docs: torch.sparse.mm"),
)
def sparse_mm_masks_the_gradient(case):
    """For a sparse COO leaf S, torch.sparse.mm(S, D) gives S a sparse gradient: the dense gradient (upstream @ Dᵀ) restricted to S's stored entries, while D gets the dense gradient Sᵀ @ upstream."""
    values, keep, dense, upstream = case
    script = Script(
        """
        s = $values.to_sparse().requires_grad_()
        d = $dense.requires_grad_()
        (torch.sparse.mm(s, d) * $upstream).sum().backward()
        print(s.grad.layout, s.grad.to_dense())
        print(d.grad)
        """,
        values=literal(values),
        dense=literal(dense),
        upstream=literal(upstream),
    )
    seen = script.run()
    s, d, repro = seen.s, seen.d, script
    expect(
        s.grad.layout == torch.sparse_coo,
        what="layout of the sparse leaf's .grad",
        expected=torch.sparse_coo,
        observed=s.grad.layout,
        repro=repro,
    )
    expect_close(
        s.grad.to_dense(),
        (upstream @ dense.T) * keep,
        tolerance=SAME_SUMS,
        what="the sparse leaf's gradient against the masked dense gradient",
        repro=repro,
    )
    expect_close(
        d.grad,
        values.T @ upstream,
        tolerance=SAME_SUMS,
        what="the dense factor's gradient against Sᵀ @ upstream",
        repro=repro,
    )
    record("S.grad", s.grad.to_dense().tolist())


@rule(
    "sparse.conversions-keep-the-leaf-layout",
    section=Section.BEYOND,
    docs="sparse-leaves",
    since="2.1",
    given=dict(case=sparse_products(), leaf=st.sampled_from(("dense", "sparse"))),
    examples=(dict(case=PRODUCT, leaf="dense"), dict(case=PRODUCT, leaf="sparse")),
    references=("test_autograd.py::TestAutograd::test_to_sparse_backward",),
)
def conversions_keep_the_leaf_layout(case, leaf):
    # since 2.1: to_dense(masked_grad=True), the masking default, appeared then; older releases are unchecked
    """A gradient flowing back through to_sparse() or to_dense() takes the layout of the leaf it reaches (dense for a dense leaf, sparse for a sparse one) and is masked to the entries the sparse tensor stores."""
    values, keep, _dense, _upstream = case
    weights = torch.arange(1, values.numel() + 1, dtype=torch.float64).reshape(values.shape)
    conversions = {"dense": ("", ".to_sparse().to_dense()"), "sparse": (".to_sparse()", ".to_dense()")}
    make, through = conversions[leaf]
    script = Script(
        """
        weights = $weights
        x = $values$make.requires_grad_()
        (x$through * weights).sum().backward()
        print(x.grad.layout, x.grad.to_dense())
        """,
        weights=literal(weights),
        values=literal(values),
        make=make,
        through=through,
    )
    x = script.run().x
    expected = weights * keep
    layout = torch.strided if leaf == "dense" else torch.sparse_coo
    repro = script
    expect(
        x.grad.layout == layout,
        what=f"layout of a {leaf} leaf's .grad",
        expected=layout,
        observed=x.grad.layout,
        repro=repro,
    )
    expect_close(x.grad.to_dense(), expected, tolerance=SAME_SUMS, what=f"the {leaf} leaf's gradient", repro=repro)
    record(f"{leaf} leaf: grad layout", str(x.grad.layout))
    record(f"{leaf} leaf: grad", x.grad.to_dense().tolist())


@rule(
    "sparse.private-values-are-not-differentiable",
    section=Section.BEYOND,
    docs="sparse-leaves",
    given=dict(case=sparse_products()),
    contracts=(NOT_DIFFERENTIABLE,),
    examples=(dict(case=PRODUCT),),
    references=("test_autograd.py::TestAutograd::test_sparse_ctor_getter_backward",),
)
def private_values_are_not_differentiable(case):
    """Of a sparse leaf, values() is differentiable (its gradient is sparse, one at each stored entry) while the raw accessor _values() is not: backward through it raises a RuntimeError."""
    values, keep, _dense, _upstream = case
    leaf = Script("x = $values.to_sparse().requires_grad_()", values=literal(values))
    through_values = leaf.then("""
        (grad,) = torch.autograd.grad(x.values().sum(), x)
        print(grad.layout, grad.to_dense())
        """)
    grad, repro = through_values.run().grad, through_values
    expect(
        grad.layout == torch.sparse_coo,
        what="layout of the gradient through values()",
        expected=torch.sparse_coo,
        observed=grad.layout,
        repro=repro,
    )
    expect_close(
        grad.to_dense(), keep.to(torch.float64), tolerance=SAME_SUMS, what="the gradient through values()", repro=repro
    )
    message = NOT_DIFFERENTIABLE.check(
        lambda: leaf.then(PRIVATE_VALUES).run().out,
        backward=lambda out: Script(BACKWARD).run(out=out),
        repro=leaf.then(PRIVATE_VALUES).then(BACKWARD),
    )
    record("_values() error", message)


@rule(
    "sparse.gradcheck-takes-sparse-inputs-not-outputs",
    section=Section.BEYOND,
    docs="sparse-leaves",
    requires=(MASKED_GRADCHECK,),
    given=dict(case=sparse_products().filter(lambda case: bool(case[1].any()))),
    contracts=(SPARSE_OUTPUT,),
    examples=(dict(case=PRODUCT),),
    references=(
        "test_autograd.py::TestAutograd::test_gradcheck_test_outputs",
        "test_autograd.py::TestAutograd::test_gradcheck_input",
    ),
)
def gradcheck_takes_sparse_inputs_not_outputs(case):
    """gradcheck(..., masked=True) checks a function of a sparse input on its stored entries (torch.sparse.mm passes), and refuses a function whose output is sparse with a ValueError."""
    values, _keep, dense, _upstream = case
    leaf = Script("s = $values.to_sparse().requires_grad_()\nd = $dense", values=literal(values), dense=literal(dense))
    sparse_input = leaf.then("""
        verdict = torch.autograd.gradcheck(lambda s: torch.sparse.mm(s, d), (s,), masked=True)
        print(verdict)
        """)
    verdict = sparse_input.run().verdict
    expect(
        verdict is True,
        what="masked gradcheck of torch.sparse.mm with a sparse input",
        expected=True,
        observed=verdict,
        repro=sparse_input,
    )
    message = SPARSE_OUTPUT.check(
        leaf.run,
        backward=lambda seen: Script(GRADCHECK_SPARSE_OUTPUT).run(s=seen.s),
        repro=leaf.then(GRADCHECK_SPARSE_OUTPUT),
    )
    record("sparse output message", message)
