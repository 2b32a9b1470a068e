"""The JSON report of a run: what torch, where, which profile, and per rule what happened."""

from __future__ import annotations

import json
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Version 2 added each rule's ``observed`` values and ``history_branch``.
SCHEMA = "autograd-spec/report/2"
#: Schemas :func:`load` reads; a version-1 report reads as one that observed nothing.
READABLE_SCHEMAS = ("autograd-spec/report/1", SCHEMA)
OUTCOMES = ("passed", "failed", "known-failure", "not-applicable")


class ReportError(ValueError):
    """A report file that is missing, unreadable, or not an autograd-spec report."""


@dataclass
class RuleRecord:
    id: str
    family: str
    statement: str
    since: str
    outcome: str
    examples: int = 0
    seconds: float = 0.0
    reason: str = ""
    failure: str = ""
    known: str = ""
    observations: list[str] = field(default_factory=list)
    history: list[dict[str, str]] = field(default_factory=list)
    #: what the rule observed on its canonical examples: values given to ``record()``, and the
    #: errors (``raises <Type> <phase>``) and warnings (``warns <Category>``) its contracts saw, as
    #: ``{"type", "template", "phase"}``; the release diff compares these
    observed: dict[str, Any] = field(default_factory=dict)
    #: which entry of ``history`` applies to the torch of this run (:func:`history_branch`)
    history_branch: str = ""
    #: generated examples that failed by reaching a listed torch bug of another rule, set aside and
    #: counted per bug id (:mod:`specs.engine.known_bugs`)
    known_bugs: dict[str, int] = field(default_factory=dict)


def rule_record(rule: Any, outcome: str, torch_version: str, result: Any = None, **details: Any) -> RuleRecord:
    """The record of one rule's run: ``rule`` a registry Rule, ``result`` its RunResult when it ran.

    Fills ``history`` and ``history_branch`` from the rule, and ``observed`` from ``result.observed``.
    """
    history = [{"version": c.version, "what": c.what} for c in rule.history]
    if result is not None:
        details.setdefault("observed", dict(result.observed))
    return RuleRecord(
        id=rule.id,
        family=rule.family,
        statement=rule.statement,
        since=rule.since,
        outcome=outcome,
        history=history,
        history_branch=history_branch(history, torch_version),
        **details,
    )


def history_branch(history: list[dict[str, str]] | tuple, torch_version: str) -> str:
    """Which recorded change applies on ``torch_version``: the newest one at or before it, as
    ``"since 2.0"``, or ``"before 2.0"`` (its oldest) when none has happened yet; ``""`` without history.

    ``history`` holds :class:`~specs.engine.registry.Change` objects or their dicts.
    """
    from specs.engine import versions

    installed = versions.parse(torch_version)
    changes = sorted((versions.parse(_field(c, "version")), _field(c, "version")) for c in history)
    if not changes:
        return ""
    applied = [text for parsed, text in changes if parsed <= installed]
    return f"since {applied[-1]}" if applied else f"before {changes[0][1]}"


def _field(change: Any, name: str) -> str:
    return change[name] if isinstance(change, dict) else getattr(change, name)


def environment(profile: str) -> dict[str, Any]:
    import hypothesis
    import torch

    return {
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "hypothesis": hypothesis.__version__,
        "profile": profile,
        "cuda": bool(torch.cuda.is_available()),
        "max_examples": _max_examples(profile),
    }


def _max_examples(profile: str) -> int | None:
    """The example budget of a rule under ``profile`` (None when the profile is not registered)."""
    import hypothesis

    try:
        return hypothesis.settings.get_profile(profile).max_examples
    except hypothesis.errors.InvalidArgument:
        return None


def build(
    records: list[RuleRecord],
    profile: str,
    registered: int,
    atlas_coverage: dict[str, Any] | None = None,
    measured_environment: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The report; ``atlas_coverage`` (optional): which OpInfo autograd ops the atlas exercised on this torch;
    ``measured_environment``: :func:`environment` as a process that ran the rules saw it (else this one's)."""
    records = sorted(records, key=lambda r: r.id)
    extra = {} if atlas_coverage is None else {"atlas_coverage": atlas_coverage}
    return {
        "schema": SCHEMA,
        "environment": measured_environment or environment(profile),
        "complete": len(records) == registered,
        "registered_rules": registered,
        "summary": summary(records),
        "rules": [record.__dict__ for record in records],
        **extra,
    }


def summary(records: list[RuleRecord]) -> dict[str, dict[str, int]]:
    families: dict[str, dict[str, int]] = {}
    for record in records:
        counts = families.setdefault(record.family, {o: 0 for o in OUTCOMES} | {"examples": 0, "known-bug examples": 0})
        counts[record.outcome] += 1
        counts["examples"] += record.examples
        counts["known-bug examples"] += sum(record.known_bugs.values())
    return dict(sorted(families.items()))


def write(report: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)  # never leave a half-written report behind
    return path


def load(path: str | Path) -> dict[str, Any]:
    """Read and validate a report; raise :class:`ReportError` saying what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise ReportError(f"report {path} does not exist")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"report {path} is not readable JSON: {exc}") from exc
    schema = data.get("schema") if isinstance(data, dict) else None
    if isinstance(schema, str) and schema.startswith("autograd-spec/report/") and schema not in READABLE_SCHEMAS:
        raise ReportError(
            f"report {path} has schema {schema!r}, which this autograd-spec does not read "
            f"(it reads {', '.join(READABLE_SCHEMAS)}): update autograd-spec, or regenerate the report"
        )
    if schema not in READABLE_SCHEMAS:
        raise ReportError(
            f"{path} is not an autograd-spec report (expected schema {SCHEMA!r}, "
            f"found {schema if isinstance(data, dict) else type(data).__name__!r})"
        )
    for key in ("environment", "rules"):
        if key not in data:
            raise ReportError(f"report {path} lacks its {key!r} section")
    torch_version = data["environment"].get("torch") if isinstance(data["environment"], dict) else None
    if not isinstance(torch_version, str):
        raise ReportError(f"report {path} does not say which torch it ran on (environment.torch)")
    from specs.engine import versions

    try:
        versions.parse(torch_version)
    except versions.UnknownVersion as exc:
        raise ReportError(f"report {path}: {exc}") from exc
    if not isinstance(data["rules"], list):
        raise ReportError(f"report {path}: 'rules' is not a list")
    for i, rule in enumerate(data["rules"]):
        if not isinstance(rule, dict) or rule.get("outcome") not in OUTCOMES or "id" not in rule:
            raise ReportError(f"report {path}: rule entry {i} is malformed: {rule!r:.200}")
        if not isinstance(rule.setdefault("observed", {}), dict):
            raise ReportError(f"report {path}: rule {rule['id']}: 'observed' is not a mapping")
        rule.setdefault("history_branch", "")
    return data


def has_observations(data: dict[str, Any]) -> bool:
    """Whether a loaded report's schema records observations (version 1 did not)."""
    return data.get("schema") != READABLE_SCHEMAS[0]


def format_summary(families: dict[str, dict[str, int]]) -> list[str]:
    lines = [f"{'family':<16}{'passed':>8}{'failed':>8}{'known':>7}{'n/a':>6}{'examples':>10}{'known-bug ex.':>15}"]
    for name, c in families.items():
        lines.append(
            f"{name:<16}{c['passed']:>8}{c['failed']:>8}{c['known-failure']:>7}"
            f"{c['not-applicable']:>6}{c['examples']:>10}{c.get('known-bug examples', 0):>15}"
        )
    return lines
