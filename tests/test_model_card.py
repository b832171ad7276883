"""The model card's measures on cases whose answers are known by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from service.training import model_card as card


def test_decile_lift_of_a_perfect_and_a_useless_ranking():
    actual = np.arange(100, dtype=float)  # customer i spends i
    perfect = card.decile_lift(actual, actual)
    assert [row["n"] for row in perfect] == [10] * 10
    assert perfect[0]["actual_mean"] == pytest.approx(94.5)  # 90..99
    assert perfect[0]["lift"] == pytest.approx(94.5 / 49.5)
    assert sum(row["actual_share"] for row in perfect) == pytest.approx(1.0)
    flat = card.decile_lift(actual, np.zeros(100))  # ties keep input order
    assert flat[0]["actual_mean"] == pytest.approx(4.5)


def test_normalized_gini_is_one_for_the_truth_and_minus_one_reversed():
    rng = np.random.default_rng(0)
    actual = rng.exponential(50, 500)
    assert card.normalized_gini(actual, actual) == pytest.approx(1.0)
    assert card.normalized_gini(actual, -actual) == pytest.approx(-1.0)
    assert abs(card.normalized_gini(actual, rng.random(500))) < 0.15
    assert math.isnan(card.normalized_gini(np.zeros(5), np.ones(5)))


def test_calibration_table_bins_predictions_and_reports_the_observed_rate():
    p = np.array([0.05, 0.05, 0.95, 0.95, 0.95, 1.0])
    y = np.array([0, 1, 1, 1, 0, 1])
    rows = card.calibration_table(y, p)
    assert [(r["bin"], r["n"]) for r in rows] == [("0.0-0.1", 2), ("0.9-1.0", 4)]
    assert rows[0]["observed"] == 0.5 and rows[1]["observed"] == 0.75
    assert rows[1]["predicted"] == pytest.approx((0.95 * 3 + 1.0) / 4)


def test_error_by_group_names_the_most_biased_group_of_enough_customers():
    groups = ["A"] * 40 + ["B"] * 40 + ["C"] * 5
    actual = np.array([10.0] * 40 + [10.0] * 40 + [10.0] * 5)
    predicted = np.array([11.0] * 40 + [5.0] * 40 + [100.0] * 5)  # C: tiny, wildly off
    table = card.error_by_group(actual, predicted, groups)
    bias = {row["group"]: row["bias"] for row in table["groups"]}
    assert bias == pytest.approx({"A": 0.1, "B": -0.5, "C": 9.0})
    assert table["worst"] == "B"
    lines = card.card_markdown(
        card.model_card(np.zeros(85), np.full(85, 0.2), actual, predicted, groups, ["low"] * 85)
    )
    assert "## Model card" in lines and any("worst: B" in line for line in lines)
