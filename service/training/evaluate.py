"""Scores of the active models against known outcomes: a simulator's ground truth file
(`scorer evaluate`) or the actual next H days of a transactions file (`scorer backtest`)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import asyncpg
import numpy as np

from service.features.asof import snapshot
from service.scoring.engine import ModelSet, Scores
from service.training import baseline
from service.training.clv_math import classification_report, regression_report


@dataclass
class Predictions:
    customer_ids: list[str]
    scores: Scores
    baseline_pcltv: np.ndarray


async def predict_at(
    conn: asyncpg.Connection, models: ModelSet, day: date, pcltv_horizon_days: int
) -> Predictions:
    shot = await snapshot(conn, day)
    scores = models.score(shot.features)
    base = await baseline.predict(conn, shot.customer_ids, day, pcltv_horizon_days)
    return Predictions(shot.customer_ids, scores, base.predictions)


def side_by_side(
    predictions: Predictions, churned: np.ndarray, future_revenue: np.ndarray
) -> dict[str, dict]:
    return {
        "churn": classification_report(churned, predictions.scores.churn_probability),
        "pcltv": {
            "ours": regression_report(future_revenue, predictions.scores.pcltv),
            "bgnbd_gamma_gamma": regression_report(future_revenue, predictions.baseline_pcltv),
        },
    }


def truth_outcomes(
    truth_csv: Path, customer_ids: list[str], churn_days: int, pcltv_days: int
) -> tuple[np.ndarray, np.ndarray]:
    """Churn labels and future spend for `customer_ids` from a `scorer simulate` truth file."""
    with truth_csv.open() as stream:
        rows = {row["customer_id"]: row for row in csv.DictReader(stream)}
    missing = [c for c in customer_ids if c not in rows]
    if missing:
        raise ValueError(f"{len(missing)} customers are not in {truth_csv}, e.g. {missing[0]}")
    churn_column, spend_column = f"churned_{churn_days}d", f"future_spend_{pcltv_days}d"
    for column in (churn_column, spend_column):
        if column not in rows[customer_ids[0]]:
            raise ValueError(f"{truth_csv} has no {column} column (simulate --horizon-days)")
    churned = np.array([int(rows[c][churn_column]) for c in customer_ids])
    spend = np.array([float(rows[c][spend_column]) for c in customer_ids])
    return churned, spend
