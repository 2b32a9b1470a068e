"""``autograd-spec`` (also ``python -m specs``): check the installed torch, diff reports, show the matrix.

autograd-spec check                       # every rule against the torch of this environment
autograd-spec check -k accumulation --hypothesis-profile=thorough
autograd-spec diff OLD.json NEW.json --markdown diff.md
autograd-spec matrix reports/             # which rules changed across the reports' releases
autograd-spec bench compare 2.13.0 2.15.0 # benchmark summaries (run from a checkout)
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Sequence

PROG = "autograd-spec"


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument as one line and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="An executable specification of PyTorch autograd: check a torch, compare what changed.",
        epilog="Each command has its own --help.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    check = commands.add_parser(
        "check",
        help="run every rule against the installed torch, write the JSON report, print the per-family summary",
        description="Run the specification (pytest --pyargs specs) against the torch installed in this "
        "environment. Arguments after the options go to pytest (e.g. -k, -x, --hypothesis-seed=N).",
    )
    check.add_argument("--report", metavar="PATH", help="JSON report path (default: build/reports/torch-<v>.json)")
    check.add_argument(
        "--known-failures",
        metavar="FILE",
        action="append",
        default=[],
        help="your own known-failures file, added to the built-in list (repeatable)",
    )
    check.add_argument(
        "--profile", choices=("ci", "dev", "thorough"), help="hypothesis profile (default: ci under CI, else dev)"
    )
    check.add_argument("--device", help="create the rules' tensors on this device, e.g. cuda (default: cpu)")
    check.add_argument(
        "-n",
        "--workers",
        default=None,
        help="pytest-xdist workers ('auto': one per core; default: auto when xdist is installed)",
    )

    diff = commands.add_parser(
        "diff",
        help="compare two JSON reports: which rules and observations changed",
        description="Compare two reports of `autograd-spec check`.",
    )
    diff.add_argument("before", help="the baseline report (JSON)")
    diff.add_argument("after", help="the report to compare with it (JSON)")
    diff.add_argument("--markdown", type=Path, help="also write the diff as Markdown here")
    diff.add_argument("--html", type=Path, help="also write the diff as HTML here")

    matrix = commands.add_parser(
        "matrix",
        help="rules x releases from a folder of reports: what changed where",
        description="Read every torch-*.json report in FOLDER and print, per rule, "
        "the outcome on each release; rules that change are listed first.",
    )
    matrix.add_argument("folder", nargs="?", default="reports", type=Path, help="folder of reports (default: reports)")
    matrix.add_argument("--all", action="store_true", help="also list the rules that never change")

    bench = commands.add_parser(
        "bench",
        help="benchmark summaries: summarize, spread, compare, count (checkout only)",
        description="The benchmark tool (python -m specs.bench); give its arguments after "
        "'bench', e.g. `autograd-spec bench compare 2.13.0 2.15.0`.",
        add_help=False,
    )
    bench.add_argument("arguments", nargs=argparse.REMAINDER)
    return parser


def _check(args: argparse.Namespace, extra: list[str]) -> int:
    import pytest

    argv = ["--pyargs", "specs", "--autograd-spec", "-p", "specs.plugin"]
    if args.report:
        argv.append(f"--spec-report={args.report}")
    for path in args.known_failures:
        if not Path(path).is_file():
            print(f"{PROG}: error: known-failures file {path} does not exist", file=sys.stderr)
            return 2
        argv.append(f"--known-failures={path}")
    if args.profile:
        argv.append(f"--hypothesis-profile={args.profile}")
    if args.device:
        argv.append(f"--spec-device={args.device}")
    workers = args.workers
    if workers is None and importlib.util.find_spec("xdist") is not None:
        workers = "auto"
    if workers not in (None, "0"):
        argv += ["-n", str(workers)]
    code = pytest.main(argv + extra)
    # 1 means rules failed: a finding, written to the report; other codes are errors of the run.
    return int(code)


def _matrix(args: argparse.Namespace) -> int:
    from specs.engine import versions
    from specs.reporting import report

    if not args.folder.is_dir():
        print(f"{PROG}: error: {args.folder} is not a folder of reports", file=sys.stderr)
        return 2
    try:
        reports = [report.load(p) for p in sorted(args.folder.glob("torch-*.json"))]
    except report.ReportError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    if not reports:
        print(f"{PROG}: error: no torch-*.json reports in {args.folder}", file=sys.stderr)
        return 2
    reports.sort(key=lambda r: versions.parse(r["environment"]["torch"]))
    releases = [r["environment"]["torch"].split("+")[0] for r in reports]
    table = [{rule["id"]: rule["outcome"] for rule in r["rules"]} for r in reports]
    ids = sorted(set().union(*table))
    short = {"passed": "ok", "failed": "FAIL", "known-failure": "known", "not-applicable": "n/a"}
    changing = [i for i in ids if len({t.get(i, "-") for t in table}) > 1]
    width = max(len(i) for i in ids)
    header = f"{'rule':<{width}}  " + "  ".join(f"{r:>7}" for r in releases)
    print(f"{len(changing)} of {len(ids)} rules differ across {len(releases)} releases")
    print(header)
    for rule_id in changing + ([i for i in ids if i not in changing] if args.all else []):
        print(f"{rule_id:<{width}}  " + "  ".join(f"{short.get(t.get(rule_id, ''), '-'):>7}" for t in table))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    if argv[:1] == ["bench"]:
        from specs.bench import cli as bench_cli

        return bench_cli.main_with_errors(argv[1:])
    args, extra = parser.parse_known_args(argv)
    if args.command == "check":
        return _check(args, extra)
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "diff":
        from specs.reporting import diff

        forwarded = [args.before, args.after]
        forwarded += [f"--markdown={args.markdown}"] if args.markdown else []
        forwarded += [f"--html={args.html}"] if args.html else []
        return diff.main(forwarded)
    return _matrix(args)


if __name__ == "__main__":
    sys.exit(main())
