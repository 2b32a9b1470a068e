"""The semantic diff of two reports: which rules changed between two releases (or two runs).

    python -m specs.reporting.diff build/reports/torch-2.13.0.json build/reports/torch-2.15.0.json \
        --markdown build/diffs/2.13.0-to-2.15.0.md --html build/diffs/2.13.0-to-2.15.0.html

A change that a rule's recorded history explains (a :class:`~specs.engine.registry.Change` at a release
between the two) is *expected history*; any other change of outcome is a *regression to look at*
(or a fix).  A rule that held on both releases but observed something different on its canonical
examples (a recorded value, an error's type, template or phase, a warning) is listed too, as
expected history when a recorded change lies between the releases and as an observation to look at
otherwise.  Error and warning messages are compared as templates (:func:`specs.engine.messages.template`),
so a changed wording is reported without noise from the generated examples.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specs.engine import versions
from specs.engine.messages import template
from specs.reporting import report

KINDS = {
    "regression": "Regressions to look at",
    "observed": "Observations that changed with no recorded history to explain them (look at these)",
    "fixed": "Rules that now hold",
    "expected": "Expected history",
    "history": "Observations that changed as the rules' recorded history expects",
    "applicable": "Rules that became applicable or not applicable",
    "appeared": "Rules that appeared or disappeared",
    "wording": "Messages whose wording changed",
    "benchmark": "Benchmarks that moved beyond their noise",
    "coverage": "The atlas's coverage of torch's own op list (OpInfo)",
}


@dataclass
class Difference:
    kind: str
    rule: str
    statement: str
    before: str
    after: str
    note: str = ""
    #: the op, for observations of the atlas (names ``atlas:<op>:...``); empty otherwise
    group: str = ""

    @property
    def title(self) -> str:
        return f"{self.rule} [{self.group}]" if self.group else self.rule


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


def compare(
    before: dict[str, Any], after: dict[str, Any], benchmarks: tuple[dict | None, dict | None] | None = None
) -> list[Difference]:
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
            found.append(
                Difference(
                    "appeared",
                    rule_id,
                    statement,
                    _describe(a),
                    _describe(b),
                    "new rule" if a is None else "rule no longer registered",
                )
            )
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
            found.append(
                Difference(
                    "wording",
                    rule_id,
                    statement,
                    "\n".join(sorted(only_a)) or "(none)",
                    "\n".join(sorted(only_b)) or "(none)",
                )
            )
        if oa == ob == "passed" and report.has_observations(before) and report.has_observations(after):
            found.extend(_observation_differences(a, b, low, high))
    found.extend(_benchmarks(before, after, benchmarks))
    found.extend(_atlas_coverage(before, after))
    order = list(KINDS)
    return sorted(found, key=lambda d: (order.index(d.kind), d.rule, d.group))


def _atlas_coverage(before: dict[str, Any], after: dict[str, Any]) -> list[Difference]:
    """OpInfo autograd ops that one release lists and the other does not, or that the atlas stopped covering."""
    a, b = before.get("atlas_coverage"), after.get("atlas_coverage")
    if not a or not b:
        return []
    uncovered_a, uncovered_b = set(a.get("uncovered", ())), set(b.get("uncovered", ()))
    if (a.get("covered"), a.get("opinfo_autograd_ops"), uncovered_a) == (
        b.get("covered"),
        b.get("opinfo_autograd_ops"),
        uncovered_b,
    ):
        return []

    def shown(c: dict[str, Any]) -> str:
        return f"{c.get('covered')} of {c.get('opinfo_autograd_ops')} ({c.get('fraction', 0):.1%})"

    notes = []
    if uncovered_b - uncovered_a:
        notes.append("not covered now: " + ", ".join(sorted(uncovered_b - uncovered_a)))
    if uncovered_a - uncovered_b:
        notes.append(
            "no longer uncovered (covered, or gone from op_db): " + ", ".join(sorted(uncovered_a - uncovered_b))
        )
    return [
        Difference(
            "coverage",
            "atlas OpInfo coverage",
            "The atlas exercises these of the OpInfo entries that support autograd.",
            shown(a),
            shown(b),
            "; ".join(notes),
        )
    ]


_ABSENT = object()


def _observation_group(name: str) -> str:
    """``atlas:<op>:<what>`` observations are grouped by op; any other rule's form one group."""
    return name.split(":")[1] if name.startswith("atlas:") and name.count(":") >= 2 else ""


def show_observed(value: Any) -> str:
    """One observed value as a line of the diff."""
    if value is _ABSENT:
        return "(not observed)"
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and {"type", "template"} <= value.keys():
        phase = f" {value['phase']}" if value.get("phase") else ""
        return f"{value['type']}{phase}: {value['template']}"
    return json.dumps(value, sort_keys=True)


#: The longest observed value a diff line shows; the reports hold the whole value.
SHOWN_CHARACTERS = 240


def _shown(value: Any) -> str:
    text = show_observed(value)
    return text if len(text) <= SHOWN_CHARACTERS else text[: SHOWN_CHARACTERS - 1] + "…"


def _changed_items(name: str, before: Any, after: Any) -> list[tuple[str, Any, Any]]:
    """What changed in one observation: for a mapping (an atlas sweep's ops, an edge's orders), only the
    entries that differ, each named ``observation › entry``, so a release engineer reads the change."""
    plain = isinstance(before, dict) and isinstance(after, dict)
    if plain and not ({"type", "template"} <= before.keys() or {"type", "template"} <= after.keys()):
        return [
            (f"{name} › {key}", before.get(key, _ABSENT), after.get(key, _ABSENT))
            for key in sorted(before.keys() | after.keys())
            if before.get(key, _ABSENT) != after.get(key, _ABSENT)
        ]
    return [(name, before, after)]


def _observation_differences(a: dict[str, Any], b: dict[str, Any], low: tuple, high: tuple) -> list[Difference]:
    """What a rule that held on both sides observed differently on its canonical examples."""
    seen_a, seen_b = a.get("observed") or {}, b.get("observed") or {}
    changed = [k for k in sorted(seen_a.keys() | seen_b.keys()) if seen_a.get(k, _ABSENT) != seen_b.get(k, _ABSENT)]
    if not changed:
        return []
    change = _explaining_change(b, low, high) or _explaining_change(a, low, high)
    if change is not None:
        kind = "history"
        note = f"expected history: {change['what']} (changed in {change['version']})"
        branches = (a.get("history_branch"), b.get("history_branch"))
        if all(branches) and branches[0] != branches[1]:
            note += f"; history branch {branches[0]} → {branches[1]}"
    else:
        kind, note = "observed", "no recorded change of this rule lies between the two releases"
    groups: dict[str, list[str]] = {}
    for name in changed:
        groups.setdefault(_observation_group(name), []).append(name)
    differences = []
    for group, names in groups.items():
        items = [item for n in names for item in _changed_items(n, seen_a.get(n, _ABSENT), seen_b.get(n, _ABSENT))]
        differences.append(
            Difference(
                kind,
                a["id"],
                b["statement"],
                "\n".join(f"{label}: {_shown(x)}" for label, x, _ in items),
                "\n".join(f"{label}: {_shown(y)}" for label, _, y in items),
                note,
                group,
            )
        )
    return differences


def _benchmarks(
    before: dict[str, Any], after: dict[str, Any], summaries: tuple[dict | None, dict | None] | None = None
) -> list[Difference]:
    """Benchmarks that :func:`specs.bench.compare` flags between the two releases' summaries."""
    import specs.bench as bench

    old, new = summaries or (None, None)
    if not old or not new:
        return []
    show = {"time": lambda v: f"median {v * 1e3:.4g} ms", "instructions": lambda v: f"{v:,.0f} instructions per call"}
    found = []
    findings = bench.compare(old, new)
    counted = {f.name for f in findings if f.metric == "instructions"}
    moved = {
        "time": lambda f: (
            "time moved, and so did its instruction count"
            if f.name in counted
            else "time moved; no instruction counts to confirm it"
        ),
        "instructions": lambda f: "instruction count moved (independent of machine load)",
    }
    for f in findings:
        if not f.flagged:
            continue
        rule = (old["benchmarks"].get(f.name) or new["benchmarks"].get(f.name) or {}).get("rule", "")
        if f.metric == "memory":
            found.append(
                Difference(
                    "benchmark",
                    f.name,
                    rule,
                    f"{f.old:,} bytes",
                    f"{f.new:,} bytes",
                    f"{f.note.split(':')[0]}: saved bytes are exact",
                )
            )
        else:
            found.append(
                Difference(
                    "benchmark",
                    f.name,
                    rule,
                    show[f.metric](f.old),
                    show[f.metric](f.new),
                    f"{moved[f.metric](f)}: {f.metric} {f.change:+.0%}, beyond the "
                    f"±{f.threshold:.0%} that repeated runs of one release show",
                )
            )
    return found


def benchmark_summaries(
    before: dict[str, Any], after: dict[str, Any], committed_only: bool = False
) -> tuple[dict | None, dict | None]:
    """The benchmark summaries of the two reports' releases, None for a release without one."""
    import specs.bench as bench

    return (
        bench.find(before["environment"]["torch"], committed_only),
        bench.find(after["environment"]["torch"], committed_only),
    )


def _title(before: dict[str, Any], after: dict[str, Any]) -> str:
    return f"torch {before['environment']['torch']} → torch {after['environment']['torch']}"


def warnings_for(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What makes the two reports unlike each other, one line each; shown before any difference."""
    notes = []
    env_a, env_b = before["environment"], after["environment"]
    if env_a.get("profile") != env_b.get("profile"):
        notes.append(
            f"the runs used different hypothesis profiles ({env_a.get('profile')} "
            f"and {env_b.get('profile')}): example counts are not comparable"
        )
    budgets = env_a.get("max_examples"), env_b.get("max_examples")
    if None not in budgets and budgets[0] != budgets[1]:
        notes.append(
            f"the runs had different example budgets ({budgets[0]} and {budgets[1]} a rule): "
            "a rule that held on fewer examples was checked less"
        )
    for name, data in (("first", before), ("second", after)):
        if not data.get("complete", True):
            notes.append(
                f"the {name} report is from a partial run ({len(data['rules'])} of "
                f"{data.get('registered_rules', '?')} rules): missing rules show as appeared/disappeared"
            )
        if not report.has_observations(data):
            notes.append(
                f"the {name} report has schema {data.get('schema')}, without observations: "
                "only outcomes and messages are compared"
            )
    return notes


def render_text(before, after, differences: list[Difference], baseline: str = "") -> str:
    lines = [f"autograd-spec diff: {_title(before, after)}"]
    lines += [f"baseline: {baseline}"] if baseline else []
    lines += [f"warning: {note}" for note in warnings_for(before, after)]
    if not differences:
        lines.append("no differences")
    for kind, heading in KINDS.items():
        group = [d for d in differences if d.kind == kind]
        if not group:
            continue
        lines.append(f"\n{heading} ({len(group)})")
        for d in group:
            lines.append(f"  {d.title}: {d.statement}")
            lines.append(f"    before: {d.before}".replace("\n", "\n            "))
            lines.append(f"    after:  {d.after}".replace("\n", "\n            "))
            if d.note:
                lines.append(f"    note:   {d.note}")
    return "\n".join(lines) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


def render_markdown(before, after, differences: list[Difference], baseline: str = "") -> str:
    lines = [f"# {_title(before, after)}", ""]
    lines += [f"Baseline: {baseline}", ""] if baseline else []
    lines += [f"> warning: {note}" for note in warnings_for(before, after)]
    lines.append(f"{len(differences)} differences." if differences else "No differences.")
    for kind, heading in KINDS.items():
        group = [d for d in differences if d.kind == kind]
        if not group:
            continue
        lines += ["", f"## {heading} ({len(group)})", "", "| Rule | Before | After | Note |", "|---|---|---|---|"]
        for d in group:
            lines.append(
                f"| `{d.title}`<br>{_md_cell(d.statement)} | {_md_cell(d.before)} | "
                f"{_md_cell(d.after)} | {_md_cell(d.note)} |"
            )
    return "\n".join(lines) + "\n"


def render_html(before, after, differences: list[Difference], baseline: str = "") -> str:
    e = html.escape
    parts = [
        f"<!doctype html><html lang='en'><meta charset='utf-8'><title>{e(_title(before, after))}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem}"
        "table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.4rem;"
        "vertical-align:top;text-align:left}pre{white-space:pre-wrap;margin:0}</style>",
        f"<h1>{e(_title(before, after))}</h1>",
    ]
    parts += [f"<p><strong>baseline:</strong> {e(baseline)}</p>"] if baseline else []
    parts += [f"<p><strong>warning:</strong> {e(note)}</p>" for note in warnings_for(before, after)]
    parts.append(f"<p>{len(differences)} differences.</p>" if differences else "<p>No differences.</p>")
    for kind, heading in KINDS.items():
        group = [d for d in differences if d.kind == kind]
        if not group:
            continue
        parts.append(
            f"<h2>{e(heading)} ({len(group)})</h2><table><tr><th>Rule</th><th>Before</th>"
            "<th>After</th><th>Note</th></tr>"
        )
        for d in group:
            parts.append(
                f"<tr><td><code>{e(d.title)}</code><br>{e(d.statement)}</td><td><pre>{e(d.before)}</pre>"
                f"</td><td><pre>{e(d.after)}</pre></td><td>{e(d.note)}</td></tr>"
            )
        parts.append("</table>")
    return "\n".join(parts) + "\n</html>\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m specs.reporting.diff", description=__doc__.split("\n\n")[0])
    parser.add_argument("before", help="the baseline report (JSON)")
    parser.add_argument("after", help="the report to compare with it (JSON)")
    parser.add_argument("--markdown", type=Path, help="also write the diff as Markdown here")
    parser.add_argument("--html", type=Path, help="also write the diff as HTML here")
    parser.add_argument("--baseline-source", default="", help="where the baseline report comes from, for the reader")
    args = parser.parse_args(argv)
    try:
        before, after = report.load(args.before), report.load(args.after)
        differences = compare(before, after, benchmark_summaries(before, after))
    except (report.ReportError, versions.UnknownVersion, KeyError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(render_text(before, after, differences, args.baseline_source))
    for path, render in ((args.markdown, render_markdown), (args.html, render_html)):
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(before, after, differences, args.baseline_source))
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
