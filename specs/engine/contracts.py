"""Error and warning contracts: exception type, a message pattern, and the phase that raises it.

A contract's pattern must accept the wording of every supported torch release, so a reworded
message is not a failure; the message actually seen is recorded in the run's report, which is how
wording changes between releases are found.
"""

from __future__ import annotations

import enum
import re
import warnings
from dataclasses import dataclass
from typing import Any, Callable

from specs.engine.expect import Violation
from specs.engine.messages import template
from specs.engine.registry import observe
from specs.engine.registry import record as record_observed


class Phase(enum.Enum):
    RECORD = "while recording the forward computation"
    BACKWARD = "at backward"
    SECOND_BACKWARD = "at a second backward through the same graph"


def _backward(out: Any) -> None:
    out.backward()


@dataclass(frozen=True)
class ErrorContract:
    exception: type[BaseException]
    pattern: str
    phase: Phase
    #: How the wording differs between releases, when it does.
    wording: str = ""

    def describe(self) -> str:
        return f"{self.exception.__name__} matching /{self.pattern}/ {self.phase.value}"

    def check(
        self,
        record: Callable[[], Any],
        backward: Callable[[Any], Any] = _backward,
        again: Callable[[Any], Any] | None = None,
        repro: str | None = None,
    ) -> str:
        """Run ``record()``, then ``backward(out)``, then ``again(out)`` (a second backward).

        Exactly the phase named by the contract must raise, with the declared type and a message
        matching the pattern.  Returns the message seen.
        """
        steps: list[tuple[Phase, Callable[[], Any]]] = []
        value: dict[str, Any] = {}
        steps.append((Phase.RECORD, lambda: value.__setitem__("out", record())))
        steps.append((Phase.BACKWARD, lambda: backward(value["out"])))
        steps.append((Phase.SECOND_BACKWARD, lambda: (again or backward)(value["out"])))
        for phase, step in steps:
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - we classify every exception below
                message = str(exc)
                observe(f"{type(exc).__name__}: {message}")
                if phase is not self.phase:
                    raise Violation(
                        f"expected {self.describe()}, but it raised {phase.value}",
                        self.describe(),
                        f"{type(exc).__name__}: {message}",
                        repro,
                    ) from exc
                if not isinstance(exc, self.exception) or not re.search(self.pattern, message):
                    raise Violation(
                        f"wrong error {phase.value}",
                        self.describe(),
                        f"{type(exc).__name__}: {message}",
                        repro,
                    ) from exc
                record_observed(
                    f"raises {phase.name.lower()}",
                    {"type": type(exc).__name__, "template": template(message), "phase": phase.name.lower()},
                )
                return message
            if phase is self.phase:
                raise Violation(f"nothing was raised {phase.value}", self.describe(), "no exception", repro)
        raise AssertionError("unreachable: every phase ran")  # pragma: no cover


@dataclass(frozen=True)
class WarningContract:
    category: type[Warning]
    pattern: str
    wording: str = ""

    def describe(self) -> str:
        return f"{self.category.__name__} matching /{self.pattern}/"

    def _matching(self, action: Callable[[], Any]) -> tuple[Any, list[str]]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = action()
        seen = [
            str(w.message)
            for w in caught
            if issubclass(w.category, self.category) and re.search(self.pattern, str(w.message))
        ]
        return result, seen

    def check(self, action: Callable[[], Any], repro: str | None = None) -> Any:
        """``action()`` must emit this warning; returns what the action returned."""
        result, seen = self._matching(action)
        if not seen:
            raise Violation(f"no {self.category.__name__} was emitted", self.describe(), "none", repro)
        observe(f"{self.category.__name__}: {seen[0]}")
        record_observed(
            f"warns {self.category.__name__}", {"type": self.category.__name__, "template": template(seen[0])}
        )
        return result

    def check_absent(self, action: Callable[[], Any], repro: str | None = None) -> Any:
        """``action()`` must not emit this warning; returns what the action returned."""
        result, seen = self._matching(action)
        if seen:
            raise Violation("an unexpected warning was emitted", "no such warning", seen[0], repro)
        return result
