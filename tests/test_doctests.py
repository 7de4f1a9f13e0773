"""The Examples sections of the docstrings run, in every fastgmm module.

CI runs plain ``pytest``, so instead of ``--doctest-modules`` this module builds a
``doctest.DocTestSuite`` for each module of the package (private ones included) and fails with
doctest's own report. Nothing is skipped: a ``+SKIP`` directive in the sources fails a test of
its own, and so does a public name without a runnable example.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import io
import pkgutil
import re
import unittest
from pathlib import Path

import pytest

import fastgmm

PACKAGE_DIR = Path(fastgmm.__file__).resolve().parent
MODULES = [
    "fastgmm",
    *sorted(info.name for info in pkgutil.walk_packages(fastgmm.__path__, prefix="fastgmm.")),
]
# Whitespace and "..." as numpydoc examples usually assume; every other doctest rule applies.
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def test_every_module_is_collected():
    """No module of the package escapes the doctest run (a new subpackage, say)."""
    names = set()
    for path in PACKAGE_DIR.rglob("*.py"):
        parts = path.relative_to(PACKAGE_DIR).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.add(".".join(("fastgmm", *parts)))
    assert names == set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    suite = doctest.DocTestSuite(module, optionflags=FLAGS)
    stream = io.StringIO()
    result = unittest.TextTestRunner(stream=stream, verbosity=0).run(suite)
    failures = "\n".join(text for _, text in result.failures + result.errors)
    assert result.wasSuccessful(), f"{name}: doctest failures\n{failures}"


def test_no_doctest_is_skipped():
    offenders = [
        f"{path.relative_to(PACKAGE_DIR.parent)}:{number}"
        for path in sorted(PACKAGE_DIR.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"doctest:.*\+SKIP", line)
    ]
    assert not offenders, f"skipped doctests: {offenders}"


def _defined_public(module):
    """A module's public functions and classes: its ``__all__``, or else what it defines."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [
            name
            for name, value in vars(module).items()
            if not name.startswith("_") and getattr(value, "__module__", None) == module.__name__
        ]
    for name in names:
        value = getattr(module, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            yield f"{module.__name__}.{name}", value


def _public_api():
    """Every public function and class of the public modules, and the public methods of the
    estimators and functions exported by ``fastgmm`` itself."""
    seen = set()
    public_modules = [m for m in MODULES if not any(p.startswith("_") for p in m.split("."))]
    for module_name in public_modules:
        for qualname, value in _defined_public(importlib.import_module(module_name)):
            if value not in seen:
                seen.add(value)
                yield qualname, value
    for name in fastgmm.__all__:
        value = getattr(fastgmm, name)
        if not inspect.isclass(value):
            continue
        for method_name, method in vars(value).items():
            if not method_name.startswith("_") and inspect.isfunction(method):
                yield f"fastgmm.{name}.{method_name}", method


PUBLIC_API = list(_public_api())


def test_public_api_is_found():
    from fastgmm.persistence import ModelFileError
    from fastgmm.stats import scatter

    found = [obj for _, obj in PUBLIC_API]
    expected = [
        fastgmm.GaussianMixture,
        fastgmm.GaussianMixture.predict_proba,
        fastgmm.select_model,
        fastgmm.GaussianMixtureOutlierDetector.explain,
        fastgmm.save,
        ModelFileError,
        scatter,
    ]
    assert all(any(obj is wanted for obj in found) for wanted in expected)


@pytest.mark.parametrize("qualname, obj", PUBLIC_API, ids=[q for q, _ in PUBLIC_API])
def test_public_names_have_runnable_examples(qualname, obj):
    doc = inspect.getdoc(obj) or ""
    assert doc, f"{qualname} has no docstring"
    assert re.search(r"^Examples\n-{8}", doc, re.MULTILINE), f"{qualname}: no Examples section"
    examples = doctest.DocTestParser().get_examples(doc)
    assert examples, f"{qualname}: its Examples section has no >>> lines"
