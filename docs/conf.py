"""Sphinx configuration: the gallery (executed, asserted) and the generated rule catalogue."""
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
# torch's intra-op threads and sphinx do not mix well; the examples are tiny anyway.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

import specs.bench as bench  # noqa: E402
from specs.reporting import catalogue, matrix  # noqa: E402

torch.set_num_threads(1)
catalogue.write(ROOT)
matrix.write(ROOT)
bench.write(ROOT)

# sphinx-gallery re-runs a script only when its md5 changed; what it printed and drew also
# depends on the torch release, so the gallery output is stamped with it and cleared when the
# release differs (every page is then re-run).
GALLERY_OUT = Path(__file__).resolve().parent / "auto_gallery"
_stamp = GALLERY_OUT / ".torch-version"
_runtime = f"torch {torch.__version__}, python {sys.version.split()[0]}"
if GALLERY_OUT.exists() and (not _stamp.exists() or _stamp.read_text() != _runtime):
    import shutil

    print(f"gallery output was built with {_stamp.read_text() if _stamp.exists() else 'an unknown torch'}; "
          f"re-running every page with {_runtime}")
    shutil.rmtree(GALLERY_OUT)
GALLERY_OUT.mkdir(exist_ok=True)
_stamp.write_text(_runtime)

project = "autograd-spec"
author = "the autograd-spec team"
copyright = "2026, the autograd-spec team"
release = f"rules checked against torch {torch.__version__}"

# sphinx-mathjax-offline serves MathJax from _static, so pages render math without a network.
extensions = ["sphinx.ext.mathjax", "sphinx-mathjax-offline", "sphinx_gallery.gen_gallery", "sphinx_copybutton"]
# The gallery's .py/.ipynb/.zip files are downloads (linked from each page), not source pages.
# sphinx-gallery's computation-time tables need jQuery and DataTables from a CDN: not written
# (see "write_computation_times" below), and a stale copy from an older build is not a page.
exclude_patterns = ["_build", "auto_gallery/*.ipynb", "auto_gallery/*.py", "auto_gallery/*.zip",
                    "sg_execution_times.rst", "auto_gallery/sg_execution_times.rst"]
html_theme = "furo"
html_title = "autograd-spec"
html_static_path = ["_static"]
html_favicon = "_static/favicon.svg"
html_css_files = ["custom.css"]
html_theme_options = {"navigation_with_keys": True}
# Copy buttons copy the code only, not prompts or printed output.
copybutton_exclude = ".linenos, .gp, .go"
copybutton_selector = "div.highlight pre"

sphinx_gallery_conf = {
    "examples_dirs": "../gallery",
    "gallery_dirs": "auto_gallery",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "reset_modules": ("matplotlib", "gallery_reset.reset_torch"),
    "abort_on_example_error": True,
    "remove_config_comments": True,
    "min_reported_time": 10,
    # Every page downloads as a script and as a notebook (links at the bottom of each page).
    "download_all_examples": True,
    "image_scrapers": ("matplotlib",),
    "write_computation_times": False,
    "show_signature": False,
    # Looking up the examples' variables reads attributes such as a non-leaf's .grad.
    "inspect_global_variables": False,
}
