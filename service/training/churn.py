"""Churn: will the customer place no counted order in the next H days?

LightGBM on the point-in-time features, Platt-calibrated on a later period than it
was trained on, evaluated on the latest period whose horizon is complete.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
from sklearn.linear_model import LogisticRegression

from service.training import onnx_export

PARAMS = dict(
    n_estimators=300,
    learning_rate=0.05,
    num_leaves=31,
    min_child_samples=50,
    colsample_bytree=0.9,
    reg_lambda=1.0,
    **onnx_export.LIGHTGBM_COMMON,
)


@dataclass
class ChurnModel:
    classifier: lgb.LGBMClassifier
    slope: float
    intercept: float

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Native (float64) calibrated probabilities: the reference for ONNX parity."""
        p = np.clip(self.classifier.predict_proba(X.astype(np.float32))[:, 1], 1e-7, 1 - 1e-7)
        return 1 / (1 + np.exp(-(self.slope * np.log(p / (1 - p)) + self.intercept)))

    def to_onnx(self, n_features: int):
        return onnx_export.calibrated_classifier(
            self.classifier, n_features, self.slope, self.intercept
        )


def fit_churn(
    X_train: np.ndarray, y_train: np.ndarray, X_calib: np.ndarray, y_calib: np.ndarray, seed: int
) -> ChurnModel:
    classifier = lgb.LGBMClassifier(random_state=seed, **PARAMS)
    classifier.fit(X_train, y_train)
    onnx_export.snap_thresholds_to_float32(classifier)
    p = np.clip(classifier.predict_proba(X_calib)[:, 1], 1e-7, 1 - 1e-7)
    platt = LogisticRegression(C=1e6).fit(np.log(p / (1 - p)).reshape(-1, 1), y_calib)
    return ChurnModel(classifier, float(platt.coef_[0, 0]), float(platt.intercept_[0]))


def band(probability: float) -> str:
    """DESIGN §7 bands."""
    if probability < 0.33:
        return "low"
    return "medium" if probability <= 0.66 else "high"
