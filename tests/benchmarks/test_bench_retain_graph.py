"""Memory kept for backward, counted deterministically: the bytes that saved-tensor hooks pack.

Process RSS is noisy; the bytes autograd saves are not. Each packed tensor is boxed and weakly
referenced, so after backward we can count exactly how many saved bytes are still held.
"""

import weakref

import pytest
import torch

WIDTH, DEPTH = 256, 8


class _Packed:
    def __init__(self, tensor):
        self.tensor = tensor
        self.nbytes = tensor.numel() * tensor.element_size()


def _forward_and_backward(retain: bool):
    torch.manual_seed(0)
    x = torch.randn(WIDTH, WIDTH, requires_grad=True)
    weights = [torch.randn(WIDTH, WIDTH) / WIDTH**0.5 for _ in range(DEPTH)]
    packed = []

    def pack(tensor):
        box = _Packed(tensor.detach())
        packed.append((weakref.ref(box), box.nbytes))
        return box

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda box: box.tensor):
        h = x
        for w in weights:
            h = torch.tanh(h @ w)
        loss = h.sum()
    if retain:
        loss.backward(retain_graph=True)
    else:
        loss.backward()
    saved = sum(n for _, n in packed)
    kept = sum(n for ref, n in packed if ref() is not None)
    return saved, kept, loss


@pytest.mark.parametrize("retain", [False, True], ids=["default", "retain_graph"])
def test_memory_kept_after_backward(benchmark, retain):
    """retain-graph.saved-tensors-released: bytes saved for backward, and bytes still held after it."""
    saved, kept, _ = _forward_and_backward(retain)
    benchmark.extra_info["rule"] = "retain-graph.saved-tensors-released"
    benchmark.extra_info["saved_bytes"] = saved
    benchmark.extra_info["kept_after_backward_bytes"] = kept
    benchmark(_forward_and_backward, retain)
    assert saved > 0
    assert kept == (saved if retain else 0)
