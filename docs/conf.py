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

from specs import catalogue, matrix  # noqa: E402

torch.set_num_threads(1)
catalogue.write(ROOT)
matrix.write(ROOT)

project = "autograd-spec"
author = "the autograd-spec team"
copyright = "2026, the autograd-spec team"
release = f"rules checked against torch {torch.__version__}"

extensions = ["sphinx.ext.mathjax", "sphinx_gallery.gen_gallery"]
exclude_patterns = ["_build", "auto_gallery/*.ipynb", "auto_gallery/*.py", "auto_gallery/*.zip"]
html_theme = "furo"
html_title = "autograd-spec"

sphinx_gallery_conf = {
    "examples_dirs": "../gallery",
    "gallery_dirs": "auto_gallery",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "reset_modules": ("matplotlib", "gallery_reset.reset_torch"),
    "abort_on_example_error": True,
    "remove_config_comments": True,
    "min_reported_time": 10,
    "show_signature": False,
    # Looking up the examples' variables reads attributes such as a non-leaf's .grad.
    "inspect_global_variables": False,
}
