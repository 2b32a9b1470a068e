"""The pytest plugin: hypothesis profiles, state isolation, known failures and the JSON report.

Installed with the package (entry point ``pytest11``), it is active only in a run of the
specification: ``pytest --pyargs specs``, ``autograd-spec check``, or any pytest run inside this
project's checkout.  Elsewhere it does nothing, so other projects' test suites are unaffected.

The hypothesis profile is chosen the standard way, ``--hypothesis-profile=ci|dev|thorough``
(``AUTOGRAD_SPEC_PROFILE`` is kept as an alias); without either, ``ci`` under CI and ``dev``
otherwise.  The header and the report name the profile that actually ran.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import hypothesis
import pytest

if TYPE_CHECKING:
    from specs.engine import registry

# torch and the spec's own modules are imported only in a run of the specification: loaded as an
# entry point in every pytest run of the environment, the plugin must cost next to nothing elsewhere.

PROFILE_VARIABLE = "AUTOGRAD_SPEC_PROFILE"
PROFILES = ("ci", "dev", "thorough")
_COMMON = dict(
    deadline=None,
    print_blob=True,
    suppress_health_check=[hypothesis.HealthCheck.too_slow, hypothesis.HealthCheck.data_too_large],
)


def register_profiles() -> None:
    """The suite's hypothesis profiles.  Registered only in a spec run: hypothesis loads its own
    ``ci`` profile under CI, and another project's run must keep it."""
    hypothesis.settings.register_profile("ci", max_examples=25, derandomize=True, database=None, **_COMMON)
    hypothesis.settings.register_profile("dev", max_examples=50, **_COMMON)
    hypothesis.settings.register_profile("thorough", max_examples=1000, **_COMMON)


_PACKAGE = Path(__file__).resolve().parent
_ACTIVE = pytest.StashKey[bool]()
_PROFILE = pytest.StashKey[str]()
_REPORT_PATH = pytest.StashKey[Path]()
_WRITTEN = pytest.StashKey[dict]()
_PROPERTY = "autograd-spec-rule"
_COLLECTED: dict = {}
#: specs/test_rules.py::test_atlas_covers_opinfo_ops measures the atlas's OpInfo coverage for the report.
_ATLAS_COVERAGE = "autograd-spec-atlas-coverage"
_ATLAS: list = [None]
#: the environment and rule count an xdist worker measured (see pytest_testnodedown)
_WORKER_OUTPUT = "autograd-spec-measured"
_MEASURED: list = [None]


def pytest_addoption(parser):
    group = parser.getgroup("autograd-spec", "autograd-spec: the executable specification of autograd")
    group.addoption(
        "--spec-report",
        default=None,
        metavar="PATH",
        help="where to write the JSON report (default: build/reports/torch-<version>.json)",
    )
    group.addoption(
        "--known-failures",
        action="append",
        default=[],
        metavar="FILE",
        help="a file of known failures ('<rule-id> <releases> : <reason>' per line), "
        "added to the built-in list; may be given several times",
    )
    group.addoption(
        "--spec-device",
        default=None,
        metavar="DEVICE",
        help="create the rules' tensors on this device (torch.set_default_device, e.g. cuda); default cpu",
    )
    group.addoption(
        "--autograd-spec",
        action="store_true",
        default=False,
        help="treat this run as a run of the specification (set by `autograd-spec check`)",
    )


def _is_spec_run(config) -> bool:
    if config.getoption("--autograd-spec"):
        return True
    if (Path(str(config.rootpath)) / "specs" / "plugin.py").resolve() == Path(__file__).resolve():
        return True
    for arg in config.args:
        target = str(arg).split("::")[0]
        if config.getoption("pyargs", False) and target.split(".")[0] == "specs":
            return True
        try:
            path = Path(target).resolve()
        except OSError:
            continue
        if path == _PACKAGE or _PACKAGE in path.parents:
            return True
    return False


def selected_profile(config) -> str:
    name = (
        config.getoption("--hypothesis-profile", None)
        or os.environ.get(PROFILE_VARIABLE)
        or ("ci" if os.environ.get("CI") else "dev")
    )
    if name not in PROFILES:
        raise pytest.UsageError(f"hypothesis profile {name!r} is not one of this suite's profiles {PROFILES}")
    return name


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    # tryfirst: hypothesis' own plugin loads --hypothesis-profile after this, so the profiles exist
    # by then; it loads the same profile this selects.
    config.stash[_ACTIVE] = _is_spec_run(config)
    if not config.stash[_ACTIVE]:
        return
    register_profiles()
    profile = selected_profile(config)
    hypothesis.settings.load_profile(profile)
    config.stash[_PROFILE] = profile
    for name in config.getoption("--known-failures"):
        from specs.engine import registry

        path = Path(name)
        try:
            registry.known_failures(path)
        except registry.RegistryError as error:
            raise pytest.UsageError(str(error)) from None
        registry.USER_KNOWN_FAILURES.append(path)
    device = config.getoption("--spec-device")
    if device:
        import torch

        if not hasattr(torch, "set_default_device"):
            raise pytest.UsageError(f"--spec-device needs torch >= 2.0 (installed: {torch.__version__})")
        try:
            torch.empty(0, device=device)
        except (RuntimeError, AssertionError) as error:
            raise pytest.UsageError(f"--spec-device {device}: {str(error).splitlines()[0]}") from None
        torch.set_default_device(device)
    default = Path("build") / "reports" / f"torch-{_torch_version()}.json"
    config.stash[_REPORT_PATH] = Path(config.getoption("--spec-report") or default)
    _COLLECTED.clear()
    _MEASURED[0] = None
    # torch's first forward-AD use warns that torch.jit.script is deprecated; not a finding here.
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated", category=DeprecationWarning)


def _torch_version_text() -> str:
    """The installed torch's version, read from its package metadata when torch is not loaded yet:
    under xdist the main process runs no test, and importing torch there (about 2 s) would only
    delay the start of the workers."""
    import sys
    from importlib import metadata

    if "torch" not in sys.modules:
        try:
            return metadata.version("torch")
        except metadata.PackageNotFoundError:  # a source checkout on sys.path: ask torch itself
            pass
    import torch

    return torch.__version__


def _torch_version() -> str:
    return _torch_version_text().split("+")[0]


def pytest_report_header(config):
    if not config.stash.get(_ACTIVE, False):
        return None
    current = hypothesis.settings.default
    return [
        f"autograd-spec: torch {_torch_version_text()}, hypothesis profile "
        f"{hypothesis.settings.get_current_profile_name()!r} (max_examples={current.max_examples}, "
        f"derandomize={current.derandomize}; choose with --hypothesis-profile=ci|dev|thorough)",
        f"autograd-spec: tensors on {config.getoption('--spec-device') or 'cpu'}; hypothesis seed "
        f"{config.getoption('--hypothesis-seed', None) or '(none given)'}; JSON report -> {config.stash[_REPORT_PATH]}",
    ]


@pytest.fixture(autouse=True)
def isolated_state(request):
    """Fail a test that leaks grad mode, anomaly mode or the default dtype; restore seeds."""
    if not request.config.stash.get(_ACTIVE, False):
        yield
        return
    from specs.engine.state import Isolated

    with Isolated() as guard:
        yield
    if guard.leaks:
        pytest.fail(f"test leaked global autograd state (restored now): {guard.leaks}", pytrace=False)


def rule_of(item) -> registry.Rule | None:
    rule_id = getattr(getattr(item, "obj", None), "autograd_spec_rule", None)
    if not rule_id:
        return None
    from specs.engine import registry

    return registry.get(rule_id)


def _record(item, rule: registry.Rule, outcome: str, result: registry.RunResult | None = None, **details) -> None:
    import torch

    from specs.reporting import report as spec_report

    entry = spec_report.rule_record(rule, outcome, torch.__version__, result, **details)
    item.user_properties.append((_PROPERTY, entry.__dict__))


def pytest_runtest_setup(item):
    rule = rule_of(item)
    if rule is None:
        return
    reason = rule.not_applicable()
    if reason:
        _record(item, rule, "not-applicable", reason=reason)
        pytest.skip(f"{rule.id}: {reason}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    rule = rule_of(item)
    if rule is None:
        return (yield)
    from specs.engine import registry
    from specs.engine.expect import Violation

    known = rule.known_failure()
    with registry.observing() as observer:
        try:
            outcome = yield
        except (pytest.skip.Exception, KeyboardInterrupt):
            raise
        except BaseException as exc:  # noqa: BLE001 - every failure of a rule is reported
            message = registry.explain(rule, exc, observer)
            if known:
                _record(
                    item,
                    rule,
                    "known-failure",
                    observer.result(),
                    failure=message[:4000],
                    known=known,
                    examples=observer.examples,
                )
                raise pytest.xfail.Exception(
                    f"known failure on this torch ({known}); the report holds the details"
                ) from None
            _record(item, rule, "failed", observer.result(), failure=message[:4000], examples=observer.examples)
            if isinstance(exc, Violation):
                raise pytest.fail.Exception(message, pytrace=False) from None
            raise
    result = observer.result()
    if known:
        warnings.warn(
            f"{rule.id} is listed as a known failure for this torch but held: remove or narrow the entry ({known})",
            UserWarning,
        )
    _record(
        item,
        rule,
        "passed",
        result,
        examples=result.examples,
        seconds=round(result.seconds, 4),
        observations=result.observations,
        known_bugs=result.known_bugs,
    )
    return outcome


def pytest_runtest_logreport(report):
    for name, value in getattr(report, "user_properties", ()):
        if name == _ATLAS_COVERAGE and report.when == "call":
            _ATLAS[0] = value
        if name == _PROPERTY:
            from specs.reporting import report as spec_report

            _COLLECTED[value["id"]] = spec_report.RuleRecord(**value)


def _measured(config) -> dict:
    """What only a process that imported torch and the rules knows: the environment and the rule count."""
    from specs.engine import registry
    from specs.reporting import report as spec_report

    return {"environment": spec_report.environment(config.stash[_PROFILE]), "registered": len(registry.rules())}


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """An xdist worker finished: keep what it measured, so that the main process need not import torch."""
    measured = getattr(node, "workeroutput", {}).get(_WORKER_OUTPUT)
    if measured:
        _MEASURED[0] = measured


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    if not config.stash.get(_ACTIVE, False):
        return
    if hasattr(config, "workerinput"):  # an xdist worker: the main process writes the report
        if _COLLECTED:
            config.workeroutput[_WORKER_OUTPUT] = _measured(config)
        return
    if not _COLLECTED:
        return
    from specs.reporting import report as spec_report

    measured = _MEASURED[0] or _measured(config)
    data = spec_report.build(
        list(_COLLECTED.values()),
        config.stash[_PROFILE],
        measured["registered"],
        atlas_coverage=_ATLAS[0],
        measured_environment=measured["environment"],
    )
    spec_report.write(data, config.stash[_REPORT_PATH])
    config.stash[_WRITTEN] = data


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    written = config.stash.get(_WRITTEN, None)
    if not written:
        return
    from specs.reporting import report as spec_report

    terminalreporter.section("autograd-spec rules by family")
    for line in spec_report.format_summary(written["summary"]):
        terminalreporter.write_line(line)
    terminalreporter.write_line(
        f"report written to {config.stash[_REPORT_PATH]}"
        + ("" if written["complete"] else " (partial run: not every rule ran)")
    )
