"""Meta-tests of the known-bug signatures and of how a rule's run sets their examples aside."""

import hypothesis
import pytest
import torch
from hypothesis import strategies as st

from specs.engine import known_bugs, registry
from specs.engine.expect import expect
from specs.generators.program import Program, Step, TensorSpec

SHARED = known_bugs.KNOWN_BUGS["shared-zero-dim-grad"]
#: Few examples: the rules below draw from two programs.
FEW = hypothesis.settings(
    max_examples=6,
    derandomize=True,
    database=None,
    deadline=None,
    phases=(hypothesis.Phase.explicit, hypothesis.Phase.generate),
)


def _program(code: str, shape=(), dtype=torch.float32, requires_grad=(True, True)) -> Program:
    numel = 1 if not shape else shape[0]
    leaves = tuple(
        TensorSpec(shape, dtype, "contiguous", (float(i + 1),) * numel, rg) for i, rg in enumerate(requires_grad)
    )
    return Program(leaves, (Step("out", "combine", ("x0", "x1"), code),), "out")


REACHING = _program("x0.sum() + x1.sum()")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("code", ["x0.sum() + x1.sum()", "torch.stack([x0, x1]).sum()"])
def test_two_zero_dim_leaves_summed_through_one_expand_reach_the_bug(code, dtype):
    assert known_bugs.reached({"program": _program(code, dtype=dtype), "k": 2}) is SHARED


def test_a_program_among_other_arguments_or_in_a_tuple_is_found():
    assert known_bugs.reached({"n": 3, "programs": (_program("x0 * x1"), REACHING)}) is SHARED


@pytest.mark.parametrize(
    "program",
    [
        pytest.param(_program("x0 + x1"), id="0-d, no expand"),
        pytest.param(_program("torch.sin(x0) + torch.cos(x1)"), id="0-d, own nodes"),
        pytest.param(_program("x0.sum() + x1.sum()", shape=(2,)), id="1-d"),
        pytest.param(
            _program("x0.sum() + x1.sum()", shape=(2,), dtype=torch.float64),
            id="1-d float64",
        ),
        pytest.param(_program("x0.sum() + x1.sum()", shape=(0,)), id="zero-size"),
        pytest.param(
            _program("x0.sum() + x1.sum()", shape=(0,), dtype=torch.float64),
            id="zero-size float64",
        ),
        pytest.param(
            _program("x0.sum() + x1.sum()", requires_grad=(True, False)),
            id="one leaf tracked",
        ),
    ],
)
def test_ordinary_programs_do_not_reach_it(program):
    assert not SHARED.matches({"program": program})


def test_arguments_without_a_program_reach_nothing():
    assert known_bugs.reached({"n": 1, "x": torch.ones(2), "items": [1, 2]}) is None


def test_a_program_that_cannot_run_backward_reaches_nothing():
    assert known_bugs.reached({"program": _program("(x0 * x1).detach()")}) is None


def test_a_bug_outside_its_releases_is_not_reached():
    fixed = known_bugs.KnownBug("fixed", "<1.13.1", "fixed long ago", lambda kwargs: True, "meta.rule")
    assert not fixed.affects() and not fixed.matches({})
    assert SHARED.affects("2.13.0") and SHARED.affects("1.13.1")


def test_the_signature_leaves_grad_mode_alone():
    with torch.no_grad():
        assert known_bugs.reached({"program": REACHING}) is SHARED
        assert not torch.is_grad_enabled()


def _sums_twice(program):
    """Two backward passes leave twice one pass's gradient."""
    leaves = program.inputs()
    for _ in range(2):
        program(*leaves).sum().backward()
    expect(
        leaves[0].grad.item() == 2.0,
        what="x0.grad after two passes",
        expected=2.0,
        observed=leaves[0].grad.item(),
    )


def _rule(rule_id, function, programs):
    return registry.Rule(
        id=rule_id,
        statement=function.__doc__,
        family=rule_id.split(".")[0],
        section=registry.SEED_SECTIONS[0],
        since="1.13.1",
        docs="x",
        function=function,
        given={"program": st.sampled_from(programs)},
    )


def test_a_rule_counts_examples_that_reach_a_known_bug_and_holds_on_the_others():
    result = _rule("meta.sums-twice", _sums_twice, [REACHING, _program("x0 + x1")]).run(FEW)
    assert result.known_bugs.get("shared-zero-dim-grad", 0) >= 1
    assert any("known bug shared-zero-dim-grad reached by" in seen for seen in result.observations)


def test_an_ordinary_failure_still_fails_the_rule():
    with pytest.raises(registry.RuleFailed, match="x0.grad after two passes"):
        _rule("meta.sums-twice", _sums_twice, [REACHING, _program("x0.sum() * 3.0 + x1")]).run(FEW)


def test_the_rule_that_states_the_bug_still_fails_on_it():
    with pytest.raises(registry.RuleFailed, match="x0.grad after two passes"):
        _rule(SHARED.rule, _sums_twice, [REACHING]).run(FEW)


def test_a_rule_whose_every_example_reaches_a_known_bug_says_so():
    with pytest.raises(registry.RuleFailed, match="reached known torch bugs"):
        _rule("meta.sums-twice", _sums_twice, [REACHING]).run(FEW)


def test_an_explicit_example_that_reaches_a_known_bug_is_counted_on_every_run():
    rule = _rule("meta.sums-twice", _sums_twice, [_program("x0 + x1")])
    rule.examples = (dict(program=REACHING),)
    assert rule.run(FEW).known_bugs == {"shared-zero-dim-grad": 1}


def test_the_example_found_under_a_random_seed_is_counted_for_its_rule():
    result = registry.get("retain-graph.unsaved-graph-may-repeat").run(FEW)
    assert result.known_bugs.get("shared-zero-dim-grad", 0) >= 1


def test_a_program_drawn_inside_the_check_is_seen_by_the_signature():
    def draws_then_sums_twice(data):
        _sums_twice(data.draw(st.sampled_from([REACHING, _program("x0 + x1")]), label="program"))

    draws_then_sums_twice.__doc__ = "Two backward passes leave twice one pass's gradient (a program drawn inside)."
    rule = registry.Rule(
        id="meta.draws-then-sums-twice",
        statement=draws_then_sums_twice.__doc__,
        family="meta",
        section=registry.SEED_SECTIONS[0],
        since="1.13.1",
        docs="x",
        function=draws_then_sums_twice,
        given={"data": st.data()},
    )
    assert rule.run(FEW).known_bugs.get("shared-zero-dim-grad", 0) >= 1


GIVEN = known_bugs.KNOWN_BUGS["given-gradient-becomes-grad"]


@pytest.mark.parametrize(
    "code, shape, reaches",
    [
        ("x0.view(2, 1) + 0 * x1", (2,), False),  # the addition makes a new gradient for x0's view
        ("x0.view(2, 1)", (2,), True),
        ("x0.unsqueeze(0)", (2,), True),
        ("x0.sum() + x1.sum()", (), True),
        ("x0 * x1", (2,), False),
        ("x0.sum() + x1.sum()", (2,), False),
    ],
)
def test_a_gradient_that_is_a_view_of_the_given_one_reaches_the_aliasing_bug(code, shape, reaches):
    assert GIVEN.matches({"program": _program(code, shape=shape)}) is reaches


def test_the_rule_whose_statement_a_bug_breaks_gets_that_bug_first():
    both = {"program": REACHING}  # two 0-d leaves through sums: shared .grad, and each a view of g
    assert known_bugs.reached(both, GIVEN.rule) is GIVEN
    assert known_bugs.reached(both, SHARED.rule) is SHARED


def test_a_case_tuple_with_a_program_field_is_searched():
    from specs.families.accumulation import GivenGradients

    case = GivenGradients(_program("x0.view(2, 1)", shape=(2,)), (0,), ())
    assert known_bugs.reached({"case": case}) is GIVEN
