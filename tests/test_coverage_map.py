"""The coverage map names only registered rules, and its figure counts one behaviour per row."""

from pathlib import Path

import pytest

from specs.engine import registry
from specs.reporting import coverage

ROOT = Path(__file__).resolve().parents[1]
ROW = '[[theme]]\nname = "T"\n[[theme.behaviour]]\nwhat = "w"\nreferences = ["r"]\n'


def test_every_rule_named_in_the_map_is_registered():
    behaviours = coverage.load()  # raises CoverageMapError naming the first unknown rule
    known = {r.id for r in registry.rules()}
    named = {i for b in behaviours for i in b.rule_ids}
    assert named <= known
    assert behaviours and all(b.references for b in behaviours), "every behaviour cites a reference"
    assert all(b.status in coverage.STATUSES for b in behaviours), "no behaviour is left 'planned'"


def test_covered_fraction_is_reported_and_did_not_drop():
    behaviours = coverage.load()
    now, before = coverage.summary(behaviours), coverage.summary(behaviours, before=True)
    print(before.line("at the coverage study"))
    print(now.line("now"))
    counted = [b for b in behaviours if not b.extra]
    assert now.total == before.total == len(counted) == now.covered + now.partial + now.missing
    assert now.fraction == (now.covered + coverage.PARTIAL_WEIGHT * now.partial) / now.total
    assert 0 < before.fraction <= now.fraction <= 1
    assert now.covered >= before.covered


def test_an_unknown_rule_is_refused(tmp_path):
    path = tmp_path / "map.toml"
    path.write_text(ROW + 'status = "covered"\nrules = ["nope.nothing"]\n')
    with pytest.raises(coverage.CoverageMapError, match="no registered rule 'nope.nothing'"):
        coverage.load(path)


@pytest.mark.parametrize(
    "entry, message",
    [
        ('status = "done"', "status 'done'"),
        ('status = "planned: graph"', "status 'planned: graph'"),
        ('status = "missing"', "must say why"),
        ('status = "covered"', "must name the rules"),
        ('status = "covered"\nrules = ["a.x"]\npartial = true', "partial behaviour must say why"),
        ('status = "missing"\npartial = true\nwhy = "w"', "partial = true belongs to a covered behaviour"),
        ('status = "covered"\nrules = ["a.x"]\nbefore = "planned"', "before 'planned'"),
    ],
)
def test_malformed_entries_are_refused(tmp_path, entry, message):
    path = tmp_path / "map.toml"
    path.write_text(ROW + entry + "\n")
    with pytest.raises(coverage.CoverageMapError, match=message):
        coverage.load(path, known=["a.x"])


def test_each_row_is_one_behaviour_and_a_partial_one_counts_half(tmp_path):
    path = tmp_path / "map.toml"
    path.write_text(
        '[[theme]]\nname = "T"\n'
        '[[theme.behaviour]]\nwhat = "all"\nreferences = ["r"]\nstatus = "covered"\nrules = ["a.*"]\n'
        '[[theme.behaviour]]\nwhat = "part"\nreferences = ["r"]\nstatus = "covered"\nrules = ["a.x"]\n'
        'partial = true\nwhy = "half of it"\nbefore = "missing"\n'
        '[[theme.behaviour]]\nwhat = "gap"\nreferences = ["r"]\nstatus = "missing"\nwhy = "none yet"\n'
        '[[theme]]\nname = "Beyond"\nextra = true\n'
        '[[theme.behaviour]]\nwhat = "more"\nreferences = ["r"]\nstatus = "covered"\nrules = ["a.y"]\n'
    )
    behaviours = coverage.load(path, known=["a.x", "a.y", "a.z"])
    assert behaviours[0].rule_ids == ("a.x", "a.y", "a.z")
    now, before = coverage.summary(behaviours), coverage.summary(behaviours, before=True)
    assert (now.total, now.covered, now.partial, now.missing) == (3, 1, 1, 1)
    assert now.fraction == pytest.approx(1.5 / 3)
    assert (before.covered, before.partial, before.missing) == (1, 0, 2)


def test_the_coverage_page_is_written(tmp_path):
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "coverage-map.toml").write_text(coverage.MAP_FILE.read_text())
    page = coverage.write(tmp_path)
    text = page.read_text()
    assert page == tmp_path / "docs" / "generated" / "coverage.rst"
    assert text.startswith(".. _coverage:") and "behaviours:" in text and "partial (was missing)" in text
    assert ":ref:`distributed.unused-parameters <rule-distributed-unused-parameters>`" in text
