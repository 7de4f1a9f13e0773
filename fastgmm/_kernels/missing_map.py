"""The missing-value E-step through a quadratic feature map per pattern: two BLAS products a run.

The same statistics as :func:`fastgmm._kernels.missing.missing_statistics` (the exact E-step of
Ghahramani & Jordan 1994), computed the way :mod:`fastgmm._kernels.feature_map` computes the
complete rows' for small D. Within a run of rows with one pattern (observed coordinates ``o``,
missing ``m``) and for one component, with ``y = x_o - c_o`` about the map's centre ``c``:

* the marginal log-density is a quadratic function of ``y`` (its precision is the Schur
  complement ``P = Sigma_oo^-1 = Lambda_oo - Lambda_om Lambda_mm^-1 Lambda_mo``), so one matrix
  product of the run's features ``[y, y_d y_e (d <= e), 1]`` with every component's
  coefficients scores them all;
* the filled row is affine in ``y``: ``x_hat - shift = A y + b``, with ``A`` the identity on
  ``o`` and the regression ``G = -Lambda_mm^-1 Lambda_mo`` on ``m``. The expected statistics of
  the run are therefore ``A M A^T``-like transforms of the responsibility-weighted moments ``M``
  of its features, another matrix product (responsibilities times features) for all components,
  plus the conditional covariance ``Lambda_mm^-1`` times the run's weight.

Per row this is a product with about ``D^2 / 2`` features for every component, as on the
complete rows; the per-(run, component) algebra (``G``, ``P``, the transforms: O(D^3)) is shared
by the run's rows, which the rows' sort by pattern makes long. The price is the feature map's:
moments about one centre, so a component whose mean lies far from it (in its own standard
deviations) loses digits. It is used only where the complete rows' feature map is
(``fastgmm.stats.FeatureMap``'s limits; ``fastgmm.estep.choose_path``), for EM and scoring
passes; per-row outputs and the other modes use the exact kernels.
"""

import numpy as np
from numba import prange

from .._jit import inline, kernel
from .blocks import DIAG, responsibilities, sum_slots, total_weight
from .missing import (
    _HALF_LOG_2PI,
    conditional_covariances,
    factor_pattern,
    find_patterns,
    load_rows,
    pattern_buffers,
    row_buffers,
    solve_missing,
)
from .modes import SCORE


@inline
def run_coefficients(idx, n_m, n_o, form, tables, coef):
    """The run's regression ``G`` and every component's feature-map coefficients.

    ``tables`` is ``(chol, inv_diag, half_logdet, value, gain, schur, t)``: ``gain[a, c, k]``
    receives ``G_k`` (missing ``a`` on observed ``c``), ``schur[c1, c2, k]`` the marginal
    precision ``P_k``; ``coef`` (F, K) the coefficients of the features ``[y (n_o), y_c1 y_c2
    (c1 <= c2, row-major), 1]`` of ``y = x_o - centre_o``. Components innermost throughout.
    """
    means, centre, prec_t, log_const = form
    chol, inv_diag, half_logdet, value, gain, schur, t = tables
    n_components = means.shape[0]
    if n_m > 0:
        factor_pattern(prec_t, idx, n_m, chol, inv_diag, half_logdet, value)
    else:
        for k in range(n_components):
            half_logdet[k] = 0.0
    # G = -Lambda_mm^-1 Lambda_mo, one observed column at a time.
    for c in range(n_o):
        oc = idx[n_m + c]
        for a in range(n_m):
            row = t[a]
            src = prec_t[idx[a], oc]
            for k in range(n_components):
                row[k] = src[k]
        solve_missing(t, n_m, chol, inv_diag)
        for a in range(n_m):
            row = t[a]
            dst = gain[a, c]
            for k in range(n_components):
                dst[k] = -row[k]
    # P = Lambda_oo + Lambda_om G (both triangles: the run's rows outnumber these entries).
    for c1 in range(n_o):
        o1 = idx[n_m + c1]
        for c2 in range(n_o):
            dst = schur[c1, c2]
            src = prec_t[o1, idx[n_m + c2]]
            for k in range(n_components):
                dst[k] = src[k]
            for a in range(n_m):
                coupling = prec_t[o1, idx[a]]
                g = gain[a, c2]
                for k in range(n_components):
                    dst[k] += coupling[k] * g[k]
    # log N(x_o) = const - (y - nu)^T P (y - nu) / 2, nu = mu_o - centre_o.
    n_features = n_o + n_o * (n_o + 1) // 2 + 1
    constant = coef[n_features - 1]
    for k in range(n_components):
        constant[k] = log_const[k] + n_m * _HALF_LOG_2PI - half_logdet[k]
    # nu_k = mu_k,o - centre_o into t's first rows (free once G is known), then P nu.
    for c in range(n_o):
        o = idx[n_m + c]
        nu = t[c]
        for k in range(n_components):
            nu[k] = means[k, o] - centre[o]
    for c1 in range(n_o):
        linear = coef[c1]
        p = schur[c1, 0]
        nu = t[0]
        for k in range(n_components):
            linear[k] = p[k] * nu[k]
        for c2 in range(1, n_o):
            p = schur[c1, c2]
            nu = t[c2]
            for k in range(n_components):
                linear[k] += p[k] * nu[k]
        nu = t[c1]
        for k in range(n_components):
            constant[k] -= 0.5 * linear[k] * nu[k]
    f = n_o
    for c1 in range(n_o):
        for c2 in range(c1, n_o):
            dst = coef[f]
            p = schur[c1, c2]
            scale = -0.5 if c1 == c2 else -1.0
            for k in range(n_components):
                dst[k] = scale * p[k]
            f += 1


@inline
def run_shape(starts, n_miss, g, n_features):
    """Run ``g``'s first and past-last columns, missing and observed counts, and features."""
    n_m = n_miss[g]
    n_o = n_features - n_m
    return starts[g], starts[g + 1], n_m, n_o, n_o + n_o * (n_o + 1) // 2 + 1


@inline
def run_features(xt, s, e, idx, n_m, n_o, centre, phi):
    """The run's features ``[y, y_c1 y_c2 (c1 <= c2), 1]`` into ``phi`` (F, e - s)."""
    n = e - s
    for c in range(n_o):
        d = idx[n_m + c]
        src = xt[d, s:e]
        dst = phi[c]
        o = centre[d]
        for j in range(n):
            dst[j] = src[j] - o
    f = n_o
    for c1 in range(n_o):
        left = phi[c1]
        for c2 in range(c1, n_o):
            right = phi[c2]
            dst = phi[f]
            for j in range(n):
                dst[j] = left[j] * right[j]
            f += 1
    last = phi[f]
    for j in range(n):
        last[j] = 1.0


@inline
def run_statistics(idx, n_m, n_o, form, tables, shift, moments, full, s1, s2, work):
    """Add the run's expected statistics, from the weighted moments of its features.

    ``moments`` (K, F) is ``sum_j w_j r_kj phi_j``: ``m0``, ``m1`` and ``m2`` (the features'
    constant, linear and quadratic parts). With ``x_hat - shift_k = A y + b`` (``A`` the
    identity on the observed coordinates and ``G_k`` on the missing ones) the run adds
    ``A m1 + b m0`` to ``s1`` and ``A m2 A^T + A m1 b^T + b m1^T A^T + m0 b b^T``, plus
    ``m0 Lambda_mm^-1`` on the missing block, to ``s2`` (upper triangle, or diagonal).
    ``work`` is ``(where, m2, am2, am1, offset, linv, cov)`` scratch.
    """
    means, centre = form[0], form[1]
    chol, inv_diag, gain = tables[0], tables[1], tables[4]
    where, m2, am2, am1, offset, linv, cov = work
    n_components, n_features = means.shape
    n_map = n_o + n_o * (n_o + 1) // 2 + 1
    for c in range(n_o):
        where[idx[n_m + c]] = c
    for a in range(n_m):
        where[idx[a]] = -1 - a
    if n_m > 0:
        conditional_covariances(n_m, chol, inv_diag, linv, cov)
    for k in range(n_components):
        m = moments[k]
        m0 = m[n_map - 1]
        if m0 == 0.0:
            continue
        f = n_o
        for c1 in range(n_o):
            for c2 in range(c1, n_o):
                m2[c1, c2] = m[f]
                m2[c2, c1] = m[f]
                f += 1
        for d in range(n_features):
            w = where[d]
            if w >= 0:
                offset[d] = centre[d] - shift[k, d]
                am1[d] = m[w]
                for c in range(n_o):
                    am2[d, c] = m2[w, c]
            else:
                a = -1 - w
                value_b = means[k, d] - shift[k, d]
                total = 0.0
                for c in range(n_o):
                    g = gain[a, c, k]
                    o = idx[n_m + c]
                    value_b -= g * (means[k, o] - centre[o])
                    total += g * m[c]
                offset[d] = value_b
                am1[d] = total
                for c2 in range(n_o):
                    total = 0.0
                    for c1 in range(n_o):
                        total += gain[a, c1, k] * m2[c1, c2]
                    am2[d, c2] = total
        for d in range(n_features):
            s1[k, d] += am1[d] + offset[d] * m0
            for e in range(d, n_features if full else d + 1):
                w = where[e]
                if w >= 0:
                    second = am2[d, w]
                else:
                    a = -1 - w
                    second = 0.0
                    for c in range(n_o):
                        second += am2[d, c] * gain[a, c, k]
                    wd = where[d]
                    if wd < 0:
                        second += m0 * cov[-1 - wd, a, k]
                second += am1[d] * offset[e] + offset[d] * am1[e] + m0 * offset[d] * offset[e]
                if full:
                    s2[k, d, e] += second
                else:
                    s2[k, 0, d] += second


@kernel
def missing_map_statistics(
    X, rows, keys, sample_weight, form, shift, mode, kind, want_entropy, n_slots, block
):
    """The statistics of :func:`fastgmm._kernels.missing.missing_statistics` (``SOFT`` and
    ``SCORE`` modes) through a feature map per pattern (see the module docstring).

    Parameters
    ----------
    X, rows, keys, sample_weight, shift, mode, kind, want_entropy, n_slots, block
        As for ``missing_statistics`` (``rows`` sorted by pattern).
    form : tuple
        ``(means, centre, prec_t, log_const)``: the means (K, D), the feature map's centre
        (D,), the precisions with the components last (D, D, K) and the constants (K,).
    """
    means = form[0]
    n_components, n_features = means.shape
    n_rows_total = rows.shape[0]
    n_blocks = (n_rows_total + block - 1) // block
    full = kind != DIAG
    n_map_max = n_features + n_features * (n_features + 1) // 2 + 1
    nk_p = np.zeros((n_slots, n_components))
    s1_p = np.zeros((n_slots, n_components, n_features))
    s2_p = np.zeros((n_slots, n_components, n_features if full else 1, n_features))
    tot_p = np.zeros((n_slots, 3))
    sw_p = np.zeros(n_slots)
    for p in prange(n_slots):
        # The exact kernel's buffers, with the pattern tables reused: its (D, D, K) coupling
        # table holds G here, one more holds P, and its (D, K) row scratch serves as t.
        xt, _, _, exact, linv, cov, starts, idx, n_miss = pattern_buffers(
            n_features, n_components, block
        )
        schur = np.zeros((n_features, n_features, n_components))
        tables = (exact[0], exact[1], exact[2], exact[3], exact[4], schur, exact[5])
        work = (
            np.zeros(n_features, dtype=np.int64),
            np.zeros((n_features, n_features)),
            np.zeros((n_features, n_features)),
            np.zeros(n_features),
            np.zeros(n_features),
            linv,
            cov,
        )
        coef_t = np.zeros((n_map_max, n_components))
        # A block's runs partition its rows, so all their features fit in n_map_max * block.
        flat_phi = np.zeros(n_map_max * block)
        flat_out = np.zeros(n_components * block)
        flat_moments = np.zeros(n_components * n_map_max)
        run_at = np.zeros(block + 1, dtype=np.int64)
        lp, w, mx, _, lse, extras, bits = row_buffers(n_components, block)
        for blk in range(p * n_blocks // n_slots, (p + 1) * n_blocks // n_slots):
            first = blk * block
            n_rows = min(block, n_rows_total - first)
            load_rows(X, rows, first, n_rows, sample_weight, xt, w)
            n_groups = find_patterns(xt, keys, first, n_rows, starts, idx, n_miss)
            for g in range(n_groups):
                s, e, n_m, n_o, n_map = run_shape(starts, n_miss, g, n_features)
                n = e - s
                coef = coef_t[:n_map]
                run_coefficients(idx[g], n_m, n_o, form, tables, coef)
                phi = flat_phi[run_at[g] : run_at[g] + n_map * n].reshape((n_map, n))
                run_at[g + 1] = run_at[g] + n_map * n
                run_features(xt, s, e, idx[g], n_m, n_o, form[1], phi)
                out = flat_out[: n * n_components].reshape((n, n_components))
                np.dot(phi.T, coef, out)
                for k in range(n_components):
                    dst = lp[k, s:e]
                    for j in range(n):
                        dst[j] = out[j, k]
            responsibilities(lp, n_rows, True, w, lse, mx, bits, extras, want_entropy, tot_p[p])
            sw_p[p] += total_weight(w, n_rows)
            if mode == SCORE:
                continue
            for g in range(n_groups):
                s, e, n_m, n_o, n_map = run_shape(starts, n_miss, g, n_features)
                n = e - s
                # The run's tables again (G and the factors of Lambda_mm), for the transform.
                run_coefficients(idx[g], n_m, n_o, form, tables, coef_t[:n_map])
                phi = flat_phi[run_at[g] : run_at[g] + n_map * n].reshape((n_map, n))
                weighted = flat_out[: n_components * n].reshape((n_components, n))
                run_w = w[s:e]
                for k in range(n_components):
                    src = lp[k, s:e]
                    dst = weighted[k]
                    for j in range(n):
                        dst[j] = run_w[j] * src[j]
                    total = 0.0
                    for j in range(n):  # a separate, read-only reduction (see blocks.weigh)
                        total += dst[j]
                    nk_p[p, k] += total
                moments = flat_moments[: n_components * n_map].reshape((n_components, n_map))
                np.dot(weighted, phi.T, moments)
                run_statistics(
                    idx[g], n_m, n_o, form, tables, shift, moments, full, s1_p[p], s2_p[p], work
                )
    return sum_slots(nk_p), sum_slots(s1_p), sum_slots(s2_p), sum_slots(tot_p), sum_slots(sw_p)
