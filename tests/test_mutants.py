"""The mutation table's machinery: enough mutants over every family, and the table built from their runs.

The mutants themselves run only under ``nox -s mutants`` (each in a fresh process, minutes in all).
"""

import re

from specs import mutants
from specs.engine import registry
from specs.reporting import mutants_page


def test_at_least_thirty_mutants_over_every_family():
    assert len(mutants.MUTANTS) >= 30
    registry.load_all()
    covered = {family for m in mutants.MUTANTS.values() for family in m.families}
    assert covered == set(registry.FAMILIES), f"families no mutant concerns: {set(registry.FAMILIES) - covered}"
    for m in mutants.MUTANTS.values():
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", m.name) and m.what.strip() and callable(m.apply)


def test_the_table_credits_only_rules_that_hold_without_the_mutant(monkeypatch):
    first, second = list(mutants.MUTANTS)[:2]
    runs = {
        mutants.CONTROL: {"mutant": "none", "failed": {"a.broken": "fails anyway"}, "held": ["a.one"]},
        first: {"mutant": first, "failed": {"a.one": "Violation: x", "a.broken": "fails anyway"}, "held": []},
        second: {"mutant": second, "failed": {"a.broken": "fails anyway"}, "held": ["a.one"]},
    }
    monkeypatch.setattr(
        mutants, "_run_in_subprocess", lambda name, examples, timeout: {**runs[name], "wall_seconds": 1.0}
    )
    data = mutants.run_all([first, second], jobs=2)
    assert data["control_failures"] == ["a.broken"]
    assert [row["caught_by"] for row in data["mutants"]] == [["a.one"], []]
    assert (data["killed"], data["total"], data["kill_rate"]) == (1, 2, 0.5)
    assert data["mutants"][0]["evidence"] == {"a.one": "Violation: x"}
    table = mutants.format_table(data)
    assert "killed 1 of 2 (50%)" in table and "NOT CAUGHT" in table


def test_the_page_lists_every_mutant_and_what_caught_it(tmp_path):
    (tmp_path / "reports").mkdir()
    assert "No mutation run" in mutants_page.write(tmp_path).read_text()
    data = {
        "torch": "2.13.0",
        "examples_per_rule": 8,
        "killed": 1,
        "total": 2,
        "kill_rate": 0.5,
        "wall_seconds": 60,
        "jobs": 2,
        "control_failures": [],
        "mutants": [
            {"mutant": "relu-x", "what": "relu_ at 0", "caught_by": ["kinks.relu-family-at-zero"]},
            {"mutant": "b", "what": "w", "caught_by": [], "survives": "no rule reads it"},
        ],
    }
    (tmp_path / "reports" / "mutants.json").write_text(__import__("json").dumps(data))
    text = mutants_page.write(tmp_path).read_text()
    assert text.startswith(".. _what-the-spec-catches:\n\nWhat the spec catches\n")
    assert "``kinks.relu-family-at-zero``" in text and "**not caught**: no rule reads it" in text
    assert "relu\\_ at 0" in text and "1 of 2 mutants were caught (50%)" in text
