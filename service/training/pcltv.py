"""pCLTV training: LightGBM on the features and on the outputs of the field's BG/NBD +
Gamma-Gamma model, learning a multiplier of the probabilistic revenue (see
`service.modeling.pcltv` for the served formula).

The served value blends the two: BLEND_WEIGHT × trees + (1 − BLEND_WEIGHT) × BG/NBD.
The trees are trained on cutoffs a horizon or more before serving time, when the
population was younger; the probabilistic model is refitted on the newest snapshot
(it needs no labels), so leaning partly on it hedges against that drift. The weight
is a fixed design constant (chosen on the seed-42 simulation, see docs/models.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np

from service.modeling.pcltv import FEATURES, Probabilistic, base, bgnbd_inputs, blend
from service.training import onnx_export
from service.training import probabilistic as prob

BASE_OFFSET = 5.0
BASE_SCALE = 100.0
BLEND_WEIGHT = 0.8
SERVING_CONSTANTS = {
    "base_offset": BASE_OFFSET,
    "base_scale": BASE_SCALE,
    "blend_weight": BLEND_WEIGHT,
}

# Squared error on the multiplier weighted by base² is squared error on revenue.
PARAMS = dict(
    objective="regression",
    n_estimators=200,
    learning_rate=0.03,
    num_leaves=15,
    min_child_samples=200,
    colsample_bytree=0.9,
    **onnx_export.LIGHTGBM_COMMON,
)


def fit_probabilistic(X: np.ndarray, horizon_days: int) -> Probabilistic:
    """BG/NBD on the buyers, Gamma-Gamma on the repeat buyers with spend, of rows X."""
    buyers, x, t_x, T, monetary = bgnbd_inputs(X)
    bg = prob.fit_bgnbd(x[buyers], t_x[buyers], T[buyers])
    repeat = buyers & (x > 0) & (monetary > 0)
    gg = prob.fit_gamma_gamma(x[repeat], monetary[repeat], q_constraint=True)
    return Probabilistic(bg, gg, horizon_days)


@dataclass
class PcltvModel:
    regressor: lgb.LGBMRegressor
    probabilistic: Probabilistic

    def multiplier(self, X_augmented: np.ndarray) -> np.ndarray:
        return np.maximum(self.regressor.predict(X_augmented), 0.0)

    def predict(self, X: np.ndarray) -> np.ndarray:
        augmented = self.probabilistic.augment(X)
        return blend(self.multiplier(augmented), augmented, SERVING_CONSTANTS)

    def to_onnx(self):
        return onnx_export.non_negative_regressor(self.regressor, len(FEATURES))


def fit_pcltv(
    X: np.ndarray, revenue: np.ndarray, X_newest: np.ndarray, horizon_days: int, seed: int
) -> PcltvModel:
    """Trees on the labelled cutoffs; BG/NBD + Gamma-Gamma on the newest snapshot."""
    probabilistic = fit_probabilistic(X_newest, horizon_days)
    augmented = probabilistic.augment(X)
    weights = base(augmented, BASE_OFFSET, BASE_SCALE)
    regressor = lgb.LGBMRegressor(random_state=seed, **PARAMS)
    regressor.fit(augmented, revenue / weights, sample_weight=weights**2)
    onnx_export.snap_thresholds_to_float32(regressor)
    return PcltvModel(regressor, probabilistic)
