"""What the gallery uses to show a rule: run the registered check and say what it checked.

``law("family.rule-id")`` is the same check the test suite runs, with a small, derandomized
number of generated examples so the docs build is quick and reproducible.
"""
from __future__ import annotations

import hypothesis

from specs.engine import registry, versions

DOCS_SETTINGS = hypothesis.settings(
    max_examples=10,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=list(hypothesis.HealthCheck),
)


def law(rule_id: str, show_example: bool = True) -> registry.RunResult | None:
    """Check rule ``rule_id`` now and print its statement and what it was checked on."""
    rule = registry.get(rule_id)
    print(f"Rule {rule.id} (since torch {rule.since})")
    print(f"  {rule.statement}")
    reason = rule.not_applicable()
    if reason:
        print(f"  not applicable here: {reason}")
        return None
    known = rule.known_failure()
    try:
        result = rule.run(DOCS_SETTINGS)
    except registry.RuleFailed as failure:
        if not known:
            raise
        print(f"  KNOWN FAILURE on torch {versions.installed_text()}: {known}")
        print("    " + "\n    ".join(str(failure).splitlines()[2:6]))
        return None
    if known:
        print(f"  (listed as a known failure for this torch, but it held: {known})")
    cases = "generated cases" if rule.given else "run"
    print(f"  holds: checked on {result.examples} {cases}.")
    if show_example and result.sample:
        for name, value in result.sample.items():
            if hasattr(value, "repro"):
                print(f"  The largest generated {name}:")
                print("    " + value.source().rstrip().replace("\n", "\n    "))
                break
    return result
