"""Recording cost: the same forward run with grad mode on, under no_grad and under inference_mode.

Time is measured by pytest-benchmark; memory deterministically, as the bytes autograd saves for
backward (counted by a saved_tensors_hooks pack hook), which is zero when nothing is recorded.
Besides a fixed chain, generated programs of growing size (``specs.bench.program``).
"""

import contextlib

import pytest
import torch

import specs.bench as bench
from specs.engine.oracles import saved_bytes

MODES = {
    "grad": contextlib.nullcontext,
    "no_grad": torch.no_grad,
    "inference_mode": torch.inference_mode,
}


def _forward(x):
    y = x
    for _ in range(100):
        y = torch.tanh(y) * 0.5 + y
    return y


def _saved_bytes(mode) -> int:
    x = torch.randn(256, requires_grad=True)
    with MODES[mode]():
        saved, _ = saved_bytes(lambda: _forward(x))
    return saved


@pytest.mark.parametrize("mode", sorted(MODES))
def test_record_cost(benchmark, mode):
    """grad-modes.no-grad-records-nothing: forward time and saved bytes per grad mode."""
    x = torch.randn(256, requires_grad=True)

    def run():
        with MODES[mode]():
            return _forward(x)

    benchmark.extra_info["rule"] = "grad-modes.no-grad-records-nothing"
    benchmark.extra_info["saved_bytes"] = _saved_bytes(mode)
    out = benchmark(run)
    assert (out.grad_fn is not None) == (mode == "grad")
    assert (benchmark.extra_info["saved_bytes"] > 0) == (mode == "grad")


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("ops", [8, 32, 128])
def test_record_cost_generated(benchmark, ops, mode):
    """grad-modes.no-grad-records-nothing: recording cost on generated programs, per size and grad mode."""
    program = bench.program(ops)
    function = program.function()
    leaves = program.inputs()

    def run():
        with MODES[mode]():
            return function(*leaves)

    benchmark.extra_info["rule"] = "grad-modes.no-grad-records-nothing"
    benchmark.extra_info["saved_bytes"], _ = saved_bytes(run)
    out = benchmark(run)
    assert (out.grad_fn is not None) == (mode == "grad")
    assert (benchmark.extra_info["saved_bytes"] > 0) == (mode == "grad")
