"""Model-based hierarchical agglomeration: mclust's default initialisation for EM.

mclust (Scrucca et al. 2016, "mclust 5", The R Journal 8/1) starts EM from an M-step on a
partition cut from a model-based agglomerative tree: by default ``hc()`` with the VVV criterion
(Banfield & Raftery 1993; Fraley 1998) on the "SVD" transformation of the data
(``mclust.options("hcUse")``), built on at most 2000 rows (``mclust.options("subset")``), and cut
at each number of clusters with ``hclass``. :func:`hc_tree` builds that tree once;
:meth:`HierarchicalTree.partition` and :meth:`HierarchicalTree.partitions` cut it for any number
of clusters, so one tree serves every ``n_components`` and covariance model of a selection grid.

The transformations (``use``), as mclust computes them (checked against ``attr(hc(X, use = u),
"data")`` in R):

* ``"SVD"`` (default): the columns are centred and scaled to unit standard deviation (``n - 1``
  denominator), constant columns are dropped, and the rows become ``U diag(sqrt(s))`` for the
  thin SVD ``U diag(s) V^T`` of that matrix: the principal components divided by the square root
  of their singular values. No component is dropped (``min(n, p)`` of them are kept).
* ``"VARS"``: the data as given.
* ``"STD"``: centred and scaled columns (constant columns dropped).
* ``"PCS"``: principal components of the centred data, ``U diag(s)`` (constant columns kept,
  as a component of zero variance).
* ``"PCR"``: principal components of the centred and scaled data (constant columns dropped).
* ``"SPH"``: sphered data, ``sqrt(n) U`` for the SVD of the centred data (constant columns
  dropped).

Each transformation equals R's to 1e-12 (up to the signs of the SVD's columns, which the VVV
criterion ignores). The trees equal R's merge for merge on the SVD transformation (every
reference set in tests/hc_reference). On the others they can differ: on large values ("VARS",
"PCS", "SPH" of data whose entries are ~10 or more) because R's ``hcVVV`` then departs from its
own criterion (see :mod:`fastgmm._kernels.hc`), and on data with many exact ties, such as
iris ("STD", "PCR"), because the last bits of the transformed values decide near-equal merges
and R's arithmetic for these transformations is not reproduced bit for bit.

mclust uses no tree for one-dimensional data (``Mclust`` starts from quantiles there);
:func:`hc_tree` still builds one, and it equals ``hc(matrix(x), "VVV", use = "SVD")``.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

import numpy as np

from ._jit import resolve_n_threads

__all__ = ["HierarchicalTree", "hc_tree", "transform_for_hc"]

USES = ("SVD", "VARS", "STD", "PCS", "PCR", "SPH")
# mclust's hcVVV(alpha = 1, beta = 1): the weights of the global and the per-cluster trace terms
# that keep the criterion finite for clusters of fewer than n_features + 1 rows.
ALPHA = 1.0
BETA = 1.0
# The tree keeps an n x n matrix of float64 merge costs: 7.2 GB at this size.
MAX_TREE_ROWS = 30_000


@dataclass(frozen=True)
class HierarchicalTree:
    """A model-based agglomerative tree, as built by :func:`hc_tree`.

    Attributes
    ----------
    rows : ndarray of shape (n_used,), int64
        The rows of the input that the tree was built on, ascending (all of them unless the
        input had more than ``max_rows`` rows).
    merges : ndarray of shape (n_used - 1, 2), int64
        The merge sequence. Step ``s`` merges the two clusters whose smallest members are
        ``rows[merges[s, 0]]`` and ``rows[merges[s, 1]]``, with ``merges[s, 0] < merges[s, 1]``
        (positions in ``rows``, 0-based); the union is then named by ``merges[s, 0]``. This is
        mclust's ``t(unclass(hc(...)))`` minus 1.
    increase : ndarray of shape (n_used - 1,)
        The increase of the VVV criterion at each merge.
    use : str
        The data transformation the tree was built on.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.hierarchical import hc_tree
    >>> X = np.array([[0.0, 0.0], [0.1, 0.2], [0.2, 0.1], [5.0, 5.0], [5.1, 5.3], [5.3, 5.1]])
    >>> tree = hc_tree(X)
    >>> tree.merges.shape
    (5, 2)
    >>> tree.partition(2)
    array([0, 0, 0, 1, 1, 1])
    """

    rows: np.ndarray
    merges: np.ndarray
    increase: np.ndarray
    use: str

    @property
    def n_rows(self) -> int:
        """Number of rows the tree was built on."""
        return int(self.rows.shape[0])

    def partition(self, n_components: int) -> np.ndarray:
        """Labels of the rows used (``rows``) when the tree is cut into ``n_components`` clusters.

        Parameters
        ----------
        n_components : int
            From 1 to ``n_rows``.

        Returns
        -------
        labels : ndarray of shape (n_used,), int64
            0-based cluster labels, numbered in the order of each cluster's first row.

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm.hierarchical import hc_tree
        >>> X = np.array([[0.0, 0.0], [0.1, 0.2], [0.2, 0.1], [5.0, 5.0], [5.1, 5.3]])
        >>> tree = hc_tree(X)
        >>> tree.partition(1)
        array([0, 0, 0, 0, 0])
        >>> tree.partition(5)
        array([0, 1, 2, 3, 4])
        """
        return self.partitions([n_components])[0]

    def partitions(self, n_components) -> np.ndarray:
        """Labels for several numbers of clusters at once (mclust's ``hclass(tree, G)``).

        Parameters
        ----------
        n_components : iterable of int
            Each from 1 to ``n_rows``.

        Returns
        -------
        labels : ndarray of shape (len(n_components), n_used), int64
            Row ``g`` holds the partition into ``n_components[g]`` clusters, labelled as in
            :meth:`partition`. Each partition refines the ones with fewer clusters.

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm.hierarchical import hc_tree
        >>> X = np.array([[0.0, 0.0], [0.1, 0.2], [0.2, 0.1], [5.0, 5.0], [5.1, 5.3], [9.0, 0.0]])
        >>> hc_tree(X).partitions([1, 2, 3])
        array([[0, 0, 0, 0, 0, 0],
               [0, 0, 0, 1, 1, 1],
               [0, 0, 0, 1, 1, 2]])
        """
        ks = _check_components(n_components, self.n_rows)
        n = self.n_rows
        out = np.empty((len(ks), n), dtype=np.int64)
        # Replay the merges once, in order, recording the partition at each requested count
        # (n - step clusters after `step` merges); union-find on the cluster names.
        wanted = {}
        for g, k in enumerate(ks):
            wanted.setdefault(n - k, []).append(g)
        parent = np.arange(n)
        for step in range(n):
            for g in wanted.get(step, ()):
                out[g] = _labels(parent)
            if step < n - 1:
                a, b = self.merges[step]
                parent[b] = a
        return out


def _labels(parent: np.ndarray) -> np.ndarray:
    """0-based labels from a union-find forest whose roots are the clusters' smallest rows."""
    roots = parent.copy()
    # Every merge points a larger name at a smaller one, so one pass in row order resolves all.
    for i in range(roots.shape[0]):
        roots[i] = roots[roots[i]]
    # A cluster first appears at its smallest row, its root: ranking the roots numbers the
    # clusters in order of first appearance.
    return np.searchsorted(np.unique(roots), roots).astype(np.int64)


def _check_components(n_components, n_rows: int) -> list[int]:
    if isinstance(n_components, Integral | np.integer):
        n_components = [n_components]
    ks = []
    for k in n_components:
        if not isinstance(k, Integral | np.integer) or isinstance(k, bool):
            raise TypeError(f"n_components must be integers; got {k!r}.")
        if not 1 <= k <= n_rows:
            raise ValueError(
                f"n_components must be between 1 and the number of rows the tree was built on "
                f"({n_rows}); got {k}."
            )
        ks.append(int(k))
    return ks


def transform_for_hc(X, use: str = "SVD") -> np.ndarray:
    """The data transformation mclust applies before hierarchical agglomeration.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Finite values.
    use : {"SVD", "VARS", "STD", "PCS", "PCR", "SPH"}
        See the module docstring.

    Returns
    -------
    Z : ndarray of shape (n_samples, n_columns), float64
        For "SVD", "PCR" and "SPH", ``n_columns = min(n_samples, n_varying)`` where
        ``n_varying`` counts the non-constant columns; "STD" keeps the ``n_varying`` columns,
        "PCS" ``min(n_samples, n_features)`` and "VARS" all of them.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.hierarchical import transform_for_hc
    >>> X = np.array([[1.0, 2.0, 7.0], [2.0, 1.0, 7.0], [4.0, 5.0, 7.0], [3.0, 3.0, 7.0]])
    >>> Z = transform_for_hc(X)  # the constant third column is dropped
    >>> Z.shape
    (4, 2)
    >>> np.round((Z**2).sum(axis=0), 6)  # the singular values of the standardised data
    array([2.344049, 0.710939])
    """
    if use not in USES:
        raise ValueError(f"use must be one of {USES}; got {use!r}.")
    X = np.asarray(X, dtype=np.float64)
    if use == "VARS":
        return np.array(X, dtype=np.float64, order="C")
    if use == "PCS":
        # Constant columns are kept: they give a component of (near) zero variance, as in R.
        centred = X - X.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        return _project(centred, vt.T)
    varying = X.max(axis=0) > X.min(axis=0)
    centred = X[:, varying] - X[:, varying].mean(axis=0)
    if use == "SPH":
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        return _project(centred, vt.T * (np.sqrt(X.shape[0]) / s))
    scaled = centred / centred.std(axis=0, ddof=1)
    if use == "STD":
        return np.ascontiguousarray(scaled)
    _, s, vt = np.linalg.svd(scaled, full_matrices=False)
    scale = 1.0 / np.sqrt(s) if use == "SVD" else np.ones_like(s)  # SVD or PCR
    return _project(scaled, vt.T * scale)


def _project(rows: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """``rows @ basis`` with equal rows mapped to bitwise-equal results.

    Duplicated rows must stay exact duplicates: their merge costs then tie exactly, as in R,
    and the tie rule decides. A BLAS product may round two equal rows differently (they can
    fall in different micro-kernel tiles), and so may the rows of ``U`` from the SVD.
    """
    unique, inverse = np.unique(rows, axis=0, return_inverse=True)
    return np.ascontiguousarray((unique @ basis)[inverse.reshape(-1)])


def hc_tree(
    X,
    *,
    use: str = "SVD",
    max_rows: int | None = 2000,
    random_state=None,
    n_jobs=None,
) -> HierarchicalTree:
    """Model-based agglomerative hierarchical clustering with mclust's default settings.

    Builds the tree that mclust's ``Mclust``/``mclustBIC`` start EM from: ``hc(X, modelName =
    "VVV", use = "SVD")`` on at most ``max_rows`` rows (a uniform sample without replacement
    beyond that). Every row starts as a cluster of its own and each step merges the two clusters
    whose union increases the regularised VVV criterion least (see
    :mod:`fastgmm._kernels.hc` for the criterion and the tie rule).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Finite values, at least 2 rows.
    use : {"SVD", "VARS", "STD", "PCS", "PCR", "SPH"}, default="SVD"
        Transformation applied to the rows used before agglomeration (see
        :func:`transform_for_hc`).
    max_rows : int or None, default=2000
        Largest number of rows to agglomerate; beyond it a uniform sample of ``max_rows`` rows is
        used (mclust's ``mclust.options("subset")``). ``None`` uses every row. Time grows as
        ``n^2 p^3`` and memory as ``8 n^2`` bytes (32 MB for 2000 rows); more than
        ``MAX_TREE_ROWS`` (30000, 7.2 GB) rows are refused.
    random_state : int, RandomState instance or None, default=None
        Draws the sample when ``n_samples > max_rows``. mclust draws with R's generator, so its
        sample (and hence its tree) cannot be reproduced exactly beyond 2000 rows.
    n_jobs : int or None, default=None
        Threads for the first pass over all pairs (``None``: all available, ``-1``: all). The
        result does not depend on it.

    Returns
    -------
    HierarchicalTree

    Raises
    ------
    ValueError
        If ``X`` is not 2-D, has fewer than 2 rows, holds NaN or infinity, if ``use`` or
        ``max_rows`` is invalid, or if the tree would have more than ``MAX_TREE_ROWS`` rows.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.hierarchical import hc_tree
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(0, 1, (30, 2)), rng.normal(6, 1, (20, 2))])
    >>> tree = hc_tree(X)
    >>> labels = tree.partition(2)
    >>> np.bincount(labels)
    array([30, 20])
    >>> tree.partitions(range(1, 4)).shape
    (3, 50)
    """
    from sklearn.utils import check_random_state
    from sklearn.utils.random import sample_without_replacement

    from ._kernels.hc import agglomerate
    from .validation import check_finite_rows

    if use not in USES:
        raise ValueError(f"use must be one of {USES}; got {use!r}.")
    if max_rows is not None and (
        not isinstance(max_rows, Integral | np.integer) or isinstance(max_rows, bool)
    ):
        raise TypeError(f"max_rows must be an integer >= 2 or None; got {max_rows!r}.")
    if max_rows is not None and max_rows < 2:
        raise ValueError(f"max_rows must be at least 2 (or None for every row); got {max_rows}.")
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array (rows, features); got {X.ndim} dimension(s).")
    if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
        raise ValueError(f"X must hold real numbers; got dtype {X.dtype}.")
    n_samples = X.shape[0]
    if n_samples < 2:
        raise ValueError(
            f"Hierarchical clustering needs at least 2 rows; got {n_samples}. "
            "With one row there is nothing to merge."
        )
    if X.shape[1] < 1:
        raise ValueError("X has no columns.")
    check_finite_rows(X)

    n_used = n_samples if max_rows is None else min(n_samples, max_rows)
    if n_used > MAX_TREE_ROWS:
        raise ValueError(
            f"A tree of {n_used} rows needs {8 * n_used**2 / 1e9:.0f} GB for its matrix of merge "
            f"costs; use max_rows <= {MAX_TREE_ROWS} (mclust agglomerates at most 2000 rows)."
        )
    if max_rows is not None and n_samples > max_rows:
        # O(max_rows) memory whatever n_samples ("auto" picks a set-based or reservoir method);
        # RandomState.choice(replace=False) would permute all n_samples indices.
        rows = sample_without_replacement(
            n_samples, max_rows, random_state=check_random_state(random_state)
        )
        rows = np.sort(rows).astype(np.int64)
    else:
        rows = np.arange(n_samples, dtype=np.int64)
    Z = transform_for_hc(X[rows], use)
    if Z.shape[1] == 0:
        raise ValueError(
            "Every column of X is constant on the rows used: there is nothing to cluster."
        )
    centred = Z - Z.mean(axis=0)
    omega = float(np.einsum("ij,ij->", centred, centred)) / (Z.shape[0] * Z.shape[1])
    if not omega > 0.0:
        raise ValueError("The rows used are all identical: there is nothing to cluster.")
    params = np.array([ALPHA * omega, BETA])
    merges, increase = agglomerate(Z, params, n_threads=resolve_n_threads(n_jobs))
    return HierarchicalTree(rows=rows, merges=merges, increase=increase, use=use)
