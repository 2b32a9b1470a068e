"""Checkpointing costs: the time of forward + backward against the bytes kept for backward, per depth.

Checkpointing with ceil(sqrt(N)) segments keeps far fewer bytes (recorded in ``extra_info``) and
pays with one extra forward per checkpointed segment. Under ``nox -s tests`` these run once,
untimed, as ordinary tests.
"""

import pytest
import torch
from torch.utils.checkpoint import checkpoint_sequential

from specs.engine.oracles import saved_bytes
from specs.families.checkpointing import make_chain, sqrt_segments

WIDTH, BATCH = 64, 32


@pytest.mark.parametrize("depth", [4, 16, 64])
@pytest.mark.parametrize("mode", ["plain", "checkpointed"])
def test_checkpointing_time_and_memory(benchmark, depth, mode):
    """checkpointing.sqrt-segments-keep-sqrt-memory: time of one training step, with the bytes kept."""
    model, x = make_chain(depth, WIDTH, BATCH, torch.float32, seed=0)
    segments = sqrt_segments(depth)

    def forward():
        if mode == "plain":
            return model(x)
        return checkpoint_sequential(model, segments, x, use_reentrant=False)

    def step():
        model.zero_grad()
        forward().sum().backward()

    kept, out = saved_bytes(forward)
    out.sum().backward()
    benchmark.extra_info["rule"] = "checkpointing.sqrt-segments-keep-sqrt-memory"
    benchmark.extra_info["bytes_kept_for_backward"] = kept
    benchmark.extra_info["segments"] = segments if mode == "checkpointed" else 0
    benchmark(step)
    plain_kept, _ = saved_bytes(lambda: model(x))
    assert kept <= plain_kept
    assert model[0].weight.grad is not None
