"""Meta-tests of the contracts, expectations, oracles, isolation and version handling."""

import warnings

import pytest
import torch
from hypothesis import strategies as st

from specs.engine import registry, versions
from specs.engine.contracts import ErrorContract, Phase, WarningContract
from specs.engine.expect import EXACT, Tolerance, Violation, expect, expect_close
from specs.engine.oracles import finite_difference_gradients
from specs.engine.state import Isolated

AT_BACKWARD = ErrorContract(RuntimeError, r"does not require grad", Phase.BACKWARD)


def _no_graph():
    return torch.ones(2).sum()


def test_contract_accepts_the_declared_error_and_returns_the_message():
    message = AT_BACKWARD.check(_no_graph)
    assert "element 0" in message


def test_contract_rejects_an_error_in_another_phase():
    with pytest.raises(Violation, match="raised while recording"):
        AT_BACKWARD.check(lambda: torch.zeros(2, dtype=torch.long, requires_grad=True))


def test_contract_rejects_a_wrong_message_or_type():
    with pytest.raises(Violation, match="wrong error at backward"):
        ErrorContract(RuntimeError, r"something else", Phase.BACKWARD).check(_no_graph)
    with pytest.raises(Violation, match="wrong error at backward"):
        ErrorContract(TypeError, r"does not require grad", Phase.BACKWARD).check(_no_graph)


def test_contract_rejects_silence():
    x = torch.ones(2, requires_grad=True)
    with pytest.raises(Violation, match="nothing was raised at backward"):
        AT_BACKWARD.check(lambda: (x * 2).sum())


def test_contract_checks_the_second_backward():
    x = torch.ones(2, requires_grad=True)
    twice = ErrorContract(RuntimeError, r"second time", Phase.SECOND_BACKWARD)
    twice.check(lambda: (x.exp()).sum())
    with pytest.raises(Violation, match="nothing was raised at a second backward"):
        twice.check(
            lambda: (x.exp()).sum(),
            backward=lambda out: out.backward(retain_graph=True),
            again=lambda out: out.backward(retain_graph=True),
        )


def test_warning_contract():
    contract = WarningContract(UserWarning, r"careful")
    assert contract.check(lambda: warnings.warn("be careful") or 3) == 3
    with pytest.raises(Violation, match="no UserWarning"):
        contract.check(lambda: None)
    with pytest.raises(Violation, match="unexpected warning"):
        contract.check_absent(lambda: warnings.warn("careful now"))


def test_tolerance_reports_the_first_mismatch():
    tol = Tolerance(1e-3, 0.0, "test")
    assert tol.mismatch(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0005])) is None
    problem = tol.mismatch(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.1]))
    assert "1 of 2 entries differ; first at (1,)" in problem
    assert "shape" in tol.mismatch(torch.zeros(2), torch.zeros(3))
    assert EXACT.mismatch(torch.tensor([float("nan")]), torch.tensor([float("nan")])) is None


def test_violation_message_has_expected_observed_and_repro():
    with pytest.raises(Violation) as info:
        expect(False, what="the claim", expected="this", observed="that", repro="print('repro')")
    text = str(info.value)
    assert "the claim" in text and "expected: this" in text and "observed: that" in text
    assert "print('repro')" in text
    with pytest.raises(Violation, match="x.grad"):
        expect_close(torch.zeros(1), torch.ones(1), tolerance=EXACT, what="x.grad")


def test_finite_differences_match_an_analytic_derivative():
    x = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    (grad,) = finite_difference_gradients(lambda t: torch.sin(t) * t, [x], [0])
    assert torch.allclose(grad, torch.cos(x) * x + torch.sin(x), atol=1e-8)


def test_isolation_reports_and_undoes_leaks():
    with Isolated() as guard:
        torch.set_grad_enabled(False)
        torch.set_default_dtype(torch.float64)
        torch.manual_seed(123)
    assert torch.is_grad_enabled() and torch.get_default_dtype() == torch.float32
    assert any("grad_enabled" in leak for leak in guard.leaks)
    assert any("default_dtype" in leak for leak in guard.leaks)


def test_a_rule_that_leaks_state_fails():
    def leaky(n):
        """Leaks."""
        torch.set_grad_enabled(False)

    rule = registry.Rule(
        id="meta.leaky",
        statement="Leaks.",
        family="meta",
        section=registry.SEED_SECTIONS[0],
        since="1.13.1",
        docs="x",
        function=leaky,
        given={"n": st.integers(0, 1)},
    )
    with pytest.raises(registry.RuleFailed, match="left global autograd state changed"):
        rule.run()
    assert torch.is_grad_enabled()


def test_a_failing_rule_explains_itself():
    def wrong(n):
        """Zero is positive."""
        expect(n > 0, what="n is positive", expected="> 0", observed=n, repro=f"n = {n}")

    rule = registry.Rule(
        id="meta.wrong",
        statement="Zero is positive.",
        family="meta",
        section=registry.SEED_SECTIONS[0],
        since="1.13.1",
        docs="x",
        function=wrong,
        given={"n": st.integers(0, 10)},
    )
    with pytest.raises(registry.RuleFailed) as info:
        rule.run()
    text = str(info.value)
    assert "Rule meta.wrong does not hold" in text and "statement: Zero is positive." in text
    assert "expected: > 0" in text and "observed: 0" in text and "n = 0" in text
    assert "pytest --pyargs specs -k test_meta__wrong" in text


@pytest.mark.parametrize(
    "text, parsed",
    [("2.13.0+cpu", (2, 13, 0)), ("1.13.1", (1, 13, 1)), ("2.15", (2, 15, 0)), ("2.6.0.dev20250101", (2, 6, 0))],
)
def test_versions_parse(text, parsed):
    assert versions.parse(text) == parsed


@pytest.mark.parametrize("bad", ["latest", "2", "2.x.1", "", "1.12.1", "2.13.0+cpu"])
def test_bad_release_requests_are_refused(bad):
    with pytest.raises(versions.UnknownVersion):
        versions.check_release(bad)


@pytest.mark.parametrize(
    "spec, version, expected",
    [
        (">=1.13.1", "2.13.0+cpu", True),
        (">=2.0,<2.14", "2.13.0", True),
        (">=2.0,<2.13", "2.13.0", False),
        ("==2.15.0", "2.15.0", True),
        ("<2.0", "1.13.1", True),
        ("", "2.13.0", True),
    ],
)
def test_version_specs(spec, version, expected):
    assert versions.matches(spec, version) is expected


def test_bad_version_spec_is_refused():
    with pytest.raises(versions.UnknownVersion):
        versions.matches("~=2.0", "2.13.0")
