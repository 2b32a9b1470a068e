"""What a Python autograd.Function costs against the native op it reimplements (forward + backward).

The time, and the bytes each saves for backward (exact, by saved-tensor hooks).
"""

import pytest
import torch

from specs.engine.oracles import saved_bytes
from specs.families.custom_function import SeedReLU


@pytest.mark.parametrize("implementation", ["native", "custom"])
@pytest.mark.parametrize("size", [16, 65536])
def test_relu_forward_backward(benchmark, implementation, size):
    """custom-function.seed-relu: the seed's custom ReLU against torch.relu, forward and backward."""
    torch.manual_seed(0)
    x = torch.randn(size, requires_grad=True)
    relu = torch.relu if implementation == "native" else SeedReLU.apply

    def step():
        x.grad = None
        relu(x).sum().backward()
        return x.grad

    benchmark.extra_info["rule"] = "custom-function.seed-relu"
    # Both save one tensor of x's size: the custom one its input, torch.relu its result.
    benchmark.extra_info["saved_bytes"], _ = saved_bytes(lambda: relu(x))
    grad = benchmark(step)
    assert benchmark.extra_info["saved_bytes"] == x.numel() * x.element_size()
    assert torch.equal(grad[x.detach() != 0], (x.detach() > 0).to(grad.dtype)[x.detach() != 0])
