"""`scorer backtest`: train on a transactions file up to a cutoff, predict the next N days,
compare with what happened, for our models and the BG/NBD + Gamma-Gamma baseline.

The file goes through `scorer import` into a throw-away database on the same server,
and training and prediction run the very code `scorer train` and the API use.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from service.backfill.importer import import_file
from service.db import asyncpg_dsn, migrate
from service.events.validation import EventRules
from service.modeling.artifacts import Artifact
from service.modeling.outcomes import churned as churn_label
from service.modeling.outcomes import labels
from service.modeling.runtime import LoadedModel
from service.scoring.engine import ModelSet
from service.training.evaluate import predict_at, side_by_side
from service.training.model_card import card_markdown, model_card
from service.training.pcltv import coverage
from service.training.pipeline import TrainConfig, train
from service.vocabulary import ValueTiers

Log = Callable[[str], None]


def load_model_set(folders: dict[str, Path], tiers: ValueTiers) -> ModelSet:
    models = {name: LoadedModel(Artifact.load(folder)) for name, folder in folders.items()}
    return ModelSet(models, tiers)


async def run_backtest(conn: asyncpg.Connection, config: TrainConfig, log: Log) -> dict:
    """Train on the data up to `config.as_of` (the cutoff), then score the horizon after it;
    both horizons of `config` are the backtest's horizon."""
    cutoff, horizon_days = config.as_of, config.pcltv_horizon_days
    with tempfile.TemporaryDirectory() as folder:
        result = await train(conn, config, Path(folder), log)
        models = load_model_set(result.folders, config.value_tiers)
    predictions = await predict_at(conn, models, cutoff, horizon_days)
    actual = await labels(conn, predictions.customer_ids, cutoff, horizon_days)
    churned = churn_label(actual.orders)
    report = side_by_side(predictions, churned, actual.revenue)
    low, high = models.value_interval.of(predictions.scores.pcltv)
    report["pcltv"]["interval_coverage"] = coverage(actual.revenue, low, high)
    scores = predictions.scores
    report["model_card"] = model_card(
        churned,
        scores.churn_probability,
        actual.revenue,
        scores.pcltv,
        scores.segments,
        scores.pcltv_tiers,
    )
    report.update(
        cutoff=str(cutoff),
        horizon_days=horizon_days,
        customers=len(predictions.customer_ids),
        holdout_metrics=result.metrics,
        served={name: result.metrics[name]["served"] for name in ("churn", "pcltv")},
    )
    return report


async def _administer(server_url: str, statement: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def scratch_database(server_url: str) -> str:
    """A new, migrated database beside the configured one, for one backtest."""
    name = f"scorer_backtest_{secrets.token_hex(4)}"
    asyncio.run(_administer(server_url, f'CREATE DATABASE "{name}"'))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    migrate(url)
    return url


def drop_database(server_url: str, database_url: str) -> None:
    name = make_url(database_url).database
    asyncio.run(_administer(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def markdown(report: dict) -> str:
    churn = report["churn"]
    ours, theirs = report["pcltv"]["ours"], report["pcltv"]["bgnbd_gamma_gamma"]
    keys = ("mae", "rmse", "spearman", "aggregate_error", "top_decile_capture")
    lines = [
        f"# Backtest: cutoff {report['cutoff']}, horizon {report['horizon_days']} days, "
        f"{report['customers']} customers",
        "",
        "## Churn (no order in the horizon)",
        "",
        "| ROC-AUC | PR-AUC | Brier | ECE |",
        "|---|---|---|---|",
        f"| {churn['roc_auc']:.4f} | {churn['pr_auc']:.4f} | {churn['brier']:.4f} "
        f"| {churn['ece']:.4f} |",
        "",
        "## pCLTV (net revenue in the horizon)",
        "",
        "| model | " + " | ".join(keys) + " |",
        "|---" * (len(keys) + 1) + "|",
        "| ours | " + " | ".join(f"{ours[k]:.4g}" for k in keys) + " |",
        "| BG/NBD + Gamma-Gamma | " + " | ".join(f"{theirs[k]:.4g}" for k in keys) + " |",
        "",
        f"Served: churn {report['served']['churn']}, pCLTV {report['served']['pcltv']}. "
        f"80% interval (P10-P90) coverage: {report['pcltv']['interval_coverage']:.1%}.",
        "",
        *card_markdown(report["model_card"]),
    ]
    return "\n".join(lines) + "\n"


async def import_transactions(url: str, path: Path, rules: EventRules, log: Log) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        summary = await import_file(conn, path, rules, path.with_suffix(".rejects.ndjson"))
    finally:
        await conn.close()
    log(f"imported {summary.accepted} orders ({summary.rejected} rejected)")
