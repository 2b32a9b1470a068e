"""Benchmarks as measured laws: deterministic programs, summaries, noise-aware comparison, plots.

``nox -s bench`` times ``tests/benchmarks`` several times per torch release (pytest-benchmark saves
each run under ``build/benchmarks/torch-<release>/``) and summarizes the runs with
:func:`summarize`: per benchmark the median of the runs' medians, the runs' medians themselves,
their spread, the within-run IQR, the rule the benchmark measures and its deterministic memory
figures (bytes packed by saved-tensor hooks).  Summaries of real runs are committed as
``benchmarks/results/torch-<release>.json`` and rendered by :func:`write` as the benchmarks page of
the docs.

A benchmark is flagged by :func:`compare` only when its change exceeds what repeated runs of the
same release show; memory figures are exact and flagged on any change::

    python -m specs.bench summarize build/benchmarks/torch-2.13.0 -o benchmarks/results/torch-2.13.0.json
    python -m specs.bench spread benchmarks/results/torch-2.13.0.json
    python -m specs.bench compare 2.13.0 2.15.0        # releases, summary files or run folders
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import platform
import random
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
RAW = ROOT / "build" / "benchmarks"
FORMAT = 1

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
    """A generated :class:`specs.program.Program` of ``n_ops`` steps, the same on every release.

    hypothesis draws differ between hypothesis versions, and the benchmark environments of two torch
    releases may carry different ones; so these programs come from :class:`random.Random` with a
    fixed seed.  Values are ``side x side`` float32 matrices; the output is a scalar sum.
    """
    import torch

    from .program import Program, Step, TensorSpec

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
    return sorted(folder.rglob("*.json"), key=lambda p: p.name)


def _short_name(fullname: str) -> str:
    return fullname.replace("\\", "/").split("/")[-1]


def summarize(runs: Sequence[Path], torch_version: str | None = None) -> dict[str, Any]:
    """One summary of several pytest-benchmark runs of the same release."""
    per_bench: dict[str, dict[str, Any]] = {}
    releases, machine = set(), {}
    for path in runs:
        data = json.loads(Path(path).read_text())
        machine = data.get("machine_info", machine)
        releases.add((data.get("autograd_spec") or {}).get("torch"))
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
    releases.discard(None)
    version = torch_version or (releases.pop() if len(releases) == 1 else "unknown")
    benchmarks = {}
    for name, e in sorted(per_bench.items()):
        median = statistics.median(e["runs"])
        benchmarks[name] = {
            "rule": e["rule"], "group": e["group"], "params": e["params"],
            "median": median, "iqr": statistics.median(e["iqrs"]),
            "runs": e["runs"], "spread": _spread(e["runs"]),
            "rounds": min(e["rounds"]), "extra_info": e["extra_info"],
        }
    summary = {
        "format": FORMAT, "torch": version, "runs": len(runs),
        "machine": {"cpu": (machine.get("cpu") or {}).get("brand_raw", platform.processor()),
                    "cores": (machine.get("cpu") or {}).get("count"), "python": machine.get("python_version"),
                    "system": machine.get("system")},
        "benchmarks": benchmarks,
    }
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
        runs = [r / f for r, f in zip(e["runs"], factors)] + e["runs"][len(factors):]
        benchmarks[name] = {**e, "runs": runs, "median": statistics.median(runs), "spread": _spread(runs)}
    return {**summary, "benchmarks": benchmarks, "run_factors": factors}


def derived(summary: dict[str, Any]) -> dict[str, Any]:
    """The laws the timings are checked against: backward/forward ratio, time per engine node."""
    bench = summary["benchmarks"]
    out: dict[str, Any] = {}
    ratios = {}
    for name, e in bench.items():
        if e["group"] == "test_backward_forward_ratio" and e["params"].get("phase") == "backward":
            head, _, params = name.partition("[")
            forward = bench.get(f"{head}[{params.replace('backward', 'forward')}")
            if forward:
                n = e["params"]["ops"]
                ratios[n] = {"backward_over_forward": e["median"] / forward["median"],
                             "gradient_over_function": (e["median"] + forward["median"]) / forward["median"]}
    if ratios:
        out["cheap_gradient"] = {
            "bound": CHEAP_GRADIENT_BOUND,
            "by_ops": {str(n): ratios[n] for n in sorted(ratios)},
            "holds": all(r["gradient_over_function"] <= CHEAP_GRADIENT_BOUND for r in ratios.values()),
        }
    chain = sorted((e["params"]["nodes"], e["median"]) for e in bench.values() if e["group"] == "test_engine_chain")
    if len(chain) >= 3:
        ns, ts = [n for n, _ in chain], [t for _, t in chain]
        slope, intercept = _fit(ns, ts)
        worst = max(abs(t - (intercept + slope * n)) / t for n, t in chain)
        out["engine_per_node"] = {
            "per_node_s": slope, "fixed_s": intercept,
            "by_nodes": {str(n): t / n for n, t in chain},
            "worst_relative_residual": worst,
            # Linear: from N = 128 on (where the fixed cost of a call is amortized) the time per
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
    kind: str  # "slower", "faster", "memory", "unchanged", "only-old", "only-new"
    old: float | None
    new: float | None
    change: float | None
    threshold: float | None
    note: str = ""

    @property
    def flagged(self) -> bool:
        return self.kind in ("slower", "faster", "memory")


def compare(old: dict[str, Any], new: dict[str, Any], min_change: float = MIN_CHANGE,
            factor: float = NOISE_FACTOR, normalize: bool = True) -> list[Finding]:
    """Every benchmark of two summaries, flagged when it moved beyond its noise.

    A time is flagged when the relative change of the median exceeds
    ``max(min_change, factor x noise)``, noise being the largest relative spread across the
    repeated runs of either summary (see :func:`_noise`), and, when both have several runs, no run
    of one lies within the range of the other.  With ``normalize`` (the default) each run is first
    divided by its machine-wide factor, and the change by the median change of all benchmarks: a
    machine busier in one run than in another slows everything alike, and that is not a finding.
    Memory figures (``*bytes*`` in ``extra_info``) are exact: any change is flagged.
    """
    if normalize:
        old, new = normalized(old), normalized(new)
        common = old["benchmarks"].keys() & new["benchmarks"].keys()
        shift = math.exp(statistics.median(
            math.log(new["benchmarks"][n]["median"] / old["benchmarks"][n]["median"]) for n in common)) if common else 1.0
        new = {**new, "benchmarks": {n: {**e, "median": e["median"] / shift, "runs": [r / shift for r in e["runs"]]}
                                     for n, e in new["benchmarks"].items()}}
    found = []
    a_all, b_all = old["benchmarks"], new["benchmarks"]
    for name in sorted(a_all.keys() | b_all.keys()):
        a, b = a_all.get(name), b_all.get(name)
        if a is None or b is None:
            kind = "only-new" if a is None else "only-old"
            found.append(Finding(name, kind, a and a["median"], b and b["median"], None, None))
            continue
        change = b["median"] / a["median"] - 1
        threshold = max(min_change, factor * _noise(a, b))
        apart = True
        if len(a.get("runs", [])) >= 2 and len(b.get("runs", [])) >= 2:
            apart = min(b["runs"]) > max(a["runs"]) or max(b["runs"]) < min(a["runs"])
        kind = "unchanged"
        if abs(change) > threshold and apart:
            kind = "slower" if change > 0 else "faster"
        found.append(Finding(name, kind, a["median"], b["median"], change, threshold))
        for key in sorted(k for k in a.get("extra_info", {}) if "bytes" in k):
            before, after = a["extra_info"][key], b.get("extra_info", {}).get(key)
            if before != after:
                found.append(Finding(name, "memory", before, after, None, None, f"{key}: {before} -> {after}"))
    return found


def load(spec: str) -> dict[str, Any]:
    """A summary from a summary file, a folder of pytest-benchmark runs, or a release number.

    A release looks first for fresh runs in ``build/benchmarks/torch-<release>/``, then for the
    committed ``benchmarks/results/torch-<release>.json``.
    """
    path = Path(spec)
    if path.is_file():
        return json.loads(path.read_text())
    if path.is_dir():
        return summarize(_raw_runs(path))
    raw = RAW / f"torch-{spec}"
    if raw.is_dir() and _raw_runs(raw):
        return summarize(_raw_runs(raw), spec)
    committed = RESULTS / f"torch-{spec}.json"
    if committed.is_file():
        return json.loads(committed.read_text())
    raise SystemExit(f"no benchmark results for {spec!r}: not a file, a folder, {raw} or {committed}")


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.4g} ms"


def format_comparison(findings: Iterable[Finding], old: str, new: str) -> str:
    findings = list(findings)
    lines = [f"benchmarks: {old} -> {new}"]
    width = max((len(f.name) for f in findings), default=10)
    for f in findings:
        if f.kind == "memory":
            lines.append(f"  {'MEMORY':9} {f.name:{width}}  {f.note}")
        elif f.change is None:
            lines.append(f"  {f.kind:9} {f.name:{width}}")
        else:
            tag = f.kind.upper() if f.flagged else "ok"
            lines.append(f"  {tag:9} {f.name:{width}}  {_ms(f.old):>12} -> {_ms(f.new):>12}  "
                         f"{f.change:+7.1%}  (flag beyond ±{f.threshold:.0%})")
    flagged = [f for f in findings if f.flagged]
    lines.append(f"{len(flagged)} flagged of {sum(1 for f in findings if f.change is not None)} compared")
    return "\n".join(lines)


def format_spread(summary: dict[str, Any]) -> str:
    lines = [f"torch {summary['torch']}: {len(summary['benchmarks'])} benchmarks, {summary['runs']} runs"]
    width = max(len(n) for n in summary["benchmarks"])
    for name, e in summary["benchmarks"].items():
        runs = ", ".join(_ms(r) for r in e["runs"])
        lines.append(f"  {name:{width}}  median {_ms(e['median']):>12}  spread {e['spread']:6.1%}  "
                     f"IQR/median {e['iqr'] / e['median']:6.1%}  runs: {runs}")
    spreads = [e["spread"] for e in summary["benchmarks"].values()]
    if spreads:
        lines.append(f"spread across runs: median {statistics.median(spreads):.1%}, largest {max(spreads):.1%}")
    for law, data in summary.get("derived", {}).items():
        lines.append(f"{law}: {json.dumps(data)}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- docs page

def _summaries(directory: Path) -> list[dict[str, Any]]:
    from . import versions

    found = [json.loads(p.read_text()) for p in sorted(directory.glob("torch-*.json"))]
    return sorted(found, key=lambda s: versions.parse(s["torch"]))


def render(summaries: list[dict[str, Any]], figures: Path, prefix: str) -> str:
    """The benchmarks page (reST); writes its PNG figures into ``figures``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    title = "Benchmarks"
    out = [f".. _benchmarks:\n\n{title}\n{'=' * len(title)}\n\n"]
    if not summaries:
        return out[0] + "No benchmark results have been committed yet (``benchmarks/results/torch-*.json``).\n"
    figures.mkdir(parents=True, exist_ok=True)
    releases = [s["torch"] for s in summaries]
    out.append(
        "Cost is part of autograd's contract: recording costs time and memory, reverse mode costs a "
        "small multiple of the function, micro-batching trades time for memory. Each benchmark in "
        "``tests/benchmarks/`` measures one such claim and names the rule it belongs to. The medians "
        "below come from the committed summaries ``benchmarks/results/torch-<release>.json`` "
        f"(releases: {', '.join(releases)}), each the median of several runs of ``nox -s bench`` "
        "on one machine; the error bars span the runs. Timings from a shared machine are noisy: "
        "``python -m specs.bench compare OLD NEW`` flags a change only beyond the spread of "
        "repeated runs. Memory figures are exact: they count the bytes autograd packs for backward "
        "through saved-tensor hooks.\n\n")
    out.append(".. list-table:: Runs\n   :header-rows: 1\n\n   * - torch\n     - runs\n     - benchmarks\n"
               "     - machine\n     - median spread across runs\n")
    for s in summaries:
        spreads = [e["spread"] for e in s["benchmarks"].values()]
        m = s.get("machine", {})
        out.append(f"   * - {s['torch']}\n     - {s['runs']}\n     - {len(s['benchmarks'])}\n"
                   f"     - {m.get('cpu', '?')} ({m.get('cores', '?')} cores, shared)\n"
                   f"     - {statistics.median(spreads):.1%}\n")
    out.append("\n")

    # Scaling laws.
    out.append("Scaling laws\n------------\n\n")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for s in summaries:
        d = s.get("derived", {})
        if "engine_per_node" in d:
            by = sorted((int(n), v) for n, v in d["engine_per_node"]["by_nodes"].items())
            axes[0].plot([n for n, _ in by], [v * 1e6 for _, v in by], "o-", label=f"torch {s['torch']}")
        if "cheap_gradient" in d:
            by = sorted((int(n), v) for n, v in d["cheap_gradient"]["by_ops"].items())
            axes[1].plot([n for n, _ in by], [v["gradient_over_function"] for _, v in by], "o-",
                         label=f"torch {s['torch']}")
    axes[0].set(xscale="log", xlabel="nodes N in the chain", ylabel="backward time per node (µs)",
                title="Engine overhead per node", ylim=(0, None))
    axes[1].axhline(CHEAP_GRADIENT_BOUND, color="grey", linestyle="--", label="cheap-gradient bound")
    axes[1].set(xscale="log", xlabel="ops in the generated program", ylabel="(forward + backward) / forward",
                title="Cost of the gradient", ylim=(0, None))
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(figures / "scaling.png", dpi=90)
    plt.close(fig)
    out.append(f".. image:: {prefix}/scaling.png\n   :alt: time per node against chain length, and the "
               "gradient-to-function time ratio against program size\n\n")
    out.append("Left: backward through a chain of N additions on a one-element tensor, divided by N "
               "(rule ``leaves.backward-computes-the-gradient``): flat means the engine's cost is linear "
               "in the number of nodes. Right: forward with recording plus backward, over the forward "
               "alone, for generated programs of 32 x 32 matrices (tanh, sigmoid, sums, products, "
               "matmul), against the cheap-gradient bound of 5.\n\n")
    out.append(".. list-table:: Laws per release\n   :header-rows: 1\n\n   * - torch\n"
               "     - time per node\n     - linear in N\n"
               "     - (forward + backward) / forward, by program size\n")
    for s in summaries:
        d = s.get("derived", {})
        e, c = d.get("engine_per_node"), d.get("cheap_gradient")
        node = f"{e['per_node_s'] * 1e6:.2f} µs" if e else "-"
        lin = ("yes" if e["linear"] else "no") if e else "-"
        ratio = ", ".join(f"{n} ops: {v['gradient_over_function']:.2f}" for n, v in sorted(c["by_ops"].items(), key=lambda kv: int(kv[0]))) if c else "-"
        out.append(f"   * - {s['torch']}\n     - {node}\n     - {lin}\n     - {ratio}\n")
    out.append("\n")

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
        fig, ax = plt.subplots(figsize=(min(10, 2.2 + 0.7 * len(names) * len(summaries)), 3.2))
        width = 0.8 / len(summaries)
        for i, s in enumerate(summaries):
            xs, ys, lo, hi = [], [], [], []
            for j, n in enumerate(names):
                e = s["benchmarks"].get(n)
                if e:
                    xs.append(j + (i - (len(summaries) - 1) / 2) * width)
                    ys.append(e["median"] * 1e3)
                    lo.append((e["median"] - min(e["runs"])) * 1e3)
                    hi.append((max(e["runs"]) - e["median"]) * 1e3)
            ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2, label=f"torch {s['torch']}")
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels([n[len(key):].strip("[]") or "-" for n in names], rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("median (ms)")
        ax.set_yscale("log")
        ax.legend(fontsize=8)
        fig.tight_layout()
        stem = key.split("::")[-1]
        fig.savefig(figures / f"{stem}.png", dpi=80)
        plt.close(fig)
        out.append(f".. image:: {prefix}/{stem}.png\n   :alt: medians of {key} per release\n\n")
        memory = sorted({k for s in summaries for n in names for k in s["benchmarks"].get(n, {}).get("extra_info", {})
                         if "bytes" in k})
        out.append(f".. list-table::\n   :header-rows: 1\n\n   * - benchmark\n")
        out.extend(f"     - torch {r} median (spread)\n" for r in releases)
        out.extend(f"     - {k.replace('_', ' ')}\n" for k in memory)
        for n in names:
            out.append(f"   * - ``{n[len(key):].strip('[]') or n}``\n")
            for s in summaries:
                e = s["benchmarks"].get(n)
                out.append(f"     - {_ms(e['median'])} ({e['spread']:.0%})\n" if e else "     - \n")
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
    inputs = sorted((root / "benchmarks" / "results").glob("*.json")) + [Path(__file__)]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in inputs)).hexdigest()
    stamp = target.with_suffix(".stamp")
    if target.exists() and stamp.exists() and stamp.read_text() == digest:
        return target
    text = render(_summaries(root / "benchmarks" / "results"), target.parent / "benchmarks", "benchmarks")
    target.write_text(text)
    stamp.write_text(digest)
    return target


# ---------------------------------------------------------------------------- command line

def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m specs.bench", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("summarize", help="summarize saved pytest-benchmark runs of one release")
    p.add_argument("folder", type=Path, help="e.g. build/benchmarks/torch-2.13.0")
    p.add_argument("--last", type=int, default=3, help="use the newest LAST runs (default 3)")
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
    args = parser.parse_args(argv)
    if args.command == "summarize":
        runs = _raw_runs(args.folder)[-args.last:]
        if not runs:
            raise SystemExit(f"no pytest-benchmark runs under {args.folder}")
        summary = summarize(runs, args.torch)
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
    return 1 if args.fail and any(f.flagged for f in findings) else 0


if __name__ == "__main__":
    sys.exit(main())
