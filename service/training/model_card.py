"""The model card of a set of predictions against what happened: where the value is
(decile lift, normalized Gini), whether probabilities mean what they say (calibration
table), and whether any group of customers is systematically mis-scored (error by
segment and by value tier, the worst group named). Pure functions of arrays."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

DECILES = 10
# Groups smaller than this are listed but never named the worst: their error is noise.
MIN_GROUP = 30


def decile_lift(actual: np.ndarray, predicted: np.ndarray) -> list[dict]:
    """Customers ranked by prediction (highest first) in ten equal groups: what each was
    predicted and did, its share of the actual total, and lift (its actual mean over the
    overall mean)."""
    actual, predicted = np.asarray(actual, float), np.asarray(predicted, float)
    order = np.argsort(-predicted, kind="stable")
    total, mean = float(actual.sum()), float(actual.mean()) if len(actual) else math.nan
    rows = []
    for decile, index in enumerate(np.array_split(order, DECILES), start=1):
        got = float(actual[index].sum())
        rows.append(
            {
                "decile": decile,
                "n": int(len(index)),
                "predicted_mean": float(predicted[index].mean()) if len(index) else math.nan,
                "actual_mean": float(actual[index].mean()) if len(index) else math.nan,
                "actual_share": got / total if total else math.nan,
                "lift": float(actual[index].mean()) / mean if len(index) and mean else math.nan,
            }
        )
    return rows


def _gini(actual: np.ndarray, ranking: np.ndarray) -> float:
    order = np.argsort(-ranking, kind="stable")
    cumulative = np.cumsum(actual[order]) / actual.sum()
    n = len(actual)
    return float(cumulative.sum() / n - (n + 1) / (2 * n))


def normalized_gini(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Gini of the actual values ordered by the prediction over the Gini of a perfect
    ordering: 1 ranks like the truth, 0 like chance."""
    actual, predicted = np.asarray(actual, float), np.asarray(predicted, float)
    if not len(actual) or actual.sum() <= 0:
        return math.nan
    perfect = _gini(actual, actual)
    return _gini(actual, predicted) / perfect if perfect else math.nan


def calibration_table(outcome: np.ndarray, probability: np.ndarray, bins: int = 10) -> list[dict]:
    """Per equal-width bin of predicted probability: how many, the mean prediction and
    the observed rate (empty bins left out): the calibration plot as a table."""
    outcome, probability = np.asarray(outcome, float), np.asarray(probability, float)
    index = np.clip((probability * bins).astype(int), 0, bins - 1)
    rows = []
    for k in range(bins):
        inside = index == k
        if inside.any():
            rows.append(
                {
                    "bin": f"{k / bins:.1f}-{(k + 1) / bins:.1f}",
                    "n": int(inside.sum()),
                    "predicted": float(probability[inside].mean()),
                    "observed": float(outcome[inside].mean()),
                }
            )
    return rows


def error_by_group(
    actual: np.ndarray, predicted: np.ndarray, groups: Sequence[str]
) -> dict[str, object]:
    """Per group: n, mean predicted and actual, bias (sum predicted / sum actual - 1) and
    MAE; `worst` is the group of at least MIN_GROUP customers with the largest |bias|."""
    actual, predicted = np.asarray(actual, float), np.asarray(predicted, float)
    labels = np.asarray(groups, dtype=object)
    if len(labels) != len(actual):
        raise ValueError(f"{len(labels)} group labels for {len(actual)} customers")
    rows = []
    for name in sorted(set(labels.tolist())):
        inside = labels == name
        got, said = float(actual[inside].sum()), float(predicted[inside].sum())
        rows.append(
            {
                "group": name,
                "n": int(inside.sum()),
                "predicted_mean": float(predicted[inside].mean()),
                "actual_mean": float(actual[inside].mean()),
                "bias": said / got - 1 if got else math.nan,
                "mae": float(np.abs(predicted[inside] - actual[inside]).mean()),
            }
        )
    ranked = [r for r in rows if r["n"] >= MIN_GROUP and not math.isnan(r["bias"])]
    worst = max(ranked, key=lambda r: abs(r["bias"]))["group"] if ranked else None
    return {"groups": rows, "worst": worst}


def pcltv_card(
    future_revenue: np.ndarray, pcltv: np.ndarray, segments: Sequence[str], tiers: Sequence[str]
) -> dict[str, object]:
    return {
        "pcltv_decile_lift": decile_lift(future_revenue, pcltv),
        "pcltv_normalized_gini": normalized_gini(future_revenue, pcltv),
        "pcltv_error_by_segment": error_by_group(future_revenue, pcltv, segments),
        "pcltv_error_by_tier": error_by_group(future_revenue, pcltv, tiers),
    }


def churn_card(
    churned: np.ndarray, churn_probability: np.ndarray, segments: Sequence[str]
) -> dict[str, object]:
    return {
        "churn_calibration": calibration_table(churned, churn_probability),
        "churn_error_by_segment": error_by_group(churned, churn_probability, segments),
    }


def model_card(
    churned: np.ndarray,
    churn_probability: np.ndarray,
    future_revenue: np.ndarray,
    pcltv: np.ndarray,
    segments: Sequence[str],
    tiers: Sequence[str],
) -> dict[str, object]:
    """Both halves on the same customers (a backtest scores everyone at one cutoff)."""
    return {
        **churn_card(churned, churn_probability, segments),
        **pcltv_card(future_revenue, pcltv, segments, tiers),
    }


def _groups_markdown(title: str, table: dict, money: bool) -> list[str]:
    value = "{:.2f}" if money else "{:.3f}"
    lines = [
        f"### {title} (worst: {table['worst'] or 'none of at least ' + str(MIN_GROUP)})",
        "",
        "| group | n | predicted mean | actual mean | bias | MAE |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in table["groups"]:
        lines.append(
            f"| {row['group']} | {row['n']} | {value.format(row['predicted_mean'])} "
            f"| {value.format(row['actual_mean'])} | {row['bias']:+.1%} "
            f"| {value.format(row['mae'])} |"
        )
    return [*lines, ""]


def card_markdown(card: dict) -> list[str]:
    """The card as markdown sections, for the backtest and training reports."""
    lines = [
        "## Model card",
        "",
        f"pCLTV normalized Gini: {card['pcltv_normalized_gini']:.3f} (1: ranks like the "
        "truth, 0: like chance)",
        "",
        "### pCLTV decile lift (deciles by prediction, highest first)",
        "",
        "| decile | n | predicted mean | actual mean | share of actual | lift |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in card["pcltv_decile_lift"]:
        lines.append(
            f"| {row['decile']} | {row['n']} | {row['predicted_mean']:.2f} "
            f"| {row['actual_mean']:.2f} | {row['actual_share']:.1%} | {row['lift']:.2f} |"
        )
    lines += [
        "",
        "### Churn calibration (predicted probability against observed rate)",
        "",
        "| bin | n | predicted | observed |",
        "|---|---:|---:|---:|",
    ]
    for row in card["churn_calibration"]:
        lines.append(
            f"| {row['bin']} | {row['n']} | {row['predicted']:.3f} | {row['observed']:.3f} |"
        )
    lines.append("")
    lines += _groups_markdown("pCLTV error by segment", card["pcltv_error_by_segment"], True)
    lines += _groups_markdown("pCLTV error by value tier", card["pcltv_error_by_tier"], True)
    lines += _groups_markdown("Churn by segment", card["churn_error_by_segment"], False)
    return lines
