"""Renders the registry as the docs' rule catalogue (reStructuredText)."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

from specs.engine import registry

HEADER = """\
.. _catalogue:

Rule catalogue
==============

Every rule of the specification, generated from the registry that the tests run. A rule's
statement is its check's docstring; *since* is the oldest torch release it applies to; *shown in*
links to the page that explains and runs it; *source* is the check itself.

"""


def _rst_escape(text: str) -> str:
    text = text.replace("\\", "\\\\").replace("*", r"\*").replace("`", r"\`").replace("|", r"\|")
    return text.replace("_", r"\_")  # `relu_,` would otherwise be read as a link target


def anchor(rule: registry.Rule) -> str:
    """The catalogue entry's label (and HTML id) of ``rule``."""
    return "rule-" + rule.id.replace(".", "-")


def render(root: Path) -> str:
    rules = registry.rules()
    families = registry.FAMILIES
    out = [HEADER]
    out.append(f"{len(rules)} rules in {len({r.family for r in rules})} families.\n\n")
    out.append(".. list-table::\n   :header-rows: 1\n   :widths: 30 55 15\n\n")
    out.append("   * - Rule\n     - Statement\n     - Since\n")
    for rule in rules:
        out.append(
            f"   * - :ref:`{rule.id} <{anchor(rule)}>`\n     - {_rst_escape(rule.statement)}\n     - {rule.since}\n"
        )
    out.append("\n")
    for name in sorted({r.family for r in rules}):
        family = families.get(name)
        title = family.title if family else name
        out.append(f"{title}\n{'-' * len(title)}\n\n")
        if family:
            out.append(f"{_rst_escape(family.summary)}\n\n")
        for rule in (r for r in rules if r.family == name):
            out.append(_render_rule(rule, root))
    return "".join(out)


def _render_rule(rule: registry.Rule, root: Path) -> str:
    lines, start = inspect.getsourcelines(rule.function)
    path = Path(inspect.getsourcefile(rule.function)).resolve()
    rel = os.path.relpath(path, root / "docs" / "generated")
    block = [
        f".. _{anchor(rule)}:\n\n",
        f"``{rule.id}``\n{'^' * (len(rule.id) + 4)}\n\n",
        f"{_rst_escape(rule.statement)}\n\n",
        f"- Since: torch {rule.since}\n",
        f"- Seed tutorial section: {rule.section}\n",
        f"- Shown in: :ref:`{rule.docs}`\n",
        f"- Checked: {'on generated cases (' + ', '.join(rule.given) + ')' if rule.given else 'as an example'}\n",
    ]
    for change in rule.history:
        block.append(f"- Changed in {change.version}: {_rst_escape(change.what)}\n")
    for reference in rule.references:
        block.append(f"- Established by: {_rst_escape(reference)}\n")
    for contract in rule.contracts:
        block.append(f"- Contract: ``{contract.describe()}``\n")
        if getattr(contract, "wording", ""):
            block.append(f"  (wording: {_rst_escape(contract.wording)})\n")
    block.append(f"\nSource (``{path.relative_to(root)}``, line {start}):\n\n")
    block.append(f".. literalinclude:: {rel}\n   :language: python\n   :lines: {start}-{start + len(lines) - 1}\n\n")
    return "".join(block)


def write(root: Path) -> Path:
    target = root / "docs" / "generated" / "catalogue.rst"
    target.parent.mkdir(parents=True, exist_ok=True)
    text = render(root)
    if not target.exists() or target.read_text() != text:
        target.write_text(text)
    return target
