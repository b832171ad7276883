"""pCLTV: net revenue in the next H days, by LightGBM on the point-in-time features.

The target is learnt in thousands of currency units so that float32 ONNX trees agree
with native LightGBM to 1e-5 of the model's unit (a tenth of a cent).
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np

from service.training import onnx_export

OUTPUT_SCALE = 1000.0

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


@dataclass
class PcltvModel:
    regressor: lgb.LGBMRegressor

    def predict_scaled(self, X: np.ndarray) -> np.ndarray:
        return np.maximum(self.regressor.predict(X.astype(np.float32)), 0.0)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.predict_scaled(X) * OUTPUT_SCALE

    def to_onnx(self, n_features: int):
        return onnx_export.non_negative_regressor(self.regressor, n_features)


def fit_pcltv(X: np.ndarray, revenue: np.ndarray, seed: int) -> PcltvModel:
    regressor = lgb.LGBMRegressor(random_state=seed, **PARAMS)
    regressor.fit(X, revenue / OUTPUT_SCALE)
    onnx_export.snap_thresholds_to_float32(regressor)
    return PcltvModel(regressor)


def discount_factor(horizon_days: int, annual_rate: float) -> float:
    """Average discount over the horizon for revenue spread evenly across it."""
    if annual_rate == 0:
        return 1.0
    months = max(1, round(horizon_days / 30.4375))
    return float(np.mean([(1 + annual_rate) ** -((m + 0.5) / 12) for m in range(months)]))
