"""The benchmark machinery: summaries, the noise-aware comparison (synthetic data), the programs."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from specs import bench, registry

BENCHMARKS = Path(__file__).parent / "benchmarks"


def _run(path: Path, medians: dict[str, float], torch: str = "2.13.0", extra=None) -> Path:
    """A pytest-benchmark JSON file with the given medians."""
    data = {"machine_info": {"cpu": {"brand_raw": "test cpu", "count": 2}},
            "autograd_spec": {"torch": torch},
            "benchmarks": [{"fullname": f"tests/benchmarks/test_bench_x.py::{name}", "params": {},
                            "stats": {"median": m, "iqr": m * 0.02, "rounds": 10},
                            "extra_info": {"rule": "leaves.only-leaves-get-grad", **(extra or {}).get(name, {})}}
                           for name, m in medians.items()]}
    path.write_text(json.dumps(data))
    return path


def _summary(tmp_path: Path, tag: str, runs: list[dict[str, float]], extra=None) -> dict:
    folder = tmp_path / tag
    folder.mkdir()
    return bench.summarize([_run(folder / f"{i:04d}.json", r, extra=extra) for i, r in enumerate(runs)])


def test_summary_takes_the_median_of_runs_and_their_spread(tmp_path):
    s = _summary(tmp_path, "a", [{"t": 1.0}, {"t": 1.2}, {"t": 0.9}])
    entry = s["benchmarks"]["test_bench_x.py::t"]
    assert entry["median"] == 1.0 and entry["runs"] == [1.0, 1.2, 0.9]
    assert entry["spread"] == pytest.approx(0.3)
    assert entry["rule"] == "leaves.only-leaves-get-grad"
    assert s["torch"] == "2.13.0" and s["runs"] == 3


def test_unchanged_rerun_is_not_flagged_and_a_slowdown_is(tmp_path):
    noisy = [{"quiet": 1.0, "noisy": 1.0}, {"quiet": 1.02, "noisy": 1.3}, {"quiet": 0.99, "noisy": 0.8}]
    old = _summary(tmp_path, "old", noisy)
    same = _summary(tmp_path, "same", [{"quiet": 1.01, "noisy": 1.2}, {"quiet": 0.98, "noisy": 0.9},
                                       {"quiet": 1.0, "noisy": 1.1}])
    slow = _summary(tmp_path, "slow", [{"quiet": 1.25, "noisy": 1.25}, {"quiet": 1.27, "noisy": 1.5},
                                       {"quiet": 1.24, "noisy": 1.0}])
    assert not [f for f in bench.compare(old, same, normalize=False) if f.flagged]
    flagged = {f.name: f.kind for f in bench.compare(old, slow, normalize=False) if f.flagged}
    # 25 % is far beyond the quiet benchmark's 3 % spread, but within the noisy one's 50 %.
    assert flagged == {"test_bench_x.py::quiet": "slower"}


def test_small_changes_are_never_flagged_and_overlapping_runs_neither(tmp_path):
    old = _summary(tmp_path, "old", [{"t": 1.0}, {"t": 1.0}, {"t": 1.0}])
    assert not [f for f in bench.compare(old, _summary(tmp_path, "b", [{"t": 1.05}] * 3), normalize=False) if f.flagged]
    # Median 30 % up, but one run as fast as the baseline: the ranges overlap.
    overlap = _summary(tmp_path, "c", [{"t": 1.3}, {"t": 1.3}, {"t": 1.0}])
    assert not [f for f in bench.compare(old, overlap, normalize=False) if f.flagged]
    faster = _summary(tmp_path, "d", [{"t": 0.5}] * 3)
    assert [f.kind for f in bench.compare(old, faster, normalize=False)] == ["faster"]


def test_single_runs_fall_back_to_the_within_run_iqr():
    entry = {"median": 1.0, "iqr": 0.2, "runs": [1.0]}
    old = {"torch": "a", "benchmarks": {"t": entry}}
    assert [f.kind for f in bench.compare(old, {"torch": "b", "benchmarks": {"t": {**entry, "median": 1.3,
                                                                                    "runs": [1.3]}}}, normalize=False)] == ["unchanged"]
    assert [f.kind for f in bench.compare(old, {"torch": "b", "benchmarks": {"t": {**entry, "median": 1.5,
                                                                                    "runs": [1.5]}}}, normalize=False)] == ["slower"]


def test_a_machine_busier_in_one_run_slows_everything_and_is_divided_out(tmp_path):
    names = [f"b{i}" for i in range(9)]
    old = _summary(tmp_path, "old", [{n: 1.0 for n in names}, {n: 1.02 for n in names}, {n: 0.99 for n in names}])
    busy = _summary(tmp_path, "busy", [{n: 1.4 for n in names}] * 3)
    assert len([f for f in bench.compare(old, busy, normalize=False) if f.flagged]) == 9
    assert not [f for f in bench.compare(old, busy) if f.flagged]
    one_slow = _summary(tmp_path, "one", [{**{n: 1.4 for n in names}, "b0": 1.4 * 1.25}] * 3)
    assert [f.name for f in bench.compare(old, one_slow) if f.flagged] == ["test_bench_x.py::b0"]


def test_memory_figures_are_exact(tmp_path):
    old = _summary(tmp_path, "old", [{"t": 1.0}] * 3, extra={"t": {"saved_bytes": 4096}})
    new = _summary(tmp_path, "new", [{"t": 1.0}] * 3, extra={"t": {"saved_bytes": 4100}})
    found = [f for f in bench.compare(old, new) if f.flagged]
    assert [f.kind for f in found] == ["memory"] and "4096 -> 4100" in found[0].note


def test_summaries_carry_what_the_report_diff_reads(tmp_path):
    from specs import diff

    old = _summary(tmp_path, "old", [{"t": 1.0}] * 3)
    new = _summary(tmp_path, "new", [{"t": 2.0}] * 3)
    found = diff._benchmarks(old, new)
    assert [d.rule for d in found] == ["test_bench_x.py::t"]


def test_derived_laws(tmp_path):
    runs = {f"test_engine_chain[{n}]": 1e-6 * (10 + 2 * n) for n in (32, 128, 512, 2048)}
    runs |= {"test_backward_forward_ratio[8-forward]": 1.0, "test_backward_forward_ratio[8-backward]": 2.0}
    folder = tmp_path / "r"
    folder.mkdir()
    path = _run(folder / "0.json", runs)
    data = json.loads(path.read_text())
    for b in data["benchmarks"]:
        name = b["fullname"].split("::")[1]
        if name.startswith("test_engine_chain"):
            b["params"] = {"nodes": int(name[18:-1])}
        else:
            b["params"] = {"ops": 8, "phase": name.split("-")[1][:-1]}
    path.write_text(json.dumps(data))
    d = bench.summarize([path])["derived"]
    assert d["engine_per_node"]["per_node_s"] == pytest.approx(2e-6)
    assert d["engine_per_node"]["linear"]
    assert d["cheap_gradient"]["by_ops"]["8"]["gradient_over_function"] == pytest.approx(3.0)
    assert d["cheap_gradient"]["holds"]


def test_programs_are_deterministic_and_bounded():
    import torch

    a, b = bench.program(32), bench.program(32)
    assert a.source() == b.source() and a.leaves == b.leaves
    values = a.trace(*a.inputs())
    for name, value in values.items():
        if name != "out":
            assert value.abs().max() <= 1.0, name
    out = a(*a.inputs())
    assert out.shape == () and torch.isfinite(out)


def _rules_named_by_benchmarks() -> list[tuple[str, str]]:
    found = []
    for path in sorted(BENCHMARKS.glob("test_bench_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Subscript)
                    and isinstance(node.targets[0].slice, ast.Constant) and node.targets[0].slice.value == "rule"
                    and isinstance(node.value, ast.Constant)):
                found.append((path.name, node.value.value))
    return found


def test_every_benchmark_names_a_registered_rule():
    named = _rules_named_by_benchmarks()
    assert len(named) >= 7
    known = {r.id for r in registry.rules()}
    assert [(f, r) for f, r in named if r not in known] == []


def test_committed_summaries_render(tmp_path):
    summaries = bench._summaries(bench.RESULTS)
    text = bench.render(summaries, tmp_path / "figures", "figures")
    assert text.startswith(".. _benchmarks:")
    if summaries:
        assert (tmp_path / "figures" / "scaling.png").exists()
