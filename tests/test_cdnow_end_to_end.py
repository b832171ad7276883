"""CDNOW through the product: both standard splits through `scorer backtest`, and the
whole path a shop takes (import the CSV, `scorer train`, read scores over HTTP).

The bounds here guard against regressions (they can fail); the figures measured against
the targets are printed by `benchmarks/cdnow.py` and recorded in docs/models.md.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.conftest import running_server, scorer

MASTER = Path(__file__).parent / "data" / "cdnow" / "CDNOW_master.txt"


@pytest.fixture(scope="module")
def transactions(tmp_path_factory) -> Path:
    """CDNOW as the CSV `scorer import` and `scorer backtest` read: one order per row."""
    path = tmp_path_factory.mktemp("cdnow") / "cdnow.csv"
    with MASTER.open() as source, path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["customer_id", "date", "amount"])
        next(source)
        for line in source:
            customer, day, _cds, dollars = line.split()
            writer.writerow([customer, f"{day[:4]}-{day[4:6]}-{day[6:]}", dollars])
    return path


def backtest(database_url: str, transactions: Path, cutoff: str, horizon: int) -> dict:
    out = transactions.with_name(f"backtest-{cutoff}.json")
    scorer(
        database_url,
        "backtest",
        "--transactions",
        str(transactions),
        "--cutoff",
        cutoff,
        "--horizon-days",
        str(horizon),
        "--out",
        str(out),
    )
    return json.loads(out.read_text())


def test_the_half_year_split_serves_the_validated_candidate(database_url, transactions):
    report = backtest(database_url, transactions, "1997-12-29", 182)
    assert report["customers"] == 23570
    ours, theirs = report["pcltv"]["ours"], report["pcltv"]["bgnbd_gamma_gamma"]
    chosen = report["holdout_metrics"]["pcltv"]
    # The trees' weight names what is served; a probabilistic model wins on validation.
    served, weight = chosen["served"], chosen["blend_weight"]
    assert served == {1.0: "lightgbm"}.get(weight, "blend" if weight > 0 else served)
    if weight == 0:
        rmse = {name: m["rmse_serving_mix"] for name, m in chosen["candidates"].items()}
        assert rmse[served] == min(rmse["bgnbd_gamma_gamma"], rmse["pareto_nbd_gamma_gamma"])
    assert ours["rmse"] <= 1.1 * theirs["rmse"]
    assert ours["spearman"] >= theirs["spearman"] - 0.01
    assert abs(ours["aggregate_error"]) <= 0.10
    assert report["churn"]["roc_auc"] >= 0.78 and report["churn"]["ece"] <= 0.04
    assert 0.7 <= report["pcltv"]["interval_coverage"] <= 0.92


def test_the_classic_39_week_split_has_no_labelled_horizon_and_serves_the_probabilistic_model(
    database_url, transactions
):
    report = backtest(database_url, transactions, "1997-09-30", 273)
    assert report["served"]["churn"] == "bgnbd"
    assert report["served"]["pcltv"] in ("bgnbd_gamma_gamma", "pareto_nbd_gamma_gamma")
    assert "needed for trees" in report["holdout_metrics"]["pcltv"]["reason"]
    ours, theirs = report["pcltv"]["ours"], report["pcltv"]["bgnbd_gamma_gamma"]
    assert ours["rmse"] <= 1.05 * theirs["rmse"]
    assert report["churn"]["roc_auc"] >= 0.7 and report["churn"]["ece"] <= 0.06
    assert 0.7 <= report["pcltv"]["interval_coverage"] <= 0.9


def test_import_train_and_read_scores_over_http(database_url, transactions, tmp_path_factory):
    scorer(database_url, "import", str(transactions))
    # Half a year of data: too short for trees at the default 365-day pCLTV horizon.
    short = scorer(database_url, "train", "--as-of", "1997-06-30T23:59:59Z")
    assert "too few for trees" in short.stderr
    trained = scorer(database_url, "train")  # all of it: trees where they earn it
    printed = [line.split() for line in trained.stdout.splitlines() if " -> " in line]
    versions = {name: version for name, version, *_ in printed}
    with (
        running_server(database_url, tmp_path_factory) as server,
        server.client(server.admin_key) as http,
    ):
        body = http.get("/v1/customers/00001/scores").raise_for_status().json()
        assert body["known"] is True
        assert body["model_versions"]["churn"] == versions["churn"]
        assert body["model_versions"]["pcltv"] == versions["pcltv"]
        pcltv = body["pcltv"]
        assert pcltv["interval"]["low"] <= pcltv["value"] <= pcltv["interval"]["high"]
        assert pcltv["interval"]["coverage"] == 0.8
        assert 0 <= pcltv["p_alive"] <= 1 and pcltv["expected_orders"] >= 0
        assert 0 <= body["churn"]["probability"] <= 1
        heavy = http.get("/v1/customers/01000/scores").raise_for_status().json()
        assert heavy["pcltv"]["value"] >= 0
