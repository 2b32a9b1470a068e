"""Test-suite wiring: hypothesis profiles, state isolation, the JSON report and the summary."""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import hypothesis
import pytest
import torch

from specs.engine import registry
from specs.reporting import report as spec_report
from specs.engine.state import Isolated

PROFILE_VARIABLE = "AUTOGRAD_SPEC_PROFILE"
_COMMON = dict(deadline=None, suppress_health_check=[hypothesis.HealthCheck.too_slow,
                                                      hypothesis.HealthCheck.data_too_large])
hypothesis.settings.register_profile(
    "ci", max_examples=25, derandomize=True, database=None, print_blob=True, **_COMMON)
hypothesis.settings.register_profile("dev", max_examples=50, print_blob=True, **_COMMON)
hypothesis.settings.register_profile("thorough", max_examples=1000, print_blob=True, **_COMMON)
PROFILES = ("ci", "dev", "thorough")


def selected_profile() -> str:
    name = os.environ.get(PROFILE_VARIABLE) or ("ci" if os.environ.get("CI") else "dev")
    if name not in PROFILES:
        raise pytest.UsageError(
            f"{PROFILE_VARIABLE}={name!r} is not a hypothesis profile of this suite; choose one of {PROFILES}")
    return name


def pytest_addoption(parser):
    parser.addoption("--spec-report", default=None,
                     help="where to write the JSON report (default: build/reports/torch-<version>.json)")


def pytest_configure(config):
    profile = selected_profile()
    hypothesis.settings.load_profile(profile)
    config.stash[_PROFILE] = profile
    default = Path("build") / "reports" / f"torch-{torch.__version__.split('+')[0]}.json"
    config.stash[_REPORT_PATH] = Path(config.getoption("--spec-report") or default)
    config.stash[_RECORDS] = {}
    _COLLECTED.clear()
    # torch's first forward-AD use warns that torch.jit.script is deprecated; not a finding here.
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated", category=DeprecationWarning)


_PROFILE = pytest.StashKey[str]()
_REPORT_PATH = pytest.StashKey[Path]()
_RECORDS = pytest.StashKey[dict]()


def pytest_report_header(config):
    profile = hypothesis.settings.get_profile(config.stash[_PROFILE])
    return [
        f"autograd-spec: torch {torch.__version__}, hypothesis profile {config.stash[_PROFILE]!r} "
        f"(max_examples={profile.max_examples}, derandomize={profile.derandomize}; "
        f"set {PROFILE_VARIABLE} to ci, dev or thorough)",
        f"autograd-spec: JSON report -> {config.stash[_REPORT_PATH]}",
    ]


@pytest.fixture(autouse=True)
def isolated_state():
    """Fail a test that leaks grad mode, anomaly mode or the default dtype; restore seeds."""
    with Isolated() as guard:
        yield
    if guard.leaks:
        pytest.fail(f"test leaked global autograd state (restored now): {guard.leaks}", pytrace=False)


_PROPERTY = "autograd-spec-rule"


@pytest.fixture
def record_rule(request):
    """Attach a rule's outcome to its test report; the main process collects it (also under xdist)."""

    def record(rule: registry.Rule, outcome: str, **details):
        entry = spec_report.RuleRecord(
            id=rule.id, family=rule.family, statement=rule.statement, since=rule.since, outcome=outcome,
            history=[{"version": c.version, "what": c.what} for c in rule.history], **details)
        request.node.user_properties.append((_PROPERTY, entry.__dict__))

    return record


def pytest_runtest_logreport(report):
    for name, value in getattr(report, "user_properties", ()):
        if name == _PROPERTY and report.when == "call":
            _COLLECTED.setdefault("records", {})[value["id"]] = spec_report.RuleRecord(**value)


_COLLECTED: dict = {}


def pytest_sessionfinish(session, exitstatus):
    if hasattr(session.config, "workerinput"):  # an xdist worker: the main process writes the report
        return
    records = _COLLECTED.get("records", {})
    if not records:
        return
    data = spec_report.build(list(records.values()), session.config.stash[_PROFILE], len(registry.rules()))
    spec_report.write(data, session.config.stash[_REPORT_PATH])
    session.config.stash[_RECORDS] = {"_written": data}


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    written = config.stash.get(_RECORDS, {}).get("_written")
    if not written:
        return
    terminalreporter.section("autograd-spec rules by family")
    for line in spec_report.format_summary(written["summary"]):
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"report written to {config.stash[_REPORT_PATH]}"
                                + ("" if written["complete"] else " (partial run: not every rule ran)"))
