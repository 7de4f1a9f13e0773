"""The volume of the data's region, for a uniform noise component (as mclust's ``hypvol``).

A noise component has the constant density 1/V over the region the data occupy. mclust takes
V as the smaller of two boxes that hold every row (Dasgupta & Raftery 1998; mclust's
documentation of ``hypvol``): the bounding box in the original coordinates, and the bounding
box in the coordinates of the principal components. The second is much smaller for correlated
data (iris: 27.2 against 122.3).

For data too large to hold, both boxes take two passes: the column ranges and the covariance
in the first, the ranges of the rotated rows ``X @ axes`` in the second; then
:func:`box_volume` of each and the smaller one.
"""

from __future__ import annotations

import numpy as np


def principal_axes(covariance) -> np.ndarray:
    """The eigenvectors of a covariance matrix, as columns (d, d).

    Any orthonormal eigenbasis gives the same box volume, so neither order nor sign matters.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.covariance._hypervolume import principal_axes
    >>> axes = principal_axes(np.array([[2.0, 1.0], [1.0, 2.0]]))
    >>> bool(np.allclose(axes.T @ axes, np.eye(2)))
    True
    """
    covariance = np.asarray(covariance, dtype=np.float64)
    if covariance.ndim != 2 or covariance.shape[0] != covariance.shape[1]:
        raise ValueError(f"covariance must be a square matrix, got shape {covariance.shape}")
    if not np.all(np.isfinite(covariance)):
        raise ValueError("covariance contains NaN or infinity")
    return np.linalg.eigh(0.5 * (covariance + covariance.T))[1]


def box_volume(lower, upper) -> float:
    """The volume prod(upper - lower) of a box given its corners.

    Examples
    --------
    >>> from fastgmm.covariance._hypervolume import box_volume
    >>> box_volume([0.0, -1.0], [2.0, 2.0])
    6.0
    """
    lower = np.asarray(lower, dtype=np.float64)
    upper = np.asarray(upper, dtype=np.float64)
    if lower.shape != upper.shape or lower.ndim != 1:
        raise ValueError("lower and upper must be 1-D arrays of the same length")
    # The product of the logs' sum would not overflow, but a volume that overflows is no use
    # to a density 1/V either; say so instead.
    with np.errstate(over="ignore"):
        return float(np.prod(upper - lower))


def hypervolume(X) -> float:
    """mclust's ``hypvol(X)``: the smaller of the bounding box and the principal-component box.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)

    Returns
    -------
    float
        The volume V; a uniform noise component has density 1/V.

    Raises
    ------
    ValueError
        If X is not a finite 2-D array with at least two rows, or if the volume is zero (the
        rows lie in a lower-dimensional subspace, for instance a constant column) or overflows.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.covariance._hypervolume import hypervolume
    >>> square = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> round(hypervolume(square), 12)  # the unit square; its principal box is the same square
    1.0
    >>> line = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.1], [3.0, 2.9]])
    >>> hypervolume(line) < 9.0  # a thin diagonal band: the rotated box is far smaller
    True
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 2 or X.shape[1] < 1:
        raise ValueError(f"X must be a 2-D array with at least two rows, got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or infinity")
    box = box_volume(X.min(axis=0), X.max(axis=0))
    centred = X - X.mean(axis=0)
    scores = centred @ principal_axes(centred.T @ centred)
    pc_box = box_volume(scores.min(axis=0), scores.max(axis=0))
    return smaller_volume(box, pc_box, X.shape[1])


def smaller_volume(box: float, pc_box: float, n_features: int) -> float:
    """The smaller of the two boxes' volumes, refused unless positive and finite.

    Examples
    --------
    >>> from fastgmm.covariance._hypervolume import smaller_volume
    >>> smaller_volume(12.0, 7.5, 2)
    7.5
    """
    volume = min(box, pc_box)
    if not (np.isfinite(volume) and volume > 0):
        raise ValueError(
            f"the data's hypervolume is {volume}: the rows do not span {n_features} dimensions "
            "(a constant column?) or their ranges overflow; a uniform noise density needs a "
            "positive, finite volume"
        )
    return volume
