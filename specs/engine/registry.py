"""The one registry of rules: the source of the tests, the docs' catalogue and the JSON report.

A family module (``specs/<family>.py``) declares ``FAMILY = Family(...)`` and registers each rule
with :func:`rule`::

    @rule("accumulation.sums-across-backward", section=Section.ACCUMULATION,
          docs="accumulation-sums", given=dict(program=programs()))
    def sums_across_backward(program):
        \"\"\"Calling backward k times without zeroing leaves k times the one-pass gradient in .grad.\"\"\"
        ...

The docstring is the rule's one-sentence statement.  ``given`` holds hypothesis strategies; the
rule function is run under :func:`hypothesis.given` with the settings in force when it runs.
"""

from __future__ import annotations

import contextlib
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
from specs.engine.sections import SEED_SECTIONS, Section  # noqa: F401 - re-exported
from specs.engine.state import Isolated

#: Profiles with at most this many examples a rule are the everyday ones (ci, dev), where a rule's
#: own ``max_examples`` applies.
EVERYDAY_EXAMPLES = 50

#: ``family.kebab-case-name``: lower case words joined by single hyphens, one dot.
ID_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*\.[a-z0-9]+(?:-[a-z0-9]+)*$")


@dataclass(frozen=True)
class Family:
    name: str
    title: str
    summary: str
    #: The gallery script (a file name under ``gallery/``) that documents this family.
    gallery: str
    #: Called after each of the family's rule checks, to stop what its examples share (worker
    #: processes), so that no check leaves anything running behind it.
    teardown: Callable[[], None] | None = None


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


def _record_draws(kwargs: dict[str, Any]) -> list[Any]:
    """The values a check draws from its ``st.data()`` arguments, appended as they are drawn."""
    drawn: list[Any] = []
    for value in kwargs.values():
        if type(value).__name__ == "DataObject" and callable(getattr(value, "draw", None)):
            original = value.draw

            def draw(strategy, label=None, _original=original):
                result = _original(strategy, label)
                drawn.append(result)
                return result

            value.draw = draw
    return drawn


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
    #: at most this many generated examples under the everyday profiles (ci, dev), for a rule whose
    #: examples are expensive (process start-up, full-table sweeps); ``thorough`` ignores it
    max_examples: int | None = None
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
        for entry in all_known_failures():
            if entry.rule == self.id and versions.matches(entry.releases, versions.installed_text()):
                return entry.reason
        return None

    def hypothesis_test(self, settings: hypothesis.settings | None = None) -> Callable[[], None]:
        """This rule as a hypothesis test: ``@given(**given)`` with its explicit examples first.

        Each example runs isolated (a leak of global state fails it) and is counted by the
        observer that :func:`observing` has made active, if any.  Without ``settings`` the test
        follows the hypothesis profile in force when it runs.
        """
        rule = self

        @functools.wraps(self.function)
        def one_example(*args, **kwargs):
            observer = getattr(_ACTIVE, "observer", None) or _Observer()
            observer.examples += 1
            if observer.sample is None or _size(kwargs) > _size(observer.sample):
                observer.sample = dict(kwargs)
            observer.canonical = rule.is_explicit(kwargs)
            drawn = _record_draws(kwargs)
            try:
                with Isolated(process_state=False) as guard:
                    rule.function(*args, **kwargs)
            except Exception as exc:
                if isinstance(exc, hypothesis.errors.HypothesisException):
                    raise
                with Isolated(process_state=False):
                    # Programs a rule draws inside its check (st.data()) are the example's too.
                    bug = known_bugs.reached({**kwargs, "drawn inside the check": tuple(drawn)}, rule.id)
                if bug is None or bug.rule == rule.id:
                    raise
                # A listed torch bug, not this rule's: count it and let hypothesis look for others.
                observer.known_bugs[bug.id] = observer.known_bugs.get(bug.id, 0) + 1
                hypothesis.reject()
            finally:
                observer.canonical = False
            if guard.leaks:
                from specs.engine.expect import Violation

                raise Violation("the check left global autograd state changed", "no change", guard.leaks)

        test = one_example
        if settings is None and self.max_examples is not None:
            # Decorated at collection, after the plugin loaded the profile.
            budget = hypothesis.settings.default.max_examples
            if budget <= EVERYDAY_EXAMPLES:
                settings = hypothesis.settings(max_examples=min(budget, self.max_examples))
        if settings is not None:
            test = settings(test)
        for example in reversed(self.examples):
            test = hypothesis.example(**example)(test)
        test = hypothesis.given(**self.given)(test)
        family = FAMILIES.get(self.family)
        if family is not None and family.teardown is not None:
            test = _followed_by(test, family.teardown)
        test.autograd_spec_rule = self.id
        return test

    @property
    def test_name(self) -> str:
        """The name of this rule's pytest test: ``test_<family>__<name>`` in identifier form."""
        family, name = self.id.split(".", 1)
        return "test_" + family.replace("-", "_") + "__" + name.replace("-", "_")

    def run(self, settings: hypothesis.settings | None = None) -> RunResult:
        """Check the rule; raise :class:`RuleFailed` with an explanation when it does not hold."""
        test = self.hypothesis_test(settings)
        with observing() as observer:
            try:
                test()
            except Exception as exc:
                raise RuleFailed(self, explain(self, exc, observer), exc) from exc
        return observer.result()

    def is_explicit(self, kwargs: dict[str, Any]) -> bool:
        """Whether ``kwargs`` is one of this rule's explicit examples (hypothesis passes them as given)."""
        return any(all(kwargs.get(k) is v for k, v in example.items()) for example in self.examples)


def _followed_by(test: Callable[[], None], teardown: Callable[[], None]) -> Callable[[], None]:
    """``test`` (a hypothesis test, still one for pytest's plugins), then ``teardown`` whatever happened."""

    @functools.wraps(test)
    def checked():
        try:
            test()
        finally:
            teardown()

    return checked


class _Observer:
    """What one check of a rule saw: examples run, messages, recorded values, the largest example."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.examples = 0
        self.seen: list[str] = []
        self.sample: dict[str, Any] | None = None
        self.values: dict[str, Any] = {}
        self.canonical = False
        self.known_bugs: dict[str, int] = {}

    def result(self) -> RunResult:
        seen = list(self.seen)
        for bug_id, count in sorted(self.known_bugs.items()):
            seen.append(
                f"known bug {bug_id} reached by {count} example(s), not counted against this rule: "
                f"{known_bugs.KNOWN_BUGS[bug_id].reason}"
            )
        return RunResult(
            self.examples, time.perf_counter() - self.started, seen, self.sample, self.values, dict(self.known_bugs)
        )


_ACTIVE = threading.local()


@contextlib.contextmanager
def observing():
    """Make a fresh observer active for the checks run inside the block (one rule at a time)."""
    observer = _Observer()
    previous = getattr(_ACTIVE, "observer", None)
    _ACTIVE.observer = observer
    try:
        yield observer
    finally:
        _ACTIVE.observer = previous


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


def explain(rule: Rule, exc: BaseException, observer: _Observer | None = None) -> str:
    notes = "\n".join(getattr(exc, "__notes__", []))
    lines = [
        f"Rule {rule.id} does not hold on torch {versions.installed_text()}.",
        f"  statement: {rule.statement}",
        f"  {type(exc).__name__}: {exc}",
    ]
    if notes:
        lines.append("  hypothesis: " + notes.replace("\n", "\n    "))
    if observer is not None and observer.known_bugs:
        lines.append(f"  examples that reached known torch bugs and were set aside: {observer.known_bugs}")
    lines.append(f"  re-run: python -m pytest --pyargs specs -k {rule.test_name}")
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
    try:
        text_lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryError(f"known-failures file {path} cannot be read: {exc}") from None
    for number, line in enumerate(text_lines, start=1):
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


#: Known-failure files a user added (``--known-failures FILE``), read after the built-in one.
USER_KNOWN_FAILURES: list[Path] = []


def all_known_failures() -> tuple[KnownFailure, ...]:
    entries = known_failures()
    for path in USER_KNOWN_FAILURES:
        entries += known_failures(path)
    return entries


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
    max_examples: int | None = None,
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
            max_examples=max_examples,
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
