"""Meta-tests of the registry: every rule is well-formed, documented and checkable."""

import re
from pathlib import Path

import hypothesis
import pytest

from specs.engine import registry, versions
from specs.engine.contracts import ErrorContract, WarningContract

ROOT = Path(__file__).resolve().parents[1]
RULES = registry.rules()
IDS = [r.id for r in RULES]


def test_registry_is_not_empty():
    assert len(RULES) >= 20
    assert {"leaves", "accumulation"} <= {r.family for r in RULES}


def _rule_is_well_formed(rule):
    assert registry.ID_PATTERN.match(rule.id), f"malformed rule id {rule.id!r}"
    assert rule.family in registry.FAMILIES, f"{rule.id}: module {rule.module} declares no FAMILY {rule.family!r}"
    module = rule.module.rsplit(".", 1)[-1]
    assert module.replace("_", "-") == rule.family, f"{rule.id} is registered in specs/{module}.py"
    assert rule.section in registry.SEED_SECTIONS, f"{rule.id}: unknown seed section {rule.section!r}"
    versions.parse(rule.since)
    for change in rule.history:
        versions.parse(change.version)
        assert change.what.strip()


def _statement_is_one_sentence(rule):
    statement = rule.statement
    assert statement.endswith("."), f"{rule.id}: {statement!r}"
    # One sentence: no full stop followed by a capitalised word inside it (code like `.grad` is fine).
    assert not re.search(r"[.!?]\s+[A-Z]", statement[:-1]), f"{rule.id} has more than one sentence"


def _rule_has_a_check_over_generated_cases(rule):
    assert callable(rule.function)
    assert rule.given, f"{rule.id} is checked on a hand-picked example only; give it strategies"
    for name, strategy in rule.given.items():
        assert isinstance(strategy, hypothesis.strategies.SearchStrategy), f"{rule.id}: {name} is no strategy"


def _rule_is_shown_in_its_family_page(rule):
    family = registry.FAMILIES[rule.family]
    page = ROOT / "gallery" / family.gallery
    assert page.is_file(), f"{rule.id}: gallery page {family.gallery} does not exist"
    text = page.read_text()
    assert re.search(rf"^# \.\. _{re.escape(rule.docs)}:$", text, re.M), (
        f"{rule.id}: its docs label {rule.docs!r} is not a section label in {family.gallery}"
    )
    assert f'law("{rule.id}")' in text, f"{rule.id} is not checked on its page {family.gallery}"


def _contracts_are_valid(rule):
    for contract in rule.contracts:
        assert isinstance(contract, (ErrorContract, WarningContract))
        re.compile(contract.pattern)


#: the checks each rule must pass; one test per rule runs them all (five tests per rule would add
#: ~1,200 items, ~4 s of pytest overhead, to every run)
METADATA_CHECKS = (
    _rule_is_well_formed,
    _statement_is_one_sentence,
    _rule_has_a_check_over_generated_cases,
    _rule_is_shown_in_its_family_page,
    _contracts_are_valid,
)


@pytest.mark.parametrize("rule", RULES, ids=IDS)
def test_rule_is_well_formed_documented_and_checkable(rule):
    for check in METADATA_CHECKS:
        check(rule)


def test_duplicate_ids_are_refused():
    existing = RULES[0]
    with pytest.raises(registry.RegistryError, match="registered twice"):
        registry.rule(existing.id, section=existing.section, docs=existing.docs)(lambda: None)


@pytest.mark.parametrize(
    "bad", ["leaves", "Leaves.x", "leaves.X", "leaves..x", "leaves.x-", "leaves.a.b", "leaves.a_b", "-leaves.a"]
)
def test_malformed_ids_are_recognised(bad):
    assert not registry.ID_PATTERN.match(bad)


def test_unknown_rule_lookup_is_a_clear_error():
    with pytest.raises(registry.RegistryError, match="no rule 'nope.nothing'"):
        registry.get("nope.nothing")


def test_rules_from_a_newer_torch_are_not_applicable(monkeypatch):
    rule = RULES[0]
    monkeypatch.setattr(rule, "since", "99.0")
    assert "needs torch >= 99.0" in rule.not_applicable()
    monkeypatch.setattr(rule, "since", "1.13.1")
    monkeypatch.setattr(rule, "requires", (registry.Feature("a missing feature", lambda: False),))
    assert "lacks a missing feature" in rule.not_applicable()


def test_catalogue_lists_every_rule(tmp_path):
    from specs.reporting import catalogue

    text = catalogue.render(ROOT)
    for rule in RULES:
        assert f":ref:`{rule.id} <" in text
        assert f":ref:`{rule.docs}`" in text


def test_known_failures_name_registered_rules():
    known = registry.known_failures()
    for entry in known:
        assert entry.rule in registry.REGISTRY, (
            f"known-failures.txt:{entry.line} names {entry.rule!r}, which is not a registered rule"
        )
        assert entry.reason.strip()


@pytest.mark.parametrize("line", ["just-an-id", "a.b >=banana : why", "a.b >=2.0"])
def test_malformed_known_failure_lines_are_refused(tmp_path, line):
    path = tmp_path / "known.txt"
    path.write_text(f"# comment\n{line}\n")
    with pytest.raises(registry.RegistryError, match="known.txt:2"):
        registry.known_failures(path)
