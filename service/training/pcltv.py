"""pCLTV: net revenue in the next H days, by LightGBM on the point-in-time features.

Trees cannot extrapolate: a customer buying more often than anyone in the training
data would be capped at the largest leaf. So the model learns a *multiplier* of the
customer's trailing-year revenue (plus a constant for customers with none), and the
prediction is multiplier × (revenue_365d + BASE_OFFSET) × BASE_SCALE; the ONNX graph is
the multiplier, the product is done by the scoring engine from the manifest. BASE_SCALE
keeps multipliers below ~2, where float32 trees agree with float64 ones to 1e-5.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np

from service.features.vector import MODEL_FEATURES
from service.training import onnx_export

BASE_FEATURE = "revenue_365d"
BASE_OFFSET = 50.0
BASE_SCALE = 10.0

PARAMS = dict(
    objective="tweedie",
    tweedie_variance_power=1.3,
    n_estimators=400,
    learning_rate=0.04,
    num_leaves=31,
    min_child_samples=50,
    subsample=0.8,
    subsample_freq=1,
    colsample_bytree=0.9,
    verbose=-1,
    n_jobs=2,
)


def base(X: np.ndarray) -> np.ndarray:
    column = X[:, MODEL_FEATURES.index(BASE_FEATURE)].astype(np.float64)
    return (np.nan_to_num(column) + BASE_OFFSET) * BASE_SCALE


@dataclass
class PcltvModel:
    regressor: lgb.LGBMRegressor

    def multiplier(self, X: np.ndarray) -> np.ndarray:
        return np.maximum(self.regressor.predict(X.astype(np.float32)), 0.0)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.multiplier(X) * base(X)

    def to_onnx(self, n_features: int):
        return onnx_export.non_negative_regressor(self.regressor, n_features)


def fit_pcltv(X: np.ndarray, revenue: np.ndarray, seed: int) -> PcltvModel:
    """Weighted by the base so the loss stays on the revenue scale."""
    regressor = lgb.LGBMRegressor(random_state=seed, **PARAMS)
    weights = base(X)
    regressor.fit(X, revenue / weights, sample_weight=weights)
    onnx_export.snap_thresholds_to_float32(regressor)
    return PcltvModel(regressor)


def discount_factor(horizon_days: int, annual_rate: float) -> float:
    """Average discount over the horizon for revenue spread evenly across it."""
    if annual_rate == 0:
        return 1.0
    months = max(1, round(horizon_days / 30.4375))
    return float(np.mean([(1 + annual_rate) ** -((m + 0.5) / 12) for m in range(months)]))
