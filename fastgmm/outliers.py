"""Outlier detection with a Gaussian mixture's log-density.

:class:`GaussianMixtureOutlierDetector` fits a :class:`fastgmm.GaussianMixture` and flags the
rows whose log-density falls below a threshold, following scikit-learn's outlier detectors
(``IsolationForest``, ``EllipticEnvelope``): ``score_samples`` is the log-density (higher is more
normal), ``decision_function`` is ``score_samples - offset_`` (negative means outlier) and
``predict`` returns +1 for inliers and -1 for outliers.

The threshold
-------------
``contamination=c`` (a float in (0, 0.5]): ``offset_`` is the order statistic of the training
scores that ``numpy.quantile(scores, c, method="higher")`` returns, i.e. the
``ceil(c * (n - 1))``-th smallest score (0-based). Exactly the rows strictly below it are
flagged: ``ceil(c * (n - 1))`` training rows, which is ``c * n`` to within one row (fewer only when
scores tie at the threshold). On a streamed source the same value is found without holding the
``n`` scores in memory, by an exact radix selection (:func:`streamed_quantile`).

``contamination="auto"``: flag a row when its density is below the level that encloses 99% of
the fitted mixture's probability mass, i.e. ``offset_`` is the 1% quantile of ``log p(x)`` for
``x`` drawn from the fitted mixture. It is estimated by Monte Carlo from
``AUTO_N_SAMPLES = 100_000`` draws of ``mixture_.sample`` with the fixed seed ``AUTO_SEED = 0``,
so it does not depend on the training data beyond the fit, and about 1% of data that really
come from the fitted model are flagged.
"""

from __future__ import annotations

import copy
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from . import _marginal
from ._estimator import make_provider
from ._jit import holds_single_threaded_blas, resolve_n_threads
from ._names import COVARIANCE_TYPES, INIT_METHODS
from .covariance import get_model
from .criteria import DEFAULT_N_COMPONENTS
from .estep import score_chunk
from .missing import MISSING
from .mixture import GaussianMixture
from .selection import _select
from .sources import is_source_like
from .validation import check_n_samples, validate_rows

__all__ = [
    "AUTO_N_SAMPLES",
    "AUTO_SEED",
    "AUTO_TAIL_MASS",
    "GaussianMixtureOutlierDetector",
    "higher_quantile_rank",
    "streamed_quantile",
]

#: Probability mass of the fitted mixture left below the "auto" threshold.
AUTO_TAIL_MASS = 0.01
#: Monte Carlo draws from the fitted mixture for the "auto" threshold.
AUTO_N_SAMPLES = 100_000
#: Seed of those draws (fixed: the threshold is a function of the fitted model only).
AUTO_SEED = 0
#: Grid of numbers of components tried by ``n_components="bic"`` (capped by the row count).
BIC_GRID = DEFAULT_N_COMPONENTS
# Scores a streamed quantile may hold in memory (8 MB) in its final, exact step.
_SELECT_BUDGET = 1 << 20
# Bits of the sort key resolved per histogram pass (65,536 bins).
_DIGIT_BITS = 16
_SIGN_BIT = np.uint64(1 << 63)


def _observed_distances(X, holes, components, means, covariances, distances):
    """Mahalanobis distances of the rows with NaN over their observed entries, in place.

    One factorisation per (pattern, component) among those rows (:meth:`explain` is for a
    handful of rows, so plain NumPy).
    """
    incomplete = np.flatnonzero(holes.any(axis=1))
    patterns, which = np.unique(holes[incomplete], axis=0, return_inverse=True)
    for p, pattern in enumerate(patterns):
        observed = ~pattern
        for k in np.unique(components[incomplete[which.ravel() == p]]):
            rows = incomplete[(which.ravel() == p) & (components[incomplete] == k)]
            lower = np.linalg.cholesky(covariances[k][np.ix_(observed, observed)])
            diff = (X[np.ix_(rows, observed)] - means[k, observed]).T
            z = np.linalg.solve(lower, diff)
            distances[rows] = np.sqrt(np.einsum("ij,ij->j", z, z))


# ------------------------------------------------------------------------ exact quantiles
def higher_quantile_rank(n: int, q: float) -> int:
    """0-based rank of ``numpy.quantile(a, q, method="higher")`` in the sorted ``a`` of size n.

    The same floating-point expression as NumPy's, ``ceil((n - 1) * q)``, so both agree
    exactly.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.outliers import higher_quantile_rank
    >>> values = np.array([5.0, 1.0, 4.0, 2.0, 3.0])
    >>> rank = higher_quantile_rank(len(values), 0.3)
    >>> rank, bool(np.sort(values)[rank] == np.quantile(values, 0.3, method="higher"))
    (2, True)
    """
    rank = int(np.ceil(np.float64(n - 1) * np.float64(q)))
    return min(max(rank, 0), n - 1)


def _sort_keys(values: np.ndarray) -> np.ndarray:
    """Unsigned integers that sort like the float64 ``values`` (IEEE-754 sign-magnitude flip)."""
    bits = np.ascontiguousarray(values, dtype=np.float64).view(np.uint64)
    negative = (bits & _SIGN_BIT) != 0
    return np.where(negative, ~bits, bits | _SIGN_BIT)


def _key_value(key: np.uint64) -> float:
    bits = key ^ _SIGN_BIT if key & _SIGN_BIT else ~key
    return float(np.array([bits], dtype=np.uint64).view(np.float64)[0])


def streamed_quantile(passes, q: float, *, budget: int = _SELECT_BUDGET) -> float:
    """``numpy.quantile(all_values, q, method="higher")`` of values that arrive in chunks.

    Exact, with memory bounded by ``budget`` values plus a 65,536-bin histogram, whatever the
    number of values. The values are mapped to 64-bit keys that sort like them, and the key of
    the wanted order statistic is found digit by digit (radix selection):

    1. a pass builds the histogram of the top 16 key bits; the bin holding the wanted rank is
       known from the cumulative counts (the first pass also counts the values);
    2. when that bin holds at most ``budget`` values, one more pass collects them and
       ``numpy.partition`` selects the answer exactly; otherwise the next pass histograms the
       next 16 bits of the keys inside the bin, and so on (64-bit keys need at most four).

    Typical data take two passes: values in one 1/65,536 slice of the key range rarely exceed
    the budget unless there are more than a few hundred million of them.

    Parameters
    ----------
    passes : callable
        ``passes()`` returns a fresh iterable over the values, as 1-D float arrays, in the same
        order every time.
    q : float in [0, 1]
    budget : int
        Largest number of values held at once in the final step.

    Returns
    -------
    value : float

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.outliers import streamed_quantile
    >>> values = np.random.default_rng(0).normal(size=10_000)
    >>> chunks = lambda: np.array_split(values, 7)
    >>> bool(streamed_quantile(chunks, 0.01) == np.quantile(values, 0.01, method="higher"))
    True
    """
    n_bins = 1 << _DIGIT_BITS
    prefix = np.uint64(0)
    n_bits = 0  # leading key bits fixed so far
    rank = None
    n_candidates = None
    while True:
        if n_bits == 64:
            return _key_value(prefix)  # all remaining candidates are this one value
        if n_candidates is not None and n_candidates <= budget:
            kept = []
            for values in passes():
                keys = _sort_keys(values)
                match = (keys >> np.uint64(64 - n_bits)) == prefix
                kept.append(np.asarray(values, dtype=np.float64)[match])
            kept = np.concatenate(kept)
            if kept.size != n_candidates:
                raise ValueError(
                    "The values changed between passes: a streamed quantile needs the same "
                    "values on every pass."
                )
            return float(np.partition(kept, rank)[rank])
        shift = np.uint64(64 - n_bits - _DIGIT_BITS)
        hist = np.zeros(n_bins, dtype=np.int64)
        for values in passes():
            keys = _sort_keys(values)
            if n_bits:
                keys = keys[(keys >> np.uint64(64 - n_bits)) == prefix]
            digits = ((keys >> shift) & np.uint64(n_bins - 1)).astype(np.intp)
            hist += np.bincount(digits, minlength=n_bins)
        if rank is None:
            n_values = int(hist.sum())
            if n_values == 0:
                raise ValueError("Cannot take a quantile of no values.")
            rank = higher_quantile_rank(n_values, q)
        elif int(hist.sum()) != n_candidates:
            raise ValueError(
                "The values changed between passes: a streamed quantile needs the same "
                "values on every pass."
            )
        cumulative = np.cumsum(hist)
        digit = int(np.searchsorted(cumulative, rank, side="right"))
        rank -= int(cumulative[digit - 1]) if digit else 0
        n_candidates = int(hist[digit])
        prefix = (prefix << np.uint64(_DIGIT_BITS)) | np.uint64(digit)
        n_bits += _DIGIT_BITS


# ----------------------------------------------------------------------------- estimator
class GaussianMixtureOutlierDetector(OutlierMixin, BaseEstimator):
    """Unsupervised outlier detection by the log-density of a fitted Gaussian mixture.

    Parameters
    ----------
    n_components : int or "bic", default=1
        Components of the mixture; ``"bic"`` chooses among 1..10 (at most the number of rows)
        with :func:`fastgmm.select_model` and the given ``covariance_type``.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
    contamination : "auto" or float in (0, 0.5], default="auto"
        Proportion of training rows to flag (the threshold is the exact quantile of the
        training scores, see :mod:`fastgmm.outliers`); "auto" flags rows whose density is
        below the level enclosing 99% of the fitted mixture's mass.
    tol, reg_covar, max_iter, n_init, init_params, random_state, n_jobs
        As in :class:`fastgmm.GaussianMixture`.
    missing : {'raise', 'marginalize'}, default='raise'
        As in :class:`fastgmm.GaussianMixture`: with ``'marginalize'`` a NaN is a missing
        entry, and a row is scored by the marginal density of its observed entries (a density
        over fewer dimensions when entries are missing, which the one threshold does not
        correct for).

    Attributes
    ----------
    mixture_ : fastgmm.GaussianMixture
        The fitted mixture.
    offset_ : float
        ``decision_function = score_samples - offset_`` (scikit-learn's name).
    threshold_ : float
        The log-density below which a row is an outlier; equal to ``offset_``.
    selection_ : fastgmm.selection.SelectionResult or None
        The model selection, when ``n_components="bic"``.
    n_iter_ : int
        EM iterations of the mixture.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm import GaussianMixtureOutlierDetector
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(0, 1, (990, 2)), rng.uniform(-20, 20, (10, 2))])
    >>> det = GaussianMixtureOutlierDetector(contamination=0.01, random_state=0).fit(X)
    >>> labels = det.predict(X)
    >>> int((labels == -1).sum()), int((labels[990:] == -1).sum())
    (10, 10)
    >>> det.explain(X[990:992])["component"]
    array([0, 0])
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left"), StrOptions({"bic"})],
        "covariance_type": [StrOptions(set(COVARIANCE_TYPES))],
        "contamination": [StrOptions({"auto"}), Interval(Real, 0.0, 0.5, closed="right")],
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "reg_covar": [Interval(Real, 0.0, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "init_params": [StrOptions(set(INIT_METHODS))],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
        "missing": [StrOptions(set(MISSING))],
    }

    def __init__(
        self,
        n_components=1,
        *,
        covariance_type="full",
        contamination="auto",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        random_state=None,
        n_jobs=None,
        missing="raise",
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.contamination = contamination
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.missing = missing

    # --------------------------------------------------------------------------- fitting
    def fit(self, X, y=None):
        """Fit the mixture on ``X`` and set the threshold.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or a source for
            :func:`fastgmm.sources.open_source` (streamed: neither the rows nor their scores
            are held in memory)
        y : Ignored

        Returns
        -------
        self : GaussianMixtureOutlierDetector

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm import GaussianMixtureOutlierDetector
        >>> rng = np.random.default_rng(0)
        >>> X = np.vstack([rng.normal(0, 1, (198, 2)), [[8.0, 8.0], [-9.0, 7.0]]])  # 2 far rows
        >>> det = GaussianMixtureOutlierDetector(contamination=0.01, random_state=0).fit(X)
        >>> det.threshold_ == det.offset_, det.mixture_.n_components
        (True, 1)
        """
        self._fit(X)
        return self

    def fit_predict(self, X, y=None):
        """Fit on ``X`` and return its labels (+1 inlier, -1 outlier); in-memory ``X`` only.

        Equal to ``fit(X).predict(X)``, without scoring ``X`` twice.

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm import GaussianMixtureOutlierDetector
        >>> rng = np.random.default_rng(0)
        >>> X = np.vstack([rng.normal(0, 1, (198, 2)), [[8.0, 8.0], [-9.0, 7.0]]])  # 2 far rows
        >>> labels = GaussianMixtureOutlierDetector(contamination=0.01).fit_predict(X)
        >>> labels[-3:]
        array([ 1, -1, -1])
        """
        if is_source_like(X):
            raise TypeError(
                "fit_predict needs in-memory X (it returns one label per row); for a streamed "
                "source call fit(source), then predict on arrays."
            )
        scores = self._fit(X)
        return np.where(scores < self.offset_, -1, 1)

    @_fit_context(prefer_skip_nested_validation=True)
    @holds_single_threaded_blas
    def _fit(self, X):
        """Fit and set the threshold; return the training scores for in-memory ``X``."""
        provider = make_provider(self, X)
        self.selection_ = None
        self.mixture_ = self._fit_mixture(provider)
        self.n_iter_ = self.mixture_.n_iter_
        in_memory = provider.in_memory()
        scores = None if in_memory is None else self.mixture_.score_samples(in_memory[0])
        if self.contamination == "auto":
            offset = self._auto_offset()
        elif scores is None:
            offset = streamed_quantile(lambda: self._stream_scores(provider), self.contamination)
        else:
            offset = float(np.quantile(scores, self.contamination, method="higher"))
        self.offset_ = float(offset)
        self.threshold_ = self.offset_
        return scores

    def _fit_mixture(self, provider):
        """The mixture: one ``GaussianMixture`` run for a fixed K, model selection for 'bic'.

        Both run the one EM engine on the same provider, whatever holds the rows.
        """
        options = {
            "tol": self.tol,
            "reg_covar": self.reg_covar,
            "max_iter": self.max_iter,
            "init_params": self.init_params,
            "n_jobs": self.n_jobs,
            "n_init": self.n_init,
            "missing": self.missing,
        }
        n_samples = provider.count_rows()
        if self.n_components != "bic":
            check_n_samples(n_samples, self.n_components)
            mixture = GaussianMixture(
                self.n_components,
                covariance_type=self.covariance_type,
                random_state=self.random_state,
                **options,
            )
            mixture._fit_provider(provider)
            mixture.n_features_in_ = self.n_features_in_
            if hasattr(self, "feature_names_in_"):
                mixture.feature_names_in_ = self.feature_names_in_
            return mixture
        check_n_samples(n_samples, 1)
        result = _select(
            provider,
            grid=tuple(k for k in BIC_GRID if k <= n_samples),
            types=(self.covariance_type,),
            criterion="bic",
            random_state=self.random_state,
            settings_dict={**options, "on_degenerate": "raise"},
            feature_names=getattr(self, "feature_names_in_", None),
        )
        self.selection_ = result
        return result.best_estimator_

    def _stream_scores(self, provider):
        """Log-densities of the training rows, chunk by chunk (one pass, bounded memory)."""
        if hasattr(provider, "chunks"):
            layout = self.mixture_._inference_layout()
            n_threads = resolve_n_threads(self.n_jobs)
            score = _marginal.score_chunk if self.missing == "marginalize" else score_chunk
            for _, X, _ in provider.chunks():
                yield score(X, layout, n_threads=n_threads)[0]
            return
        # Dask: the lazy scores, one block at a time.
        scores = provider.score(self.mixture_)[0]
        for block in scores.to_delayed().ravel():
            yield np.asarray(block.compute())

    def _auto_offset(self) -> float:
        """The 1% quantile of log p(x) for x drawn from the fitted mixture (Monte Carlo)."""
        sampler = copy.copy(self.mixture_)
        sampler.random_state = AUTO_SEED
        draws, _ = sampler.sample(AUTO_N_SAMPLES)
        scores = self.mixture_.score_samples(draws)
        return float(np.quantile(scores, AUTO_TAIL_MASS, method="higher"))

    # ------------------------------------------------------------------------- inference
    def _validated(self, X):
        check_is_fitted(self)
        return validate_rows(self, X, reset=False, allow_nan=self.missing == "marginalize")

    def score_samples(self, X):
        """Log-density of each row under the mixture (higher is more normal).

        Returns
        -------
        scores : ndarray of shape (n_samples,)

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm import GaussianMixtureOutlierDetector
        >>> rng = np.random.default_rng(0)
        >>> X = np.vstack([rng.normal(0, 1, (198, 2)), [[8.0, 8.0], [-9.0, 7.0]]])  # 2 far rows
        >>> det = GaussianMixtureOutlierDetector(contamination=0.01, random_state=0).fit(X)
        >>> scores = det.score_samples(X)
        >>> bool(scores[-1] < det.threshold_ < scores[0])
        True
        """
        X = self._validated(X)
        return self.mixture_.score_samples(X)

    def decision_function(self, X):
        """``score_samples(X) - offset_``: negative for outliers.

        Returns
        -------
        decision : ndarray of shape (n_samples,)

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm import GaussianMixtureOutlierDetector
        >>> rng = np.random.default_rng(0)
        >>> X = np.vstack([rng.normal(0, 1, (198, 2)), [[8.0, 8.0], [-9.0, 7.0]]])  # 2 far rows
        >>> det = GaussianMixtureOutlierDetector(contamination=0.01, random_state=0).fit(X)
        >>> det.decision_function(X[-3:]) < 0
        array([False,  True,  True])
        """
        return self.score_samples(X) - self.offset_

    def predict(self, X):
        """+1 for inliers, -1 for outliers (``decision_function(X) < 0``).

        Returns
        -------
        labels : ndarray of shape (n_samples,)

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm import GaussianMixtureOutlierDetector
        >>> rng = np.random.default_rng(0)
        >>> X = np.vstack([rng.normal(0, 1, (198, 2)), [[8.0, 8.0], [-9.0, 7.0]]])  # 2 far rows
        >>> det = GaussianMixtureOutlierDetector(contamination=0.01, random_state=0).fit(X)
        >>> det.predict(X[-3:])
        array([ 1, -1, -1])
        """
        return np.where(self.decision_function(X) < 0, -1, 1)

    def explain(self, X):
        """Why each row scores as it does: its best component and its distance to it.

        The best-explaining component of a row is the one with the largest posterior
        probability (the mixture's ``predict``); the distance is the Mahalanobis distance to
        that component, ``sqrt(||(x - mu_k) U_k||^2)`` with ``U_k`` the Cholesky factor of its
        precision (``precisions_cholesky_``), i.e. ``sqrt((x - mu_k)^T Sigma_k^-1 (x - mu_k))``;
        for a row with missing entries, that of its observed entries ``o`` under the marginal
        ``N(mu_k,o, Sigma_k,oo)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        explanation : dict of ndarray, each of shape (n_samples,)
            ``"component"`` (int), ``"mahalanobis"`` (float), ``"score"`` (the log-density,
            as :meth:`score_samples`) and ``"is_outlier"`` (bool, as ``predict == -1``).
            ``pandas.DataFrame(explanation)`` makes a table.

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm import GaussianMixtureOutlierDetector
        >>> rng = np.random.default_rng(0)
        >>> X = np.vstack([rng.normal(0, 1, (198, 2)), [[8.0, 8.0], [-9.0, 7.0]]])  # 2 far rows
        >>> det = GaussianMixtureOutlierDetector(contamination=0.01, random_state=0).fit(X)
        >>> why = det.explain(X[-2:])
        >>> why["is_outlier"], why["mahalanobis"].round(1)
        (array([ True,  True]), array([8.7, 9. ]))
        """
        X = self._validated(X)
        mixture = self.mixture_
        components = mixture.predict(X)
        scores = mixture.score_samples(X)
        means = np.asarray(mixture.means_, dtype=np.float64)
        prec_chol = np.asarray(mixture.precisions_cholesky_, dtype=np.float64)
        ctype = mixture.covariance_type
        distances = np.empty(X.shape[0])
        for k in np.unique(components):
            rows = components == k
            diff = X[rows].astype(np.float64) - means[k]
            if ctype == "full":
                y = diff @ prec_chol[k]
            elif ctype == "tied":
                y = diff @ prec_chol
            else:  # diag (per-feature factors) and spherical (one factor)
                y = diff * prec_chol[k]
            distances[rows] = np.sqrt(np.einsum("ij,ij->i", y, y))
        holes = np.isnan(X)
        if holes.any():
            dense = get_model(ctype).dense(mixture.covariances_, *means.shape)
            _observed_distances(X, holes, components, means, dense, distances)
        return {
            "component": components,
            "mahalanobis": distances,
            "score": scores,
            "is_outlier": scores < self.offset_,
        }
