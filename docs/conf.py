"""Sphinx configuration of fastgmm's documentation.

Build it with ``sphinx-build -W -b html docs docs/_build/html`` (README; tests/test_docs.py
runs the same command). The build is offline: the intersphinx inventories are files in
``docs/_intersphinx`` (see the README there for where each one comes from).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(ROOT))  # this checkout's fastgmm, also without an installed copy

import fastgmm_docs  # noqa: E402

import fastgmm  # noqa: E402

project = "fastgmm"
author = "the fastgmm developers"
copyright = "the fastgmm developers, BSD-3-Clause"
release = fastgmm.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "fastgmm_docs",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "_intersphinx", "_ext", "Thumbs.db", ".DS_Store"]
root_doc = "index"
default_role = "code"  # `text` in the guide is inline code, never a silent cross-reference

# Every cross-reference must resolve (a broken one fails the -W build).
nitpicky = True

# ---------------------------------------------------------------------------- API reference
fastgmm_docs.write_api_index(DOCS / "api" / "index.rst")
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"  # the numpydoc sections carry the types
toc_object_entries_show_parents = "hide"  # "fit()", not "GaussianMixture.fit()", in the TOC

numpydoc_show_class_members = False  # the class template lists the members itself
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = True
# Types in the numpydoc sections link when they are one of these names (or numpydoc's own
# aliases, such as array-like); any other word in a type ("of", "shape", "path") stays text.
numpydoc_xref_ignore = "all"
numpydoc_xref_aliases = {
    "ndarray": "numpy.ndarray",
    "dtype": "numpy.dtype",
    "Generator": "numpy.random.Generator",
    "RandomState": "numpy.random.RandomState",
    "int": "int",
    "float": "float",
    "str": "str",
    "bool": "bool",
    "dict": "dict",
    "list": "list",
    "tuple": "tuple",
    "callable": "callable",
    "PathLike": "os.PathLike",
    "os.PathLike": "os.PathLike",
    "Path": "pathlib.Path",
    "ConvergenceWarning": "sklearn.exceptions.ConvergenceWarning",
    "dask.array.Array": "dask.array.Array",
    "ChunkSource": "fastgmm.sources.ChunkSource",
    "SelectionResult": "fastgmm.selection.SelectionResult",
    "ModelFileError": "fastgmm.persistence.ModelFileError",
    "GaussianMixture": "fastgmm.GaussianMixture",
    "BayesianGaussianMixture": "fastgmm.BayesianGaussianMixture",
    "GaussianMixtureIC": "fastgmm.GaussianMixtureIC",
    "GaussianMixtureOutlierDetector": "fastgmm.GaussianMixtureOutlierDetector",
}
# numpydoc reports sections it does not know (GL06) or finds out of order (GL07).
numpydoc_validation_checks = {"GL06", "GL07"}

# -------------------------------------------------------------------------------- intersphinx
# No network on the build machines: every inventory is a file committed in docs/_intersphinx.
_INV = DOCS / "_intersphinx"
intersphinx_mapping = {
    "python": ("https://docs.python.org/3/", str(_INV / "python-3.11.inv")),
    "numpy": ("https://numpy.org/doc/stable/", str(_INV / "numpy.inv")),
    "sklearn": ("https://scikit-learn.org/stable/", str(_INV / "sklearn-1.2.1.inv")),
    "dask": ("https://docs.dask.org/en/stable/", str(_INV / "dask-2022.12.1.inv")),
    "distributed": (
        "https://distributed.dask.org/en/stable/",
        str(_INV / "distributed-2022.12.1.inv"),
    ),
}

# ------------------------------------------------------------------------------------ gallery
# The examples save PNGs (they draw on matplotlib.figure.Figure, without pyplot) into this
# folder; fastgmm_docs.png_scraper moves them into the gallery.
os.environ["FASTGMM_EXAMPLE_OUTDIR"] = tempfile.mkdtemp(prefix="fastgmm-gallery-")
os.environ.setdefault("MPLBACKEND", "Agg")

sphinx_gallery_conf = {
    "examples_dirs": [str(ROOT / "examples")],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r"/[^_/][^/]*\.py$",  # run every example (not only plot_*.py) ...
    "ignore_pattern": r"(^|/)_[^/]*\.py$",  # ... but not the helpers (_common.py)
    "image_scrapers": ("fastgmm_docs.png_scraper",),
    "reset_modules": ("fastgmm_docs.set_example_size",),
    "run_stale_examples": True,  # the gallery shows what this checkout's fastgmm prints
    "only_warn_on_example_error": False,
    "abort_on_example_error": False,
    "doc_module": ("fastgmm",),
    "backreferences_dir": "api/backrefs",
    "reference_url": {"fastgmm": None},
    "remove_config_comments": True,
    "download_all_examples": False,
    "within_subsection_order": "fastgmm_docs.ExampleOrder",
    "show_memory": False,
    "plot_gallery": "True",
}

# --------------------------------------------------------------------------------------- HTML
html_theme = "pydata_sphinx_theme"
html_title = f"fastgmm {release}"
html_static_path = ["_static"]
html_css_files = ["fastgmm.css"]
html_theme_options = {
    "logo": {"text": "fastgmm"},
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
# The theme logs a console error on a first visit unless the page names a colour mode.
html_context = {"default_mode": "light"}
# A site without an icon makes browsers ask for /favicon.ico, a 404 in the console.
html_favicon = "_static/favicon.png"
html_logo = "_static/favicon.png"
html_show_sourcelink = False
html_last_updated_fmt = None
