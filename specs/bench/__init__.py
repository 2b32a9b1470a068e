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

from specs.bench.comparison import (
    MIN_CHANGE,
    MIN_COUNT_CHANGE,
    MIN_COUNT_DELTA,
    NOISE_FACTOR,
    Finding,
    compare,
    discount_machine_noise,
)
from specs.bench.counting import (
    CALLGRIND_VARIABLE,
    COUNT_VARIABLE,
    COUNTS_FORMAT,
    callgrind_totals,
    count,
)
from specs.bench.paths import CHECKS, RAW, RESULTS, ROOT
from specs.bench.programs import PROGRAM_OPS, PROGRAM_SIDE, pedantic_rounds, program
from specs.bench.rendering import format_comparison, format_spread, render, write
from specs.bench.summaries import (
    CHEAP_GRADIENT_BOUND,
    FORMAT,
    derived,
    find,
    load,
    normalized,
    summarize,
)

__all__ = [
    "discount_machine_noise",
    "CALLGRIND_VARIABLE",
    "CHEAP_GRADIENT_BOUND",
    "CHECKS",
    "COUNTS_FORMAT",
    "COUNT_VARIABLE",
    "FORMAT",
    "MIN_CHANGE",
    "MIN_COUNT_CHANGE",
    "MIN_COUNT_DELTA",
    "NOISE_FACTOR",
    "PROGRAM_OPS",
    "PROGRAM_SIDE",
    "RAW",
    "RESULTS",
    "ROOT",
    "Finding",
    "callgrind_totals",
    "compare",
    "count",
    "derived",
    "find",
    "format_comparison",
    "format_spread",
    "load",
    "normalized",
    "pedantic_rounds",
    "program",
    "render",
    "summarize",
    "write",
]
