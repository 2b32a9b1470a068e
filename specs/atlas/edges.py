"""The "Gradients at the edges" page: what torch returns at each op's special points, per release.

:func:`render` takes the values that ``atlas.edges-are-recorded`` recorded on each release (the
rule's ``observed`` mapping in each JSON report, ``"<op> @ <point>"`` -> observation) and the
departures that ``atlas.kinks-take-the-minimum-norm-subgradient`` recorded, and returns RST: one
row per op and point, one column per release, the convention and whether torch follows it.
"""

from __future__ import annotations

import json
from pathlib import Path

from specs.atlas.table import TABLE


def _cell(seen: dict | None) -> str:
    if seen is None:
        return "—"
    gradient = seen.get("gradient", seen.get("forward value", "?"))
    return json.dumps(gradient, separators=(",", ":")).replace("|", "/")[:80]


def render(edges: dict[str, dict[str, dict]], departures: dict[str, dict[str, dict]]) -> str:
    """``edges``/``departures``: release -> recorded mapping.  Returns the page's RST."""
    from specs.engine import versions

    releases = sorted(edges, key=versions.parse)
    lines = [
        ".. _gradients-at-the-edges:",
        "",
        "Gradients at the edges",
        "======================",
        "",
        (
            "For each op of the atlas and each of its special points: the gradient of ``out.sum()`` that "
            "torch returns on each release, and whether it follows the minimum-norm subgradient convention "
            "where that convention applies."
        ),
        "",
        (
            "Type in the box above the table to filter its rows (op, point, kind or value); click a column's "
            "header to sort by it. Each cell is what the rule ``atlas.edges-are-recorded`` recorded on that "
            "release's committed report, on the same canonical input on every release; a dash: that release's "
            "report holds no such observation (an older report, or the op is missing there)."
        ),
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "   :class: autograd-spec-filterable",
        "",
        "   * - op",
        "     - point",
        "     - kind",
        *(f"     - {r}" for r in releases),
        "     - convention",
    ]
    for name, entry in TABLE.items():
        for point in entry.points:
            key = f"{name} @ {point.name}"
            if point.convention:
                departs = [r for r in releases if key in departures.get(r, {})]
                convention = f"departs on {', '.join(departs)}" if departs else "follows"
            else:
                convention = ""
            lines += [
                f"   * - ``{name}``",
                f"     - ``{point.name}``",
                f"     - {point.kind}",
                *(f"     - ``{_cell(edges[r].get(key))}``" for r in releases),
                f"     - {convention}",
            ]
    return "\n".join(lines) + "\n"


def from_reports(reports: list[dict]) -> str:
    """The page from JSON reports (schema 2): each release's recorded edges and departures."""
    edges: dict[str, dict[str, dict]] = {}
    departures: dict[str, dict[str, dict]] = {}
    for report in reports:
        release = report["environment"]["torch"].split("+")[0]
        rules = {r["id"]: r for r in report["rules"]}
        observed = (rules.get("atlas.edges-are-recorded") or {}).get("observed") or {}
        edges[release] = {k: v for k, v in observed.items() if " @ " in k and isinstance(v, dict)}
        kinks = (rules.get("atlas.kinks-take-the-minimum-norm-subgradient") or {}).get("observed") or {}
        departures[release] = kinks.get("departures") or {}
    return render(edges, departures)


def write(root: Path) -> Path:
    """Write ``docs/generated/edges.rst`` from the committed reports in ``reports/``."""

    from specs.reporting import matrix

    out = Path(root) / "docs" / "generated" / "edges.rst"
    out.parent.mkdir(parents=True, exist_ok=True)
    text = from_reports(matrix.load_reports(Path(root) / "reports"))
    if not out.exists() or out.read_text() != text:
        out.write_text(text)
    return out
