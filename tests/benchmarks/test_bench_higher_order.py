"""The cost of a Hessian-vector product (double backward) against one gradient.

Besides the time, the bytes autograd saves while computing each (exact, by saved-tensor hooks):
the double backward records the first backward too.
"""

import pytest
import torch

from specs.engine.oracles import saved_bytes

SIZE, HIDDEN = 64, 64


def _setup():
    torch.manual_seed(0)
    w1 = torch.randn(SIZE, HIDDEN, dtype=torch.float64, requires_grad=True)
    data = torch.randn(32, SIZE, dtype=torch.float64)
    u = torch.randn(SIZE, HIDDEN, dtype=torch.float64)
    return w1, data, u


def _loss(w1, data):
    return torch.tanh(data @ w1).pow(2).sum()


@pytest.mark.parametrize("what", ["gradient", "hvp"])
def test_hvp_cost(benchmark, what):
    """higher-order.hvp-matches-functional: one H u costs a small multiple of one gradient."""
    w1, data, u = _setup()

    def gradient():
        return torch.autograd.grad(_loss(w1, data), w1)[0]

    def hvp():
        (g,) = torch.autograd.grad(_loss(w1, data), w1, create_graph=True)
        return torch.autograd.grad((g * u).sum(), w1)[0]

    benchmark.extra_info["rule"] = "higher-order.hvp-matches-functional"
    benchmark.extra_info["saved_bytes"], _ = saved_bytes(gradient if what == "gradient" else hvp)
    result = benchmark(gradient if what == "gradient" else hvp)
    assert result.shape == w1.shape
    one_gradient, _ = saved_bytes(gradient)
    assert benchmark.extra_info["saved_bytes"] >= one_gradient
