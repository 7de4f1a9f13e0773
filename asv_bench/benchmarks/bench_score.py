"""Prediction: ``predict``, ``predict_proba`` and ``score_samples`` of a fitted model."""

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from fastgmm import GaussianMixture

from . import COVARIANCE_TYPES, SIZES, fixed_work_params, make_mixture, warm_jit


class Score:
    """Scoring ``SIZES['medium']`` rows with a model fitted by one EM iteration."""

    params = (list(COVARIANCE_TYPES), ["float64", "float32"])
    param_names = ["covariance_type", "dtype"]
    timeout = 300

    def setup(self, covariance_type, dtype):
        warm_jit(dtype)
        self.mixture = make_mixture(*SIZES["medium"], covariance_type, dtype=np.dtype(dtype))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model = GaussianMixture(**fixed_work_params(self.mixture, max_iter=1))
            self.model.fit(self.mixture.X)

    def time_predict(self, covariance_type, dtype):
        self.model.predict(self.mixture.X)

    def time_predict_proba(self, covariance_type, dtype):
        self.model.predict_proba(self.mixture.X)

    def time_score_samples(self, covariance_type, dtype):
        self.model.score_samples(self.mixture.X)

    def peakmem_predict_proba(self, covariance_type, dtype):
        self.model.predict_proba(self.mixture.X)
