"""`scorer train`: point-in-time datasets → churn, pCLTV and segment models → ONNX + report.

Validation is by time, never a random split. For cutoffs C0 > C1 > C2 > … (C0 the
newest whose horizon is complete), churn trains on C2…, is calibrated on C1 and
evaluated on C0; pCLTV trains on C1… and is evaluated on C0 against the BG/NBD +
Gamma-Gamma baseline fitted on the same history.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import asyncpg
import numpy as np

from service.config import PcltvSettings
from service.features.vector import MODEL_FEATURES, feature_matrix
from service.modeling.artifacts import Artifact, Manifest, new_version
from service.modeling.pcltv import FEATURES as PCLTV_FEATURES
from service.modeling.rfm import RFM_COLUMNS, RFM_FEATURES
from service.modeling.runtime import LoadedModel
from service.scoring.engine import ModelSet
from service.training import baseline, churn, onnx_export, pcltv, segment
from service.training import nbo as nbo_training
from service.training.clv_math import classification_report, regression_report
from service.training.dataset import Snapshot, cutoffs_for, data_span, labels, snapshot
from service.training.model_card import churn_card, pcltv_card
from service.training.propensity import train_propensity
from service.training.report import write_report
from service.training.results import Evaluated, TrainResult
from service.vocabulary import ValueTiers


@dataclass
class TrainConfig:
    """One training run; the horizons and money settings come from `Settings` (and the
    flags of `scorer train`), the rest are the run's own knobs."""

    churn_horizon_days: int
    pcltv_horizon_days: int
    margin: float
    annual_discount_rate: float
    as_of: date | None = None
    cutoffs: int = 4
    cutoff_step_days: int = 30
    seed: int = 0
    # The value tiers the model card groups pCLTV errors by.
    value_tiers: ValueTiers = field(default_factory=lambda: PcltvSettings().tiers())


Log = Callable[[str], None]


class Snapshots:
    """Each cutoff's snapshot is built once, whichever models need it."""

    def __init__(self, conn: asyncpg.Connection, log: Log) -> None:
        self.conn, self.log, self._cache = conn, log, {}

    async def at(self, cutoff: date) -> Snapshot:
        if cutoff not in self._cache:
            self.log(f"features as of {cutoff}")
            self._cache[cutoff] = await snapshot(self.conn, cutoff)
        return self._cache[cutoff]


async def _stack(snapshots: Snapshots, conn, cutoffs: list[date], horizon: int):
    parts = []
    for cutoff in cutoffs:
        shot = await snapshots.at(cutoff)
        parts.append((shot, await labels(conn, shot.customer_ids, cutoff, horizon)))
    X = np.vstack([shot.X for shot, _ in parts])
    orders = np.concatenate([lab.orders for _, lab in parts])
    revenue = np.concatenate([lab.revenue for _, lab in parts])
    return X, orders, revenue


# A cutoff needs this many days of events before it: earlier, too few customers have any.
WARM_UP_DAYS = 30
# Churn trains, calibrates and evaluates on different cutoffs; pCLTV trains and evaluates.
CUTOFFS_NEEDED = {"churn": 3, "pcltv": 2}


class NotEnoughHistory(ValueError):
    """The events up to the as-of day are too short for some horizon (or there are none, or
    the as-of day is after the newest event day: its horizons have no outcomes yet).

    `needs` maps each model short of history to (its horizon, the days of events it needs
    up to the as-of day); a horizon of `history_days - (needed - horizon)` or less would fit.
    """

    def __init__(self, first_day: date, last_day: date, as_of: date, needs: dict) -> None:
        self.first_day, self.last_day, self.as_of, self.needs = first_day, last_day, as_of, needs
        self.history_days = (as_of - first_day).days
        wanted = ", ".join(f"{m} ({h}-day horizon) {n}" for m, (h, n) in needs.items())
        super().__init__(
            f"not enough history as of {as_of}: the events span {first_day} to {last_day}"
            + (f"; days of events needed: {wanted}" if needs else "")
        )


def history_needed(horizon_days: int, cutoffs: int, config: TrainConfig) -> int:
    """Days from the first event day to the as-of day for `cutoffs` usable cutoffs."""
    return horizon_days + config.cutoff_step_days * (cutoffs - 1) + WARM_UP_DAYS


def require_history(config: TrainConfig, first_day: date, last_day: date, as_of: date) -> None:
    horizons = {"churn": config.churn_horizon_days, "pcltv": config.pcltv_horizon_days}
    needs = {
        model: (horizon, history_needed(horizon, CUTOFFS_NEEDED[model], config))
        for model, horizon in horizons.items()
    }
    short = {m: need for m, need in needs.items() if need[1] > (as_of - first_day).days}
    if short or as_of > last_day:
        raise NotEnoughHistory(first_day, last_day, as_of, short)


def _usable(cutoffs: list[date], first_day: date) -> list[date]:
    return [c for c in cutoffs if c >= first_day + timedelta(days=WARM_UP_DAYS)]


async def train_churn(conn, snapshots: Snapshots, config: TrainConfig, first_day, as_of, log):
    cutoffs = _usable(
        cutoffs_for(as_of, config.churn_horizon_days, config.cutoffs, config.cutoff_step_days),
        first_day,
    )
    horizon = config.churn_horizon_days
    X_eval, o_eval, _ = await _stack(snapshots, conn, cutoffs[:1], horizon)
    X_cal, o_cal, _ = await _stack(snapshots, conn, cutoffs[1:2], horizon)
    X_train, o_train, _ = await _stack(snapshots, conn, cutoffs[2:], horizon)
    log(f"churn: train {len(X_train)} rows, calibrate {len(X_cal)}, evaluate {len(X_eval)}")
    model = churn.fit_churn(
        X_train, (o_train == 0).astype(int), X_cal, (o_cal == 0).astype(int), config.seed
    )
    native = model.predict(X_eval)
    graph = model.to_onnx(len(MODEL_FEATURES))
    parity = onnx_export.check_parity(graph, X_eval, native)
    metrics = classification_report((o_eval == 0).astype(int), native)
    metrics.update(parity_max_abs=parity, evaluated_on=str(cutoffs[0]), rows=len(X_eval))
    window = {
        "train_cutoffs": [str(c) for c in cutoffs[2:]],
        "calibration_cutoff": str(cutoffs[1]),
        "evaluation_cutoff": str(cutoffs[0]),
    }
    manifest = Manifest(
        name="churn",
        version="",
        features=list(MODEL_FEATURES),
        output="probability",
        horizon_days=horizon,
        training_window=window,
        metrics=metrics,
        parameters={
            "platt_slope": model.slope,
            "platt_intercept": model.intercept,
            **{k: v for k, v in churn.PARAMS.items()},
        },
    )
    explainer = model.classifier.booster_.model_to_string()
    artifact = Artifact(manifest, graph.SerializeToString(), explainer)
    return Evaluated(artifact, (o_eval == 0).astype(int), native)


async def train_pcltv(conn, snapshots: Snapshots, config: TrainConfig, first_day, as_of, log):
    horizon = config.pcltv_horizon_days
    cutoffs = _usable(
        cutoffs_for(as_of, horizon, config.cutoffs, config.cutoff_step_days), first_day
    )
    X_eval, _, r_eval = await _stack(snapshots, conn, cutoffs[:1], horizon)
    X_train, _, r_train = await _stack(snapshots, conn, cutoffs[1:], horizon)
    log(f"pcltv: train {len(X_train)} rows, evaluate {len(X_eval)}")
    newest = await snapshots.at(as_of)
    model = pcltv.fit_pcltv(X_train, r_train, newest.X, horizon, config.seed)
    graph = model.to_onnx()
    augmented = model.probabilistic.augment(X_eval)
    parity = onnx_export.check_parity(graph, augmented, model.multiplier(augmented))
    predictions = model.predict(X_eval)
    ours = regression_report(r_eval, predictions)
    eval_shot = await snapshots.at(cutoffs[0])
    base = await baseline.predict(conn, eval_shot.customer_ids, cutoffs[0], horizon)
    theirs = regression_report(r_eval, base.predictions)
    log(f"pcltv: ours RMSE {ours['rmse']:.2f}, BG/NBD+GG RMSE {theirs['rmse']:.2f}")
    metrics = {
        "lightgbm": ours,
        "bgnbd_gamma_gamma": theirs,
        "parity_max_abs": parity,
        "parity_unit": "multiplier of (BG/NBD expected revenue + base_offset) * base_scale",
        "evaluated_on": str(cutoffs[0]),
        "rows": len(X_eval),
        "baseline_parameters": base.parameters,
        "served": "lightgbm" if ours["rmse"] <= theirs["rmse"] else "bgnbd_gamma_gamma",
    }
    manifest = Manifest(
        name="pcltv",
        version="",
        features=list(PCLTV_FEATURES),
        output="value",
        horizon_days=horizon,
        training_window={
            "train_cutoffs": [str(c) for c in cutoffs[1:]],
            "evaluation_cutoff": str(cutoffs[0]),
        },
        metrics=metrics,
        parameters={
            **model.probabilistic.parameters(),
            **pcltv.SERVING_CONSTANTS,
            "margin": config.margin,
            "annual_discount_rate": config.annual_discount_rate,
            **pcltv.PARAMS,
        },
    )
    explainer = model.regressor.booster_.model_to_string()
    return Evaluated(Artifact(manifest, graph.SerializeToString(), explainer), r_eval, predictions)


async def train_segment(snapshots: Snapshots, as_of: date) -> Artifact:
    shot = await snapshots.at(as_of)
    binner = segment.fit_rfm(shot.X)
    graph = segment.to_onnx(binner)
    rfm = shot.X[:, RFM_COLUMNS]
    buyers = rfm[~np.isnan(rfm[:, 0])]
    parity = onnx_export.check_parity(graph, buyers, binner.transform(buyers)[:, 0])
    manifest = Manifest(
        name="segment",
        version="",
        features=list(RFM_FEATURES),
        output="bins",
        horizon_days=None,
        training_window={"as_of": str(as_of)},
        metrics={
            "buyers": int(len(buyers)),
            "parity_max_abs": parity,
            "bin_edges": [edges.tolist() for edges in binner.bin_edges_],
        },
        parameters={
            "n_bins": [int(n) for n in binner.n_bins_],
            "new_customer_days": segment.NEW_CUSTOMER_DAYS,
        },
    )
    return Artifact(manifest, graph.SerializeToString())


async def train_nbo(conn, segmentation: Artifact, as_of: date, seed: int, log: Log):
    """The offer-acceptance model, when the decision log holds enough impressions."""
    segmenter = ModelSet({"segment": LoadedModel(segmentation)})

    def segment_of(rows: list[dict]) -> list[str]:
        return segmenter.segments(feature_matrix(rows), rows)

    shown = await nbo_training.impressions(conn, as_of, segment_of)
    try:
        graph, fields = train_propensity(shown, seed)
    except ValueError as reason:
        log(f"nbo: no model from {len(shown)} impressions ({reason}); segment priors stay in use")
        return None
    log(f"nbo: trained on {len(shown)} impressions")
    return Artifact(Manifest(version="", **fields), graph.SerializeToString())


async def train(
    conn: asyncpg.Connection,
    config: TrainConfig,
    models_dir: Path,
    log: Log = print,
) -> TrainResult:
    first_day, last_day = await data_span(conn)
    as_of = config.as_of or last_day
    require_history(config, first_day, last_day, as_of)
    snapshots = Snapshots(conn, log)
    version = new_version()
    result = TrainResult()
    churn_out = await train_churn(conn, snapshots, config, first_day, as_of, log)
    pcltv_out = await train_pcltv(conn, snapshots, config, first_day, as_of, log)
    segmentation = await train_segment(snapshots, as_of)
    propensity = await train_nbo(conn, segmentation, as_of, config.seed, log)
    artifacts = [churn_out.artifact, pcltv_out.artifact, segmentation]
    for artifact in filter(None, (*artifacts, propensity)):
        artifact.manifest.version = version
        result.folders[artifact.manifest.name] = artifact.save(models_dir)
        result.metrics[artifact.manifest.name] = artifact.manifest.metrics
    card = await _model_card(snapshots, segmentation, churn_out, pcltv_out, config.value_tiers)
    result.report = write_report(
        result, churn_out, pcltv_out, card, models_dir / "reports", version
    )
    return result


async def _model_card(
    snapshots: Snapshots,
    segmentation: Artifact,
    churn_out: Evaluated,
    pcltv_out: Evaluated,
    tiers: ValueTiers,
) -> dict:
    """Each model's card on its own evaluation cutoff, grouped by the segments the new
    segmentation gives there."""
    segmenter = ModelSet({"segment": LoadedModel(segmentation)})

    async def segments_at(evaluated: Evaluated) -> list[str]:
        cutoff = date.fromisoformat(evaluated.artifact.manifest.metrics["evaluated_on"])
        shot = await snapshots.at(cutoff)
        return segmenter.segments(shot.X, shot.features)

    value_tiers = [tiers.of(float(v)) for v in pcltv_out.predicted]
    return {
        **churn_card(churn_out.actual, churn_out.predicted, await segments_at(churn_out)),
        **pcltv_card(
            pcltv_out.actual, pcltv_out.predicted, await segments_at(pcltv_out), value_tiers
        ),
    }
