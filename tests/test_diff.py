"""The semantic diff and the conformance matrix, on small reports made here."""

import copy
import json

import pytest

from specs.reporting import diff, matrix, report


def _report(torch_version, rules):
    return {
        "schema": report.SCHEMA,
        "complete": True,
        "environment": {"torch": torch_version, "profile": "ci", "platform": "test", "python": "3.11"},
        "rules": rules,
    }


def _rule(rule_id, outcome, history=(), observations=(), **extra):
    return {
        "id": rule_id,
        "family": rule_id.split(".")[0],
        "statement": f"{rule_id} holds.",
        "since": "1.13.1",
        "outcome": outcome,
        "examples": 25 if outcome == "passed" else 0,
        "history": list(history),
        "observations": list(observations),
        "reason": extra.get("reason", ""),
        "failure": extra.get("failure", ""),
    }


ZERO_GRAD = {"version": "2.0", "what": "zero_grad sets None"}
BEFORE = _report(
    "1.13.1",
    [
        _rule("a.history", "failed", [ZERO_GRAD], failure="Rule a.history does not hold\n  s\n  Violation: zeros"),
        _rule("a.regress", "passed"),
        _rule("a.fixed", "failed", failure="x\ny\nViolation: broken"),
        _rule("a.newly", "not-applicable", reason="needs torch >= 2.1"),
        _rule("a.words", "passed", observations=["RuntimeError: output 0 of ExpBackward0 is at version 1"]),
        _rule("a.gone", "passed"),
    ],
)
AFTER = _report(
    "2.13.0",
    [
        _rule("a.history", "passed", [ZERO_GRAD]),
        _rule("a.regress", "failed", failure="Rule a.regress does not hold\n  s\n  Violation: now wrong"),
        _rule("a.fixed", "passed"),
        _rule("a.newly", "passed"),
        _rule("a.words", "passed", observations=["RuntimeError: output 0 of Exp is at version 3"]),
        _rule("a.new", "passed"),
    ],
)


def test_every_kind_of_difference_is_found_and_classified():
    kinds = {d.rule: d.kind for d in diff.compare(BEFORE, AFTER)}
    assert kinds == {
        "a.history": "expected",
        "a.regress": "regression",
        "a.fixed": "fixed",
        "a.newly": "applicable",
        "a.words": "wording",
        "a.gone": "appeared",
        "a.new": "appeared",
    }


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
    old = {
        "torch": "2.13.0",
        "benchmarks": {
            "b": {**entry, "instructions": {"median": 1e6, "runs": [1e6, 1e6], "spread": 0.0}},
            "c": dict(entry),
        },
    }
    new = {
        "torch": "2.15.0",
        "benchmarks": {
            "b": {**entry, "instructions": {"median": 1.2e6, "runs": [1.2e6] * 2, "spread": 0.0}},
            "c": dict(entry),
        },
    }
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
    assert (
        diff.main(
            [str(paths[0]), str(paths[1]), "--markdown", str(tmp_path / "d.md"), "--html", str(tmp_path / "d.html")]
        )
        == 0
    )
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


# ----------------------------------------------------------------------------- observations


def _held(rule_id, observed, history=(), branch=""):
    return {**_rule(rule_id, "passed", history), "observed": observed, "history_branch": branch}


def test_zero_grad_default_change_is_expected_history_with_both_observations():
    """The 1.13.1 -> 2.13.0 case: the rule holds on both sides and records what zero_grad left."""
    import hypothesis

    from specs.engine import registry

    rule = registry.get("accumulation.zero-grad-sets-none")
    result = rule.run(hypothesis.settings(max_examples=2, deadline=None, derandomize=True, database=None))
    assert result.observed == {
        "module.zero_grad() leaves .grad": "None",
        "optimizer.zero_grad() leaves .grad": "None",
    }  # what torch >= 2.0 does
    old = report.rule_record(rule, "passed", "1.13.1", observed={k: "zeros" for k in result.observed})
    new = report.rule_record(rule, "passed", "2.13.0", result)
    assert (old.history_branch, new.history_branch) == ("before 2.0", "since 2.0")
    (found,) = diff.compare(_report("1.13.1", [old.__dict__]), _report("2.13.0", [new.__dict__]))
    assert found.kind == "history" and found.rule == rule.id
    assert found.before == "module.zero_grad() leaves .grad: zeros\noptimizer.zero_grad() leaves .grad: zeros"
    assert found.after == "module.zero_grad() leaves .grad: None\noptimizer.zero_grad() leaves .grad: None"
    assert found.note.startswith(
        "expected history: Module.zero_grad() and Optimizer.zero_grad() default to set_to_none=True"
    )
    assert "(changed in 2.0); history branch before 2.0 → since 2.0" in found.note
    text = diff.render_text(_report("1.13.1", [old.__dict__]), _report("2.13.0", [new.__dict__]), [found])
    assert "Observations that changed as the rules' recorded history expects (1)" in text


def test_an_observation_change_no_history_explains_is_flagged():
    error = {"type": "RuntimeError", "template": "output # of Exp is at version #", "phase": "backward"}
    before = _report("2.13.0", [_held("a.same", {"x": 1}), _held("a.moved", {"raises backward": error, "y": 2})])
    after = _report(
        "2.14.1",
        [_held("a.same", {"x": 1}), _held("a.moved", {"raises backward": {**error, "type": "ValueError"}, "y": 2})],
    )
    (found,) = diff.compare(before, after)
    assert (found.kind, found.rule) == ("observed", "a.moved")
    assert found.before == "raises backward: RuntimeError backward: output # of Exp is at version #"
    assert found.after == "raises backward: ValueError backward: output # of Exp is at version #"
    assert "no recorded change" in found.note
    assert diff.render_text(before, after, [found]).index("look at these") < 200


def test_a_history_change_outside_the_two_releases_does_not_explain():
    change = {"version": "2.15.0", "what": "later"}
    before = _report("2.13.0", [_held("a.r", {"v": "old"}, [change])])
    after = _report("2.14.1", [_held("a.r", {"v": "new"}, [change])])
    assert [d.kind for d in diff.compare(before, after)] == ["observed"]


def test_atlas_observations_are_grouped_by_op_and_appearing_values_shown():
    before = _report(
        "2.13.0",
        [
            _held(
                "atlas.edges-are-recorded",
                {"atlas:abs:0": 0.0, "atlas:abs:1": 1.0, "atlas:relu:0": 0.0, "atlas:sign:0": 0.0},
            )
        ],
    )
    after = _report(
        "2.14.1",
        [
            _held(
                "atlas.edges-are-recorded",
                {
                    "atlas:abs:0": 0.5,
                    "atlas:abs:1": 1.0,
                    "atlas:relu:0": 1.0,
                    "atlas:sign:0": 0.0,
                    "atlas:clamp:lo": 1.0,
                },
            )
        ],
    )
    found = diff.compare(before, after)
    assert [(d.group, d.before, d.after) for d in found] == [
        ("abs", "atlas:abs:0: 0.0", "atlas:abs:0: 0.5"),
        ("clamp", "atlas:clamp:lo: (not observed)", "atlas:clamp:lo: 1.0"),
        ("relu", "atlas:relu:0: 0.0", "atlas:relu:0: 1.0"),
    ]
    assert "atlas.edges-are-recorded [abs]" in diff.render_text(before, after, found)


def test_observations_of_a_failing_rule_are_not_compared():
    before = _report("2.13.0", [_held("a.r", {"v": 1})])
    after = _report("2.14.1", [{**_held("a.r", {"v": 2}), "outcome": "failed", "failure": "x\ny\nz"}])
    assert [d.kind for d in diff.compare(before, after)] == ["regression"]


def test_unlike_reports_are_said_first_one_line_each():
    before = _report("2.13.0", [_held("a.r", {"v": 1})])
    after = copy.deepcopy(before)
    after["environment"].update(torch="2.14.1", profile="dev", max_examples=50)
    before["environment"]["max_examples"] = 25
    after.update(complete=False, registered_rules=3)
    before["schema"] = "autograd-spec/report/1"
    lines = diff.render_text(before, after, diff.compare(before, after)).splitlines()
    assert lines[0].startswith("autograd-spec diff: torch 2.13.0")
    assert [line.split(":")[0] for line in lines[1:5]] == ["warning"] * 4
    assert "different hypothesis profiles (ci and dev)" in lines[1]
    assert "different example budgets (25 and 50 a rule)" in lines[2]
    assert "schema autograd-spec/report/1, without observations" in lines[3]
    assert "second report is from a partial run (1 of 3 rules)" in lines[4]
    assert lines[5] == "no differences"  # a version-1 report's missing observations are no difference


def test_version_1_reports_still_load_and_diff(tmp_path):
    old = _report("1.13.1", [_rule("a.r", "passed")])
    old["schema"] = "autograd-spec/report/1"
    (tmp_path / "old.json").write_text(json.dumps(old))
    new = _report("2.13.0", [_held("a.r", {"v": 1})])
    (tmp_path / "new.json").write_text(json.dumps(new))
    assert diff.main([str(tmp_path / "old.json"), str(tmp_path / "new.json")]) == 0
    loaded = report.load(tmp_path / "old.json")
    assert loaded["rules"][0]["observed"] == {} and not report.has_observations(loaded)


def test_a_report_of_a_newer_schema_is_refused_with_what_to_do(tmp_path, capsys):
    newer = _report("2.13.0", [])
    newer["schema"] = "autograd-spec/report/3"
    (tmp_path / "newer.json").write_text(json.dumps(newer))
    (tmp_path / "good.json").write_text(json.dumps(_report("2.13.0", [])))
    assert diff.main([str(tmp_path / "good.json"), str(tmp_path / "newer.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "schema 'autograd-spec/report/3'" in err and "update autograd-spec" in err


def test_matrix_leads_with_the_rules_that_change_and_marks_where():
    reports = [
        _report("2.13.0", [_held("a.same", {"v": 1}), _held("a.obs", {"v": 1}), _rule("a.out", "passed")]),
        _report("2.14.1", [_held("a.same", {"v": 1}), _held("a.obs", {"v": 1}), _rule("a.out", "failed")]),
        _report("2.15.0", [_held("a.same", {"v": 1}), _held("a.obs", {"v": 2}), _rule("a.out", "failed")]),
    ]
    text = matrix.render_matrix(reports)
    changing, stable = text.split("Rules that behave the same on every release")
    assert "``a.obs``\n     - ✓\n     - ✓\n     - ✓ *Δ*\n" in changing
    assert "``a.out``\n     - ✓\n     - ✗ fails *changed*\n     - ✗ fails\n" in changing
    assert "``a.same``" in stable and "``a.same``" not in changing


def test_the_diff_says_where_its_baseline_comes_from(tmp_path, capsys):
    for name, data in (("a", BEFORE), ("b", AFTER)):
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
    source = "committed report reports/torch-1.13.1.json (profile ci, 6 rules)"
    assert (
        diff.main(
            [
                str(tmp_path / "a.json"),
                str(tmp_path / "b.json"),
                f"--baseline-source={source}",
                "--markdown",
                str(tmp_path / "d.md"),
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.splitlines()[1] == f"baseline: {source}"
    assert f"Baseline: {source}" in (tmp_path / "d.md").read_text()


def test_a_mapping_observation_shows_only_the_entries_that_changed():
    """An atlas sweep records one mapping of many ops; the diff names only the ops that changed."""
    before = {"id": "atlas.x", "statement": "S.", "observed": {"not-implemented": {"op a": "E1", "op b": "E2"}}}
    after = {"id": "atlas.x", "statement": "S.", "observed": {"not-implemented": {"op a": "E1", "op c": "E3"}}}
    (found,) = diff._observation_differences(before, after, (2, 13, 0), (2, 14, 1))
    assert found.before.splitlines() == ["not-implemented › op b: E2", "not-implemented › op c: (not observed)"]
    assert found.after.splitlines() == ["not-implemented › op b: (not observed)", "not-implemented › op c: E3"]
    assert "op a" not in found.before + found.after


def test_ops_a_release_adds_that_the_atlas_does_not_cover_join_the_diff():
    before, after = copy.deepcopy(BEFORE), copy.deepcopy(AFTER)
    before["atlas_coverage"] = {"opinfo_autograd_ops": 3, "covered": 2, "fraction": 0.6667, "uncovered": ["vander"]}
    after["atlas_coverage"] = {
        "opinfo_autograd_ops": 4,
        "covered": 2,
        "fraction": 0.5,
        "uncovered": ["vander", "new_op"],
    }
    found = [d for d in diff.compare(before, after) if d.kind == "coverage"]
    assert len(found) == 1
    assert found[0].before == "2 of 3 (66.7%)" and found[0].after == "2 of 4 (50.0%)"
    assert "not covered now: new_op" in found[0].note
    after["atlas_coverage"] = before["atlas_coverage"]
    assert not [d for d in diff.compare(before, after) if d.kind == "coverage"]
