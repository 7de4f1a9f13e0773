"""Names that the library and the command line share, in a standard-library leaf.

The command line's parser needs the covariance types and initialisation methods to build
``--help``; importing them from the numerical modules would load NumPy (and more) for every
``fastgmm --help``. Both sides read them from here, so they cannot drift apart.
"""

#: scikit-learn's covariance types, with scikit-learn's attribute shapes.
SKLEARN_COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")

#: mclust's fourteen covariance models, in mclust's order (``mclust.options("emModelNames")``):
#: volume, shape and orientation Equal across components, Variable, or the Identity.
MCLUST_MODELS = (
    "EII",
    "VII",
    "EEI",
    "VEI",
    "EVI",
    "VVI",
    "EEE",
    "VEE",
    "EVE",
    "VVE",
    "EEV",
    "VEV",
    "EVV",
    "VVV",
)

#: Variants that reproduce mclust 6.0.0 where its M-step is not the maximum-likelihood one:
#: ``'VVE_mclust'`` updates VVE's common orientation as if the volumes were equal (see
#: :class:`fastgmm.covariance.MclustModel`).
MCLUST_VARIANTS = ("VVE_mclust",)

#: What ``covariance_types='mclust'`` stands for in model selection.
COVARIANCE_ALIASES = {"mclust": MCLUST_MODELS, "sklearn": SKLEARN_COVARIANCE_TYPES}

#: Initialisation methods accepted by ``init_params``.
INIT_METHODS = ("kmeans", "k-means++", "random", "random_from_data", "hc")

#: Every accepted ``covariance_type``.
COVARIANCE_TYPES = SKLEARN_COVARIANCE_TYPES + MCLUST_MODELS + MCLUST_VARIANTS
