"""The semantic diff and the conformance matrix, on small reports made here."""
import copy
import json

import pytest

from specs.reporting import diff, matrix, report


def _report(torch_version, rules):
    return {"schema": report.SCHEMA, "complete": True,
            "environment": {"torch": torch_version, "profile": "ci", "platform": "test", "python": "3.11"},
            "rules": rules}


def _rule(rule_id, outcome, history=(), observations=(), **extra):
    return {"id": rule_id, "family": rule_id.split(".")[0], "statement": f"{rule_id} holds.", "since": "1.13.1",
            "outcome": outcome, "examples": 25 if outcome == "passed" else 0, "history": list(history),
            "observations": list(observations), "reason": extra.get("reason", ""),
            "failure": extra.get("failure", "")}


ZERO_GRAD = {"version": "2.0", "what": "zero_grad sets None"}
BEFORE = _report("1.13.1", [
    _rule("a.history", "failed", [ZERO_GRAD], failure="Rule a.history does not hold\n  s\n  Violation: zeros"),
    _rule("a.regress", "passed"),
    _rule("a.fixed", "failed", failure="x\ny\nViolation: broken"),
    _rule("a.newly", "not-applicable", reason="needs torch >= 2.1"),
    _rule("a.words", "passed", observations=["RuntimeError: output 0 of ExpBackward0 is at version 1"]),
    _rule("a.gone", "passed"),
])
AFTER = _report("2.13.0", [
    _rule("a.history", "passed", [ZERO_GRAD]),
    _rule("a.regress", "failed", failure="Rule a.regress does not hold\n  s\n  Violation: now wrong"),
    _rule("a.fixed", "passed"),
    _rule("a.newly", "passed"),
    _rule("a.words", "passed", observations=["RuntimeError: output 0 of Exp is at version 3"]),
    _rule("a.new", "passed"),
])


def test_every_kind_of_difference_is_found_and_classified():
    kinds = {d.rule: d.kind for d in diff.compare(BEFORE, AFTER)}
    assert kinds == {"a.history": "expected", "a.regress": "regression", "a.fixed": "fixed",
                     "a.newly": "applicable", "a.words": "wording", "a.gone": "appeared", "a.new": "appeared"}


def test_differences_name_the_rule_and_both_observations():
    regress = next(d for d in diff.compare(BEFORE, AFTER) if d.rule == "a.regress")
    assert regress.statement == "a.regress holds." and regress.before.startswith("passed")
    assert "now wrong" in regress.after and "no recorded history" in regress.note
    history = next(d for d in diff.compare(BEFORE, AFTER) if d.rule == "a.history")
    assert "changed in 2.0" in history.note


def test_only_wording_not_numbers_counts_as_a_change():
    same = copy.deepcopy(AFTER)
    same["rules"][4]["observations"] = ["RuntimeError: output 0 of Exp is at version 7"]
    assert not [d for d in diff.compare(AFTER, same) if d.kind == "wording"]


def test_a_report_against_itself_is_empty():
    assert diff.compare(AFTER, copy.deepcopy(AFTER)) == []
    assert "no differences" in diff.render_text(AFTER, AFTER, [])


def test_benchmarks_flagged_by_specs_bench_join_the_diff():
    entry = {"rule": "leaves.only-leaves-get-grad", "runs": [1.0, 1.0, 1.0], "median": 1.0, "spread": 0.0}
    old = {"torch": "2.13.0", "benchmarks": {"b": {**entry, "instructions": {"median": 1e6, "runs": [1e6, 1e6], "spread": 0.0}},
                                             "c": dict(entry)}}
    new = {"torch": "2.15.0", "benchmarks": {"b": {**entry, "instructions": {"median": 1.2e6, "runs": [1.2e6] * 2, "spread": 0.0}},
                                             "c": dict(entry)}}
    found = [d for d in diff.compare(BEFORE, AFTER, (old, new)) if d.kind == "benchmark"]
    assert [(d.rule, d.statement) for d in found] == [("b", "leaves.only-leaves-get-grad")]
    assert "instructions +20%" in found[0].note and "1,200,000 instructions" in found[0].after
    assert not [d for d in diff.compare(BEFORE, AFTER, (old, None)) if d.kind == "benchmark"]
    assert not [d for d in diff.compare(BEFORE, AFTER) if d.kind == "benchmark"]


def test_cli_writes_markdown_and_html(tmp_path, capsys):
    paths = []
    for name, data in (("a", BEFORE), ("b", AFTER)):
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(data))
    assert diff.main([str(paths[0]), str(paths[1]), "--markdown", str(tmp_path / "d.md"),
                      "--html", str(tmp_path / "d.html")]) == 0
    out = capsys.readouterr().out
    assert "Regressions to look at (1)" in out and "a.regress" in out
    assert "| `a.regress`" in (tmp_path / "d.md").read_text()
    assert "<code>a.regress</code>" in (tmp_path / "d.html").read_text()


def test_cli_refuses_a_corrupt_report(tmp_path, capsys):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(AFTER))
    bad.write_text('{"schema": "autograd-spec/report/1", "environ')
    assert diff.main([str(good), str(bad)]) == 2
    assert "not readable JSON" in capsys.readouterr().err
    assert diff.main([str(good), str(tmp_path / "missing.json")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_matrix_has_a_column_per_release_and_links_the_diffs(tmp_path):
    (tmp_path / "torch-2.13.0.json").write_text(json.dumps(AFTER))
    (tmp_path / "torch-1.13.1.json").write_text(json.dumps(BEFORE))
    reports = matrix.load_reports(tmp_path)
    assert [r["environment"]["torch"] for r in reports] == ["1.13.1", "2.13.0"]
    text = matrix.render_matrix(reports)
    assert ":doc:`diffs/1.13.1-to-2.13.0`" in text and "     - 1.13.1\n     - 2.13.0\n" in text
    page = matrix.render_diff_page(*reports)
    assert "torch 1.13.1 → torch 2.13.0" in page and "``a.regress``" in page


def test_matrix_refuses_a_corrupt_committed_report(tmp_path):
    (tmp_path / "torch-2.13.0.json").write_text("[]")
    with pytest.raises(report.ReportError):
        matrix.load_reports(tmp_path)


def test_matrix_write_removes_diff_pages_of_pairs_no_longer_consecutive(tmp_path):
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "torch-1.13.1.json").write_text(json.dumps(BEFORE))
    (tmp_path / "reports" / "torch-2.13.0.json").write_text(json.dumps(AFTER))
    stale = tmp_path / "docs" / "generated" / "diffs" / "1.13.1-to-2.15.0.rst"
    stale.parent.mkdir(parents=True)
    stale.write_text("old")
    written = matrix.write(tmp_path)
    assert not stale.exists()
    assert [p.name for p in written] == ["matrix.rst", "1.13.1-to-2.13.0.rst"]


def test_saved_bytes_that_change_join_the_diff():
    entry = {"rule": "retain-graph.saved-tensors-released", "runs": [1.0] * 3, "median": 1.0, "spread": 0.0}
    old = {"torch": "2.13.0", "benchmarks": {"m": {**entry, "extra_info": {"saved_bytes": 4096}}}}
    new = {"torch": "2.15.0", "benchmarks": {"m": {**entry, "extra_info": {"saved_bytes": 8192}}}}
    (found,) = [d for d in diff.compare(BEFORE, AFTER, (old, new)) if d.kind == "benchmark"]
    assert (found.before, found.after) == ("4,096 bytes", "8,192 bytes")
    assert found.note.startswith("saved_bytes:") and found.statement == "retain-graph.saved-tensors-released"
