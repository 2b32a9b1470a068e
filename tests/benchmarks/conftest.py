"""Benchmark wiring: the torch release in every saved run, and an optional injected slowdown.

``AUTOGRAD_SPEC_BENCH_SLOWDOWN=[TEST@]module.function:FRACTION`` makes every call of that function
busy-wait for another FRACTION of the time the call itself took (a 25 % slower op for 0.25), in the
benchmarks whose test id contains TEST (all of them without ``TEST@``).  For example
``test_hvp_cost[hvp]@torch.autograd.grad:0.25``.  It exists to show that ``python -m specs.bench
compare`` flags a real slowdown and nothing else; only this file reads the variable.
"""
from __future__ import annotations

import functools
import importlib
import os
import time

import pytest
import torch

SLOWDOWN_VARIABLE = "AUTOGRAD_SPEC_BENCH_SLOWDOWN"


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
    output_json["autograd_spec"] = {"torch": torch.__version__.split("+")[0],
                                    "slowdown": os.environ.get(SLOWDOWN_VARIABLE)}
