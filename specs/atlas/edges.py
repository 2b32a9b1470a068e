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


def _coverage_table(coverage: dict[str, dict], releases: list[str]) -> list[str]:
    """Per release: how many of that torch's OpInfo autograd ops the atlas exercised, and which not."""
    rows = [r for r in releases if coverage.get(r)]
    lines = [
        ".. _atlas-opinfo-coverage:",
        "",
        "Coverage of PyTorch's own op list",
        "---------------------------------",
        "",
        (
            "PyTorch's test suite lists its ops in the OpInfo database "
            "(``torch.testing._internal.common_methods_invocations.op_db``). For each release: how many of "
            "the entries that support autograd the atlas exercises (counted by the torch callables its "
            "entries actually call, not by name), and which it does not. Measured by every run and written "
            "to its report."
        ),
        "",
    ]
    if not rows:
        return lines + ["No committed report holds this measurement yet.", ""]
    lines += [
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - release",
        "     - covered",
        "     - fraction",
        "     - not covered",
    ]
    for release in rows:
        c = coverage[release]
        lines += [
            f"   * - {release}",
            f"     - {c.get('covered')} of {c.get('opinfo_autograd_ops')}",
            f"     - {c.get('fraction', 0):.1%}",
            "     - " + (", ".join(f"``{n}``" for n in c.get("uncovered", ())) or "none"),
        ]
    return [*lines, ""]


def render(
    edges: dict[str, dict[str, dict]], departures: dict[str, dict[str, dict]], coverage: dict[str, dict] | None = None
) -> str:
    """``edges``/``departures``: release -> recorded mapping; ``coverage``: release -> the report's
    ``atlas_coverage``.  Returns the page's RST."""
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
        *_coverage_table(coverage or {}, releases),
        "Gradients at each special point",
        "-------------------------------",
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
    coverage: dict[str, dict] = {}
    for report in reports:
        release = report["environment"]["torch"].split("+")[0]
        rules = {r["id"]: r for r in report["rules"]}
        observed = (rules.get("atlas.edges-are-recorded") or {}).get("observed") or {}
        edges[release] = {k: v for k, v in observed.items() if " @ " in k and isinstance(v, dict)}
        kinks = (rules.get("atlas.kinks-take-the-minimum-norm-subgradient") or {}).get("observed") or {}
        departures[release] = kinks.get("departures") or {}
        if isinstance(report.get("atlas_coverage"), dict):
            coverage[release] = report["atlas_coverage"]
    return render(edges, departures, coverage)


def write(root: Path) -> Path:
    """Write ``docs/generated/edges.rst`` from the committed reports in ``reports/``."""

    from specs.reporting import matrix

    out = Path(root) / "docs" / "generated" / "edges.rst"
    out.parent.mkdir(parents=True, exist_ok=True)
    text = from_reports(matrix.load_reports(Path(root) / "reports"))
    if not out.exists() or out.read_text() != text:
        out.write_text(text)
    return out
