"""Build helpers for fastgmm's documentation: the gallery's hooks and the API index.

sphinx-gallery takes its hooks as importable names (``"fastgmm_docs.png_scraper"``) rather than
function objects, so that Sphinx can pickle its configuration; they live here, on the path that
``conf.py`` sets up.

* The examples draw with ``matplotlib.figure.Figure`` (no pyplot, no global figure state), so
  sphinx-gallery's matplotlib scraper sees nothing. Each example writes its PNGs into
  ``FASTGMM_EXAMPLE_OUTDIR`` instead, and :func:`png_scraper` moves what appeared there into the
  gallery after each code block.
* Each example runs at the small size tests/test_examples.py runs it at (``SMALL_N`` in
  ``examples/_common.py``), set by :func:`set_example_size` before it starts.
* :func:`write_api_index` writes ``api/index.rst`` from ``fastgmm.__all__``, so a public name
  added later gets its page without anyone editing the docs.
* :func:`resolve_by_identity` resolves a docstring's reference to the *object* it names, wherever
  that object is documented. The public names are documented where users import them
  (``fastgmm.open_source``), while their docstrings, written in their own modules, say
  ``open_source`` or ``fastgmm.sources.open_source``. A reference to a fastgmm object that
  exists but has no page (an engine internal such as ``fastgmm.init.kmeans``) is shown as code
  without a link; a reference to a name that does not exist still fails the build.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import shutil
from pathlib import Path

from sphinx.util import logging
from sphinx.util.nodes import make_refnode
from sphinx_gallery.scrapers import figure_rst

logger = logging.getLogger(__name__)

DOCS = Path(__file__).resolve().parent.parent
EXAMPLES = DOCS.parent / "examples"


def _small_sizes():
    """``SMALL_N`` from ``examples/_common.py``, read without importing the examples' package."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "_fastgmm_examples_common", EXAMPLES / "_common.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.SMALL_N)


def set_example_size(gallery_conf, fname, when):
    """Before each example: its small size in ``FASTGMM_EXAMPLE_N``, and an empty PNG folder."""
    if fname is None:  # called once per gallery folder, before its examples
        return
    name = Path(fname).stem
    sizes = _small_sizes()
    if name not in sizes:
        raise RuntimeError(
            f"examples/{name}.py has no small size in SMALL_N (examples/_common.py): the gallery "
            "and tests/test_examples.py run every example at its small size"
        )
    os.environ["FASTGMM_EXAMPLE_N"] = str(sizes[name])
    outdir = Path(os.environ["FASTGMM_EXAMPLE_OUTDIR"])
    for stale in outdir.glob("*.png"):
        stale.unlink()


def png_scraper(block, block_vars, gallery_conf):
    """Move the PNGs an example wrote since the last block into the gallery, in order."""
    outdir = Path(os.environ["FASTGMM_EXAMPLE_OUTDIR"])
    pngs = sorted(outdir.glob("*.png"), key=lambda p: (p.stat().st_mtime_ns, p.name))
    image_paths = []
    iterator = block_vars["image_path_iterator"]
    for png in pngs:
        target = next(iterator)
        shutil.move(png, target)
        image_paths.append(target)
    return figure_rst(image_paths, gallery_conf["src_dir"])


# The gallery's order: the lesson first, then real data, then large data. An example missing
# here comes last, in alphabetical order.
GALLERY_ORDER = (
    "quickstart",
    "soft_clustering",
    "gmm_vs_kmeans",
    "choosing_k",
    "mclust_models",
    "bayesian_vs_em",
    "anomaly_detection",
    "density_and_sampling",
    "digits",
    "wine",
    "breast_cancer",
    "missing_values",
    "colour_segmentation",
    "out_of_core",
    "dask_cluster",
)


class ExampleOrder:
    """sphinx-gallery's ``within_subsection_order``: the examples in ``GALLERY_ORDER``."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        stem = Path(filename).stem
        rank = GALLERY_ORDER.index(stem) if stem in GALLERY_ORDER else len(GALLERY_ORDER)
        return (rank, stem)

    def __repr__(self):  # what sphinx-gallery records of the configuration
        return f"ExampleOrder({GALLERY_ORDER})"


def _kind(value):
    if inspect.isclass(value):
        return "class"
    if callable(value):
        return "function"
    return "data"


API_HEADER = """\
.. This file is written by docs/_ext/fastgmm_docs.py from fastgmm.__all__; do not edit it.

API reference
=============

Every public name of the ``fastgmm`` package, each on its own page with its parameters,
attributes, methods, a runnable example and the gallery examples that use it. The estimators
follow scikit-learn's API; :doc:`../guide/from_sklearn` lists what fastgmm adds.

"""

SECTIONS = {
    "class": "Estimators and classes",
    "function": "Functions",
    "data": "Module data",
}

SUPPORTING = """\
Objects these return or raise
-----------------------------

Not in ``fastgmm.__all__``, but handed to you by the names above, or their parameters.

.. autosummary::
   :toctree: generated
   :nosignatures:

   fastgmm.sources.ChunkSource
   fastgmm.selection.SelectionResult
   fastgmm.persistence.ModelFileError
   fastgmm.persistence.read_header
   fastgmm.degenerate.DegenerateComponentWarning
   fastgmm.covariance.MclustModel
   fastgmm.covariance.ConjugatePrior
   fastgmm.init.HierarchicalStart
   fastgmm.hierarchical.hc_tree
   fastgmm.hierarchical.HierarchicalTree
   fastgmm.noise.data_hypervolume
   fastgmm.errors.EmptyComponentError
"""


def write_api_index(path: Path) -> list[str]:
    """Write the API index for ``fastgmm.__all__`` into ``path``; return the names listed."""
    import fastgmm

    names = list(fastgmm.__all__)
    groups: dict[str, list[str]] = {kind: [] for kind in SECTIONS}
    for name in names:
        groups[_kind(getattr(fastgmm, name))].append(name)
    parts = [API_HEADER]
    for kind, title in SECTIONS.items():
        if not groups[kind]:
            continue
        parts.append(f"{title}\n{'-' * len(title)}\n\n")
        parts.append(".. autosummary::\n   :toctree: generated\n   :nosignatures:\n\n")
        parts.extend(f"   fastgmm.{name}\n" for name in groups[kind])
        parts.append("\n")
    parts.append(SUPPORTING)
    text = "".join(parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Rewrite only on change, so that Sphinx does not re-read an unchanged page.
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return names


# ------------------------------------------------------------------------ reference resolution
_MISSING = object()
_DOCUMENTED: dict = {}  # id(env) -> (number of objects, {id(object): documented fullname})


def _import(dotted: str):
    """The object a dotted name refers to (a module, then attributes), or ``_MISSING``."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            value = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        except Exception:  # a module that fails to import is not ours to diagnose here
            return _MISSING
        for attribute in parts[split:]:
            value = getattr(value, attribute, _MISSING)
            if value is _MISSING:
                return _MISSING
        return value
    return _MISSING


def _documented(env):
    """``id(object) -> fullname`` for every Python object documented in this build."""
    objects = env.get_domain("py").objects
    cache = _DOCUMENTED.get(id(env))
    if cache is None or cache[0] != len(objects):
        table = {}
        for fullname, entry in objects.items():
            if entry.aliased or not fullname.startswith("fastgmm"):
                continue
            value = _import(fullname)
            if value is not _MISSING:
                table.setdefault(id(value), fullname)
        cache = (len(objects), table)
        _DOCUMENTED.clear()
        _DOCUMENTED[id(env)] = cache
    return cache[1]


def _contexts(node):
    """Module and class paths a relative reference in ``node`` may be relative to."""
    contexts = []
    module, cls = node.get("py:module"), node.get("py:class")
    if module:
        if cls:
            contexts.append(f"{module}.{cls}")
        contexts.append(module)
    # The module that wrote the docstring: 'path:docstring of fastgmm.persistence.load'.
    match = re.search(r"docstring of ([\w.]+)", node.source or "")
    if match:
        parts = match.group(1).split(".")
        contexts.extend(".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1))
    return contexts


def resolve_by_identity(app, env, node, contnode):
    """``missing-reference`` handler: see the module's docstring."""
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip(".~")
    candidates = [target] + [f"{context}.{target}" for context in _contexts(node)]
    for candidate in candidates:
        if not candidate.startswith("fastgmm"):
            continue
        value = _import(candidate)
        if value is _MISSING:
            continue
        fullname = _documented(env).get(id(value))
        if fullname is None:
            logger.debug("[fastgmm] %s: no page; shown as code", candidate)
            return contnode
        entry = env.get_domain("py").objects[fullname]
        return make_refnode(
            app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, fullname
        )
    # No context to be relative to (an autosummary table's summary line): a name that one
    # documented fastgmm object ends with.
    objects = env.get_domain("py").objects
    matches = [
        name
        for name, entry in objects.items()
        if name.startswith("fastgmm") and name.endswith("." + target) and not entry.aliased
    ]
    if len(matches) == 1:
        entry = objects[matches[0]]
        return make_refnode(
            app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, matches[0]
        )
    return None


def skip_foreign_members(app, what, name, obj, skip, options):
    """Document only what fastgmm defines: not scikit-learn's inherited or generated methods
    (``set_params``, ``set_fit_request``...), whose docstrings link into scikit-learn's own
    pages and are documented there."""
    if skip or what != "class":
        return skip
    module = getattr(obj, "__module__", None) or getattr(
        getattr(obj, "fget", None), "__module__", None
    )
    if module is None or not module.startswith("fastgmm"):
        return True
    return None


def setup(app):
    app.connect("missing-reference", resolve_by_identity)
    app.connect("autodoc-skip-member", skip_foreign_members)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
