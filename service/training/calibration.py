"""A LightGBM classifier with Platt scaling on its log-odds, shared by churn and NBO."""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import onnx
from sklearn.linear_model import LogisticRegression

from service.training import onnx_export

_EDGE = 1e-7


def log_odds(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EDGE, 1 - _EDGE)
    return np.log(p / (1 - p))


@dataclass
class CalibratedBooster:
    classifier: lgb.LGBMClassifier
    slope: float
    intercept: float

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Native (float64) calibrated probabilities: the reference for ONNX parity."""
        raw = self.classifier.predict_proba(X.astype(np.float32))[:, 1]
        return 1 / (1 + np.exp(-(self.slope * log_odds(raw) + self.intercept)))

    def to_onnx(self, n_inputs: int) -> onnx.ModelProto:
        return onnx_export.calibrated_classifier(
            self.classifier, n_inputs, self.slope, self.intercept
        )


def fit_platt(p: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(slope, intercept) of a logistic fit on the log-odds; identity with one class only."""
    if len(np.unique(y)) < 2:
        return 1.0, 0.0
    platt = LogisticRegression(C=1e6).fit(log_odds(p).reshape(-1, 1), y)
    return float(platt.coef_[0, 0]), float(platt.intercept_[0])
