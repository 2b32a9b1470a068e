"""The coverage map names only registered rules, and its fractions are computed from it."""
from pathlib import Path

import pytest

from specs.engine import registry
from specs.reporting import coverage

ROOT = Path(__file__).resolve().parents[1]


def test_every_rule_named_in_the_map_is_registered():
    behaviours = coverage.load()  # raises CoverageMapError naming the first unknown rule
    known = {r.id for r in registry.rules()}
    named = {i for b in behaviours for i in b.rule_ids}
    assert named <= known
    assert behaviours and all(b.references for b in behaviours), "every behaviour cites a reference"


def test_covered_fraction_is_reported_and_did_not_drop():
    behaviours = coverage.load()
    now, before = coverage.summary(behaviours), coverage.summary(behaviours, before=True)
    print(before.line("before the api-c branch"))
    print(now.line("now"))
    assert now.total == before.total == now.covered + now.partial + now.planned + now.missing
    assert 0 < now.fraction <= 1
    assert now.covered >= before.covered


def test_an_unknown_rule_is_refused(tmp_path):
    path = tmp_path / "map.toml"
    path.write_text('[[theme]]\nname = "T"\n[[theme.behaviour]]\nwhat = "w"\nreferences = ["r"]\n'
                    'status = "covered"\nrules = ["nope.nothing"]\n')
    with pytest.raises(coverage.CoverageMapError, match="no registered rule 'nope.nothing'"):
        coverage.load(path)


@pytest.mark.parametrize("entry, message", [
    ('status = "done"', "status 'done'"),
    ('status = "missing"', "must say why"),
    ('status = "covered"', "must name the rules"),
])
def test_malformed_entries_are_refused(tmp_path, entry, message):
    path = tmp_path / "map.toml"
    path.write_text(f'[[theme]]\nname = "T"\n[[theme.behaviour]]\nwhat = "w"\nreferences = ["r"]\n{entry}\n')
    with pytest.raises(coverage.CoverageMapError, match=message):
        coverage.load(path)


def test_a_family_row_counts_its_referenced_rules_once(tmp_path):
    path = tmp_path / "map.toml"
    path.write_text('[[theme]]\nname = "T"\n'
                    '[[theme.behaviour]]\nwhat = "all"\nreferences = ["r"]\nstatus = "covered"\nrules = ["a.*"]\n'
                    '[[theme.behaviour]]\nwhat = "again"\nreferences = ["r"]\nstatus = "covered"\nrules = ["a.x"]\n'
                    '[[theme.behaviour]]\nwhat = "gap"\nreferences = ["r"]\nstatus = "planned: b"\n')
    behaviours = coverage.load(path, known={"a.x": True, "a.y": True, "a.z": False})
    assert [b.weight for b in behaviours] == [2, 1, 1]
    result = coverage.summary(behaviours)
    assert (result.covered, result.planned, result.total) == (3, 1, 4)


def test_the_coverage_page_is_written(tmp_path):
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "coverage-map.toml").write_text(coverage.MAP_FILE.read_text())
    page = coverage.write(tmp_path)
    text = page.read_text()
    assert page == tmp_path / "docs" / "generated" / "coverage.rst"
    assert text.startswith(".. _coverage:") and "behaviours covered" in text
    assert ":ref:`distributed.unused-parameters <rule-distributed-unused-parameters>`" in text
