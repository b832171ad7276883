"""Offer acceptance propensity at serving time: the ONNX model, or shrunk segment priors.

The model (trained by `service.training.propensity` from `offer_shown` → `offer_accepted`
history) is one calibrated LightGBM classifier on a single float32 input `features` of
width len(MODEL_FEATURES) + K:

    [ feature_matrix(row) (MODEL_FEATURES order) | one-hot of the offer over `offers` ]

where `offers` (manifest parameter, in column order) are the offers with enough training
impressions for a column of their own.

Thin history. An offer the model does not know (new, or too rarely shown at training
time) gets its acceptance rate in the customer's segment shrunk toward the segment's
prior (`priors.shrunk_rate(accepted, shown, prior_rate(segment))`, counts from the
training rows, kept in the manifest). With no model at all
(`PropensityModel.priors_only()`), every offer gets that.

Scoring (`PropensityModel.score`) is one ONNX run per request: one row per
candidate offer the model knows, the customer's features repeated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx

from service.features.vector import MODEL_FEATURES, feature_matrix
from service.modeling.artifacts import Manifest
from service.modeling.runtime import run, session
from service.offers import priors
from service.offers.policy import OfferSpec, Propensity

OFFER_COLUMN_PREFIX = "offer:"
NO_SEGMENT = "(none)"  # segment_counts key of customers without a segment


def input_names(offers: Sequence[str]) -> list[str]:
    """The model's input columns: MODEL_FEATURES, then one per offer (`offer:<id>`)."""
    return [*MODEL_FEATURES, *(OFFER_COLUMN_PREFIX + o for o in offers)]


def design_matrix(X: np.ndarray, columns: np.ndarray, n_offers: int) -> np.ndarray:
    """Customer features `X` [N, F] with the one-hot of offer column `columns` [N] appended."""
    one_hot = np.zeros((len(X), n_offers), dtype=np.float32)
    one_hot[np.arange(len(X)), columns] = 1.0
    return np.hstack([X.astype(np.float32), one_hot])


def segment_key(segment: str | None) -> str:
    return segment or NO_SEGMENT


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
        return cls(session(model), manifest)

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
            accepted, shown = self._counts.get(offer_id, {}).get(segment_key(segment), (0, 0))
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
            p = run(self.session, design)[:, 0].astype(np.float64)
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
