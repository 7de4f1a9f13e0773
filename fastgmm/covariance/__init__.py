"""Covariance models: the parameterisations of the mixture's covariance matrices.

Each model turns the statistics of an E-step into covariance parameters (its M-step) and
counts its free parameters. ``_mclust_msteps`` holds the mathematics of mclust's fourteen
models (Celeux & Govaert 1995; Browne & McNicholas 2014; Fraley & Raftery 2007) as plain
NumPy functions, and ``_hypervolume`` the data-region volume of a uniform noise component.
"""
