"""fastgmm: Gaussian mixture models for large data.

A scikit-learn compatible ``GaussianMixture`` whose EM runs in fused, parallel Numba kernels,
plus out-of-core sources, model selection, outlier detection, safe model files and a CLI.

Public names are imported on first use (PEP 562), so that ``import fastgmm`` and the command
line's ``--help`` do not pay for scikit-learn and Numba until they are needed.
"""

from importlib import import_module

__version__ = "0.1.0"

_PUBLIC = {
    "GaussianMixture": "fastgmm.mixture",
    "select_model": "fastgmm.selection",
    "GaussianMixtureIC": "fastgmm.selection",
    "GaussianMixtureOutlierDetector": "fastgmm.outliers",
    "save": "fastgmm.persistence",
    "load": "fastgmm.persistence",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'fastgmm' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
