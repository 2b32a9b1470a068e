"""Where benchmark results live: committed summaries, the comparison checks, and raw runs."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
#: Summaries of repeated runs of a committed release, unchanged or with an injected slowdown: the
#: evidence, rendered in the docs, that :func:`compare` flags a slowdown and nothing else.
CHECKS = ROOT / "benchmarks" / "checks"
RAW = ROOT / "build" / "benchmarks"
