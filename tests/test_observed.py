"""Observations on canonical examples: what record() and the contracts leave in a run's result."""

import warnings

import hypothesis
import torch
from hypothesis import strategies as st

from specs.engine import registry
from specs.engine.contracts import ErrorContract, Phase, WarningContract

SETTINGS = hypothesis.settings(max_examples=3, deadline=None, derandomize=True, database=None)
NEEDS_ONE_ELEMENT = ErrorContract(
    RuntimeError, r"grad can be implicitly created only for scalar outputs", Phase.BACKWARD
)
SAYS_HELLO = WarningContract(UserWarning, r"hello")


def _rule(function, examples):
    return registry.Rule(
        id="test.observed",
        statement="Observed.",
        family="test",
        section=registry.SEED_SECTIONS[0],
        since="1.13.1",
        docs="x",
        function=function,
        given={"n": st.integers(2, 5)},
        examples=examples,
    )


def _check(n):
    x = torch.ones(n, requires_grad=True)
    NEEDS_ONE_ELEMENT.check(lambda: x * 2)
    SAYS_HELLO.check(lambda: warnings.warn(f"hello {n} times", UserWarning))
    registry.record("n squared", n * n)


def test_contracts_record_type_template_and_phase_on_canonical_examples_only():
    canonical = {"n": 3}
    result = _rule(_check, (canonical,)).run(SETTINGS)
    assert result.observed == {
        "raises backward": {
            "type": "RuntimeError",
            "phase": "backward",
            "template": "grad can be implicitly created only for scalar outputs",
        },
        "warns UserWarning": {"type": "UserWarning", "template": "hello # times"},
        "n squared": 9,  # from the canonical example, not from the generated ones
    }


def test_without_canonical_examples_nothing_is_recorded():
    assert _rule(_check, ()).run(SETTINGS).observed == {}
