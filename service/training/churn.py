"""Churn: will the customer place no counted order in the next H days?

Two models, chosen between on a validation cutoff (see `service.training.pipeline`):

- LightGBM on the point-in-time features, Platt-calibrated on a later cutoff than it was
  trained on; then its level is anchored (below);
- the BG/NBD's own answer, P(no purchase in H | history), which needs no labelled
  horizon at all: the only churn model while the history is too short for the trees.

Anchoring: trees trained on cutoffs a horizon or more before serving see a younger
population, and their calibration drifts as it ages. The BG/NBD, refitted on the newest
data, tracks ageing by construction, so the trees' log-odds are shifted until their mean
equals the BG/NBD's mean churn probability on the same day: the trees rank, the
probabilistic model sets the level. No labels are needed for it.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
from scipy.optimize import brentq
from scipy.special import expit

from service.modeling import clv
from service.modeling.pcltv import WEEK, bgnbd_inputs
from service.training import onnx_export
from service.training.calibration import CalibratedBooster, fit_platt, log_odds

PARAMS = dict(
    n_estimators=60,
    learning_rate=0.15,
    num_leaves=15,
    min_child_samples=50,
    colsample_bytree=0.9,
    reg_lambda=1.0,
    **onnx_export.LIGHTGBM_COMMON,
)
# Log-odds shifts beyond this would mean the two models disagree about everything.
_MAX_SHIFT = 20.0


def fit_churn(
    X_train: np.ndarray, y_train: np.ndarray, X_calib: np.ndarray, y_calib: np.ndarray, seed: int
) -> CalibratedBooster:
    classifier = lgb.LGBMClassifier(random_state=seed, **PARAMS)
    classifier.fit(X_train, y_train)
    onnx_export.snap_thresholds_to_float32(classifier)
    return CalibratedBooster(
        classifier, *fit_platt(classifier.predict_proba(X_calib)[:, 1], y_calib)
    )


def anchored(model: CalibratedBooster, X: np.ndarray, target_mean: float) -> CalibratedBooster:
    """`model` with its intercept shifted so that its mean probability on X is
    `target_mean` (the mean is monotone in the shift, so a root search finds it)."""
    z = model.slope * log_odds(model.classifier.predict_proba(X.astype(np.float32))[:, 1])
    z = z + model.intercept
    target = float(np.clip(target_mean, 1e-6, 1 - 1e-6))
    shift = brentq(lambda d: float(np.mean(expit(z + d))) - target, -_MAX_SHIFT, _MAX_SHIFT)
    return CalibratedBooster(model.classifier, model.slope, model.intercept + shift)


def bgnbd_churn(
    bgnbd: clv.BgNbdParams, X: np.ndarray, horizon_days: int, without_orders: float
) -> np.ndarray:
    """P(no order in the next horizon | history) under the BG/NBD:

    (1 − P(alive)) + P(alive) · ((α + T) / (α + T + t))^(r + x),

    the second factor being P(no purchase in t | alive), the Gamma(r + x, α + T)
    posterior of the purchase rate integrated over the Poisson's zero. Customers without a
    counted order are outside the BG/NBD: they get `without_orders`.
    """
    buyers, x, t_x, T, _ = bgnbd_inputs(X)
    alive = clv.probability_alive(bgnbd, x, t_x, T)
    t = horizon_days / WEEK
    quiet = np.exp((bgnbd.r + x) * (np.log(bgnbd.alpha + T) - np.log(bgnbd.alpha + T + t)))
    return np.where(buyers, 1 - alive + alive * quiet, without_orders)
