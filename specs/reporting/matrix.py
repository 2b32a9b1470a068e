"""The conformance matrix: rules x torch releases, from the committed reports in ``reports/``.

Renders ``docs/generated/matrix.rst`` and one diff page per pair of consecutive releases
(``docs/generated/diffs/<a>-to-<b>.rst``).
"""

from __future__ import annotations

from pathlib import Path

from specs.engine import registry, versions
from specs.reporting import diff, report
from specs.reporting.catalogue import _rst_escape as _escape

SYMBOL = {"passed": "✓", "failed": "✗ fails", "known-failure": "✗ known", "not-applicable": "n/a"}


def load_reports(directory: Path) -> list[dict]:
    """Every report in ``directory``, oldest torch first; a broken file is a build error."""
    loaded = [report.load(path) for path in sorted(directory.glob("torch-*.json"))]
    return sorted(loaded, key=lambda r: versions.parse(r["environment"]["torch"]))


def _short(version: str) -> str:
    return version.split("+")[0]


def render_matrix(reports: list[dict]) -> str:
    releases = [_short(r["environment"]["torch"]) for r in reports]
    out = [".. _conformance-matrix:\n\nConformance matrix\n==================\n\n"]
    if not reports:
        return out[0] + "No reports have been committed yet (``reports/torch-*.json``).\n"
    out.append(
        "Each column is a real run of the whole specification against one torch release "
        "(CPU, hypothesis profile as listed), committed as ``reports/torch-<release>.json``. "
        "✓: the rule held on every generated example; ✗: it did not (see the diffs; *known*: listed "
        "in ``specs/known-failures.txt`` with the reason); n/a: "
        "the release lacks what the rule needs; blank: the rule did not exist when that "
        "report was made.\n\n"
    )
    out.append(
        ".. list-table:: Runs\n   :header-rows: 1\n\n   * - torch\n     - platform\n"
        "     - profile\n     - passed\n     - failed\n     - known failures\n     - n/a\n"
    )
    for r in reports:
        counts = {o: sum(1 for x in r["rules"] if x["outcome"] == o) for o in report.OUTCOMES}
        env = r["environment"]
        out.append(
            f"   * - {env['torch']}\n     - {_escape(env.get('platform', '?'))}, Python {env.get('python', '?')}\n"
            f"     - {env.get('profile', '?')}\n     - {counts['passed']}\n     - {counts['failed']}\n"
            f"     - {counts['known-failure']}\n     - {counts['not-applicable']}\n"
        )
    out.append("\nDiffs between consecutive releases:\n\n")
    for a, b in zip(releases, releases[1:]):
        out.append(f"- :doc:`diffs/{a}-to-{b}`\n")
    by_release = [{x["id"]: x for x in r["rules"]} for r in reports]
    ids = sorted({rule_id for rules in by_release for rule_id in rules} | {r.id for r in registry.rules()})
    known = {r.id for r in registry.rules()}
    cells = {rule_id: row_cells(rule_id, reports, by_release) for rule_id in ids}
    changing = [rule_id for rule_id in ids if any(mark for _, mark in cells[rule_id])]
    stable = [rule_id for rule_id in ids if rule_id not in changing]
    out.append(
        f"\nRules that change across releases ({len(changing)}): each change is marked at the first "
        "release that shows it, *Δ* where the rule held but observed something different on its "
        "canonical examples (the diff pages say what).\n"
    )
    out.append(_grid("Rules that change", changing, releases, cells, known))
    out.append(f"\nRules that behave the same on every release ({len(stable)}).\n")
    out.append(_grid("Stable rules", stable, releases, cells, known))
    out.append("\n.. toctree::\n   :hidden:\n\n")
    out.extend(f"   diffs/{a}-to-{b}\n" for a, b in zip(releases, releases[1:]))
    return "".join(out)


def row_cells(rule_id: str, reports: list[dict], by_release: list[dict]) -> list[tuple[str, str]]:
    """(symbol, change mark) of one rule per release: the mark is set where the outcome differs from the
    previous release that ran the rule (``changed``) or the rule held on both but observed otherwise (``Δ``)."""
    row: list[tuple[str, str]] = []
    previous = None
    for data, rules in zip(reports, by_release):
        entry = rules.get(rule_id)
        mark = ""
        if entry and previous:
            if entry["outcome"] != previous[1]["outcome"]:
                mark = "changed"
            elif (
                report.has_observations(data)
                and report.has_observations(previous[0])
                and entry.get("observed", {}) != previous[1].get("observed", {})
            ):
                mark = "Δ"
        row.append((SYMBOL[entry["outcome"]] if entry else "", mark))
        if entry:
            previous = (data, entry)
    return row


def _grid(title: str, ids: list[str], releases: list[str], cells: dict, known: set[str]) -> str:
    if not ids:
        return ""
    out = [f"\n.. list-table:: {title}\n   :header-rows: 1\n\n   * - Rule\n"]
    out.extend(f"     - {v}\n" for v in releases)
    for rule_id in ids:
        label = f":ref:`{rule_id} <rule-{rule_id.replace('.', '-')}>`" if rule_id in known else f"``{rule_id}``"
        out.append(f"   * - {label}\n")
        for symbol, mark in cells[rule_id]:
            out.append(f"     - {symbol}{f' *{mark}*' if mark else ''}\n")
    return "".join(out)


def render_diff_page(before: dict, after: dict) -> str:
    a, b = _short(before["environment"]["torch"]), _short(after["environment"]["torch"])
    title = f"torch {a} → torch {b}"
    out = [f"{title}\n{'=' * len(title)}\n\n"]
    differences = diff.compare(before, after, diff.benchmark_summaries(before, after, committed_only=True))
    out.extend(f".. warning:: {_escape(note)}\n\n" for note in diff.warnings_for(before, after))
    out.append(
        f"{len(differences)} differences. Generated by ``python -m specs.reporting.diff`` from the committed "
        f"reports; back to the :ref:`conformance-matrix`.\n\n"
    )
    for kind, heading in diff.KINDS.items():
        group = [d for d in differences if d.kind == kind]
        if not group:
            continue
        out.append(f"{heading} ({len(group)})\n{'-' * (len(heading) + len(str(len(group))) + 3)}\n\n")
        for d in group:
            out.append(f"``{d.title}``\n   {_escape(d.statement)}\n\n")
            if d.note:
                out.append(f"   *{_escape(d.note)}*\n\n")
            for side, text in ((a, d.before), (b, d.after)):
                out.append(f"   torch {side}:\n\n   .. code-block:: text\n\n")
                out.extend(f"      {line}\n" for line in (text or "(none)").splitlines())
                out.append("\n")
    return "".join(out)


def _write_if_changed(path: Path, text: str) -> None:
    """Leave an unchanged page alone, so that Sphinx's incremental build does not redo it."""
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def write(root: Path) -> list[Path]:
    reports = load_reports(root / "reports")
    target = root / "docs" / "generated"
    (target / "diffs").mkdir(parents=True, exist_ok=True)
    written = [target / "matrix.rst"]
    _write_if_changed(written[0], render_matrix(reports))
    for before, after in zip(reports, reports[1:]):
        a, b = _short(before["environment"]["torch"]), _short(after["environment"]["torch"])
        page = target / "diffs" / f"{a}-to-{b}.rst"
        _write_if_changed(page, render_diff_page(before, after))
        written.append(page)
    for stale in (target / "diffs").glob("*.rst"):  # pairs that are no longer consecutive
        if stale not in written:
            stale.unlink()
    return written
