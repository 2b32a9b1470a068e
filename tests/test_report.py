"""The JSON report: what a run writes, and clear errors for files that are not reports."""

import json

import pytest

from specs.reporting import report


def _records():
    return [
        report.RuleRecord("a.one", "a", "One.", "1.13.1", "passed", examples=10, known_bugs={"some-bug": 2}),
        report.RuleRecord("a.two", "a", "Two.", "2.1", "not-applicable", reason="needs torch >= 2.1"),
        report.RuleRecord("b.three", "b", "Three.", "1.13.1", "failed", failure="boom"),
    ]


def test_report_round_trip(tmp_path):
    data = report.build(_records(), "ci", registered=3)
    path = report.write(data, tmp_path / "r" / "report.json")
    loaded = report.load(path)
    assert loaded["complete"] is True
    assert loaded["environment"]["profile"] == "ci" and loaded["environment"]["torch"]
    assert loaded["summary"]["a"] == {
        "passed": 1,
        "failed": 0,
        "known-failure": 0,
        "not-applicable": 1,
        "examples": 10,
        "known-bug examples": 2,
    }
    assert loaded["rules"][0]["known_bugs"] == {"some-bug": 2}
    assert [r["id"] for r in loaded["rules"]] == ["a.one", "a.two", "b.three"]


def test_partial_runs_are_marked(tmp_path):
    assert report.build(_records(), "ci", registered=5)["complete"] is False


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "does not exist"),
        ("{not json", "not readable JSON"),
        ("[]", "not an autograd-spec report"),
        (json.dumps({"schema": "other"}), "not an autograd-spec report"),
        (json.dumps({"schema": report.SCHEMA, "rules": []}), "lacks its 'environment'"),
        (json.dumps({"schema": report.SCHEMA, "environment": {}, "rules": []}), "which torch"),
        (json.dumps({"schema": report.SCHEMA, "environment": {"torch": "banana"}, "rules": []}), "not a torch release"),
        (
            json.dumps(
                {
                    "schema": report.SCHEMA,
                    "environment": {"torch": "2.13.0"},
                    "rules": [{"id": "x", "outcome": "great"}],
                }
            ),
            "rule entry 0 is malformed",
        ),
    ],
)
def test_bad_report_files_get_clear_errors(tmp_path, content, message):
    path = tmp_path / "report.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(report.ReportError, match=message):
        report.load(path)


def test_summary_table_lists_every_family():
    lines = report.format_summary(report.summary(_records()))
    assert lines[0].split()[:5] == ["family", "passed", "failed", "known", "n/a"]
    assert any(line.startswith("a ") for line in lines) and any(line.startswith("b ") for line in lines)


@pytest.mark.parametrize(
    "torch_version, branch",
    [
        ("1.13.1", "before 2.0"),
        ("2.0.0", "since 2.0"),
        ("2.1.2", "since 2.0"),
        ("2.13.0+cpu", "since 2.13"),
        ("2.15.0", "since 2.13"),
    ],
)
def test_history_branch_is_the_newest_change_at_or_before_the_release(torch_version, branch):
    history = [{"version": "2.13", "what": "b"}, {"version": "2.0", "what": "a"}]
    assert report.history_branch(history, torch_version) == branch


def test_history_branch_of_a_rule_without_history_is_empty():
    assert report.history_branch([], "2.13.0") == ""


def test_observed_values_and_branch_are_written_and_read(tmp_path):
    record = report.RuleRecord(
        "a.one",
        "a",
        "One.",
        "1.13.1",
        "passed",
        examples=3,
        observed={"left": "None", "raises backward": {"type": "RuntimeError", "template": "x #", "phase": "backward"}},
        history=[{"version": "2.0", "what": "w"}],
        history_branch="since 2.0",
    )
    loaded = report.load(report.write(report.build([record], "ci", registered=1), tmp_path / "r.json"))
    assert loaded["schema"] == "autograd-spec/report/2"
    assert loaded["rules"][0]["observed"]["left"] == "None" and loaded["rules"][0]["history_branch"] == "since 2.0"


def test_a_malformed_observed_section_is_an_error(tmp_path):
    data = {
        "schema": report.SCHEMA,
        "environment": {"torch": "2.13.0"},
        "rules": [{"id": "a.one", "outcome": "passed", "observed": [1, 2]}],
    }
    (tmp_path / "r.json").write_text(json.dumps(data))
    with pytest.raises(report.ReportError, match="'observed' is not a mapping"):
        report.load(tmp_path / "r.json")
