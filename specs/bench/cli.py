"""``python -m specs.bench``: count, summarize, spread and compare."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from specs.bench.comparison import MIN_CHANGE, NOISE_FACTOR, compare
from specs.bench.counting import count
from specs.bench.rendering import format_comparison, format_spread
from specs.bench.summaries import _count_runs, _raw_runs, load, summarize


def _package_doc() -> str:
    import specs.bench

    return specs.bench.__doc__.split("\n")[0]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m specs.bench", description=_package_doc())
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
    pytest_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    if args.command == "count":
        if args.runs < 1:
            parser.error("--runs must be at least 1")
        count(args.folder, args.runs, pytest_args, args.jobs)
        print(format_spread(summarize([], None, _count_runs(args.folder)[-args.runs :])))
        return 0
    if args.command == "summarize":
        runs = _raw_runs(args.folder)[-args.last :] if args.last > 0 else []
        counts = _count_runs(args.folder)[-args.last_counts :] if args.last_counts > 0 else []
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


def main_with_errors(argv: Sequence[str] | None = None) -> int:
    """:func:`main`, with bad input (a missing or corrupt file, a wrong folder) as one line and exit 2."""
    try:
        return main(argv)
    except SystemExit as stop:
        if isinstance(stop.code, str):
            print(f"error: {stop.code}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main_with_errors())
