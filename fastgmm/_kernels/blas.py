"""Two BLAS routines that ``np.dot`` does not offer, callable from cached Numba kernels.

``syrk`` forms a symmetric product ``Z Z^T`` at half the flops of a general product, and
``trmm`` multiplies by a triangular matrix at half the flops as well; together they halve the
work of a full-covariance E-step. They come from SciPy's ``cython_blas`` (the BLAS that Numba's
own ``np.dot`` already uses), in double precision (``d``) for float64 buffers and single
precision (``s``) for float32 ones, which run at twice the flop rate.

Why a symbol name rather than a function pointer: a ctypes pointer baked into a kernel makes
Numba refuse to cache it, and every new process would compile again. Registering the address
under a fixed name with LLVM at import, and declaring an ``ExternalFunction`` of that name, keeps
the compiled code free of addresses, so it caches like any other kernel.

Both wrappers view the C-ordered arrays of the kernels as the column-major matrices BLAS expects
(a C-ordered ``(r, c)`` array is the column-major ``(c, r)`` matrix of the transpose).
"""

import llvmlite.binding as ll
import numpy as np
from numba import types
from numba.extending import get_cython_function_address

from .._jit import inline

for _name in ("dsyrk", "dtrmm", "ssyrk", "strmm"):
    ll.add_symbol(
        f"fastgmm_{_name}", get_cython_function_address("scipy.linalg.cython_blas", _name)
    )

_P = types.voidptr
# dsyrk(uplo, trans, n, k, alpha, a, lda, beta, c, ldc)
# (every argument is a pointer, so one declaration serves both precisions: the wrappers pick the
# routine from the buffers' item size, a compile-time constant that LLVM folds away)
_dsyrk = types.ExternalFunction("fastgmm_dsyrk", types.void(*([_P] * 10)))
_ssyrk = types.ExternalFunction("fastgmm_ssyrk", types.void(*([_P] * 10)))
# dtrmm(side, uplo, transa, diag, m, n, alpha, a, lda, b, ldb)
_dtrmm = types.ExternalFunction("fastgmm_dtrmm", types.void(*([_P] * 11)))
_strmm = types.ExternalFunction("fastgmm_strmm", types.void(*([_P] * 11)))


# See gram_lower.
_SYRK_MIN_FEATURES = 32


@inline
def gram_lower(Z, out):
    """``out = Z Z^T`` on and below the diagonal (row-major view); above it, untouched or
    the same products.

    ``Z`` is a C-ordered ``(D, B)`` array, ``out`` a C-ordered ``(D, D)`` array of the same
    dtype (float32 or float64).

    Below ``_SYRK_MIN_FEATURES`` features the whole product is one general matrix product:
    OpenBLAS's small-matrix ``gemm`` kernels run there at twice the rate of ``syrk`` for half
    the flops (measured, one thread, B=1024: D=24 ``syrk`` 43 ns per column at 13 GFLOP/s,
    ``gemm`` 25 ns at 46 GFLOP/s; from D=32 on ``syrk`` is faster: 74 against 85 ns).
    """
    n_features, n_cols = Z.shape
    if n_features < _SYRK_MIN_FEATURES:
        np.dot(Z, Z.T, out)
        return
    flags = np.empty(2, np.uint8)
    flags[0] = ord("U")  # upper in column-major = lower in row-major
    flags[1] = ord("T")
    sizes = np.empty(3, np.int32)
    sizes[0] = n_features
    sizes[1] = n_cols
    scalars = np.empty(2, Z.dtype)
    scalars[0] = 1.0
    scalars[1] = 0.0
    args = (
        flags[0:].ctypes,
        flags[1:].ctypes,
        sizes[0:].ctypes,
        sizes[1:].ctypes,
        scalars[0:].ctypes,
        Z.ctypes,
        sizes[1:].ctypes,
        scalars[1:].ctypes,
        out.ctypes,
        sizes[0:].ctypes,
    )
    if Z.itemsize == 4:
        _ssyrk(*args)
    else:
        _dsyrk(*args)


@inline
def upper_transpose_times(U, M):
    """``M = U^T M`` in place, for upper-triangular ``U`` (D, D) and ``M`` (D, B), C-ordered.

    Both arrays have the same dtype, float32 or float64.
    """
    n_features, n_cols = M.shape
    flags = np.empty(4, np.uint8)
    flags[0] = ord("R")  # column-major: M^T := M^T op(A), with A the column-major view of U
    flags[1] = ord("L")  # that view is U^T, lower triangular
    flags[2] = ord("T")  # op(A) = A^T = U
    flags[3] = ord("N")
    sizes = np.empty(2, np.int32)
    sizes[0] = n_cols
    sizes[1] = n_features
    alpha = np.ones(1, M.dtype)
    args = (
        flags[0:].ctypes,
        flags[1:].ctypes,
        flags[2:].ctypes,
        flags[3:].ctypes,
        sizes[0:].ctypes,
        sizes[1:].ctypes,
        alpha.ctypes,
        U.ctypes,
        sizes[1:].ctypes,
        M.ctypes,
        sizes[0:].ctypes,
    )
    if M.itemsize == 4:
        _strmm(*args)
    else:
        _dtrmm(*args)
