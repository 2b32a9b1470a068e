"""What the gallery uses to show a rule: run the registered check and say what it checked.

``law("family.rule-id")`` is the same check the test suite runs, with a small, derandomized
number of generated examples so the docs build is quick and reproducible.  It returns a
:class:`Law`: sphinx-gallery shows it (as the last expression of a cell) through its HTML form,
the rule ID linked to its catalogue entry, its statement and what the check found; a terminal
shows a one-line summary.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import hypothesis

from specs.engine import registry, versions
from specs.reporting.catalogue import anchor

DOCS_SETTINGS = hypothesis.settings(
    max_examples=10,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=list(hypothesis.HealthCheck),
)

#: The catalogue page, relative to a gallery page (``auto_gallery/plot_*.html``).
CATALOGUE = "../generated/catalogue.html"


@dataclass(frozen=True)
class Law:
    """A rule as checked on this page: its verdict and, when it held, the largest generated input."""

    rule: registry.Rule
    #: ``holds``, ``known-failure`` or ``not-applicable``
    verdict: str
    #: what the verdict rests on: the number of cases, the known failure's reason, or why not applicable
    detail: str
    result: registry.RunResult | None = None
    #: the largest generated program, as code, when the rule runs on programs
    example: str | None = None

    @property
    def summary(self) -> str:
        torch = versions.installed_text()
        if self.verdict == "holds":
            return f"holds on torch {torch} for {self.detail}"
        if self.verdict == "known-failure":
            return f"known failure on torch {torch}: {self.detail}"
        return f"not applicable on torch {torch}: {self.detail}"

    def __repr__(self) -> str:
        return f"{self.rule.id}: {self.summary}"

    def _repr_html_(self) -> str:
        e = html.escape
        link = (
            f'<a class="reference internal" href="{CATALOGUE}#{anchor(self.rule)}"><code>{e(self.rule.id)}</code></a>'
        )
        parts = [
            f'<div class="autograd-law autograd-law-{self.verdict}">',
            f'<p class="autograd-law-head">Rule {link} <span class="autograd-law-verdict">{e(self.summary)}</span></p>',
            f'<p class="autograd-law-statement">{e(self.rule.statement)}</p>',
        ]
        if self.example:
            parts.append(
                f"<details><summary>The largest generated program</summary><pre>{e(self.example)}</pre></details>"
            )
        parts.append("</div>")
        return "".join(parts)


def law(rule_id: str, show_example: bool = True) -> Law:
    """Check rule ``rule_id`` now; a failure that is not a listed known failure raises."""
    rule = registry.get(rule_id)
    reason = rule.not_applicable()
    if reason:
        return Law(rule, "not-applicable", reason)
    known = rule.known_failure()
    try:
        result = rule.run(DOCS_SETTINGS)
    except registry.RuleFailed:
        if not known:
            raise
        return Law(rule, "known-failure", known)
    cases = f"{result.examples} generated cases" if rule.given else "its example"
    if known:
        cases += f" (listed as a known failure for this torch, but it held: {known})"
    example = None
    if show_example and result.sample:
        example = next((value.source().rstrip() for value in result.sample.values() if hasattr(value, "repro")), None)
    return Law(rule, "holds", cases, result, example)
