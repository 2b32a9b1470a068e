"""What ``nox -s release`` and ``nox -s matrix`` check: a registry release or a wheel file, and the baseline.

Everything here runs before an environment is built, so a bad request (an unknown release, a
missing or corrupt wheel) fails at once with one line and leaves nothing behind.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

from specs.engine import versions
from specs.reporting import report

#: The newest patch of every minor release from the oldest supported one to the newest: the matrix.
MATRIX = (
    "1.13.1",
    "2.0.1",
    "2.1.2",
    "2.2.2",
    "2.3.1",
    "2.4.1",
    "2.5.1",
    "2.6.0",
    "2.7.1",
    "2.8.0",
    "2.9.1",
    "2.10.0",
    "2.11.0",
    "2.12.1",
    "2.13.0",
    "2.14.1",
    "2.15.0",
)


class ReleaseError(ValueError):
    """A request that cannot be checked; its message is the one line the user sees."""


@dataclass(frozen=True)
class Target:
    """A torch to check: a release from the package index, or a wheel file."""

    #: the version torch reports (a wheel's full version, e.g. ``2.16.0.dev20261101+cpu``)
    version: str
    wheel: Path | None = None

    @property
    def label(self) -> str:
        """The name of its environment (``.nox/torch-<label>``) and report (``torch-<label>.json``)."""
        return re.sub(r"[^0-9A-Za-z.+-]", "_", self.version)

    @property
    def requirement(self) -> str:
        return str(self.wheel) if self.wheel else f"torch=={self.version}"

    def requirements(self) -> list[str]:
        """torch (pinned or the wheel); releases before 2.3 were built against NumPy 1 and need it."""
        return [self.requirement] + (["numpy<2"] if versions.parse(self.version) < (2, 3, 0) else [])


@dataclass(frozen=True)
class Request:
    target: Target
    baseline: Target | None


def parse_arguments(argv: list[str], available: Callable[[], set[str]]) -> Request:
    """``RELEASE-OR-WHEEL [--baseline RELEASE-OR-WHEEL]``; ``available()`` lists the index's releases."""
    parser = argparse.ArgumentParser(prog="nox -s release --", add_help=False)
    parser.add_argument("target", nargs="?")
    parser.add_argument("--baseline")
    args, unknown = parser.parse_known_args(argv)
    if unknown or not args.target:
        raise ReleaseError(
            "usage: nox -s release -- RELEASE-OR-WHEEL [--baseline RELEASE-OR-WHEEL]"
            + (f" (unexpected: {' '.join(unknown)})" if unknown else "")
        )
    known: set[str] | None = None

    def resolve(text: str) -> Target:
        nonlocal known
        if is_wheel_argument(text):
            return wheel_target(Path(text))
        release = check(text)
        if known is None:
            known = available()
        if release not in known:
            raise ReleaseError(
                f"torch {release} is not on the package index (it has {_span(known)}): "
                "give a released version, or a wheel file for a candidate or nightly"
            )
        return Target(release)

    return Request(resolve(args.target), resolve(args.baseline) if args.baseline else None)


def check(text: str) -> str:
    try:
        return versions.check_release(text)
    except versions.UnknownVersion as error:
        raise ReleaseError(str(error)) from None


def is_wheel_argument(text: str) -> bool:
    return text.endswith(".whl") or "/" in text or Path(text).exists()


def wheel_target(path: Path, python: tuple[int, int] = sys.version_info[:2]) -> Target:
    """The torch a wheel file holds, read from its metadata; refuses what pip would fail on later."""
    if not path.is_file():
        raise ReleaseError(f"wheel {path} does not exist")
    if not path.name.endswith(".whl"):
        raise ReleaseError(f"{path} is not a wheel (a torch-<version>-<tags>.whl file)")
    try:
        with zipfile.ZipFile(path) as wheel:
            names = [n for n in wheel.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
            if len(names) != 1:
                raise ReleaseError(f"{path} is not a valid wheel: it has {len(names)} METADATA files, not one")
            metadata = HeaderParser().parsestr(wheel.read(names[0]).decode("utf-8", "replace"))
            damaged = wheel.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ReleaseError(f"{path} is not a readable wheel (corrupt or truncated: {error})") from None
    if damaged:
        raise ReleaseError(f"{path} is corrupt: its member {damaged} fails its checksum")
    name, version = metadata.get("Name", ""), metadata.get("Version", "")
    if name.lower() != "torch":
        raise ReleaseError(f"{path} is a wheel of {name or 'an unnamed package'!r}, not torch")
    try:
        parsed = versions.parse(version)
    except versions.UnknownVersion:
        raise ReleaseError(f"{path}: its version {version!r} is not a torch release number") from None
    if parsed < versions.parse(versions.OLDEST_SUPPORTED):
        raise ReleaseError(
            f"{path} holds torch {version}, older than the oldest supported release {versions.OLDEST_SUPPORTED}"
        )
    tag = path.name.split("-")[-3] if path.name.count("-") >= 4 else ""
    wanted = f"cp{python[0]}{python[1]}"
    if tag.startswith("cp") and tag != wanted:
        raise ReleaseError(
            f"{path} is built for {tag}, but the environments use Python {python[0]}.{python[1]} ({wanted})"
        )
    return Target(version, path.resolve())


def index_releases(python: str = sys.executable) -> set[str]:
    """The torch releases the package index offers (``pip index versions torch``), local tags dropped."""
    command = [python, "-m", "pip", "index", "versions", "torch", "--disable-pip-version-check"]
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "PIP_CONSTRAINT": os.devnull},
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ReleaseError(f"could not ask the package index which torch releases exist: {error}") from None
    found = parse_index_output(done.stdout)
    if done.returncode != 0 or not found:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ReleaseError(f"could not ask the package index which torch releases exist: {last}")
    return found


def parse_index_output(text: str) -> set[str]:
    match = re.search(r"^Available versions:\s*(.+)$", text, re.MULTILINE)
    return {v.strip().split("+")[0] for v in match.group(1).split(",")} if match else set()


def _span(known: set[str]) -> str:
    ordered = sorted(known, key=lambda v: versions.parse(v) if re.fullmatch(r"[\d.]+", v) else (0, 0, 0))
    return f"{len(known)} releases, {ordered[0]} to {ordered[-1]}" if ordered else "none"


@dataclass(frozen=True)
class Baseline:
    """The report to diff against, and a sentence saying where it comes from."""

    path: Path | None
    source: str


def choose_baseline(target: Target, new_report: dict, root: Path) -> Baseline:
    """The committed report of ``target`` when it was made like ``new_report``, else a fresh run (path None).

    Made like the new run: the same hypothesis profile and example budget, a complete run of at
    least the rules the new run has.
    """
    profile = new_report["environment"].get("profile")
    if target.wheel is not None:
        return Baseline(None, f"fresh run of {target.wheel.name} (profile {profile})")
    committed = root / "reports" / f"torch-{target.label}.json"
    try:
        data = report.load(committed)
    except report.ReportError as error:
        return Baseline(
            None, f"fresh run of torch {target.version}, profile {profile} (no usable committed report: {error})"
        )
    env = data["environment"]
    missing = {r["id"] for r in new_report["rules"]} - {r["id"] for r in data["rules"]}
    budget = env.get("max_examples"), new_report["environment"].get("max_examples")
    why = None
    if env.get("profile") != profile:
        why = f"the committed report is from profile {env.get('profile')}"
    elif None not in budget and budget[0] != budget[1]:
        why = f"the committed report ran {budget[0]} examples a rule, not {budget[1]}"
    elif not data.get("complete", False) or missing:
        why = f"the committed report lacks {len(missing)} of the rules" if missing else "it is from a partial run"
    elif not report.has_observations(data):
        why = f"the committed report has schema {data['schema']}, without observations"
    if why:
        return Baseline(None, f"fresh run of torch {target.version}, profile {profile} ({why})")
    return Baseline(
        committed, f"committed report reports/{committed.name} (profile {profile}, {len(data['rules'])} rules)"
    )


def report_is_current(path: Path, profile: str, sources: Path) -> bool:
    """Whether a report is complete, of this schema and profile, and newer than every file under ``sources``.

    ``nox -s matrix`` skips a release whose report is current, so an interrupted run resumes.
    """
    try:
        data = report.load(path)
    except report.ReportError:
        return False
    newest_source = max((p.stat().st_mtime for p in sources.rglob("*.py")), default=0.0)
    return (
        data.get("schema") == report.SCHEMA
        and bool(data.get("complete"))
        and data["environment"].get("profile") == profile
        and path.stat().st_mtime > newest_source
    )
