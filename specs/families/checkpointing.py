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
