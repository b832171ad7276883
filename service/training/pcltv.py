"""pCLTV training: LightGBM on the features and on the outputs of the field's BG/NBD +
Gamma-Gamma model, learning a multiplier of the probabilistic revenue (see
`service.modeling.pcltv` for the served formula), blended with that revenue.

The trees are trained on cutoffs a horizon or more before serving time, when the
population was younger, and for customers older than any they saw they can only repeat
their oldest leaves: on CDNOW, where the whole cohort joined in one quarter, trees trained
on it young over-forecast the next half year's total by a third. The probabilistic model
is refitted on the newest snapshot (it needs no labels) and tracks ageing by construction,
so for those customers the trees' level is anchored to it: their scale is set so that their
total equals the BG/NBD + Gamma-Gamma total on the same day. The trees rank, the
probabilistic model sets the level where the trees have no evidence. The blend weight is
fitted on the validation cutoff.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import lightgbm as lgb
import numpy as np

from service.modeling.pcltv import (
    FEATURES,
    TENURE_COLUMN,
    Probabilistic,
    anchor,
    base,
    bgnbd_inputs,
    blend,
)
from service.modeling.pcltv import probabilistic_revenue as revenue_column
from service.training import onnx_export
from service.training import probabilistic as prob

BASE_OFFSET = 5.0
BASE_SCALE = 100.0
BLEND_FOLDS = 2

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
    if not buyers.any():
        raise ValueError("no customer has a counted order yet: nothing to fit pCLTV on")
    bg = prob.fit_bgnbd(x[buyers], t_x[buyers], T[buyers])
    repeat = buyers & (x > 0) & (monetary > 0)
    if not repeat.any():
        raise ValueError("no customer has a repeat order yet: nothing to fit spend on")
    gg = prob.fit_gamma_gamma(x[repeat], monetary[repeat], q_constraint=True)
    return Probabilistic(bg, gg, horizon_days)


def with_pareto_nbd(fitted: Probabilistic, X: np.ndarray) -> Probabilistic:
    """`fitted` with its purchase counts from a Pareto/NBD fitted on the same rows."""
    buyers, x, t_x, T, _ = bgnbd_inputs(X)
    return replace(fitted, pareto_nbd=prob.fit_pareto_nbd(x[buyers], t_x[buyers], T[buyers]))


@dataclass
class PcltvModel:
    """The served pCLTV: `blend_weight` × anchored trees + the rest × probabilistic revenue.
    Without a regressor (too little labelled history) it is the probabilistic revenue."""

    probabilistic: Probabilistic
    regressor: lgb.LGBMRegressor | None = None
    blend_weight: float = 0.0
    # Customers older than this (tenure days) are beyond the trees' training rows.
    anchor_tenure_days: float | None = None
    anchor_scale: float = 1.0

    @property
    def constants(self) -> dict[str, float | None]:
        return {
            "base_offset": BASE_OFFSET,
            "base_scale": BASE_SCALE,
            "blend_weight": self.blend_weight,
            "anchor_tenure_days": self.anchor_tenure_days,
            "anchor_scale": self.anchor_scale,
        }

    def multiplier(self, X_augmented: np.ndarray) -> np.ndarray:
        if self.regressor is None:
            return np.ones(len(X_augmented))
        return np.maximum(self.regressor.predict(X_augmented), 0.0)

    def trees(self, X_augmented: np.ndarray) -> np.ndarray:
        unanchored = self.multiplier(X_augmented) * base(X_augmented, BASE_OFFSET, BASE_SCALE)
        return unanchored * anchor(X_augmented, self.constants)

    def predict(self, X: np.ndarray) -> np.ndarray:
        augmented = self.probabilistic.augment(X)
        return blend(self.multiplier(augmented), augmented, self.constants)

    def anchored(self, X: np.ndarray, trained_tenure_days: float) -> PcltvModel:
        """This model with the trees' level anchored for the customers of X older than any
        row they were trained on (`trained_tenure_days`): there the trees can only repeat
        their oldest leaves, so the scale is set so that those customers' trees total equals
        their probabilistic total. Younger customers keep the trees' own level."""
        if self.regressor is None:
            return self
        augmented = self.probabilistic.augment(X)
        older = augmented[:, TENURE_COLUMN].astype(np.float64) > trained_tenure_days
        unanchored = replace(self, anchor_tenure_days=None).trees(augmented)[older]
        trees, target = float(np.sum(unanchored)), float(np.sum(revenue_column(augmented)[older]))
        scale = target / trees if trees > 0 and target > 0 else 1.0
        return replace(self, anchor_tenure_days=float(trained_tenure_days), anchor_scale=scale)

    def to_onnx(self):
        if self.regressor is None:
            return onnx_export.constant_multiplier(len(FEATURES))
        return onnx_export.non_negative_regressor(self.regressor, len(FEATURES))


def fit_trees(X_augmented: np.ndarray, revenue: np.ndarray, seed: int) -> lgb.LGBMRegressor:
    """The multiplier trees, on rows augmented by the probabilistic model fitted at each
    row's own cutoff (so no row sees a fit that knew its future)."""
    weights = base(X_augmented, BASE_OFFSET, BASE_SCALE)
    regressor = lgb.LGBMRegressor(random_state=seed, **PARAMS)
    regressor.fit(X_augmented, revenue / weights, sample_weight=weights**2)
    onnx_export.snap_thresholds_to_float32(regressor)
    return regressor


WEIGHT_GRID = np.linspace(0.0, 1.0, 21)


def blend_weight(
    trees: np.ndarray, probabilistic: np.ndarray, actual: np.ndarray, weights: np.ndarray
) -> float:
    """The w of w·trees + (1 − w)·probabilistic by the one-standard-error rule: the
    smallest w on a grid whose weighted squared error is within one standard error of the
    best w's (the paired difference of per-customer losses).

    Validation sees the trees a month after their newest training cutoff; they serve a
    horizon or more after it, on an older population, and drift in between (on the
    simulation the trees alone won validation and lost to every blend a year later). So
    where the evidence cannot tell two weights apart, the one leaning on the refitted
    probabilistic model, which needs no labels and tracks ageing, is taken."""
    total = float(np.sum(weights))
    losses = [weights * (actual - (w * trees + (1 - w) * probabilistic)) ** 2 for w in WEIGHT_GRID]
    means = [float(np.sum(loss)) / total for loss in losses]
    best = int(np.argmin(means))
    for index, loss in enumerate(losses):
        difference = loss - losses[best]
        centred = difference - weights * (means[index] - means[best])
        standard_error = float(np.sqrt(np.sum(centred**2))) / total
        if means[index] - means[best] <= standard_error:
            return float(WEIGHT_GRID[index])
    return float(WEIGHT_GRID[best])


def cross_fitted_blend(
    trees: np.ndarray,
    probabilistic: np.ndarray,
    actual: np.ndarray,
    weights: np.ndarray,
    seed: int,
) -> np.ndarray:
    """The blend's validation predictions with each customer's weight fitted on the other
    customers: a weight fitted on the rows it is judged on would always look best."""
    folds = np.random.default_rng(seed).integers(0, BLEND_FOLDS, len(actual))
    out = np.empty(len(actual))
    for fold in range(BLEND_FOLDS):
        held, rest = folds == fold, folds != fold
        w = blend_weight(trees[rest], probabilistic[rest], actual[rest], weights[rest])
        out[held] = w * trees[held] + (1 - w) * probabilistic[held]
    return out


def serving_mix(tenure_then: np.ndarray, tenure_now: np.ndarray, trained: float) -> np.ndarray:
    """Importance weights for the validation customers that give those older than any
    training row the share they have among the customers scored on the as-of day.

    The trees serve a population older than the one they are validated on: on validation
    few customers are beyond their training rows, on the as-of day many are (all of them on
    CDNOW). Weighting validation by that one known shift makes the comparison of candidates
    about the population they will serve. Uniform when either side has no such customers
    or only such customers (nothing to reweight)."""
    older = tenure_then > trained
    share_then, share_now = float(np.mean(older)), float(np.mean(tenure_now > trained))
    if share_then in (0.0, 1.0):
        return np.ones(len(tenure_then))
    return np.where(older, share_now / share_then, (1 - share_now) / (1 - share_then))


def weighted_rmse(actual: np.ndarray, predicted: np.ndarray, weights: np.ndarray) -> float:
    return float(np.sqrt(np.sum(weights * (actual - predicted) ** 2) / np.sum(weights)))


INTERVAL_BANDS = 10
INTERVAL_QUANTILES = (0.1, 0.9)


def _eighty_percent(actual: np.ndarray) -> tuple[float, float]:
    """P10..P90 of the actual revenue, or 0..P80 where more than a tenth of it is zero:
    with an atom at zero, P10..P90 would hold the whole atom and cover more than 80%."""
    lo_q, hi_q = INTERVAL_QUANTILES
    if np.mean(actual <= 0) > lo_q:
        return 0.0, float(np.quantile(actual, hi_q - lo_q))
    lo, hi = np.quantile(actual, INTERVAL_QUANTILES)
    return float(lo), float(hi)


def fit_interval(
    predicted: np.ndarray, actual: np.ndarray, served: np.ndarray
) -> tuple[dict, float]:
    """80% interval ratios per rank band of the prediction, on the validation window.

    Customers are cut into ten equal bands by their validation prediction; in each, the
    ends of the 80% interval of the actual revenue (`_eighty_percent`) over the band's
    mean prediction are the ratios served. Bands stay bands of rank: their edges at
    serving are the deciles of the served values on the as-of day (`served`), so a level
    shift between validation and serving moves the interval with the value. A band
    without a positive mean prediction borrows its neighbour's ratios. Also returns the
    coverage on validation (in sample: the ratios were measured there)."""
    cuts = np.linspace(0, 1, INTERVAL_BANDS + 1)[1:-1]
    band = np.searchsorted(np.quantile(predicted, cuts), predicted, side="right")
    low, high = [np.nan] * INTERVAL_BANDS, [np.nan] * INTERVAL_BANDS
    for k in range(INTERVAL_BANDS):
        members = band == k
        mean = float(predicted[members].mean()) if members.any() else 0.0
        if mean > 0:
            lo, hi = _eighty_percent(actual[members])
            low[k], high[k] = lo / mean, hi / mean
    known = [k for k in range(INTERVAL_BANDS) if not np.isnan(low[k])]
    if not known:
        low, high = [1.0] * INTERVAL_BANDS, [1.0] * INTERVAL_BANDS
    for k in range(INTERVAL_BANDS):
        if np.isnan(low[k]):
            nearest = min(known, key=lambda j: abs(j - k)) if known else k
            low[k], high[k] = low[nearest], high[nearest]
    bands = {
        "edges": [float(e) for e in np.quantile(served, cuts)],
        "low": low,
        "high": high,
        "quantiles": list(INTERVAL_QUANTILES),
    }
    low_now, high_now = predicted * np.asarray(low)[band], predicted * np.asarray(high)[band]
    return bands, coverage(actual, low_now, high_now)


def coverage(actual: np.ndarray, low: np.ndarray, high: np.ndarray) -> float:
    """Share of customers whose actual revenue fell inside [low, high]."""
    return float(np.mean((actual >= low - 1e-9) & (actual <= high + 1e-9))) if len(actual) else 0.0
