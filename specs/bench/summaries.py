"""Summaries of one release's benchmark runs: medians, spreads, instruction counts, measured laws,
and where a release's summary is read from."""

from __future__ import annotations

import json
import math
import platform
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from specs.bench.counting import _read_counts
from specs.bench.paths import RAW, RESULTS

FORMAT = 2
#: The cheap-gradient principle: forward + reverse costs at most this multiple of the function.
CHEAP_GRADIENT_BOUND = 5.0


def _raw_runs(folder: Path) -> list[Path]:
    """pytest-benchmark's saved runs under ``folder`` (any machine subfolder), oldest first."""
    return sorted(
        (p for p in folder.rglob("*.json") if "instructions" not in p.relative_to(folder).parts), key=lambda p: p.name
    )


def _count_runs(folder: Path) -> list[Path]:
    """The instruction-count runs written by :func:`count` into ``folder/instructions``, oldest first."""
    return sorted((folder / "instructions").glob("*.json"), key=lambda p: p.name)


def _short_name(fullname: str) -> str:
    return fullname.replace("\\", "/").split("/")[-1]


def summarize(runs: Sequence[Path], torch_version: str | None = None, counts: Sequence[Path] = ()) -> dict[str, Any]:
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
            entry = per_bench.setdefault(
                _short_name(b["fullname"]),
                {
                    "group": _short_name(b["fullname"]).split("::")[-1].split("[")[0],
                    "params": {k: v for k, v in (b.get("params") or {}).items()},
                    "runs": [],
                    "iqrs": [],
                    "rounds": [],
                    "extra_info": {},
                },
            )
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
                per_bench[name] = {
                    "group": name.split("::")[-1].split("[")[0],
                    "params": c.get("params", {}),
                    "runs": [],
                    "iqrs": [],
                    "rounds": [],
                    "extra_info": {},
                }
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
            entry.update(
                median=statistics.median(e["runs"]),
                iqr=statistics.median(e["iqrs"]),
                runs=e["runs"],
                spread=_spread(e["runs"]),
                rounds=min(e["rounds"]),
            )
        if name in per_count:
            entry["instructions"] = {
                "median": statistics.median(per_count[name]),
                "runs": per_count[name],
                "spread": _spread(per_count[name]),
            }
        benchmarks[name] = entry
    summary = {
        "format": FORMAT,
        "torch": version,
        "runs": len(runs),
        "count_runs": len(counts),
        "machine": {
            "cpu": (machine.get("cpu") or {}).get("brand_raw", platform.processor()),
            "cores": (machine.get("cpu") or {}).get("count"),
            "python": machine.get("python_version"),
            "system": machine.get("system"),
        },
        "benchmarks": benchmarks,
    }
    if len(setups) > 1:
        raise SystemExit(
            "these instruction counts were made differently (calls, warm-up or selection of "
            f"benchmarks): {sorted(setups)}; counts compare only between runs made alike"
        )
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
    return [math.exp(statistics.median(math.log(e["runs"][k] / e["median"]) for e in entries)) for k in range(count)]


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
        runs = [r / f for r, f in zip(e["runs"], factors)] + e["runs"][len(factors) :]
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
    chain = sorted(
        (e["params"]["nodes"], _value(e, metric))
        for e in bench.values()
        if e["group"] == "test_engine_chain" and _value(e, metric)
    )
    if len(chain) >= 3:
        ns, ts = [n for n, _ in chain], [t for _, t in chain]
        slope, intercept = _fit(ns, ts)
        worst = max(abs(t - (intercept + slope * n)) / t for n, t in chain)
        unit = "s" if metric == "time" else "instructions"
        out["engine_per_node"] = {
            f"per_node_{unit}": slope,
            f"fixed_{unit}": intercept,
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


def _read_summary(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise SystemExit(f"{path}: not a readable benchmark summary ({error})") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), dict) or "torch" not in data:
        raise SystemExit(f"{path}: not a benchmark summary (written by `python -m specs.bench summarize`)")
    return data


def _summarize_folder(
    folder: Path, torch_version: str | None = None, last: int = 3, last_counts: int = 2
) -> dict[str, Any]:
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
