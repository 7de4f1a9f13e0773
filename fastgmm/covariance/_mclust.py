"""mclust's fourteen covariance models as covariance-model objects of the engine.

Each model is one :class:`MclustModel`: its M-step is :func:`._mclust_msteps.m_step` (the
maths, written from the papers, with its references and measurements), and this class only
adapts it to the engine's interface: the engine hands over the scatter *divided by the
counts* of the model's statistics kind (:func:`fastgmm.stats.scatter`), the M-step wants the
sums ``W_k``; the engine wants ``IllDefinedCovarianceError`` naming the failing components, the
M-step raises :class:`._mclust_msteps.DegenerateMStepError`.

Attributes are those of scikit-learn's ``'full'`` type, (K, D, D) covariances and precision
factors, whatever the model; the decomposition ``Σ_k = λ_k D_k A_k D_kᵀ`` travels with the
parameters (``MixtureParams.decomposition``), so the iterative M-steps (VEI, VEE, EVE, VVE,
VEV) continue from the last iteration's estimate, as mclust's do. Parameters without one (a
user's ``precisions_init``) start those iterations cold and are laid out as per-component
factors for their first E-step.

E-step layouts: the models with one orientation for all components (EII, VII, EEI, VEI, EVI,
VVI with the identity; EEE, VEE, EVE, VVE with a common rotation ``D``) use the shared-transform
form ``Σ_k⁻¹ = D diag(1/(λ_k a_k)) Dᵀ``: a block of rows is rotated once and each component
only scales, so an iteration costs N·D² + N·K·D instead of N·K·D². The others (EEV, VEV, EVV,
VVV) use a triangular factor per component.

Statistics kinds: EII and EEI need only the pooled diagonal of the scatter, which the
per-component diagonals (``DIAG``) give at N·K·D per pass (the pooled kind would accumulate a
D x D matrix per row); EEE needs the pooled matrix (``POOLED``); the other diagonal models
``DIAG``; the rest ``FULL``.
"""

from __future__ import annotations

import numpy as np

from .._names import MCLUST_MODELS
from ..errors import ILL_DEFINED_MESSAGE, EmptyComponentError, IllDefinedCovarianceError
from ..stats import DIAG, FULL, POOLED, SharedLayout
from ._base import CovarianceModel, factor_layout
from ._mclust_msteps import (
    SHARED_FORM_MODELS,
    Decomposition,
    DegenerateMStepError,
    _eigh_desc,
    _geomean,
    m_step,
    n_parameters,
)

__all__ = ["PRIOR_EMPTY_WEIGHT", "MclustModel", "mclust_models"]

#: Under a prior, a component whose weight (in rows) falls below this fails the M-step: the
#: prior keeps its covariance regular, so nothing else would. Measured against R over the 216
#: cells with K >= 2 of the three prior tables in tests/mclust_reference: ``mclustBIC`` reports
#: NA where mclust's EM ends with a smallest weight of at most 6.9e-10 rows, and a value where
#: it is at least 6.9e-9; the threshold sits between (mclust's own rule is not documented).
PRIOR_EMPTY_WEIGHT = 2e-9

_KIND_NAMES = {FULL: "full", DIAG: "diag", POOLED: "pooled"}
_STATISTICS = {"EII": DIAG, "EEI": DIAG, "EEE": POOLED}
_ONE_COVARIANCE = ("EII", "EEI", "EEE")
_LETTERS = {"E": "equal", "V": "variable", "I": "identity"}


class MclustModel(CovarianceModel):
    """One of mclust's covariance models ``Σ_k = λ_k D_k A_k D_kᵀ`` (see the module docstring).

    Parameters
    ----------
    name : str
        One of mclust's fourteen names (``'EII'`` ... ``'VVV'``), or ``'VVE_mclust'``.

    Attributes
    ----------
    mclust_name : str
        The three letters: volume λ, shape A and orientation D Equal across the components,
        Variable, or the Identity.
    mclust_vve : bool
        ``'VVE_mclust'`` only: mclust 6.0.0's VVE step, which updates the common orientation
        weighting the components by their shapes alone, as if their volumes were equal. It
        is not the maximum-likelihood step (EM's likelihood can then decrease, and from the
        same start it ends lower than ``'VVE'``'s, up to 1e-3 relative in BIC on R's
        ``faithful``); it exists to reproduce R's ``mclustBIC`` tables, and ``'VVE'`` is the
        maximum-likelihood step.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.covariance import get_model
    >>> vei = get_model("VEI")  # variable volume, equal shape, axis-aligned
    >>> vei.n_covariance_parameters(n_components=3, n_features=2), vei.statistics == 1
    (4, True)
    >>> nk = np.array([10.0, 30.0])
    >>> covariance = np.array([[4.0, 1.0], [16.0, 4.0]])  # diagonals of the scatter / n_k
    >>> means, covariances, factors, dec = vei.estimate(nk, np.zeros((2, 2)), covariance)
    >>> dec.volumes.round(6), dec.shapes[0].round(6)
    (array([2., 8.]), array([2. , 0.5]))
    """

    def __init__(self, name: str):
        self.name = name
        self.mclust_name = name[:3]
        self.mclust_vve = name == "VVE_mclust"
        if self.mclust_name not in MCLUST_MODELS:
            raise ValueError(f"{name!r} is not one of mclust's models")
        self.statistics = _STATISTICS.get(
            self.mclust_name, DIAG if self.mclust_name[2] == "I" else FULL
        )
        volume, shape, orientation = (_LETTERS[c] for c in self.mclust_name)
        self.description = (
            f"mclust's {self.mclust_name}: {volume} volume, {shape} shape, {orientation} "
            "orientation" + (" (mclust 6.0.0's orientation step)" if self.mclust_vve else "")
        )
        self.shared_orientation = self.mclust_name in SHARED_FORM_MODELS

    def n_covariance_parameters(self, n_components, n_features):
        total = n_parameters(self.mclust_name, n_components, n_features)
        return total - n_components * n_features - (n_components - 1)

    # --------------------------------------------------------------------------- M-step
    def estimate(self, nk, means, covariance, *, previous=None, prior=None):
        """The M-step (see :meth:`CovarianceModel.estimate`); ``prior`` a
        :class:`~fastgmm.covariance.ConjugatePrior` for MAP estimates."""
        n_components = nk.shape[0]
        if prior is not None and nk.min() < PRIOR_EMPTY_WEIGHT:
            empty = np.flatnonzero(nk < PRIOR_EMPTY_WEIGHT)
            raise EmptyComponentError(
                empty,
                f"Component(s) {empty.tolist()} lost their weight (below {PRIOR_EMPTY_WEIGHT} "
                f"rows) under the prior ({self.name}): the fit has fewer clusters than "
                "components. Try fewer components.",
            )
        if self.statistics == FULL:
            scatter = covariance * nk[:, None, None]
        elif self.statistics == DIAG:
            scatter = covariance * nk[:, None]
        else:
            scatter = covariance * nk.sum()
        try:
            means, dec = m_step(
                self.mclust_name,
                nk,
                means,
                scatter,
                previous=self._previous(previous, n_components, means.shape[1]),
                prior=prior,
                scatter_kind=_KIND_NAMES[self.statistics],
                mclust_vve=self.mclust_vve,
            )
        except DegenerateMStepError as exc:
            # EII, EEI and EEE have one covariance for all components: none is to blame alone.
            components = None if self.mclust_name in _ONE_COVARIANCE else exc.components
            raise IllDefinedCovarianceError(
                components, f"{ILL_DEFINED_MESSAGE} ({self.name}: {exc.reason}.)"
            ) from None
        return means, dec.covariances(), dec.precisions_cholesky(), dec

    def decompose(self, covariances) -> Decomposition:
        """``λ_k D_k A_k D_kᵀ`` of given covariances (K, D, D), whatever their structure: each
        one's eigen-decomposition in mclust's conventions (decreasing shapes, the largest
        entry of each axis positive). For parameters that never went through an M-step.

        Examples
        --------
        >>> import numpy as np
        >>> from fastgmm.covariance import get_model
        >>> dec = get_model("VVV").decompose(np.array([np.diag([1.0, 4.0])]))
        >>> dec.volumes, dec.shapes, dec.orientations[0]
        (array([2.]), array([[2. , 0.5]]), array([[0., 1.],
               [1., 0.]]))
        """
        values, vectors = _eigh_desc(np.asarray(covariances, dtype=np.float64))
        volumes = _geomean(values)
        return Decomposition(self.mclust_name, volumes, values / volumes[:, None], vectors)

    def _previous(self, previous, n_components, n_features):
        """The last iteration's decomposition, if it is one of this model's."""
        dec = getattr(previous, "decomposition", None)
        if (
            isinstance(dec, Decomposition)
            and dec.model == self.mclust_name
            and dec.shapes.shape == (n_components, n_features)
        ):
            return dec
        return None

    # --------------------------------------------------------------------------- E-step
    def layout(self, params):
        """The shared-transform layout (:class:`fastgmm.stats.SharedLayout`) for one
        orientation, the per-component factors (:class:`fastgmm.stats.FactorLayout`) else, and
        for parameters without a decomposition."""
        dec = self._previous(params, params.n_components, params.n_features)
        if dec is None or not self.shared_orientation:
            return factor_layout(params)
        orientation, variances = dec.shared_form()
        scales = 1.0 / np.sqrt(variances)
        if self.mclust_name[2] == "I":
            return SharedLayout.diagonal(params.weights, params.means, scales)
        return SharedLayout.shared(params.weights, params.means, orientation, scales)


def mclust_models(names) -> list[MclustModel]:
    """One :class:`MclustModel` per name.

    Examples
    --------
    >>> from fastgmm.covariance._mclust import mclust_models
    >>> [m.statistics for m in mclust_models(["EII", "EEE", "VVV"])]  # DIAG, POOLED, FULL
    [1, 2, 0]
    """
    return [MclustModel(name) for name in names]
