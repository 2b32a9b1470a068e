"""The coverage map: what PyTorch's references establish, theme by theme, and which rule states it.

The data is ``specs/coverage-map.toml``; :func:`load` reads and validates it against the
registry, :func:`summary` computes the covered fraction, and :func:`write` renders the docs'
"Coverage" page (``docs/generated/coverage.rst``)::

    python -m specs.reporting.coverage          # print the fractions
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

import tomllib

from specs.engine import registry

MAP_FILE = Path(__file__).resolve().parents[1] / "coverage-map.toml"
STATUSES = ("covered", "missing")
#: what a partly stated behaviour counts for in the covered fraction
PARTIAL_WEIGHT = 0.5


class CoverageMapError(ValueError):
    """The coverage map names a rule that does not exist, or is malformed."""


@dataclass(frozen=True)
class Behaviour:
    theme: str
    what: str
    status: str
    references: tuple[str, ...]
    rules: tuple[str, ...]
    why: str = ""
    #: the rules named state only part of the behaviour (``why`` says which part is missing)
    partial: bool = False
    #: "missing" or "partial": how the behaviour stood at the coverage study, where that differs
    before: str = ""
    extra: bool = False
    #: the registered rule IDs its ``rules`` name, ``family.*`` expanded
    rule_ids: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        """ "covered", "partial" or "missing"."""
        return "partial" if self.partial else self.status


@dataclass
class Summary:
    """The behaviours counted one per row: covered 1, partly covered 1/2, missing 0."""

    total: int = 0
    covered: int = 0
    partial: int = 0
    missing: int = 0
    by_theme: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def score(self) -> float:
        return self.covered + PARTIAL_WEIGHT * self.partial

    @property
    def fraction(self) -> float:
        return self.score / self.total if self.total else 0.0

    def line(self, label: str) -> str:
        return (
            f"{label}: {self.total} behaviours, {self.covered} covered, {self.partial} partly, "
            f"{self.missing} missing: ({self.covered} + {PARTIAL_WEIGHT:g} x {self.partial}) / {self.total} "
            f"= {100 * self.fraction:.0f} %"
        )


def _expand(name: str, known: list[str]) -> list[str]:
    if name.endswith(".*"):
        return sorted(fnmatch.filter(known, name))
    return [name] if name in known else []


def load(path: Path = MAP_FILE, known: list[str] | None = None) -> list[Behaviour]:
    """Read the map; raise :class:`CoverageMapError` for an unknown rule, status or field.

    ``known``: the registered rule IDs (default: the registry's).
    """
    known = list(known) if known is not None else [r.id for r in registry.rules()]
    data = tomllib.loads(path.read_text())
    behaviours: list[Behaviour] = []
    for theme in data.get("theme", []):
        for entry in theme.get("behaviour", []):
            where = f"{path.name}: {theme['name']!r} > {entry.get('what', '?')!r}"
            status = entry.get("status", "")
            if status not in STATUSES:
                raise CoverageMapError(f"{where}: status {status!r} is not one of {STATUSES}")
            partial = entry.get("partial", False)
            if partial not in (True, False) or (partial and status != "covered"):
                raise CoverageMapError(f"{where}: partial = true belongs to a covered behaviour")
            before = entry.get("before", "")
            if before not in ("", "missing", "partial"):
                raise CoverageMapError(f"{where}: before {before!r} is not 'missing' or 'partial'")
            rules = tuple(entry.get("rules", ()))
            ids: list[str] = []
            for name in rules:
                found = _expand(name, known)
                if not found:
                    raise CoverageMapError(f"{where}: no registered rule {name!r}")
                ids += found
            if status == "covered" and not rules:
                raise CoverageMapError(f"{where}: a covered behaviour must name the rules that state it")
            if (partial or status == "missing") and not entry.get("why"):
                raise CoverageMapError(f"{where}: a {'partial' if partial else status} behaviour must say why")
            behaviours.append(
                Behaviour(
                    theme=theme["name"],
                    what=entry["what"],
                    status=status,
                    references=tuple(entry.get("references", ())),
                    rules=rules,
                    why=entry.get("why", ""),
                    partial=partial,
                    before=before,
                    extra=bool(theme.get("extra", False)),
                    rule_ids=tuple(dict.fromkeys(ids)),
                )
            )
    return behaviours


def summary(behaviours: list[Behaviour], before: bool = False) -> Summary:
    """The fractions over the study's behaviours (themes marked ``extra`` are left out), one per row.

    ``before``: as things stood at the coverage study (a behaviour's ``before`` status where it has one).
    """
    result = Summary()
    for b in behaviours:
        if b.extra:
            continue
        kind = (b.before or b.kind) if before else b.kind
        result.total += 1
        setattr(result, kind, getattr(result, kind) + 1)
        theme = result.by_theme.setdefault(b.theme, {"total": 0, "covered": 0, "partial": 0})
        theme["total"] += 1
        if kind != "missing":
            theme[kind] += 1
    return result


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("*", r"\*").replace("`", r"\`").replace("|", r"\|").replace("_", r"\_")


def _rules_cell(b: Behaviour) -> str:
    if not b.rules:
        return ""
    return ", ".join(
        f":ref:`{name} <rule-{name.replace('.', '-')}>`" if not name.endswith(".*") else f"``{name}``"
        for name in b.rules
    )


def render(behaviours: list[Behaviour]) -> str:
    now, then = summary(behaviours), summary(behaviours, before=True)
    lead = (
        "What PyTorch's own references (``test/test_autograd.py``, ``test/autograd/test_functional.py``, "
        "the *Autograd mechanics* note, the ``torch.autograd`` API page, ``torch/utils/checkpoint.py``) "
        "establish about autograd, theme by theme, and the rule that states each behaviour: or why none "
        "does yet. Each row is one behaviour: stated in full it counts 1, in part 1/2 (the row says "
        "what is left out), missing 0. Themes marked as beyond the study are shown but not counted. "
        "Generated from ``specs/coverage-map.toml``.\n\n"
    )
    out = [
        ".. _coverage:\n\n",
        "Coverage\n========\n\n",
        lead,
        f"- {_escape(now.line('Now'))}\n",
        f"- {_escape(then.line('At the coverage study (177 rules)'))}\n\n",
    ]
    for theme in dict.fromkeys(b.theme for b in behaviours):
        rows = [b for b in behaviours if b.theme == theme]
        counts = now.by_theme.get(theme)
        out.append(f"{theme}\n{'-' * len(theme)}\n\n")
        if counts:
            out.append(f"{counts['total']} behaviours: {counts['covered']} covered, {counts['partial']} partly.\n\n")
        else:
            out.append("Beyond the behaviours the study enumerates; not counted in the fractions above.\n\n")
        out.append(
            ".. list-table::\n   :header-rows: 1\n   :widths: 40 15 25 20\n\n"
            "   * - Behaviour\n     - Status\n     - Rules\n     - Established by\n"
        )
        for b in rows:
            status = b.kind + (f" (was {b.before})" if b.before else "")
            what = _escape(b.what) + (f" — {_escape(b.why)}" if b.why else "")
            refs = "; ".join(_escape(r) for r in b.references)
            out.append(f"   * - {what}\n     - {_escape(status)}\n     - {_rules_cell(b)}\n     - {refs}\n")
        out.append("\n")
    return "".join(out)


def write(root: Path) -> Path:
    """Render the Coverage page into ``root/docs/generated/coverage.rst``; return its path."""
    target = root / "docs" / "generated" / "coverage.rst"
    target.parent.mkdir(parents=True, exist_ok=True)
    text = render(load(root / "specs" / "coverage-map.toml"))
    if not target.exists() or target.read_text() != text:
        target.write_text(text)
    return target


if __name__ == "__main__":
    entries = load()
    print(summary(entries, before=True).line("at the coverage study"))
    print(summary(entries).line("now"))
    gaps = [b for b in entries if b.before or b.kind != "covered"]
    print(summary(gaps).line("now, of the behaviours the study found missing or partly covered"))
