"""In-place operations: the version counter, saved tensors, leaves and views."""

from __future__ import annotations

import re
from dataclasses import replace
from string import Template

import torch
from hypothesis import strategies as st

from specs.engine.contracts import ErrorContract, Phase
from specs.engine.expect import EXACT, expect, expect_close
from specs.engine.oracles import DTYPE_TOLERANCE, FD_TOLERANCE, finite_difference_gradients
from specs.engine.registry import Change, Family, rule
from specs.engine.script import Script
from specs.engine.sections import Section
from specs.generators.strategies import OPS_BY_NAME, programs, tensors

FAMILY = Family(
    name="inplace",
    title="In-place operations and the version counter",
    summary="How autograd notices in-place writes, which ones it refuses, and which ones are safe.",
    gallery="plot_60_inplace.py",
)


#: A modified saved tensor.  The clause naming the producing op is absent for leaves; it names the
#: node (``ExpBackward0``) before 2.13 and the forward op (``Exp``) since; the hint after
#: "instead." changed too (``check_nan=False`` was added), so it is not matched.
SAVED_MODIFIED = ErrorContract(
    RuntimeError,
    r"one of the variables needed for gradient computation has been modified by an inplace "
    r"operation: \[[\w.]+ \[[\d, ]*\]\](, which is output \d+ of \w+,)? is at version (\d+); "
    r"expected version (\d+) instead",
    Phase.BACKWARD,
    wording="2.13 names the forward op ('output 0 of Exp'), older releases the node "
    "('output 0 of ExpBackward0'); the anomaly-mode hint gained 'check_nan=False'",
)
LEAF_IN_PLACE = ErrorContract(
    RuntimeError, r"a leaf Variable that requires grad is being used in an in-place operation", Phase.RECORD
)
VIEW_OF_LEAF_IN_PLACE = ErrorContract(
    RuntimeError,
    r"a view of a leaf Variable that requires grad is being used in an in-place operation",
    Phase.RECORD,
)
MULTI_OUTPUT_VIEW = ErrorContract(
    RuntimeError,
    r"Output \d+ of (Unbind|Split|SplitWithSizes)(Backward\d*)? is a view and is being modified inplace\. "
    r"This view is the output of a function that returns multiple views",
    Phase.RECORD,
    wording="2.13 names the forward op ('Unbind'), older releases the node ('UnbindBackward0')",
)
OUT_WITH_GRAD = ErrorContract(
    RuntimeError,
    r"functions with out=\.\.\. arguments don't support automatic differentiation, but one of the "
    r"arguments requires grad",
    Phase.RECORD,
)

#: In-place writes a tensor can take, as code on the tensor ``$t``; each bumps its ``_version`` by one.
WRITES = (
    "$t.add_(1.0)",
    "$t.mul_(0.5)",
    "$t.zero_()",
    "$t.clamp_(min=0.0)",
    "$t[...] = 1.0",
    "torch.mul($t, 2.0, out=$t)",
)
#: The writes a leaf that requires grad refuses as in-place ops (out= is refused by a rule of its own).
METHOD_WRITES = tuple(sorted(w for w in WRITES if "out=" not in w))
#: Out-of-place reads of ``$t``: none of them changes its ``_version``.
READS = ("$t + 1.0", "$t.clone()", "torch.sin($t)", "$t.sum()")
#: Tensors that share their storage (and so their version counter) with ``$t``.
ALIASES = (
    "$t.detach()",
    "$t[...]",
    "$t.unsqueeze(0)",
    "$t.as_strided($t.shape, $t.stride(), $t.storage_offset())",
)


def _on(code: str, name: str) -> str:
    """``code`` (one of the templates above) applied to the tensor called ``name``."""
    return Template(code).substitute(t=name)


#: Expanded tensors refuse in-place writes (several elements share one memory location).
WRITABLE = ("contiguous", "transposed", "sliced")


@rule(
    "inplace.version-counts-writes",
    section=Section.INPLACE,
    docs="inplace-version",
    given=dict(
        spec=tensors(requires_grad=False, layouts=WRITABLE),
        ops=st.lists(st.sampled_from(sorted(WRITES) + sorted(READS)), max_size=6),
    ),
    references=("test_autograd.py::TestAutograd::test_version_counter",),
)
def version_counts_writes(spec, ops):
    """Every in-place write to a tensor (an op ending in _, an indexed assignment, an out= result) increases its _version by one; out-of-place ops leave it unchanged."""
    lines = "".join(f"{_on(op, 't')}\nversions.append(t._version)\n" for op in ops)
    script = Script("t = $t\nversions = [t._version]\n$lines\nprint(versions)", t=spec.expression(), lines=lines)
    versions = script.run().versions
    for op, before, after in zip(ops, versions, versions[1:]):
        expected = before + (op in WRITES)
        expect(
            after == expected, what=f"t._version after {_on(op, 't')}", expected=expected, observed=after, repro=script
        )
    expect(
        versions[-1] - versions[0] == sum(op in WRITES for op in ops),
        what="total increase",
        expected="one per write",
        observed=versions[-1] - versions[0],
        repro=script,
    )


@rule(
    "inplace.aliases-share-the-version",
    section=Section.INPLACE,
    docs="inplace-version",
    given=dict(
        spec=tensors(requires_grad=False, layouts=WRITABLE),
        alias=st.sampled_from(sorted(ALIASES)),
        write=st.sampled_from(sorted(WRITES)),
        through_alias=st.booleans(),
    ),
    references=("test_autograd.py::TestAutograd::test_version_counter",),
)
def aliases_share_the_version(spec, alias, write, through_alias):
    """A view of a tensor and its detach() share one version counter with it: a write through any of them bumps the _version seen by all."""
    script = Script(
        """
        t = $t
        other = $alias
        before = (t._version, other._version)
        $write
        after = (t._version, other._version)
        print(before, after)
        """,
        t=spec.expression(),
        alias=_on(alias, "t"),
        write=_on(write, "other" if through_alias else "t"),
    )
    seen = script.run()
    start = seen.before[0]
    expect(
        seen.before[1] == start,
        what=f"{_on(alias, 't')} starts at the base's version",
        expected=start,
        observed=seen.before[1],
        repro=script,
    )
    expect(
        seen.after == (start + 1, start + 1),
        what=f"versions of t and {_on(alias, 't')} after a write through {'the alias' if through_alias else 't'}",
        expected=(start + 1, start + 1),
        observed=seen.after,
        repro=script,
    )


#: How the saved value is consumed: code on ``h``, and which tensor the node saves.
SAVERS = {
    "torch.exp(h)": (torch.exp, "result", r"Exp(Backward\d+)?"),
    "torch.cos(h)": (torch.cos, "input", None),
    "h * h": (lambda h: h * h, "input", None),
    "h ** 3": (lambda h: h**3, "input", None),
}


@rule(
    "inplace.modified-saved-tensor-raises",
    section=Section.INPLACE,
    docs="inplace-saved",
    given=dict(program=programs(max_ops=6), saver=st.sampled_from(sorted(SAVERS)), writes=st.integers(1, 3)),
    contracts=(SAVED_MODIFIED,),
    history=(
        Change(
            "2.13",
            "the message named the backward node ('output 0 of ExpBackward0') "
            "rather than the forward op ('output 0 of Exp')",
        ),
    ),
    references=(
        "test_autograd.py::TestAutograd::test_inplace",
        "docs: Autograd mechanics > In-place operations with autograd > In-place correctness checks",
    ),
)
def modified_saved_tensor_raises(program, saver, writes):
    """Writing in place to a tensor that a node saved for backward makes that backward raise a RuntimeError naming the tensor's current and saved versions."""
    consume, kind, producer = SAVERS[saver]
    state = {}

    def record():
        h = torch.sin(program(*program.inputs()))
        out = consume(h)
        target = out if kind == "result" else h
        state["saved"] = target._version
        for _ in range(writes):
            target.mul_(0.5)
        state["now"] = target._version
        return out.sum()

    written = "out" if kind == "result" else "h"
    repro = program.repro(
        "h = torch.sin(out)", f"out = {saver}", f"for _ in range({writes}): {written}.mul_(0.5)", "out.sum().backward()"
    )
    message = SAVED_MODIFIED.check(record, repro=repro)
    seen = re.search(SAVED_MODIFIED.pattern, message)
    expect(
        (int(seen.group(2)), int(seen.group(3))) == (state["now"], state["saved"]),
        what="the versions named in the message (current; saved)",
        expected=(state["now"], state["saved"]),
        observed=(int(seen.group(2)), int(seen.group(3))),
        repro=repro,
    )
    if producer:
        expect(
            re.search(rf"output 0 of {producer},", message) is not None,
            what="the message names the op that produced the saved output",
            expected=producer,
            observed=message,
            repro=repro,
        )


@rule(
    "inplace.leaf-requiring-grad-refuses",
    section=Section.INPLACE,
    docs="inplace-leaves",
    given=dict(spec=tensors(layouts=("contiguous",)), write=st.sampled_from(METHOD_WRITES)),
    contracts=(LEAF_IN_PLACE,),
)
def leaf_requiring_grad_refuses(spec, write):
    """An in-place write to a leaf that requires grad raises a RuntimeError while recording, and leaves the tensor unchanged."""
    setup = Script("t = $t\nbefore = t.detach().clone()", t=spec.expression())
    seen = setup.run()
    write_it = Script(_on(write, "t"))
    LEAF_IN_PLACE.check(lambda: write_it.run(t=seen.t), repro=setup.then(_on(write, "t")))
    expect(
        torch.equal(seen.t.detach(), seen.before),
        what="the leaf's values after the refused write",
        expected=seen.before,
        observed=seen.t.detach(),
        repro=setup.then("print(t)"),
    )


@rule(
    "inplace.leaf-write-allowed-without-grad",
    section=Section.INPLACE,
    docs="inplace-leaves",
    given=dict(spec=tensors(requires_grad=None, layouts=("contiguous",)), write=st.sampled_from(WRITES)),
)
def leaf_write_allowed_without_grad(spec, write):
    """Under torch.no_grad(), or on a leaf that does not require grad, an in-place write is allowed: it bumps _version, records nothing, and later gradients use the new values."""
    script = Script(
        """
        t = $t
        before = t._version
        with torch.no_grad():
            $write
        after = (t._version, t.is_leaf, t.grad_fn, t.requires_grad)
        print(after)
        """,
        t=spec.expression(),
        write=_on(write, "t"),
    )
    seen = script.run()
    expected = (seen.before + 1, True, None, spec.requires_grad)
    expect(
        seen.after == expected,
        what="version, is_leaf, grad_fn and requires_grad after the write",
        expected=expected,
        observed=seen.after,
        repro=script,
    )
    if spec.requires_grad:
        backward = script.then("torch.sin(t).sum().backward()\nprint(t.grad)")
        t = backward.run().t
        expect_close(
            t.grad,
            torch.cos(t.detach()),
            tolerance=EXACT,
            what="d sum(sin(t))/dt at the written values",
            repro=backward,
        )
    else:
        in_grad_mode = Script(
            "u = $u\n$write\nprint(u._version, u.grad_fn)", u=spec.expression(), write=_on(write, "u")
        )
        u = in_grad_mode.run().u
        expect(
            u._version == 1 and u.grad_fn is None,
            what="a write in grad mode to a leaf without requires_grad",
            expected="version 1, no grad_fn",
            observed=(u._version, u.grad_fn),
            repro=in_grad_mode,
        )


@st.composite
def _leaf_views(draw):
    spec = draw(tensors(min_ndim=1, zero_size=False, layouts=("contiguous",)), label="leaf")
    d = draw(st.integers(0, len(spec.shape) - 1), label="dim")
    i = draw(st.integers(0, spec.shape[d] - 1), label="index")
    how = draw(st.sampled_from(["select", "narrow", "setitem"]), label="view")
    return spec, d, i, how


@rule(
    "inplace.view-of-leaf-refuses",
    section=Section.INPLACE,
    docs="inplace-leaves",
    given=dict(case=_leaf_views()),
    contracts=(VIEW_OF_LEAF_IN_PLACE,),
    references=("test_autograd.py::TestAutograd::test_inplace_on_view_leaf_errors",),
)
def view_of_leaf_refuses(case):
    """An in-place write through a view of a leaf that requires grad, indexed assignment included, raises a RuntimeError while recording."""
    spec, d, i, how = case
    t = spec.make()
    index = (slice(None),) * d + (i,)
    actions = {
        "select": (lambda: t.select(d, i).mul_(2.0), f"t.select({d}, {i}).mul_(2.0)"),
        "narrow": (lambda: t.narrow(d, i, 1).add_(1.0), f"t.narrow({d}, {i}, 1).add_(1.0)"),
        "setitem": (lambda: t.__setitem__(index, 0.0), f"t[{index!r}] = 0.0"),
    }
    action, code = actions[how]
    VIEW_OF_LEAF_IN_PLACE.check(action, repro=f"t = {spec.expression()}\n{code}")


@st.composite
def _narrowed(draw):
    spec = draw(tensors(min_ndim=1, zero_size=False, layouts=("contiguous",)), label="x")
    d = draw(st.integers(0, len(spec.shape) - 1), label="dim")
    start = draw(st.integers(0, spec.shape[d] - 1), label="start")
    length = draw(st.integers(1, spec.shape[d] - start), label="length")
    c = draw(st.sampled_from([3.0, -0.5, 0.0]), label="factor")
    return spec, d, start, length, c


@rule(
    "inplace.view-of-intermediate-is-tracked",
    section=Section.INPLACE,
    docs="inplace-views",
    given=dict(case=_narrowed()),
    references=("test_autograd.py::TestAutogradDeviceType::test_inplace_on_view_backprop_base",),
)
def view_of_intermediate_is_tracked(case):
    """An in-place write through a view of an intermediate result rewrites the base's history, so the gradient equals that of the out-of-place computation."""
    spec, d, start, length, c = case
    x = spec.make()
    y = torch.sin(x)
    y.narrow(d, start, length).mul_(c)
    (y * y).sum().backward()
    factor = torch.ones(spec.shape, dtype=spec.dtype)
    factor.narrow(d, start, length).fill_(c)
    x2 = spec.make()
    y2 = torch.sin(x2) * factor
    (y2 * y2).sum().backward()
    repro = (
        f"x = {spec.expression()}\ny = torch.sin(x)\ny.narrow({d}, {start}, {length}).mul_({c})\n"
        "(y * y).sum().backward()\nprint(x.grad)"
    )
    expect_close(
        x.grad,
        x2.grad,
        tolerance=DTYPE_TOLERANCE[torch.float32] if spec.dtype == torch.float32 else FD_TOLERANCE,
        what="x.grad against the out-of-place version (multiply by a mask of factors)",
        repro=repro,
    )


#: Ops whose backward does not read their output, so scaling that output in place is safe.
#: Views are left out: a view may alias a leaf or a saved tensor.
SAFE_TO_SCALE = (
    "sin",
    "cos",
    "softplus",
    "square",
    "scale",
    "add",
    "sub",
    "mul",
    "div",
    "sum",
    "sum_dim",
    "mean_dim",
    "matmul",
    "cat",
    "join",
)
#: Ops whose backward reads their output.
SAVE_OUTPUT = {"exp": r"Exp(Backward\d+)?", "tanh": r"Tanh(Backward\d+)?", "sigmoid": r"Sigmoid(Backward\d+)?"}


def _scaled(program, ops, method: str):
    steps = tuple(replace(s, code=f"({s.code}).{method}(0.5)") if s.op in ops else s for s in program.steps)
    return replace(program, steps=steps)


@rule(
    "inplace.unsaved-writes-match-out-of-place",
    section=Section.INPLACE,
    docs="inplace-safe",
    given=dict(program=programs()),
)
def unsaved_writes_match_out_of_place(program):
    """Rewriting a program so that each result no node saved is scaled in place (r.mul_(c) instead of r * c) records a valid graph with the same gradients as the out-of-place program."""
    in_place, out_of_place = _scaled(program, SAFE_TO_SCALE, "mul_"), _scaled(program, SAFE_TO_SCALE, "mul")
    a, b = in_place.inputs(), out_of_place.inputs()
    in_place(*a).sum().backward()
    out_of_place(*b).sum().backward()
    repro = in_place.repro("out.sum().backward()", *(f"print(x{i}.grad)" for i in program.grad_leaves))
    for i in program.grad_leaves:
        expect_close(
            a[i].grad, b[i].grad, tolerance=EXACT, what=f"x{i}.grad, in-place against out-of-place", repro=repro
        )


@rule(
    "inplace.saved-output-writes-are-caught",
    section=Section.INPLACE,
    docs="inplace-safe",
    given=dict(
        program=programs(all_require_grad=True, ops=tuple(OPS_BY_NAME.values())).filter(
            lambda p: any(s.op in SAVE_OUTPUT for s in p.steps)
        )
    ),
    contracts=(SAVED_MODIFIED,),
    references=("test_autograd.py::TestAutograd::test_inplace",),
)
def saved_output_writes_are_caught(program):
    """The same rewrite applied to an op whose backward reads its own output (exp, tanh, sigmoid) is caught: backward raises a RuntimeError naming that op."""
    rewritten = _scaled(program, tuple(SAVE_OUTPUT), "mul_")
    repro = rewritten.repro("out.sum().backward()")
    message = SAVED_MODIFIED.check(lambda: rewritten(*rewritten.inputs()).sum(), repro=repro)
    named = "|".join(SAVE_OUTPUT[s.op] for s in program.steps if s.op in SAVE_OUTPUT)
    expect(
        re.search(rf"output 0 of ({named}),", message) is not None,
        what="the message names an output-saving op",
        expected=named,
        observed=message,
        repro=repro,
    )


IN_PLACE_ACTIVATIONS = {
    "relu_": (torch.relu, r"Relu(Backward\d+)?"),
    "sigmoid_": (torch.sigmoid, r"Sigmoid(Backward\d+)?"),
    "tanh_": (torch.tanh, r"Tanh(Backward\d+)?"),
    "exp_": (torch.exp, r"Exp(Backward\d+)?"),
}


@rule(
    "inplace.output-saving-ops-in-place",
    section=Section.INPLACE,
    docs="inplace-output-saving",
    given=dict(spec=tensors(dtypes=(torch.float64,)), op=st.sampled_from(sorted(IN_PLACE_ACTIVATIONS))),
    contracts=(SAVED_MODIFIED,),
    references=("test_autograd.py::TestAutograd::test_inplace",),
)
def output_saving_ops_in_place(spec, op):
    """An in-place activation whose backward reads its output (relu_, sigmoid_, tanh_, exp_) on an intermediate is correct, because it saves its result after writing; a later write to that result makes backward raise."""
    function, node = IN_PLACE_ACTIVATIONS[op]
    x = spec.make()
    h = x * 1.5
    result = getattr(h, op)()
    expect(result is h, what=f"h.{op}() returns h itself", expected="the same object", observed="another tensor")
    h.sum().backward()
    repro = f"x = {spec.expression()}\nh = (x * 1.5).{op}()\nh.sum().backward()\nprint(x.grad)"
    expected = finite_difference_gradients(lambda t: function(t * 1.5), [x], [0])[0]
    if op == "relu_":  # the finite difference at a kink is 1/2; relu's chosen derivative at 0 is 0
        expected = torch.where(x.detach() == 0, torch.zeros_like(expected), expected)
    expect_close(
        x.grad,
        expected,
        tolerance=FD_TOLERANCE,
        what=f"x.grad through h.{op}() against finite differences",
        repro=repro,
    )

    def record():
        h = getattr(spec.make() * 1.5, op)()
        h.mul_(2.0)
        return h.sum()

    message = SAVED_MODIFIED.check(record, repro=repro.replace("h.sum()", "h.mul_(2.0)\nh.sum()"))
    expect(
        re.search(rf"output 0 of {node},", message) is not None,
        what="the message names the op",
        expected=node,
        observed=message,
    )


@rule(
    "inplace.write-replaces-grad-fn",
    section=Section.INPLACE,
    docs="inplace-output-saving",
    given=dict(program=programs(), op=st.sampled_from(sorted(IN_PLACE_ACTIVATIONS))),
)
def write_replaces_grad_fn(program, op):
    """An in-place op on a tracked intermediate returns the same Python tensor, whose grad_fn becomes the node of the in-place op."""
    h = torch.sin(program(*program.inputs()))
    before = h.grad_fn
    result = getattr(h, op)()
    _, node = IN_PLACE_ACTIVATIONS[op]
    repro = program.repro("h = torch.sin(out)", f"h.{op}()", "print(h.grad_fn)")
    expect(
        result is h and h.grad_fn is not before,
        what=f"h.{op}() returns h with a new grad_fn",
        expected="same tensor, new node",
        observed=(result is h, h.grad_fn),
        repro=repro,
    )
    expect(
        re.fullmatch(node.replace("(Backward\\d+)?", "Backward\\d+"), h.grad_fn.name()) is not None,
        what="the node's name",
        expected=node,
        observed=h.grad_fn.name(),
        repro=repro,
    )


@rule(
    "inplace.multi-output-views-refuse",
    section=Section.INPLACE,
    docs="inplace-refused",
    given=dict(
        spec=tensors(min_ndim=1, zero_size=False, layouts=("contiguous",)),
        how=st.sampled_from(["unbind", "split", "chunk"]),
    ),
    contracts=(MULTI_OUTPUT_VIEW,),
    history=(Change("2.13", "the message named the node ('Output 0 of UnbindBackward0')"),),
    references=("test_autograd.py::TestAutogradDeviceType::test_inplace_on_view_multiple_outputs",),
)
def multi_output_views_refuse(spec, how):
    """An in-place write to one of the views returned by unbind, split or chunk of a tracked tensor raises a RuntimeError while recording."""
    views = {"unbind": "unbind(0)", "split": "split(1, 0)", "chunk": "chunk(2, 0)"}
    script = Script("x = $x\n(x * 2).$views[0].mul_(2.0)", x=spec.expression(), views=views[how])
    MULTI_OUTPUT_VIEW.check(script.run, repro=script)


@rule(
    "inplace.out-argument-refuses-grad",
    section=Section.INPLACE,
    docs="inplace-refused",
    given=dict(spec=tensors(layouts=("contiguous",))),
    contracts=(OUT_WITH_GRAD,),
    references=("test_autograd.py::TestAutograd::test_out_variant_raises_when_inputs_require_grad",),
)
def out_argument_refuses_grad(spec):
    """An op given out= raises a RuntimeError when one of its inputs requires grad in grad mode; under no_grad it writes the result."""
    x = spec.make()
    target = torch.empty(spec.shape, dtype=spec.dtype)
    OUT_WITH_GRAD.check(
        lambda: torch.add(x, 1.0, out=target),
        repro=f"x = {spec.expression()}\ntorch.add(x, 1.0, out=torch.empty({spec.shape}))",
    )
    with torch.no_grad():
        torch.add(x, 1.0, out=target)
    expect_close(target, x.detach() + 1.0, tolerance=EXACT, what="the out= result under no_grad")
