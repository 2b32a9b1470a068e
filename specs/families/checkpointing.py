"""Activation checkpointing: same gradients for less memory kept, paid for by recomputing the forward.

Memory is measured deterministically as the bytes that pass through a saved-tensor ``pack`` hook
while the forward is recorded: what autograd keeps for backward, not what the process holds.
"""

from __future__ import annotations

import inspect
import math
import re
import warnings
from typing import NamedTuple

import torch
from hypothesis import strategies as st
from torch.utils.checkpoint import checkpoint, checkpoint_sequential

from specs.engine.contracts import ErrorContract, Phase, WarningContract
from specs.engine.expect import Tolerance, expect, expect_close
from specs.engine.oracles import saved_bytes
from specs.engine.registry import Change, Family, Feature, record, rule
from specs.engine.script import Script
from specs.engine.sections import Section
from specs.engine.versions import at_least
from specs.generators.program import Program, Step, TensorSpec
from specs.generators.strategies import programs

FAMILY = Family(
    name="checkpointing",
    title="Checkpointing and the memory autograd keeps",
    summary="How much autograd keeps for backward, and how checkpointing trades it for recomputation.",
    gallery="plot_87_checkpointing.py",
)


#: The recomputation runs the same ops on the same values, so results agree to roundoff at most.
RECOMPUTED = {
    torch.float32: Tolerance(1e-6, 1e-7, "float32: the same ops recomputed; only summation order may differ"),
    torch.float64: Tolerance(1e-12, 1e-13, "float64: the same ops recomputed; only summation order may differ"),
}

NO_USE_REENTRANT = WarningContract(
    UserWarning,
    r"use_reentrant\b.*\bexplicitly",
    wording="2.1 said 'please pass in use_reentrant=True or use_reentrant=False explicitly'; later releases "
    "'the use_reentrant parameter should be passed explicitly', followed by a promise of an exception "
    "'in version 2.4', '2.5' or 'Starting in PyTorch 2.9' that no release has kept",
)
REENTRANT_GRAD = ErrorContract(
    RuntimeError,
    r"(?i)(incompatible|not compatible) with \.grad\(\)",
    Phase.BACKWARD,
    wording="older releases: 'Checkpointing is not compatible with .grad() or when an `inputs` parameter is "
    "passed to .backward()'; newer ones start 'When use_reentrant=True, torch.utils.checkpoint is incompatible'",
)

REENTRANT = st.booleans()


#: checkpoint_sequential takes use_reentrant only in newer releases (1.13.1 refuses the keyword).
SEQUENTIAL_USE_REENTRANT = Feature(
    "checkpoint_sequential(..., use_reentrant=...)",
    lambda: "use_reentrant" in inspect.signature(checkpoint_sequential).parameters,
)


def _plain(program):
    leaves = program.inputs()
    torch.tanh(program(*leaves)).sum().backward()
    return [leaves[i].grad for i in program.grad_leaves]


def _tanh_program(program):
    function = program.function()
    return lambda *leaves: torch.tanh(function(*leaves))


@rule(
    "checkpointing.same-gradients",
    section=Section.PRACTICAL,
    docs="checkpointing-same",
    given=dict(program=programs(), use_reentrant=REENTRANT),
    references=(
        "test_autograd.py::TestAutograd::test_checkpointing",
        "test_autograd.py::TestAutograd::test_checkpointing_without_reentrant_correct_grad",
    ),
)
def same_gradients(program, use_reentrant):
    """checkpoint(f, *inputs) gives the same gradients as f(*inputs), with use_reentrant=True and with False."""
    plain = _plain(program)
    leaves = program.inputs()
    checkpoint(_tanh_program(program), *leaves, use_reentrant=use_reentrant).sum().backward()
    repro = program.repro(
        "from torch.utils.checkpoint import checkpoint",
        f"out = checkpoint(lambda *x: torch.tanh(program(*x)), {', '.join(program.leaf_names)}, "
        f"use_reentrant={use_reentrant})",
        "out.sum().backward()",
        *program.print_grads,
    )
    for i, grad in zip(program.grad_leaves, plain):
        expect_close(
            leaves[i].grad, grad, tolerance=RECOMPUTED[program.dtype], what=f"x{i}.grad through checkpoint", repro=repro
        )


@rule(
    "checkpointing.recomputes-the-forward",
    section=Section.PRACTICAL,
    docs="checkpointing-same",
    given=dict(program=programs(max_ops=6), use_reentrant=REENTRANT),
    references=("docs: torch.utils.checkpoint.checkpoint",),
)
def recomputes_the_forward(program, use_reentrant):
    """A checkpointed function runs once in the forward and once more during backward, to recompute what it did not keep."""
    calls = []
    inner = _tanh_program(program)

    def counted(*leaves):
        calls.append(torch.is_grad_enabled())
        return inner(*leaves)

    out = checkpoint(counted, *program.inputs(), use_reentrant=use_reentrant)
    forward_calls = len(calls)
    out.sum().backward()
    repro = program.repro(
        "from torch.utils.checkpoint import checkpoint",
        "calls = []",
        "def counted(*xs):",
        "    calls.append(torch.is_grad_enabled())",
        "    return torch.tanh(program(*xs))",
        f"out = checkpoint(counted, {', '.join(program.leaf_names)}, use_reentrant={use_reentrant})",
        "print('forward calls:', len(calls))",
        "out.sum().backward()",
        "print('after backward:', len(calls))",
    )
    expect(forward_calls == 1, what="calls during the forward", expected=1, observed=forward_calls, repro=repro)
    expect(len(calls) == 2, what="calls after backward", expected=2, observed=len(calls), repro=repro)


@rule(
    "checkpointing.keeps-only-the-inputs",
    section=Section.PRACTICAL,
    docs="checkpointing-memory",
    given=dict(program=programs(), use_reentrant=REENTRANT),
    references=("docs: torch.utils.checkpoint.checkpoint",),
)
def keeps_only_the_inputs(program, use_reentrant):
    """While a checkpointed function is recorded, autograd keeps at most its inputs for backward, whatever the function itself saves."""
    leaves = program.inputs()
    inputs = sum(x.numel() * x.element_size() for x in leaves)
    kept, out = saved_bytes(lambda: checkpoint(_tanh_program(program), *leaves, use_reentrant=use_reentrant))
    plain, _ = saved_bytes(lambda: torch.tanh(program(*program.inputs())))
    repro = program.repro(
        "from torch.utils.checkpoint import checkpoint",
        "from specs.engine.oracles import saved_bytes",
        f"kept, out = saved_bytes(lambda: checkpoint(lambda *xs: torch.tanh(program(*xs)), "
        f"{', '.join(program.leaf_names)}, use_reentrant={use_reentrant}))",
        "print(kept, 'bytes kept;', sum(x.numel() * x.element_size() for x in "
        f"[{', '.join(program.leaf_names)}]), 'bytes of inputs')",
    )
    expect(
        kept <= inputs,
        what="bytes kept for backward by the checkpointed function",
        expected=f"<= {inputs} (its inputs)",
        observed=kept,
        repro=repro,
    )
    expect(
        kept <= max(plain, inputs),
        what="bytes kept, against the plain function",
        expected=f"<= {max(plain, inputs)}",
        observed=kept,
    )
    out.sum().backward()


@rule(
    "checkpointing.preserves-the-rng-state",
    section=Section.PRACTICAL,
    docs="checkpointing-rng",
    given=dict(program=programs(), use_reentrant=REENTRANT, seed=st.integers(0, 2**16)),
    references=("docs: torch.utils.checkpoint.checkpoint (preserve_rng_state)",),
)
def preserves_the_rng_state(program, use_reentrant, seed):
    """By default checkpoint restores the RNG state for the recomputation, so dropout draws the same mask and the gradients equal the plain run's."""
    function = program.function()

    def dropped(*leaves):
        return torch.tanh(torch.nn.functional.dropout(function(*leaves), p=0.5, training=True))

    leaves = program.inputs()
    torch.manual_seed(seed)
    dropped(*leaves).sum().backward()
    plain = [leaves[i].grad for i in program.grad_leaves]
    leaves = program.inputs()
    torch.manual_seed(seed)
    checkpoint(dropped, *leaves, use_reentrant=use_reentrant).sum().backward()
    repro = program.repro(
        "from torch.utils.checkpoint import checkpoint",
        "dropped = lambda *xs: torch.tanh(torch.nn.functional.dropout(program(*xs), p=0.5, training=True))",
        f"torch.manual_seed({seed})",
        f"checkpoint(dropped, {', '.join(program.leaf_names)}, use_reentrant={use_reentrant}).sum().backward()",
        *program.print_grads,
    )
    for i, grad in zip(program.grad_leaves, plain):
        expect_close(
            leaves[i].grad, grad, tolerance=RECOMPUTED[program.dtype], what=f"x{i}.grad with dropout", repro=repro
        )


class Chain(NamedTuple):
    """The arguments of :func:`make_chain`."""

    depth: int
    width: int
    batch: int
    dtype: torch.dtype
    seed: int


@st.composite
def chains(draw, max_depth: int = 12):
    """A chain of ``depth`` Linear+Tanh layers of one width, with its input batch."""
    depth = draw(st.integers(1, max_depth), label="depth")
    width = draw(st.integers(1, 6), label="width")
    batch = draw(st.integers(1, 4), label="batch")
    dtype = draw(st.sampled_from([torch.float32, torch.float64]), label="dtype")
    seed = draw(st.integers(0, 2**16), label="seed")
    return Chain(depth, width, batch, dtype, seed)


def make_chain(depth, width, batch, dtype, seed):
    """The model and a batch of input that requires grad."""
    generator = torch.Generator().manual_seed(seed)
    layers = []
    for _ in range(depth):
        linear = torch.nn.Linear(width, width).to(dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.rand(width, width, generator=generator, dtype=dtype) - 0.5)
            linear.bias.copy_(torch.rand(width, generator=generator, dtype=dtype) - 0.5)
        layers += [linear, torch.nn.Tanh()]
    x = (torch.rand(batch, width, generator=generator, dtype=dtype) - 0.5).requires_grad_()
    return torch.nn.Sequential(*layers), x


def sqrt_segments(depth: int) -> int:
    return max(1, math.isqrt(depth - 1) + 1 if depth > 1 else 1)


def _chain_repro(case, code):
    return (
        f"from specs.families.checkpointing import make_chain\nmodel, x = make_chain(*{tuple(case)!r})\n"
        f"from torch.utils.checkpoint import checkpoint_sequential\n{code}"
    )


@rule(
    "checkpointing.sequential-same-gradients",
    section=Section.PRACTICAL,
    docs="checkpointing-sequential",
    requires=(SEQUENTIAL_USE_REENTRANT,),
    given=dict(case=chains(), segments=st.integers(1, 6), use_reentrant=REENTRANT),
    references=("docs: torch.utils.checkpoint.checkpoint_sequential",),
)
def sequential_same_gradients(case, segments, use_reentrant):
    """checkpoint_sequential(model, segments, x) gives the same gradients for the input and every parameter as model(x)."""
    model, x = make_chain(*case)
    model(x).sum().backward()
    expected = [x.grad] + [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    x2 = x.detach().clone().requires_grad_()
    segments = min(segments, len(model))
    checkpoint_sequential(model, segments, x2, use_reentrant=use_reentrant).sum().backward()
    repro = _chain_repro(
        case,
        f"checkpoint_sequential(model, {segments}, x, use_reentrant={use_reentrant}).sum().backward()\nprint(x.grad)",
    )
    expect_close(x2.grad, expected[0], tolerance=RECOMPUTED[case.dtype], what="x.grad", repro=repro)
    for k, (p, grad) in enumerate(zip(model.parameters(), expected[1:])):
        expect_close(p.grad, grad, tolerance=RECOMPUTED[case.dtype], what=f"gradient of parameter {k}", repro=repro)


#: A one-op program: the canonical input of the use_reentrant rules.
DOUBLING = Program(
    leaves=(TensorSpec((2,), torch.float64, "contiguous", (0.5, -1.0)),),
    steps=(Step("v0", "mul", ("x0",), "x0 * 2.0"),),
    output="v0",
)


def _announcement(action) -> str:
    """The sentence of the use_reentrant warning that says what will happen to callers who omit it."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        action()
    for warning in caught:
        message = str(warning.message)
        if re.search(NO_USE_REENTRANT.pattern, message):
            announcing = [text for text in _sentences(message) if "exception" in text]
            return announcing[0] if announcing else "(no exception announced)"
    return "(no warning)"


def _sentences(message: str) -> list[str]:
    return re.split(r"(?<=\.)\s+(?=[A-Za-z])", message.strip())


@rule(
    "checkpointing.warns-without-use-reentrant",
    section=Section.PRACTICAL,
    docs="checkpointing-use-reentrant",
    since="2.1",
    given=dict(program=programs(max_ops=4), sequential=st.booleans()),
    contracts=(NO_USE_REENTRANT,),
    examples=(dict(program=DOUBLING, sequential=False), dict(program=DOUBLING, sequential=True)),
    history=(
        Change("2.2", "checkpoint_sequential did not warn"),
        Change("2.9", "the warning promised an exception in an earlier release (2.4, then 2.5); none was ever raised"),
        Change(
            "2.15.0",
            "the warnings said the exception would come 'in version 2.9' (checkpoint_sequential) "
            "or 'Starting in PyTorch 2.9' (checkpoint); they now say 'a future release'",
        ),
    ),
    references=(
        "torch.utils.checkpoint.checkpoint docstring (use_reentrant)",
        "test_autograd.py::TestAutograd::test_checkpoint_warns_if_use_reentrant_not_passed_explcitly",
    ),
)
def warns_without_use_reentrant(program, sequential):
    """Calling checkpoint or checkpoint_sequential without use_reentrant emits a UserWarning asking for it to be passed explicitly and still computes the result, although that warning announces an exception for such calls, a scheduled change not yet made in torch 2.15.0 that this rule will report when it comes."""
    if sequential:
        if not at_least("2.2"):
            return
        script = program.script(
            "from torch.utils.checkpoint import checkpoint_sequential",
            "model = torch.nn.Sequential(torch.nn.Tanh(), torch.nn.Tanh())",
            "result = checkpoint_sequential(model, 2, torch.tanh(out))",
            "print(result.requires_grad)",
        )
    else:
        script = program.script(
            "from torch.utils.checkpoint import checkpoint",
            f"result = checkpoint(lambda *xs: torch.tanh(program(*xs)), {', '.join(program.leaf_names)})",
            "print(result.requires_grad)",
        )
    call = lambda: script.run().result  # noqa: E731
    out = NO_USE_REENTRANT.check(call, repro=script)
    expect(out.requires_grad, what="the result is recorded", expected=True, observed=out.requires_grad, repro=script)
    if program is DOUBLING:
        record("checkpoint_sequential: announced" if sequential else "checkpoint: announced", _announcement(call))


@rule(
    "checkpointing.default-is-reentrant",
    section=Section.PRACTICAL,
    docs="checkpointing-use-reentrant",
    given=dict(program=programs(max_ops=6), explicit=st.booleans()),
    contracts=(REENTRANT_GRAD,),
    examples=(dict(program=DOUBLING, explicit=False),),
    references=(
        "torch.utils.checkpoint.checkpoint docstring (use_reentrant)",
        "test_autograd.py::TestAutograd::test_checkpoint_valid_reset_on_error",
    ),
)
def default_is_reentrant(program, explicit):
    """Reentrant checkpointing, which checkpoint still uses when use_reentrant is not passed (a default its warning announces will become an exception), refuses autograd.grad with a RuntimeError, while use_reentrant=False supports it."""
    leaves = ", ".join(program.leaf_names)
    option = ", use_reentrant=True" if explicit else ""
    forward = program.script(
        "from torch.utils.checkpoint import checkpoint",
        f"out = checkpoint(lambda *xs: torch.tanh(program(*xs)), {leaves}{option})",
    )
    backward = "torch.autograd.grad(out.sum(), [x0])"

    def record_forward():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return forward.run()

    message = REENTRANT_GRAD.check(
        record_forward,
        backward=lambda seen: Script(backward).run(out=seen.out, x0=seen.x0),
        repro=forward.then(backward),
    )
    if not explicit:
        record("use_reentrant omitted, autograd.grad raises", _sentences(message)[0])
    plain = _plain(program)
    script = program.script(
        "from torch.utils.checkpoint import checkpoint",
        f"out = checkpoint(lambda *xs: torch.tanh(program(*xs)), {leaves}, use_reentrant=False)",
        "grad, = torch.autograd.grad(out.sum(), [x0])",
        "print(grad)",
    )
    expect_close(
        script.run().grad,
        plain[0],
        tolerance=RECOMPUTED[program.dtype],
        what="autograd.grad through use_reentrant=False",
        repro=script,
    )


# ------------------------------------------------------------------ the memory autograd keeps
@rule(
    "checkpointing.memory-is-linear-in-depth",
    section=Section.PRACTICAL,
    docs="checkpointing-memory",
    given=dict(case=chains()),
)
def memory_is_linear_in_depth(case):
    """Without checkpointing, the bytes autograd keeps for a chain of N identical layers are N times those of one layer."""
    depth, width, batch, dtype, seed = case
    model, x = make_chain(*case)
    kept, out = saved_bytes(lambda: model(x))
    one_model, one_x = make_chain(1, width, batch, dtype, seed)
    one, _ = saved_bytes(lambda: one_model(one_x))
    expect(
        kept == depth * one,
        what=f"bytes kept for {depth} layers",
        expected=f"{depth} x {one}",
        observed=kept,
        repro=_chain_repro(
            case, "from specs.engine.oracles import saved_bytes\nprint(saved_bytes(lambda: model(x))[0])"
        ),
    )
    out.sum().backward()


@rule(
    "checkpointing.no-grad-keeps-nothing",
    section=Section.PRACTICAL,
    docs="checkpointing-memory",
    given=dict(case=chains()),
)
def no_grad_keeps_nothing(case):
    """Under no_grad autograd keeps nothing for backward, whatever the depth."""
    model, x = make_chain(*case)
    with torch.no_grad():
        kept, _ = saved_bytes(lambda: model(x))
    expect(
        kept == 0,
        what="bytes kept under no_grad",
        expected=0,
        observed=kept,
        repro=_chain_repro(
            case,
            "from specs.engine.oracles import saved_bytes\nwith torch.no_grad():\n"
            "    print(saved_bytes(lambda: model(x))[0])",
        ),
    )


@rule(
    "checkpointing.sqrt-segments-keep-sqrt-memory",
    section=Section.PRACTICAL,
    docs="checkpointing-memory",
    requires=(SEQUENTIAL_USE_REENTRANT,),
    given=dict(case=chains(max_depth=36), use_reentrant=REENTRANT),
)
def sqrt_segments_keep_sqrt_memory(case, use_reentrant):
    """With s segments, checkpoint_sequential keeps one input per checkpointed segment plus the last segment's layers, so s = ceil(sqrt(N)) keeps memory that grows like sqrt(N) instead of N."""
    depth, width, batch, dtype, seed = case
    model, x = make_chain(*case)
    one_model, one_x = make_chain(1, width, batch, dtype, seed)
    layer, _ = saved_bytes(lambda: one_model(one_x))
    activation = x.numel() * x.element_size()
    segments = sqrt_segments(depth)
    kept, out = saved_bytes(lambda: checkpoint_sequential(model, segments, x, use_reentrant=use_reentrant))
    # checkpoint_sequential cuts the 2N modules into runs of 2N // s, the last run taking the rest,
    # and does not checkpoint the last run.
    last_layers = math.ceil((len(model) - (segments - 1) * (len(model) // segments)) / 2)
    bound = (segments - 1) * activation + last_layers * layer
    repro = _chain_repro(
        case,
        "from specs.engine.oracles import saved_bytes\nprint(saved_bytes(lambda: checkpoint_sequential("
        f"model, {segments}, x, use_reentrant={use_reentrant}))[0])",
    )
    expect(
        kept <= bound,
        what=f"bytes kept with {segments} segments for {depth} layers",
        expected=f"<= {bound} = {segments - 1} inputs of {activation} + {last_layers} layers of {layer}",
        observed=kept,
        repro=repro,
    )
    if depth >= 4:
        expect(
            kept < depth * layer,
            what="checkpointing keeps less than the plain chain",
            expected=f"< {depth * layer}",
            observed=kept,
            repro=repro,
        )
    out.sum().backward()


# ------------------------------------------------------------------ nesting, options, determinism
@rule(
    "checkpointing.nested-same-gradients",
    section=Section.PRACTICAL,
    docs="checkpointing-nested",
    given=dict(program=programs(max_ops=3), outer_reentrant=REENTRANT, inner_reentrant=REENTRANT),
    examples=(dict(program=DOUBLING, outer_reentrant=False, inner_reentrant=False),),
    references=("test_autograd.py::TestNestedCheckpoint::test_nested_checkpoint",),
)
def nested_same_gradients(program, outer_reentrant, inner_reentrant):
    """A checkpoint inside a checkpointed function, with either implementation outside and either inside, gives the gradients of the plain program."""
    plain = _plain(program)
    function = program.function()
    calls = []

    def inner(*xs):
        calls.append("inner")
        return function(*xs)

    def outer(*xs):
        return torch.tanh(checkpoint(inner, *xs, use_reentrant=inner_reentrant))

    leaves = program.inputs()
    checkpoint(outer, *leaves, use_reentrant=outer_reentrant).sum().backward()
    repro = program.repro(
        "from torch.utils.checkpoint import checkpoint",
        f"outer = lambda *xs: torch.tanh(checkpoint(program, *xs, use_reentrant={inner_reentrant}))",
        f"checkpoint(outer, {', '.join(program.leaf_names)}, use_reentrant={outer_reentrant}).sum().backward()",
        *program.print_grads,
    )
    for i, grad in zip(program.grad_leaves, plain):
        expect_close(
            leaves[i].grad,
            grad,
            tolerance=RECOMPUTED[program.dtype],
            what=f"x{i}.grad through nested checkpoints",
            repro=repro,
        )
    if program is DOUBLING:
        record("inner function calls (forward and recomputations)", len(calls))


NOTHING_REQUIRES_GRAD = ErrorContract(
    RuntimeError,
    r"none of output has requires_grad=True, this checkpoint\(\) is not necessary",
    Phase.BACKWARD,
)


@rule(
    "checkpointing.reentrant-needs-an-output-requiring-grad",
    section=Section.PRACTICAL,
    docs="checkpointing-nested",
    given=dict(program=programs(max_ops=4)),
    contracts=(NOTHING_REQUIRES_GRAD,),
    examples=(dict(program=DOUBLING),),
    references=("test_autograd.py::TestAutograd::test_checkpointing_without_reentrant_detached_tensor",),
)
def reentrant_needs_an_output_requiring_grad(program):
    """A reentrant checkpoint of inputs requiring grad whose function returns only detached tensors still returns a result that claims requires_grad, and backward through it raises a RuntimeError ('none of output has requires_grad=True'); with use_reentrant=False the detached output does not require grad, and a live output beside it gets the plain gradient."""
    leaves = ", ".join(program.leaf_names)
    forward = program.script(
        "from torch.utils.checkpoint import checkpoint",
        f"out = checkpoint(lambda *xs: torch.tanh(program(*xs)).detach(), {leaves}, use_reentrant=True)",
        "print(out.requires_grad)",
    )
    record_forward, backward, repro = forward.recorded_then("out.sum().backward()")
    seen = {}
    message = NOTHING_REQUIRES_GRAD.check(
        lambda: seen.setdefault("ns", record_forward()), backward=backward, repro=repro
    )
    claimed = seen["ns"].out.requires_grad
    expect(claimed, what="the reentrant result's requires_grad", expected=True, observed=claimed, repro=repro)
    plain = _plain(program)
    script = program.script(
        "from torch.utils.checkpoint import checkpoint",
        "def both(*xs):",
        "    y = torch.tanh(program(*xs))",
        "    return y.detach(), y",
        f"dead, live = checkpoint(both, {leaves}, use_reentrant=False)",
        "print(dead.requires_grad)",
        "live.sum().backward()",
        *program.print_grads,
    )
    done = script.run()
    expect(
        not done.dead.requires_grad,
        what="the detached output of a non-reentrant checkpoint requires grad",
        expected=False,
        observed=done.dead.requires_grad,
        repro=script,
    )
    for i, grad in zip(program.grad_leaves, plain):
        expect_close(
            done[program.leaf_names[i]].grad,
            grad,
            tolerance=RECOMPUTED[program.dtype],
            what=f"x{i}.grad through the live output",
            repro=script,
        )
    if program is DOUBLING:
        record("reentrant, detached outputs: result requires_grad", claimed)
        record("reentrant, detached outputs: backward raises", message)


#: checkpoint(..., debug=...) is newer than torch 1.13.1; the rule needs it, and reads it from the signature.
CHECKPOINT_DEBUG = Feature("checkpoint(..., debug=...)", lambda: "debug" in inspect.signature(checkpoint).parameters)
REENTRANT_OPTION = ErrorContract(
    ValueError,
    # 2.14 added respect_saved_tensors_hooks to the list the message names ("`context_fn`, `debug`, or ...").
    r"Passing `context_fn`[^.]*`debug`[^.]* is only supported when use_reentrant=False|Unexpected keyword arguments: \w+",
    Phase.RECORD,
)
#: The options that only the non-reentrant implementation takes, as source text of a keyword argument
#: (a context_fn other than the default: the default noop_context_fn itself is accepted).
NON_REENTRANT_OPTIONS = {
    "context_fn": "context_fn=lambda: (contextlib.nullcontext(), contextlib.nullcontext())",
    "debug": "debug=True",
    "extra": "preserve=True",
}


@rule(
    "checkpointing.reentrant-refuses-non-reentrant-options",
    section=Section.PRACTICAL,
    docs="checkpointing-nested",
    requires=(CHECKPOINT_DEBUG,),
    given=dict(program=programs(max_ops=4), option=st.sampled_from(sorted(NON_REENTRANT_OPTIONS))),
    contracts=(REENTRANT_OPTION,),
    examples=tuple(dict(program=DOUBLING, option=option) for option in sorted(NON_REENTRANT_OPTIONS)),
    references=("test_autograd.py::TestAutograd::test_checkpointing_without_reentrant_with_context_fn",),
)
def reentrant_refuses_non_reentrant_options(program, option):
    """checkpoint(..., use_reentrant=True) with context_fn, debug or any other extra keyword argument raises a ValueError while recording (naming context_fn and debug, or listing the unexpected keywords); use_reentrant=False takes the context_fn and gives the plain gradients."""
    leaves = ", ".join(program.leaf_names)
    keyword = NON_REENTRANT_OPTIONS[option]
    script = program.script(
        "import contextlib",
        "from torch.utils.checkpoint import checkpoint",
        f"out = checkpoint(lambda *xs: torch.tanh(program(*xs)), {leaves}, use_reentrant=True, {keyword})",
    )
    message = REENTRANT_OPTION.check(script.run, repro=script)
    named = "context_fn" in message if option != "extra" else "preserve" in message
    expect(named, what="the option named in the message", expected=option, observed=message, repro=script)
    if program is DOUBLING:
        record(f"use_reentrant=True with {option}", message)
    if option != "context_fn":
        # debug=True with use_reentrant=False is accepted too, but it starts symbolizer processes
        # that outlive the test, which state isolation rightly reports as a leak.
        return
    plain = _plain(program)
    accepted = program.script(
        "import contextlib",
        "from torch.utils.checkpoint import checkpoint",
        f"out = checkpoint(lambda *xs: torch.tanh(program(*xs)), {leaves}, use_reentrant=False, {keyword})",
        "out.sum().backward()",
        *program.print_grads,
    )
    done = accepted.run()
    for i, grad in zip(program.grad_leaves, plain):
        expect_close(
            done[program.leaf_names[i]].grad,
            grad,
            tolerance=RECOMPUTED[program.dtype],
            what=f"x{i}.grad with use_reentrant=False, {keyword}",
            repro=accepted,
        )


#: The non-reentrant implementation checks what the recomputation saves (CheckpointError, newer than 1.13.1).
RECOMPUTATION_CHECK = Feature(
    "torch.utils.checkpoint.CheckpointError", lambda: hasattr(torch.utils.checkpoint, "CheckpointError")
)
RECOMPUTED_DIFFERENTLY = ErrorContract(
    RuntimeError,
    r"torch\.utils\.checkpoint: (A different number of tensors was saved during the original forward and "
    r"recomputation|Recomputed values for the following tensors have different metadata than during the forward "
    r"pass)",
    Phase.BACKWARD,
)
#: How the recomputation departs from the forward, as source of the recomputed region given ``y = program(*xs)``.
DEPARTURES = {
    "fewer saved": ("torch.tanh(torch.tanh(y))", "torch.tanh(y)"),
    "other shape": ("torch.tanh(y)", "torch.tanh(y.unsqueeze(0)).squeeze(0)"),
    "other dtype": ("torch.tanh(y)", "torch.tanh(y.to(OTHER)).to(y.dtype)"),
}


@rule(
    "checkpointing.recomputation-must-save-the-same",
    section=Section.PRACTICAL,
    docs="checkpointing-nested",
    requires=(RECOMPUTATION_CHECK,),
    given=dict(program=programs(max_ops=4), departure=st.sampled_from(sorted(DEPARTURES))),
    contracts=(RECOMPUTED_DIFFERENTLY,),
    examples=tuple(dict(program=DOUBLING, departure=d) for d in sorted(DEPARTURES)),
    references=("test_autograd.py::TestAutograd::test_checkpoint_detects_non_determinism",),
)
def recomputation_must_save_the_same(program, departure):
    """With use_reentrant=False, a function whose recomputation saves fewer tensors than its forward did, or a saved tensor of another shape or dtype, makes backward raise a CheckpointError (a RuntimeError) saying which."""
    first, again = DEPARTURES[departure]
    other = "torch.float32" if program.dtype == torch.float64 else "torch.float64"
    script = program.script(
        "from torch.utils.checkpoint import checkpoint",
        "calls = []",
        "def region(*xs):",
        "    calls.append(1)",
        "    y = program(*xs)",
        f"    return {first} if len(calls) == 1 else {again.replace('OTHER', other)}",
        f"out = checkpoint(region, {', '.join(program.leaf_names)}, use_reentrant=False)",
    )
    record_forward, backward, repro = script.recorded_then("out.sum().backward()")
    message = RECOMPUTED_DIFFERENTLY.check(record_forward, backward=backward, repro=repro)
    said = "different number" if departure == "fewer saved" else "different metadata"
    expect(said in message, what="what the message says differs", expected=said, observed=message, repro=repro)
    if program is DOUBLING:
        record(f"recomputation with {departure}", _sentences(message)[0])
