"""Every public method of an asv benchmark class must carry an asv prefix.

asv runs only methods named ``time_*``, ``peakmem_*``, ``mem_*``, ``track_*`` or ``timeraw_*``; a
benchmark called ``fit_time`` is silently never run. Helpers must therefore be private (``_``)
or be asv's ``setup*``/``teardown*`` hooks.
"""

import importlib
import inspect
import sys
from pathlib import Path

import pytest

ASV_PREFIXES = ("time_", "peakmem_", "mem_", "track_", "timeraw_")
ALLOWED_PREFIXES = ("setup", "teardown", "_")
ASV_DIR = Path(__file__).resolve().parents[1] / "asv_bench"
MODULES = sorted(p.stem for p in (ASV_DIR / "benchmarks").glob("bench_*.py"))


def misnamed_methods(cls):
    """Names of ``cls``'s methods (inherited ones included) that asv would silently skip."""
    return sorted(
        name
        for name, _ in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith(ALLOWED_PREFIXES + ASV_PREFIXES)
    )


def benchmark_classes(module):
    """Classes defined in a benchmark module (imported names such as dataclasses excluded)."""
    return [
        obj
        for _, obj in inspect.getmembers(module, inspect.isclass)
        if obj.__module__ == module.__name__
    ]


@pytest.fixture(scope="module")
def import_benchmark():
    # asv imports the suite as the package "benchmarks" from asv_bench/; do the same.
    sys.path.insert(0, str(ASV_DIR))
    try:
        yield lambda name: importlib.import_module(f"benchmarks.{name}")
    finally:
        sys.path.remove(str(ASV_DIR))


def test_suite_has_benchmark_modules():
    assert "bench_fit" in MODULES


@pytest.mark.parametrize("module_name", MODULES)
def test_benchmark_methods_have_asv_prefixes(import_benchmark, module_name):
    module = import_benchmark(module_name)
    classes = benchmark_classes(module)
    assert classes, f"{module_name} defines no benchmark class"
    bad = {cls.__name__: misnamed_methods(cls) for cls in classes}
    bad = {name: methods for name, methods in bad.items() if methods}
    assert not bad, f"asv would silently skip these methods (rename with an asv prefix): {bad}"
    # Each class must contribute at least one benchmark, or it is dead code.
    for cls in classes:
        names = [n for n, _ in inspect.getmembers(cls, inspect.isfunction)]
        assert any(n.startswith(ASV_PREFIXES) for n in names), f"{cls.__name__} has no benchmark"


def test_checker_flags_a_misnamed_method():
    class Example:
        def setup(self):
            pass

        def setup_cache(self):
            pass

        def teardown(self):
            pass

        def _helper(self):
            pass

        def time_fit(self):
            pass

        def track_gflops(self):
            pass

        def fit_time(self):
            pass

        def peakmem_fit(self):
            pass

    assert misnamed_methods(Example) == ["fit_time"]
