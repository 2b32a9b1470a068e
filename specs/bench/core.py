"""Benchmarks as measured laws: deterministic programs, summaries, noise-aware comparison, plots.

``nox -s bench`` times ``tests/benchmarks`` several times per torch release (pytest-benchmark saves
each run under ``build/benchmarks/torch-<release>/``) and summarizes the runs with
:func:`summarize`: per benchmark the median of the runs' medians, the runs' medians themselves,
their spread, the within-run IQR, the rule the benchmark measures and its deterministic memory
figures (bytes packed by saved-tensor hooks).  Summaries of real runs are committed as
``benchmarks/results/torch-<release>.json`` and rendered by :func:`write` as the benchmarks page of
the docs.

Wall-clock time on a shared machine is noisy (on the 2-core machine this was built on, whole
minutes run twice as fast as others).  So :func:`count` also runs every benchmark under valgrind's
callgrind, which counts the instructions of the very same calls: a figure that does not depend on
the machine's load, repeatable between runs to a fraction of a percent.  Counts are saved under
``build/benchmarks/torch-<release>/instructions/`` and summarized next to the timings.

A benchmark is flagged by :func:`compare` only when its change exceeds what repeated runs of the
same release show, separately for time and for instructions; memory figures are exact and flagged
on any change::

    python -m specs.bench count build/benchmarks/torch-2.13.0 --runs 2
    python -m specs.bench summarize build/benchmarks/torch-2.13.0 -o benchmarks/results/torch-2.13.0.json
    python -m specs.bench spread benchmarks/results/torch-2.13.0.json
    python -m specs.bench compare 2.13.0 2.15.0        # releases, summary files or run folders
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
#: Summaries of repeated runs of a committed release, unchanged or with an injected slowdown: the
#: evidence, rendered in the docs, that :func:`compare` flags a slowdown and nothing else.
CHECKS = ROOT / "benchmarks" / "checks"
RAW = ROOT / "build" / "benchmarks"
FORMAT = 2
COUNTS_FORMAT = "autograd-spec/instructions/1"
#: How :func:`count` tells the benchmarks' conftest to count: the file to write, and the prefix of
#: callgrind's dump files.
COUNT_VARIABLE = "AUTOGRAD_SPEC_BENCH_COUNT"
CALLGRIND_VARIABLE = "AUTOGRAD_SPEC_BENCH_CALLGRIND"

#: A change in instructions smaller than this is never flagged: counts repeat between runs to
#: well under 1 % (measured: see ``spread``), so 3 % is a real change in the work done.
MIN_COUNT_CHANGE = 0.03
#: Nor one smaller than this many instructions per call.  Counting sessions started at different
#: times differed by an almost constant 7,500 to 10,000 instructions per call in every benchmark,
#: from 0.2 M to 107 M instructions a call (torch 2.13.0, 41 benchmarks): an additive cost of the
#: harness, not of autograd, that two runs started together do not show.  30,000 is three times it.
MIN_COUNT_DELTA = 30_000.0

#: A change smaller than this is never flagged, however quiet the runs were.
MIN_CHANGE = 0.10
#: A change must exceed this multiple of the largest relative spread seen across repeated runs.
NOISE_FACTOR = 2.0
#: The cheap-gradient principle: forward + reverse costs at most this multiple of the function.
CHEAP_GRADIENT_BOUND = 5.0

# ---------------------------------------------------------------------------- deterministic programs

#: Ops of the benchmark programs: (name, arity, template). Values stay in [-1, 1] and never decay
#: geometrically towards 0, so no run meets denormal floats (which are many times slower).
PROGRAM_OPS: tuple[tuple[str, int, str], ...] = (
    ("tanh", 1, "torch.tanh({0})"),
    ("sigmoid", 1, "torch.sigmoid({0})"),
    ("affine", 1, "{0} * 0.5 + 0.25"),
    ("add", 2, "torch.tanh({0} + {1})"),
    ("mul", 2, "{0} * {1} * 0.5 + 0.5"),
    ("matmul", 2, "torch.tanh(({0} @ {1}) * 0.0625)"),
)
PROGRAM_SIDE = 32


def program(n_ops: int, seed: int = 0, side: int = PROGRAM_SIDE, leaves: int = 2):
    """A generated :class:`specs.generators.program.Program` of ``n_ops`` steps, the same on every release.

    hypothesis draws differ between hypothesis versions, and the benchmark environments of two torch
    releases may carry different ones; so these programs come from :class:`random.Random` with a
    fixed seed.  Values are ``side x side`` float32 matrices; the output is a scalar sum.
    """
    import torch

    from specs.generators.program import Program, Step, TensorSpec

    rng = random.Random(f"{seed}-{n_ops}-{side}")
    specs = tuple(
        TensorSpec((side, side), torch.float32, "contiguous",
                   tuple(rng.randint(-64, 64) / 64 for _ in range(side * side)), True)
        for _ in range(leaves))
    names = [f"x{i}" for i in range(leaves)]
    steps = []
    for k in range(n_ops):
        name, arity, template = PROGRAM_OPS[rng.randrange(len(PROGRAM_OPS))]
        # Mostly the newest values, so programs grow deep as well as wide.
        args = tuple(names[-1 - min(int(rng.expovariate(0.7)), len(names) - 1)] for _ in range(arity))
        steps.append(Step(f"v{k}", name, args, template.format(*args)))
        names.append(f"v{k}")
    used = {a for s in steps for a in s.args}
    loose = [n for n in names[:-1] if n not in used]
    joined = " + ".join(f"{n}.sum()" for n in [names[-1], *loose])
    steps.append(Step("out", "join", (names[-1], *loose), joined))
    return Program(specs, tuple(steps), "out")


def pedantic_rounds(function, budget_s: float = 0.3, most: int = 200, least: int = 8) -> int:
    """Rounds for ``benchmark.pedantic`` so that a timed run takes about ``budget_s`` seconds."""
    import time

    started = time.perf_counter()
    function()
    took = max(time.perf_counter() - started, 1e-6)
    return max(least, min(most, int(budget_s / took)))


# ---------------------------------------------------------------------------- summaries

def _raw_runs(folder: Path) -> list[Path]:
    """pytest-benchmark's saved runs under ``folder`` (any machine subfolder), oldest first."""
    return sorted((p for p in folder.rglob("*.json") if "instructions" not in p.relative_to(folder).parts),
                  key=lambda p: p.name)


def _count_runs(folder: Path) -> list[Path]:
    """The instruction-count runs written by :func:`count` into ``folder/instructions``, oldest first."""
    return sorted((folder / "instructions").glob("*.json"), key=lambda p: p.name)


def _read_counts(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise SystemExit(f"{path}: not a readable instruction-count file ({error})") from None
    if not isinstance(data, dict) or data.get("format") != COUNTS_FORMAT:
        raise SystemExit(f"{path}: not an instruction-count file (format {COUNTS_FORMAT!r} expected)")
    return data


def _short_name(fullname: str) -> str:
    return fullname.replace("\\", "/").split("/")[-1]


def summarize(runs: Sequence[Path], torch_version: str | None = None,
              counts: Sequence[Path] = ()) -> dict[str, Any]:
    """One summary of several pytest-benchmark runs of the same release, and its instruction counts."""
    per_bench: dict[str, dict[str, Any]] = {}
    releases, machine = set(), {}
    per_count: dict[str, list[float]] = {}
    slowdowns = set()
    for path in runs:
        try:
            data = json.loads(Path(path).read_text())
            data["benchmarks"][:0]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise SystemExit(f"{path}: not a readable pytest-benchmark run ({error!r})") from None
        machine = data.get("machine_info", machine)
        releases.add((data.get("autograd_spec") or {}).get("torch"))
        slowdowns.add((data.get("autograd_spec") or {}).get("slowdown"))
        for b in data["benchmarks"]:
            entry = per_bench.setdefault(_short_name(b["fullname"]), {
                "group": _short_name(b["fullname"]).split("::")[-1].split("[")[0],
                "params": {k: v for k, v in (b.get("params") or {}).items()},
                "runs": [], "iqrs": [], "rounds": [], "extra_info": {}})
            entry["runs"].append(b["stats"]["median"])
            entry["iqrs"].append(b["stats"]["iqr"])
            entry["rounds"].append(b["stats"]["rounds"])
            info = dict(b.get("extra_info") or {})
            entry["rule"] = info.pop("rule", "")
            entry["extra_info"] = info
    setups = set()
    for path in counts:
        data = _read_counts(path)
        setups.add(json.dumps({k: data.get(k) for k in ("calls", "warmup", "selection")}, sort_keys=True))
        releases.add(data.get("torch"))
        slowdowns.add(data.get("slowdown"))
        for name, c in data["benchmarks"].items():
            per_count.setdefault(name, []).append(c["instructions"])
            if name not in per_bench:  # counted but not timed: still a benchmark of the summary
                per_bench[name] = {"group": name.split("::")[-1].split("[")[0], "params": c.get("params", {}), "runs": [],
                                   "iqrs": [], "rounds": [], "extra_info": {}}
                info = dict(c.get("extra_info") or {})
                per_bench[name]["rule"] = info.pop("rule", "")
                per_bench[name]["extra_info"] = info
    releases.discard(None)
    if len(releases) > 1:
        raise SystemExit(f"these runs mix torch releases {sorted(releases)}: summarize one release at a time")
    version = torch_version or (releases.pop() if len(releases) == 1 else "unknown")
    benchmarks = {}
    for name, e in sorted(per_bench.items()):
        entry = {"rule": e["rule"], "group": e["group"], "params": e["params"], "extra_info": e["extra_info"]}
        if e["runs"]:
            entry.update(median=statistics.median(e["runs"]), iqr=statistics.median(e["iqrs"]),
                         runs=e["runs"], spread=_spread(e["runs"]), rounds=min(e["rounds"]))
        if name in per_count:
            entry["instructions"] = {"median": statistics.median(per_count[name]), "runs": per_count[name],
                                     "spread": _spread(per_count[name])}
        benchmarks[name] = entry
    summary = {
        "format": FORMAT, "torch": version, "runs": len(runs), "count_runs": len(counts),
        "machine": {"cpu": (machine.get("cpu") or {}).get("brand_raw", platform.processor()),
                    "cores": (machine.get("cpu") or {}).get("count"), "python": machine.get("python_version"),
                    "system": machine.get("system")},
        "benchmarks": benchmarks,
    }
    if len(setups) > 1:
        raise SystemExit("these instruction counts were made differently (calls, warm-up or selection of "
                         f"benchmarks): {sorted(setups)}; counts compare only between runs made alike")
    if setups:
        summary["count_setup"] = json.loads(setups.pop())
    slowdowns.discard(None)
    if slowdowns:
        summary["slowdown"] = sorted(slowdowns)
    summary["derived"] = derived(summary)
    return summary


def _spread(values: Sequence[float]) -> float:
    """Relative range of repeated measurements: (max - min) / median (0 for a single run)."""
    if len(values) < 2:
        return 0.0
    return (max(values) - min(values)) / statistics.median(values)


def _noise(*entries: dict[str, Any]) -> float:
    """What repeated runs say about a benchmark's noise, relative to its median.

    The largest spread across the repeated runs of either side; only when neither side has
    several runs, the largest within-run IQR over the median (a weaker estimate: it sees the
    noise of rounds within a run, not of the machine between runs).
    """
    spreads = [e.get("spread", _spread(e["runs"])) for e in entries if len(e.get("runs", [])) >= 2]
    if spreads:
        return max(spreads)
    return max(e.get("iqr", 0.0) / e["median"] if e["median"] else 0.0 for e in entries)


def _run_factors(summary: dict[str, Any]) -> list[float]:
    """Per run, how much slower the whole machine was than the runs' median (1.0: not at all).

    On a shared machine the load changes between runs and slows every benchmark of a run alike;
    the median over benchmarks of run / median is that common factor.
    """
    entries = [e for e in summary["benchmarks"].values() if e.get("runs")]
    count = min((len(e["runs"]) for e in entries), default=0)
    return [math.exp(statistics.median(math.log(e["runs"][k] / e["median"]) for e in entries))
            for k in range(count)]


def normalized(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary with each run divided by its machine-wide factor (see :func:`_run_factors`)."""
    factors = _run_factors(summary)
    if len(factors) < 2:
        return summary
    benchmarks = {}
    for name, e in summary["benchmarks"].items():
        if not e.get("runs"):
            benchmarks[name] = e
            continue
        runs = [r / f for r, f in zip(e["runs"], factors)] + e["runs"][len(factors):]
        benchmarks[name] = {**e, "runs": runs, "median": statistics.median(runs), "spread": _spread(runs)}
    return {**summary, "benchmarks": benchmarks, "run_factors": factors}


def _value(entry: dict[str, Any], metric: str) -> float | None:
    """A benchmark's median time (s) or median instructions per call, None when not measured."""
    if metric == "time":
        return entry.get("median")
    return (entry.get("instructions") or {}).get("median")


def derived(summary: dict[str, Any]) -> dict[str, Any]:
    """The laws the benchmarks are checked against: backward/forward ratio, cost per engine node.

    Computed from the times (``cheap_gradient``, ``engine_per_node``) and, where the summary has
    them, from the instruction counts (the same keys with ``_instructions``).
    """
    out: dict[str, Any] = {}
    for metric, suffix in (("time", ""), ("instructions", "_instructions")):
        out.update({key + suffix: law for key, law in _laws(summary["benchmarks"], metric).items()})
    return out


def _laws(bench: dict[str, Any], metric: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ratios = {}
    for name, e in bench.items():
        if e["group"] == "test_backward_forward_ratio" and e["params"].get("phase") == "backward":
            head, _, params = name.partition("[")
            forward = bench.get(f"{head}[{params.replace('backward', 'forward')}")
            b, f = _value(e, metric), forward and _value(forward, metric)
            if b and f:
                ratios[e["params"]["ops"]] = {"backward_over_forward": b / f, "gradient_over_function": (b + f) / f}
    if ratios:
        out["cheap_gradient"] = {
            "bound": CHEAP_GRADIENT_BOUND,
            "by_ops": {str(n): ratios[n] for n in sorted(ratios)},
            "holds": all(r["gradient_over_function"] <= CHEAP_GRADIENT_BOUND for r in ratios.values()),
        }
    chain = sorted((e["params"]["nodes"], _value(e, metric)) for e in bench.values()
                   if e["group"] == "test_engine_chain" and _value(e, metric))
    if len(chain) >= 3:
        ns, ts = [n for n, _ in chain], [t for _, t in chain]
        slope, intercept = _fit(ns, ts)
        worst = max(abs(t - (intercept + slope * n)) / t for n, t in chain)
        unit = "s" if metric == "time" else "instructions"
        out["engine_per_node"] = {
            f"per_node_{unit}": slope, f"fixed_{unit}": intercept,
            "by_nodes": {str(n): t / n for n, t in chain},
            "worst_relative_residual": worst,
            # Linear: from N = 128 on (where the fixed cost of a call is amortized) the cost per
            # node stays within a factor 1.5 over a 16-fold range of N.
            "linear": _within([t / n for n, t in chain if n >= 128], 1.5),
        }
    return out


def _within(values: Sequence[float], ratio: float) -> bool:
    return bool(values) and max(values) <= ratio * min(values)


def _fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return slope, my - slope * mx


# ---------------------------------------------------------------------------- comparison

@dataclass(frozen=True)
class Finding:
    name: str
    kind: str  # "slower", "faster", "memory", "unchanged", "noise", "only-old", "only-new"
    old: float | None
    new: float | None
    change: float | None
    threshold: float | None
    note: str = ""
    metric: str = "time"  # "time" (seconds), "instructions" (per call), "memory"

    @property
    def flagged(self) -> bool:
        return self.kind in ("slower", "faster", "memory")


def _changed(name: str, metric: str, a: dict[str, Any], b: dict[str, Any], min_change: float,
             factor: float, min_delta: float = 0.0) -> Finding:
    """A time or an instruction count, flagged beyond ``max(min_change, factor x noise)``.

    Noise is the largest relative spread across the repeated runs of either side (see
    :func:`_noise`).  ``min_delta`` (in the metric's own unit) raises the threshold to at least
    ``min_delta / old median``.  When both sides have several runs, the runs must also not overlap.
    """
    change = b["median"] / a["median"] - 1
    threshold = max(min_change, factor * _noise(a, b), min_delta / abs(a["median"]))
    apart = True
    if len(a.get("runs", [])) >= 2 and len(b.get("runs", [])) >= 2:
        apart = min(b["runs"]) > max(a["runs"]) or max(b["runs"]) < min(a["runs"])
    kind = "unchanged"
    if abs(change) > threshold and apart:
        kind = "slower" if change > 0 else "faster"
    return Finding(name, kind, a["median"], b["median"], change, threshold, metric=metric)


def compare(old: dict[str, Any], new: dict[str, Any], min_change: float = MIN_CHANGE,
            factor: float = NOISE_FACTOR, normalize: bool = True,
            min_count_change: float = MIN_COUNT_CHANGE, min_count_delta: float = MIN_COUNT_DELTA) -> list[Finding]:
    """Every benchmark of two summaries, flagged when it moved beyond its noise.

    Time: the relative change of the median is flagged beyond ``max(min_change, factor x
    noise)``, noise being the largest relative spread across the repeated runs of either summary
    (see :func:`_noise`), and, when both have several runs, only if no run of one lies within the
    range of the other.  With ``normalize`` (the default) each run is first divided by its
    machine-wide factor, and the change by the median change of all benchmarks: a machine busier in
    one run than in another slows everything alike, and that is not a finding.

    Instructions (when both summaries have counts made alike: same calls, warm-up and selection of
    benchmarks, see ``count_setup``): the same test with ``min_count_change``, and a change of at
    least ``min_count_delta`` instructions per call (see :data:`MIN_COUNT_DELTA`), never
    normalized: counts do not depend on the machine's load, and a release that does more work in
    every benchmark has changed.  Memory figures (``*bytes*`` in ``extra_info``) are exact: any
    change is flagged.
    """
    timed = lambda s: {n for n, e in s["benchmarks"].items() if "median" in e}  # noqa: E731
    if normalize:
        old, new = normalized(old), normalized(new)
        common = timed(old) & timed(new)
        shift = math.exp(statistics.median(
            math.log(new["benchmarks"][n]["median"] / old["benchmarks"][n]["median"]) for n in common)) if common else 1.0
        new = {**new, "benchmarks": {n: {**e, "median": e["median"] / shift, "runs": [r / shift for r in e["runs"]]}
                                     if "median" in e else e for n, e in new["benchmarks"].items()}}
    counts_comparable = old.get("count_setup") == new.get("count_setup")
    found = []
    a_all, b_all = old["benchmarks"], new["benchmarks"]
    for name in sorted(a_all.keys() | b_all.keys()):
        a, b = a_all.get(name), b_all.get(name)
        if a is None or b is None:
            kind = "only-new" if a is None else "only-old"
            found.append(Finding(name, kind, a and a.get("median"), b and b.get("median"), None, None))
            continue
        if "median" in a and "median" in b:
            found.append(_changed(name, "time", a, b, min_change, factor))
        if "instructions" in a and "instructions" in b and counts_comparable:
            found.append(_changed(name, "instructions", a["instructions"], b["instructions"], min_count_change,
                                  factor, min_count_delta))
        for key in sorted(k for k in a.get("extra_info", {}) if "bytes" in k):
            before, after = a["extra_info"][key], b.get("extra_info", {}).get(key)
            if before != after:
                found.append(Finding(name, "memory", before, after, None, None, f"{key}: {before} -> {after}",
                                     metric="memory"))
    return discount_machine_noise(found)


def discount_machine_noise(findings: list[Finding]) -> list[Finding]:
    """A time flag whose instruction count, measured alike, did not move is machine noise, not torch.

    Counts do not depend on how busy the machine was; when they stayed put, the time that moved
    is the machine's.  Such a finding becomes kind ``noise`` (not flagged), with the reason.
    """
    steady = {f.name: f for f in findings if f.metric == "instructions" and f.kind == "unchanged"}
    out = []
    for f in findings:
        counts = steady.get(f.name)
        if f.metric == "time" and f.flagged and counts is not None:
            f = Finding(f.name, "noise", f.old, f.new, f.change, f.threshold,
                        f"time {f.change:+.0%} while instructions moved {counts.change:+.1%}: machine load, "
                        "not torch", metric="time")
        out.append(f)
    return out


def _read_summary(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise SystemExit(f"{path}: not a readable benchmark summary ({error})") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), dict) or "torch" not in data:
        raise SystemExit(f"{path}: not a benchmark summary (written by `python -m specs.bench summarize`)")
    return data


def _summarize_folder(folder: Path, torch_version: str | None = None, last: int = 3,
                      last_counts: int = 2) -> dict[str, Any]:
    """The newest ``last`` timed and ``last_counts`` counted runs in ``folder`` (as ``nox -s bench``)."""
    runs, counts = _raw_runs(folder)[-last:], _count_runs(folder)[-last_counts:]
    if not runs and not counts:
        raise SystemExit(f"{folder}: no pytest-benchmark runs and no instruction counts in it")
    return summarize(runs, torch_version, counts)


def load(spec: str) -> dict[str, Any]:
    """A summary from a summary file, a folder of runs (timed and counted), or a release number.

    A release looks first for what ``nox -s bench`` made here: its summary
    ``build/benchmarks/torch-<release>.json``, else the newest runs in
    ``build/benchmarks/torch-<release>/``; then for the committed
    ``benchmarks/results/torch-<release>.json``.
    """
    path = Path(spec)
    if path.is_file():
        return _read_summary(path)
    if path.is_dir():
        return _summarize_folder(path)
    if path.suffix == ".json" or "/" in spec or "\\" in spec:
        raise SystemExit(f"{spec}: no such summary file or run folder")
    if (RAW / f"torch-{spec}.json").is_file():
        return _read_summary(RAW / f"torch-{spec}.json")
    raw = RAW / f"torch-{spec}"
    if raw.is_dir() and (_raw_runs(raw) or _count_runs(raw)):
        return _summarize_folder(raw, spec)
    committed = RESULTS / f"torch-{spec}.json"
    if committed.is_file():
        return _read_summary(committed)
    raise SystemExit(f"no benchmark results for {spec!r}: not a file, a folder, {raw} or {committed}")


def find(release: str, committed_only: bool = False) -> dict[str, Any] | None:
    """The benchmark summary of ``release``, or None when it has none.

    The summary ``nox -s bench`` wrote last (``build/benchmarks/torch-<release>.json``), else the
    committed one; with ``committed_only``, the committed one only (the docs use these).
    """
    places = [] if committed_only else [RAW / f"torch-{release}.json"]
    for path in [*places, RESULTS / f"torch-{release}.json"]:
        if path.is_file():
            return _read_summary(path)
    return None


# ---------------------------------------------------------------------------- instruction counts

def callgrind_totals(path: Path) -> int:
    """The instruction total of one callgrind dump file (its ``totals:`` line)."""
    for line in Path(path).read_text(errors="replace").splitlines():
        if line.startswith(("totals:", "summary:")):
            return int(line.split()[1])
    raise ValueError(f"{path}: no 'totals:' line; not a callgrind dump")


def _progress(log_file: Path) -> str:
    """How far a ``pytest -v`` run has got, from its log: e.g. ``46% (test_engine_chain[512])``."""
    import re

    done = re.findall(r"::(\S+) (?:PASSED|FAILED|ERROR|SKIPPED)\S*\s+\[\s*(\d+)%\]",
                      log_file.read_text(errors="replace") if log_file.exists() else "")
    return f"{done[-1][1]}% ({done[-1][0]} done)" if done else "starting (importing torch under callgrind)"


def _log(line: str) -> None:
    print(line, flush=True)


def count(folder: Path, runs: int = 2, pytest_args: Sequence[str] = (), jobs: int | None = None,
          log=_log) -> list[Path]:
    """Count every benchmark's instructions under callgrind, ``runs`` times; return the files written.

    Each run is a separate ``python -m pytest tests/benchmarks`` inside ``valgrind
    --tool=callgrind`` (instrumentation off until torch is imported, so a run takes minutes, not
    tens of minutes), ``jobs`` of them at once (default: one per core; callgrind is
    single-threaded).  The conftest swaps pytest-benchmark's fixture for an instruction counter
    and writes ``folder/instructions/<time>-<k>.json``.
    """
    missing = [tool for tool in ("valgrind", "callgrind_control") if not shutil.which(tool)]
    if missing:
        raise SystemExit(f"instruction counts need {' and '.join(missing)} (Debian: apt-get install valgrind)")
    out = Path(folder) / "instructions"
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    jobs = max(1, min(runs, jobs or os.cpu_count() or 1))
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="autograd-spec-callgrind-") as tmp:
        pending = list(range(1, runs + 1))
        active: list[tuple[int, subprocess.Popen, Path, Path, float]] = []
        last_progress, progress_every = time.monotonic(), 30.0
        while pending or active:
            while pending and len(active) < jobs:
                k = pending.pop(0)
                target, log_file = out / f"{stamp}-{k}.json", Path(tmp) / f"run-{k}.log"
                env = {**os.environ, COUNT_VARIABLE: str(target), CALLGRIND_VARIABLE: f"{tmp}/callgrind.out",
                       "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0", "AUTOGRAD_SPEC_PROFILE": "ci"}
                command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--collect-atstart=no",
                           f"--callgrind-out-file={tmp}/callgrind.out.%p", f"--log-file={tmp}/valgrind-{k}.%p.log",
                           sys.executable, "-m", "pytest", "-v", "--durations=5", "-p", "no:cacheprovider",
                           "-W", "ignore::pytest_benchmark.logger.PytestBenchmarkWarning",
                           str(ROOT / "tests" / "benchmarks"), *pytest_args]
                log(f"instruction count run {k} of {runs}: started under callgrind")
                handle = log_file.open("w")
                active.append((k, subprocess.Popen(command, cwd=ROOT, env=env, stdout=handle,
                                                   stderr=subprocess.STDOUT), target, log_file, time.monotonic()))
            time.sleep(1)
            if time.monotonic() - last_progress > progress_every:
                last_progress = time.monotonic()
                log("; ".join(f"run {k}: {_progress(log_file)}" for k, _, _, log_file, _ in active))
            for item in list(active):
                k, proc, target, log_file, started = item
                if proc.poll() is None:
                    continue
                active.remove(item)
                tail = log_file.read_text(errors="replace").strip().splitlines()
                if proc.returncode != 0 or not target.is_file():
                    for _, other, *_ in active:
                        other.kill()
                    raise SystemExit(f"instruction count run {k} failed (exit {proc.returncode}):\n"
                                     + "\n".join(tail[-30:]))
                # Counts depend on what ran earlier in the process (allocator and cache state), so
                # only runs of the same selection of benchmarks compare: record it.
                data = _read_counts(target)
                data["selection"] = list(pytest_args)
                target.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
                written.append(target)
                log(f"instruction count run {k} of {runs}: {tail[-1].strip('= ') if tail else ''} "
                    f"({time.monotonic() - started:.0f} s) -> {target}")
    return sorted(written)


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.4g} ms"


def _instr(count: float | None) -> str:
    """An instruction count, e.g. ``5.158 M``."""
    if count is None:
        return "-"
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(count) >= size:
            return f"{count / size:.4g} {unit}"
    return f"{count:.4g}"


def format_comparison(findings: Iterable[Finding], old: str, new: str) -> str:
    findings = list(findings)
    lines = [f"benchmarks: {old} -> {new}"]
    width = max((len(f.name) for f in findings), default=10)
    show = {"time": _ms, "instructions": _instr}
    for f in findings:
        if f.kind == "memory":
            lines.append(f"  {'MEMORY':9} {'bytes':5} {f.name:{width}}  {f.note}")
        elif f.change is None:
            lines.append(f"  {f.kind:9} {'':5} {f.name:{width}}")
        elif f.kind == "noise":
            lines.append(f"  {'noise':9} {'time':5} {f.name:{width}}  {f.note}")
        else:
            tag = f.kind.upper() if f.flagged else "ok"
            unit = "time" if f.metric == "time" else "instr"
            lines.append(f"  {tag:9} {unit:5} {f.name:{width}}  {show[f.metric](f.old):>12} -> {show[f.metric](f.new):>12}  "
                         f"{f.change:+7.1%}  (flag beyond ±{f.threshold:.0%})")
    flagged = [f for f in findings if f.flagged]
    compared = {f.name for f in findings if f.change is not None}
    by_metric = ", ".join(f"{sum(1 for f in flagged if f.metric == m)} by {m}" for m in ("time", "instructions", "memory"))
    names = sorted({f.name for f in flagged})
    noise = sum(1 for f in findings if f.kind == "noise")
    lines.append(f"{len(names)} of {len(compared)} benchmarks flagged ({by_metric})"
                 + (": " + ", ".join(names) if names else "")
                 + (f"; {noise} moved in time only, with unchanged instruction counts: machine noise" if noise else ""))
    return "\n".join(lines)


def format_spread(summary: dict[str, Any]) -> str:
    lines = [f"torch {summary['torch']}: {len(summary['benchmarks'])} benchmarks, {summary['runs']} timed runs, "
             f"{summary.get('count_runs', 0)} counted runs"]
    width = max(len(n) for n in summary["benchmarks"])
    for name, e in summary["benchmarks"].items():
        text = f"  {name:{width}}"
        if "median" in e:
            runs = ", ".join(_ms(r) for r in e["runs"])
            text += (f"  median {_ms(e['median']):>12}  spread {e['spread']:6.1%}  "
                     f"IQR/median {e['iqr'] / e['median']:6.1%}  runs: {runs}")
        if "instructions" in e:
            c = e["instructions"]
            text += f"  | instructions {_instr(c['median']):>10}  spread {c['spread']:7.3%}"
        lines.append(text)
    for label, spreads in (("time", [e["spread"] for e in summary["benchmarks"].values() if "spread" in e]),
                           ("instructions", [e["instructions"]["spread"] for e in summary["benchmarks"].values()
                                             if "instructions" in e])):
        if spreads:
            lines.append(f"spread across runs ({label}): median {statistics.median(spreads):.2%}, "
                         f"largest {max(spreads):.2%}")
    for law, data in summary.get("derived", {}).items():
        lines.append(f"{law}: {json.dumps(data)}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- docs page

def _summaries(directory: Path) -> list[dict[str, Any]]:
    from specs.engine import versions

    found = [json.loads(p.read_text()) for p in sorted(directory.glob("torch-*.json"))]
    return sorted(found, key=lambda s: versions.parse(s["torch"]))


def _figure(fig, figures: Path, prefix: str, stem: str, alt: str, dpi: int = 80) -> str:
    """Save a matplotlib figure into ``figures`` and return the reST image directive showing it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(figures / f"{stem}.png", dpi=dpi)
    plt.close(fig)
    return f".. image:: {prefix}/{stem}.png\n   :alt: {alt}\n\n"


def _render_checks(summaries, checks, figures: Path, prefix: str, plt) -> str:
    """Each check compared with its release: what was flagged, and every change against its threshold."""
    by_release = {s["torch"]: s for s in summaries}
    usable = [(name, c) for name, c in checks if c["torch"] in by_release]
    if not usable:
        return ""
    out = [".. _benchmark-check:\n\nDoes the comparison catch a slowdown?\n"
           "-------------------------------------\n\n"
           "Below, the committed summary of a release is compared (``python -m specs.bench compare``) with "
           "later runs of the same release on the same machine, kept in ``benchmarks/checks/``: once "
           "unchanged, once with a slowdown injected through ``AUTOGRAD_SPEC_BENCH_SLOWDOWN`` (see "
           ":doc:`/running`). The unchanged rerun should flag nothing, the slowed one only the slowed "
           "benchmark.\n\n"
           ".. list-table:: Checks\n   :header-rows: 1\n\n   * - check\n     - against\n     - injected\n"
           "     - flagged by time\n     - flagged by instructions\n"]
    fig, axes = plt.subplots(1, len(usable), figsize=(5.5 * len(usable), max(3.5, 0.15 * 41 + 1)), squeeze=False)
    for ax, (name, check) in zip(axes[0], usable):
        base = by_release[check["torch"]]
        findings = compare(base, check)
        flagged = {m: sorted(f.name.split("::")[-1] for f in findings if f.flagged and f.metric == m)
                   for m in ("time", "instructions")}
        injected = ", ".join(f"``{x}``" for x in check.get("slowdown", [])) or "nothing"
        out.append(f"   * - {name}\n     - torch {check['torch']}\n     - {injected}\n"
                   + "".join(f"     - {len(flagged[m])}{': ' + ', '.join(flagged[m]) if flagged[m] else ''}\n"
                             for m in ("time", "instructions")))
        names = sorted({f.name for f in findings if f.change is not None})
        ratio = {(f.name, f.metric): f.change / f.threshold for f in findings if f.change is not None}
        ys = range(len(names))
        for offset, metric in ((0.2, "time"), (-0.2, "instructions")):
            ax.barh([y + offset for y in ys], [ratio.get((n, metric), 0.0) for n in names], 0.4, label=metric)
        for x in (-1, 1):
            ax.axvline(x, color="grey", linestyle="--", linewidth=1)
        ax.set_yticks(list(ys))
        ax.set_yticklabels([n.split("::")[-1].removeprefix("test_") for n in names], fontsize=6)
        ax.set_xlabel("change / threshold (beyond ±1: flagged)")
        ax.set_title(f"{name} against torch {check['torch']}", fontsize=9)
        ax.legend(fontsize=8)
    out.append("\n" + _figure(fig, figures, prefix, "checks", "per benchmark, the change of time and of "
                                "instructions divided by the threshold for flagging it, for each check"))
    return "".join(out)


def _bars(ax, summaries, names, key, metric, scale):
    """Grouped bars: one group per benchmark, one bar per release, error bars spanning the runs."""
    width = 0.8 / len(summaries)
    for i, s in enumerate(summaries):
        xs, ys, lo, hi = [], [], [], []
        for j, n in enumerate(names):
            e = s["benchmarks"].get(n, {})
            e = e if metric == "time" else e.get("instructions")
            if e and "median" in e:
                xs.append(j + (i - (len(summaries) - 1) / 2) * width)
                ys.append(e["median"] * scale)
                lo.append((e["median"] - min(e["runs"])) * scale)
                hi.append((max(e["runs"]) - e["median"]) * scale)
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2, label=f"torch {s['torch']}")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([n[len(key):].strip("[]") or "-" for n in names], rotation=30, ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.legend(fontsize=8)


def render(summaries: list[dict[str, Any]], figures: Path, prefix: str,
           checks: Sequence[tuple[str, dict[str, Any]]] = ()) -> str:
    """The benchmarks page (reST); writes its PNG figures into ``figures``.

    ``checks``: (name, summary) of repeated runs of a release in ``summaries``, unchanged or with
    an injected slowdown; each is compared with that release and the outcome shown.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    title = "Benchmarks"
    out = [f".. _benchmarks:\n\n{title}\n{'=' * len(title)}\n\n"]
    if not summaries:
        return out[0] + "No benchmark results have been committed yet (``benchmarks/results/torch-*.json``).\n"
    figures.mkdir(parents=True, exist_ok=True)
    releases = [s["torch"] for s in summaries]
    counted = [s for s in summaries if any("instructions" in e for e in s["benchmarks"].values())]
    out.append(
        "Cost is part of autograd's contract: recording costs time and memory, reverse mode costs a "
        "small multiple of the function, micro-batching trades time for memory. Each benchmark in "
        "``tests/benchmarks/`` measures one such claim and names the rule it belongs to. The figures "
        "below come from the committed summaries ``benchmarks/results/torch-<release>.json`` "
        f"(releases: {', '.join(releases)}), each made by ``nox -s bench`` on one machine from three "
        "kinds of measurement:\n\n"
        "* **time**: the median of several pytest-benchmark runs; the error bars span the runs;\n"
        "* **instructions**: the instructions one call executes, counted by valgrind's callgrind in "
        "separate runs of the same benchmark code. Counts do not depend on how busy the machine is; "
        "they repeat to a fraction of a percent;\n"
        "* **memory**: the bytes autograd packs for backward, counted exactly through saved-tensor hooks.\n\n"
        "``python -m specs.bench compare OLD NEW`` flags a benchmark only when it moved beyond what "
        "repeated runs of one release show: see :ref:`benchmark-noise`.\n\n")
    out.append(".. list-table:: Runs\n   :header-rows: 1\n\n   * - torch\n     - benchmarks\n"
               "     - timed runs\n     - median time spread across runs\n"
               "     - counted runs\n     - median instruction spread across runs\n     - machine\n")
    for s in summaries:
        spreads = [e["spread"] for e in s["benchmarks"].values() if "spread" in e]
        count_spreads = [e["instructions"]["spread"] for e in s["benchmarks"].values() if "instructions" in e]
        m = s.get("machine", {})
        time_spread = f"{statistics.median(spreads):.1%}" if spreads else "-"
        count_spread = f"{statistics.median(count_spreads):.3%}" if count_spreads else "-"
        out.append(f"   * - {s['torch']}\n     - {len(s['benchmarks'])}\n     - {s['runs']}\n     - {time_spread}\n"
                   f"     - {s.get('count_runs', 0)}\n     - {count_spread}\n"
                   f"     - {m.get('cpu', '?')} ({m.get('cores', '?')} cores, shared)\n")
    out.append("\n")

    # Scaling laws.
    out.append("Scaling laws\n------------\n\n")
    rows = [("time", "", 1e6, "backward time per node (µs)")]
    if counted:
        rows.append(("instructions", "_instructions", 1.0, "instructions per node"))
    fig, axes = plt.subplots(len(rows), 2, figsize=(10, 3.4 * len(rows)), squeeze=False)
    for r, (metric, suffix, scale, label) in enumerate(rows):
        for s in summaries:
            d = s.get("derived", {})
            if "engine_per_node" + suffix in d:
                by = sorted((int(n), v) for n, v in d["engine_per_node" + suffix]["by_nodes"].items())
                axes[r][0].plot([n for n, _ in by], [v * scale for _, v in by], "o-", label=f"torch {s['torch']}")
            if "cheap_gradient" + suffix in d:
                by = sorted((int(n), v) for n, v in d["cheap_gradient" + suffix]["by_ops"].items())
                axes[r][1].plot([n for n, _ in by], [v["gradient_over_function"] for _, v in by], "o-",
                                label=f"torch {s['torch']}")
        axes[r][0].set(xscale="log", xlabel="nodes N in the chain", ylabel=label,
                       title=f"Engine overhead per node ({metric})", ylim=(0, None))
        axes[r][1].axhline(CHEAP_GRADIENT_BOUND, color="grey", linestyle="--", label="cheap-gradient bound")
        axes[r][1].set(xscale="log", xlabel="ops in the generated program", ylabel="(forward + backward) / forward",
                       title=f"Cost of the gradient ({metric})", ylim=(0, None))
        for ax in axes[r]:
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8)
    out.append(_figure(fig, figures, prefix, "scaling", "cost per node against chain length, and the "
                       "gradient-to-function cost ratio against program size, in time and in instructions", dpi=90))
    out.append("Left: backward through a chain of N additions on a one-element tensor, divided by N "
               "(rule ``leaves.backward-computes-the-gradient``): flat means the engine's cost is linear "
               "in the number of nodes. Right: forward with recording plus backward, over the forward "
               "alone, for generated programs of 32 x 32 matrices (tanh, sigmoid, sums, products, "
               "matmul), against the cheap-gradient bound of 5."
               + (" Top row in time, bottom row in instructions." if counted else "") + "\n\n")
    out.append(".. list-table:: Laws per release\n   :header-rows: 1\n\n   * - torch\n"
               "     - per node\n     - linear in N\n"
               "     - (forward + backward) / forward, by program size\n")
    for s in summaries:
        d = s.get("derived", {})
        for metric, suffix in (("time", ""), ("instructions", "_instructions")):
            e, c = d.get("engine_per_node" + suffix), d.get("cheap_gradient" + suffix)
            if not (e or c):
                continue
            if e:
                node = (f"{e['per_node_s'] * 1e6:.2f} µs" if metric == "time"
                        else f"{e['per_node_instructions']:,.0f} instructions")
            lin = ("yes" if e["linear"] else "no") if e else "-"
            ratio = ", ".join(f"{n} ops: {v['gradient_over_function']:.2f}"
                              for n, v in sorted(c["by_ops"].items(), key=lambda kv: int(kv[0]))) if c else "-"
            out.append(f"   * - {s['torch']} ({metric})\n     - {node if e else '-'}\n     - {lin}\n     - {ratio}\n")
    out.append("\n")

    # Noise: why counts.
    if counted:
        s = counted[-1]
        names = [n for n, e in s["benchmarks"].items() if "spread" in e and "instructions" in e]
        out.append(".. _benchmark-noise:\n\nNoise: time against instructions\n"
                   "--------------------------------\n\n")
        fig, ax = plt.subplots(figsize=(10, max(3.0, 0.16 * len(names) + 1)))
        ys = range(len(names))
        ax.barh([y + 0.2 for y in ys], [max(s["benchmarks"][n]["spread"], 1e-5) * 100 for n in names], 0.4,
                label=f"time ({s['runs']} runs)")
        ax.barh([y - 0.2 for y in ys], [max(s["benchmarks"][n]["instructions"]["spread"], 1e-5) * 100 for n in names],
                0.4, label=f"instructions ({s['count_runs']} runs)")
        ax.set_yticks(list(ys))
        ax.set_yticklabels([n.split("::")[-1].removeprefix("test_") for n in names], fontsize=6)
        ax.set_xscale("log")
        ax.set_xlabel("spread across runs: (max - min) / median, % (log scale)")
        ax.set_title(f"Run-to-run spread per benchmark, torch {s['torch']}")
        ax.legend(fontsize=8)
        noise_figure = _figure(fig, figures, prefix, "noise", "run-to-run spread of time and of instructions "
                               "per benchmark, log scale")
        time_spreads = [s["benchmarks"][n]["spread"] for n in names]
        count_spreads = [s["benchmarks"][n]["instructions"]["spread"] for n in names]
        out.append(
            f"On the machine these results come from, times of the same benchmark in repeated runs of "
            f"torch {s['torch']} differ by {statistics.median(time_spreads):.0%} (median over benchmarks; "
            f"up to {max(time_spreads):.0%}); the instruction counts by {statistics.median(count_spreads):.3%} "
            f"(up to {max(count_spreads):.3%}). A shared machine changes speed by whole factors from one "
            "minute to the next, which no amount of repetition within a run averages out. So "
            "``python -m specs.bench compare`` judges each measure against its own noise: a time must "
            f"move by more than max({MIN_CHANGE:.0%}, {NOISE_FACTOR:g} × its spread), after dividing out "
            "what slowed every benchmark of a run alike; an instruction count by more than "
            f"max({MIN_COUNT_CHANGE:.0%}, {NOISE_FACTOR:g} × its spread) and by more than "
            f"{MIN_COUNT_DELTA:,.0f} instructions a call (sessions started at different times differ by "
            "up to 10,000 a call in every benchmark alike: the harness, not autograd), never divided out"
            + (": :ref:`benchmark-check` shows what that catches.\n\n" if checks else ".\n\n"))
        out.append(noise_figure)

    if checks:
        out.append(_render_checks(summaries, checks, figures, prefix, plt))

    # Per benchmark: medians across releases.
    out.append("Medians per benchmark and release\n---------------------------------\n\n")
    groups: dict[str, list[str]] = {}
    for s in summaries:
        for name, e in s["benchmarks"].items():
            key = name.split("[")[0]
            if name not in groups.setdefault(key, []):
                groups[key].append(name)
    for key in sorted(groups):
        names = groups[key]
        rule = next((s["benchmarks"][n]["rule"] for s in summaries for n in names if n in s["benchmarks"]), "")
        heading = key.replace(".py::", " · ")
        out.append(f"{heading}\n{'~' * len(heading)}\n\n")
        if rule:
            out.append(f"Rule :ref:`{rule} <rule-{rule.replace('.', '-')}>`.\n\n")
        has_counts = any("instructions" in s["benchmarks"].get(n, {}) for s in summaries for n in names)
        panels = 2 if has_counts else 1
        fig, axes = plt.subplots(1, panels, figsize=(min(10, (2.2 + 0.7 * len(names) * len(summaries)) * panels), 3.2),
                                 squeeze=False)
        _bars(axes[0][0], summaries, names, key, "time", 1e3)
        axes[0][0].set_ylabel("median time (ms)")
        if has_counts:
            _bars(axes[0][1], summaries, names, key, "instructions", 1.0)
            axes[0][1].set_ylabel("instructions per call")
        out.append(_figure(fig, figures, prefix, key.split("::")[-1], f"medians of {key} per release"
                           + (", time and instructions" if has_counts else "")))
        memory = sorted({k for s in summaries for n in names for k in s["benchmarks"].get(n, {}).get("extra_info", {})
                         if "bytes" in k})
        out.append(".. list-table::\n   :header-rows: 1\n\n   * - benchmark\n")
        out.extend(f"     - torch {r} time (spread)\n" for r in releases)
        if has_counts:
            out.extend(f"     - torch {r} instructions\n" for r in releases)
        out.extend(f"     - {k.replace('_', ' ')}\n" for k in memory)
        for n in names:
            out.append(f"   * - ``{n[len(key):].strip('[]') or n}``\n")
            for s in summaries:
                e = s["benchmarks"].get(n, {})
                out.append(f"     - {_ms(e['median'])} ({e['spread']:.0%})\n" if "median" in e else "     - \n")
            if has_counts:
                for s in summaries:
                    c = s["benchmarks"].get(n, {}).get("instructions")
                    out.append(f"     - {c['median']:,.0f}\n" if c else "     - \n")
            for k in memory:
                values = {s["benchmarks"][n]["extra_info"].get(k) for s in summaries if n in s["benchmarks"]}
                values.discard(None)
                out.append(f"     - {' / '.join(f'{v:,}' for v in sorted(values))}\n")
        out.append("\n")
    return "".join(out)


def write(root: Path) -> Path:
    """Render ``docs/generated/benchmarks.rst`` (and its figures) from ``benchmarks/results``."""
    target = root / "docs" / "generated" / "benchmarks.rst"
    target.parent.mkdir(parents=True, exist_ok=True)
    # Re-render (text and figures) only when the results or this renderer changed, so a warm
    # docs build does not see new files and re-read the page.
    checks_dir = root / "benchmarks" / "checks"
    inputs = (sorted((root / "benchmarks" / "results").glob("*.json")) + sorted(checks_dir.glob("*.json"))
              + [Path(__file__)])
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in inputs)).hexdigest()
    stamp = target.with_suffix(".stamp")
    if target.exists() and stamp.exists() and stamp.read_text() == digest:
        return target
    checks = [(p.stem, _read_summary(p)) for p in sorted(checks_dir.glob("*.json"))]
    text = render(_summaries(root / "benchmarks" / "results"), target.parent / "benchmarks", "benchmarks", checks)
    target.write_text(text)
    stamp.write_text(digest)
    return target


# ---------------------------------------------------------------------------- command line

def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m specs.bench", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("count", help="count every benchmark's instructions under callgrind (needs valgrind)")
    p.add_argument("folder", type=Path, help="e.g. build/benchmarks/torch-2.13.0 (counts go to its instructions/)")
    p.add_argument("--runs", type=int, default=2, help="separate counted runs, to measure their spread (default 2)")
    p.add_argument("--jobs", type=int, help="runs at once (default: one per core)")
    p.epilog = "Arguments after -- go to pytest, e.g. -- -k hvp"
    p = sub.add_parser("summarize", help="summarize saved pytest-benchmark runs and instruction counts of one release")
    p.add_argument("folder", type=Path, help="e.g. build/benchmarks/torch-2.13.0")
    p.add_argument("--last", type=int, default=3, help="use the newest LAST timed runs (default 3)")
    p.add_argument("--last-counts", type=int, default=2, help="use the newest LAST_COUNTS counted runs (default 2)")
    p.add_argument("--torch", help="the release (default: read from the runs)")
    p.add_argument("-o", "--output", type=Path, help="write the summary here (default: print the spread)")
    p = sub.add_parser("spread", help="per benchmark: the runs' medians and their spread")
    p.add_argument("results", help="summary file, run folder or release")
    p = sub.add_parser("compare", help="flag benchmarks that moved beyond the noise of repeated runs")
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--min-change", type=float, default=MIN_CHANGE)
    p.add_argument("--factor", type=float, default=NOISE_FACTOR)
    p.add_argument("--raw", action="store_true", help="do not divide out machine-wide slowdowns per run")
    p.add_argument("--fail", action="store_true", help="exit with status 1 when something is flagged")
    argv = list(sys.argv[1:] if argv is None else argv)
    pytest_args = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    if args.command == "count":
        if args.runs < 1:
            parser.error("--runs must be at least 1")
        count(args.folder, args.runs, pytest_args, args.jobs)
        print(format_spread(summarize([], None, _count_runs(args.folder)[-args.runs:])))
        return 0
    if args.command == "summarize":
        runs = _raw_runs(args.folder)[-args.last:] if args.last > 0 else []
        counts = _count_runs(args.folder)[-args.last_counts:] if args.last_counts > 0 else []
        if not runs and not counts:
            raise SystemExit(f"no pytest-benchmark runs and no instruction counts under {args.folder}")
        summary = summarize(runs, args.torch, counts)
        if args.output:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
        print(format_spread(summary))
        return 0
    if args.command == "spread":
        print(format_spread(load(args.results)))
        return 0
    old, new = load(args.old), load(args.new)
    findings = compare(old, new, args.min_change, args.factor, normalize=not args.raw)
    print(format_comparison(findings, f"torch {old['torch']} ({args.old})", f"torch {new['torch']} ({args.new})"))
    if "count_setup" in old and "count_setup" in new and old["count_setup"] != new["count_setup"]:
        print(f"instruction counts not compared: made differently ({old['count_setup']} and {new['count_setup']})")
    return 1 if args.fail and any(f.flagged for f in findings) else 0


def _main_with_errors(argv: Sequence[str] | None = None) -> int:
    """:func:`main`, with bad input (a missing or corrupt file, a wrong folder) as one line and exit 2."""
    try:
        return main(argv)
    except SystemExit as stop:
        if isinstance(stop.code, str):
            print(f"error: {stop.code}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(_main_with_errors())
