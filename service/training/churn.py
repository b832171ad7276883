"""Churn: will the customer place no counted order in the next H days?

LightGBM on the point-in-time features, Platt-calibrated on a later period than it
was trained on, evaluated on the latest period whose horizon is complete.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np

from service.training import onnx_export
from service.training.calibration import CalibratedBooster, fit_platt

PARAMS = dict(
    n_estimators=60,
    learning_rate=0.15,
    num_leaves=15,
    min_child_samples=50,
    colsample_bytree=0.9,
    reg_lambda=1.0,
    **onnx_export.LIGHTGBM_COMMON,
)


def fit_churn(
    X_train: np.ndarray, y_train: np.ndarray, X_calib: np.ndarray, y_calib: np.ndarray, seed: int
) -> CalibratedBooster:
    classifier = lgb.LGBMClassifier(random_state=seed, **PARAMS)
    classifier.fit(X_train, y_train)
    onnx_export.snap_thresholds_to_float32(classifier)
    return CalibratedBooster(
        classifier, *fit_platt(classifier.predict_proba(X_calib)[:, 1], y_calib)
    )
