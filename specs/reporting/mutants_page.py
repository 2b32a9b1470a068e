"""The docs page "What the spec catches": the mutation table committed as ``reports/mutants.json``."""

from __future__ import annotations

import json
from pathlib import Path

from specs.reporting.catalogue import _rst_escape as _escape

TITLE = "What the spec catches"


def render(data: dict | None) -> str:
    out = [f".. _what-the-spec-catches:\n\n{TITLE}\n{'=' * len(TITLE)}\n\n"]
    if not data:
        return out[0] + "No mutation run has been committed yet (``reports/mutants.json``).\n"
    out.append(
        f"Each row is a *mutant*: one documented behaviour of torch {data['torch']} broken from Python "
        "(a monkeypatched function, method or context manager), in a fresh process, before the rule "
        f"families are imported. The rules of the families it concerns then ran on {data['examples_per_rule']} "
        "generated examples each; the rules that failed under the mutant, and hold without it, *caught* "
        f"it. {data['killed']} of {data['total']} mutants were caught ({data['kill_rate']:.0%}); the run took "
        f"{data['wall_seconds']:.0f} s, {data['jobs']} processes at a time. Regenerate with "
        "``nox -s mutants``.\n\n"
    )
    if data.get("control_failures"):
        out.append(
            "Rules that failed without any mutant (they catch nothing here): "
            + ", ".join(f"``{r}``" for r in data["control_failures"])
            + ".\n\n"
        )
    out.append(
        ".. list-table:: Mutants and the rules that caught them\n   :header-rows: 1\n   :widths: 30 35 35\n\n"
        "   * - Mutant\n     - What it breaks\n     - Caught by\n"
    )
    for row in data["mutants"]:
        caught = row["caught_by"]
        if caught:
            cell = ", ".join(f"``{r}``" for r in caught)
        else:
            cell = "**not caught**: " + _escape(row.get("survives") or row.get("error") or "no reason recorded")
        budget = row.get("examples", data["examples_per_rule"])
        more = f" ({budget} examples a rule)" if budget != data["examples_per_rule"] else ""
        out.append(f"   * - ``{row['mutant']}``{more}\n     - {_escape(row['what'])}\n     - {cell}\n")
    return "".join(out)


def write(root: Path) -> Path:
    """Render ``reports/mutants.json`` into ``docs/generated/mutants.rst``; return the page's path."""
    source = root / "reports" / "mutants.json"
    data = json.loads(source.read_text()) if source.is_file() else None
    page = root / "docs" / "generated" / "mutants.rst"
    page.parent.mkdir(parents=True, exist_ok=True)
    text = render(data)
    if not page.exists() or page.read_text() != text:  # unchanged pages stay untouched for Sphinx
        page.write_text(text)
    return page
