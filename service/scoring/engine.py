"""Turns feature rows into churn, pCLTV and segment scores with the active ONNX models.

Used by the API (one customer), `scorer rescore` (batches) and evaluation, so every
path scores identically. One session per loaded model set runs the composed serving
graph (`graph.py`); it is built when the set is loaded, never on a request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from service.features.vector import feature_matrix
from service.modeling.pcltv import ValueInterval
from service.modeling.rfm import RFM_COLUMNS
from service.modeling.runtime import INPUT, LoadedModel, session
from service.offers.propensity import PropensityModel
from service.scoring.graph import PARTS, scoring_graph
from service.vocabulary import ValueTiers, churn_band, segment_name, segment_without_orders


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
    """The active version of each model, swapped as a whole on hot reload.

    `tiers` names pCLTV values where scores are served; evaluation needs none."""

    models: dict[str, LoadedModel]
    tiers: ValueTiers | None = None

    def __post_init__(self) -> None:
        # Built with the set, so a swap in a running server never makes a request wait.
        parts = {
            name: (self.models[name].graph, self.models[name].manifest)
            for name in PARTS
            if name in self.models
        }
        self._session = session(scoring_graph(parts)) if parts else None
        self._outputs = [o.name for o in self._session.get_outputs()] if parts else []
        self.propensity = self._propensity_model()

    @cached_property
    def versions(self) -> dict[str, str | None]:
        return {
            name: self.models[name].manifest.version if name in self.models else None
            for name in ("churn", "pcltv", "segment", "nbo")
        }

    @cached_property
    def versions_json(self) -> str:
        """`versions` as stored beside materialized scores (and compared with them)."""
        return json.dumps(self.versions, sort_keys=True)

    def _propensity_model(self) -> PropensityModel:
        """The NBO acceptance model, or segment priors while none is trained."""
        model = self.models.get("nbo")
        if model is None:
            return PropensityModel.priors_only()
        return PropensityModel(model.session, model.manifest)

    def horizon(self, name: str) -> int | None:
        return self.models[name].manifest.horizon_days

    def _model_input(self, X: np.ndarray) -> np.ndarray:
        return self.models["pcltv"].model_input(X) if "pcltv" in self.models else X

    def _run(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Every model's finished output for the model-feature rows X, from one ONNX run."""
        outputs = self._session.run(None, {INPUT: self._model_input(X)})
        return dict(zip(self._outputs, outputs, strict=True))

    def score(self, rows: list[dict]) -> Scores:
        X = feature_matrix(rows)
        outputs = self._run(X)
        churn = outputs["churn"][:, 0].astype(float)
        value = outputs["pcltv"][:, 0]
        rfm, names = self._segments(outputs["segment"], X, rows)
        return Scores(
            churn_probability=churn,
            pcltv=value,
            r=rfm[:, 0],
            f=rfm[:, 1],
            m=rfm[:, 2],
            segments=names,
            churn_bands=[churn_band(p) for p in churn],
            pcltv_tiers=[self.tiers.of(v) for v in value] if self.tiers else [],
        )

    def outlook(self, row: dict) -> dict[str, float | None]:
        """The pCLTV model's purchase outlook for one feature row (see Probabilistic)."""
        probabilistic = self.models["pcltv"].probabilistic
        if probabilistic is None:
            return {"expected_orders": None, "p_alive": None, "next_order_days": None}
        return probabilistic.outlook(feature_matrix([row])[0])

    @property
    def value_interval(self) -> ValueInterval:
        """The pCLTV model's 80% interval around served values."""
        return self.models["pcltv"].value_interval

    def segments(self, X: np.ndarray, rows: list[dict]) -> list[str]:
        return self._segments(self._run(X)["segment"], X, rows)[1]

    def _segments(self, rfm: np.ndarray, X: np.ndarray, rows: list[dict]):
        """R, F, M scores and names; customers without a counted order have no RFM
        position (scores 1, 1, 1) and are named by tenure."""
        new_days = self.models["segment"].manifest.parameters["new_customer_days"]
        buyers = ~np.isnan(X[:, RFM_COLUMNS[0]])
        rfm = np.where(buyers[:, None], rfm, 1)
        names = [
            segment_name(int(r), int(f))
            if buyer
            else segment_without_orders(row["tenure_days"], new_days)
            for buyer, (r, f, _), row in zip(buyers, rfm, rows, strict=True)
        ]
        return rfm, names

    def reasons(self, name: str, row: dict, top: int = 3) -> list[dict]:
        """Top feature contributions (TreeSHAP of the native trees) for one customer."""
        model = self.models[name]
        if model.explainer is None:
            return []
        X = model.model_input(feature_matrix([row]))
        contributions = model.explainer.contributions(X)[0][:-1]
        order = np.argsort(-np.abs(contributions))[:top]
        return [
            {
                "feature": model.manifest.features[i],
                "value": None if np.isnan(X[0, i]) else float(X[0, i]),
                "contribution": round(float(contributions[i]), 6),
            }
            for i in order
        ]
