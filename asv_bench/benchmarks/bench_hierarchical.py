"""Model-based hierarchical agglomeration (``hc_tree``), mclust's initialisation, at its sizes.

mclust agglomerates at most 2000 rows; the tree's cost grows as ``n^2 p^3`` in time and
``8 n^2`` bytes in memory, so 2000 rows with 4 and 10 features bracket what a fit ever pays.
"""

import numpy as np

from fastgmm.hierarchical import hc_tree


class HierarchicalTree:
    """The whole tree of 2000 rows (four unequal Gaussian clusters, fixed seed)."""

    params = ([4, 10],)
    param_names = ["n_features"]
    timeout = 300

    def setup(self, n_features):
        rng = np.random.default_rng(n_features)
        sizes = (700, 600, 400, 300)
        self.X = np.vstack(
            [
                rng.normal(size=(m, n_features))
                @ (np.eye(n_features) + 0.5 * rng.normal(size=(n_features, n_features)))
                + rng.normal(scale=4.0, size=n_features)
                for m in sizes
            ]
        )
        hc_tree(self.X[:50])  # loads the compiled kernel

    def time_hc_tree(self, n_features):
        hc_tree(self.X)

    def peakmem_hc_tree(self, n_features):
        hc_tree(self.X)
