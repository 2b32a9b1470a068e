"""Benchmarks as text (the command line's tables) and as the docs' benchmarks page (plots)."""

from __future__ import annotations

import hashlib
import json
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from specs.bench.comparison import (
    MIN_CHANGE,
    MIN_COUNT_CHANGE,
    MIN_COUNT_DELTA,
    NOISE_FACTOR,
    Finding,
    compare,
)
from specs.bench.summaries import CHEAP_GRADIENT_BOUND, _read_summary


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
            lines.append(
                f"  {tag:9} {unit:5} {f.name:{width}}  {show[f.metric](f.old):>12} -> {show[f.metric](f.new):>12}  "
                f"{f.change:+7.1%}  (flag beyond ±{f.threshold:.0%})"
            )
    flagged = [f for f in findings if f.flagged]
    compared = {f.name for f in findings if f.change is not None}
    by_metric = ", ".join(
        f"{sum(1 for f in flagged if f.metric == m)} by {m}" for m in ("time", "instructions", "memory")
    )
    names = sorted({f.name for f in flagged})
    noise = sum(1 for f in findings if f.kind == "noise")
    lines.append(
        f"{len(names)} of {len(compared)} benchmarks flagged ({by_metric})"
        + (": " + ", ".join(names) if names else "")
        + (f"; {noise} moved in time only, with unchanged instruction counts: machine noise" if noise else "")
    )
    return "\n".join(lines)


def format_spread(summary: dict[str, Any]) -> str:
    lines = [
        f"torch {summary['torch']}: {len(summary['benchmarks'])} benchmarks, {summary['runs']} timed runs, "
        f"{summary.get('count_runs', 0)} counted runs"
    ]
    width = max(len(n) for n in summary["benchmarks"])
    for name, e in summary["benchmarks"].items():
        text = f"  {name:{width}}"
        if "median" in e:
            runs = ", ".join(_ms(r) for r in e["runs"])
            text += (
                f"  median {_ms(e['median']):>12}  spread {e['spread']:6.1%}  "
                f"IQR/median {e['iqr'] / e['median']:6.1%}  runs: {runs}"
            )
        if "instructions" in e:
            c = e["instructions"]
            text += f"  | instructions {_instr(c['median']):>10}  spread {c['spread']:7.3%}"
        lines.append(text)
    for label, spreads in (
        ("time", [e["spread"] for e in summary["benchmarks"].values() if "spread" in e]),
        ("instructions", [e["instructions"]["spread"] for e in summary["benchmarks"].values() if "instructions" in e]),
    ):
        if spreads:
            lines.append(
                f"spread across runs ({label}): median {statistics.median(spreads):.2%}, largest {max(spreads):.2%}"
            )
    for law, data in summary.get("derived", {}).items():
        lines.append(f"{law}: {json.dumps(data)}")
    return "\n".join(lines)


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
    out = [
        ".. _benchmark-check:\n\nDoes the comparison catch a slowdown?\n"
        "-------------------------------------\n\n"
        "Below, the committed summary of a release is compared (``python -m specs.bench compare``) with "
        "later runs of the same release on the same machine, kept in ``benchmarks/checks/``: once "
        "unchanged, once with a slowdown injected through ``AUTOGRAD_SPEC_BENCH_SLOWDOWN`` (see "
        ":doc:`/running`). The unchanged rerun should flag nothing, the slowed one only the slowed "
        "benchmark.\n\n"
        ".. list-table:: Checks\n   :header-rows: 1\n\n   * - check\n     - against\n     - injected\n"
        "     - flagged by time\n     - flagged by instructions\n"
    ]
    fig, axes = plt.subplots(1, len(usable), figsize=(5.5 * len(usable), max(3.5, 0.15 * 41 + 1)), squeeze=False)
    for ax, (name, check) in zip(axes[0], usable):
        base = by_release[check["torch"]]
        findings = compare(base, check)
        flagged = {
            m: sorted(f.name.split("::")[-1] for f in findings if f.flagged and f.metric == m)
            for m in ("time", "instructions")
        }
        injected = ", ".join(f"``{x}``" for x in check.get("slowdown", [])) or "nothing"
        out.append(
            f"   * - {name}\n     - torch {check['torch']}\n     - {injected}\n"
            + "".join(
                f"     - {len(flagged[m])}{': ' + ', '.join(flagged[m]) if flagged[m] else ''}\n"
                for m in ("time", "instructions")
            )
        )
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
    out.append(
        "\n"
        + _figure(
            fig,
            figures,
            prefix,
            "checks",
            "per benchmark, the change of time and of "
            "instructions divided by the threshold for flagging it, for each check",
        )
    )
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
    ax.set_xticklabels([n[len(key) :].strip("[]") or "-" for n in names], rotation=30, ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.legend(fontsize=8)


def render(
    summaries: list[dict[str, Any]], figures: Path, prefix: str, checks: Sequence[tuple[str, dict[str, Any]]] = ()
) -> str:
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
        "repeated runs of one release show: see :ref:`benchmark-noise`.\n\n"
    )
    out.append(
        ".. list-table:: Runs\n   :header-rows: 1\n\n   * - torch\n     - benchmarks\n"
        "     - timed runs\n     - median time spread across runs\n"
        "     - counted runs\n     - median instruction spread across runs\n     - machine\n"
    )
    for s in summaries:
        spreads = [e["spread"] for e in s["benchmarks"].values() if "spread" in e]
        count_spreads = [e["instructions"]["spread"] for e in s["benchmarks"].values() if "instructions" in e]
        m = s.get("machine", {})
        time_spread = f"{statistics.median(spreads):.1%}" if spreads else "-"
        count_spread = f"{statistics.median(count_spreads):.3%}" if count_spreads else "-"
        out.append(
            f"   * - {s['torch']}\n     - {len(s['benchmarks'])}\n     - {s['runs']}\n     - {time_spread}\n"
            f"     - {s.get('count_runs', 0)}\n     - {count_spread}\n"
            f"     - {m.get('cpu', '?')} ({m.get('cores', '?')} cores, shared)\n"
        )
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
                axes[r][1].plot(
                    [n for n, _ in by], [v["gradient_over_function"] for _, v in by], "o-", label=f"torch {s['torch']}"
                )
        axes[r][0].set(
            xscale="log",
            xlabel="nodes N in the chain",
            ylabel=label,
            title=f"Engine overhead per node ({metric})",
            ylim=(0, None),
        )
        axes[r][1].axhline(CHEAP_GRADIENT_BOUND, color="grey", linestyle="--", label="cheap-gradient bound")
        axes[r][1].set(
            xscale="log",
            xlabel="ops in the generated program",
            ylabel="(forward + backward) / forward",
            title=f"Cost of the gradient ({metric})",
            ylim=(0, None),
        )
        for ax in axes[r]:
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8)
    out.append(
        _figure(
            fig,
            figures,
            prefix,
            "scaling",
            "cost per node against chain length, and the "
            "gradient-to-function cost ratio against program size, in time and in instructions",
            dpi=90,
        )
    )
    out.append(
        "Left: backward through a chain of N additions on a one-element tensor, divided by N "
        "(rule ``leaves.backward-computes-the-gradient``): flat means the engine's cost is linear "
        "in the number of nodes. Right: forward with recording plus backward, over the forward "
        "alone, for generated programs of 32 x 32 matrices (tanh, sigmoid, sums, products, "
        "matmul), against the cheap-gradient bound of 5."
        + (" Top row in time, bottom row in instructions." if counted else "")
        + "\n\n"
    )
    out.append(
        ".. list-table:: Laws per release\n   :header-rows: 1\n\n   * - torch\n"
        "     - per node\n     - linear in N\n"
        "     - (forward + backward) / forward, by program size\n"
    )
    for s in summaries:
        d = s.get("derived", {})
        for metric, suffix in (("time", ""), ("instructions", "_instructions")):
            e, c = d.get("engine_per_node" + suffix), d.get("cheap_gradient" + suffix)
            if not (e or c):
                continue
            if e:
                node = (
                    f"{e['per_node_s'] * 1e6:.2f} µs"
                    if metric == "time"
                    else f"{e['per_node_instructions']:,.0f} instructions"
                )
            lin = ("yes" if e["linear"] else "no") if e else "-"
            ratio = (
                ", ".join(
                    f"{n} ops: {v['gradient_over_function']:.2f}"
                    for n, v in sorted(c["by_ops"].items(), key=lambda kv: int(kv[0]))
                )
                if c
                else "-"
            )
            out.append(f"   * - {s['torch']} ({metric})\n     - {node if e else '-'}\n     - {lin}\n     - {ratio}\n")
    out.append("\n")

    # Noise: why counts.
    if counted:
        s = counted[-1]
        names = [n for n, e in s["benchmarks"].items() if "spread" in e and "instructions" in e]
        out.append(".. _benchmark-noise:\n\nNoise: time against instructions\n--------------------------------\n\n")
        fig, ax = plt.subplots(figsize=(10, max(3.0, 0.16 * len(names) + 1)))
        ys = range(len(names))
        ax.barh(
            [y + 0.2 for y in ys],
            [max(s["benchmarks"][n]["spread"], 1e-5) * 100 for n in names],
            0.4,
            label=f"time ({s['runs']} runs)",
        )
        ax.barh(
            [y - 0.2 for y in ys],
            [max(s["benchmarks"][n]["instructions"]["spread"], 1e-5) * 100 for n in names],
            0.4,
            label=f"instructions ({s['count_runs']} runs)",
        )
        ax.set_yticks(list(ys))
        ax.set_yticklabels([n.split("::")[-1].removeprefix("test_") for n in names], fontsize=6)
        ax.set_xscale("log")
        ax.set_xlabel("spread across runs: (max - min) / median, % (log scale)")
        ax.set_title(f"Run-to-run spread per benchmark, torch {s['torch']}")
        ax.legend(fontsize=8)
        noise_figure = _figure(
            fig, figures, prefix, "noise", "run-to-run spread of time and of instructions per benchmark, log scale"
        )
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
            + (": :ref:`benchmark-check` shows what that catches.\n\n" if checks else ".\n\n")
        )
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
        fig, axes = plt.subplots(
            1, panels, figsize=(min(10, (2.2 + 0.7 * len(names) * len(summaries)) * panels), 3.2), squeeze=False
        )
        _bars(axes[0][0], summaries, names, key, "time", 1e3)
        axes[0][0].set_ylabel("median time (ms)")
        if has_counts:
            _bars(axes[0][1], summaries, names, key, "instructions", 1.0)
            axes[0][1].set_ylabel("instructions per call")
        out.append(
            _figure(
                fig,
                figures,
                prefix,
                key.split("::")[-1],
                f"medians of {key} per release" + (", time and instructions" if has_counts else ""),
            )
        )
        memory = sorted(
            {
                k
                for s in summaries
                for n in names
                for k in s["benchmarks"].get(n, {}).get("extra_info", {})
                if "bytes" in k
            }
        )
        out.append(".. list-table::\n   :header-rows: 1\n\n   * - benchmark\n")
        out.extend(f"     - torch {r} time (spread)\n" for r in releases)
        if has_counts:
            out.extend(f"     - torch {r} instructions\n" for r in releases)
        out.extend(f"     - {k.replace('_', ' ')}\n" for k in memory)
        for n in names:
            out.append(f"   * - ``{n[len(key) :].strip('[]') or n}``\n")
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
    inputs = (
        sorted((root / "benchmarks" / "results").glob("*.json")) + sorted(checks_dir.glob("*.json")) + [Path(__file__)]
    )
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in inputs)).hexdigest()
    stamp = target.with_suffix(".stamp")
    if target.exists() and stamp.exists() and stamp.read_text() == digest:
        return target
    checks = [(p.stem, _read_summary(p)) for p in sorted(checks_dir.glob("*.json"))]
    text = render(_summaries(root / "benchmarks" / "results"), target.parent / "benchmarks", "benchmarks", checks)
    target.write_text(text)
    stamp.write_text(digest)
    return target
