"""Model-based hierarchical agglomeration with mclust's VVV criterion (``hc(modelName="VVV")``).

Every cluster ``k`` (``n_k`` rows, scatter matrix ``W_k`` about its mean) costs

.. math::

    c_k = n_k \\log\\Bigl( \\det(W_k / n_k) + \\frac{\\beta\\,\\mathrm{tr}\\,W_k
          + \\alpha\\,\\omega}{n_k} \\Bigr),
    \\qquad \\omega = \\frac{\\mathrm{tr}\\,W}{n\\,p},

where ``W`` is the scatter matrix of all ``n`` rows, ``p`` the number of columns, and
``det(W_k / n_k)`` is taken as 0 when ``n_k <= p`` (the scatter of ``n_k`` points has rank
``n_k - 1`` at most). Each step merges the pair of clusters whose merge increases
``sum_k c_k`` least. With ``alpha = beta = 0`` this would be Banfield and Raftery's (1993)
``sum_k n_k log det(W_k / n_k)``; the trace terms make singletons and small clusters finite
(Fraley 1998, "Algorithms for model-based Gaussian hierarchical clustering"; mclust's
``hcVVV(alpha = 1, beta = 1)``, whose documentation names the two traces).

How the formula was found (mclust's code was not read; R was run as a black box): ``hcVVV`` is
not scale invariant, so the small clusters' terms are not simply ``omega`` added to ``W_k``. On
tiny data (all values ~1e-6) R's merges follow ``n_k log((tr W_k + alpha omega) / n_k)``, on huge
data ``n_k log det(W_k / n_k)`` wherever the determinant is not zero; in between, the decision
thresholds R gives (found by bisection, on clusters passed as ``partition``) match ``det + tr``
inside one logarithm to 1e-12, in 2-D and 3-D. The placement of ``alpha`` held for 0.5 and 2
(80 of 80 random partitions), that of ``beta`` for 3 in 39 of 40; this module fixes both at
mclust's default, 1.

Agreement with R: on the SVD transformation (mclust's default) the whole merge sequence equals
R's on every reference set (tests/hc_reference: faithful, iris and seven generated sets up to
2000 x 10, with ties, duplicated rows, a constant column, one variable), and so it does on three
small sets of exact ties on raw variables. On large raw data R departs from this criterion, and
from the rotation invariance that it has: R's decisions between two clusters that were formed
by earlier merges use a smaller determinant of their union (48% to 87% of it in the 12 cases
measured: 2-D unions of 7 rows at scale ~1).
That term is negligible on the SVD scale (entries ~ n^-1/2), and a tree on raw variables of
size ~30 departs from R's after 66 of 99 merges (tests/test_hierarchical.py shows R's own tree
changing there when the data are rotated; ours does not).

Ties (equal merge costs, as with duplicated rows) are decided as ``hcVVV`` decides them, found
by experiment: the live clusters occupy slots ``0 .. n_live - 1``; a merge of slots ``a < b``
keeps the union in ``a`` and moves the last slot's cluster into ``b``; among equal costs the pair
of slots ``(i, j)``, ``i < j``, with the largest ``j``, then the largest ``i``, wins. Duplicated
rows are transformed to bitwise-equal rows (see ``fastgmm.hierarchical``) so that their costs tie
exactly, as in R.

Cost: the matrix of merge costs between live clusters is kept whole (``8 n^2`` bytes: 32 MB for
2000 rows) with the best pair of each column, so a merge costs one evaluation per live cluster
(an ``O(p^3)`` Cholesky factorisation) and ``O(n)`` comparisons; the tree costs ``O(n^2 p^3)``
time. The first pass (every pair of singletons) runs in parallel over rows; each entry is
computed by the same code whatever the thread, so the result does not depend on the thread
count. The merges are serial: a parallel loop per merge would wake the thread pool 2000 times
(about 3 ms each with passive OpenMP waiting, see ``fastgmm._jit``), more than the work.

Measured on this project's shared 2-core machine (load ~2), side by side in one run
(``python asv_bench/hc_vs_r.py --repeat 7``, medians; R's time is ``system.time(hc(...))``
inside R): 2000 x 4, R ``hc()`` 1.67 s, ``hc_tree`` 0.34 s (4.9x); 2000 x 10, R 2.01 s,
``hc_tree`` 0.50 s (4.0x); identical merge sequences. Of the kernel's time (0.3 to 0.4 s) the
first pass over the 2e6 pairs of singletons takes 0.09 to 0.2 s (2 and 1 threads), the merges'
~2e6 evaluations the rest.
"""

import numpy as np
from numba import prange

from .._jit import inline, kernel


@inline
def scaled_det(work, n_features, n_rows):
    """``det(work / n_rows)`` from the lower triangle of ``work`` (overwritten by its Cholesky).

    Returns 0 for a matrix that is not numerically positive definite: the scatter of rows that
    span fewer than ``n_features`` dimensions (collinear or duplicated rows).
    """
    det = 1.0
    for c in range(n_features):
        s = work[c, c]
        for k in range(c):
            s -= work[c, k] * work[c, k]
        if s <= 0.0:
            return 0.0
        diag = np.sqrt(s)
        work[c, c] = diag
        # det(work / n) = prod(L_cc^2 / n): one factor per column keeps it in range.
        det *= s / n_rows
        for r in range(c + 1, n_features):
            t = work[r, c]
            for k in range(c):
                t -= work[r, k] * work[c, k]
            work[r, c] = t / diag
    return det


@inline
def merged_cost(counts, means, scatters, a, b, reg, beta, work, diff):
    """Cost of the union of the clusters in slots ``a`` and ``b`` (see the module docstring).

    ``scatters`` hold the lower triangles of the scatter matrices; ``reg`` is ``alpha * omega``.
    ``work`` (p, p) and ``diff`` (p,) are scratch space. Slots are passed as indices rather than
    as row views: building the views cost a third of the time of an evaluation at p = 4.
    """
    n_features = means.shape[1]
    n_a = counts[a]
    n_b = counts[b]
    n_ab = n_a + n_b
    between = n_a * n_b / n_ab
    for d in range(n_features):
        diff[d] = means[a, d] - means[b, d]
    trace = 0.0
    for r in range(n_features):
        for c in range(r + 1):
            work[r, c] = scatters[a, r, c] + scatters[b, r, c] + between * diff[r] * diff[c]
        trace += work[r, r]
    return scatter_cost(work, trace, n_ab, reg, beta)


@inline
def cluster_cost(n_rows, scatter, reg, beta, work):
    """Cost of one cluster from the lower triangle of its scatter matrix (``work`` is scratch)."""
    n_features = scatter.shape[0]
    trace = 0.0
    for r in range(n_features):
        for c in range(r + 1):
            work[r, c] = scatter[r, c]
        trace += scatter[r, r]
    return scatter_cost(work, trace, n_rows, reg, beta)


@inline
def scatter_cost(work, trace, n_rows, reg, beta):
    """``n log(det(W / n) + (beta tr W + reg) / n)`` for a cluster of ``n_rows`` rows whose scatter
    ``W`` has its lower triangle in ``work`` (overwritten) and trace ``trace``; the determinant
    counts as 0 when ``n_rows <= p``."""
    n_features = work.shape[0]
    det = 0.0
    if n_rows > n_features:
        det = scaled_det(work, n_features, n_rows)
    return n_rows * np.log(det + (beta * trace + reg) / n_rows)


@inline
def column_best(costs, j):
    """Best pair ``(i, j)``, ``i < j``, among the live slots: ``(cost, i)``.

    Reads row ``j`` of the symmetric cost matrix (contiguous). Equal costs go to the larger
    ``i`` (mclust's choice).
    """
    best = np.inf
    arg = -1
    for i in range(j):
        v = costs[j, i]
        if arg < 0 or v <= best:
            best = v
            arg = i
    return best, arg


@inline
def mirror_lower(costs):
    """Copy the strict lower triangle of the square ``costs`` onto its upper triangle.

    Tile by tile, so that both the rows read and the columns written stay in cache: the plain
    double loop missed the cache on every write and took 0.1 s of the 0.5 s tree of 2000 rows.
    """
    n = costs.shape[0]
    tile = 64
    for j0 in range(0, n, tile):
        for i0 in range(0, j0 + 1, tile):
            for j in range(j0, min(j0 + tile, n)):
                for i in range(i0, min(i0 + tile, j)):
                    costs[i, j] = costs[j, i]


@inline
def offer(col_cost, col_arg, j, i, v):
    """Let the pair ``(i, j)``, ``i < j``, of cost ``v`` replace column ``j``'s best if better."""
    if col_arg[j] < 0 or v < col_cost[j] or (v == col_cost[j] and i > col_arg[j]):
        col_cost[j] = v
        col_arg[j] = i


@kernel
def agglomerate(Z, params):
    """Merge the rows of ``Z`` into one cluster, cheapest merge first.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_features), float64
        The (transformed) rows; each starts as a cluster of its own.
    params : ndarray of shape (2,), float64
        ``[alpha * omega, beta]`` (see the module docstring).

    Returns
    -------
    merges : ndarray of shape (n_samples - 1, 2), int64
        Step ``s`` merges the clusters whose smallest rows are ``merges[s, 0] < merges[s, 1]``.
    increase : ndarray of shape (n_samples - 1,)
        The criterion's increase at each step.

    Notes
    -----
    The live clusters occupy slots ``0 .. n_live - 1``. A merge keeps the union in the smaller
    of its two slots ``a < b`` and moves the cluster of the last slot into slot ``b``. Ties
    between equal merge costs are decided on these slots: the pair ``(i, j)``, ``i < j``, with
    the largest ``j``, then the largest ``i``. This is the choice ``hcVVV`` makes: with duplicated
    rows (whose merges cost exactly the same) R's merge order follows this rule, and not the rule
    "largest row numbers", once earlier merges have moved clusters.

    ``costs`` is the full symmetric matrix of merge costs between slots (8 n^2 bytes): a merge
    reads and writes whole rows of it, which are contiguous, and writes the mirrored column.
    The triangle alone (half the memory) made every access of a row a cache miss: the tree of
    2000 rows, p = 4, took 0.8 s instead of 0.5 s (same machine, same run).
    """
    n, n_features = Z.shape
    reg = params[0]
    beta = params[1]
    costs = np.empty((n, n))
    counts = np.ones(n)
    means = np.empty((n, n_features))
    scatters = np.zeros((n, n_features, n_features))
    own = np.empty(n)
    name = np.arange(n)  # smallest row of the cluster in each slot
    col_cost = np.full(n, np.inf)
    col_arg = np.full(n, -1, dtype=np.int64)
    singleton = np.log(reg)  # n_k = 1: det 0, trace 0
    for i in range(n):
        own[i] = singleton
        for d in range(n_features):
            means[i, d] = Z[i, d]

    # Every pair of singletons, row by row: row j (pairs i < j) is written by one thread only;
    # the upper triangle is mirrored afterwards.
    for j in prange(n):
        work = np.empty((n_features, n_features))
        diff = np.empty(n_features)
        best = np.inf
        arg = -1
        for i in range(j):
            v = merged_cost(counts, means, scatters, i, j, reg, beta, work, diff) - 2.0 * singleton
            costs[j, i] = v
            if arg < 0 or v <= best:
                best = v
                arg = i
        col_cost[j] = best
        col_arg[j] = arg
    mirror_lower(costs)

    merges = np.empty((max(n - 1, 0), 2), dtype=np.int64)
    increase = np.empty(max(n - 1, 0))
    work = np.empty((n_features, n_features))
    diff = np.empty(n_features)
    n_live = n
    for step in range(n - 1):
        # The cheapest pair; equal costs go to the larger column, then (column_best) larger row.
        b = -1
        best = np.inf
        for j in range(1, n_live):
            if b < 0 or col_cost[j] <= best:
                best = col_cost[j]
                b = j
        a = col_arg[b]
        merges[step, 0] = min(name[a], name[b])
        merges[step, 1] = max(name[a], name[b])
        increase[step] = best

        # Statistics of the union, kept in slot a.
        n_a = counts[a]
        n_b = counts[b]
        n_ab = n_a + n_b
        between = n_a * n_b / n_ab
        for d in range(n_features):
            diff[d] = means[a, d] - means[b, d]
        for r in range(n_features):
            for c in range(r + 1):
                scatters[a, r, c] += scatters[b, r, c] + between * diff[r] * diff[c]
        for d in range(n_features):
            means[a, d] = (n_a * means[a, d] + n_b * means[b, d]) / n_ab
        counts[a] = n_ab
        own[a] = cluster_cost(n_ab, scatters[a], reg, beta, work)
        name[a] = min(name[a], name[b])

        # The last slot's cluster moves into slot b, with its costs.
        last = n_live - 1
        if b != last:
            counts[b] = counts[last]
            own[b] = own[last]
            name[b] = name[last]
            for r in range(n_features):
                means[b, r] = means[last, r]
                for c in range(r + 1):
                    scatters[b, r, c] = scatters[last, r, c]
            for k in range(last):
                costs[b, k] = costs[last, k]
                costs[k, b] = costs[last, k]
            col_cost[b] = np.inf
            col_arg[b] = -1
        n_live = last

        # Merge costs of the union with every other live cluster.
        for k in range(n_live):
            if k != a:
                v = merged_cost(counts, means, scatters, a, k, reg, beta, work, diff)
                v = v - own[a] - own[k]
                costs[a, k] = v
                costs[k, a] = v

        # Column bests. Columns a and b have new contents. A later column j changed in rows a
        # and b (b < n_live): if its best was elsewhere, it stays unless a new entry beats it;
        # if it was in row a or b and no new entry is below the old best, search the column.
        for j in range(1, n_live):
            if j == a or j == b:
                v, i = column_best(costs, j)
                col_cost[j] = v
                col_arg[j] = i
                continue
            old_arg = col_arg[j]
            old_cost = col_cost[j]
            moved = old_arg == a or old_arg == b
            if moved:
                col_cost[j] = np.inf
                col_arg[j] = -1
            if a < j:
                offer(col_cost, col_arg, j, a, costs[a, j])
            if b < j:
                offer(col_cost, col_arg, j, b, costs[b, j])
            if moved and not col_cost[j] < old_cost:
                v, i = column_best(costs, j)
                col_cost[j] = v
                col_arg[j] = i
    return merges, increase
