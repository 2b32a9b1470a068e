"""The JSON report: what a run writes, and clear errors for files that are not reports."""
import json

import pytest

from specs.reporting import report


def _records():
    return [
        report.RuleRecord("a.one", "a", "One.", "1.13.1", "passed", examples=10),
        report.RuleRecord("a.two", "a", "Two.", "2.1", "not-applicable", reason="needs torch >= 2.1"),
        report.RuleRecord("b.three", "b", "Three.", "1.13.1", "failed", failure="boom"),
    ]


def test_report_round_trip(tmp_path):
    data = report.build(_records(), "ci", registered=3)
    path = report.write(data, tmp_path / "r" / "report.json")
    loaded = report.load(path)
    assert loaded["complete"] is True
    assert loaded["environment"]["profile"] == "ci" and loaded["environment"]["torch"]
    assert loaded["summary"]["a"] == {"passed": 1, "failed": 0, "known-failure": 0, "not-applicable": 1,
                                        "examples": 10}
    assert [r["id"] for r in loaded["rules"]] == ["a.one", "a.two", "b.three"]


def test_partial_runs_are_marked(tmp_path):
    assert report.build(_records(), "ci", registered=5)["complete"] is False


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    ("{not json", "not readable JSON"),
    ("[]", "not an autograd-spec report"),
    (json.dumps({"schema": "other"}), "not an autograd-spec report"),
    (json.dumps({"schema": report.SCHEMA, "rules": []}), "lacks its 'environment'"),
    (json.dumps({"schema": report.SCHEMA, "environment": {}, "rules": []}), "which torch"),
    (json.dumps({"schema": report.SCHEMA, "environment": {"torch": "banana"}, "rules": []}), "not a torch release"),
    (json.dumps({"schema": report.SCHEMA, "environment": {"torch": "2.13.0"}, "rules": [{"id": "x", "outcome": "great"}]}),
     "rule entry 0 is malformed"),
])
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
