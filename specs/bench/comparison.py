"""Comparing two releases' summaries: a benchmark is flagged only when it moved beyond the noise of
repeated runs of the same release."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

from specs.bench.summaries import _noise, normalized

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


def _changed(
    name: str,
    metric: str,
    a: dict[str, Any],
    b: dict[str, Any],
    min_change: float,
    factor: float,
    min_delta: float = 0.0,
) -> Finding:
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


def compare(
    old: dict[str, Any],
    new: dict[str, Any],
    min_change: float = MIN_CHANGE,
    factor: float = NOISE_FACTOR,
    normalize: bool = True,
    min_count_change: float = MIN_COUNT_CHANGE,
    min_count_delta: float = MIN_COUNT_DELTA,
) -> list[Finding]:
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
        shift = (
            math.exp(
                statistics.median(
                    math.log(new["benchmarks"][n]["median"] / old["benchmarks"][n]["median"]) for n in common
                )
            )
            if common
            else 1.0
        )
        new = {
            **new,
            "benchmarks": {
                n: {**e, "median": e["median"] / shift, "runs": [r / shift for r in e["runs"]]} if "median" in e else e
                for n, e in new["benchmarks"].items()
            },
        }
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
            found.append(
                _changed(
                    name,
                    "instructions",
                    a["instructions"],
                    b["instructions"],
                    min_count_change,
                    factor,
                    min_count_delta,
                )
            )
        for key in sorted(k for k in a.get("extra_info", {}) if "bytes" in k):
            before, after = a["extra_info"][key], b.get("extra_info", {}).get(key)
            if before != after:
                found.append(
                    Finding(name, "memory", before, after, None, None, f"{key}: {before} -> {after}", metric="memory")
                )
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
            f = Finding(
                f.name,
                "noise",
                f.old,
                f.new,
                f.change,
                f.threshold,
                f"time {f.change:+.0%} while instructions moved {counts.change:+.1%}: machine load, not torch",
                metric="time",
            )
        out.append(f)
    return out
