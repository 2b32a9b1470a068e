"""Benchmark wiring: the torch release in every saved run, instruction counting, an injected slowdown.

Under ``python -m specs.bench count`` (pytest run inside valgrind's callgrind, with
``AUTOGRAD_SPEC_BENCH_COUNT`` naming the file to write) the ``benchmark`` fixture is replaced by
:class:`InstructionCounter`: each benchmark calls its function the same way, but instead of
timing it, callgrind counts the instructions of a fixed number of calls.  Counts do not depend on
how busy the machine is, so they show a change that wall-clock noise hides.

``AUTOGRAD_SPEC_BENCH_SLOWDOWN=[TEST@]module.function:FRACTION`` makes every call of that function
busy-wait for another FRACTION of the time the call itself took (a 25 % slower op for 0.25), in the
benchmarks whose test id contains TEST (all of them without ``TEST@``).  For example
``test_hvp_cost[hvp]@torch.autograd.grad:0.25``.  It exists to show that ``python -m specs.bench
compare`` flags a real slowdown and nothing else; only this file reads the variable.
"""

from __future__ import annotations

import functools
import gc
import importlib
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import torch
from pytest_benchmark.fixture import BenchmarkFixture

from specs.bench.counting import CALLGRIND_VARIABLE, COUNT_VARIABLE, COUNTS_FORMAT, callgrind_totals

SLOWDOWN_VARIABLE = "AUTOGRAD_SPEC_BENCH_SLOWDOWN"
#: Counted calls per benchmark, after WARMUP uncounted ones (caches, lazy initialisation).
CALLS, WARMUP = 5, 3


def _slowed(function, fraction: float):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        result = function(*args, **kwargs)
        until = time.perf_counter() + fraction * (time.perf_counter() - started)
        while time.perf_counter() < until:
            pass
        return result

    return wrapper


def _target(dotted: str):
    module_name, _, attribute = dotted.rpartition(".")
    return importlib.import_module(module_name), attribute


@pytest.fixture(autouse=True)
def injected_slowdown(request):
    setting = os.environ.get(SLOWDOWN_VARIABLE)
    selector, _, patch = (setting or "").rpartition("@")
    if not setting or selector not in request.node.nodeid:
        yield None
        return
    dotted, _, fraction = patch.partition(":")
    module, attribute = _target(dotted)
    original = getattr(module, attribute)
    setattr(module, attribute, _slowed(original, float(fraction or 0.25)))
    try:
        yield setting
    finally:
        setattr(module, attribute, original)


def pytest_benchmark_update_json(config, benchmarks, output_json):
    output_json["autograd_spec"] = {
        "torch": torch.__version__.split("+")[0],
        "slowdown": os.environ.get(SLOWDOWN_VARIABLE),
    }


# ---------------------------------------------------------------------------- instruction counts


class Callgrind:
    """This process's callgrind: instrumentation switched on once, collection toggled per region.

    The process starts with instrumentation off, so importing torch and pytest runs several times
    faster; ``callgrind_control -i on`` switches it on before the first benchmark is counted (it
    waits for valgrind's answer) and it stays on: switching it off and on between benchmarks gave
    wrong totals.  ``torch._C._valgrind_toggle`` switches collection on and off around the counted
    calls.  Each dump lands in the next ``<out>.<pid>.<n>`` file (``--callgrind-out-file=<out>.%p``),
    which is read and removed at once.
    """

    def __init__(self, out_prefix: str):
        self.prefix = out_prefix
        self.started = False

    def start(self) -> None:
        if self.started:
            return
        if not torch._C._valgrind_supported_platform():
            raise RuntimeError("this torch build cannot talk to valgrind (no callgrind client requests)")
        done = subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], capture_output=True, text=True)
        if done.returncode or "OK" not in done.stdout:
            raise RuntimeError(
                "instruction counting needs pytest to run under callgrind "
                "(python -m specs.bench count); callgrind_control said: " + (done.stdout + done.stderr).strip()
            )
        self.started = True

    def toggle(self) -> None:
        torch._C._valgrind_toggle()

    def dump(self) -> int:
        """Stop collecting, dump what was collected since the last dump, return its instructions."""
        folder, stem = Path(self.prefix).parent, f"{Path(self.prefix).name}.{os.getpid()}."
        before = set(folder.glob(stem + "*"))
        torch._C._valgrind_toggle_and_dump_stats()
        new = set(folder.glob(stem + "*")) - before
        if len(new) != 1:
            raise RuntimeError(f"expected one new callgrind dump next to {self.prefix}, found {sorted(new)}")
        (path,) = new
        try:
            return callgrind_totals(path)
        finally:
            path.unlink()


class InstructionCounter(BenchmarkFixture):
    """Stands in for pytest-benchmark's fixture: same calls, counted instead of timed.

    A subclass only because pytest-benchmark checks the fixture's type after each test; none of
    the parent's machinery (timers, stats, storage) is initialised or used.

    ``benchmark(f, *args)`` and ``benchmark.pedantic(f, setup=...)`` call ``f`` WARMUP times,
    then CALLS times with collection on (``setup`` and the garbage collector stay outside the
    counted region), and record the instructions per call in ``results``.
    """

    def __init__(
        self, name: str, tool, results: dict, calls: int = CALLS, warmup: int = WARMUP, params: dict | None = None
    ):
        self.name, self.tool, self.results, self.params = name, tool, results, params or {}
        self.calls, self.warmup = calls, warmup
        self.extra_info: dict = {}

    def __call__(self, function, *args, **kwargs):
        return self._count(lambda: ((), {}), lambda: function(*args, **kwargs))

    def pedantic(self, target, args=(), kwargs=None, setup=None, rounds=1, warmup_rounds=0, iterations=1):
        def prepare():
            return setup() if setup else (args, kwargs or {})

        return self._count(prepare, target, pedantic=True)

    def _count(self, prepare, function, pedantic=False):
        call = (lambda a, k: function(*a, **k)) if pedantic else (lambda a, k: function())
        self.tool.start()
        for _ in range(self.warmup):
            result = call(*prepare())
        enabled = gc.isenabled()
        gc.collect()
        gc.disable()
        try:
            for i in range(self.calls):
                a, k = prepare()
                self.tool.toggle()
                result = call(a, k)
                if i < self.calls - 1:
                    self.tool.toggle()
            total = self.tool.dump()
        finally:
            if enabled:
                gc.enable()
        self.results[self.name] = {
            "instructions": total / self.calls,
            "calls": self.calls,
            "params": self.params,
            "extra_info": self.extra_info,
        }
        return result


_COUNTS: dict = {}
_TOOL: list = []


@pytest.fixture
def benchmark(benchmark, request):
    """pytest-benchmark's fixture, or under ``specs.bench count`` the instruction counter."""
    if not os.environ.get(COUNT_VARIABLE):
        yield benchmark
        return
    if not _TOOL:
        _TOOL.append(Callgrind(os.environ[CALLGRIND_VARIABLE]))
    callspec = getattr(request.node, "callspec", None)
    counter = InstructionCounter(
        request.node.nodeid.split("/")[-1], _TOOL[0], _COUNTS, params=dict(callspec.params) if callspec else {}
    )
    yield counter
    if counter.name in _COUNTS:
        _COUNTS[counter.name]["extra_info"] = dict(counter.extra_info)


def pytest_sessionfinish(session, exitstatus):
    output = os.environ.get(COUNT_VARIABLE)
    if output and _COUNTS:
        Path(output).write_text(
            json.dumps(
                {
                    "format": COUNTS_FORMAT,
                    "torch": torch.__version__.split("+")[0],
                    "slowdown": os.environ.get(SLOWDOWN_VARIABLE),
                    "calls": CALLS,
                    "warmup": WARMUP,
                    "benchmarks": _COUNTS,
                },
                indent=1,
                sort_keys=True,
            )
            + "\n"
        )
