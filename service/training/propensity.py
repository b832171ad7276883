"""The offer-acceptance (NBO propensity) model: fit, calibrate, export, parity-check.

Training rows (`ShownOffer`) are what the decision log holds: the customer's feature dict
at decision time (as `read_features` returns it), the offer shown, whether it was
accepted, and the customer's segment.

One LightGBM binary classifier on [features | one-hot of the offer] (the input layout of
`service.offers.propensity`), where the one-hot covers the offers with at least
`min_impressions` training impressions. Trees split on the one-hot columns and on the
customer's features, so the learnt acceptance rate is customer- and offer-specific. The
probability is Platt-scaled on a random 20% holdout, exactly as the churn model
(`onnx_export.calibrated_classifier`, output `probability` [N, 1]); split thresholds are
snapped to float32 so the ONNX graph matches the native model (parity checked at export,
≤ `onnx_export.PARITY_TOLERANCE`). Rows are not weighted by the logging policy's
`action_probability`: the model estimates P(accept | customer, offer), which exploration
does not bias; it only changes how much data each (customer, offer) region gets.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import onnx
from sklearn.metrics import log_loss, roc_auc_score

from service.features.vector import MODEL_FEATURES, feature_matrix
from service.modeling.monitoring import brier
from service.offers import priors
from service.offers.propensity import design_matrix, input_names, segment_key
from service.training import onnx_export
from service.training.calibration import CalibratedBooster, fit_platt

NAME = "nbo"
OUTPUT = "probability"
# An offer needs this many training impressions to get a one-hot column (else: priors).
MIN_OFFER_IMPRESSIONS = 200
HOLDOUT_SHARE = 0.2

PARAMS = dict(
    n_estimators=250,
    learning_rate=0.05,
    num_leaves=15,
    min_child_samples=100,
    reg_lambda=1.0,
    **onnx_export.LIGHTGBM_COMMON,
)


@dataclass(frozen=True)
class ShownOffer:
    """One `offer_shown` with its outcome, as logged."""

    features: Mapping[str, Any]
    offer_id: str
    accepted: bool
    segment: str | None = None
    action_probability: float | None = None  # the logging policy's, for off-policy evaluation


def count_outcomes(rows: Iterable[ShownOffer]) -> dict[str, dict[str, list[int]]]:
    """offer id -> segment -> [accepted, shown]."""
    counts: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for row in rows:
        cell = counts[row.offer_id][segment_key(row.segment)]
        cell[0] += bool(row.accepted)
        cell[1] += 1
    return {offer: dict(by_segment) for offer, by_segment in sorted(counts.items())}


@dataclass
class PropensityFit:
    """A fitted (not yet exported) propensity model and what its manifest needs."""

    model: CalibratedBooster
    offers: list[str]  # one-hot column order
    counts: dict[str, dict[str, list[int]]]  # offer -> segment -> [accepted, shown]
    X_holdout: np.ndarray  # design matrix rows the calibration and metrics use
    y_holdout: np.ndarray
    offer_holdout: np.ndarray  # one-hot column of each holdout row
    min_impressions: int
    seed: int
    impressions: int  # all training rows, modelled offers or not

    @property
    def n_inputs(self) -> int:
        return len(MODEL_FEATURES) + len(self.offers)


def fit_propensity(
    rows: Sequence[ShownOffer],
    seed: int,
    *,
    min_impressions: int = MIN_OFFER_IMPRESSIONS,
    min_rows: int = priors.MIN_SHOWN_FOR_MODEL,
) -> PropensityFit:
    """LightGBM on [features | offer one-hot], Platt-scaled on a random holdout.

    Raises ValueError when the history is too thin for a model (then use `priors_only`).
    """
    rows = list(rows)
    if len(rows) < min_rows:
        raise ValueError(f"{len(rows)} impressions, fewer than {min_rows}: use the priors")
    counts = count_outcomes(rows)
    offers = [o for o, by in counts.items() if sum(n for _, n in by.values()) >= min_impressions]
    if not offers:
        raise ValueError(f"no offer has {min_impressions} impressions: use the priors")
    column = {o: i for i, o in enumerate(offers)}
    kept = [row for row in rows if row.offer_id in column]
    y = np.array([bool(row.accepted) for row in kept], dtype=int)
    if len(np.unique(y)) < 2:
        raise ValueError("the history has only one outcome: use the priors")
    columns = np.array([column[row.offer_id] for row in kept])
    X = design_matrix(feature_matrix(row.features for row in kept), columns, len(offers))

    order = np.random.default_rng(seed).permutation(len(kept))
    n_holdout = max(1, int(len(kept) * HOLDOUT_SHARE))
    holdout, train = order[:n_holdout], order[n_holdout:]
    classifier = lgb.LGBMClassifier(random_state=seed, **PARAMS)
    classifier.fit(X[train], y[train])
    onnx_export.snap_thresholds_to_float32(classifier)
    raw = classifier.predict_proba(X[holdout])[:, 1]
    return PropensityFit(
        model=CalibratedBooster(classifier, *fit_platt(raw, y[holdout])),
        offers=offers,
        counts=counts,
        X_holdout=X[holdout],
        y_holdout=y[holdout],
        offer_holdout=columns[holdout],
        min_impressions=min_impressions,
        seed=seed,
        impressions=len(rows),
    )


def export_propensity(
    fit: PropensityFit, training_window: Mapping[str, Any] | None = None
) -> tuple[onnx.ModelProto, dict[str, Any]]:
    """The ONNX graph (parity-checked on the holdout) and every `Manifest` field but `version`."""
    model, offers, y = fit.model, fit.offers, fit.y_holdout
    graph = model.to_onnx(fit.n_inputs)
    predicted = model.predict(fit.X_holdout)
    parity = onnx_export.check_parity(graph, fit.X_holdout, predicted)
    shown = {o: sum(n for _, n in by.values()) for o, by in fit.counts.items()}
    accepted = {o: sum(a for a, _ in by.values()) for o, by in fit.counts.items()}
    metrics: dict[str, Any] = {
        "impressions": fit.impressions,
        "modelled_impressions": sum(shown[o] for o in offers),
        "holdout": len(y),
        "acceptance_rate": float(y.mean()),
        "mean_predicted": float(predicted.mean()),
        "log_loss": float(log_loss(y, predicted, labels=[0, 1])),
        "brier": brier(y, predicted),
        "auc": float(roc_auc_score(y, predicted)) if len(np.unique(y)) > 1 else None,
        "by_offer": {
            o: {
                "acceptance_rate": float(y[fit.offer_holdout == j].mean()),
                "mean_predicted": float(predicted[fit.offer_holdout == j].mean()),
            }
            for j, o in enumerate(offers)
            if (fit.offer_holdout == j).any()
        },
        "onnx_parity_max_abs": parity,
    }
    fields = {
        "name": NAME,
        "features": input_names(offers),
        "output": OUTPUT,
        "horizon_days": None,
        "training_window": dict(training_window or {}),
        "metrics": metrics,
        "parameters": {
            "input": "features = MODEL_FEATURES then one-hot of `offers` (float32)",
            "offers": offers,
            "impressions": shown,
            "acceptances": accepted,
            "segment_counts": fit.counts,
            "min_impressions": fit.min_impressions,
            "prior_strength": priors.PRIOR_STRENGTH,
            "calibration": {"slope": model.slope, "intercept": model.intercept},
            "lightgbm": dict(PARAMS),
            "seed": fit.seed,
        },
    }
    return graph, fields


def train_propensity(
    rows: Sequence[ShownOffer],
    seed: int,
    *,
    min_impressions: int = MIN_OFFER_IMPRESSIONS,
    min_rows: int = priors.MIN_SHOWN_FOR_MODEL,
    training_window: Mapping[str, Any] | None = None,
) -> tuple[onnx.ModelProto, dict[str, Any]]:
    """Fit, calibrate, export and parity-check; returns the graph and the manifest fields.

    `Artifact(Manifest(version=new_version(), **fields), graph.SerializeToString()).save(folder)`.
    Raises ValueError when the history is too thin for a model (then use `priors_only`).
    """
    fit = fit_propensity(rows, seed, min_impressions=min_impressions, min_rows=min_rows)
    return export_propensity(fit, training_window)
