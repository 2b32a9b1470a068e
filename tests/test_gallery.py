"""Every gallery script runs under pytest too: the docs' examples are tests."""

import runpy
from pathlib import Path

import hypothesis
import pytest

from specs.rendering import demo

GALLERY = Path(__file__).resolve().parents[1] / "gallery"
SCRIPTS = sorted(GALLERY.glob("plot_*.py"))


def test_gallery_has_scripts():
    assert SCRIPTS, f"no gallery scripts found in {GALLERY}"


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_gallery_script(script, tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    # Every assert on the page runs; each law(...) call runs its rule on its explicit examples and
    # one generated example only, since specs/test_rules.py checks every rule in full.
    monkeypatch.setattr(demo, "DOCS_SETTINGS", hypothesis.settings(demo.DOCS_SETTINGS, max_examples=1))
    runpy.run_path(str(script), run_name="__main__")
