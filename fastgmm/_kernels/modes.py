"""How a statistics kernel obtains responsibilities (an argument of every statistics driver).

Kept apart from the drivers so that Python code can name the modes without loading a kernel
module (see ``fastgmm.estep``).
"""

SOFT = 0  # EM: posterior probabilities from the current parameters
HARD = 1  # one-hot at the most probable component (k-means assignment with identity factors)
GIVEN = 2  # read from ``resp_in`` (initialisation from random responsibilities or a partition)
SCORE = 3  # as SOFT, but only the totals (log-likelihood, ICL and entropy terms): no statistics
