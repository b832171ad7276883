"""Turns feature rows into churn, pCLTV and segment scores with the active ONNX models.

Used by the API (one customer), `scorer rescore` (batches) and evaluation, so every
path scores identically. Sessions are created once per loaded version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property

import lightgbm as lgb
import numpy as np

from service.features.vector import feature_matrix
from service.offers.propensity import PropensityModel
from service.training import onnx_export, pcltv, segment
from service.training.artifacts import Manifest
from service.training.churn import band
from service.training.pcltv import discount_factor


@dataclass
class LoadedModel:
    manifest: Manifest
    session: object
    explainer_text: str | None = None

    @cached_property
    def explainer(self) -> lgb.Booster | None:
        return lgb.Booster(model_str=self.explainer_text) if self.explainer_text else None

    @cached_property
    def probabilistic(self) -> pcltv.Probabilistic | None:
        if "bgnbd" not in self.manifest.parameters:
            return None
        return pcltv.Probabilistic.from_parameters(self.manifest.parameters)

    def model_input(self, X: np.ndarray) -> np.ndarray:
        """The matrix this model's graph takes (pCLTV adds the probabilistic columns)."""
        return self.probabilistic.augment(X) if self.probabilistic else X

    @classmethod
    def from_registry(cls, record) -> LoadedModel:
        manifest = Manifest.from_dict(json.loads(record["manifest"]))
        return cls(manifest, onnx_export.session(bytes(record["model"])), record["explainer"])


@dataclass(frozen=True)
class Tiers:
    high: float = 500.0
    medium: float = 200.0

    def of(self, value: float) -> str:
        if value > self.high:
            return "high"
        return "medium" if value >= self.medium else "low"


@dataclass
class Scores:
    churn_probability: np.ndarray
    pcltv: np.ndarray
    r: np.ndarray
    f: np.ndarray
    m: np.ndarray
    segments: list[str]
    churn_bands: list[str] = field(default_factory=list)
    pcltv_tiers: list[str] = field(default_factory=list)


@dataclass
class ModelSet:
    """The active version of each model, swapped as a whole on hot reload."""

    models: dict[str, LoadedModel]
    tiers: Tiers = field(default_factory=Tiers)

    @cached_property
    def versions(self) -> dict[str, str | None]:
        return {
            name: self.models[name].manifest.version if name in self.models else None
            for name in ("churn", "pcltv", "segment", "nbo")
        }

    @cached_property
    def propensity(self) -> PropensityModel:
        """The NBO acceptance model, or segment priors while none is trained."""
        model = self.models.get("nbo")
        if model is None:
            return PropensityModel.priors_only()
        return PropensityModel(model.session, model.manifest)

    def horizon(self, name: str) -> int | None:
        return self.models[name].manifest.horizon_days

    def score(self, rows: list[dict]) -> Scores:
        X = feature_matrix(rows)
        churn = onnx_export.run(self.models["churn"].session, X)[:, 0].astype(float)
        pcltv_model = self.models["pcltv"]
        parameters = pcltv_model.manifest.parameters
        augmented = pcltv_model.model_input(X)
        multiplier = onnx_export.run(pcltv_model.session, augmented)[:, 0].astype(float)
        value = (
            pcltv.blend(multiplier, augmented, parameters)
            * parameters["margin"]
            * discount_factor(pcltv_model.manifest.horizon_days, parameters["annual_discount_rate"])
        )
        r, f, m, names = self.segments(X, rows)
        return Scores(
            churn_probability=churn,
            pcltv=value,
            r=r,
            f=f,
            m=m,
            segments=names,
            churn_bands=[band(p) for p in churn],
            pcltv_tiers=[self.tiers.of(v) for v in value],
        )

    def segments(self, X: np.ndarray, rows: list[dict]):
        model = self.models["segment"]
        n = len(rows)
        scores = np.ones((n, 3), dtype=int)
        rfm = X[:, segment.RFM_COLUMNS]
        buyers = ~np.isnan(rfm[:, 0])
        if buyers.any():
            bins = onnx_export.run(model.session, rfm[buyers])
            n_bins = np.array(model.manifest.parameters["n_bins"])
            scores[buyers] = segment.scores_from_bins(bins, n_bins)
        new_days = model.manifest.parameters["new_customer_days"]
        names = [
            segment.segment_name(int(scores[i, 0]), int(scores[i, 1]))
            if buyers[i]
            else ("New Customers" if rows[i]["tenure_days"] <= new_days else "Lost")
            for i in range(n)
        ]
        return scores[:, 0], scores[:, 1], scores[:, 2], names

    def reasons(self, name: str, row: dict, top: int = 3) -> list[dict]:
        """Top feature contributions (TreeSHAP from the native booster) for one customer."""
        model = self.models[name]
        if model.explainer is None:
            return []
        X = model.model_input(feature_matrix([row]))
        contributions = model.explainer.predict(X, pred_contrib=True)[0][:-1]
        order = np.argsort(-np.abs(contributions))[:top]
        return [
            {
                "feature": model.manifest.features[i],
                "value": None if np.isnan(X[0, i]) else float(X[0, i]),
                "contribution": round(float(contributions[i]), 6),
            }
            for i in order
        ]
