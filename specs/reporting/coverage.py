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
STATUSES = ("covered", "partial", "missing")
PLANNED = "planned: "


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
    before: str = ""
    extra: bool = False
    #: the registered rule IDs its ``rules`` name, ``family.*`` expanded
    rule_ids: tuple[str, ...] = ()
    #: how many behaviours it stands for: one per rule it is the first to name that cites a PyTorch
    #: reference (a rule without one states something the references do not), at least one
    weight: int = 1

    @property
    def planned(self) -> bool:
        return self.status.startswith(PLANNED)


@dataclass
class Summary:
    total: int = 0
    covered: int = 0
    partial: int = 0
    planned: int = 0
    missing: int = 0
    #: the same counted row by row (a family row as one behaviour)
    rows: int = 0
    rows_covered: int = 0
    by_theme: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        return self.covered / self.total if self.total else 0.0

    def line(self, label: str) -> str:
        return (f"{label}: {self.covered} of {self.total} behaviours covered ({100 * self.fraction:.0f} %), "
                f"{self.partial} partly, {self.planned} planned on other branches, {self.missing} missing; "
                f"row by row {self.rows_covered} of {self.rows}")


def _expand(name: str, known: list[str]) -> list[str]:
    if name.endswith(".*"):
        return sorted(fnmatch.filter(known, name))
    return [name] if name in known else []


def load(path: Path = MAP_FILE, known: dict[str, bool] | None = None) -> list[Behaviour]:
    """Read the map; raise :class:`CoverageMapError` for an unknown rule, status or field.

    ``known``: rule ID -> whether it cites a reference (default: the registry's rules).
    """
    known = known if known is not None else {r.id: bool(r.references) for r in registry.rules()}
    data = tomllib.loads(path.read_text())
    behaviours: list[Behaviour] = []
    counted: set[str] = set()
    for theme in data.get("theme", []):
        for entry in theme.get("behaviour", []):
            where = f"{path.name}: {theme['name']!r} > {entry.get('what', '?')!r}"
            status = entry.get("status", "")
            if status not in STATUSES and not (status.startswith(PLANNED) and status[len(PLANNED):].strip()):
                raise CoverageMapError(f"{where}: status {status!r} is not one of {STATUSES} or 'planned: <family>'")
            rules = tuple(entry.get("rules", ()))
            ids: list[str] = []
            for name in rules:
                found = _expand(name, list(known))
                if not found:
                    raise CoverageMapError(f"{where}: no registered rule {name!r}")
                ids += found
            if status in ("covered", "partial") and not rules:
                raise CoverageMapError(f"{where}: a {status} behaviour must name the rules that state it")
            if status in ("partial", "missing") and not entry.get("why"):
                raise CoverageMapError(f"{where}: a {status} behaviour must say why")
            new = [i for i in dict.fromkeys(ids) if i not in counted]
            counted.update(new)
            behaviours.append(Behaviour(
                theme=theme["name"], what=entry["what"], status=status,
                references=tuple(entry.get("references", ())), rules=rules, why=entry.get("why", ""),
                before=entry.get("before", ""), extra=bool(theme.get("extra", False)),
                rule_ids=tuple(dict.fromkeys(ids)), weight=max(1, sum(known[i] for i in new))))
    return behaviours


def summary(behaviours: list[Behaviour], before: bool = False) -> Summary:
    """The fractions over the study's behaviours (themes marked ``extra`` are left out).

    ``before``: as things stood before the api-c branch (a behaviour's ``before`` status where
    it has one); planned behaviours count as not covered either way.
    """
    result = Summary()
    for b in behaviours:
        if b.extra:
            continue
        status = (b.before or b.status) if before else b.status
        kind = "planned" if status.startswith(PLANNED) else status
        result.total += b.weight
        result.rows += 1
        result.rows_covered += kind == "covered"
        setattr(result, kind, getattr(result, kind) + b.weight)
        theme = result.by_theme.setdefault(b.theme, {"total": 0, "covered": 0})
        theme["total"] += b.weight
        theme["covered"] += b.weight if kind == "covered" else 0
    return result


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("*", r"\*").replace("`", r"\`").replace("|", r"\|").replace("_", r"\_")


def _rules_cell(b: Behaviour) -> str:
    if not b.rules:
        return ""
    return ", ".join(f":ref:`{name} <rule-{name.replace('.', '-')}>`" if not name.endswith(".*") else f"``{name}``"
                     for name in b.rules)


def render(behaviours: list[Behaviour]) -> str:
    now, then = summary(behaviours), summary(behaviours, before=True)
    lead = ("What PyTorch's own references (``test/test_autograd.py``, ``test/autograd/test_functional.py``, "
            "the *Autograd mechanics* note, the ``torch.autograd`` API page, ``torch/utils/checkpoint.py``) "
            "establish about autograd, theme by theme, and the rule that states each behaviour: or why none "
            "does yet. A row naming several rules stands for one behaviour per rule in it that cites a PyTorch "
            "reference (the catalogue lists each rule's references). Generated from "
            "``specs/coverage-map.toml``.\n\n")
    out = [".. _coverage:\n\n", "Coverage\n========\n\n", lead,
           f"- {_escape(now.line('Now'))}\n",
           f"- {_escape(then.line('Before the api-c branch'))}\n\n"]
    for theme in dict.fromkeys(b.theme for b in behaviours):
        rows = [b for b in behaviours if b.theme == theme]
        counts = now.by_theme.get(theme)
        out.append(f"{theme}\n{'-' * len(theme)}\n\n")
        if counts:
            out.append(f"{counts['covered']} of {counts['total']} behaviours covered.\n\n")
        else:
            out.append("Asked for by issue 16 beyond the study; not counted in the fractions above.\n\n")
        out.append(".. list-table::\n   :header-rows: 1\n   :widths: 40 15 25 20\n\n"
                   "   * - Behaviour\n     - Status\n     - Rules\n     - Established by\n")
        for b in rows:
            status = b.status + (f" (was {b.before})" if b.before else "")
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
    print(summary(entries, before=True).line("before the api-c branch"))
    print(summary(entries).line("now"))
