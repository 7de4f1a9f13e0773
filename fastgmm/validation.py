"""Input checks whose messages say what is wrong and where.

scikit-learn's ``validate_data`` handles shapes, dtypes, sparse input and feature names; these
helpers add what it does not say: how many rows are non-finite and where the first one is, and
the checks of user-given initial parameters (with scikit-learn's wording).
"""

from __future__ import annotations

import numpy as np

# Rows checked per step of the finiteness scan: bounds the temporary boolean array.
_SCAN_ROWS = 1 << 16


def check_finite_rows(
    X: np.ndarray, name: str = "X", *, row_offset: int = 0, allow_nan: bool = False
) -> None:
    """Raise ``ValueError`` if ``X`` holds NaN or infinity, naming the rows involved.

    The scan runs in pieces so that its temporaries stay small for large inputs.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    name : str
        How the message calls ``X``.
    row_offset : int
        Added to the row numbers in the message (the position of a chunk in its source).
    allow_nan : bool
        NaN marks a missing entry (``missing='marginalize'``): only infinity is refused, and
        rows whose every entry is NaN (they carry no information to fit or score).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.validation import check_finite_rows
    >>> check_finite_rows(np.ones((3, 2)))  # finite: nothing happens
    >>> try:
    ...     check_finite_rows(np.array([[1.0, 2.0], [3.0, np.nan]]), row_offset=100)
    ... except ValueError as exc:
    ...     print(exc)  # doctest: +ELLIPSIS
    Input X contains NaN or infinity: 1 row(s) have ...; the first is row 101 (column 1 is nan)...
    """
    if allow_nan:
        _check_missing_rows(X, name, row_offset)
        return
    n_bad = 0
    first = None
    for start in range(0, X.shape[0], _SCAN_ROWS):
        piece = X[start : start + _SCAN_ROWS]
        bad_rows = ~np.isfinite(piece).all(axis=1)
        count = int(bad_rows.sum())
        if count and first is None:
            row = int(np.argmax(bad_rows))
            column = int(np.argmax(~np.isfinite(piece[row])))
            first = (start + row, column, piece[row, column])
        n_bad += count
    if n_bad:
        row, column, value = first
        raise ValueError(
            f"Input {name} contains NaN or infinity: {n_bad} row(s) have non-finite values; "
            f"the first is row {row + row_offset} (column {column} is {value}). "
            "Remove or impute these rows before fitting."
        )


def _check_missing_rows(X: np.ndarray, name: str, row_offset: int) -> None:
    """NaN allowed: refuse infinity, and rows without any observed entry, naming the first."""
    for kind, test in (("infinite", np.isinf), ("empty", np.isnan)):
        n_bad = 0
        first = None
        for start in range(0, X.shape[0], _SCAN_ROWS):
            piece = test(X[start : start + _SCAN_ROWS])
            bad_rows = piece.any(axis=1) if kind == "infinite" else piece.all(axis=1)
            count = int(bad_rows.sum())
            if count and first is None:
                row = int(np.argmax(bad_rows))
                first = (start + row, int(np.argmax(piece[row])))
            n_bad += count
        if not n_bad:
            continue
        row, column = first
        if kind == "infinite":
            raise ValueError(
                f"Input {name} contains infinity: {n_bad} row(s) have infinite values; the "
                f"first is row {row + row_offset} (column {column}). NaN marks a missing value "
                "here, infinity does not."
            )
        raise ValueError(
            f"Input {name} has {n_bad} row(s) with no observed value (every entry NaN); the "
            f"first is row {row + row_offset}. A row needs at least one observed entry: remove "
            "these rows."
        )


def validate_rows(
    estimator, X, *, reset: bool, ensure_min_samples: int = 1, allow_nan: bool = False
) -> np.ndarray:
    """Validate in-memory ``X`` for ``estimator``: scikit-learn's checks, then finiteness.

    scikit-learn's ``validate_data`` checks the shape, dtype (float64 and float32 are kept,
    anything else numeric becomes float64), sparse input and the feature count and names, and
    with ``reset=True`` records ``n_features_in_`` (and ``feature_names_in_``). Finiteness is
    left to :func:`check_finite_rows`, whose message says how many rows are bad and where the
    first one is (with ``allow_nan``, NaN marks a missing entry and only infinity and rows
    without any observed entry are refused). Every estimator of the package validates its
    arrays here.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), C-contiguous float64 or float32

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm import GaussianMixture
    >>> from fastgmm.validation import validate_rows
    >>> X = validate_rows(GaussianMixture(), [[1, 2], [3, 4]], reset=True)
    >>> X.dtype, X.flags.c_contiguous
    (dtype('float64'), True)
    >>> try:
    ...     validate_rows(GaussianMixture(), [[1.0, np.nan]], reset=True)
    ... except ValueError as exc:
    ...     print(str(exc).split(";")[0])
    Input X contains NaN or infinity: 1 row(s) have non-finite values
    """
    from sklearn.utils.validation import validate_data

    X = validate_data(
        estimator,
        X,
        reset=reset,
        dtype=[np.float64, np.float32],
        ensure_min_samples=ensure_min_samples,
        ensure_all_finite=False,
        order="C",
    )
    check_finite_rows(X, allow_nan=allow_nan)
    return X


def check_n_samples(n_samples: int, n_components: int) -> None:
    """Raise scikit-learn's ``ValueError`` unless there are at least as many rows as components.

    Examples
    --------
    >>> from fastgmm.validation import check_n_samples
    >>> check_n_samples(5, 3)
    >>> check_n_samples(2, 3)
    Traceback (most recent call last):
    ...
    ValueError: Expected n_samples >= n_components but got n_components = 3, n_samples = 2
    """
    if n_samples < n_components:
        raise ValueError(
            "Expected n_samples >= n_components "
            f"but got n_components = {n_components}, n_samples = {n_samples}"
        )


def check_sample_weight(sample_weight, X) -> np.ndarray:
    """``sample_weight`` for ``X`` as float64, checked as scikit-learn 1.9 checks it.

    scikit-learn's ``_check_sample_weight`` checks the shape and, with
    ``ensure_non_negative=True``, the sign; it rejects all-zero weights only from 1.9 on. With
    scikit-learn 1.6 to 1.8 (the supported range starts at 1.6) such weights went on into the
    initialisation and failed there with "probabilities contain NaN"; this check gives every
    supported version 1.9's message.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.validation import check_sample_weight
    >>> X = np.zeros((3, 2))
    >>> check_sample_weight(None, X)
    array([1., 1., 1.])
    >>> check_sample_weight(np.zeros(3), X)
    Traceback (most recent call last):
    ...
    ValueError: Sample weights must contain at least one non-zero number.
    """
    from sklearn.utils.validation import _check_sample_weight

    sample_weight = _check_sample_weight(
        sample_weight, X, dtype=np.float64, ensure_non_negative=True
    )
    if not np.any(sample_weight):
        raise ValueError("Sample weights must contain at least one non-zero number.")
    return sample_weight


def check_shape(param: np.ndarray, shape: tuple, name: str) -> None:
    """Raise ``ValueError`` (scikit-learn's wording) unless ``param`` has ``shape``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm.validation import check_shape
    >>> check_shape(np.zeros((2, 3)), (2, 3), "means")
    >>> check_shape(np.zeros(3), (2,), "weights")
    Traceback (most recent call last):
    ...
    ValueError: The parameter 'weights' should have the shape of (2,), but got (3,)
    """
    if param.shape != shape:
        raise ValueError(
            f"The parameter '{name}' should have the shape of {shape}, but got {param.shape}"
        )


def as_float_array(value, name: str) -> np.ndarray:
    """A user-given parameter as a finite float64 array, or an error that names it.

    Examples
    --------
    >>> from fastgmm.validation import as_float_array
    >>> as_float_array([1, 2], "weights")
    array([1., 2.])
    """
    try:
        array = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(
            f"The parameter '{name}' could not be converted to an array: {exc}"
        ) from None
    if array.dtype.kind not in "biuf":
        raise TypeError(f"The parameter '{name}' must be numeric, but has dtype {array.dtype}.")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"The parameter '{name}' contains NaN or infinity.")
    return array


def check_weights_init(weights, n_components: int) -> np.ndarray:
    """``weights_init`` as a float64 array, checked as scikit-learn checks it.

    The sum is checked in the weights' own precision, as scikit-learn does: float32 weights
    may miss 1 by 1e-6 (their rounding), float64 ones by 1e-8. scikit-learn's range message
    prints the minimum as "max value" and the maximum as "min value"; the same text is kept so
    that code matching scikit-learn's messages keeps working.

    Examples
    --------
    >>> from fastgmm.validation import check_weights_init
    >>> check_weights_init([0.25, 0.75], 2)
    array([0.25, 0.75])
    >>> check_weights_init([0.5, 0.6], 2)
    Traceback (most recent call last):
    ...
    ValueError: The parameter 'weights' should be normalized, but got sum(weights) = 1.10000
    """
    given = np.asarray(weights)
    dtype = np.float32 if getattr(given, "dtype", None) == np.float32 else np.float64
    weights = as_float_array(weights, "weights").astype(dtype)
    check_shape(weights, (n_components,), "weights")
    if np.any(weights < 0.0) or np.any(weights > 1.0):
        raise ValueError(
            "The parameter 'weights' should be in the range [0, 1], but got max value "
            f"{weights.min():.5f}, min value {weights.max():.5f}"
        )
    atol = 1e-6 if dtype == np.float32 else 1e-8
    if not np.allclose(float(abs(1.0 - weights.sum())), 0.0, atol=atol):
        raise ValueError(
            "The parameter 'weights' should be normalized, but got sum(weights) = "
            f"{weights.sum():.5f}"
        )
    return weights.astype(np.float64)


def check_means_init(means, n_components: int, n_features: int) -> np.ndarray:
    """``means_init`` as a finite float64 array of shape (n_components, n_features).

    Examples
    --------
    >>> from fastgmm.validation import check_means_init
    >>> check_means_init([[0, 0], [1, 1]], 2, 2).dtype
    dtype('float64')
    """
    means = as_float_array(means, "means")
    check_shape(means, (n_components, n_features), "means")
    return means
