"""Accumulation costs: k micro-batch backward passes against one full-batch pass.

Micro-batching trades time for memory; these benchmarks measure the time side for the same
total batch; the memory side is exact: the bytes autograd saves for one chunk's backward
(``saved_bytes_per_pass``), which shrink with the chunk. Under ``nox -s tests`` they run once, untimed, as ordinary tests.
"""

import pytest
import torch

from specs.engine.oracles import saved_bytes

BATCH, FEATURES, HIDDEN = 256, 64, 64


def _model_and_data():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(FEATURES, HIDDEN), torch.nn.Tanh(), torch.nn.Linear(HIDDEN, 1))
    return model, torch.randn(BATCH, FEATURES), torch.randn(BATCH, 1)


@pytest.mark.parametrize("chunks", [1, 4, 16])
def test_micro_batches(benchmark, chunks):
    """accumulation.micro-batches-add-up: the time of k chunked passes, k = 1 being the full batch."""
    model, x, y = _model_and_data()

    def step():
        model.zero_grad()
        for cx, cy in zip(x.chunk(chunks), y.chunk(chunks)):
            torch.nn.functional.mse_loss(model(cx), cy, reduction="sum").backward()

    benchmark.extra_info["rule"] = "accumulation.micro-batches-add-up"
    per_pass, _ = saved_bytes(
        lambda: torch.nn.functional.mse_loss(model(x.chunk(chunks)[0]), y.chunk(chunks)[0], reduction="sum")
    )
    benchmark.extra_info["saved_bytes_per_pass"] = per_pass
    benchmark(step)
    assert model[0].weight.grad is not None
    full, _ = saved_bytes(lambda: torch.nn.functional.mse_loss(model(x), y, reduction="sum"))
    assert per_pass < full or chunks == 1
