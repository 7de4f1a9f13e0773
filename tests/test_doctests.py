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


def _public_api():
    """``fastgmm.__all__``, with the public methods each class defines itself."""
    for name in fastgmm.__all__:
        value = getattr(fastgmm, name)
        if not (inspect.isclass(value) or inspect.isfunction(value)):
            continue
        yield f"fastgmm.{name}", value


@pytest.mark.parametrize("qualname, obj", list(_public_api()), ids=lambda v: str(v))
def test_public_names_have_runnable_examples(qualname, obj):
    doc = inspect.getdoc(obj) or ""
    assert doc, f"{qualname} has no docstring"
    assert re.search(r"^Examples\n-{8}", doc, re.MULTILINE), f"{qualname}: no Examples section"
    examples = doctest.DocTestParser().get_examples(doc)
    assert examples, f"{qualname}: its Examples section has no >>> lines"
