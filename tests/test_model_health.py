"""Model health: the PSI and reliability math, and `GET /v1/insights/model-health` on a
database of simulated customers, its calibration and drift recomputed here from the raw
rows (customers, orders, stored scores, the manifest's reference)."""

from __future__ import annotations

import bisect
import json
import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from service.modeling import monitoring


def test_psi_is_about_zero_for_the_reference_itself_and_large_when_shifted():
    rng = np.random.default_rng(7)
    values = rng.gamma(2.0, 30.0, 20_000)
    values[rng.random(20_000) < 0.1] = np.nan
    recorded = monitoring.reference(values)
    assert monitoring.psi_against(recorded, values) < 1e-9
    same = rng.gamma(2.0, 30.0, 20_000)
    same[rng.random(20_000) < 0.1] = np.nan
    assert monitoring.psi_against(recorded, same) < 0.01
    assert monitoring.psi_against(recorded, same * 2) > 0.5


def test_a_zero_heavy_count_gets_a_bin_of_its_own_for_zero():
    counts = np.array([0] * 800 + [1] * 150 + [2] * 50, dtype=float)
    recorded = monitoring.reference(counts)
    assert recorded["edges"][0] == 0
    assert recorded["shares"][0] == 0.8
    assert recorded["shares"][-1] == 0  # nothing missing
    assert abs(sum(recorded["shares"]) - 1) < 1e-12


def test_reliability_bins_and_ece_recomputed_by_hand():
    p = np.array([0.05, 0.07, 0.55, 0.58, 0.95])
    y = np.array([0, 1, 1, 0, 1])
    bins = monitoring.reliability_bins(y, p)
    assert [n for _, _, n in bins] == [2, 2, 1]
    assert bins[0] == pytest.approx((0.06, 0.5, 2))
    expected_ece = (abs(1 - 0.12) + abs(1 - 1.13) + abs(1 - 0.95)) / 5
    assert abs(monitoring.expected_calibration_error(y, p) - expected_ece) < 1e-12
    assert abs(monitoring.brier(y, p) - np.mean((p - y) ** 2)) < 1e-15


TODAY = datetime.now(UTC).date()


@pytest.fixture(scope="module")
def health(server, tmp_path_factory):
    events = tmp_path_factory.mktemp("world") / "events.ndjson"
    start = TODAY - timedelta(days=300)
    server.scorer(
        "simulate",
        *("--customers", "200", "--days", "300", "--seed", "11", "--start", start.isoformat()),
        *("--out", str(events), "--quiet"),
    )
    server.scorer("import", str(events))
    server.scorer("rescore", "--all")
    with server.client(server.admin_key) as admin:
        assert admin.post("/v1/insights/snapshots").status_code == 200
        body = admin.get("/v1/insights/model-health")
    assert body.status_code == 200, body.text
    return body.json()


def test_calibration_counts_what_happened_after_the_cutoff(server, health):
    calibration = health["calibration"]
    cutoff, end = date.fromisoformat(calibration["cutoff"]), date.fromisoformat(calibration["end"])
    assert end == TODAY - timedelta(days=1) and (end - cutoff).days == calibration["horizon_days"]
    known = server.sql("SELECT customer_id FROM customers WHERE first_seen_day <= $1", cutoff)
    buyers = server.sql(
        "SELECT DISTINCT customer_id FROM orders WHERE day > $1 AND day <= $2 "
        "AND amount IS NOT NULL AND NOT (refunded > 0 AND refunded >= amount)",
        cutoff,
        end,
    )
    known_ids = {row[0] for row in known}
    churned = len(known_ids - {row[0] for row in buyers})
    assert calibration["customers"] == len(known_ids) > 50
    assert calibration["observed_rate"] == pytest.approx(churned / len(known_ids))
    bins = calibration["bins"]
    assert sum(b["customers"] for b in bins) == len(known_ids)
    n = len(known_ids)
    assert sum(b["observed"] * b["customers"] for b in bins) / n == pytest.approx(churned / n)
    assert sum(b["predicted"] * b["customers"] for b in bins) / n == pytest.approx(
        calibration["predicted_rate"]
    )
    ece = sum(b["customers"] / n * abs(b["observed"] - b["predicted"]) for b in bins)
    assert calibration["ece"] == pytest.approx(ece)


def _psi(reference: dict, values: list[float | None]) -> float:
    counts = [0] * (len(reference["edges"]) + 2)
    for value in values:
        if value is None:
            counts[-1] += 1
        else:
            counts[bisect.bisect_left(reference["edges"], value)] += 1
    shares = [c / len(values) for c in counts]
    return sum(
        (max(a, 1e-4) - max(e, 1e-4)) * math.log(max(a, 1e-4) / max(e, 1e-4))
        for a, e in zip(shares, reference["shares"], strict=True)
    )


def test_drift_is_the_psi_of_the_stored_scores_against_training(server, health):
    drift = health["drift"]
    [[manifest]] = server.sql(
        "SELECT manifest::text FROM model_registry WHERE name = 'churn' AND active"
    )
    reference = json.loads(manifest)["reference"]
    rows = [json.loads(r[0]) for r in server.sql("SELECT features::text FROM customer_scores")]
    assert drift["customers"] == len(rows)
    measured = {(d["model"], d["name"]): d for d in drift["features"]}
    for feature in ("recency_days", "orders_total", "revenue_365d"):
        expected = _psi(reference["features"][feature], [row[feature] for row in rows])
        assert measured[("churn", feature)]["psi"] == pytest.approx(expected, abs=1e-9)
    probabilities = [r[0] for r in server.sql("SELECT churn_probability FROM customer_scores")]
    [predicted] = [d for d in drift["predictions"] if d["model"] == "churn"]
    assert predicted["psi"] == pytest.approx(
        _psi(reference["predictions"]["churn_probability"], probabilities), abs=1e-9
    )
    past = {
        d["name"] for d in drift["features"] + drift["predictions"] if d["psi"] > drift["threshold"]
    }
    assert set(drift["drifted"]) == past
    assert all(d["drifted"] == (d["psi"] > drift["threshold"]) for d in drift["features"])


def test_the_active_versions_are_listed(server, health):
    active = dict(server.sql("SELECT name, version FROM model_registry WHERE active"))
    assert {m["name"]: m["version"] for m in health["models"]} == active
