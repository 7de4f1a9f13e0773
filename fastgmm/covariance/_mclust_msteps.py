"""The M-steps of mclust's fourteen covariance models, in plain NumPy.

Every component's covariance is written Σ_k = λ_k D_k A_k D_kᵀ: a volume λ_k (mclust's
``scale``, det(Σ_k)^(1/d)), a diagonal shape A_k with det 1, and an orthogonal orientation
D_k. The three letters of a model's name say whether volume, shape and orientation are Equal
across the components, Variable, or the Identity (Banfield & Raftery 1993; Celeux & Govaert
1995, "Gaussian parsimonious clustering models", Pattern Recognition 28:781-793).

Given the weighted counts n_k, the weighted means x̄_k and the scatter matrices
W_k = Σ_i r_ik (x_i - x̄_k)(x_i - x̄_k)ᵀ, each model's M-step maximises
-1/2 Σ_k [n_k log|Σ_k| + tr(W_k Σ_k⁻¹)] (Celeux & Govaert 1995, section 3), or the log posterior
under mclust's conjugate prior (Fraley & Raftery 2007, "Bayesian regularization for normal
mixture estimation and model-based clustering", J. Classification 24:155-181):

======  ===========  =========================================================================
model   statistics   M-step
======  ===========  =========================================================================
EII     pooled       λ = tr(W)/(n d), W = Σ_k W_k
VII     diag         λ_k = tr(W_k)/(n_k d)
EEI     pooled       B = diag(W): λ = |B|^(1/d)/n, A = B/|B|^(1/d)
VEI     diag         iterative: λ_k = tr(W_k A⁻¹)/(n_k d), A ∝ diag(Σ_k W_k/λ_k)
EVI     diag         B_k = diag(W_k): A_k = B_k/|B_k|^(1/d), λ = Σ_k |B_k|^(1/d)/n
VVI     diag         Σ_k = diag(W_k)/n_k
EEE     pooled       Σ = W/n
VEE     full         iterative: λ_k = tr(W_k C⁻¹)/(n_k d), C ∝ Σ_k W_k/λ_k, |C| = 1
EVE     full         iterative (MM for D, Browne & McNicholas 2014), A_k and λ in closed form
VVE     full         iterative (MM for D), λ_k A_k = diag(Dᵀ W_k D)/n_k
EEV     full         W_k = L_k Ω_k L_kᵀ: D_k = L_k, A ∝ Σ_k Ω_k, λ = |Σ_k Ω_k|^(1/d)/n
VEV     full         iterative: D_k = L_k, λ_k = tr(Ω_k A⁻¹)/(n_k d), A ∝ Σ_k Ω_k/λ_k
EVV     full         Σ_k = λ W_k/|W_k|^(1/d), λ = Σ_k |W_k|^(1/d)/n
VVV     full         Σ_k = W_k/n_k
======  ===========  =========================================================================

"statistics" is the smallest kind of scatter a model needs (:data:`SCATTER_KIND`): 'pooled'
the one (d, d) sum Σ_k W_k (EII uses its trace, EEI its diagonal), 'diag' the (K, d) diagonals
of the W_k, 'full' the (K, d, d) W_k. :func:`m_step` also accepts a richer kind than the one
declared and reduces it.

The iterative M-steps alternate exact updates of one group of parameters given the others, so
every step lowers the objective; they start from ``previous`` (the last EM iteration's
estimate, as mclust continues from the current one) and stop when the largest relative change of
a parameter falls below ``tol`` (mclust's ``emControl()$tol[2]``, sqrt(machine epsilon)) or after
``max_iter`` steps (``emControl()$itmax[2]``, .Machine$integer.max).

Measured against R (tests/mclust_reference): mclust's inner loops stop earlier than this rule,
consistent with a test on the objective rather than on the parameters (from a cold start, R's
VEE covariances are up to 6.8e-4 and its EVE ones up to 6.2e-3 from the optimum when it reports
convergence); the EM's fixed points are the same, and an EM with these M-steps reproduces
``mclustBIC``'s tables to 4e-9. The orientation update below converges linearly and slowly when
the W_k are ill-conditioned: a cold-start EVE step on the 10-dimensional reference set takes
500-2500 iterations (up to 1.3 s in NumPy); warm starts inside EM need a few.

For EVE and VVE the common orientation D minimises f(D) = Σ_k tr(Dᵀ W_k D M_k) with M_k the
diagonal (λ_k A_k)⁻¹ over orthogonal D. Following Browne & McNicholas (2014, "Estimating common
principal components in high dimensions", ADAC 8:217-226) it is updated by two
majorise-minimise steps, each the polar factor of a matrix: f is the quadratic form of
M_k ⊗ W_k in vec(D), and on orthogonal matrices both tr(D M_k Dᵀ) = tr(M_k) and
tr(Dᵀ W_k D) = tr(W_k) are constant, so bounding M_k ⊗ W_k by α_k (M_k ⊗ I) (α_k the largest
eigenvalue of W_k), or by ω_k (I ⊗ W_k) (ω_k the largest entry of M_k), leaves a surrogate
linear in D, minimised by the polar factor of Σ_k (α_k D M_k - W_k D M_k), respectively of
Σ_k (ω_k W_k D - W_k D M_k).

Conventions (mclust's where it has one): shapes of the diagonal models in coordinate order;
the eigen-decompositions (EEE, VEE, EEV, VEV, EVV, VVV) in decreasing order of the shape, each
eigenvector signed so that its entry of largest magnitude is positive; EVE and VVE start from the
coordinate axes (as mclust does) and their columns keep the order and signs the iterations give.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._names import MCLUST_MODELS

#: mclust's fourteen model names, in mclust's order (``mclust.options("emModelNames")``).
MODELS = MCLUST_MODELS

#: The smallest statistics each model's M-step needs: 'pooled' is one (d, d) sum of the
#: scatter matrices, 'diag' their (K, d) diagonals, 'full' the (K, d, d) matrices.
SCATTER_KIND = {
    "EII": "pooled",
    "VII": "diag",
    "EEI": "pooled",
    "VEI": "diag",
    "EVI": "diag",
    "VVI": "diag",
    "EEE": "pooled",
    "VEE": "full",
    "EVE": "full",
    "VVE": "full",
    "EEV": "full",
    "VEV": "full",
    "EVV": "full",
    "VVV": "full",
}

#: Models whose M-step iterates (mclust's inner loop, ``emControl()$tol[2]``).
ITERATIVE_MODELS = frozenset({"VEI", "VEE", "EVE", "VVE", "VEV"})

#: Models with one orientation for every component (identity for the diagonal ones): their
#: E-step can use one shared transform and per-component diagonal scales.
SHARED_FORM_MODELS = frozenset(m for m in MODELS if m[2] in "IE")

#: Models that mclust fits under its conjugate prior (``defaultPrior``'s documentation: "only 10
#: out of 14 models", those of mclust up to version 4.4; R's ``mclustBIC`` leaves the others out
#: of the table when given a prior, and its ``mstep`` returns zeros for them).
PRIOR_MODELS = frozenset({"EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "EEV", "VEV", "VVV"})

#: mclust's ``emControl()$tol[2]``: the inner iterations' relative tolerance.
DEFAULT_TOL = math.sqrt(np.finfo(np.float64).eps)
#: mclust's ``emControl()$itmax[2]`` (.Machine$integer.max): the tolerance decides.
DEFAULT_MAX_ITER = 2**31 - 1
#: A covariance whose smallest variance (eigenvalue) is at most this fraction of its largest is
#: singular: mclust's ``emControl()$eps``, the machine epsilon.
SINGULARITY_EPS = float(np.finfo(np.float64).eps)


class DegenerateMStepError(ValueError):
    """An M-step that has no valid answer: a component without weight, or a singular covariance.

    Attributes
    ----------
    model : str
        The covariance model.
    components : tuple of int
        The components concerned (all of them when the equal part of a model failed).
    reason : str
        What went wrong, in words.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.covariance._mclust_msteps import DegenerateMStepError, m_step
    >>> nk = np.array([5.0, 1.0])
    >>> xbar = np.zeros((2, 2))
    >>> scatter = np.array([np.eye(2), np.zeros((2, 2))])  # component 1: one point
    >>> try:
    ...     m_step("VVV", nk, xbar, scatter)
    ... except DegenerateMStepError as error:
    ...     print(error.components)
    (1,)
    """

    def __init__(self, model: str, components, reason: str):
        self.model = model
        self.components = tuple(int(k) for k in components)
        self.reason = reason
        super().__init__(
            f"the {model} M-step failed for component(s) {list(self.components)}: {reason}. "
            "Try fewer components, a more constrained covariance model, or a prior."
        )


@dataclass(frozen=True, eq=False)
class Decomposition:
    """Σ_k = volumes[k] · orientations[k] @ diag(shapes[k]) @ orientations[k].T.

    Attributes
    ----------
    model : str
        The mclust model name.
    volumes : ndarray of shape (K,)
        λ_k = det(Σ_k)^(1/d) (mclust's ``scale``).
    shapes : ndarray of shape (K, d)
        The diagonal of A_k, with product 1 for each component.
    orientations : ndarray of shape (K, d, d)
        Orthogonal D_k (the identity for the diagonal models), equal across components where the
        model says so.
    n_iter : int
        Inner iterations the M-step used (0 for a closed form).
    converged : bool
        False if an iterative M-step stopped at ``max_iter`` before its tolerance.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.covariance._mclust_msteps import m_step
    >>> nk = np.array([10.0, 30.0])
    >>> xbar = np.zeros((2, 2))
    >>> scatter = np.array([[[40.0, 0.0], [0.0, 10.0]], [[30.0, 0.0], [0.0, 120.0]]])
    >>> means, dec = m_step("VVI", nk, xbar, np.einsum("kdd->kd", scatter))
    >>> dec.covariances()[1]
    array([[1., 0.],
           [0., 4.]])
    >>> dec.volumes, dec.shapes.prod(axis=1)
    (array([2., 2.]), array([1., 1.]))
    """

    model: str
    volumes: np.ndarray
    shapes: np.ndarray
    orientations: np.ndarray
    n_iter: int = 0
    converged: bool = True

    def variances(self) -> np.ndarray:
        """The eigenvalues λ_k a_kj of each covariance, shape (K, d), in the shapes' order.

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm.covariance._mclust_msteps import Decomposition
        >>> dec = Decomposition("VII", np.array([2.0]), np.ones((1, 2)), np.eye(2)[None])
        >>> dec.variances()
        array([[2., 2.]])
        """
        return self.volumes[:, None] * self.shapes

    def covariances(self) -> np.ndarray:
        """The covariance matrices, shape (K, d, d).

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm.covariance._mclust_msteps import Decomposition
        >>> c, s = np.cos(0.3), np.sin(0.3)
        >>> rot = np.array([[[c, -s], [s, c]]])
        >>> dec = Decomposition("VVV", np.array([2.0]), np.array([[4.0, 0.25]]), rot)
        >>> round(float(np.linalg.det(dec.covariances()[0])), 12)  # λ^d det(A) = 2² · 1
        4.0
        """
        o = self.orientations
        cov = np.einsum("kij,kj,klj->kil", o, self.variances(), o)
        return 0.5 * (cov + np.swapaxes(cov, 1, 2))

    def precisions_cholesky(self) -> np.ndarray:
        """Upper-triangular U_k with U_k U_kᵀ = Σ_k⁻¹ (scikit-learn's ``precisions_cholesky_``).

        Computed from the factors, not from Σ_k: the QR factorisation of (D_k diag(√v_k))ᵀ gives
        the Cholesky factor Rᵀ of Σ_k with a backward error of a few ulps of the factor itself
        (forming Σ_k first would square its condition number), and U_k = R⁻¹.

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm.covariance._mclust_msteps import Decomposition
        >>> c, s = np.cos(0.3), np.sin(0.3)
        >>> rot = np.array([[[c, -s], [s, c]]])
        >>> dec = Decomposition("VVV", np.array([2.0]), np.array([[4.0, 0.25]]), rot)
        >>> u = dec.precisions_cholesky()[0]
        >>> bool(np.allclose(u @ u.T @ dec.covariances()[0], np.eye(2))), float(u[1, 0])
        (True, 0.0)
        """
        from .._kernels.linalg import invert_lower_transposed

        root = np.sqrt(self.variances())
        if self.model[2] == "I":  # the identity orientation: U_k = diag(1/√v_k)
            return np.einsum("kj,ij->kij", 1.0 / root, np.eye(root.shape[1]))
        # One batched QR for all components, and the triangular inverses in a compiled loop:
        # per-component SciPy calls cost more than the rest of the M-step (measured 0.3 ms per
        # component on the team's machine).
        r = np.linalg.qr(np.swapaxes(self.orientations * root[:, None, :], 1, 2), mode="r")
        r *= np.where(np.diagonal(r, axis1=1, axis2=2) < 0, -1.0, 1.0)[:, :, None]
        out = np.empty(r.shape)
        invert_lower_transposed(np.ascontiguousarray(np.swapaxes(r, 1, 2)), out)
        return out

    def shared_form(self) -> tuple[np.ndarray, np.ndarray]:
        """The shared transform and per-component variances of the E-step's second form.

        Returns ``(orientation, variances)`` with orientation (d, d) and variances (K, d) such
        that Σ_k⁻¹ = orientation @ diag(1/variances[k]) @ orientation.T; the orientation is the
        identity for the diagonal models.

        Raises
        ------
        ValueError
            For the models whose orientation varies across components (EEV, VEV, EVV, VVV).

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm.covariance._mclust_msteps import Decomposition
        >>> dec = Decomposition("VEI", np.array([1.0, 4.0]), np.array([[2.0, 0.5]] * 2),
        ...                     np.repeat(np.eye(2)[None], 2, axis=0))
        >>> transform, variances = dec.shared_form()
        >>> variances
        array([[2. , 0.5],
               [8. , 2. ]])
        """
        if self.model not in SHARED_FORM_MODELS:
            raise ValueError(
                f"model {self.model!r} has a different orientation in each component; "
                "use precisions_cholesky() instead of shared_form()"
            )
        return self.orientations[0], self.variances()


@dataclass(frozen=True, eq=False)
class ConjugatePrior:
    """mclust's conjugate prior on the means and covariances (Fraley & Raftery 2007).

    μ_k | Σ_k ~ N(mean, Σ_k / shrinkage), and Σ_k (or its volume and shape, depending on the
    model) inverse Wishart / inverse gamma with ``dof`` degrees of freedom and ``scale``.

    Attributes
    ----------
    shrinkage : float
        κ_P, the prior's weight on the means, in observations (0: no prior on the means).
    mean : ndarray of shape (d,)
        μ_P.
    dof : float
        ν_P.
    scale : float or ndarray of shape (d, d)
        Λ_P: a number for the spherical and diagonal models, a matrix for the others.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.covariance._mclust_msteps import ConjugatePrior
    >>> X = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [2.0, 4.0]])
    >>> prior = ConjugatePrior.default(X, n_components=2, model="VVV")
    >>> prior.shrinkage, prior.mean, prior.dof
    (0.01, array([1., 2.]), 4.0)
    >>> prior.scale  # var(X) / K^(2/d)
    array([[0.66666667, 0.        ],
           [0.        , 2.66666667]])
    """

    shrinkage: float
    mean: np.ndarray
    dof: float
    scale: float | np.ndarray

    @classmethod
    def default(
        cls,
        X,
        n_components: int,
        model: str,
        *,
        shrinkage: float = 0.01,
        mean=None,
        dof: float | None = None,
        scale=None,
    ) -> ConjugatePrior:
        """mclust's ``defaultPrior(X, G, modelName)``, with the same optional overrides.

        shrinkage 0.01; mean the column means; dof d + 2; scale var(X) / K^(2/d) for the
        ellipsoidal models and tr(var(X))/d / K^(2/d) for the spherical and diagonal ones, where
        var is the sample covariance (denominator n - 1).

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm.covariance._mclust_msteps import ConjugatePrior
        >>> X = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [2.0, 4.0]])
        >>> round(ConjugatePrior.default(X, n_components=1, model="VII").scale, 6)  # (4/3 + 16/3)/2
        3.333333
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] < 2:
            raise ValueError("X must be a 2-D array with at least two rows")
        return cls.from_moments(
            X.mean(axis=0),
            np.cov(X, rowvar=False).reshape(X.shape[1], X.shape[1]),
            n_components,
            model,
            shrinkage=shrinkage,
            mean=mean,
            dof=dof,
            scale=scale,
        )

    @classmethod
    def from_moments(
        cls,
        data_mean,
        data_covariance,
        n_components: int,
        model: str,
        *,
        shrinkage: float = 0.01,
        mean=None,
        dof: float | None = None,
        scale=None,
    ) -> ConjugatePrior:
        """:meth:`default` from the data's mean and sample covariance (n - 1 denominator).

        For data that is streamed: one pass gives both moments.

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm.covariance._mclust_msteps import ConjugatePrior
        >>> prior = ConjugatePrior.from_moments(np.zeros(2), 4.0 * np.eye(2), 4, "EEE")
        >>> prior.scale  # 4 I / 4^(2/2)
        array([[1., 0.],
               [0., 1.]])
        """
        _check_model(model)
        if n_components < 1:
            raise ValueError(f"n_components must be at least 1, got {n_components}")
        data_mean = np.asarray(data_mean, dtype=np.float64)
        cov = np.asarray(data_covariance, dtype=np.float64)
        n_features = data_mean.shape[0]
        if cov.shape != (n_features, n_features):
            raise ValueError(f"data_covariance must be ({n_features}, {n_features})")
        factor = float(n_components) ** (2.0 / n_features)
        if scale is None:
            scale = float(np.trace(cov)) / n_features / factor if model[2] == "I" else cov / factor
        prior = cls(
            shrinkage=float(shrinkage),
            mean=data_mean.copy() if mean is None else np.asarray(mean, dtype=np.float64),
            dof=float(n_features + 2 if dof is None else dof),
            scale=float(scale) if np.ndim(scale) == 0 else np.asarray(scale, dtype=np.float64),
        )
        prior._check(model, n_features)
        return prior

    def _check(self, model: str, n_features: int) -> None:
        if model not in PRIOR_MODELS:
            raise ValueError(
                f"mclust defines its conjugate prior for {sorted(PRIOR_MODELS)} only, "
                f"not for {model!r}"
            )
        if not (np.isfinite(self.shrinkage) and self.shrinkage >= 0):
            raise ValueError(f"shrinkage must be finite and >= 0, got {self.shrinkage}")
        if not (np.isfinite(self.dof) and self.dof > 0):
            raise ValueError(f"dof must be finite and > 0, got {self.dof}")
        if self.mean.shape != (n_features,) or not np.all(np.isfinite(self.mean)):
            raise ValueError(f"the prior mean must be a finite vector of length {n_features}")
        if model[2] == "I":
            if np.ndim(self.scale) != 0 or not (np.isfinite(self.scale) and self.scale > 0):
                raise ValueError(f"model {model!r} needs a positive number as the prior scale")
        else:
            scale = np.asarray(self.scale)
            if scale.shape != (n_features, n_features) or not np.all(np.isfinite(scale)):
                raise ValueError(f"model {model!r} needs a ({n_features}, {n_features}) scale")
            if not np.allclose(scale, scale.T) or np.linalg.eigvalsh(scale)[0] <= 0:
                raise ValueError("the prior scale must be symmetric positive definite")


def n_parameters(model: str, n_components: int, n_features: int, noise: bool = False) -> int:
    """Free parameters of a mixture, as mclust's ``nMclustParams`` counts them.

    The means (K d), the proportions (K - 1) and the covariance parameters; with a noise
    component mclust adds two: the noise proportion and the hypervolume.

    Examples
    --------
    >>> from fastgmm.covariance._mclust_msteps import n_parameters
    >>> n_parameters("VVV", 3, 4), n_parameters("EVE", 3, 4), n_parameters("EII", 3, 4, noise=True)
    (44, 30, 17)
    """
    _check_model(model)
    K, d = int(n_components), int(n_features)
    if K < 1 or d < 1:
        raise ValueError("n_components and n_features must be at least 1")
    volume = 1 if model[0] == "E" else K
    shape = 0 if model[1] == "I" else (d - 1 if model[1] == "E" else K * (d - 1))
    rotation = d * (d - 1) // 2
    orientation = {"I": 0, "E": rotation, "V": K * rotation}[model[2]]
    return volume + shape + orientation + K * d + (K - 1) + (2 if noise else 0)


def m_step(
    model: str,
    nk,
    xbar,
    scatter,
    *,
    previous: Decomposition | None = None,
    prior: ConjugatePrior | None = None,
    tol: float = DEFAULT_TOL,
    max_iter: int = DEFAULT_MAX_ITER,
    scatter_kind: str | None = None,
    mclust_vve: bool = False,
) -> tuple[np.ndarray, Decomposition]:
    """The means and covariance decomposition that maximise the likelihood (or posterior).

    Parameters
    ----------
    model : str
        One of :data:`MODELS`.
    nk : array of shape (K,)
        Weighted counts n_k = Σ_i r_ik.
    xbar : array of shape (K, d)
        Weighted means x̄_k.
    scatter : array
        Scatter about the x̄_k, of the kind ``scatter_kind``: (d, d) for 'pooled' (Σ_k W_k),
        (K, d) for 'diag' (the diagonals of the W_k), (K, d, d) for 'full'.
    previous : Decomposition, optional
        The last iteration's estimate; the iterative models (VEI, VEE, EVE, VVE, VEV) start
        from it. Ignored by the closed forms.
    prior : ConjugatePrior, optional
        mclust's conjugate prior: the MAP estimate instead of the maximum-likelihood one.
    tol, max_iter : float, int
        The inner iterations stop when the largest relative change of a parameter is below
        ``tol``, or after ``max_iter`` steps (``Decomposition.converged`` is then False).
    scatter_kind : {'pooled', 'diag', 'full'}, optional
        The kind of ``scatter``; by default the model's :data:`SCATTER_KIND`. A richer kind
        than the model needs is reduced.
    mclust_vve : bool
        VVE only: update the orientation as mclust 6.0.0 does, weighing each component by its
        shape alone as if the volumes were equal (EVE's update), instead of by its covariance.
        Measured against R: mclust's VVE orientation then agrees (its ``mstep`` returns EVE's
        orientation and shapes for VVE), and an EM with it reproduces ``mclustBIC``'s VVE column
        to 1e-11, while the default, which maximises the VVE likelihood, reaches a higher
        likelihood from the same start (up to 1e-3 relative in BIC on faithful, and other local
        optima elsewhere). False gives the maximum-likelihood (or MAP) VVE step.

    Returns
    -------
    means : ndarray of shape (K, d)
        x̄_k, or with a prior the shrunk (n_k x̄_k + κ μ_P)/(n_k + κ).
    decomposition : Decomposition

    Raises
    ------
    DegenerateMStepError
        A component has no weight (n_k <= 0), or a covariance is singular (its smallest
        variance at most :data:`SINGULARITY_EPS` times its largest, zero, or not finite).
        No result with NaN is ever returned.
    ValueError
        An unknown model, inconsistent shapes, non-finite input, or a prior for a model that
        mclust does not define it for.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.covariance._mclust_msteps import m_step
    >>> rng = np.random.default_rng(0)
    >>> X = [rng.normal(size=(50, 2)) * [3.0, 1.0], rng.normal(size=(30, 2)) + 5.0]
    >>> nk = np.array([len(x) for x in X], dtype=float)
    >>> xbar = np.array([x.mean(axis=0) for x in X])
    >>> W = np.array([(x - m).T @ (x - m) for x, m in zip(X, xbar)])
    >>> means, dec = m_step("VEE", nk, xbar, W)
    >>> dec.converged, bool(np.allclose(dec.shapes[0], dec.shapes[1]))
    (True, True)
    >>> bool(np.allclose(np.prod(dec.shapes, axis=1), 1.0))
    True
    """
    _check_model(model)
    nk, xbar, stat, n_features = _prepare(model, nk, xbar, scatter, scatter_kind)
    if prior is not None:
        if not isinstance(prior, ConjugatePrior):
            raise ValueError("prior must be a ConjugatePrior")
        prior._check(model, n_features)
    if not (tol >= 0):
        raise ValueError(f"tol must be >= 0, got {tol}")
    if int(max_iter) < 1:
        raise ValueError(f"max_iter must be at least 1, got {max_iter}")
    if previous is not None:
        _check_previous(previous, nk.shape[0], n_features)
    means = xbar.copy()
    counts = nk
    if prior is not None:
        means, stat, counts = _posterior_statistics(model, prior, nk, xbar, stat)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        step = _vve_as_mclust if (mclust_vve and model == "VVE") else _MSTEPS[model]
        volumes, shapes, orientations, n_iter, converged = step(
            counts, stat, previous, float(tol), int(max_iter)
        )
    if orientations is None:
        orientations = np.broadcast_to(np.eye(n_features), (nk.shape[0], n_features, n_features))
    decomposition = Decomposition(
        model=model,
        volumes=np.ascontiguousarray(volumes, dtype=np.float64),
        shapes=np.ascontiguousarray(shapes, dtype=np.float64),
        orientations=np.ascontiguousarray(orientations, dtype=np.float64),
        n_iter=int(n_iter),
        converged=bool(converged),
    )
    _check_result(decomposition)
    return means, decomposition


# ---- validation ---------------------------------------------------------------------------------


def _check_model(model) -> None:
    if model not in SCATTER_KIND:
        raise ValueError(f"unknown mclust model {model!r}; expected one of {list(MODELS)}")


_RANK = {"pooled": 0, "diag": 1, "full": 2}


def _prepare(model, nk, xbar, scatter, scatter_kind):
    """Validated float64 inputs, with the scatter reduced to what ``model`` needs."""
    nk = np.asarray(nk, dtype=np.float64)
    xbar = np.asarray(xbar, dtype=np.float64)
    scatter = np.asarray(scatter, dtype=np.float64)
    if nk.ndim != 1 or nk.shape[0] < 1:
        raise ValueError(f"nk must be a non-empty 1-D array, got shape {nk.shape}")
    n_components = nk.shape[0]
    if xbar.ndim != 2 or xbar.shape[0] != n_components or xbar.shape[1] < 1:
        raise ValueError(f"xbar must have shape ({n_components}, d), got {xbar.shape}")
    n_features = xbar.shape[1]
    kind = SCATTER_KIND[model] if scatter_kind is None else scatter_kind
    expected = {
        "pooled": (n_features, n_features),
        "diag": (n_components, n_features),
        "full": (n_components, n_features, n_features),
    }
    if kind not in expected:
        raise ValueError(f"scatter_kind must be one of {list(expected)}, got {kind!r}")
    if scatter.shape != expected[kind]:
        raise ValueError(f"{kind!r} scatter must have shape {expected[kind]}, got {scatter.shape}")
    needed = SCATTER_KIND[model]
    if _RANK[kind] < _RANK[needed] and not (kind == "diag" and model in ("EII", "EEI")):
        raise ValueError(f"model {model!r} needs {needed!r} scatter, got {kind!r}")
    for name, value in (("nk", nk), ("xbar", xbar), ("scatter", scatter)):
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{name} contains NaN or infinity")
    empty = np.flatnonzero(~(nk > 0))
    if empty.size:
        raise DegenerateMStepError(model, empty, "no weight (n_k <= 0)")
    # Reduce to the model's statistic: EII the pooled diagonal (trace), EEI the pooled
    # diagonal, EEE the pooled matrix, the diagonal models the per-component diagonals.
    if model in ("EII", "EEI"):
        if kind == "pooled":
            stat = np.diag(scatter).copy()
        elif kind == "diag":
            stat = scatter.sum(axis=0)
        else:
            stat = np.einsum("kdd->d", scatter)
    elif needed == "pooled":
        stat = scatter.sum(axis=0) if kind == "full" else scatter.copy()
    elif needed == "diag":
        stat = np.einsum("kdd->kd", scatter) if kind == "full" else scatter.copy()
    else:
        stat = scatter.copy()
    if stat.ndim == 3:
        stat = 0.5 * (stat + np.swapaxes(stat, 1, 2))
    elif stat.ndim == 2 and needed == "pooled":
        stat = 0.5 * (stat + stat.T)
    return nk, xbar, stat, n_features


def _check_previous(previous, n_components, n_features):
    if not isinstance(previous, Decomposition):
        raise ValueError("previous must be a Decomposition")
    ok = (
        previous.volumes.shape == (n_components,)
        and previous.shapes.shape == (n_components, n_features)
        and previous.orientations.shape == (n_components, n_features, n_features)
        and all(np.all(np.isfinite(a)) for a in (previous.volumes, previous.shapes))
        and np.all(previous.volumes > 0)
        and np.all(previous.shapes > 0)
    )
    if not ok:
        raise ValueError(
            f"previous must describe {n_components} components in {n_features} dimensions "
            "with positive volumes and shapes"
        )


def _check_result(dec: Decomposition) -> None:
    """Raise DegenerateMStepError for a non-finite or singular covariance."""
    variances = dec.variances()
    finite = (
        np.all(np.isfinite(variances), axis=1)
        & np.isfinite(dec.volumes)
        & np.all(np.isfinite(dec.orientations), axis=(1, 2))
    )
    bad = np.flatnonzero(~finite)
    if bad.size:
        raise DegenerateMStepError(dec.model, bad, "the covariance is not finite")
    smallest = variances.min(axis=1)
    bad = np.flatnonzero(~(smallest > SINGULARITY_EPS * variances.max(axis=1)))
    if bad.size:
        raise DegenerateMStepError(
            dec.model, bad, "the covariance is singular to machine precision"
        )


# ---- helpers ------------------------------------------------------------------------------------


def _geomean(values, axis=-1):
    """exp(mean(log v)) along an axis: |diag(v)|^(1/d) without overflow (0 for a zero entry)."""
    return np.exp(np.mean(np.log(values), axis=axis))


def _eigh_desc(matrix):
    """Eigenvalues in decreasing order and the eigenvectors as columns, signed canonically."""
    values, vectors = np.linalg.eigh(matrix)
    values = values[..., ::-1]
    vectors = _signed(vectors[..., ::-1])
    return values, vectors


def _signed(vectors):
    """Each column multiplied by the sign of its entry of largest magnitude."""
    idx = np.argmax(np.abs(vectors), axis=-2)
    picked = np.take_along_axis(vectors, idx[..., None, :], axis=-2)
    return vectors * np.where(picked < 0, -1.0, 1.0)


def _relative_change(new, old):
    """max |new - old| / |new| over positive entries (inf when there is nothing to compare)."""
    if old is None:
        return np.inf
    return float(np.max(np.abs(new - old) / np.abs(new)))


# ---- the fourteen M-steps -----------------------------------------------------------------------
# Each takes (counts, stat, previous, tol, max_iter) and returns
# (volumes (K,), shapes (K, d), orientations (K, d, d) or None for the identity, n_iter,
# converged). ``stat`` is what _prepare (or _posterior_statistics) made of the scatter.


def _eii(counts, diag_pooled, previous, tol, max_iter):
    n_components, d = counts.shape[0], diag_pooled.shape[0]
    lam = diag_pooled.sum() / (counts.sum() * d)
    return np.full(n_components, lam), np.ones((n_components, d)), None, 0, True


def _vii(counts, w, previous, tol, max_iter):
    d = w.shape[1]
    return w.sum(axis=1) / (counts * d), np.ones_like(w), None, 0, True


def _eei(counts, diag_pooled, previous, tol, max_iter):
    g = _geomean(diag_pooled)
    n_components = counts.shape[0]
    shapes = np.broadcast_to(diag_pooled / g, (n_components, diag_pooled.shape[0]))
    return np.full(n_components, g / counts.sum()), shapes, None, 0, True


def _evi(counts, w, previous, tol, max_iter):
    g = _geomean(w)
    lam = g.sum() / counts.sum()
    return np.full(counts.shape[0], lam), w / g[:, None], None, 0, True


def _vvi(counts, w, previous, tol, max_iter):
    v = w / counts[:, None]
    g = _geomean(v)
    return g, v / g[:, None], None, 0, True


def _usable(volumes):
    """Volumes an iteration can go on from: positive and finite (else the result check raises)."""
    return bool(np.all(volumes > 0) and np.all(np.isfinite(volumes)))


def _vei(counts, w, previous, tol, max_iter):
    # Celeux & Govaert (1995), model [λ_k B]: alternate λ_k = tr(W_k B⁻¹)/(n_k d) and
    # B ∝ diag(Σ_k W_k/λ_k), each the exact minimiser given the other.
    if previous is None:
        pooled = w.sum(axis=0)
        shape, lam_old, shape_old = pooled / _geomean(pooled), None, None
    else:
        shape, lam_old, shape_old = previous.shapes[0], previous.volumes, previous.shapes[0]
    lam, shape, iteration, converged = _volumes_and_shape(
        counts, w, shape, lam_old, shape_old, tol, max_iter
    )
    return lam, np.broadcast_to(shape, w.shape), None, iteration, converged


def _volumes_and_shape(counts, diagonals, shape, lam_old, shape_old, tol, max_iter):
    """VEI's and VEV's alternation, from ``shape``: λ_k = Σ_d (diagonals_kd / A_d) / (n_k d), then
    A ∝ Σ_k diagonals_k / λ_k with det A = 1 (``diagonals``: diag(W_k) for VEI, the eigenvalues
    Ω_k of W_k for VEV). Returns λ, A, the iterations and whether they converged."""
    d = diagonals.shape[1]
    change, iteration = np.inf, 0
    while iteration < max_iter:
        iteration += 1
        lam = (diagonals / shape).sum(axis=1) / (counts * d)
        if not _usable(lam):
            break
        s = (diagonals / lam[:, None]).sum(axis=0)
        shape = s / _geomean(s)
        change = max(_relative_change(lam, lam_old), _relative_change(shape, shape_old))
        if change <= tol:
            break
        lam_old, shape_old = lam, shape
    return lam, shape, iteration, bool(change <= tol)


def _eee(counts, pooled, previous, tol, max_iter):
    values, vectors = _eigh_desc(pooled / counts.sum())
    g = _geomean(values)
    n_components = counts.shape[0]
    return (
        np.full(n_components, g),
        np.broadcast_to(values / g, (n_components, values.shape[0])),
        np.broadcast_to(vectors, (n_components, *vectors.shape)),
        0,
        True,
    )


def _vee(counts, W, previous, tol, max_iter):
    # Celeux & Govaert (1995), model [λ_k C]: alternate λ_k = tr(W_k C⁻¹)/(n_k d) and
    # C = Σ_k W_k/λ_k scaled to det 1.
    n_components, d = W.shape[0], W.shape[1]
    if previous is None:
        c, lam_old = W.sum(axis=0), None
    else:
        o = previous.orientations[0]
        c, lam_old = (o * previous.shapes[0]) @ o.T, previous.volumes
    c = c / _geomean(np.linalg.eigvalsh(c))
    c_old = None if previous is None else c
    change, iteration = np.inf, 0
    lam = np.full(n_components, np.nan)
    while iteration < max_iter:
        iteration += 1
        try:
            c_inv = np.linalg.inv(c)
        except np.linalg.LinAlgError:  # a rank-deficient pooled scatter: degenerate below
            c = np.full_like(c, np.nan)
            break
        lam = np.einsum("kij,ji->k", W, c_inv) / (counts * d)
        if not _usable(lam):
            break
        s = np.einsum("kij,k->ij", W, 1.0 / lam)
        c = 0.5 * (s + s.T) / _geomean(np.linalg.eigvalsh(s))
        change = max(
            _relative_change(lam, lam_old),
            np.inf if c_old is None else np.linalg.norm(c - c_old) / np.linalg.norm(c),
        )
        if change <= tol:
            break
        lam_old, c_old = lam, c
    if not np.all(np.isfinite(c)):
        return (
            lam,
            np.full((n_components, d), np.nan),
            np.full((n_components, d, d), np.nan),
            0,
            False,
        )
    values, vectors = _eigh_desc(c)
    shape = values / _geomean(values)
    return (
        lam,
        np.broadcast_to(shape, (n_components, d)),
        np.broadcast_to(vectors, (n_components, d, d)),
        iteration,
        bool(change <= tol),
    )


def _common_orientation(counts, W, previous, tol, max_iter, equal_volume, equal_weights=False):
    """EVE (equal_volume) and VVE: A_k and λ in closed form given D, D by MM given them.

    The loop runs in Numba (:func:`fastgmm._kernels.orientation.common_orientation`): each
    iteration computes (λ, A) given D, then two MM updates of D (see the module docstring),
    each the orthogonal polar factor of a d x d matrix with its columns signed like those of
    the previous D. The objective does not change when a column of D changes sign, but the
    polar factor's column signs are arbitrary where the matrix is (nearly) singular, as it is
    for K = 1 at the optimum: aligning the signs keeps the iterates continuous, so that the
    parameter change measures convergence (without it, faithful's K = 1 EVE step flipped a
    column at every iteration). The loop stops when the largest relative change of λ or A, or
    the largest change of an entry of D, is at most ``tol``.

    ``equal_weights`` (VVE only) weighs the components in the orientation update by A_k⁻¹ alone,
    as if their volumes were equal: what mclust 6.0.0 does (see :func:`m_step`).
    """
    from .._kernels.orientation import common_orientation

    n_components, d = W.shape[0], W.shape[1]
    if previous is None:
        # mclust starts from the coordinate axes: measured on the reference data sets, this
        # start reaches R's optimum in every cell, while the pooled scatter's eigenvectors
        # end in a worse local optimum in 3 of 8 cells of a 10-dimensional set.
        D = np.eye(d)
        lam_old, shapes_old = np.ones(n_components), np.ones((n_components, d))
    else:
        D = np.array(previous.orientations[0])
        lam_old, shapes_old = previous.volumes, previous.shapes
    # (λ, A) come back as the exact optimum for the returned D. The columns keep the order and
    # signs they have by continuity from the start (as mclust's do: the same columns in every
    # cell tried).
    lam, shapes, D, iteration, change = common_orientation(
        np.ascontiguousarray(W),
        np.ascontiguousarray(counts, dtype=np.float64),
        np.ascontiguousarray(D),
        np.ascontiguousarray(lam_old, dtype=np.float64),
        np.ascontiguousarray(shapes_old, dtype=np.float64),
        previous is not None,
        float(tol),
        int(max_iter),
        (bool(equal_volume), bool(equal_weights)),
    )
    return (
        lam,
        shapes,
        np.broadcast_to(D, (n_components, d, d)),
        iteration,
        bool(change <= tol),
    )


def _eve(counts, W, previous, tol, max_iter):
    return _common_orientation(counts, W, previous, tol, max_iter, equal_volume=True)


def _vve(counts, W, previous, tol, max_iter):
    return _common_orientation(counts, W, previous, tol, max_iter, equal_volume=False)


def _vve_as_mclust(counts, W, previous, tol, max_iter):
    return _common_orientation(
        counts, W, previous, tol, max_iter, equal_volume=False, equal_weights=True
    )


def _eev(counts, W, previous, tol, max_iter):
    values, vectors = _eigh_desc(W)  # (K, d), (K, d, d)
    s = values.sum(axis=0)
    g = _geomean(s)
    n_components = counts.shape[0]
    return (
        np.full(n_components, g / counts.sum()),
        np.broadcast_to(s / g, values.shape),
        vectors,
        0,
        True,
    )


def _vev(counts, W, previous, tol, max_iter):
    # Celeux & Govaert (1995), model [λ_k D_k A D_kᵀ]: D_k are the eigenvectors of W_k (in
    # decreasing order, matched with A's), then alternate λ_k = tr(Ω_k A⁻¹)/(n_k d) and
    # A ∝ Σ_k Ω_k/λ_k.
    omega, vectors = _eigh_desc(W)
    if previous is None:
        s = omega.sum(axis=0)
        shape, lam_old, shape_old = s / _geomean(s), None, None
    else:
        shape = np.sort(previous.shapes[0])[::-1]
        lam_old, shape_old = previous.volumes, shape
    lam, shape, iteration, converged = _volumes_and_shape(
        counts, omega, shape, lam_old, shape_old, tol, max_iter
    )
    return lam, np.broadcast_to(shape, omega.shape), vectors, iteration, converged


def _evv(counts, W, previous, tol, max_iter):
    values, vectors = _eigh_desc(W)
    g = _geomean(values)
    return np.full(counts.shape[0], g.sum() / counts.sum()), values / g[:, None], vectors, 0, True


def _vvv(counts, W, previous, tol, max_iter):
    values, vectors = _eigh_desc(W / counts[:, None, None])
    g = _geomean(values)
    return g, values / g[:, None], vectors, 0, True


_MSTEPS = {
    "EII": _eii,
    "VII": _vii,
    "EEI": _eei,
    "VEI": _vei,
    "EVI": _evi,
    "VVI": _vvi,
    "EEE": _eee,
    "VEE": _vee,
    "EVE": _eve,
    "VVE": _vve,
    "EEV": _eev,
    "VEV": _vev,
    "EVV": _evv,
    "VVV": _vvv,
}


# ---- the conjugate prior ------------------------------------------------------------------------


# What mclust 6.0.0's EM does under its prior, found by black-box experiments against R (the
# fixed points of ``me(..., prior = priorControl())`` and R's ``mstep(..., prior = ...)``, see
# tests/mclust_reference; mclust's code was not read). With B_k = κ n_k/(n_k + κ)
# (x̄_k - μ_P)(x̄_k - μ_P)ᵀ, W̃_k = W_k + B_k, ν the dof and Λ (ς² for the spherical and diagonal
# models) the scale, each MAP step is the maximum-likelihood step of the same model on modified
# scatter and counts (for the equal-volume models only their sum n' matters):
#
#   model  scatter                                   counts                     means
#   EII    Σ_k tr W̃_k (no ς²)                        n' d = (n + K) d + ν + 2    shrunk
#   VII    ς² + tr W̃_k                               n_k d + d + ν + 2          shrunk
#   EEI    ς² + Σ_k diag W̃_k                         n' = n + ν + 2             x̄_k
#   VEI    ς² + diag W̃_k                             n_k d + ν + 3 (in λ_k)      shrunk
#   EVI    ς² + diag W̃_k                             n' = n + ν + 2             shrunk
#   VVI    ς² + diag W̃_k                             n_k + ν + 3                shrunk
#   EEE    Λ + Σ_k W̃_k                               n' = n + K + ν + d + 1     shrunk
#   EEV    Λ + W̃_k                                   n' = n + ν + d + 2         shrunk
#   VEV    Λ + W̃_k                                   n_k (ν not used)           shrunk
#   VVV    Λ + W̃_k                                   n_k + ν + d + 2            shrunk
#
# VVV, EEE, VII and VVI are the posterior modes of Fraley & Raftery (2007): a normal prior
# N(μ_P, Σ_k/κ) on each mean, an inverse Wishart (ν, Λ) or inverse gamma (ν/2, ς²/2) prior on
# each covariance, variance or diagonal entry. The departures from that reading are mclust's
# and reproduced, because agreeing with mclust is the point: EII has no ς²; EEI reports the
# unshrunk means (but adds B_k to its scatter); EEI, EVI and EEV count the K mean priors once or
# not at all; VEV ignores ν. R's standalone ``mstep`` differs from its EM (``me`` with one
# iteration, on the same weights) for four models (measured): EII adds n_k |x̄_k - μ̂_k|² per
# component (a relative change of order (κ/n_k)²); EEI and EVI use n' = n + K + ν + 2; EEV keeps
# the unshrunk means, leaves B_k out and uses n' = n + ν + d + 1. This module follows the EM,
# which is what ``Mclust`` and ``mclustBIC`` fit.


def _posterior_statistics(model, prior, nk, xbar, stat):
    """(means, scatter, counts) whose maximum-likelihood M-step is mclust's MAP M-step."""
    n_components, d = xbar.shape
    kappa, nu = prior.shrinkage, prior.dof
    dx = xbar - prior.mean
    weight = kappa * nk / (nk + kappa)
    shrunk = (nk[:, None] * xbar + kappa * prior.mean) / (nk + kappa)[:, None]
    if model == "EII":
        extra = (weight[:, None] * dx**2).sum(axis=0)
        return shrunk, stat + extra, nk + 1 + (nu + 2) / (d * n_components)
    if model in ("VII", "EEI", "VEI", "EVI", "VVI"):
        b = weight[:, None] * dx**2  # the diagonals of the B_k
        if model == "VII":
            return shrunk, stat + b + prior.scale / d, nk + 1 + (nu + 2) / d
        if model == "EEI":
            return xbar.copy(), stat + b.sum(axis=0) + prior.scale, nk + (nu + 2) / n_components
        if model == "VEI":
            counts = nk + (nu + 3) / d
        elif model == "EVI":
            counts = nk + (nu + 2) / n_components
        else:
            counts = nk + nu + 3
        return shrunk, stat + b + prior.scale, counts
    b = weight[:, None, None] * np.einsum("ki,kj->kij", dx, dx)
    if model == "EEE":
        return shrunk, prior.scale + stat + b.sum(axis=0), nk + 1 + (nu + d + 1) / n_components
    if model == "EEV":
        return shrunk, prior.scale + stat + b, nk + (nu + d + 2) / n_components
    if model == "VEV":
        return shrunk, prior.scale + stat + b, nk
    return shrunk, prior.scale + stat + b, nk + nu + d + 2  # VVV
