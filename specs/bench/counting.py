"""Instruction counts: every benchmark run under valgrind's callgrind, which counts the work of
the very same calls, a figure that does not depend on the machine's load."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from specs.bench.paths import ROOT

COUNTS_FORMAT = "autograd-spec/instructions/1"
#: How :func:`count` tells the benchmarks' conftest to count: the file to write, and the prefix of
#: callgrind's dump files.
COUNT_VARIABLE = "AUTOGRAD_SPEC_BENCH_COUNT"
CALLGRIND_VARIABLE = "AUTOGRAD_SPEC_BENCH_CALLGRIND"


def _read_counts(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise SystemExit(f"{path}: not a readable instruction-count file ({error})") from None
    if not isinstance(data, dict) or data.get("format") != COUNTS_FORMAT:
        raise SystemExit(f"{path}: not an instruction-count file (format {COUNTS_FORMAT!r} expected)")
    return data


def callgrind_totals(path: Path) -> int:
    """The instruction total of one callgrind dump file (its ``totals:`` line)."""
    for line in Path(path).read_text(errors="replace").splitlines():
        if line.startswith(("totals:", "summary:")):
            return int(line.split()[1])
    raise ValueError(f"{path}: no 'totals:' line; not a callgrind dump")


def _progress(log_file: Path) -> str:
    """How far a ``pytest -v`` run has got, from its log: e.g. ``46% (test_engine_chain[512])``."""
    import re

    done = re.findall(
        r"::(\S+) (?:PASSED|FAILED|ERROR|SKIPPED)\S*\s+\[\s*(\d+)%\]",
        log_file.read_text(errors="replace") if log_file.exists() else "",
    )
    return f"{done[-1][1]}% ({done[-1][0]} done)" if done else "starting (importing torch under callgrind)"


def _log(line: str) -> None:
    print(line, flush=True)


def count(
    folder: Path, runs: int = 2, pytest_args: Sequence[str] = (), jobs: int | None = None, log=_log
) -> list[Path]:
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
                env = {
                    **os.environ,
                    COUNT_VARIABLE: str(target),
                    CALLGRIND_VARIABLE: f"{tmp}/callgrind.out",
                    "OMP_NUM_THREADS": "1",
                    "PYTHONHASHSEED": "0",
                    "AUTOGRAD_SPEC_PROFILE": "ci",
                }
                command = [
                    "valgrind",
                    "--tool=callgrind",
                    "--instr-atstart=no",
                    "--collect-atstart=no",
                    f"--callgrind-out-file={tmp}/callgrind.out.%p",
                    f"--log-file={tmp}/valgrind-{k}.%p.log",
                    sys.executable,
                    "-m",
                    "pytest",
                    "-v",
                    "--durations=5",
                    "-p",
                    "no:cacheprovider",
                    "-W",
                    "ignore::pytest_benchmark.logger.PytestBenchmarkWarning",
                    str(ROOT / "tests" / "benchmarks"),
                    *pytest_args,
                ]
                log(f"instruction count run {k} of {runs}: started under callgrind")
                handle = log_file.open("w")
                active.append(
                    (
                        k,
                        subprocess.Popen(command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT),
                        target,
                        log_file,
                        time.monotonic(),
                    )
                )
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
                    raise SystemExit(
                        f"instruction count run {k} failed (exit {proc.returncode}):\n" + "\n".join(tail[-30:])
                    )
                # Counts depend on what ran earlier in the process (allocator and cache state), so
                # only runs of the same selection of benchmarks compare: record it.
                data = _read_counts(target)
                data["selection"] = list(pytest_args)
                target.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
                written.append(target)
                log(
                    f"instruction count run {k} of {runs}: {tail[-1].strip('= ') if tail else ''} "
                    f"({time.monotonic() - started:.0f} s) -> {target}"
                )
    return sorted(written)
