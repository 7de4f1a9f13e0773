"""Fits on data with missing entries (NaN): what the engine adds to marginalise them.

With ``missing='marginalize'`` a NaN is data, not an input error: EM integrates every missing
entry out, exactly (Ghahramani & Jordan 1994). The engine's pieces that do it:

* the requests of the fitter say ``missing=True``, and :func:`fastgmm.providers.evaluate` then
  computes a chunk's statistics with :func:`fastgmm._marginal.chunk_statistics`: complete rows
  through the usual kernels, rows that hold a NaN through :mod:`fastgmm._kernels.missing`
  (responsibilities from the observed entries' marginal density, expected statistics with the
  conditional covariance of the missing block). Every covariance model works through its
  layout and its statistics kind; the lower bound is the observed-data log-likelihood;
* :func:`survey` counts, in one pass before the fit, the rows that hold a NaN and the mean of
  each column's observed entries. A data set without NaN is then fitted exactly as with
  ``missing='raise'`` (the same computations, bit for bit);
* the initialisation (k-means on a sample, the assignment pass, random responsibilities, the
  regularised retries) runs on :class:`ImputedRows`: the same rows with each NaN replaced by its
  column's observed mean. It only has to give EM a start of the right scale; the EM iterations
  then work on the rows as they are.

Examples
--------
>>> import numpy as np
>>> from fastgmm import GaussianMixture
>>> rng = np.random.default_rng(0)
>>> X = np.vstack([rng.normal(0, 1, (200, 2)), rng.normal(6, 1, (200, 2))])
>>> X[rng.random(X.shape) < 0.2] = np.nan
>>> X[np.isnan(X).all(axis=1), 0] = 0.0  # a row needs at least one observed entry
>>> gm = GaussianMixture(2, missing="marginalize", random_state=0).fit(X)
>>> bool(np.allclose(np.sort(gm.means_[:, 0]), [0.0, 6.0], atol=0.2))
True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ._marginal import fill_missing, nan_rows
from .providers import StatsRequest

__all__ = ["MISSING", "ImputedRows", "Survey", "SurveyRequest", "for_initialisation", "survey"]

#: The accepted values of ``missing``.
MISSING = ("raise", "marginalize")


@dataclass
class Survey:
    """What one pass found about the missing entries of a data set (additive over chunks).

    Attributes
    ----------
    n_rows : int
        Rows seen.
    n_incomplete : int
        Rows with at least one NaN.
    n_missing : int
        NaN entries.
    sums, weights : ndarray of shape (n_features,)
        Per column, the weighted sum of the observed entries and the sum of their weights.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.missing import SurveyRequest
    >>> part = SurveyRequest().answer(np.array([[1.0, np.nan], [3.0, 4.0]]), np.empty(0), 0)
    >>> total = part + part
    >>> total.n_incomplete, total.column_means()
    (2, array([2., 4.]))
    """

    n_rows: int
    n_incomplete: int
    n_missing: int
    sums: np.ndarray
    weights: np.ndarray

    def __add__(self, other: Survey) -> Survey:
        return Survey(
            self.n_rows + other.n_rows,
            self.n_incomplete + other.n_incomplete,
            self.n_missing + other.n_missing,
            self.sums + other.sums,
            self.weights + other.weights,
        )

    def column_means(self) -> np.ndarray:
        """Each column's weighted mean of its observed entries (0 for a column with none)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            means = self.sums / self.weights
        return np.where(self.weights > 0, means, 0.0)


@dataclass(eq=False)
class SurveyRequest:
    """Ask a pass for the :class:`Survey` of the rows (a request that answers itself).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.missing import SurveyRequest
    >>> from fastgmm.providers import ArrayChunks
    >>> [found] = ArrayChunks(np.array([[1.0, np.nan], [3.0, 4.0]])).collect([SurveyRequest()])
    >>> found.n_rows, found.n_incomplete, found.n_missing
    (2, 1, 1)
    """

    seconds: float = 0.0

    def answer(self, X, sample_weight, offset, *, n_threads=None) -> Survey:
        """The survey of one chunk (``offset`` unused: nothing here depends on row numbers)."""
        n_samples, n_features = X.shape
        rows = nan_rows(X, n_threads=n_threads)
        sums = np.zeros(n_features)
        weights = np.zeros(n_features)
        n_missing = 0
        # Bounded pieces: the temporaries stay small for a large in-memory chunk.
        for start in range(0, n_samples, 1 << 16):
            piece = np.asarray(X[start : start + (1 << 16)], dtype=np.float64)
            observed = ~np.isnan(piece)
            if sample_weight.size:
                w = sample_weight[start : start + (1 << 16), None] * observed
            else:
                w = observed.astype(np.float64)
            sums += (np.where(observed, piece, 0.0) * w).sum(axis=0)
            weights += w.sum(axis=0)
            n_missing += int(observed.size - np.count_nonzero(observed))
        return Survey(n_samples, int(rows.size), n_missing, sums, weights)


def survey(provider, *, n_threads=None) -> Survey:
    """One pass over ``provider``'s rows: the :class:`Survey` of its missing entries.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.missing import survey
    >>> from fastgmm.providers import ArrayChunks
    >>> survey(ArrayChunks(np.array([[1.0, np.nan], [3.0, 4.0]]))).column_means()
    array([2., 4.])
    """
    [found] = provider.collect([SurveyRequest()], n_threads=n_threads)
    return found


class ImputedRows:
    """A provider's rows with each NaN replaced by a fixed value per column (for initialising).

    Statistics requests are answered on the filled rows (the request carries the values to the
    chunks, also on Dask workers); samples are filled; the rows are never "in memory", so that
    the initialisations that index an array draw from a sample instead.

    Parameters
    ----------
    provider : ChunkProvider
    fill : ndarray of shape (n_features,)

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.missing import ImputedRows
    >>> from fastgmm.providers import ArrayChunks
    >>> data = ImputedRows(ArrayChunks(np.array([[1.0, np.nan], [3.0, 4.0]])), np.array([2.0, 4.0]))
    >>> rows, _, _ = data.sample_rows(2, np.random.RandomState(0))
    >>> rows
    array([[1., 4.],
           [3., 4.]])
    """

    def __init__(self, provider, fill: np.ndarray):
        self.provider = provider
        self.fill = np.ascontiguousarray(fill, dtype=np.float64)
        self.n_features = provider.n_features
        self.dtype = provider.dtype

    @property
    def n_samples(self):
        return self.provider.n_samples

    def count_rows(self) -> int:
        return self.provider.count_rows()

    def collect(self, requests, *, n_threads=None) -> list:
        """Answer the requests on the filled rows, in one pass of the wrapped provider."""
        filled = [
            dataclasses.replace(r, fill=self.fill) if isinstance(r, StatsRequest) else r
            for r in requests
        ]
        results = self.provider.collect(filled, n_threads=n_threads)
        for request, sent in zip(requests, filled):
            if sent is not request:
                request.seconds += sent.seconds
        return results

    def sample_rows(self, size: int, random_state):
        rows, weights, numbers = self.provider.sample_rows(size, random_state)
        return fill_missing(rows, self.fill), weights, numbers

    def in_memory(self):
        return None

    def first_row(self) -> np.ndarray:
        """The first row, filled."""
        first = getattr(self.provider, "first_row", None)
        if first is not None:
            row = np.asarray(first(), dtype=np.float64)
        else:
            row = next(X[0] for _, X, _ in self.provider.chunks() if X.shape[0])
        return fill_missing(np.array(row, dtype=np.float64)[None], self.fill)[0]


def for_initialisation(provider, *, n_threads=None):
    """``(provider to initialise on, whether the rows hold NaN)``, after one :func:`survey`.

    The provider itself when no row holds a NaN (the fit is then the one of
    ``missing='raise'``), else :class:`ImputedRows` with the columns' observed means.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.missing import for_initialisation
    >>> from fastgmm.providers import ArrayChunks
    >>> data = ArrayChunks(np.array([[1.0, np.nan], [3.0, 4.0]]))
    >>> init, has_nan = for_initialisation(data)
    >>> type(init).__name__, has_nan
    ('ImputedRows', True)
    """
    found = survey(provider, n_threads=n_threads)
    if found.n_incomplete == 0:
        return provider, False
    return ImputedRows(provider, found.column_means()), True
