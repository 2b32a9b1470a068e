"""What the graph costs: recording it, walking it (per node), and backward against forward.

Recording: the same forward run with tracked leaves (a graph is recorded) and untracked. Walking:
backward through chains of N tiny nodes, whose time per node must not grow with N. Backward
against forward: generated programs of growing size (``specs.bench.program``, the same programs
on every release), against the cheap-gradient principle.
"""

import pytest
import torch

import specs.bench as bench
from specs.engine.oracles import saved_bytes


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


PROGRAM_SIZES = [8, 32, 128]


@pytest.mark.parametrize("phase", ["forward", "backward"])
@pytest.mark.parametrize("ops", PROGRAM_SIZES)
def test_backward_forward_ratio(benchmark, ops, phase):
    """leaves.backward-computes-the-gradient: backward costs a small multiple of the recorded forward.

    The cheap-gradient principle bounds (forward + backward) / forward by about 5; the ratio per
    program size is derived from the two phases' medians by ``specs.bench``.
    """
    program = bench.program(ops)
    function = program.function()
    leaves = program.inputs()
    benchmark.extra_info["rule"] = "leaves.backward-computes-the-gradient"
    benchmark.extra_info["saved_bytes"], out = saved_bytes(lambda: function(*leaves))
    out.backward()
    expected = [leaf.grad.clone() for leaf in leaves]

    def record():
        for leaf in leaves:
            leaf.grad = None
        return (function(*leaves),), {}

    if phase == "forward":
        out = benchmark(function, *leaves)
        assert out.grad_fn is not None
    else:
        benchmark.pedantic(
            lambda out: out.backward(), setup=record, rounds=bench.pedantic_rounds(lambda: function(*leaves).backward())
        )
        assert all(torch.equal(leaf.grad, e) for leaf, e in zip(leaves, expected))


def _graph_nodes(root) -> int:
    seen, stack = set(), [root]
    while stack:
        node = stack.pop()
        if node is not None and node not in seen:
            seen.add(node)
            stack.extend(n for n, _ in node.next_functions)
    return len(seen)


@pytest.mark.parametrize("nodes", [32, 128, 512, 2048])
def test_engine_chain(benchmark, nodes):
    """leaves.backward-computes-the-gradient: backward through N tiny nodes costs time linear in N.

    A chain of N additions on a one-element tensor saves nothing and computes almost nothing, so
    what backward costs is the engine's own work per node; ``specs.bench`` fits the line.
    """
    x = torch.zeros(1, requires_grad=True)

    def record():
        x.grad = None
        y = x
        for _ in range(nodes):
            y = y + 1.0
        return (y,), {}

    (y,), _ = record()
    benchmark.extra_info["rule"] = "leaves.backward-computes-the-gradient"
    benchmark.extra_info["nodes"] = nodes
    benchmark.extra_info["saved_bytes"], _ = saved_bytes(lambda: record()[0][0])
    assert _graph_nodes(y.grad_fn) == nodes + 1  # N AddBackward0 nodes and x's AccumulateGrad
    benchmark.pedantic(
        lambda y: y.backward(), setup=record, rounds=bench.pedantic_rounds(lambda: record()[0][0].backward())
    )
    assert x.grad.item() == 1.0
    assert benchmark.extra_info["saved_bytes"] == 0
