"""The simulator's output is what the rest of the service is tested and trained on,
so these tests pin its contract: shape, determinism, delivery quirks, truth."""

from __future__ import annotations

import argparse
import csv
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from service.cli.simulate import add_commands
from service.simulation import SimulationConfig, SimulationSummary, simulate

START = date(2025, 1, 1)
DAYS = 180
PERIOD_START = datetime(2025, 1, 1, tzinfo=UTC)
PERIOD_END = PERIOD_START + timedelta(days=DAYS)

EVENT_TYPES = {
    "order_completed", "order_refunded", "session_started", "product_viewed", "cart_updated",
    "checkout_started", "email_opened", "email_clicked", "support_ticket", "survey_response",
    "consent_updated", "identify",
}  # fmt: skip
ORDER_TYPES = {"order_completed", "order_refunded"}
CONSENT_CHANNELS = {"email", "sms", "push", "web", "profiling"}
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$")
AMOUNT = re.compile(r"^\d+\.\d{2}$")


@dataclass
class Run:
    config: SimulationConfig
    summary: SimulationSummary
    lines: list[str]
    events: list[dict]
    truth: list[dict[str, str]]


def _run(tmp_path: Path, name: str, **overrides) -> Run:
    settings = {"customers": 400, "days": DAYS, "seed": 7, "start": START} | overrides
    config = SimulationConfig(**settings)
    summary = simulate(config, tmp_path / f"{name}.ndjson", progress=False)
    lines = summary.out_path.read_text().splitlines()
    with summary.truth_path.open(newline="") as f:
        truth = list(csv.DictReader(f))
    return Run(config, summary, lines, [json.loads(line) for line in lines], truth)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    # Higher delivery-quirk rates than the defaults so a small run has enough of them.
    return _run(tmp_path_factory.mktemp("sim"), "events", duplicate_rate=0.05, late_rate=0.05)


def _unique(events: list[dict]) -> list[dict]:
    return list({e["event_id"]: e for e in events}.values())


def _at(event: dict) -> datetime:
    return datetime.fromisoformat(event["occurred_at"])


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    config = SimulationConfig(customers=150, days=60, seed=3)
    first = simulate(config, tmp_path / "a.ndjson", progress=False)
    second = simulate(config, tmp_path / "b.ndjson", tmp_path / "b-truth.csv", progress=False)
    other = simulate(
        SimulationConfig(customers=150, days=60, seed=4), tmp_path / "c.ndjson", progress=False
    )

    assert first.out_path.read_bytes() == second.out_path.read_bytes()
    assert first.truth_path.read_bytes() == second.truth_path.read_bytes()
    assert first.out_path.read_bytes() != other.out_path.read_bytes()
    assert first.truth_path.read_bytes() != other.truth_path.read_bytes()


def test_asking_for_other_horizons_changes_neither_events_nor_shared_truth(
    tmp_path: Path,
) -> None:
    both = _run(tmp_path, "both", customers=200, horizons=(90, 365))
    one = _run(tmp_path, "one", customers=200, horizons=(90,))

    assert both.lines == one.lines
    columns = ("future_orders_90d", "future_spend_90d", "churned_90d")
    assert [[r[c] for c in columns] for r in both.truth] == [
        [r[c] for c in columns] for r in one.truth
    ]
    assert "future_orders_365d" not in one.truth[0]


def test_every_line_is_an_event_of_a_known_type(run: Run) -> None:
    base = {"event_id", "customer_id", "type", "occurred_at", "properties"}
    assert run.summary.events_written == len(run.lines)
    for event in run.events:
        assert event["type"] in EVENT_TYPES
        assert isinstance(event["event_id"], str) and event["event_id"]
        assert re.fullmatch(r"c\d{6}", event["customer_id"])
        assert isinstance(event["properties"], dict)
        if event["type"] in ORDER_TYPES:
            assert set(event) == base | {"order_id", "amount", "currency"}
            assert AMOUNT.match(event["amount"])
            assert Decimal(event["amount"]) > 0
            assert event["currency"] == "USD"
        else:
            assert set(event) == base


def test_timestamps_are_rfc3339_utc_within_the_period(run: Run) -> None:
    for event in run.events:
        assert RFC3339_UTC.match(event["occurred_at"]), event["occurred_at"]
        occurred = _at(event)
        assert occurred.utcoffset() == timedelta(0)
        assert PERIOD_START <= occurred < PERIOD_END


def test_properties_follow_the_contract(run: Run) -> None:
    seen = Counter()
    for event in run.events:
        props = event["properties"]
        kind = event["type"]
        seen[kind] += 1
        if kind == "survey_response":
            assert props["csat"] in range(1, 6)
            assert props.get("nps", 0) in range(0, 11)
        elif kind == "consent_updated":
            assert props["channel"] in CONSENT_CHANNELS
            assert isinstance(props["granted"], bool)
        elif kind == "identify":
            assert set(props["traits"]) == {"country", "signup_channel"}
    assert set(seen) == EVENT_TYPES, "a small run still exercises every event type"


def test_duplicates_are_verbatim_resends_at_about_the_configured_rate(run: Run) -> None:
    lines_by_id = defaultdict(list)
    for line, event in zip(run.lines, run.events, strict=True):
        lines_by_id[event["event_id"]].append(line)
    repeated = {event_id: lines for event_id, lines in lines_by_id.items() if len(lines) > 1}

    assert all(len(lines) == 2 and lines[0] == lines[1] for lines in repeated.values())
    assert len(repeated) == run.summary.duplicates
    rate = len(repeated) / len(lines_by_id)
    assert 0.7 * run.config.duplicate_rate < rate < 1.3 * run.config.duplicate_rate


def test_late_events_arrive_days_after_later_events(run: Run) -> None:
    latest_so_far = PERIOD_START
    late = 0
    for event in run.events:
        occurred = _at(event)
        late += occurred <= latest_so_far - timedelta(days=1)
        latest_so_far = max(latest_so_far, occurred)

    unique = len(_unique(run.events))
    assert 0.7 * run.config.late_rate < run.summary.late / unique < 1.3 * run.config.late_rate
    # Every late event lands at least a day out of order, except the few whose delay
    # was cut short by the end of the period.
    assert late > 0.5 * run.summary.late


def test_refunds_reference_an_order_and_never_exceed_it(run: Run) -> None:
    events = _unique(run.events)
    orders = {
        (e["customer_id"], e["order_id"]): Decimal(e["amount"])
        for e in events
        if e["type"] == "order_completed"
    }
    refunded = Counter()
    for event in events:
        if event["type"] == "order_refunded":
            key = (event["customer_id"], event["order_id"])
            assert key in orders
            refunded[key] += Decimal(event["amount"])
    assert refunded, "a run this size has refunds"
    assert all(total <= orders[key] for key, total in refunded.items())
    assert any(total < orders[key] for key, total in refunded.items()), "some are partial"
    assert len(orders) == len({order_id for _, order_id in orders}), "order ids are unique"


def test_truth_has_a_row_per_customer_starting_at_first_seen(run: Run) -> None:
    first_seen: dict[str, datetime] = {}
    for event in run.events:
        occurred = _at(event)
        customer = event["customer_id"]
        first_seen[customer] = min(first_seen.get(customer, occurred), occurred)

    assert [row["customer_id"] for row in run.truth] == [
        f"c{i:06d}" for i in range(1, run.config.customers + 1)
    ]
    assert first_seen == {
        row["customer_id"]: datetime.fromisoformat(row["first_seen_at"]) for row in run.truth
    }
    for h in run.config.horizons:
        assert {f"future_orders_{h}d", f"future_spend_{h}d", f"churned_{h}d"} <= set(run.truth[0])


def test_observed_truth_matches_what_the_events_say(run: Run) -> None:
    """observed_* are net of refunds; fully refunded orders don't count."""
    amounts: dict[tuple[str, str], Decimal] = {}
    refunds: Counter = Counter()
    for event in _unique(run.events):
        key = (event["customer_id"], event.get("order_id"))
        if event["type"] == "order_completed":
            amounts[key] = Decimal(event["amount"])
        elif event["type"] == "order_refunded":
            refunds[key] += Decimal(event["amount"])
    orders: Counter = Counter()
    revenue: Counter = Counter()
    for (customer, order_id), amount in amounts.items():
        orders[customer] += refunds[(customer, order_id)] < amount
        revenue[customer] += amount - refunds[(customer, order_id)]

    for row in run.truth:
        assert int(row["observed_orders"]) == orders[row["customer_id"]]
        assert Decimal(row["observed_revenue"]) == revenue[row["customer_id"]]


def test_dead_customers_buy_nothing_afterwards(run: Run) -> None:
    dead = [row for row in run.truth if row["alive_at_end"] == "0"]
    alive = [row for row in run.truth if row["alive_at_end"] == "1"]
    assert dead and alive
    for row in dead:
        for h in run.config.horizons:
            assert row[f"future_orders_{h}d"] == "0"
            assert row[f"future_spend_{h}d"] == "0.00"
            assert row[f"churned_{h}d"] == "1"
    assert any(int(row["future_orders_90d"]) > 0 for row in alive)


def test_truth_horizons_are_nested_and_churn_agrees_with_orders(run: Run) -> None:
    for row in run.truth:
        assert int(row["future_orders_90d"]) <= int(row["future_orders_365d"])
        assert Decimal(row["future_spend_90d"]) <= Decimal(row["future_spend_365d"])
        for h in run.config.horizons:
            assert row[f"churned_{h}d"] == str(int(row[f"future_orders_{h}d"] == "0"))


def test_customers_are_heterogeneous(run: Run) -> None:
    orders = np.array([int(row["observed_orders"]) for row in run.truth])
    spend = np.array([float(row["mean_spend"]) for row in run.truth])
    assert orders.var() > 2 * orders.mean()
    assert (orders == 0).any() and orders.max() >= 10
    assert spend.std() / spend.mean() > 0.3


def test_orders_follow_a_checkout_and_email_needs_consent(run: Run) -> None:
    events = sorted(_unique(run.events), key=_at)
    checkouts = Counter()
    email_granted: set[str] = set()
    for event in events:
        customer = event["customer_id"]
        kind = event["type"]
        if kind == "checkout_started":
            checkouts[customer] += 1
        elif kind == "order_completed":
            assert checkouts[customer] > 0
            checkouts[customer] -= 1
        elif kind == "consent_updated" and event["properties"]["channel"] == "email":
            if event["properties"]["granted"]:
                email_granted.add(customer)
        elif kind in {"email_opened", "email_clicked"}:
            assert customer in email_granted


def _cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scorer")
    add_commands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_cli_writes_events_and_truth_next_to_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out" / "stream.ndjson"
    args = _cli(
        ["simulate", "--customers", "50", "--days", "30", "--out", str(out), "--quiet",
         "--horizon-days", "30", "--horizon-days", "60,7"]
    )  # fmt: skip

    assert args.func(args) == 0

    truth = out.with_name("stream.truth.csv")
    header = truth.read_text().splitlines()[0].split(",")
    assert header[:8] == [
        "customer_id", "first_seen_at", "alive_at_end", "lambda", "p_dropout", "mean_spend",
        "observed_orders", "observed_revenue",
    ]  # fmt: skip
    assert header[8:] == [f"{c}_{h}d" for h in (7, 30, 60) for c in
                          ("future_orders", "future_spend", "churned")]  # fmt: skip
    assert len(truth.read_text().splitlines()) == 51
    summary = capsys.readouterr().out.strip()
    assert summary.startswith("simulated 50 customers:") and str(out) in summary


def test_cli_rejects_nonsense_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "x.ndjson")
    args = _cli(["simulate", "--customers", "5", "--days", "10", "--out", out, "--late-rate", "2"])
    assert args.func(args) == 2
    assert "late_rate" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _cli(["simulate", "--customers", "5", "--days", "10", "--out", out, "--start", "soon"])
