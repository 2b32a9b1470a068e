"""Meta-tests of the strategies: they reach the interesting cases, and programs are faithful code."""

import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from specs.generators.program import LAYOUTS
from specs.generators.strategies import MAX_BOUND, MAX_NUMEL, OPS, programs, tensors

#: Generation only (no shrinking), derandomized: the same draws on every run.
SURVEY = settings(
    max_examples=500,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)
#: A case counts as reached when at least this many of the surveyed examples show it.
AT_LEAST = 3


def survey(strategy, cases):
    """How many generated examples show each case."""
    counts = dict.fromkeys(cases, 0)

    @SURVEY
    @given(example=strategy)
    def look(example):
        for name, condition in cases.items():
            counts[name] += bool(condition(example))

    look()
    return counts


class Traced:
    """A program with its values computed once, for the survey's conditions."""

    def __init__(self, program):
        self.program = program
        self.values = program.trace(*program.inputs())
        self.inputs = program.inputs()


PROGRAM_CASES = {
    "a non-leaf intermediate": lambda t: any(not v.is_leaf for v in t.values.values()),
    "a view of a leaf": lambda t: any(
        v._is_view() and not v.is_leaf and v._base.is_leaf for n, v in t.values.items() if not n.startswith("x")
    ),
    "a view of an intermediate": lambda t: any(
        v._is_view() and not v._base.is_leaf for n, v in t.values.items() if not n.startswith("x")
    ),
    "fan-out": lambda t: t.program.has_fan_out,
    "a zero-size leaf": lambda t: t.program.has_zero_size,
    "float32": lambda t: t.program.dtype == torch.float32,
    "float64": lambda t: t.program.dtype == torch.float64,
    "a non-contiguous leaf": lambda t: any(not x.is_contiguous() for x in t.inputs),
    "broadcasting": lambda t: any(
        s.op in ("add", "mul", "sub", "div") and len({t.values[a].shape for a in s.args}) > 1 for s in t.program.steps
    ),
    "a reduction": lambda t: any(s.op in ("sum", "sum_dim", "mean_dim") for s in t.program.steps),
    "three leaves": lambda t: len(t.program.leaves) == 3,
    "a leaf that does not require grad": lambda t: any(not leaf.requires_grad for leaf in t.program.leaves),
    "a 0-d output": lambda t: t.values[t.program.output].dim() == 0,
    "a 4-d intermediate": lambda t: any(v.dim() == 4 for v in t.values.values()),
    "ten or more steps": lambda t: len(t.program.steps) >= 10,
    **{f"op {op.name}": (lambda t, name=op.name: any(s.op == name for s in t.program.steps)) for op in OPS},
}


def test_programs_reach_the_interesting_cases():
    counts = survey(programs().map(Traced), PROGRAM_CASES)
    missing = {name: n for name, n in counts.items() if n < AT_LEAST}
    assert not missing, f"programs() rarely or never generates: {missing} (of {SURVEY.max_examples})"


TENSOR_CASES = {
    "0-d": lambda t: t.shape == (),
    "4-d": lambda t: len(t.shape) == 4,
    "zero-size": lambda t: t.numel == 0,
    "float32": lambda t: t.dtype == torch.float32,
    "float64": lambda t: t.dtype == torch.float64,
    **{layout: (lambda t, layout=layout: t.layout == layout and t.numel > 1) for layout in LAYOUTS},
}


def test_tensors_reach_the_interesting_cases():
    counts = survey(tensors(), TENSOR_CASES)
    missing = {name: n for name, n in counts.items() if n < AT_LEAST}
    assert not missing, f"tensors() rarely or never generates: {missing} (of {SURVEY.max_examples})"


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(spec=tensors())
def test_tensor_specs_build_what_they_say(spec):
    t = spec.make()
    assert tuple(t.shape) == spec.shape and t.dtype == spec.dtype
    assert t.is_leaf and t.requires_grad == spec.requires_grad
    assert spec.layout != "contiguous" or t.is_contiguous()
    if spec.layout != "contiguous" and spec.shape and min(spec.shape) >= 2:
        assert not t.is_contiguous(), f"a {spec.layout} tensor of shape {spec.shape} is contiguous"
    assert all(abs(v) <= 2 for v in spec.values)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(program=programs())
def test_programs_stay_bounded_and_small(program):
    assert 1 <= len(program.leaves) <= 3 and 2 <= len(program.steps) <= 13
    for name, value in program.trace(*program.inputs()).items():
        assert value.numel() <= MAX_NUMEL and value.dim() <= 4, name
        assert torch.isfinite(value).all() and (value.abs().amax().item() if value.numel() else 0) <= MAX_BOUND, name


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(program=programs())
def test_repro_script_is_the_program(program):
    """The printed reproducer, run as a script, computes exactly what the rules computed."""
    namespace = {}
    exec(program.repro(), namespace)  # noqa: S102 - our own generated code
    expected = program(*program.inputs())
    assert torch.equal(namespace["out"], expected) or (
        expected.numel() == 0 and namespace["out"].shape == expected.shape
    )


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(program=programs(all_require_grad=True), data=st.data())
def test_split_uses_computes_the_same_value(program, data):
    leaf = data.draw(st.sampled_from(range(len(program.leaves))))
    split, copies = program.split_uses(leaf)
    assert len(copies) == max(1, program.uses.get(program.leaf_names[leaf], 0))
    assert split.uses.get(program.leaf_names[leaf], 0) <= 1
    assert torch.equal(split(*split.inputs()), program(*program.inputs()))


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(program=programs())
def test_view_ops_make_views(program):
    values = program.trace(*program.inputs())
    for step in program.steps:
        if step.is_view_op:
            assert values[step.out]._is_view(), step.code
