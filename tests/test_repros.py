"""Every repro a rule would print is a script that runs on its own and shows what the check observed.

Each rule is run on its explicit examples and one generated example while its assertion helpers
and contracts record the repro they are given (the check itself is unchanged, so it still
passes).  Each distinct repro is then executed in a fresh namespace, as a user pasting it would:
it must run without error and print something; a repro given to an error contract must raise
that contract's error instead, and one given to a warning contract must emit the warning.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import re
import warnings

import hypothesis
import pytest
import torch

from specs.engine import contracts, registry
from specs.engine import expect as expectations
from specs.engine.script import standalone
from specs.engine.state import Isolated

SETTINGS = hypothesis.settings(
    max_examples=1,
    phases=(hypothesis.Phase.explicit, hypothesis.Phase.generate),  # a rule that fails is not shrunk here
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
#: repros executed per rule (the first distinct ones seen: the explicit examples come first)
PER_RULE = 2

#: Families whose repros are not executed here, with the reason.
SLOW_FAMILIES = {
    "compiled": "torch.compile takes seconds per example (17 s for this family here), beyond this test's budget"
}

RULES = registry.rules()


def _params():
    for rule in RULES:
        marks = []
        if rule.family in SLOW_FAMILIES:
            marks.append(pytest.mark.skip(reason=SLOW_FAMILIES[rule.family]))
        yield pytest.param(rule, id=rule.id, marks=marks)


class Captured:
    """The distinct repros a rule passed to its checks, with the contract each went to (or None)."""

    def __init__(self) -> None:
        self.repros: dict[str, object] = {}

    def add(self, repro, contract=None) -> None:
        if repro:
            self.repros.setdefault(standalone(str(repro)), contract)


def _capture(monkeypatch: pytest.MonkeyPatch, module, captured: Captured) -> None:
    """Make ``module``'s assertion helpers and every contract record the repro they are given."""

    def recording_expect(condition, **kwargs):
        captured.add(kwargs.get("repro"))
        return expectations.expect(condition, **kwargs)

    def recording_expect_close(actual, expected, **kwargs):
        captured.add(kwargs.get("repro"))
        return expectations.expect_close(actual, expected, **kwargs)

    if hasattr(module, "expect"):
        monkeypatch.setattr(module, "expect", recording_expect)
    if hasattr(module, "expect_close"):
        monkeypatch.setattr(module, "expect_close", recording_expect_close)
    for cls, names in ((contracts.ErrorContract, ("check",)), (contracts.WarningContract, ("check", "check_absent"))):
        for name in names:
            original = getattr(cls, name)

            def recording(self, *args, _original=original, _absent=(name == "check_absent"), **kwargs):
                repro = inspect.signature(_original).bind(self, *args, **kwargs).arguments.get("repro")
                captured.add(repro, None if _absent else self)
                return _original(self, *args, **kwargs)

            monkeypatch.setattr(cls, name, recording)


@contextlib.contextmanager
def _restoring_global_state():
    """A repro is a script of its own: grad mode, anomaly mode or warn-always it sets must not outlive it here."""
    warn_always = torch.is_warn_always_enabled()
    try:
        with Isolated():
            yield
    finally:
        torch.set_warn_always(warn_always)


def _execute(repro: str, contract) -> None:
    printed = io.StringIO()
    with _restoring_global_state(), warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(printed):
        warnings.simplefilter("always")
        try:
            exec(compile(repro, "<repro>", "exec"), {"__name__": "__repro__"})  # noqa: S102 - our own repros
        except Exception as exc:  # noqa: BLE001 - any error of the repro is classified below
            expected_error = isinstance(contract, contracts.ErrorContract)
            assert expected_error, f"the repro raised {type(exc).__name__}: {exc}:\n{repro}"
            assert isinstance(exc, contract.exception) and re.search(contract.pattern, str(exc)), (
                f"the repro raised {type(exc).__name__}: {exc}, not {contract.describe()}:\n{repro}"
            )
            return
    assert not isinstance(contract, contracts.ErrorContract), (
        f"the repro ran without raising {contract.describe()}:\n{repro}"
    )
    if isinstance(contract, contracts.WarningContract):
        assert any(
            issubclass(w.category, contract.category) and re.search(contract.pattern, str(w.message)) for w in caught
        ), f"the repro did not emit {contract.describe()}:\n{repro}"
        return
    assert printed.getvalue().strip(), f"the repro printed nothing (it should show what the check observed):\n{repro}"


@pytest.mark.parametrize("rule", list(_params()))
def test_repro_runs(rule, monkeypatch):
    reason = rule.not_applicable()
    if reason:
        pytest.skip(reason)
    captured = Captured()
    _capture(monkeypatch, __import__(rule.module, fromlist=["_"]), captured)
    with contextlib.suppress(registry.RuleFailed):  # tests/test_rules.py reports it; its repros still count
        rule.run(SETTINGS)
    assert captured.repros, f"{rule.id} gave no repro to any of its checks"
    family = registry.FAMILIES[rule.family]
    try:
        for repro, contract in list(captured.repros.items())[:PER_RULE]:
            _execute(repro, contract)
    finally:  # the repros may start what the family's checks share (its worker processes)
        if family.teardown is not None:
            family.teardown()
