"""The graph pictures show exactly what autograd recorded: a walk of next_functions, no more."""

from collections import Counter

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import HealthCheck, assume, given, settings  # noqa: E402

from specs.generators.strategies import programs  # noqa: E402
from specs.rendering import graph_drawing  # noqa: E402

SETTINGS = settings(
    max_examples=25, derandomize=True, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def walk(root):
    """An independent walk: every node reachable through next_functions, and every edge."""
    seen, edges, stack = [], Counter(), [root]
    while stack:
        node = stack.pop()
        if any(node is other for other in seen):
            continue
        seen.append(node)  # kept alive, so ids stay unique
        for child, input_number in node.next_functions:
            edges[(id(node), None if child is None else id(child), input_number)] += 1
            if child is not None:
                stack.append(child)
    return seen, edges


@SETTINGS
@given(program=programs())
def test_drawn_graph_is_the_walk_of_next_functions(program):
    leaves = program.inputs()
    values = program.trace(*leaves)
    out = values[program.steps[-1].out]
    assume(out.grad_fn is not None)
    graph = graph_drawing.recorded_graph(out, values)
    drawing = graph_drawing.draw(graph)
    try:
        nodes, edges = walk(out.grad_fn)
        drawn_nodes = [o for o in graph.objects if o is not None]
        assert sorted(map(id, drawn_nodes)) == sorted(map(id, nodes))
        drawn_edges = Counter(
            (id(graph.objects[s]), None if graph.objects[t] is None else id(graph.objects[t]), k)
            for s, t, k in graph.edges
        )
        assert drawn_edges == edges
        # Every node and every edge is on the axes, with the node's label.
        ax = plt.gcf().axes[0]
        assert set(drawing.boxes) == {node.index for node in graph.nodes}
        assert all(box.axes is ax and box.get_text() == graph.nodes[i].label for i, box in drawing.boxes.items())
        assert set(drawing.arrows) == set(graph.edges) and len(graph.edges) == sum(edges.values())
        # The AccumulateGrad nodes are exactly the leaves that require grad, named as in the program.
        accumulate = [n for n in graph.nodes if n.kind == "leaf"]
        expected = sorted(f"x{i}" for i in program.grad_leaves)
        assert sorted(n.label.split("→ ")[1].removesuffix(".grad") for n in accumulate) == expected
        assert {id(graph.objects[n.index].variable) for n in accumulate} == {id(leaves[i]) for i in program.grad_leaves}
    finally:
        plt.close("all")


def test_seed_example_graph_with_saved_tensors():
    x = torch.tensor(2.0, requires_grad=True)
    y = torch.tensor(3.0, requires_grad=True)
    z = x**2 + y**3
    graph = graph_drawing.recorded_graph(z, {"x": x, "y": y, "z": z})
    labels = [n.label for n in graph.nodes]
    assert labels[0].startswith("AddBackward0") and "z.grad_fn" in labels[0]
    assert sorted(n.saved[0] for n in graph.nodes if n.saved) == ["self = x", "self = y"]
    assert sorted(n.label for n in graph.nodes if n.kind == "leaf") == [
        "AccumulateGrad\n→ x.grad",
        "AccumulateGrad\n→ y.grad",
    ]
    assert len(graph.edges) == 4
    z.backward()  # saved tensors are freed: the picture says so instead of failing
    assert any("freed" in line for n in graph_drawing.recorded_graph(z, {"x": x}).nodes for line in n.saved)


def test_inputs_without_grad_are_none_edges():
    p = torch.tensor([1.0, 2.0], requires_grad=True)
    q = torch.tensor([5.0, 6.0])
    graph = graph_drawing.recorded_graph(p * q, {"p": p, "q": q})
    assert [n.kind for n in graph.nodes] == ["op", "leaf", "none"]
    assert graph.edges == [(0, 1, 0), (0, 2, 0)]


def test_untracked_output_is_refused():
    with pytest.raises(ValueError, match="no grad_fn"):
        graph_drawing.recorded_graph(torch.ones(2))
