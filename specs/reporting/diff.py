"""The semantic diff of two reports: which rules changed between two releases (or two runs).

    python -m specs.reporting.diff build/reports/torch-2.13.0.json build/reports/torch-2.15.0.json \
        --markdown build/diffs/2.13.0-to-2.15.0.md --html build/diffs/2.13.0-to-2.15.0.html

A change that a rule's recorded history explains (a :class:`~specs.engine.registry.Change` at a release
between the two) is *expected history*; any other change of outcome is a *regression to look at*
(or a fix).  Error and warning messages are compared as templates (numbers and sizes blanked), so
a changed wording is reported without noise from the generated examples.
"""
from __future__ import annotations

import argparse
import html
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specs.reporting import report

from specs.engine import versions

KINDS = {
    "regression": "Regressions to look at",
    "fixed": "Rules that now hold",
    "expected": "Expected history",
    "applicable": "Rules that became applicable or not applicable",
    "appeared": "Rules that appeared or disappeared",
    "wording": "Messages whose wording changed",
    "benchmark": "Benchmarks that moved beyond their noise",
}


@dataclass
class Difference:
    kind: str
    rule: str
    statement: str
    before: str
    after: str
    note: str = ""


def template(message: str) -> str:
    """A message with its example-specific parts blanked: numbers, sizes, hex addresses."""
    text = re.sub(r"\s*\(Triggered internally at [^)]*\)\.?", "", message)  # a build path, not wording
    text = re.sub(r"0x[0-9a-f]+", "0x#", text)
    text = re.sub(r"\[[0-9, ]*\]", "[#]", text)
    text = re.sub(r"\d+(\.\d+)?(e[-+]?\d+)?", "#", text)
    return re.sub(r"\s+", " ", text).strip()


def _describe(rule: dict[str, Any] | None) -> str:
    if rule is None:
        return "absent"
    if rule["outcome"] == "passed":
        return f"passed ({rule.get('examples', 0)} examples)"
    if rule["outcome"] == "not-applicable":
        return f"not applicable: {rule.get('reason', '')}"
    if rule["outcome"] == "known-failure":
        return f"known failure: {rule.get('known', '')}"
    first = (rule.get("failure") or "").strip().splitlines()
    return "failed: " + " / ".join(line.strip() for line in first[2:5] if line.strip())


def _explaining_change(rule: dict[str, Any], low: tuple, high: tuple) -> dict[str, str] | None:
    for change in rule.get("history", []):
        try:
            at = versions.parse(change["version"])
        except (versions.UnknownVersion, KeyError):
            continue
        if low < at <= high:
            return change
    return None


def compare(before: dict[str, Any], after: dict[str, Any],
            benchmarks: tuple[dict | None, dict | None] | None = None) -> list[Difference]:
    """All differences between two loaded reports, most important kinds first.

    ``benchmarks``: the two releases' benchmark summaries (:func:`benchmark_summaries`), whose
    flagged changes are added; None (the default) compares the rules alone.
    """
    va = versions.parse(before["environment"]["torch"])
    vb = versions.parse(after["environment"]["torch"])
    low, high = min(va, vb), max(va, vb)
    rules_a = {r["id"]: r for r in before["rules"]}
    rules_b = {r["id"]: r for r in after["rules"]}
    found: list[Difference] = []
    for rule_id in sorted(rules_a.keys() | rules_b.keys()):
        a, b = rules_a.get(rule_id), rules_b.get(rule_id)
        statement = (b or a)["statement"]
        if a is None or b is None:
            found.append(Difference("appeared", rule_id, statement, _describe(a), _describe(b),
                                    "new rule" if a is None else "rule no longer registered"))
            continue
        oa, ob = a["outcome"], b["outcome"]
        if oa != ob:
            change = _explaining_change(b, low, high)
            if "not-applicable" in (oa, ob):
                kind, note = "applicable", ""
                if change is None and oa == "not-applicable" and ob == "failed":
                    kind, note = "regression", "became applicable and fails"
            elif change is not None:
                kind, note = "expected", f"changed in {change['version']}: {change['what']}"
            elif "known-failure" in (oa, ob) and "passed" not in (oa, ob):
                kind, note = "expected", "listed in specs/known-failures.txt"
            elif ob == "known-failure":
                kind, note = "expected", f"listed as a known failure: {b.get('known', '')}"
            elif oa == "known-failure":
                kind, note = "fixed", "a known failure no longer fails"
            elif ob == "failed":
                kind, note = "regression", "no recorded history explains this change"
            else:
                kind, note = "fixed", "no recorded history explains this change"
            found.append(Difference(kind, rule_id, statement, _describe(a), _describe(b), note))
        seen_a = {template(m): m for m in a.get("observations", [])}
        seen_b = {template(m): m for m in b.get("observations", [])}
        if oa == ob == "passed" and seen_a.keys() != seen_b.keys():
            only_a = [seen_a[k] for k in seen_a.keys() - seen_b.keys()]
            only_b = [seen_b[k] for k in seen_b.keys() - seen_a.keys()]
            found.append(Difference("wording", rule_id, statement, "\n".join(sorted(only_a)) or "(none)",
                                    "\n".join(sorted(only_b)) or "(none)"))
    found.extend(_benchmarks(before, after, benchmarks))
    order = list(KINDS)
    return sorted(found, key=lambda d: (order.index(d.kind), d.rule))


def _benchmarks(before: dict[str, Any], after: dict[str, Any],
                summaries: tuple[dict | None, dict | None] | None = None) -> list[Difference]:
    """Benchmarks that :func:`specs.bench.compare` flags between the two releases' summaries."""
    import specs.bench as bench

    old, new = summaries or (None, None)
    if not old or not new:
        return []
    show = {"time": lambda v: f"median {v * 1e3:.4g} ms", "instructions": lambda v: f"{v:,.0f} instructions per call"}
    found = []
    for f in bench.compare(old, new):
        if not f.flagged:
            continue
        rule = (old["benchmarks"].get(f.name) or new["benchmarks"].get(f.name) or {}).get("rule", "")
        if f.metric == "memory":
            found.append(Difference("benchmark", f.name, rule, f"{f.old:,} bytes", f"{f.new:,} bytes",
                                    f"{f.note.split(':')[0]}: saved bytes are exact"))
        else:
            found.append(Difference("benchmark", f.name, rule, show[f.metric](f.old), show[f.metric](f.new),
                                    f"{f.metric} {f.change:+.0%}, beyond the ±{f.threshold:.0%} that repeated "
                                    "runs of one release show"))
    return found


def benchmark_summaries(before: dict[str, Any], after: dict[str, Any],
                        committed_only: bool = False) -> tuple[dict | None, dict | None]:
    """The benchmark summaries of the two reports' releases, None for a release without one."""
    import specs.bench as bench

    return (bench.find(before["environment"]["torch"], committed_only),
            bench.find(after["environment"]["torch"], committed_only))


def _title(before: dict[str, Any], after: dict[str, Any]) -> str:
    return f"torch {before['environment']['torch']} → torch {after['environment']['torch']}"


def warnings_for(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    notes = []
    if before["environment"].get("profile") != after["environment"].get("profile"):
        notes.append(f"the runs used different hypothesis profiles ({before['environment'].get('profile')} "
                     f"and {after['environment'].get('profile')}): example counts are not comparable")
    for name, data in (("first", before), ("second", after)):
        if not data.get("complete", True):
            notes.append(f"the {name} report is from a partial run: missing rules show as appeared/disappeared")
    return notes


def render_text(before, after, differences: list[Difference]) -> str:
    lines = [f"autograd-spec diff: {_title(before, after)}"]
    lines += [f"warning: {note}" for note in warnings_for(before, after)]
    if not differences:
        lines.append("no differences")
    for kind, heading in KINDS.items():
        group = [d for d in differences if d.kind == kind]
        if not group:
            continue
        lines.append(f"\n{heading} ({len(group)})")
        for d in group:
            lines.append(f"  {d.rule}: {d.statement}")
            lines.append(f"    before: {d.before}".replace("\n", "\n            "))
            lines.append(f"    after:  {d.after}".replace("\n", "\n            "))
            if d.note:
                lines.append(f"    note:   {d.note}")
    return "\n".join(lines) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


def render_markdown(before, after, differences: list[Difference]) -> str:
    lines = [f"# {_title(before, after)}", ""]
    lines += [f"> warning: {note}" for note in warnings_for(before, after)]
    lines.append(f"{len(differences)} differences." if differences else "No differences.")
    for kind, heading in KINDS.items():
        group = [d for d in differences if d.kind == kind]
        if not group:
            continue
        lines += ["", f"## {heading} ({len(group)})", "", "| Rule | Before | After | Note |", "|---|---|---|---|"]
        for d in group:
            lines.append(f"| `{d.rule}`<br>{_md_cell(d.statement)} | {_md_cell(d.before)} | "
                         f"{_md_cell(d.after)} | {_md_cell(d.note)} |")
    return "\n".join(lines) + "\n"


def render_html(before, after, differences: list[Difference]) -> str:
    e = html.escape
    parts = [f"<!doctype html><html lang='en'><meta charset='utf-8'><title>{e(_title(before, after))}</title>",
             "<style>body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem}"
             "table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.4rem;"
             "vertical-align:top;text-align:left}pre{white-space:pre-wrap;margin:0}</style>",
             f"<h1>{e(_title(before, after))}</h1>"]
    parts += [f"<p><strong>warning:</strong> {e(note)}</p>" for note in warnings_for(before, after)]
    parts.append(f"<p>{len(differences)} differences.</p>" if differences else "<p>No differences.</p>")
    for kind, heading in KINDS.items():
        group = [d for d in differences if d.kind == kind]
        if not group:
            continue
        parts.append(f"<h2>{e(heading)} ({len(group)})</h2><table><tr><th>Rule</th><th>Before</th>"
                     "<th>After</th><th>Note</th></tr>")
        for d in group:
            parts.append(f"<tr><td><code>{e(d.rule)}</code><br>{e(d.statement)}</td><td><pre>{e(d.before)}</pre>"
                         f"</td><td><pre>{e(d.after)}</pre></td><td>{e(d.note)}</td></tr>")
        parts.append("</table>")
    return "\n".join(parts) + "\n</html>\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m specs.reporting.diff", description=__doc__.split("\n\n")[0])
    parser.add_argument("before", help="the baseline report (JSON)")
    parser.add_argument("after", help="the report to compare with it (JSON)")
    parser.add_argument("--markdown", type=Path, help="also write the diff as Markdown here")
    parser.add_argument("--html", type=Path, help="also write the diff as HTML here")
    args = parser.parse_args(argv)
    try:
        before, after = report.load(args.before), report.load(args.after)
        differences = compare(before, after, benchmark_summaries(before, after))
    except (report.ReportError, versions.UnknownVersion, KeyError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(render_text(before, after, differences))
    for path, render in ((args.markdown, render_markdown), (args.html, render_html)):
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(before, after, differences))
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
