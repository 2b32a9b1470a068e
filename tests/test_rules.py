"""Runs every registered rule: the specification itself."""
import warnings

import pytest

from specs.engine import registry
from specs.engine.expect import Violation

RULES = registry.rules()


def test_family_modules_import():
    assert not registry.IMPORT_ERRORS, "family modules failed to import: " + "; ".join(
        f"specs.{module}: {error}" for module, error in sorted(registry.IMPORT_ERRORS.items()))
    assert registry.FAMILIES, "no family module was found under specs/"


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_rule(rule, record_rule):
    reason = rule.not_applicable()
    if reason:
        record_rule(rule, "not-applicable", reason=reason)
        pytest.skip(f"{rule.id}: {reason}")
    known = rule.known_failure()
    try:
        result = rule.run()
    except registry.RuleFailed as failure:
        if known:
            record_rule(rule, "known-failure", failure=str(failure)[:4000], known=known)
            pytest.xfail(f"known failure on this torch ({known}); the report holds the details")
        record_rule(rule, "failed", failure=str(failure)[:4000], observations=[])
        pytest.fail(str(failure), pytrace=not isinstance(failure.cause, Violation))
    if known:
        warnings.warn(f"{rule.id} is listed in specs/known-failures.txt for this torch but held: "
                      f"remove or narrow the entry ({known})", UserWarning)
    record_rule(rule, "passed", examples=result.examples, seconds=round(result.seconds, 4),
                observations=result.observations)
