"""Sphinx configuration: the gallery (executed, asserted) and the pages generated from the registry."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
# torch's intra-op threads and sphinx do not mix well; the examples are tiny anyway.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(1)

project = "autograd-spec"
author = "the autograd-spec team"
copyright = "2026, the autograd-spec team"
release = f"rules checked against torch {torch.__version__}"

# specs.rendering.sphinx_ext writes the generated pages (catalogue, conformance matrix, benchmarks)
# and clears gallery output made with another torch, when the build starts.
# sphinx-mathjax-offline serves MathJax from _static, so pages render math without a network.
extensions = [
    "specs.rendering.sphinx_ext",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",
    "sphinx_gallery.gen_gallery",
    "sphinx_copybutton",
]
# The gallery's .py/.ipynb/.zip files are downloads (linked from each page), not source pages.
# sphinx-gallery's computation-time tables need jQuery and DataTables from a CDN: not written
# (see "write_computation_times" below), and a stale copy from an older build is not a page.
exclude_patterns = [
    "_build",
    "auto_gallery/*.ipynb",
    "auto_gallery/*.py",
    "auto_gallery/*.zip",
    "sg_execution_times.rst",
    "auto_gallery/sg_execution_times.rst",
]
html_theme = "furo"
html_title = "autograd-spec"
html_static_path = ["_static"]
html_favicon = "_static/favicon.svg"
html_css_files = ["custom.css"]
html_js_files = ["filter-tables.js"]
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
