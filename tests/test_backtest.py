"""`scorer backtest` on a transactions CSV: ours and the BG/NBD + Gamma-Gamma baseline."""

from __future__ import annotations

import csv
import json

from tests.conftest import scorer


def test_backtest_reports_both_models_side_by_side(database_url, tmp_path):
    events = tmp_path / "sim.ndjson"
    scorer(
        database_url,
        "simulate",
        "--customers",
        "3000",
        "--days",
        "420",
        "--seed",
        "9",
        "--start",
        "2024-01-01",
        "--out",
        str(events),
        "--quiet",
    )
    transactions = tmp_path / "transactions.csv"
    with transactions.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["customer_id", "date", "amount"])
        for line in events.open():
            event = json.loads(line)
            if event["type"] == "order_completed":
                writer.writerow([event["customer_id"], event["occurred_at"][:10], event["amount"]])
    result = scorer(
        database_url,
        "backtest",
        "--transactions",
        str(transactions),
        "--cutoff",
        "2024-12-31",
        "--horizon-days",
        "90",
    )
    assert "BG/NBD + Gamma-Gamma" in result.stdout
    report = json.loads(transactions.with_suffix(".backtest.json").read_text())
    assert report["cutoff"] == "2024-12-31" and report["horizon_days"] == 90
    assert report["churn"]["roc_auc"] > 0.6
    for model in ("ours", "bgnbd_gamma_gamma"):
        metrics = report["pcltv"][model]
        assert metrics["n"] == report["customers"] > 1000
        assert metrics["rmse"] > 0 and -1 <= metrics["spearman"] <= 1
    card = report["model_card"]
    assert sum(row["n"] for row in card["pcltv_decile_lift"]) == report["customers"]
    # Ranked by our pCLTV, the top decile spends more than the bottom one.
    assert (
        card["pcltv_decile_lift"][0]["actual_mean"] > card["pcltv_decile_lift"][-1]["actual_mean"]
    )
    assert 0 < card["pcltv_normalized_gini"] <= 1
    assert {row["group"] for row in card["pcltv_error_by_tier"]["groups"]} <= {
        "high",
        "medium",
        "low",
    }
    assert "## Model card" in transactions.with_suffix(".backtest.md").read_text()
