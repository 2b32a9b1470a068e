"""The one registry of rules: the source of the tests, the docs' catalogue and the JSON report.

A family module (``specs/<family>.py``) declares ``FAMILY = Family(...)`` and registers each rule
with :func:`rule`::

    @rule("accumulation.sums-across-backward", section=GRADIENT_ACCUMULATION,
          docs="accumulation-sums", given=dict(program=programs()))
    def sums_across_backward(program):
        \"\"\"Calling backward k times without zeroing leaves k times the one-pass gradient in .grad.\"\"\"
        ...

The docstring is the rule's one-sentence statement.  ``given`` holds hypothesis strategies; the
rule function is run under :func:`hypothesis.given` with the settings in force when it runs.
"""
from __future__ import annotations

import functools
import importlib
import pkgutil
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import hypothesis

from specs.engine import known_bugs, versions
from specs.engine.state import Isolated

#: The sections of the seed tutorial, in its order; every rule belongs to one.
SEED_SECTIONS = (
    "Introduction to Automatic Differentiation",
    "PyTorch Autograd: The Basics",
    "The Computational Graph",
    "Gradient Accumulation",
    "Excluding Tensors from Autograd",
    "Gradients of Non-Scalar Outputs",
    "Higher-Order Derivatives",
    "In-place Operations and Autograd",
    "Custom Autograd Functions",
    "Practical Considerations and Tips",
    "Beyond the Tutorial",
)

#: ``family.kebab-case-name``: lower case words joined by single hyphens, one dot.
ID_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*\.[a-z0-9]+(?:-[a-z0-9]+)*$")


@dataclass(frozen=True)
class Family:
    name: str
    title: str
    summary: str
    #: The gallery script (a file name under ``gallery/``) that documents this family.
    gallery: str


@dataclass(frozen=True)
class Change:
    """A release in which the rule's behaviour or message changed, and what it was before."""

    version: str
    what: str


@dataclass(frozen=True)
class Feature:
    """Something the installed torch must provide for a rule to apply."""

    description: str
    available: Callable[[], bool]


@dataclass
class RunResult:
    examples: int
    seconds: float
    observations: list[str]
    sample: dict[str, Any] | None
    #: values recorded with :func:`record` on the rule's explicit (canonical) examples
    observed: dict[str, Any] = field(default_factory=dict)
    #: examples that failed by reaching a known torch bug (:mod:`specs.engine.known_bugs`), per bug id
    known_bugs: dict[str, int] = field(default_factory=dict)


class RuleFailed(AssertionError):
    def __init__(self, rule: "Rule", message: str, cause: BaseException):
        self.rule, self.cause = rule, cause
        super().__init__(message)


@dataclass
class Rule:
    id: str
    statement: str
    family: str
    section: str
    since: str
    docs: str
    function: Callable[..., None]
    given: dict[str, Any]
    history: tuple[Change, ...] = ()
    contracts: tuple[Any, ...] = ()
    requires: tuple[Feature, ...] = ()
    #: explicit examples (keyword arguments of the check), run first on every release: the
    #: canonical inputs whose :func:`record`-ed observations the release diff compares
    examples: tuple[dict[str, Any], ...] = ()
    #: the PyTorch tests or documentation sections that establish the same behaviour
    references: tuple[str, ...] = ()
    module: str = ""
    source: tuple[str, int] = ("", 0)

    @property
    def kind(self) -> str:
        return "property" if self.given else "example"

    def not_applicable(self) -> str | None:
        """Why this rule does not apply to the installed torch, or None when it does."""
        if versions.installed() < versions.parse(self.since):
            return f"needs torch >= {self.since}; installed is {versions.installed_text()}"
        for feature in self.requires:
            if not feature.available():
                return f"installed torch {versions.installed_text()} lacks {feature.description}"
        return None

    def known_failure(self) -> str | None:
        """The reason this rule is known to fail on the installed torch, if it is."""
        for entry in known_failures():
            if entry.rule == self.id and versions.matches(entry.releases, versions.installed_text()):
                return entry.reason
        return None

    def run(self, settings: hypothesis.settings | None = None) -> RunResult:
        """Check the rule; raise :class:`RuleFailed` with an explanation when it does not hold."""
        observer = _Observer()
        calls = {"n": 0}

        @functools.wraps(self.function)
        def one_example(*args, **kwargs):
            calls["n"] += 1
            if observer.sample is None or _size(kwargs) > _size(observer.sample):
                observer.sample = dict(kwargs)
            observer.canonical = self.is_explicit(kwargs)
            try:
                with Isolated(process_state=False) as guard:
                    self.function(*args, **kwargs)
            except Exception as exc:
                if isinstance(exc, hypothesis.errors.HypothesisException):
                    raise
                with Isolated(process_state=False):
                    bug = known_bugs.reached(kwargs)
                if bug is None or bug.rule == self.id:
                    raise
                # A listed torch bug, not this rule's: count it and let hypothesis look for others.
                observer.known_bugs[bug.id] = observer.known_bugs.get(bug.id, 0) + 1
                hypothesis.reject()
            finally:
                observer.canonical = False
            if guard.leaks:
                from specs.engine.expect import Violation

                raise Violation(
                    "the check left global autograd state changed", "no change", guard.leaks
                )

        test = one_example
        if self.given:
            if settings is not None:
                test = settings(test)
            for example in reversed(self.examples):
                test = hypothesis.example(**example)(test)
            test = hypothesis.given(**self.given)(test)
        started = time.perf_counter()
        _ACTIVE.observer = observer
        try:
            test()
        except Exception as exc:
            if observer.known_bugs:
                exc.add_note(f"examples that reached known torch bugs and were set aside: {observer.known_bugs}")
            raise RuleFailed(self, explain(self, exc), exc) from exc
        finally:
            _ACTIVE.observer = None
        for bug_id, count in sorted(observer.known_bugs.items()):
            observer.seen.append(f"known bug {bug_id} reached by {count} example(s), not counted against "
                                 f"this rule: {known_bugs.KNOWN_BUGS[bug_id].reason}")
        return RunResult(calls["n"], time.perf_counter() - started, observer.seen, observer.sample,
                         observer.values, dict(observer.known_bugs))

    def is_explicit(self, kwargs: dict[str, Any]) -> bool:
        """Whether ``kwargs`` is one of this rule's explicit examples (hypothesis passes them as given)."""
        return any(all(kwargs.get(k) is v for k, v in example.items()) for example in self.examples)


class _Observer:
    def __init__(self) -> None:
        self.seen: list[str] = []
        self.sample: dict[str, Any] | None = None
        self.values: dict[str, Any] = {}
        self.canonical = False
        self.known_bugs: dict[str, int] = {}


_ACTIVE = threading.local()


def observe(text: str) -> None:
    """Record something a rule saw (an error or warning message) for the run's report."""
    observer = getattr(_ACTIVE, "observer", None)
    if observer is not None and text not in observer.seen and len(observer.seen) < 20:
        observer.seen.append(text)


def record(name: str, value: Any) -> None:
    """Record what the rule observed on its canonical (explicit) examples, for the release diff.

    ``value`` must be JSON-serializable (numbers, strings, lists, dicts; round floats yourself).
    Recorded only while an explicit example (``rule(..., examples=...)``) runs, so that the same
    inputs are compared on every release; on generated examples it does nothing.
    """
    observer = getattr(_ACTIVE, "observer", None)
    if observer is not None and observer.canonical:
        observer.values[name] = value


def _size(kwargs: dict[str, Any]) -> int:
    return sum(len(getattr(value, "steps", ())) for value in kwargs.values())


def explain(rule: Rule, exc: BaseException) -> str:
    notes = "\n".join(getattr(exc, "__notes__", []))
    lines = [
        f"Rule {rule.id} does not hold on torch {versions.installed_text()}.",
        f"  statement: {rule.statement}",
        f"  {type(exc).__name__}: {exc}",
    ]
    if notes:
        lines.append("  hypothesis: " + notes.replace("\n", "\n    "))
    lines.append(f'  re-run: python -m pytest "tests/test_rules.py::test_rule[{rule.id}]"')
    return "\n".join(lines)


@dataclass(frozen=True)
class KnownFailure:
    rule: str
    releases: str
    reason: str
    line: int


KNOWN_FAILURES_FILE = Path(__file__).resolve().parents[1] / "known-failures.txt"


@functools.lru_cache(maxsize=None)
def known_failures(path: Path = KNOWN_FAILURES_FILE) -> tuple[KnownFailure, ...]:
    """Parse the known-failures file; a malformed line is an error naming the line."""
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        match = re.fullmatch(r"(\S+)\s+(\S+)\s*:\s*(.+)", text)
        if not match:
            raise RegistryError(f"{path.name}:{number}: expected '<rule-id> <releases> : <reason>', got {text!r}")
        try:
            versions.matches(match.group(2), "1.13.1")
        except versions.UnknownVersion as exc:
            raise RegistryError(f"{path.name}:{number}: {exc}") from None
        entries.append(KnownFailure(match.group(1), match.group(2), match.group(3), number))
    return tuple(entries)


REGISTRY: dict[str, Rule] = {}
FAMILIES: dict[str, Family] = {}


class RegistryError(ValueError):
    pass


def rule(
    rule_id: str,
    *,
    section: str,
    docs: str,
    since: str = "1.13.1",
    given: dict[str, Any] | None = None,
    history: tuple[Change, ...] = (),
    contracts: tuple[Any, ...] = (),
    requires: tuple[Feature, ...] = (),
    examples: tuple[dict[str, Any], ...] = (),
    references: tuple[str, ...] = (),
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register the decorated function as the check of rule ``rule_id``."""

    def register(function: Callable[..., None]) -> Callable[..., None]:
        statement = " ".join((function.__doc__ or "").split())
        if rule_id in REGISTRY:
            raise RegistryError(f"rule id {rule_id!r} is registered twice")
        code = function.__code__
        REGISTRY[rule_id] = Rule(
            id=rule_id,
            statement=statement,
            family=rule_id.split(".", 1)[0],
            section=section,
            since=since,
            docs=docs,
            function=function,
            given=dict(given or {}),
            history=tuple(history),
            contracts=tuple(contracts),
            requires=tuple(requires),
            examples=tuple(examples),
            references=tuple(references),
            module=function.__module__,
            source=(code.co_filename, code.co_firstlineno),
        )
        function.rule_id = rule_id
        return function

    return register


#: Family modules that failed to import, with the error: reported by the tests, never a crash.
IMPORT_ERRORS: dict[str, str] = {}


def load_all() -> dict[str, Rule]:
    """Import every module of the :mod:`specs.families` package and return the registry."""
    from specs import families

    for info in pkgutil.iter_modules(families.__path__):
        if info.name.startswith("_"):
            continue
        try:
            module = importlib.import_module(f"specs.families.{info.name}")
        except Exception as exc:  # noqa: BLE001 - any import failure is reported per module
            IMPORT_ERRORS[info.name] = f"{type(exc).__name__}: {exc}"
            continue
        family = getattr(module, "FAMILY", None)
        if isinstance(family, Family):
            FAMILIES[family.name] = family
    return REGISTRY


def rules() -> list[Rule]:
    load_all()
    return sorted(REGISTRY.values(), key=lambda r: r.id)


def get(rule_id: str) -> Rule:
    load_all()
    try:
        return REGISTRY[rule_id]
    except KeyError:
        raise RegistryError(f"no rule {rule_id!r}; known families: {sorted(FAMILIES)}") from None
