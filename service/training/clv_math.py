"""Plain CLV arithmetic and the metrics used to compare pCLTV / churn models side by side.

The first two helpers are the worked examples of the product docs (they are deliberately
naive: no retention, no discounting); the reports are what the training report prints for
every candidate model, so that the probabilistic baseline and the LightGBM models are
judged on exactly the same numbers.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import (
    average_precision_score,
    mean_absolute_error,
    mean_squared_error,
    roc_auc_score,
)

from service.modeling.monitoring import brier, expected_calibration_error

TOP_SHARE = 0.10


def average_order_value(revenue: float, orders: float) -> float:
    """Revenue per order: 10,000 of revenue over 2,000 orders is an AOV of 5.

    NaN without orders (the features API renders that as null).
    """
    return float(revenue) / float(orders) if orders else math.nan


def simple_clv(aov: float, purchases_per_period: float, periods: float) -> float:
    """AOV x purchase frequency x lifetime: 5 x 2 per week x 104 weeks = 1,040.

    The back-of-envelope CLV; it assumes the customer never churns and money keeps its
    value, which is why the product's pCLTV uses the models instead.
    """
    return float(aov) * float(purchases_per_period) * float(periods)


def regression_report(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Per-customer value metrics (pCLTV vs realised value in the horizon).

    * `mae`, `rmse`: per-customer accuracy, in currency units.
    * `spearman`: rank correlation (NaN if either side is constant) - what tiering needs.
    * `aggregate_error`: (sum(pred) - sum(true)) / sum(true), the error of the forecast
      of total future revenue; signed, > 0 means over-forecast.
    * `top_decile_capture`: share of the true total held by the ceil(10% of n)
      customers ranked highest by prediction (ties broken by input order) - how much
      value a campaign on the predicted top decile would reach. Its ceiling,
      `top_decile_capture_ideal`, is the same share under a perfect ranking.
    """
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    total = float(np.sum(y_true))
    return {
        "n": float(len(y_true)),
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "rmse": float(math.sqrt(mean_squared_error(y_true, y_pred))),
        "spearman": _spearman(y_true, y_pred),
        "aggregate_error": (float(np.sum(y_pred)) - total) / total if total else math.nan,
        "top_decile_capture": _top_share_capture(y_true, y_pred),
        "top_decile_capture_ideal": _top_share_capture(y_true, y_true),
    }


def classification_report(y_true: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Churn-probability metrics.

    * `roc_auc` (ranking) and `pr_auc` (average precision, which weighs the rare class):
      NaN when y_true has a single class.
    * `brier`: mean squared error of the probabilities.
    * `ece`: expected calibration error on 10 equal-width bins of p over [0, 1]
      (bin k holds k/10 <= p < (k+1)/10, and p == 1 falls in the last bin):
      sum_k (n_k / n) |mean(y in bin k) - mean(p in bin k)|, empty bins skipped.
    """
    y_true = np.asarray(y_true, dtype=float)
    p = np.asarray(p, dtype=float)
    two_classes = np.unique(y_true).size == 2
    return {
        "n": float(len(y_true)),
        "base_rate": float(np.mean(y_true)),
        "roc_auc": float(roc_auc_score(y_true, p)) if two_classes else math.nan,
        "pr_auc": float(average_precision_score(y_true, p)) if two_classes else math.nan,
        "brier": brier(y_true, p),
        "ece": expected_calibration_error(y_true, p),
    }


def _spearman(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    if np.ptp(y_true) == 0 or np.ptp(y_pred) == 0:
        return math.nan
    return float(spearmanr(y_true, y_pred).statistic)


def _top_share_capture(y_true: np.ndarray, score: np.ndarray) -> float:
    total = float(np.sum(y_true))
    if not len(y_true) or not total:
        return math.nan
    k = max(1, math.ceil(TOP_SHARE * len(y_true) - 1e-9))
    top = np.argsort(-score, kind="stable")[:k]
    return float(np.sum(y_true[top]) / total)
