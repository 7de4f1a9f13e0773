"""Names that the library and the command line share, in a standard-library leaf.

The command line's parser needs the covariance types and initialisation methods to build
``--help``; importing them from the numerical modules would load NumPy (and more) for every
``fastgmm --help``. Both sides read them from here, so they cannot drift apart.
"""

#: scikit-learn's covariance types, with scikit-learn's attribute shapes.
SKLEARN_COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")

#: Initialisation methods accepted by ``init_params``.
INIT_METHODS = ("kmeans", "k-means++", "random", "random_from_data")

#: Every accepted ``covariance_type``.
COVARIANCE_TYPES = SKLEARN_COVARIANCE_TYPES
