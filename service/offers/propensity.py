"""Offer acceptance propensity: an ONNX model learnt from `offer_shown` → `offer_accepted`.

Training rows (`ShownOffer`) are what the decision log holds: the customer's
feature dict at decision time (DESIGN §6 shape, as `read_features` returns it),
the offer shown, whether it was accepted, and the customer's segment.

Model. One LightGBM binary classifier on a single float32 input `features`
of width len(MODEL_FEATURES) + K:

    [ feature_matrix(row) (MODEL_FEATURES order) | one-hot of the offer over `offers` ]

where `offers` (manifest parameter, in column order) are the offers with at
least `min_impressions` training impressions. Trees split on the one-hot columns
and on the customer's features, so the learnt acceptance rate is customer- and
offer-specific (different customers prefer different offers). The probability
is Platt-scaled on a random 20% holdout, exactly as the churn model
(`onnx_export.calibrated_classifier`, output `probability` [N, 1]); split
thresholds are snapped to float32 so the ONNX graph matches the native model
(parity checked at export, ≤ `onnx_export.PARITY_TOLERANCE`). Rows are not
weighted by the logging policy's `action_probability`: the model estimates
P(accept | customer, offer), which exploration does not bias; it only changes
how much data each (customer, offer) region gets.

Thin history. An offer the model does not know (new, or fewer than
`min_impressions` impressions at training time) gets its acceptance rate in the
customer's segment shrunk toward the segment's prior
(`priors.shrunk_rate(accepted, shown, prior_rate(segment))`, counts from the
training rows, kept in the manifest). With no model at all
(`PropensityModel.priors_only()`), every offer gets that.

Scoring (`PropensityModel.score`) is one ONNX run per request: one row per
candidate offer the model knows, the customer's features repeated.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import onnx
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from service.features.vector import MODEL_FEATURES, feature_matrix
from service.offers import priors
from service.offers.policy import OfferSpec
from service.training import onnx_export
from service.training.artifacts import Manifest
from service.training.calibration import CalibratedBooster, fit_platt

NAME = "nbo"
OUTPUT = "probability"
OFFER_COLUMN_PREFIX = "offer:"
# An offer needs this many training impressions to get a one-hot column (else: priors).
MIN_OFFER_IMPRESSIONS = 200
HOLDOUT_SHARE = 0.2
NO_SEGMENT = "(none)"  # segment_counts key of customers without a segment

PARAMS = dict(
    n_estimators=250,
    learning_rate=0.05,
    num_leaves=15,
    min_child_samples=100,
    reg_lambda=1.0,
    **onnx_export.LIGHTGBM_COMMON,
)

Propensity = Callable[[OfferSpec], float]


@dataclass(frozen=True)
class ShownOffer:
    """One `offer_shown` with its outcome, as logged."""

    features: Mapping[str, Any]
    offer_id: str
    accepted: bool
    segment: str | None = None
    action_probability: float | None = None  # the logging policy's, for off-policy evaluation


def input_names(offers: Sequence[str]) -> list[str]:
    """The model's input columns: MODEL_FEATURES, then one per offer (`offer:<id>`)."""
    return [*MODEL_FEATURES, *(OFFER_COLUMN_PREFIX + o for o in offers)]


def design_matrix(X: np.ndarray, columns: np.ndarray, n_offers: int) -> np.ndarray:
    """Customer features `X` [N, F] with the one-hot of offer column `columns` [N] appended."""
    one_hot = np.zeros((len(X), n_offers), dtype=np.float32)
    one_hot[np.arange(len(X)), columns] = 1.0
    return np.hstack([X.astype(np.float32), one_hot])


def _segment_key(segment: str | None) -> str:
    return segment or NO_SEGMENT


def count_outcomes(rows: Iterable[ShownOffer]) -> dict[str, dict[str, list[int]]]:
    """offer id -> segment -> [accepted, shown]."""
    counts: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for row in rows:
        cell = counts[row.offer_id][_segment_key(row.segment)]
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
        "brier": float(brier_score_loss(y, predicted)),
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

    `artifacts.save(graph, Manifest(version=artifacts.new_version(), **fields))`.
    Raises ValueError when the history is too thin for a model (then use `priors_only`).
    """
    fit = fit_propensity(rows, seed, min_impressions=min_impressions, min_rows=min_rows)
    return export_propensity(fit, training_window)


class PropensityModel:
    """P(accept) of candidate offers for one customer: the ONNX model, or shrunk segment priors."""

    def __init__(self, session: Any | None, manifest: Manifest | None) -> None:
        parameters = manifest.parameters if manifest is not None else {}
        self.session = session
        self.version: str | None = manifest.version if manifest is not None else None
        self.offers: list[str] = list(parameters.get("offers", [])) if session else []
        self._column = {o: i for i, o in enumerate(self.offers)}
        self.strength = float(parameters.get("prior_strength", priors.PRIOR_STRENGTH))
        self._counts: dict[str, dict[str, tuple[int, int]]] = {
            offer: {segment: (int(a), int(n)) for segment, (a, n) in by.items()}
            for offer, by in parameters.get("segment_counts", {}).items()
        }
        self._priors: dict[tuple[str, str | None], float] = {}
        if session is not None:
            if manifest is None:
                raise ValueError("a model session needs its manifest")
            if list(manifest.features) != input_names(self.offers):
                raise ValueError("manifest features do not match MODEL_FEATURES + offer columns")
            width = session.get_inputs()[0].shape[1]
            if isinstance(width, int) and width != len(manifest.features):
                raise ValueError(f"model input has {width} columns, manifest lists "
                                 f"{len(manifest.features)}")  # fmt: skip

    @classmethod
    def from_onnx(cls, model: onnx.ModelProto | bytes, manifest: Manifest) -> PropensityModel:
        return cls(onnx_export.session(model), manifest)

    @classmethod
    def priors_only(
        cls, segment_counts: Mapping[str, Mapping[str, Sequence[int]]] | None = None
    ) -> PropensityModel:
        """No model: every offer gets its segment rate shrunk toward the segment prior.

        `segment_counts`: offer id -> segment (`NO_SEGMENT` for none) -> (accepted, shown).
        """
        model = cls(None, None)
        model._counts = {
            offer: {segment: (int(a), int(n)) for segment, (a, n) in by.items()}
            for offer, by in (segment_counts or {}).items()
        }
        return model

    def modelled(self, offer_id: str) -> bool:
        return offer_id in self._column

    def prior(self, segment: str | None, offer_id: str) -> float:
        """The offer's shrunk acceptance rate in the segment (the prior without history)."""
        key = (offer_id, segment)
        if key not in self._priors:
            accepted, shown = self._counts.get(offer_id, {}).get(_segment_key(segment), (0, 0))
            self._priors[key] = priors.shrunk_rate(
                accepted, shown, priors.prior_rate(segment), self.strength
            )
        return self._priors[key]

    def score_many(
        self,
        feature_rows: Sequence[Mapping[str, Any]],
        segments: Sequence[str | None],
        offers: Sequence[OfferSpec],
    ) -> np.ndarray:
        """[customers, offers] acceptance propensities; one ONNX run for the whole batch."""
        n, k = len(feature_rows), len(offers)
        if len(segments) != n:
            raise ValueError("one segment per feature row")
        out = np.empty((n, k), dtype=np.float64)
        known = [
            (j, self._column[o.offer_id]) for j, o in enumerate(offers) if self.modelled(o.offer_id)
        ]
        if known and n:
            m = len(known)
            X = np.repeat(feature_matrix(feature_rows), m, axis=0)
            columns = np.tile(np.array([c for _, c in known]), n)
            design = design_matrix(X, columns, len(self.offers))
            p = onnx_export.run(self.session, design)[:, 0].astype(np.float64)
            out[:, [j for j, _ in known]] = p.reshape(n, m)
        modelled = {j for j, _ in known}
        for j, offer in enumerate(offers):
            if j not in modelled:
                out[:, j] = [self.prior(segment, offer.offer_id) for segment in segments]
        return out

    def score(
        self, feature_row: Mapping[str, Any], segment: str | None, offers: Sequence[OfferSpec]
    ) -> list[float]:
        """Acceptance propensity of each offer for this customer, in `offers` order."""
        return self.score_many([feature_row], [segment], offers)[0].tolist()

    def propensity(
        self, feature_row: Mapping[str, Any], segment: str | None, offers: Sequence[OfferSpec]
    ) -> Propensity:
        """A `policy.Propensity` for `decide`, every candidate scored up front in one run."""
        scores = dict(zip((o.offer_id for o in offers), self.score(feature_row, segment, offers),
                          strict=True))  # fmt: skip
        return lambda offer: (
            scores[offer.offer_id]
            if offer.offer_id in scores
            else self.score(feature_row, segment, [offer])[0]
        )
