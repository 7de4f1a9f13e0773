"""Out-of-core fitting and scoring, and online (stepwise) EM, on the shared statistics core.

Nothing here runs its own EM loop. A streamed fit is the in-memory fit with another provider:
:class:`SourceChunks` gives the engine (:func:`fastgmm.em.run_em`,
:func:`fastgmm.init.initial_params`) the rows of a :class:`~fastgmm.sources.ChunkSource`, so
every EM iteration is one exact pass over the source and the initialisation reads the same
chunks. Given the same rows and ``random_state``, the streamed model equals the in-memory one:
bit for bit when the chunks are the same, and up to the rounding of differently ordered sums
otherwise (except for the starts that scikit-learn draws by indexing an array at random,
'k-means++' and 'random_from_data', which a stream draws from a uniform sample instead).

Three more pieces complete the out-of-core story:

* :func:`release_pages` keeps the resident memory of memory-mapped ``.npy`` files bounded.
  Pages of a file mapping that a process has touched count in its resident set size until they
  are unmapped, so a pass over a 100 GB ``.npy`` would otherwise end with 100 GB "resident".
  Chunks are copied out of the mapping and their pages are handed back with
  ``madvise(MADV_DONTNEED)``; they stay in the page cache, so the next pass still reads from RAM.
* :func:`score_into` writes per-row outputs chunk by chunk, into an array or a ``.npy`` file
  opened with :func:`numpy.lib.format.open_memmap`.
* :class:`OnlineEM` is the state behind ``GaussianMixture.partial_fit``: stepwise EM
  (Cappé & Moulines 2009; Liang & Klein 2009) on running per-row averages of the sufficient
  statistics.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator

import numpy as np

from . import _interrupts, _marginal
from .estep import score_chunk
from .providers import ChunkedProvider, evaluate
from .sources import ChunkSource, open_source, release_pages
from .stats import (
    DIAG,
    FULL,
    NOISE_LABEL,
    POOLED,
    MixtureParams,
    SufficientStats,
    symmetrise_upper,
)

__all__ = [
    "DEFAULT_LEARNING_DECAY",
    "DEFAULT_LEARNING_OFFSET",
    "OnlineEM",
    "SourceChunks",
    "blend",
    "mean_score",
    "normalised",
    "release_pages",
    "reshift",
    "score_into",
]

#: kappa in the step size ``(t + t0) ** -kappa`` of online EM (see :class:`OnlineEM`).
DEFAULT_LEARNING_DECAY = 0.6
#: t0 in the step size: the first update after the initialising chunk uses ``2 ** -κ``.
DEFAULT_LEARNING_OFFSET = 1.0

_NO_WEIGHTS = np.empty(0)
# Output name -> (dtype, has a component axis).
_OUTPUTS = {
    "score_samples": (np.dtype(np.float64), False),
    "predict_proba": (np.dtype(np.float64), True),
    "predict": (np.dtype(np.int64), False),
}


# ----------------------------------------------------------------------------- chunk provider
class SourceChunks(ChunkedProvider):
    """A :class:`~fastgmm.sources.ChunkSource` as a provider of the engine.

    It implements :class:`fastgmm.providers.ChunkProvider` without holding the rows: they are
    only ever seen one chunk at a time. The source reads the next chunk in a background thread
    while the kernels run on the current one, checks every chunk (columns, dtype, NaN/inf, with
    the chunk index and row offset in the message) and counts the rows of every pass, raising if
    a pass yields a different number of rows than the others.

    Parameters
    ----------
    source : ChunkSource or anything :func:`fastgmm.sources.open_source` accepts
    allow_nan : bool
        NaN is a missing entry, not an input error (``missing='marginalize'``): the chunks are
        then read from a copy of the source that lets NaN through (infinity, and rows whose
        every entry is NaN, are still refused).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.streaming import SourceChunks
    >>> data = SourceChunks(np.arange(10.0).reshape(5, 2))
    >>> [(offset, X.shape) for offset, X, _ in data.chunks()]
    [(0, (5, 2))]
    >>> data.n_samples, data.n_features
    (5, 2)
    """

    def __init__(self, source, *, allow_nan=False):
        self.source = source if isinstance(source, ChunkSource) else open_source(source)
        if allow_nan and not self.source.allow_nan:
            self.source = copy.copy(self.source)  # the caller's source keeps refusing NaN
            self.source.allow_nan = True
        self.n_features = self.source.n_features
        self.dtype = self.source.dtype
        # Streams carry no sample weights: the kernels read an empty array as unit weights.
        self.sample_weight = _NO_WEIGHTS

    @property
    def n_samples(self) -> int | None:
        """Rows of the source; None for CSV files and callables until a pass has counted them."""
        return self.source.n_samples

    def count_rows(self) -> int:
        """The number of rows, with one (validating) pass if the source does not know it yet."""
        if self.source.n_samples is None:
            for _ in self.source.iter_chunks():
                pass
        return self.source.n_samples

    def first_row(self) -> np.ndarray:
        """The first row (read without a whole pass)."""
        for _, chunk in self.source.iter_chunks(prefetch=False):
            if chunk.shape[0]:
                return np.array(chunk[0])
        return np.zeros(self.n_features)

    def chunks(self) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Yield ``(row_offset, X_chunk, empty_weights)`` for every row once, in order.

        A chunk is a writable C-contiguous array: the source copies read-only chunks (views of
        a memory-mapped file) in its reader thread and releases their pages
        (``iter_chunks(writable=True)``), so the copy overlaps the kernel's work on the previous
        chunk. Writable chunks also keep a single compiled signature per dtype, because Numba
        types read-only arrays separately.
        """
        for offset, chunk in self.source.iter_chunks(prefetch=True, writable=True):
            _interrupts.check()  # a dropped command-line signal stops a long pass here
            yield offset, chunk, _NO_WEIGHTS


# ------------------------------------------------------------------------------------ scoring
def score_into(data, layout, what: str, out=None, *, n_threads=None, missing=False):
    """Per-row outputs of a fitted mixture, computed chunk by chunk.

    Parameters
    ----------
    data : ArrayChunks or SourceChunks
    layout : FactorLayout or SharedLayout
        The fitted parameters, laid out for the kernels (``model.layout(params)``).
    what : {'score_samples', 'predict_proba', 'predict'}
    out : None, str, os.PathLike or ndarray
        None returns a new array. A path creates (or overwrites) a ``.npy`` file with
        :func:`numpy.lib.format.open_memmap` and fills it chunk by chunk, releasing the written
        pages as it goes, so the output of a 1e8-row source never sits in memory. An array of
        the right shape is filled in place (its dtype must hold the values: ``same_kind``
        casting).
    missing : bool
        Rows may hold NaN, marginalised out (the outputs of their observed entries).

    Returns
    -------
    ndarray or numpy.memmap
        ``out`` itself when it was an array, the memory map of the file when it was a path.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.estep import chunk_statistics
    >>> from fastgmm.providers import ArrayChunks
    >>> from fastgmm.stats import DIAG, SharedLayout
    >>> X = np.array([[0.0, 0.0], [0.2, 0.1], [5.0, 5.0], [5.2, 4.9]])
    >>> means = np.array([[0.0, 0.0], [5.0, 5.0]])
    >>> layout = SharedLayout.diagonal(np.array([0.5, 0.5]), means, np.ones((2, 2)))
    >>> from fastgmm.streaming import score_into
    >>> score_into(ArrayChunks(X), layout, "predict")
    array([0, 0, 1, 1])
    >>> out = np.empty(4)
    >>> score_into(ArrayChunks(X), layout, "score_samples", out) is out
    True
    """
    dtype, per_component = _OUTPUTS[what]
    n_components = layout.n_components
    n_samples = data.n_samples
    if n_samples is None and out is not None:
        n_samples = data.count_rows()  # the output's shape must be known before writing
    trailing = (n_components,) if per_component else ()
    dest = _destination(out, n_samples, trailing, dtype, what)
    # Kernel outputs go straight into the destination when its memory has the kernel's layout;
    # otherwise into scratch buffers that are then copied (and cast).
    target = None if dest is None else np.asarray(dest)
    direct = target is not None and target.dtype == dtype and target.flags.c_contiguous
    file_backed = isinstance(out, (str, os.PathLike))
    parts = []
    scratch = {}
    n_written = 0
    for start, X, _ in data.chunks():
        n_rows = X.shape[0]
        stop = start + n_rows
        if dest is not None and stop > len(dest):
            raise ValueError(
                f"the data yielded more rows than the {len(dest)} expected (chunk at row "
                f"offset {start}); a source must produce the same rows on every pass"
            )
        result = _score_one(
            X, layout, what, target[start:stop] if direct else None, scratch, n_threads, missing
        )
        if dest is None:
            parts.append(result.copy())
        else:
            if not direct:
                target[start:stop] = result
            if file_backed:
                release_pages(target[start:stop])
        n_written += n_rows
    if dest is None:
        return np.concatenate(parts)
    if n_written != len(dest):
        raise ValueError(
            f"the data yielded {n_written} rows but the output has {len(dest)}; a source must "
            "produce the same rows on every pass"
        )
    if isinstance(dest, np.memmap):
        dest.flush()
    return dest


def _score_one(X, layout, what, direct, scratch, n_threads, missing=False):
    """One chunk's output, written into ``direct`` if given, else into reused scratch arrays."""
    n_rows = X.shape[0]
    n_components = layout.n_components
    if scratch.get("rows", 0) < n_rows:
        scratch["rows"] = n_rows
        scratch["lse"] = np.empty(n_rows)
        scratch["resp"] = np.empty((n_rows, n_components)) if what == "predict_proba" else None
        scratch["labels"] = np.empty(n_rows, dtype=np.int64) if what == "predict" else None
    lse = direct if what == "score_samples" and direct is not None else scratch["lse"][:n_rows]
    resp = labels = None
    if what == "predict_proba":
        resp = direct if direct is not None else scratch["resp"][:n_rows]
    elif what == "predict":
        labels = direct if direct is not None else scratch["labels"][:n_rows]
    score = _marginal.score_chunk if missing else score_chunk
    score(X, layout, n_threads=n_threads, out_lse=lse, out_resp=resp, out_labels=labels)
    if labels is not None and layout.noise:
        labels[labels == n_components - 1] = NOISE_LABEL
    return {"score_samples": lse, "predict_proba": resp, "predict": labels}[what]


def _destination(out, n_samples, trailing, dtype, what):
    """The array that receives the output (None: collect the chunks and concatenate)."""
    shape = None if n_samples is None else (n_samples, *trailing)
    if out is None:
        return None if shape is None else np.empty(shape, dtype=dtype)
    if isinstance(out, (str, os.PathLike)):
        path = os.fspath(out)
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"cannot write {what} output to {path!r}: no such directory")
        return np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    if not isinstance(out, np.ndarray):
        raise TypeError(
            f"out must be None, a path to a .npy file or a numpy array, got {type(out).__name__}"
        )
    if out.shape != shape:
        raise ValueError(f"out has shape {out.shape}, but {what} needs an array of shape {shape}")
    if not np.can_cast(dtype, out.dtype, casting="same_kind"):
        raise TypeError(
            f"out has dtype {out.dtype}, which cannot hold the {dtype} values of {what} "
            "(same_kind casting)"
        )
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    return out


def mean_score(data, layout, *, n_threads=None, missing=False) -> tuple[float, int]:
    """Mean per-row log-likelihood and the number of rows, in one pass and O(chunk) memory.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.estep import chunk_statistics
    >>> from fastgmm.providers import ArrayChunks
    >>> from fastgmm.stats import DIAG, SharedLayout
    >>> X = np.array([[0.0, 0.0], [0.2, 0.1], [5.0, 5.0], [5.2, 4.9]])
    >>> means = np.array([[0.0, 0.0], [5.0, 5.0]])
    >>> layout = SharedLayout.diagonal(np.array([0.5, 0.5]), means, np.ones((2, 2)))
    >>> from fastgmm.streaming import mean_score, score_into
    >>> mean, n_rows = mean_score(ArrayChunks(X), layout)
    >>> n_rows, bool(np.isclose(mean, score_into(ArrayChunks(X), layout,
    ...                                           "score_samples").mean()))
    (4, True)
    """
    total = 0.0
    n_rows = 0
    scratch = {}
    for _, X, _ in data.chunks():
        scores = _score_one(X, layout, "score_samples", None, scratch, n_threads, missing)
        total += float(np.sum(scores))
        n_rows += X.shape[0]
    return total / n_rows, n_rows


# --------------------------------------------------------------------------------- online EM
def normalised(stats: SufficientStats) -> SufficientStats:
    """Per-unit-weight statistics (``nk / W``, ``s1 / W``, ``s2 / W``, mean log-likelihood).

    Full and tied second moments are symmetrised, because :func:`reshift` adds terms to both
    triangles while the kernels fill only the upper one.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.estep import chunk_statistics
    >>> from fastgmm.providers import ArrayChunks
    >>> from fastgmm.stats import DIAG, SharedLayout
    >>> X = np.array([[0.0, 0.0], [0.2, 0.1], [5.0, 5.0], [5.2, 4.9]])
    >>> means = np.array([[0.0, 0.0], [5.0, 5.0]])
    >>> layout = SharedLayout.diagonal(np.array([0.5, 0.5]), means, np.ones((2, 2)))
    >>> from fastgmm.streaming import normalised
    >>> stats = chunk_statistics(X, np.empty(0), layout, means, DIAG)
    >>> unit = normalised(stats)
    >>> unit.nk.round(6), unit.weight_sum
    (array([0.5, 0.5]), 1.0)
    """
    total = stats.weight_sum
    if not total > 0:
        raise ValueError("The chunk's sample weights sum to zero: it carries no information.")
    s2 = stats.s2 / total
    if stats.kind in (FULL, POOLED):
        s2 = symmetrise_upper(s2)
    return SufficientStats(
        stats.nk / total,
        stats.s1 / total,
        s2,
        stats.kind,
        stats.shift,
        stats.log_lik / total,
        1.0,
        stats.n_rows,
        stats.log_max_resp / total,
        stats.entropy / total,
    )


def reshift(stats: SufficientStats, shift: np.ndarray) -> SufficientStats:
    """The same statistics taken about another origin ``shift`` (exact up to rounding).

    With ``delta = old_shift - shift`` (per component) and ``x - shift = (x - old) + delta``::

        s1' = s1 + nk delta
        s2' = s2 + s1 delta^T + delta s1^T + nk delta delta^T      (FULL; POOLED: summed over k)
        s2' = s2 + 2 delta s1 + nk delta**2                        (DIAG)

    Statistics about different shifts cannot be added; this makes them addable. Full and pooled
    second moments come back as whole symmetric matrices.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.estep import chunk_statistics
    >>> from fastgmm.providers import ArrayChunks
    >>> from fastgmm.stats import DIAG, SharedLayout
    >>> X = np.array([[0.0, 0.0], [0.2, 0.1], [5.0, 5.0], [5.2, 4.9]])
    >>> means = np.array([[0.0, 0.0], [5.0, 5.0]])
    >>> layout = SharedLayout.diagonal(np.array([0.5, 0.5]), means, np.ones((2, 2)))
    >>> from fastgmm.streaming import reshift
    >>> stats = chunk_statistics(X, np.empty(0), layout, means, DIAG)
    >>> about_origin = reshift(stats, np.zeros((2, 2)))
    >>> (about_origin.s1 / about_origin.nk[:, None]).round(6)  # the means, about 0
    array([[0.1 , 0.05],
           [5.1 , 4.95]])
    """
    shift = np.ascontiguousarray(shift, dtype=np.float64)
    delta = stats.shift - shift
    nk, s1 = stats.nk, stats.s1
    if stats.kind == DIAG:
        s2 = stats.s2 + (2.0 * delta * s1 + nk[:, None] * delta**2)[:, None, :]
    else:
        cross = s1[:, :, None] * delta[:, None, :]
        terms = (
            cross
            + np.swapaxes(cross, 1, 2)
            + nk[:, None, None] * delta[:, :, None] * delta[:, None, :]
        )
        if stats.kind == POOLED:
            terms = terms.sum(axis=0, keepdims=True)
        s2 = symmetrise_upper(stats.s2) + terms
    return SufficientStats(
        nk.copy(),
        s1 + nk[:, None] * delta,
        s2,
        stats.kind,
        shift,
        stats.log_lik,
        stats.weight_sum,
        stats.n_rows,
        stats.log_max_resp,
        stats.entropy,
    )


def blend(running: SufficientStats, new: SufficientStats, step: float) -> SufficientStats:
    """``(1 - step) * running + step * new`` for normalised statistics about the same shift.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.estep import chunk_statistics
    >>> from fastgmm.providers import ArrayChunks
    >>> from fastgmm.stats import DIAG, SharedLayout
    >>> X = np.array([[0.0, 0.0], [0.2, 0.1], [5.0, 5.0], [5.2, 4.9]])
    >>> means = np.array([[0.0, 0.0], [5.0, 5.0]])
    >>> layout = SharedLayout.diagonal(np.array([0.5, 0.5]), means, np.ones((2, 2)))
    >>> from fastgmm.streaming import blend, normalised
    >>> first = normalised(chunk_statistics(X[:2], np.empty(0), layout, means,
    ...                                     DIAG))
    >>> second = normalised(chunk_statistics(X[2:], np.empty(0), layout, means,
    ...                                      DIAG))
    >>> blend(first, second, 0.5).nk.round(6)  # half of each chunk's weight shares
    array([0.5, 0.5])
    """
    if not np.array_equal(running.shift, new.shift) or running.kind != new.kind:
        raise ValueError("Cannot blend statistics taken about different shifts or kinds.")
    keep = 1.0 - step
    return SufficientStats(
        keep * running.nk + step * new.nk,
        keep * running.s1 + step * new.s1,
        keep * running.s2 + step * new.s2,
        new.kind,
        new.shift,
        keep * running.log_lik + step * new.log_lik,
        1.0,
        running.n_rows + new.n_rows,
        keep * running.log_max_resp + step * new.log_max_resp,
        keep * running.entropy + step * new.entropy,
    )


class OnlineEM:
    """Stepwise EM state: running averages of the sufficient statistics, and the parameters.

    Each chunk ``t`` runs the fused E-step under the current parameters, giving its per-row
    statistics ``s_t`` (:func:`normalised`); the running statistics become
    ``s <- (1 - gamma_t) s + gamma_t s_t`` and the M-step turns them into new parameters
    (the online EM of Cappé & Moulines 2009, with a mini-batch per step as in the stepwise EM of
    Liang & Klein 2009). The chunk that starts the state is taken whole (``gamma_0 = 1``); the
    ``t``-th chunk after it uses ``gamma_t = (t + t0) ** -kappa``.

    Defaults: any ``kappa`` in (0.5, 1] satisfies the step-size conditions of Cappé & Moulines
    (``sum gamma = inf``, ``sum gamma^2 < inf``). ``kappa = 0.6`` sits near the fast end of that
    range: the early statistics, computed under poor parameters, are forgotten quickly, while
    the averaging over chunks still damps their noise (Liang & Klein report values between 0.5
    and 0.7 working best with mini-batches of this size). ``t0 = 1`` gives
    ``gamma_1 = 2 ** -kappa``, Liang & Klein's ``(k + 2) ** -alpha`` at their first update, so
    the initialising chunk keeps about a third of the weight after the next one instead of
    being discarded. Larger ``t0`` damps the first steps further, for small, noisy chunks.

    The running statistics are re-shifted exactly (:func:`reshift`) to the origin of each new
    chunk's statistics (near the current means) before the blend, so they stay numerically
    well-conditioned however far the data lie from the origin.

    This is approximate: the result depends on the order and size of the chunks, and on
    stationary data it approaches the batch EM solution as chunks accumulate rather than
    reaching it exactly.

    Parameters
    ----------
    params : MixtureParams
        Starting parameters (float64).
    fitter : fastgmm.em.MaximumLikelihood or another fitter
        Says what the E-step computes and runs the M-step.
    learning_decay : float
        kappa, in (0.5, 1].
    learning_offset : float
        t0, >= 0.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.covariance import get_model
    >>> from fastgmm.em import MaximumLikelihood
    >>> from fastgmm.stats import MixtureParams
    >>> from fastgmm.streaming import OnlineEM
    >>> start = MixtureParams(np.array([0.5, 0.5]), np.array([[1.0, 1.0], [4.0, 4.0]]),
    ...                       np.ones((2, 2)), np.ones((2, 2)), "diag")
    >>> online = OnlineEM(start, MaximumLikelihood(get_model("diag"), reg_covar=1e-6))
    >>> rng = np.random.default_rng(0)
    >>> for _ in range(10):  # ten chunks of a stream, each seen once
    ...     chunk = np.vstack([rng.normal(0, 1, (50, 2)), rng.normal(5, 1, (50, 2))])
    ...     _ = online.update(chunk, np.empty(0))
    >>> online.n_rows, online.n_updates
    (1000, 9)
    >>> bool(np.abs(online.params.means - [[0, 0], [5, 5]]).max() < 0.3)
    True
    """

    def __init__(
        self,
        params: MixtureParams,
        fitter,
        *,
        learning_decay=DEFAULT_LEARNING_DECAY,
        learning_offset=DEFAULT_LEARNING_OFFSET,
    ):
        self.params = params
        self.fitter = fitter
        self.learning_decay = float(learning_decay)
        self.learning_offset = float(learning_offset)
        self.stats: SufficientStats | None = None
        self.n_updates = 0  # chunks blended in after the initialising one
        self.lower_bounds: list[float] = []

    def step_size(self, t: int) -> float:
        """``gamma_t`` for the ``t``-th chunk after the initialising one (t >= 1)."""
        return float((t + self.learning_offset) ** -self.learning_decay)

    @property
    def n_rows(self) -> int:
        """Rows seen so far."""
        return 0 if self.stats is None else self.stats.n_rows

    def update(self, X, sample_weight, *, n_threads=None) -> float:
        """Absorb one chunk: E-step, blend, M-step.

        Parameters
        ----------
        X : ndarray of shape (n_rows, n_features), float32 or float64, C-contiguous, finite
        sample_weight : ndarray of shape (n_rows,), float64, or an empty array for unit weights

        Returns
        -------
        float
            The chunk's mean log-likelihood under the parameters before the update.
        """
        params = self.params
        request = self.fitter.request(params)
        chunk = evaluate(request, X, sample_weight, 0, n_threads=n_threads)
        # The kernel may take the moments about another origin (the feature-map kernel uses the
        # centre of the means); ``chunk.shift`` says which, and the running statistics follow it.
        chunk = normalised(chunk)
        if not np.isfinite(chunk.log_lik):
            raise ValueError(
                "The log-likelihood of the chunk is not finite under the current model; the "
                "chunk holds values too large for float64 or far outside the fitted mixture."
            )
        if self.stats is None:
            running = chunk
        else:
            self.n_updates += 1
            step = self.step_size(self.n_updates)
            running = blend(reshift(self.stats, chunk.shift), chunk, step)
        self.params = self.fitter.m_step(running, params)
        self.stats = running
        self.lower_bounds.append(chunk.log_lik)
        return chunk.log_lik
