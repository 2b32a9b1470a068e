"""The benchmark machinery: summaries, the noise-aware comparison (synthetic data), the programs."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import specs.bench as bench
from specs.bench import cli, counting, rendering, summaries
from specs.engine import registry

BENCHMARKS = Path(__file__).parent / "benchmarks"


def _run(path: Path, medians: dict[str, float], torch: str = "2.13.0", extra=None) -> Path:
    """A pytest-benchmark JSON file with the given medians."""
    data = {
        "machine_info": {"cpu": {"brand_raw": "test cpu", "count": 2}},
        "autograd_spec": {"torch": torch},
        "benchmarks": [
            {
                "fullname": f"tests/benchmarks/test_bench_x.py::{name}",
                "params": {},
                "stats": {"median": m, "iqr": m * 0.02, "rounds": 10},
                "extra_info": {"rule": "leaves.only-leaves-get-grad", **(extra or {}).get(name, {})},
            }
            for name, m in medians.items()
        ],
    }
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
    same = _summary(
        tmp_path, "same", [{"quiet": 1.01, "noisy": 1.2}, {"quiet": 0.98, "noisy": 0.9}, {"quiet": 1.0, "noisy": 1.1}]
    )
    slow = _summary(
        tmp_path, "slow", [{"quiet": 1.25, "noisy": 1.25}, {"quiet": 1.27, "noisy": 1.5}, {"quiet": 1.24, "noisy": 1.0}]
    )
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
    assert [
        f.kind
        for f in bench.compare(
            old, {"torch": "b", "benchmarks": {"t": {**entry, "median": 1.3, "runs": [1.3]}}}, normalize=False
        )
    ] == ["unchanged"]
    assert [
        f.kind
        for f in bench.compare(
            old, {"torch": "b", "benchmarks": {"t": {**entry, "median": 1.5, "runs": [1.5]}}}, normalize=False
        )
    ] == ["slower"]


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
    from specs.reporting import diff

    names = [f"b{i}" for i in range(5)]
    old = _summary(tmp_path, "old", [{n: 1.0 for n in names}] * 3)
    new = _summary(tmp_path, "new", [{**{n: 1.0 for n in names}, "b2": 2.0}] * 3)
    found = diff._benchmarks({}, {}, (old, new))
    assert [(d.rule, d.statement) for d in found] == [("test_bench_x.py::b2", "leaves.only-leaves-get-grad")]
    assert "time +100%" in found[0].note


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
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.targets[0], ast.Subscript)
                and isinstance(node.targets[0].slice, ast.Constant)
                and node.targets[0].slice.value == "rule"
                and isinstance(node.value, ast.Constant)
            ):
                found.append((path.name, node.value.value))
    return found


def test_every_benchmark_names_a_registered_rule():
    named = _rules_named_by_benchmarks()
    assert len(named) >= 7
    known = {r.id for r in registry.rules()}
    assert [(f, r) for f, r in named if r not in known] == []


def _committed_checks() -> list[tuple[str, dict]]:
    return [(p.stem, summaries._read_summary(p)) for p in sorted(bench.CHECKS.glob("*.json"))]


def test_committed_checks_flag_the_injected_slowdown_and_nothing_else():
    """The evidence on the benchmarks page: real runs of a committed release, compared with it."""
    results = {s["torch"]: s for s in rendering._summaries(bench.RESULTS)}
    checks = _committed_checks()
    assert {bool(c.get("slowdown")) for _, c in checks} == {True, False}  # an unchanged and a slowed run
    for name, check in checks:
        flagged = {f.name.split("::")[-1] for f in bench.compare(results[check["torch"]], check) if f.flagged}
        assert flagged == {s.rpartition("@")[0] for s in check.get("slowdown", [])}, name


def test_committed_summaries_render(tmp_path, monkeypatch):
    """The page of the committed summaries, with its figures built but not drawn: drawing their 13
    figures takes ~6 s, ``test_checks_render_what_compare_flags`` draws for real, and ``nox -s docs``
    draws every figure and its browser check loads each image."""
    from matplotlib.figure import Figure

    monkeypatch.setattr(Figure, "tight_layout", lambda self, *a, **k: None)
    monkeypatch.setattr(Figure, "savefig", lambda self, path, *a, **k: Path(path).write_bytes(b""))
    summaries = rendering._summaries(bench.RESULTS)
    text = bench.render(summaries, tmp_path / "figures", "figures", _committed_checks())
    assert ".. _benchmark-check:" in text and (tmp_path / "figures" / "checks.png").exists()
    assert text.startswith(".. _benchmarks:")
    if summaries:
        assert (tmp_path / "figures" / "scaling.png").exists()


# ---------------------------------------------------------------------------- instruction counts


def _counts(path: Path, counts: dict[str, float], torch: str = "2.13.0", slowdown=None) -> Path:
    """An instruction-count file as the benchmarks' conftest writes it under callgrind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "format": bench.COUNTS_FORMAT,
                "torch": torch,
                "slowdown": slowdown,
                "calls": 10,
                "warmup": 3,
                "benchmarks": {
                    f"test_bench_x.py::{n}": {
                        "instructions": c,
                        "calls": 10,
                        "params": {},
                        "extra_info": {"rule": "leaves.only-leaves-get-grad"},
                    }
                    for n, c in counts.items()
                },
            }
        )
    )
    return path


def _counted(tmp_path: Path, tag: str, runs: list[dict[str, float]], slowdown=None) -> dict:
    return bench.summarize(
        [], None, [_counts(tmp_path / tag / f"{i}.json", r, slowdown=slowdown) for i, r in enumerate(runs)]
    )


def _both(tmp_path: Path, tag: str, timed: list[dict[str, float]], counted: list[dict[str, float]]) -> dict:
    folder = tmp_path / tag
    folder.mkdir()
    return bench.summarize(
        [_run(folder / f"{i:04d}.json", r) for i, r in enumerate(timed)],
        None,
        [_counts(folder / "instructions" / f"{i}.json", c) for i, c in enumerate(counted)],
    )


def test_counts_are_summarized_next_to_timings(tmp_path):
    entry = _both(tmp_path, "a", [{"a": 1.0}], [{"a": 1000.0}, {"a": 1002.0}])["benchmarks"]["test_bench_x.py::a"]
    assert entry["median"] == 1.0
    assert entry["instructions"] == {
        "median": 1001.0,
        "runs": [1000.0, 1002.0],
        "spread": pytest.approx(0.002, rel=1e-3),
    }
    # A folder holds both: the timed runs and, under instructions/, the counts.
    loaded = bench.load(str(tmp_path / "a"))["benchmarks"]["test_bench_x.py::a"]
    assert loaded["runs"] == [1.0] and loaded["instructions"]["runs"] == [1000.0, 1002.0]
    only_counted = _counted(tmp_path, "only", [{"a": 5.0}, {"a": 5.0}])
    assert "median" not in only_counted["benchmarks"]["test_bench_x.py::a"]
    assert "instructions" in bench.format_spread(only_counted)


def test_counts_flag_what_the_clock_cannot_see(tmp_path):
    """Timings with 60 % spread hide a 10 % slowdown; counts repeating to 0.1 % show it, and only it."""
    names = [f"b{i}" for i in range(6)]
    pattern = [1.0, 1.6, 1.3]  # each benchmark noisy in its own runs: nothing a machine-wide factor explains
    noisy = [{n: pattern[(k + i) % 3] for i, n in enumerate(names)} for k in range(3)]
    old = _both(tmp_path, "old", noisy, [{n: 1e6 + i * 1e3 for n in names} for i in range(2)])
    same = _both(tmp_path, "same", noisy[::-1], [{n: 1e6 + 500 for n in names}] * 2)
    slow = _both(
        tmp_path, "slow", [{**r, "b3": r["b3"] * 1.1} for r in noisy], [{**{n: 1e6 for n in names}, "b3": 1.1e6}] * 2
    )
    assert not [f for f in bench.compare(old, same) if f.flagged]
    flagged = [(f.name, f.metric, f.kind) for f in bench.compare(old, slow) if f.flagged]
    assert flagged == [("test_bench_x.py::b3", "instructions", "slower")]
    text = bench.format_comparison(bench.compare(old, slow), "a", "b")
    assert "1 of 6 benchmarks flagged (0 by time, 1 by instructions, 0 by memory): test_bench_x.py::b3" in text


def test_counts_are_never_normalized(tmp_path):
    """Every benchmark doing 20 % more work is a change of the release, not a busy machine."""
    old = _counted(tmp_path, "old", [{"a": 1e6, "b": 2e6}] * 2)
    new = _counted(tmp_path, "new", [{"a": 1.2e6, "b": 2.4e6}] * 2)
    assert {(f.name, f.kind) for f in bench.compare(old, new) if f.flagged} == {
        ("test_bench_x.py::a", "slower"),
        ("test_bench_x.py::b", "slower"),
    }
    small = _counted(tmp_path, "small", [{"a": 1.02e6, "b": 2.01e6}] * 2)
    assert not [f for f in bench.compare(old, small) if f.flagged]


def test_a_few_thousand_instructions_per_call_are_not_a_finding(tmp_path):
    """Counting sessions started apart differ by ~10 k instructions a call (the harness, measured):
    5 % of a 200 k benchmark, yet below the floor of MIN_COUNT_DELTA."""
    old = _counted(tmp_path, "old", [{"small": 211_724.0, "big": 5e6}, {"small": 211_439.0, "big": 5e6}])
    shifted = _counted(tmp_path, "shifted", [{"small": 201_756.0, "big": 5e6 - 9_000}] * 2)
    assert not [f for f in bench.compare(old, shifted) if f.flagged]
    doubled = _counted(tmp_path, "doubled", [{"small": 423_000.0, "big": 5e6}] * 2)
    assert [(f.name, f.kind) for f in bench.compare(old, doubled) if f.flagged] == [
        ("test_bench_x.py::small", "slower")
    ]


def test_bad_count_and_summary_files_give_clear_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SystemExit, match="not a readable instruction-count file"):
        bench.summarize([], None, [bad])
    bad.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(SystemExit, match="not an instruction-count file"):
        bench.summarize([], None, [bad])
    with pytest.raises(SystemExit, match="not a benchmark summary"):
        bench.load(str(bad))
    bad.write_text("[1, 2")
    with pytest.raises(SystemExit, match="not a readable benchmark summary"):
        bench.load(str(bad))
    with pytest.raises(SystemExit, match="not a readable pytest-benchmark run"):
        bench.summarize([bad])
    mixed = [
        _counts(tmp_path / "m" / "0.json", {"a": 1.0}, torch="2.13.0"),
        _counts(tmp_path / "m" / "1.json", {"a": 1.0}, torch="2.15.0"),
    ]
    with pytest.raises(SystemExit, match="mix torch releases"):
        bench.summarize([], None, mixed)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit, match="no pytest-benchmark runs and no instruction counts"):
        bench.load(str(empty))
    with pytest.raises(SystemExit, match="no pytest-benchmark runs and no instruction counts"):
        cli.main(["summarize", str(empty)])


def test_count_explains_a_missing_valgrind(tmp_path, monkeypatch):
    monkeypatch.setattr(counting.shutil, "which", lambda tool: None)
    with pytest.raises(SystemExit, match=r"need valgrind and callgrind_control \(Debian: apt-get install valgrind\)"):
        bench.count(tmp_path, runs=1)
    assert not (tmp_path / "instructions").exists() or not list((tmp_path / "instructions").iterdir())


def test_callgrind_dump_totals(tmp_path):
    dump = tmp_path / "callgrind.out.1.1"
    dump.write_text(
        "# callgrind format\nversion: 1\ncmd: python\nevents: Ir\nfl=(1) x.c\nfn=(1) f\n"
        "3 12\n\nsummary: 5158459\n\n\ntotals: 5158459\n"
    )
    assert bench.callgrind_totals(dump) == 5158459
    dump.write_text("events: Ir\n")
    with pytest.raises(ValueError, match="not a callgrind dump"):
        bench.callgrind_totals(dump)


class _FakeCallgrind:
    """Collection state as callgrind keeps it; each dump returns 1000 per counted call."""

    def __init__(self):
        self.collecting, self.started, self.counted, self.events = False, False, 0, []

    def start(self):
        self.started = True

    def toggle(self):
        self.collecting = not self.collecting

    def dump(self):
        self.collecting = not self.collecting  # torch's _valgrind_toggle_and_dump_stats toggles first
        assert not self.collecting
        total, self.counted = 1000 * self.counted, 0
        return total


def _counter_class():
    import importlib.util

    spec = importlib.util.spec_from_file_location("_bench_conftest", BENCHMARKS / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_instruction_counter_counts_the_calls_and_nothing_around_them():
    conftest = _counter_class()
    tool, results = _FakeCallgrind(), {}
    seen = []

    def function(x):
        seen.append(("call", tool.collecting))
        if tool.collecting:
            tool.counted += 1
        return x + 1

    def setup():
        seen.append(("setup", tool.collecting))
        return (41,), {}

    counter = conftest.InstructionCounter("t.py::p", tool, results, calls=4, warmup=2, params={"n": 3})
    counter.extra_info["rule"] = "leaves.only-leaves-get-grad"
    assert counter.pedantic(function, setup=setup, rounds=99) == 42
    assert [s for s in seen if s[0] == "setup"] == [("setup", False)] * 6  # setup never counted
    assert [s for s in seen if s[0] == "call"] == [("call", False)] * 2 + [("call", True)] * 4
    assert results["t.py::p"]["instructions"] == 1000.0 and results["t.py::p"]["params"] == {"n": 3}
    assert tool.started and not tool.collecting

    seen.clear()
    assert counter(function, 1) == 2
    assert [c for _, c in seen] == [False, False, True, True, True, True]
    assert isinstance(counter, __import__("pytest_benchmark.fixture").fixture.BenchmarkFixture)


def test_counts_made_differently_are_not_compared(tmp_path):
    """Counts depend on what ran before in the process: a -k subset is not comparable to a full run."""
    old = _counted(tmp_path, "old", [{"a": 1e6}] * 2)
    subset = bench.summarize([], None, [_counts(tmp_path / "k" / "0.json", {"a": 1.5e6})])
    data = json.loads((tmp_path / "k" / "0.json").read_text())
    data["selection"] = ["-k", "a"]
    (tmp_path / "k" / "0.json").write_text(json.dumps(data))
    subset = bench.summarize([], None, [tmp_path / "k" / "0.json"])
    assert subset["count_setup"]["selection"] == ["-k", "a"]
    assert not [f for f in bench.compare(old, subset) if f.metric == "instructions"]
    assert [f.kind for f in bench.compare(old, _counted(tmp_path, "same", [{"a": 1.5e6}]))] == ["slower"]
    with pytest.raises(SystemExit, match="made differently"):
        bench.summarize([], None, [tmp_path / "k" / "0.json", tmp_path / "old" / "0.json"])


def test_checks_render_what_compare_flags(tmp_path):
    base = _both(tmp_path, "base", [{"a": 1.0, "b": 1.0}] * 3, [{"a": 1e6, "b": 1e6}] * 2)
    slowed = _both(tmp_path, "slowed", [{"a": 1.0, "b": 1.0}] * 3, [{"a": 1e6, "b": 1.25e6}] * 2)
    slowed["slowdown"] = ["b@torch.autograd.grad:0.25"]
    text = bench.render([base], tmp_path / "f", "f", [("slowed", slowed)])
    section = text[text.index(".. _benchmark-check:") :]
    assert "``b@torch.autograd.grad:0.25``\n     - 0\n     - 1: b\n" in section
    assert (tmp_path / "f" / "checks.png").exists()
    # A check of a release without a committed summary is left out, not a crash.
    assert ".. _benchmark-check:" not in bench.render(
        [base], tmp_path / "g", "g", [("x", {**slowed, "torch": "9.9.9"})]
    )


def test_command_line_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    assert cli.main_with_errors(["compare", "2.13.0", str(tmp_path / "missing.json")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'missing.json'}: no such summary file or run folder"
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"torch": ')
    assert cli.main_with_errors(["spread", str(corrupt)]) == 2
    assert "not a readable benchmark summary" in capsys.readouterr().err
    assert cli.main_with_errors(["spread", "2.13.0"]) == 0


def test_a_run_folder_is_summarized_from_its_newest_runs(tmp_path):
    """As nox -s bench does: the newest 3 timed and 2 counted runs, so an older -k run does not mix in."""
    folder = tmp_path / "torch-2.13.0"
    folder.mkdir()
    for i, t in enumerate([9.0, 1.0, 1.1, 1.2]):
        _run(folder / f"{i:04d}.json", {"a": t})
    subset = _counts(folder / "instructions" / "0-old.json", {"a": 5e6})
    data = json.loads(subset.read_text())
    data["selection"] = ["-k", "a"]
    subset.write_text(json.dumps(data))
    for name in ("1-new.json", "2-new.json"):
        _counts(folder / "instructions" / name, {"a": 1e6})
    entry = bench.load(str(folder))["benchmarks"]["test_bench_x.py::a"]
    assert entry["runs"] == [1.0, 1.1, 1.2] and entry["instructions"]["runs"] == [1e6, 1e6]


def test_a_time_flag_with_unchanged_counts_is_machine_noise(tmp_path):
    """The issue's case: +50 % by time while the instruction count moved 0.0 %: machine load, not torch."""
    quiet = [{"a": 1.0, "b": 1.0, "c": 1.0}, {"a": 1.01, "b": 1.0, "c": 0.99}, {"a": 0.99, "b": 1.01, "c": 1.0}]
    old = _both(tmp_path, "old", quiet, [{"a": 1e6, "b": 2e6, "c": 3e6}] * 2)
    loaded = [{**r, "a": r["a"] * 1.5} for r in quiet]
    new = _both(tmp_path, "new", loaded, [{"a": 1e6, "b": 2e6, "c": 3e6}] * 2)
    findings = bench.compare(old, new)
    (a_time,) = [f for f in findings if f.name.endswith("::a") and f.metric == "time"]
    assert a_time.kind == "noise" and not a_time.flagged
    assert a_time.note == "time +50% while instructions moved +0.0%: machine load, not torch"
    assert not [f for f in findings if f.flagged]
    text = bench.format_comparison(findings, "a", "b")
    assert "0 of 3 benchmarks flagged" in text and "1 moved in time only" in text
    # Without counts the same timings are a slowdown: nothing says otherwise.
    timed_only = _summary(tmp_path, "t-old", quiet), _summary(tmp_path, "t-new", loaded)
    assert [(f.metric, f.kind) for f in bench.compare(*timed_only) if f.flagged] == [("time", "slower")]


def test_the_release_diff_says_which_measure_moved(tmp_path):
    from specs.reporting import diff

    names = "abcde"
    quiet = [{n: 1.0 + 0.01 * ((i + k) % 3 - 1) for i, n in enumerate(names)} for k in range(3)]
    counts = {n: 1e6 * (i + 1) for i, n in enumerate(names)}
    old = _both(tmp_path, "old", quiet, [counts] * 2)
    # a: slower in time only (noise); b: slower in time and in instructions
    new = _both(
        tmp_path,
        "new",
        [{**r, "a": r["a"] * 1.5, "b": r["b"] * 1.5} for r in quiet],
        [{**counts, "b": counts["b"] * 1.2}] * 2,
    )
    report_ = {"environment": {"torch": "2.13.0"}, "rules": []}
    found = {(d.rule.split("::")[-1], d.note.split(":")[0]) for d in diff._benchmarks(report_, report_, (old, new))}
    assert found == {
        ("b", "time moved, and so did its instruction count"),
        ("b", "instruction count moved (independent of machine load)"),
    }
    timed = _summary(tmp_path, "t-old", quiet), _summary(tmp_path, "t-new", [{**r, "a": r["a"] * 1.5} for r in quiet])
    (only,) = diff._benchmarks(report_, report_, timed)
    assert only.note.startswith("time moved; no instruction counts to confirm it")
