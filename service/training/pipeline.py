"""`scorer train`: point-in-time datasets → churn, pCLTV and segment models → ONNX + report.

Validation is by time, never a random split, and every choice is made on data before the
as-of day. For cutoffs C0 > C1 > C2 > … (C0 the newest whose horizon is complete),
churn trains on C2…, is calibrated on C1 and validated on C0; pCLTV trains on C1… and is
validated on C0. On C0 each model's candidates (the trees, the probabilistic model fitted
on the data up to C0, their blend) are compared and the best is served. When the history
holds too few complete horizons for the trees, the probabilistic model, which needs no
labels, is fitted and served alone, checked on a window of half the history.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path

import asyncpg
import numpy as np

from service.config import PcltvSettings
from service.features.asof import Snapshot, snapshot
from service.features.vector import MODEL_FEATURES, feature_matrix
from service.modeling.artifacts import Artifact, Manifest, new_version
from service.modeling.outcomes import Labels, churned, labels
from service.modeling.pcltv import FEATURES as PCLTV_FEATURES
from service.modeling.pcltv import TENURE_COLUMN, WEEK, Probabilistic, discount_factor
from service.modeling.pcltv import probabilistic_revenue as revenue_column
from service.modeling.rfm import RFM_COLUMNS, RFM_FEATURES
from service.modeling.runtime import LoadedModel
from service.scoring.engine import ModelSet
from service.training import churn, onnx_export, pcltv, segment
from service.training import nbo as nbo_training
from service.training.clv_math import classification_report, regression_report
from service.training.dataset import cutoffs_for, data_span
from service.training.model_card import churn_card, pcltv_card
from service.training.propensity import train_propensity
from service.training.reference import record_references
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
    """Each cutoff's snapshot, and the probabilistic model fitted on it, built once,
    whichever models need them."""

    def __init__(self, conn: asyncpg.Connection, log: Log) -> None:
        self.conn, self.log, self._cache, self._fits = conn, log, {}, {}

    async def at(self, cutoff: date) -> Snapshot:
        if cutoff not in self._cache:
            self.log(f"features as of {cutoff}")
            self._cache[cutoff] = await snapshot(self.conn, cutoff)
        return self._cache[cutoff]

    async def probabilistic(self, cutoff: date, horizon_days: int) -> Probabilistic:
        """BG/NBD + Gamma-Gamma fitted on the customers known at `cutoff`."""
        if cutoff not in self._fits:
            self._fits[cutoff] = pcltv.fit_probabilistic((await self.at(cutoff)).X, horizon_days)
        return replace(self._fits[cutoff], horizon_days=horizon_days)

    async def pareto_nbd(self, cutoff: date, horizon_days: int) -> Probabilistic:
        """`probabilistic` with a Pareto/NBD for the purchase counts."""
        key = ("pareto", cutoff)
        if key not in self._fits:
            fitted = await self.probabilistic(cutoff, horizon_days)
            self._fits[key] = pcltv.with_pareto_nbd(fitted, (await self.at(cutoff)).X)
        return replace(self._fits[key], horizon_days=horizon_days)

    async def outcomes(self, cutoff: date, horizon_days: int) -> tuple[Snapshot, Labels]:
        shot = await self.at(cutoff)
        return shot, await labels(self.conn, shot.customer_ids, cutoff, horizon_days)


async def _stack(snapshots: Snapshots, conn, cutoffs: list[date], horizon: int):
    parts = [await snapshots.outcomes(cutoff, horizon) for cutoff in cutoffs]
    X = np.vstack([shot.X for shot, _ in parts])
    orders = np.concatenate([outcome.orders for _, outcome in parts])
    revenue = np.concatenate([outcome.revenue for _, outcome in parts])
    return X, orders, revenue


PARETO = "pareto_nbd_gamma_gamma"
# What a probabilistic-only model adds to its version.
PROBABILISTIC_SUFFIX = {"bgnbd": "-bgnbd", "bgnbd_gamma_gamma": "-bgnbd", PARETO: "-pareto"}
# The feature columns the BG/NBD reads (see `service.modeling.pcltv.bgnbd_inputs`).
BGNBD_COLUMNS = ("orders_total", "avg_days_between_orders", "recency_days")
# A cutoff needs this many days of events before it: earlier, too few customers have any.
WARM_UP_DAYS = 30
# Labelled cutoffs the trees need: churn trains, calibrates and validates on different
# ones, pCLTV trains and validates. With fewer, the probabilistic model is served alone.
CUTOFFS_NEEDED = {"churn": 3, "pcltv": 2}


class NotEnoughHistory(ValueError):
    """Nothing to learn as of the as-of day: it is before the first event day or after the
    newest one (its horizons have no outcomes yet)."""

    def __init__(self, first_day: date, last_day: date, as_of: date) -> None:
        self.first_day, self.last_day, self.as_of = first_day, last_day, as_of
        super().__init__(f"as of {as_of}: the events span {first_day} to {last_day}")


def _usable(cutoffs: list[date], first_day: date) -> list[date]:
    return [c for c in cutoffs if c >= first_day + timedelta(days=WARM_UP_DAYS)]


def short_window(first_day: date, as_of: date, horizon_days: int) -> int:
    """The validation horizon when the history holds no full one: half the history."""
    return max(1, min(horizon_days, (as_of - first_day).days // 2))


def _labelled_cutoffs(config: TrainConfig, horizon: int, first_day: date, as_of: date):
    return _usable(cutoffs_for(as_of, horizon, config.cutoffs, config.cutoff_step_days), first_day)


async def churn_without_orders(
    conn, snapshots: Snapshots, first_day: date, as_of: date, horizon: int
) -> float:
    """P(no order in the horizon) for a customer without any, for the BG/NBD churn model
    (which only describes buyers): the share of customers without an order on an earlier
    day who still had none on the as-of day, at a constant hazard over the horizon; 1
    while no customer without orders has been seen."""
    window = short_window(first_day, as_of, horizon)
    shot = await snapshots.at(as_of - timedelta(days=window))
    rows = zip(shot.customer_ids, shot.features, strict=True)
    waiting = [customer for customer, row in rows if not row["orders_total"]]
    if not waiting:
        return 1.0
    still = float(np.mean(churned((await labels(conn, waiting, shot.cutoff, window)).orders)))
    return still ** (horizon / window)


async def _bgnbd_churn_at(conn, snapshots: Snapshots, first_day, cutoff: date, horizon: int):
    """The BG/NBD churn model fitted as of `cutoff`, and its predictions there."""
    fitted = await snapshots.probabilistic(cutoff, horizon)
    without = await churn_without_orders(conn, snapshots, first_day, cutoff, horizon)
    shot = await snapshots.at(cutoff)
    return fitted, without, churn.bgnbd_churn(fitted.bgnbd, shot.X, horizon, without)


def _short_history_selection(
    model: str,
    served: str,
    labelled: int,
    horizon: int,
    check: date,
    outcome: str,
    chosen_by: str = "",
) -> dict:
    """What a probabilistic-only model records of its choice: why no trees, and the
    shorter window it was checked on."""
    return {
        "served": served,
        "reason": f"{labelled} cutoff(s) with a complete {horizon}-day horizon, "
        f"{CUTOFFS_NEEDED[model]} needed for trees",
        "validated_on": str(check),
        "validation": f"customers known on {check}, {outcome} (the history holds no complete "
        f"horizon); fitted on the data up to that day{chosen_by}",
    }


def _pick(candidates: dict[str, dict], key: str) -> str:
    """The candidate with the lowest `key` on validation (the first on a tie)."""
    return min(candidates, key=lambda name: candidates[name][key])


async def train_churn(conn, snapshots: Snapshots, config: TrainConfig, first_day, as_of, log):
    """LightGBM (anchored) against the BG/NBD, chosen by Brier score on the newest cutoff
    whose horizon is complete; the BG/NBD alone when there are too few such cutoffs."""
    horizon = config.churn_horizon_days
    cutoffs = _labelled_cutoffs(config, horizon, first_day, as_of)
    newest = await snapshots.at(as_of)
    fitted, without, probabilistic_now = await _bgnbd_churn_at(
        conn, snapshots, first_day, as_of, horizon
    )
    if len(cutoffs) < CUTOFFS_NEEDED["churn"]:
        window = short_window(first_day, as_of, horizon)
        check = as_of - timedelta(days=window)
        log(f"churn: {len(cutoffs)} labelled cutoffs, too few for trees: BG/NBD alone")
        _, _, predicted = await _bgnbd_churn_at(conn, snapshots, first_day, check, window)
        _, outcome = await snapshots.outcomes(check, window)
        y = churned(outcome.orders)
        candidates = {"bgnbd": classification_report(y, predicted)}
        selection = _short_history_selection(
            "churn", "bgnbd", len(cutoffs), horizon, check, f"no order in the next {window} days"
        )
        window_info = {"fitted_as_of": str(as_of), "validation_cutoff": str(check)}
        return _bgnbd_churn_artifact(
            fitted, without, newest, horizon, candidates, selection, window_info, y, predicted
        )
    validation, calibration, training = cutoffs[0], cutoffs[1], cutoffs[2:]
    X_val, o_val, _ = await _stack(snapshots, conn, [validation], horizon)
    X_cal, o_cal, _ = await _stack(snapshots, conn, [calibration], horizon)
    X_train, o_train, _ = await _stack(snapshots, conn, training, horizon)
    log(f"churn: train {len(X_train)} rows, calibrate {len(X_cal)}, validate {len(X_val)}")
    model = churn.fit_churn(X_train, churned(o_train), X_cal, churned(o_cal), config.seed)
    y = churned(o_val)
    _, _, bgnbd_then = await _bgnbd_churn_at(conn, snapshots, first_day, validation, horizon)
    trees_then = churn.anchored(model, X_val, float(np.mean(bgnbd_then))).predict(X_val)
    predictions = {
        "lightgbm": trees_then,
        "bgnbd": bgnbd_then,
        "lightgbm_unanchored": model.predict(X_val),
    }
    candidates = {name: classification_report(y, p) for name, p in predictions.items()}
    served = _pick({k: candidates[k] for k in ("lightgbm", "bgnbd")}, "brier")
    log(
        "churn on validation: "
        + ", ".join(
            f"{n} Brier {m['brier']:.4f} AUC {m['roc_auc']:.3f}" for n, m in candidates.items()
        )
        + f"; serving {served}"
    )
    window = {
        "train_cutoffs": [str(c) for c in training],
        "calibration_cutoff": str(calibration),
        "validation_cutoff": str(validation),
    }
    selection = {
        "served": served,
        "validated_on": str(validation),
        "validation": f"customers known on {validation}, no order in the next {horizon} days; "
        "the trees trained on earlier cutoffs, the BG/NBD fitted on the data up to that day, "
        "the trees anchored to its mean there; chosen by Brier score",
    }
    if served == "bgnbd":
        return _bgnbd_churn_artifact(
            fitted, without, newest, horizon, candidates, selection, window, y, bgnbd_then
        )
    final = churn.anchored(model, newest.X, float(np.mean(probabilistic_now)))
    graph = final.to_onnx(len(MODEL_FEATURES))
    parity = onnx_export.check_parity(graph, X_val, final.predict(X_val))
    metrics = {
        **candidates["lightgbm"],
        "candidates": candidates,
        **selection,
        "parity_max_abs": parity,
        "rows": len(X_val),
        "anchored_mean": float(np.mean(probabilistic_now)),
    }
    manifest = _churn_manifest(
        horizon,
        window,
        metrics,
        {
            "kind": "lightgbm",
            "platt_slope": final.slope,
            "platt_intercept": final.intercept,
            "anchor_shift": final.intercept - model.intercept,
            **{k: v for k, v in churn.PARAMS.items()},
        },
    )
    explainer = final.classifier.booster_.model_to_string()
    artifact = Artifact(manifest, graph.SerializeToString(), explainer)
    return Evaluated(artifact, y, trees_then)


def _churn_manifest(horizon: int, window: dict, metrics: dict, parameters: dict) -> Manifest:
    return Manifest(
        name="churn",
        version="",
        features=list(MODEL_FEATURES),
        output="probability",
        horizon_days=horizon,
        training_window=window,
        metrics=metrics,
        parameters=parameters,
    )


def _bgnbd_churn_artifact(
    fitted: Probabilistic,
    without: float,
    newest: Snapshot,
    horizon: int,
    candidates: dict,
    selection: dict,
    window: dict,
    y: np.ndarray,
    predicted: np.ndarray,
) -> Evaluated:
    graph = onnx_export.bgnbd_churn(
        {name: MODEL_FEATURES.index(name) for name in BGNBD_COLUMNS},
        len(MODEL_FEATURES),
        asdict(fitted.bgnbd),
        horizon / WEEK,
        without,
    )
    native = churn.bgnbd_churn(fitted.bgnbd, newest.X, horizon, without)
    parity = onnx_export.check_parity(graph, newest.X, native)
    manifest = _churn_manifest(
        horizon,
        window,
        {
            **candidates["bgnbd"],
            "candidates": candidates,
            **selection,
            "parity_max_abs": parity,
            "rows": len(y),
        },
        {"kind": "bgnbd", "bgnbd": asdict(fitted.bgnbd), "without_orders": without},
    )
    return Evaluated(Artifact(manifest, graph.SerializeToString()), y, predicted)


async def _augmented_stack(snapshots: Snapshots, cutoffs: list[date], horizon: int):
    """Rows of every cutoff, each augmented by the probabilistic model fitted there."""
    parts, revenue = [], []
    for cutoff in cutoffs:
        shot, outcome = await snapshots.outcomes(cutoff, horizon)
        parts.append((await snapshots.probabilistic(cutoff, horizon)).augment(shot.X))
        revenue.append(outcome.revenue)
    return np.vstack(parts), np.concatenate(revenue)


async def train_pcltv(conn, snapshots: Snapshots, config: TrainConfig, first_day, as_of, log):
    """Candidates on the newest cutoff whose horizon is complete: the BG/NBD + Gamma-Gamma
    fitted there, the anchored trees trained on earlier cutoffs, and their blend with a
    cross-fitted weight; the lowest RMSE is served. With too few labelled cutoffs the
    probabilistic model is served alone, checked on a shorter window."""
    horizon = config.pcltv_horizon_days
    cutoffs = _labelled_cutoffs(config, horizon, first_day, as_of)
    newest = await snapshots.at(as_of)
    serving = await snapshots.probabilistic(as_of, horizon)
    if len(cutoffs) < CUTOFFS_NEEDED["pcltv"]:
        window = short_window(first_day, as_of, horizon)
        check = as_of - timedelta(days=window)
        log(
            f"pcltv: {len(cutoffs)} labelled cutoffs, too few for trees: BG/NBD + Gamma-Gamma alone"
        )
        shot, outcome = await snapshots.outcomes(check, window)
        predictions = {
            "bgnbd_gamma_gamma": revenue_of(await snapshots.probabilistic(check, window), shot.X),
            PARETO: revenue_of(await snapshots.pareto_nbd(check, window), shot.X),
        }
        candidates = {n: regression_report(outcome.revenue, p) for n, p in predictions.items()}
        served = _pick(candidates, "rmse")
        predicted = predictions[served]
        if served == PARETO:
            serving = await snapshots.pareto_nbd(as_of, horizon)
        selection = _short_history_selection(
            "pcltv",
            served,
            len(cutoffs),
            horizon,
            check,
            f"net revenue in the next {window} days",
            "; chosen by RMSE",
        )
        window_info = {"fitted_as_of": str(as_of), "validation_cutoff": str(check)}
        model = pcltv.PcltvModel(serving)
        return _pcltv_artifact(
            model, newest, candidates, selection, window_info, config, outcome.revenue, predicted
        )
    validation, training = cutoffs[0], cutoffs[1:]
    X_train, r_train = await _augmented_stack(snapshots, training, horizon)
    log(f"pcltv: train {len(X_train)} rows, validate on {validation}")
    regressor = pcltv.fit_trees(X_train, r_train, config.seed)
    shot, outcome = await snapshots.outcomes(validation, horizon)
    then = await snapshots.probabilistic(validation, horizon)
    trained_tenure = float(np.nanmax(X_train[:, TENURE_COLUMN]))
    trees_model = pcltv.PcltvModel(then, regressor, 1.0).anchored(shot.X, trained_tenure)
    augmented = then.augment(shot.X)
    trees, probabilistic = trees_model.trees(augmented), revenue_column(augmented)
    actual = outcome.revenue
    mix = pcltv.serving_mix(shot.X[:, TENURE_COLUMN], newest.X[:, TENURE_COLUMN], trained_tenure)
    predictions = {
        "bgnbd_gamma_gamma": probabilistic,
        PARETO: revenue_of(await snapshots.pareto_nbd(validation, horizon), shot.X),
        "lightgbm": trees,
        "blend": pcltv.cross_fitted_blend(trees, probabilistic, actual, mix, config.seed),
        "lightgbm_unanchored": pcltv.PcltvModel(then, regressor, 1.0).predict(shot.X),
    }
    candidates = {
        name: {
            **regression_report(actual, p),
            "rmse_serving_mix": pcltv.weighted_rmse(actual, p, mix),
        }
        for name, p in predictions.items()
    }
    # The weight of the trees decides between the BG/NBD (0), a blend and the trees (1).
    weight = pcltv.blend_weight(trees, probabilistic, actual, mix)
    served = {0.0: "bgnbd_gamma_gamma", 1.0: "lightgbm"}.get(weight, "blend")
    if weight == 0 and (
        candidates[PARETO]["rmse_serving_mix"] < candidates[served]["rmse_serving_mix"]
    ):
        served = PARETO
    log(
        "pcltv on validation (RMSE, RMSE weighted to the serving mix): "
        + ", ".join(
            f"{n} {m['rmse']:.2f}, {m['rmse_serving_mix']:.2f}" for n, m in candidates.items()
        )
        + f"; serving {served} (weight {weight:.2f})"
    )
    selection = {
        "served": served,
        "blend_weight": weight,
        "validated_on": str(validation),
        "validation": f"customers known on {validation}, net revenue in the next {horizon} days; "
        "trees trained on earlier cutoffs, the probabilistic model fitted on the data up to "
        "that day, the trees anchored to its total there for customers older than any they "
        "were trained on, the customers older than any training row "
        "weighted to their share on the as-of day; the trees' weight (0: the probabilistic "
        "model, 1: the trees alone) the smallest within one standard error of the best RMSE "
        "(the blend row: that weight cross-fitted over two halves of the customers)",
    }
    window_info = {
        "train_cutoffs": [str(c) for c in training],
        "validation_cutoff": str(validation),
    }
    if served == PARETO:
        serving = await snapshots.pareto_nbd(as_of, horizon)
    if weight > 0:
        # Chosen, the trees are refitted with the validation cutoff's rows too: the newest
        # labelled customers are the closest to those they will serve.
        X_all, r_all = await _augmented_stack(snapshots, cutoffs, horizon)
        regressor = pcltv.fit_trees(X_all, r_all, config.seed)
        trained_tenure = float(np.nanmax(X_all[:, TENURE_COLUMN]))
    model = pcltv.PcltvModel(serving, regressor if weight > 0 else None, blend_weight=weight)
    model = model.anchored(newest.X, trained_tenure)
    return _pcltv_artifact(
        model, newest, candidates, selection, window_info, config, actual, predictions[served]
    )


def revenue_of(fitted: Probabilistic, X: np.ndarray) -> np.ndarray:
    return revenue_column(fitted.augment(X))


def _pcltv_artifact(
    model: pcltv.PcltvModel,
    newest: Snapshot,
    candidates: dict,
    selection: dict,
    window: dict,
    config: TrainConfig,
    actual: np.ndarray,
    predicted: np.ndarray,
) -> Evaluated:
    graph = model.to_onnx()
    augmented = model.probabilistic.augment(newest.X)
    parity = onnx_export.check_parity(graph, augmented, model.multiplier(augmented))
    kind = selection["served"] if model.regressor is None else "lightgbm"
    served_now = (
        model.predict(newest.X)
        * config.margin
        * discount_factor(model.probabilistic.horizon_days, config.annual_discount_rate)
    )
    bands, validation_coverage = pcltv.fit_interval(predicted, actual, served_now)
    metrics = {
        **candidates[selection["served"]],
        "candidates": candidates,
        **selection,
        "parity_max_abs": parity,
        "parity_unit": "multiplier of (BG/NBD expected revenue + base_offset) * base_scale",
        "rows": len(actual),
        "interval_coverage_validation": validation_coverage,
    }
    manifest = Manifest(
        name="pcltv",
        version="",
        features=list(PCLTV_FEATURES),
        output="value",
        horizon_days=model.probabilistic.horizon_days,
        training_window=window,
        metrics=metrics,
        parameters={
            "kind": kind,
            **model.probabilistic.parameters(),
            **model.constants,
            "margin": config.margin,
            "annual_discount_rate": config.annual_discount_rate,
            "interval": bands,
            **(pcltv.PARAMS if model.regressor is not None else {}),
        },
    )
    explainer = model.regressor.booster_.model_to_string() if model.regressor else None
    return Evaluated(Artifact(manifest, graph.SerializeToString(), explainer), actual, predicted)


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
    if not first_day <= as_of <= last_day:
        raise NotEnoughHistory(first_day, last_day, as_of)
    snapshots = Snapshots(conn, log)
    version = new_version()
    result = TrainResult()
    churn_out = await train_churn(conn, snapshots, config, first_day, as_of, log)
    pcltv_out = await train_pcltv(conn, snapshots, config, first_day, as_of, log)
    segmentation = await train_segment(snapshots, as_of)
    propensity = await train_nbo(conn, segmentation, as_of, config.seed, log)
    artifacts = [churn_out.artifact, pcltv_out.artifact, segmentation]
    await record_references(artifacts, snapshots.at)
    for artifact in filter(None, (*artifacts, propensity)):
        # A probabilistic-only model says so in its version, which every score carries.
        kind = artifact.manifest.parameters.get("kind", "")
        artifact.manifest.version = version + PROBABILISTIC_SUFFIX.get(kind, "")
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
    """Each model's card on its own validation cutoff, grouped by the segments the new
    segmentation gives there."""
    segmenter = ModelSet({"segment": LoadedModel(segmentation)})

    async def segments_at(evaluated: Evaluated) -> list[str]:
        cutoff = date.fromisoformat(evaluated.artifact.manifest.metrics["validated_on"])
        shot = await snapshots.at(cutoff)
        return segmenter.segments(shot.X, shot.features)

    value_tiers = [tiers.of(float(v)) for v in pcltv_out.predicted]
    return {
        **churn_card(churn_out.actual, churn_out.predicted, await segments_at(churn_out)),
        **pcltv_card(
            pcltv_out.actual, pcltv_out.predicted, await segments_at(pcltv_out), value_tiers
        ),
    }
