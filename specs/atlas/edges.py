"""The "Gradients at the edges" page: what torch returns at each op's special points, per release.

:func:`render` takes the values that ``atlas.edges-are-recorded`` recorded on each release (the
rule's ``observed`` mapping in each JSON report, ``"<op> @ <point>"`` -> observation) and the
departures that ``atlas.kinks-take-the-minimum-norm-subgradient`` recorded, and returns RST: one
row per op and point, one column per release, the convention and whether torch follows it.
"""
from __future__ import annotations

import json

from specs.atlas.table import TABLE


def _cell(seen: dict | None) -> str:
    if seen is None:
        return "—"
    gradient = seen.get("gradient", seen.get("forward value", "?"))
    return json.dumps(gradient, separators=(",", ":")).replace("|", "/")[:80]


def render(edges: dict[str, dict[str, dict]], departures: dict[str, dict[str, dict]]) -> str:
    """``edges``/``departures``: release -> recorded mapping.  Returns the page's RST."""
    releases = sorted(edges)
    lines = ["Gradients at the edges", "======================", "",
             ("For each op of the atlas and each of its special points: the gradient of ``out.sum()`` that "
              "torch returns on each release, and whether it follows the minimum-norm subgradient convention "
              "where that convention applies."), "",
             ".. list-table::", "   :header-rows: 1", "",
             "   * - op", "     - point", "     - kind", *(f"     - {r}" for r in releases), "     - convention"]
    for name, entry in TABLE.items():
        for point in entry.points:
            key = f"{name} @ {point.name}"
            if point.convention:
                departs = [r for r in releases if key in departures.get(r, {})]
                convention = f"departs on {', '.join(departs)}" if departs else "follows"
            else:
                convention = ""
            lines += [f"   * - ``{name}``", f"     - {point.name}", f"     - {point.kind}",
                      *(f"     - ``{_cell(edges[r].get(key))}``" for r in releases), f"     - {convention}"]
    return "\n".join(lines) + "\n"
