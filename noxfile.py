"""Sessions: ``tests`` (the specification), ``docs`` (the site), ``lint``, ``bench`` (timings), ``release``.

The torch release is chosen with ``AUTOGRAD_SPEC_TORCH`` (default 2.13.0).  Environments are
reused between runs and re-installed only when what they need changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import nox

# The `nox` console script does not put the project on sys.path (`python -m nox` does): the
# noxfile reads release numbers from the spec itself, so it adds its own folder.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from specs.engine.versions import DEFAULT_TORCH, UnknownVersion, check_release, parse  # noqa: E402
from specs.reporting import releases  # noqa: E402

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "venv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["tests"]

ROOT = Path(__file__).resolve().parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
TORCH_VARIABLE = "AUTOGRAD_SPEC_TORCH"
#: torch is always pinned exactly here, so a machine-wide pip constraint file (some machines cap
#: torch below the newest release) must not apply.
PIP_ENV = {"PIP_CONSTRAINT": os.devnull}
#: The environment the suite runs in: one BLAS thread per worker, and bytecode caching on even
#: where PYTHONDONTWRITEBYTECODE is set (as on some machines): pytest keeps the ~200 modules it
#: rewrites for its assertions as .pyc files in __pycache__, and without them every worker
#: re-parses them all (about 2.5 s of each run's start-up).
RUN_ENV = {"OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": ""}


def torch_release(session: nox.Session) -> str:
    requested = os.environ.get(TORCH_VARIABLE, DEFAULT_TORCH)
    try:
        return check_release(requested)
    except UnknownVersion as error:
        session.error(f"{TORCH_VARIABLE}: {error}")


def torch_requirements(release: str) -> list[str]:
    """torch pinned exactly; releases before 2.3 were built against NumPy 1 and need it."""
    return [f"torch=={release}"] + (["numpy<2"] if parse(release) < (2, 3, 0) else [])


def install(session: nox.Session, group: str) -> str:
    """Install torch, a dependency group and this project (editable), skipping pip when nothing changed."""
    release = torch_release(session)
    requirements = [*torch_requirements(release), *nox.project.dependency_groups(PYPROJECT, group)]
    metadata = (ROOT / "pyproject.toml").read_text()
    digest = hashlib.sha256(json.dumps([requirements, metadata]).encode()).hexdigest()
    stamp = Path(session.virtualenv.location) / ".autograd-spec-installed"
    if stamp.exists() and stamp.read_text() == digest:
        session.log(f"environment up to date: {', '.join(requirements)}")
    else:
        session.install("--upgrade", "pip", env=PIP_ENV)
        session.install(*requirements, env=PIP_ENV)
        session.install("--no-deps", "-e", ".", env=PIP_ENV)
        stamp.write_text(digest)
    return release


def profile_arguments(posargs: list[str]) -> list[str]:
    """``--hypothesis-profile=ci`` unless the user chose one (``AUTOGRAD_SPEC_PROFILE`` is an alias)."""
    if any(a.startswith("--hypothesis-profile") for a in posargs):
        return []
    return [f"--hypothesis-profile={os.environ.get('AUTOGRAD_SPEC_PROFILE', 'ci')}"]


@nox.session
def tests(session: nox.Session) -> None:
    """Run every rule, every gallery script and the meta-tests; write the JSON report."""
    install(session, "tests")
    # One pytest worker per core (pytest-xdist); the JSON report is gathered in the main process.
    session.run(
        "python",
        "-m",
        "pytest",
        "-n",
        os.environ.get("AUTOGRAD_SPEC_WORKERS", "auto"),
        # An idle worker takes tests queued for the other: no worker waits while the other
        # finishes a long tail (the suite's tests run from milliseconds to seconds).
        "--dist=worksteal",
        *profile_arguments(session.posargs),
        *session.posargs,
        env=RUN_ENV,
    )


@nox.session(name="random")
def random_seed(session: nox.Session) -> None:
    """The suite with a fresh random seed (printed, for --hypothesis-seed) in random order, profile dev.

    `nox -s random -- --seed N` reproduces a run; a failing example it finds belongs in its rule's
    `examples=`, so that every later run checks it.
    """
    install(session, "tests")
    session.run(
        "python",
        "tests/random_seed_run.py",
        *session.posargs,
        "-n",
        os.environ.get("AUTOGRAD_SPEC_WORKERS", "auto"),
        "-q",
        env={**RUN_ENV, "AUTOGRAD_SPEC_PROFILE": "dev"},
    )


@nox.session
def lint(session: nox.Session) -> None:
    """Check the house style: `ruff check` and `ruff format --check` (`nox -s lint -- --fix` fixes)."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    fix = "--fix" in session.posargs
    session.run("ruff", "check", *(["--fix"] if fix else []), ".")
    session.run("ruff", "format", *([] if fix else ["--check"]), ".")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the HTML documentation (warnings as errors) into build/html, then check it in Chromium.

    Incremental: sphinx-gallery re-runs only the scripts whose content changed, and every page
    when the torch release changed (docs/conf.py keeps a stamp next to the gallery output).
    `nox -s docs -- --clean` builds from scratch; `--no-browser` skips the browser check.
    """
    install(session, "docs")
    args = list(session.posargs)
    clean = "--clean" in args
    browser_check = "--no-browser" not in args
    args = [a for a in args if a not in ("--clean", "--no-browser")]
    if clean:
        for generated in ("build/html", "build/doctrees", "docs/auto_gallery", "docs/generated"):
            shutil.rmtree(ROOT / generated, ignore_errors=True)
    session.run(
        "python",
        "-m",
        "sphinx",
        "-W",
        "--keep-going",
        "-b",
        "html",
        "-d",
        "build/doctrees",
        "docs",
        "build/html",
        *args,
        env=RUN_ENV,
    )
    session.log(f"HTML written to {ROOT / 'build' / 'html' / 'index.html'}")
    if browser_check:
        _ensure_chromium(session)
        session.run("python", "tests/docs_check/browser_check.py", "build/html", "--screenshots", "build/screenshots")


def _ensure_chromium(session: nox.Session) -> None:
    """Debian's chromium and chromedriver for the browser check: installed with apt-get when missing."""
    if shutil.which("chromium") and shutil.which("chromedriver"):
        return
    if shutil.which("apt-get") and os.geteuid() == 0:
        session.log("installing chromium and chromium-driver with apt-get")
        session.run("apt-get", "update", "-qq", external=True)
        session.run(
            "apt-get",
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "chromium",
            "chromium-driver",
            external=True,
            env={"DEBIAN_FRONTEND": "noninteractive"},
        )
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        session.error(
            "the browser check needs chromium and chromedriver: as root, "
            "`apt-get install -y chromium chromium-driver`, or run `nox -s docs -- --no-browser`"
        )


@nox.session
def bench(session: nox.Session) -> None:
    """Time the benchmarks, count their instructions, and summarize both per torch release.

    Timing: pytest-benchmark, AUTOGRAD_SPEC_BENCH_RUNS runs (default 3), each saved under
    build/benchmarks/torch-<release>/.  Counting: AUTOGRAD_SPEC_BENCH_COUNTS runs (default 2, 0 to
    skip) of the same benchmarks under valgrind's callgrind (`python -m specs.bench count`), which
    count instructions independently of how busy the machine is; skipped with a note when valgrind
    is missing.  The newest runs are summarized (medians, spread across runs, IQR, instructions,
    memory figures) into build/benchmarks/torch-<release>.json, which `python -m specs.bench
    compare` reads, and which is committed under benchmarks/results/ for the docs.  Arguments after
    `--` go to pytest (e.g. `nox -s bench -- -k hvp`).
    """
    release = install(session, "bench")
    storage = ROOT / "build" / "benchmarks" / f"torch-{release}"
    runs = _count_setting(session, "AUTOGRAD_SPEC_BENCH_RUNS", 3)
    counts = _count_setting(session, "AUTOGRAD_SPEC_BENCH_COUNTS", 2)
    env = {**RUN_ENV, "AUTOGRAD_SPEC_PROFILE": "ci"}
    for run in range(1, runs + 1):
        session.log(f"benchmark run {run} of {runs}")
        session.run(
            "python",
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/benchmarks",
            "--benchmark-enable",
            "--benchmark-only",
            "--benchmark-max-time=0.5",
            "--benchmark-autosave",
            f"--benchmark-storage=file://{storage}",
            "--benchmark-columns=min,median,iqr,rounds",
            *session.posargs,
            env=env,
        )
    if counts and not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        session.warn(
            "valgrind is not installed: no instruction counts this time (Debian: apt-get install "
            "valgrind); the summary has timings only"
        )
        counts = 0
    if counts:
        session.log(f"counting instructions under callgrind: {counts} runs, one per core at a time")
        session.run(
            "python",
            "-m",
            "specs.bench",
            "count",
            str(storage),
            f"--runs={counts}",
            *(["--", *session.posargs] if session.posargs else []),
            env=env,
        )
    session.run(
        "python",
        "-m",
        "specs.bench",
        "summarize",
        str(storage),
        f"--last={runs}",
        f"--last-counts={counts}",
        f"--torch={release}",
        f"--output={storage}.json",
        env=env,
    )


def _count_setting(session: nox.Session, variable: str, default: int) -> int:
    value = os.environ.get(variable, str(default))
    if not value.isdigit():
        session.error(f"{variable}={value!r}: expected a whole number of runs, e.g. {default}")
    return int(value)


def _profile() -> str:
    return os.environ.get("AUTOGRAD_SPEC_PROFILE", "ci")


def _check(session: nox.Session, target: releases.Target, keep: bool = True) -> Path:
    """Run the rules against ``target`` in its own environment; return its report.

    An environment whose installation fails is deleted, so that no empty environment is left;
    ``keep=False`` deletes it after the run too (``nox -s matrix``).
    """
    env_dir = ROOT / ".nox" / f"torch-{target.label}"
    python = env_dir / "bin" / "python"
    requirements = [*target.requirements(), *nox.project.dependency_groups(PYPROJECT, "tests")]
    wheel_stamp = [target.wheel.stat().st_size, target.wheel.stat().st_mtime] if target.wheel else []
    digest = hashlib.sha256(json.dumps([requirements, wheel_stamp]).encode()).hexdigest()
    stamp = env_dir / ".autograd-spec-installed"
    if not (stamp.exists() and stamp.read_text() == digest):
        session.log(f"building an environment for torch {target.version} in {env_dir}")
        try:
            session.run("python3", "-m", "venv", "--clear", str(env_dir), external=True)
            session.run(str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip", external=True, env=PIP_ENV)
            session.run(
                str(python), "-m", "pip", "install", "--progress-bar", "off", *requirements, external=True, env=PIP_ENV
            )
        except nox.command.CommandFailed:
            shutil.rmtree(env_dir, ignore_errors=True)
            session.error(
                f"installing torch {target.version} failed (pip's message above); its environment {env_dir} was removed"
            )
        stamp.write_text(digest)
    report_path = ROOT / "build" / "reports" / f"torch-{target.label}.json"
    try:
        # Exit status 1 means rules failed: that is the finding, written to the report, not an error.
        session.run(
            str(python),
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-n",
            "auto",
            "specs/test_rules.py",
            f"--spec-report={report_path}",
            f"--hypothesis-profile={_profile()}",
            external=True,
            success_codes=[0, 1],
            env=RUN_ENV,
        )
    finally:
        if not keep:
            shutil.rmtree(env_dir, ignore_errors=True)
    return report_path


def _request(session: nox.Session) -> releases.Request:
    try:
        return releases.parse_arguments(list(session.posargs), releases.index_releases)
    except releases.ReleaseError as error:
        session.error(str(error))


@nox.session(venv_backend="none")
def release(session: nox.Session) -> None:
    """Check a torch release or wheel: `nox -s release -- 2.15.0 --baseline 2.13.0`.

    The release may be a wheel file (a release candidate, a nightly, a local build):
    `nox -s release -- dist/torch-2.16.0a0-cp311-cp311-linux_x86_64.whl --baseline 2.15.0`; its
    version is read from the wheel.  Builds `.nox/torch-<version>` with that torch, runs every rule,
    writes `build/reports/torch-<version>.json`; with a baseline, also diffs the two reports into
    `build/diffs/` (text on the terminal, Markdown and HTML files).  The baseline is made like the
    new run: the committed report under `reports/` when it has the same profile and every rule,
    else a fresh run; the diff says which.
    """
    request = _request(session)
    new = _check(session, request.target)
    if request.baseline:
        from specs.reporting import report

        baseline = releases.choose_baseline(request.baseline, report.load(new), ROOT)
        session.log(f"baseline: {baseline.source}")
        old = baseline.path or _check(session, request.baseline)
        stem = ROOT / "build" / "diffs" / f"{request.baseline.label}-to-{request.target.label}"
        session.run(
            "python3",
            "-m",
            "specs.reporting.diff",
            str(old),
            str(new),
            f"--markdown={stem}.md",
            f"--html={stem}.html",
            f"--baseline-source={baseline.source}",
            external=True,
        )


@nox.session(venv_backend="none")
def matrix(session: nox.Session) -> None:
    """Run every release of the matrix (`specs.reporting.releases.MATRIX`) one after another.

    Resumable: a release whose report in build/reports is complete, of this profile and newer than
    every file under specs/ is skipped.  Each environment is deleted after its run, so the disk
    holds one torch at a time.  `nox -s matrix -- 2.0.1 2.1.2` runs only those releases.
    """
    wanted = list(session.posargs) or list(releases.MATRIX)
    unknown = [r for r in wanted if r not in releases.MATRIX]
    if unknown:
        session.error(f"not in the matrix: {', '.join(unknown)} (it has {', '.join(releases.MATRIX)})")
    started = time.monotonic()
    for number, release_text in enumerate(wanted, start=1):
        target = releases.Target(release_text)
        path = ROOT / "build" / "reports" / f"torch-{target.label}.json"
        if releases.report_is_current(path, _profile(), ROOT / "specs"):
            session.log(f"[{number}/{len(wanted)}] torch {release_text}: {path.name} is current, skipped")
            continue
        session.log(f"[{number}/{len(wanted)}] torch {release_text} ({time.monotonic() - started:.0f} s so far)")
        _check(session, target, keep=False)
    session.log(f"matrix done in {time.monotonic() - started:.0f} s; reports in {ROOT / 'build' / 'reports'}")


@nox.session
def mutants(session: nox.Session) -> None:
    """Run the rules under semantic mutants of torch (`specs/mutants.py`), each in a fresh process.

    Writes the table (mutant -> rules that caught it, kill rate, wall time) to build/mutants.json
    and copies it to reports/mutants.json, from which the docs page "What the spec catches" is
    built.  Two processes at a time; `nox -s mutants -- NAME ...` runs only those mutants (and
    leaves reports/ alone).
    """
    install(session, "tests")
    output = ROOT / "build" / "mutants.json"
    session.run(
        "python",
        "-m",
        "specs.mutants",
        "all",
        "--jobs=2",
        f"--output={output}",
        *session.posargs,
        env=RUN_ENV,
    )
    if not session.posargs:
        shutil.copyfile(output, ROOT / "reports" / "mutants.json")
        session.log("copied to reports/mutants.json")
