"""What every covariance model says about itself: the interface the engine calls.

A covariance model owns everything that depends on the parameterisation of the covariances and
nothing else: which statistics its M-step needs, the M-step itself, its number of free
parameters, the E-step layout of its parameters, and the shapes of its attributes. The EM loop,
the initialisation, the providers and the kernels are shared by all of them.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg
from scipy.linalg import lapack

from .._kernels.linalg import invert_lower_transposed
from ..errors import CovarianceOverflowError, IllDefinedCovarianceError
from ..stats import FULL, FactorLayout, MixtureParams, SharedLayout

__all__ = ["CovarianceModel", "cholesky_factors", "precisions_cholesky_of"]


class CovarianceModel:
    """Base class of the covariance models (see :mod:`fastgmm.covariance`).

    Subclasses set the class attributes and implement the methods that raise
    ``NotImplementedError`` here.

    Attributes
    ----------
    name : str
        The ``covariance_type`` that selects the model.
    statistics : int
        The smallest statistics kind its M-step needs: ``FULL`` (per-component matrices),
        ``DIAG`` (per-component diagonals) or ``POOLED`` (one matrix for all components).
    description : str
        One line for tables and ``--help``.

    Examples
    --------
    >>> from fastgmm.covariance import get_model
    >>> model = get_model("tied")
    >>> model.name, model.n_covariance_parameters(n_components=3, n_features=2)
    ('tied', 3)
    """

    name: str = ""
    statistics: int = FULL
    description: str = ""

    # ------------------------------------------------------------------------- counting
    def n_covariance_parameters(self, n_components: int, n_features: int) -> int:
        """Free parameters of the covariances alone."""
        raise NotImplementedError

    def n_parameters(self, n_components: int, n_features: int) -> int:
        """Free parameters of the mixture: weights (K - 1), means (K D) and covariances.

        Examples
        --------
        >>> from fastgmm.covariance import get_model
        >>> [get_model(t).n_parameters(3, 2) for t in ("full", "tied", "diag", "spherical")]
        [17, 11, 14, 11]
        """
        covariance = self.n_covariance_parameters(n_components, n_features)
        return int(covariance + n_features * n_components + n_components - 1)

    # --------------------------------------------------------------------------- shapes
    def covariance_shape(self, n_components: int, n_features: int) -> tuple:
        """Shape of ``covariances_`` (and of ``precisions_`` and ``precisions_cholesky_``)."""
        return (n_components, n_features, n_features)

    def dense(self, covariances: np.ndarray, n_components: int, n_features: int) -> np.ndarray:
        """Covariance matrices (K, D, D) from the attribute's shape."""
        return np.asarray(covariances, dtype=np.float64)

    def precisions(self, precisions_cholesky: np.ndarray) -> np.ndarray:
        """``precisions_`` from ``precisions_cholesky_`` (attribute shapes)."""
        return precisions_cholesky @ np.swapaxes(precisions_cholesky, -1, -2)

    def precisions_cholesky_from_precisions(self, precisions: np.ndarray) -> np.ndarray:
        """Upper Cholesky factors ``U`` with ``U U^T = precision`` (user-given precisions)."""
        return np.stack([np.flip(linalg.cholesky(np.flip(p), lower=True)) for p in precisions])

    def covariances_from_precisions_cholesky(self, precisions_cholesky: np.ndarray) -> np.ndarray:
        """Covariances implied by precision factors (when only precisions were given)."""
        eye = np.eye(precisions_cholesky.shape[-1])
        inverses = [linalg.solve_triangular(u, eye, lower=False) for u in precisions_cholesky]
        return np.stack([u_inv.T @ u_inv for u_inv in inverses])

    def check_precisions(self, precisions: np.ndarray, n_components: int, n_features: int):
        """Raise ``ValueError`` unless user-given precisions have the shape and are valid."""
        from ..validation import check_shape

        name = f"{self.name} precision"
        check_shape(precisions, self.covariance_shape(n_components, n_features), name)
        for matrix in precisions.reshape((-1, n_features, n_features)):
            if not (np.allclose(matrix, matrix.T) and np.all(np.linalg.eigvalsh(matrix) > 0.0)):
                raise ValueError(f"'{name}' should be symmetric, positive-definite")

    # --------------------------------------------------------------------------- M-step
    def estimate(self, nk, means, covariance, *, previous=None, prior=None):
        """The covariance part of the M-step.

        Parameters
        ----------
        nk : ndarray of shape (n_components,)
            Weighted counts (with scikit-learn's ``10 eps`` guard).
        means : ndarray of shape (n_components, n_features)
            The components' weighted data means.
        covariance : ndarray
            The regularised scatter divided by the counts, of the model's statistics kind (see
            :func:`fastgmm.stats.scatter`).
        previous : MixtureParams, optional
            The parameters entering this iteration (where iterative M-steps continue from).
        prior : optional
            A conjugate prior (models that support one).

        Returns
        -------
        means, covariances, precisions_cholesky, decomposition
            ``means`` as given (shrunk under a prior), the covariances and their precision
            factors in the attribute shapes, and the model's extra parameters (or None).

        Raises
        ------
        IllDefinedCovarianceError
            A covariance is not positive definite; ``components`` says which.
        """
        raise NotImplementedError

    # --------------------------------------------------------------------------- E-step
    def layout(self, params: MixtureParams):
        """The kernels' layout of ``params`` (:class:`FactorLayout` or :class:`SharedLayout`)."""
        raise NotImplementedError

    def sample(self, rng, means, covariances, counts):
        """Draws per component (``counts[k]`` rows), scikit-learn's way for its own types."""
        dense = self.dense(covariances, *means.shape)
        return [rng.multivariate_normal(m, c, int(n)) for m, c, n in zip(means, dense, counts)]

    def __repr__(self):
        return f"<covariance model {self.name!r}>"


def cholesky_factors(matrices: np.ndarray, *, shared: bool = False) -> np.ndarray:
    """Upper-triangular precision factors ``U_k`` (``U_k U_k^T = inv(matrices[k])``).

    The Cholesky factorisation stays with LAPACK, whose decision on what is positive definite
    scikit-learn's tests (and users' expectations) rely on; the triangular inverses are a Numba
    loop (see :mod:`fastgmm._kernels.linalg`).

    Raises
    ------
    IllDefinedCovarianceError
        Naming the components without a factor (None when ``shared``: one matrix for all).
    CovarianceOverflowError
        A matrix is not finite.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.covariance import cholesky_factors
    >>> cov = np.array([[[2.0, 1.0], [1.0, 2.0]]])
    >>> U = cholesky_factors(cov)[0]
    >>> bool(np.allclose(U @ U.T, np.linalg.inv(cov[0]))), bool(np.allclose(U, np.triu(U)))
    (True, True)
    """
    if not np.all(np.isfinite(matrices)):
        raise CovarianceOverflowError()
    lower = np.empty(matrices.shape)
    failed = []
    for k, matrix in enumerate(matrices):
        # LAPACK's potrf itself, as scipy.linalg.cholesky calls it (the same factor, bit for
        # bit) without its per-call checks: 3 components of 2 features took 0.14 ms each
        # through scipy.linalg.cholesky, a third of the Python time of an (a) iteration.
        factor, info = lapack.dpotrf(matrix, lower=1, clean=1)
        if info != 0:
            failed.append(k)
        else:
            lower[k] = factor
    if failed:
        raise IllDefinedCovarianceError(None if shared else failed)
    out = np.empty(matrices.shape)
    invert_lower_transposed(lower, out)
    return out


def precisions_cholesky_of(variances: np.ndarray, *, shared: bool = False) -> np.ndarray:
    """``1 / sqrt(variances)`` with the typed errors of :func:`cholesky_factors`.

    ``variances`` has one leading axis of components (a positive value is required everywhere).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.covariance import precisions_cholesky_of
    >>> precisions_cholesky_of(np.array([[4.0, 0.25]]))
    array([[0.5, 2. ]])
    """
    if not np.all(np.isfinite(variances)):
        raise CovarianceOverflowError()
    bad = ~(variances > 0.0)
    if bad.any():
        rows = bad.reshape(len(variances), -1).any(axis=1)
        raise IllDefinedCovarianceError(None if shared else np.flatnonzero(rows))
    return 1.0 / np.sqrt(variances)


def factor_layout(params: MixtureParams) -> FactorLayout:
    """The per-component factor layout of (K, D, D) precision factors."""
    return FactorLayout.build(params.weights, params.means, params.precisions_cholesky)


def diagonal_layout(params: MixtureParams, scales: np.ndarray) -> SharedLayout:
    """The identity-transform layout with per-component scales (K, D)."""
    return SharedLayout.diagonal(params.weights, params.means, scales)
