"""Sessions: ``tests`` (the specification), ``docs`` (the site) and ``bench`` (timings).

The torch release is chosen with ``AUTOGRAD_SPEC_TORCH`` (default 2.13.0).  Environments are
reused between runs and re-installed only when what they need changes.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import nox

from specs.versions import DEFAULT_TORCH, UnknownVersion, check_release

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "venv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["tests"]

ROOT = Path(__file__).resolve().parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
TORCH_VARIABLE = "AUTOGRAD_SPEC_TORCH"


def torch_release(session: nox.Session) -> str:
    requested = os.environ.get(TORCH_VARIABLE, DEFAULT_TORCH)
    try:
        return check_release(requested)
    except UnknownVersion as error:
        session.error(f"{TORCH_VARIABLE}: {error}")


def install(session: nox.Session, group: str) -> str:
    """Install torch and a dependency group, skipping pip when nothing changed since last time."""
    release = torch_release(session)
    requirements = [f"torch=={release}", *nox.project.dependency_groups(PYPROJECT, group)]
    digest = hashlib.sha256(json.dumps(requirements).encode()).hexdigest()
    stamp = Path(session.virtualenv.location) / ".autograd-spec-installed"
    if stamp.exists() and stamp.read_text() == digest:
        session.log(f"environment up to date: {', '.join(requirements)}")
    else:
        session.install("--upgrade", "pip")
        session.install(*requirements)
        stamp.write_text(digest)
    return release


@nox.session
def tests(session: nox.Session) -> None:
    """Run every rule, every gallery script and the meta-tests; write the JSON report."""
    install(session, "tests")
    env = {"AUTOGRAD_SPEC_PROFILE": os.environ.get("AUTOGRAD_SPEC_PROFILE", "ci"), "OMP_NUM_THREADS": "1"}
    session.run("python", "-m", "pytest", *session.posargs, env=env)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the HTML documentation from clean, warnings as errors, into build/html."""
    install(session, "docs")
    for generated in ("build/html", "build/doctrees", "docs/auto_gallery", "docs/generated"):
        shutil.rmtree(ROOT / generated, ignore_errors=True)
    session.run("python", "-m", "sphinx", "-W", "--keep-going", "-b", "html",
                "-d", "build/doctrees", "docs", "build/html", *session.posargs,
                env={"OMP_NUM_THREADS": "1"})
    session.log(f"HTML written to {ROOT / 'build' / 'html' / 'index.html'}")


@nox.session
def bench(session: nox.Session) -> None:
    """Time the benchmarks with pytest-benchmark; results saved per torch release."""
    release = install(session, "bench")
    storage = ROOT / "build" / "benchmarks" / f"torch-{release}"
    session.run("python", "-m", "pytest", "tests/benchmarks", "--benchmark-enable", "--benchmark-only",
                "--benchmark-autosave", f"--benchmark-storage=file://{storage}",
                "--benchmark-columns=min,median,iqr,rounds", *session.posargs,
                env={"OMP_NUM_THREADS": "1", "AUTOGRAD_SPEC_PROFILE": "ci"})
