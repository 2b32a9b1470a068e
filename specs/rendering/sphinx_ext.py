"""A Sphinx extension that writes the docs' generated pages when a build starts.

Listed in ``docs/conf.py``'s ``extensions``; importing the configuration writes nothing.  When the
builder is ready (``builder-inited``), it first clears the gallery's output if it was executed with
another torch release, then calls each function of :data:`GENERATED_PAGES` with the project root.
A new generated page is one more function appended there.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the extension runs under Sphinx; the rest of specs/ does not need it installed
    from sphinx.application import Sphinx


def _catalogue(root: Path) -> object:
    from specs.reporting import catalogue

    return catalogue.write(root)


def _matrix(root: Path) -> object:
    from specs.reporting import matrix

    return matrix.write(root)


def _benchmarks(root: Path) -> object:
    import specs.bench

    return specs.bench.write(root)


def _coverage(root: Path) -> object:
    from specs.reporting import coverage

    return coverage.write(root)


def _mutants(root: Path) -> object:
    from specs.reporting import mutants_page

    return mutants_page.write(root)


def _edges(root: Path) -> object:
    from specs.atlas import edges

    return edges.write(root)


#: Functions that write a generated page (reStructuredText under ``docs/``) given the project root.
GENERATED_PAGES: list[Callable[[Path], object]] = [_catalogue, _matrix, _benchmarks, _coverage, _mutants, _edges]


def runtime() -> str:
    """What the gallery's output depends on besides its scripts: the torch and Python releases."""
    import torch

    return f"torch {torch.__version__}, python {sys.version.split()[0]}"


def stamp_gallery(app: Sphinx) -> None:
    """Clear the gallery output when it was executed with another torch (every page then re-runs).

    sphinx-gallery re-runs a script only when its md5 changed, but what a page printed and drew
    also depends on the torch release; so the output is stamped with the release that made it.
    """
    out = Path(app.confdir) / app.config.autograd_spec_gallery_out
    stamp = out / ".torch-version"
    now = runtime()
    if out.exists() and (not stamp.exists() or stamp.read_text() != now):
        from sphinx.util import logging

        logging.getLogger(__name__).info(
            f"gallery output was built with {stamp.read_text() if stamp.exists() else 'an unknown torch'}; "
            f"re-running every page with {now}"
        )
        shutil.rmtree(out)
    out.mkdir(exist_ok=True)
    stamp.write_text(now)


def write_generated_pages(app: Sphinx) -> None:
    root = Path(app.config.autograd_spec_root or Path(app.confdir).parent)
    for page in GENERATED_PAGES:
        page(root)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("autograd_spec_root", None, "env")
    app.add_config_value("autograd_spec_gallery_out", "auto_gallery", "env")
    # Before sphinx-gallery's own builder-inited handler (priority 500) looks at its output folder.
    app.connect("builder-inited", stamp_gallery, priority=100)
    app.connect("builder-inited", write_generated_pages, priority=100)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
