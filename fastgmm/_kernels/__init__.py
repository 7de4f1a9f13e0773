"""Numba kernels: pure functions on arrays, no Python objects, float64 accumulators.

``blocks`` holds the serial per-block building blocks, ``estep`` the parallel drivers that run
them over row blocks (statistics for EM, per-row scores for prediction), and ``kmeans`` the
k-means++ seeding and Lloyd steps used for initialisation. Nothing here imports the public API.
"""
