"""Recording cost: the same forward run with tracked leaves (a graph is recorded) and untracked."""
import pytest
import torch


@pytest.mark.parametrize("tracked", [False, True], ids=["untracked", "tracked"])
def test_record_chain(benchmark, tracked):
    """leaves.requires-grad-propagates: what recording a 200-op chain costs over running it."""
    x = torch.randn(32, requires_grad=tracked)

    def forward():
        y = x
        for _ in range(200):
            y = torch.sin(y) * 0.5
        return y

    benchmark.extra_info["rule"] = "leaves.requires-grad-propagates"
    out = benchmark(forward)
    assert out.requires_grad is tracked
