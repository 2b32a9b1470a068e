"""Pictures of the recorded graph, drawn with matplotlib only (no graphviz binary).

:func:`recorded_graph` walks ``grad_fn.next_functions`` from an output and returns the graph as
data: its nodes (backward functions, ``AccumulateGrad`` nodes for leaves, ``None`` for inputs that
need no gradient) and its edges (``(node, input_number)`` pairs), and the tensors each node saved
for backward. :func:`draw` lays that data out in layers, output at the top, leaves at the bottom,
and draws it on a matplotlib axes; :func:`show` does both for a gallery page.

Arrows point the way gradients flow during ``backward()``: from a node to the nodes in its
``next_functions``; an arrow is labelled ``output k`` when it feeds output ``k`` of a node with
several outputs (the ``input_number`` of the edge).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import torch

#: Colours: backward functions, AccumulateGrad (leaves), None edges, saved tensors.
COLOURS = {"op": "#dbe9f6", "leaf": "#d9f2d9", "none": "#eeeeee", "saved": "#fff4d6"}
EDGE_COLOURS = {"op": "#3a6ea5", "leaf": "#2e7d32", "none": "#9e9e9e", "saved": "#b08900"}


@dataclass
class Node:
    """One node of the picture: ``kind`` is ``op`` (a grad_fn), ``leaf`` (AccumulateGrad) or ``none``."""

    index: int
    kind: str
    name: str
    label: str
    saved: list[str] = field(default_factory=list)


@dataclass
class Graph:
    """The recorded graph as data; ``edges`` are ``(from, to, input_number)`` node indices."""

    nodes: list[Node]
    edges: list[tuple[int, int, int]]
    #: The torch objects behind ``nodes`` (None for ``none`` nodes), kept alive so ids stay unique.
    objects: list[object]


def _tensor_name(tensor: torch.Tensor, names: Mapping[str, torch.Tensor]) -> str | None:
    for name, value in names.items():
        if value is tensor:
            return name
    for name, value in names.items():  # a saved tensor is often a fresh wrapper of the same data
        if (
            isinstance(value, torch.Tensor)
            and value.shape == tensor.shape
            and value.dtype == tensor.dtype
            and value.numel() > 0
            and value.data_ptr() == tensor.data_ptr()
            and value.stride() == tensor.stride()
        ):
            return name
    return None


def _describe(tensor: torch.Tensor) -> str:
    shape = "×".join(str(s) for s in tensor.shape) or "scalar"
    return f"tensor {shape}"


def _saved_tensors(node, names: Mapping[str, torch.Tensor]) -> list[str]:
    """The tensors a node saved for backward, as ``slot = name`` lines (empty once freed)."""
    lines = []
    for attribute in sorted(dir(node)):
        if not attribute.startswith("_saved_"):
            continue
        try:
            value = getattr(node, attribute)
        except RuntimeError:  # freed by a backward pass without retain_graph
            lines.append(f"{attribute[len('_saved_') :]}: freed")
            continue
        if isinstance(value, torch.Tensor):
            lines.append(f"{attribute[len('_saved_') :]} = {_tensor_name(value, names) or _describe(value)}")
    return lines


def recorded_graph(output: torch.Tensor, names: Mapping[str, torch.Tensor] | None = None, saved: bool = True) -> Graph:
    """Walk ``output.grad_fn`` through ``next_functions``; ``names`` labels tensors (leaves, results)."""
    names = dict(names or {})
    if output.grad_fn is None:
        raise ValueError("the output has no grad_fn: nothing was recorded")
    by_grad_fn = {}
    for name, value in names.items():
        if isinstance(value, torch.Tensor) and value.grad_fn is not None:
            by_grad_fn.setdefault(id(value.grad_fn), name)
    nodes: list[Node] = []
    objects: list[object] = []
    grad_fns: list[object] = []  # keeps every named grad_fn alive so its id stays its own
    for value in names.values():
        if isinstance(value, torch.Tensor):
            grad_fns.append(value.grad_fn)
    edges: list[tuple[int, int, int]] = []
    index_of: dict[int, int] = {}

    def add(node) -> int:
        key = id(node)
        if key in index_of:
            return index_of[key]
        index = len(nodes)
        index_of[key] = index
        objects.append(node)
        if hasattr(node, "variable"):
            leaf = _tensor_name(node.variable, names)
            nodes.append(Node(index, "leaf", node.name(), f"AccumulateGrad\n→ {leaf or 'leaf'}.grad"))
        else:
            label = node.name()
            if key in by_grad_fn:
                label += f"\n{by_grad_fn[key]}.grad_fn"
            nodes.append(Node(index, "op", node.name(), label, _saved_tensors(node, names) if saved else []))
        return index

    add(output.grad_fn)
    queue = [output.grad_fn]
    while queue:
        node = queue.pop(0)
        source = index_of[id(node)]
        for child, input_number in node.next_functions:
            if child is None:
                index = len(nodes)
                nodes.append(Node(index, "none", "None", "None\n(needs no grad)"))
                objects.append(None)
                edges.append((source, index, input_number))
                continue
            known = id(child) in index_of
            edges.append((source, add(child), input_number))
            if not known:
                queue.append(child)
    del grad_fns
    return Graph(nodes, edges, objects)


def layers(graph: Graph) -> list[list[int]]:
    """Nodes by depth: a node sits one layer below the deepest node that points to it."""
    depth = {0: 0}
    changed = True
    while changed:  # longest path in a DAG; the graphs drawn here are small
        changed = False
        for source, target, _ in graph.edges:
            if source in depth and depth.get(target, -1) < depth[source] + 1:
                depth[target] = depth[source] + 1
                changed = True
    rows: list[list[int]] = [[] for _ in range(max(depth.values()) + 1)]
    for node in graph.nodes:
        rows[depth[node.index]].append(node.index)
    # Order each row by the mean position of the nodes pointing to it (fewer crossings).
    position = {index: float(i) for i, index in enumerate(rows[0])}
    for row in rows[1:]:

        def key(index):
            parents = [position[s] for s, t, _ in graph.edges if t == index and s in position]
            return (sum(parents) / len(parents)) if parents else 0.0

        row.sort(key=key)
        position.update({index: float(i) - (len(row) - 1) / 2 for i, index in enumerate(row)})
    return rows


@dataclass
class Drawing:
    """What :func:`draw` put on the axes: one text box per node, one arrow per edge."""

    graph: Graph
    boxes: dict[int, object]
    arrows: dict[tuple[int, int, int], object]
    saved: dict[int, object]


def draw(graph: Graph, ax=None, title: str | None = None) -> Drawing:
    """Draw ``graph`` on ``ax`` (a new figure if None): boxes for nodes, arrows for edges."""
    import matplotlib.pyplot as plt

    rows = layers(graph)
    width = max(len(row) for row in rows)
    if ax is None:
        _, ax = plt.subplots(figsize=(max(4.5, 2.2 * width + 2.5), max(2.2, 1.0 * len(rows) + 0.6)))
    xy: dict[int, tuple[float, float]] = {}
    for depth, row in enumerate(rows):
        for i, index in enumerate(row):
            xy[index] = ((i - (len(row) - 1) / 2) * 2.6, -depth * 1.45)
    boxes, arrows, saved = {}, {}, {}
    for node in graph.nodes:
        x, y = xy[node.index]
        boxes[node.index] = ax.text(
            x,
            y,
            node.label,
            ha="center",
            va="center",
            fontsize=9,
            family="monospace",
            bbox=dict(
                boxstyle="round,pad=0.4",
                facecolor=COLOURS[node.kind],
                edgecolor=EDGE_COLOURS[node.kind],
                linestyle="--" if node.kind == "none" else "-",
            ),
        )
        if node.saved:
            saved[node.index] = ax.text(
                x + 0.85,
                y,
                "saved: " + "\n       ".join(node.saved),
                ha="left",
                va="center",
                multialignment="left",
                fontsize=7.5,
                family="monospace",
                color="#6d5200",
                bbox=dict(
                    boxstyle="round,pad=0.25",
                    facecolor=COLOURS["saved"],
                    edgecolor=EDGE_COLOURS["saved"],
                    linestyle=":",
                ),
            )
    for source, target, input_number in graph.edges:
        kind = graph.nodes[target].kind
        (x0, y0), (x1, y1) = xy[source], xy[target]
        # An edge that skips layers bends around the nodes in between.
        bend = 0.0 if abs(y1 - y0) < 2.0 else (-0.35 if x1 >= x0 else 0.35)
        arrows[(source, target, input_number)] = ax.annotate(
            "",
            xy=(x1, y1),
            xytext=(x0, y0),
            arrowprops=dict(
                arrowstyle="-|>",
                color=EDGE_COLOURS[kind],
                lw=1.3,
                shrinkA=14,
                shrinkB=14,
                connectionstyle=f"arc3,rad={bend}",
                linestyle="--" if kind == "none" else "-",
            ),
        )
        if input_number:  # which output of a multi-output node the gradient goes to
            ax.text(
                x0 + 0.7 * (x1 - x0) + 0.08,
                y0 + 0.7 * (y1 - y0),
                f"output {input_number}",
                fontsize=7,
                color="#555555",
                ha="left",
                va="center",
            )
    xs = [p[0] for p in xy.values()]
    ys = [p[1] for p in xy.values()]
    ax.set_xlim(min(xs) - 1.5, max(xs) + (3.2 if saved else 1.5))
    ax.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    return Drawing(graph, boxes, arrows, saved)


def show(
    output: torch.Tensor, names: Mapping[str, torch.Tensor] | None = None, title: str | None = None, saved: bool = True
) -> Drawing:
    """Draw the graph recorded for ``output`` in a new figure (sphinx-gallery renders it)."""
    import matplotlib.pyplot as plt

    drawing = draw(recorded_graph(output, names, saved=saved), title=title)
    plt.tight_layout()
    return drawing
