"""Property tests: the service's features equal a plain-Python reference model.

Random event streams (several customers, orders with string and number amounts,
exact and equivalent re-sends, conflicts, second completions of an order, refunds
before and after their orders, partial/split/full/over refunds, engagement,
consent and CSAT with ties, late and out-of-order events over ~60 days, random
time-zone offsets) are POSTed in random batches; every POST's counters and, for
every customer and several as_of instants, every feature must equal
what `tests/reference.py` computes. Then `scorer features recompute` must
reproduce exactly the tables the online path maintained.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.reference import ReferenceModel, differences

BASE = datetime(2024, 3, 1, tzinfo=UTC)
SPAN_DAYS = 60
OFFSETS = ("Z", "+00:00", "-05:00", "+05:30", "+14:00", "-11:30", "+01:00")
ENGAGEMENT_TYPES = (
    "session_started",
    "product_viewed",
    "cart_updated",
    "checkout_started",
    "email_opened",
    "email_clicked",
    "support_ticket",
    "offer_shown",
)
CHANNELS = ("email", "sms", "push", "web", "profiling")
TABLES = {
    "customers": "customer_id",
    "customer_daily": "customer_id, day",
    "orders": "customer_id, order_id",
    "customer_facts": "customer_id, kind, occurred_at, event_id",
}


@dataclass(frozen=True)
class Spec:
    """An abstract event; `render` turns it into JSON for one example's id prefix."""

    eid: int
    customer: int
    type: str
    at: datetime  # the instant (UTC)
    offset: str = "Z"
    properties: dict | None = None
    order: int | None = None
    amount: Decimal | None = None
    amount_style: str = "str"  # str | padded | num
    currency: bool = False

    def render(self, prefix: str) -> dict[str, Any]:
        event: dict[str, Any] = {
            "event_id": f"{prefix}-e{self.eid:04d}",
            "customer_id": f"{prefix}-c{self.customer}",
            "type": self.type,
            "occurred_at": render_time(self.at, self.offset),
        }
        if self.properties is not None:
            event["properties"] = self.properties
        if self.order is not None:
            event["order_id"] = f"o{self.order}"
            event["amount"] = render_amount(self.amount, self.amount_style)
            if self.currency:
                event["currency"] = "USD"
        return event


def render_time(moment: datetime, offset: str) -> str:
    if offset == "Z":
        return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    sign = -1 if offset[0] == "-" else 1
    hours, minutes = int(offset[1:3]), int(offset[4:6])
    zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
    return moment.astimezone(zone).isoformat()


def render_amount(amount: Decimal, style: str) -> str | int | float:
    if style == "num":
        return int(amount) if amount == amount.to_integral_value() else float(amount)
    if style == "padded":
        return f"{amount:.4f}"
    return str(amount)


amount_styles = st.sampled_from(("str", "padded", "num"))


@st.composite
def instants(draw, near_day: int | None = None) -> datetime:
    if near_day is None:
        day = draw(st.integers(0, SPAN_DAYS))
    else:
        day = min(SPAN_DAYS, max(0, near_day + draw(st.integers(-3, 20))))
    second = draw(st.sampled_from((0, 43_200, 86_399)) | st.integers(0, 86_399))
    micro = draw(st.sampled_from((0, 0, 0, 500_000, 1)))
    return BASE + timedelta(days=day, seconds=second, microseconds=micro)


@st.composite
def amounts(draw, high: int = 10**7) -> Decimal:
    places = draw(st.integers(0, 4))
    return Decimal(draw(st.integers(0, high))).scaleb(-places)


@st.composite
def scenarios(draw):
    eids = iter(range(10_000))
    customers = draw(st.integers(1, 3))
    specs: list[Spec] = []

    def spec(customer: int, kind: str, **kw) -> Spec:
        made = Spec(next(eids), customer, kind, offset=draw(st.sampled_from(OFFSETS)), **kw)
        specs.append(made)
        return made

    for c in range(customers):
        for o in range(draw(st.integers(0, 4))):
            order = spec(
                c,
                "order_completed",
                at=draw(instants()),
                order=o,
                amount=draw(amounts()),
                amount_style=draw(amount_styles),
                currency=draw(st.booleans()),
                properties=draw(st.sampled_from((None, {}, {"channel": "web"}))),
            )
            order_day = (order.at - BASE).days
            refunds = draw(
                st.lists(st.sampled_from(("partial", "split", "full", "over", "zero")), max_size=2)
            )
            for kind in refunds:
                parts = [order.amount]
                if kind == "partial":
                    parts = [
                        (order.amount * Decimal(draw(st.integers(1, 99))) / 100).quantize(
                            Decimal("0.0001")
                        )
                    ]
                elif kind == "split":
                    first = (order.amount / 3).quantize(Decimal("0.0001"))
                    parts = [first, order.amount - first]
                elif kind == "over":
                    parts = [order.amount + draw(amounts(high=1000))]
                elif kind == "zero":
                    parts = [Decimal(0)]
                for part in parts:
                    spec(
                        c,
                        "order_refunded",
                        at=draw(instants(near_day=order_day)),
                        order=o,
                        amount=part,
                        amount_style=draw(amount_styles),
                        currency=draw(st.booleans()),
                    )
            again = draw(st.sampled_from((None, None, "same", "different")))
            if again:
                spec(
                    c,
                    "order_completed",
                    at=draw(instants(near_day=order_day)),
                    order=o,
                    amount=order.amount if again == "same" else order.amount + 1,
                    amount_style=draw(amount_styles),
                )
        if draw(st.booleans()):  # a refund whose order never arrives
            spec(c, "order_refunded", at=draw(instants()), order=9, amount=draw(amounts()))
        for _ in range(draw(st.integers(0, 8))):
            spec(c, draw(st.sampled_from(ENGAGEMENT_TYPES)), at=draw(instants()))
        tie = draw(instants())
        for _ in range(draw(st.integers(0, 3))):
            answers = draw(
                st.fixed_dictionaries({}, optional={"csat": st.integers(1, 5)})
                | st.fixed_dictionaries(
                    {"nps": st.integers(0, 10)}, optional={"csat": st.integers(1, 5)}
                )
            )
            if not answers:
                answers = {"csat": 3}
            spec(c, "survey_response", at=draw(st.just(tie) | instants()), properties=answers)
        for _ in range(draw(st.integers(0, 4))):
            properties = {
                "channel": draw(st.sampled_from(CHANNELS[:3])),
                "granted": draw(st.booleans()),
            }
            spec(c, "consent_updated", at=draw(st.just(tie) | instants()), properties=properties)
        if draw(st.booleans()):
            spec(c, "identify", at=draw(instants()), properties={"traits": {"plan": "gold"}})
        if draw(st.booleans()):
            spec(c, "offer_accepted", at=draw(instants()), properties={"decision_id": "d1"})

    if not specs:
        spec(0, "session_started", at=draw(instants()))
    originals = list(specs)
    extras: list[Spec] = []
    for _ in range(draw(st.integers(0, 8))):
        # re-sends of re-sends too: a conflicting event sent twice in one batch
        original = draw(st.sampled_from(originals + extras))
        how = draw(st.sampled_from(("exact", "equivalent", "conflict")))
        if how == "exact":
            extras.append(original)
        elif how == "equivalent":  # same content, other spelling: a duplicate
            properties = original.properties
            if not properties:  # absent and {} are the same properties
                properties = {} if properties is None else None
            extras.append(
                replace(
                    original,
                    offset=draw(st.sampled_from(OFFSETS)),
                    amount_style=draw(amount_styles),
                    # currency absent on an order event means USD
                    currency=(original.amount is not None) ^ original.currency,
                    properties=properties,
                )
            )
        else:  # same event_id, different content: a conflict
            change = draw(st.sampled_from(("time", "customer", "amount")))
            if change == "amount" and original.amount is not None:
                extras.append(replace(original, amount=original.amount + Decimal("0.01")))
            elif change == "customer":
                extras.append(replace(original, customer=(original.customer + 1) % customers))
            else:
                extras.append(replace(original, at=original.at + timedelta(seconds=1)))
    arrival = draw(st.permutations(originals + extras))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(arrival) - 1)), max_size=4)))
    batches = [arrival[a:b] for a, b in zip([0, *cuts], [*cuts, len(arrival)], strict=True)]
    batches = [b for b in batches if b]
    reads = []
    for c in range(customers + 1):  # the last one never has events
        reads.append((c, BASE - timedelta(hours=1)))  # before any event: 404
        for _ in range(draw(st.integers(2, 4))):
            day = draw(st.integers(-2, SPAN_DAYS + 10) | st.sampled_from((95, 120, 364, 400)))
            moment = BASE + timedelta(days=day, seconds=draw(st.integers(0, 86_399)))
            reads.append((c, (moment, draw(st.sampled_from(OFFSETS)))))
    return batches, reads


def as_of_param(read) -> tuple[datetime, str]:
    if isinstance(read, datetime):
        return read, render_time(read, "Z")
    moment, offset = read
    return moment, render_time(moment, offset)


def post(client, *events: dict) -> dict:
    response = client.post("/v1/events", json={"events": list(events)})
    assert response.status_code == 200, response.text
    return response.json()


def features(client, customer_id: str, as_of: str):
    return client.get(f"/v1/customers/{customer_id}/features", params={"as_of": as_of})


def test_customer_without_orders_has_features(client):
    """Minimal repro: a known customer with no (counted) order must not be a 404."""
    customer = "fpx-" + uuid.uuid4().hex[:10]
    post(
        client,
        {
            "event_id": f"{customer}-e1",
            "customer_id": customer,
            "type": "session_started",
            "occurred_at": "2024-03-01T10:00:00Z",
        },
    )
    response = features(client, customer, "2024-03-02T00:00:00Z")
    assert response.status_code == 200, response.text
    assert response.json()["sessions_30d"] == 1
    assert response.json()["orders_total"] == 0


def counters(body: dict) -> tuple[int, int, list[int]]:
    return body["accepted"], body["duplicates"], [r["index"] for r in body["rejected"]]


def test_rejected_event_sent_twice_in_a_batch_is_rejected_twice(client):
    """A batch means its events in order: a rejected event repeated is rejected again,
    not counted as a duplicate (nothing of it was stored)."""
    customer = "fpx-" + uuid.uuid4().hex[:10]
    first = {
        "event_id": f"{customer}-e1",
        "customer_id": customer,
        "type": "order_completed",
        "occurred_at": "2024-03-01T10:00:00Z",
        "order_id": "o1",
        "amount": "10",
    }
    assert counters(post(client, first)) == (1, 0, [])
    other_amount = {**first, "event_id": f"{customer}-e2", "amount": "11"}
    assert counters(post(client, other_amount, other_amount)) == (0, 0, [0, 1])
    conflict = {**first, "amount": "12"}
    assert counters(post(client, conflict, conflict)) == (0, 0, [0, 1])


def test_resend_after_a_conflicting_copy_in_the_same_batch_is_a_duplicate(client):
    """An exact re-send of a stored event is a duplicate, even when a conflicting copy
    of it (rejected) comes earlier in the same batch."""
    customer = "fpx-" + uuid.uuid4().hex[:10]
    stored = {
        "event_id": f"{customer}-e1",
        "customer_id": customer,
        "type": "session_started",
        "occurred_at": "2024-03-01T10:00:00Z",
    }
    assert counters(post(client, stored)) == (1, 0, [])
    conflicting = {**stored, "occurred_at": "2024-03-01T10:00:01Z"}
    assert counters(post(client, conflicting, stored)) == (0, 1, [0])


# Shrinking a failure costs minutes of HTTP round trips; the failure message already
# names the batch and the differing features. SCORER_TEST_SHRINK=1 to get a minimal case.
PHASES = [Phase.explicit, Phase.reuse, Phase.generate]
if os.environ.get("SCORER_TEST_SHRINK"):
    PHASES.append(Phase.shrink)


@settings(
    max_examples=60,
    deadline=None,
    phases=PHASES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(scenario=scenarios())
def test_features_match_reference(client, scenario):
    batches, reads = scenario
    prefix = "fp" + uuid.uuid4().hex[:10]
    model = ReferenceModel()
    for batch in batches:
        events = [spec.render(prefix) for spec in batch]
        expected = model.ingest(events)
        response = client.post("/v1/events", json={"events": events})
        assert response.status_code == 200, response.text
        body = response.json()
        got = (body["accepted"], body["duplicates"], [r["index"] for r in body["rejected"]])
        want = (expected.accepted, expected.duplicates, expected.rejected)
        assert got == want, f"counters (accepted, duplicates, rejected) for {events}: {body}"
    for customer, read in reads:
        customer_id = f"{prefix}-c{customer}"
        moment, param = as_of_param(read)
        expected = model.features(customer_id, moment)
        response = client.get(f"/v1/customers/{customer_id}/features", params={"as_of": param})
        if expected is None:
            assert response.status_code == 404, response.text
            continue
        assert response.status_code == 200, response.text
        diffs = differences(expected, response.json())
        assert not diffs, f"{customer_id} as of {param}: (expected, got) {diffs}"


def snapshot(server) -> dict[str, list]:
    return {
        table: [
            tuple(row)
            for row in server.sql(
                f"SELECT * FROM {table} WHERE customer_id LIKE 'fp%' ORDER BY {keys}"
            )
        ]
        for table, keys in TABLES.items()
    }


@pytest.fixture(scope="module")
def online_tables(server) -> None:
    """The recompute tests' own data, of the kind the property test posts: a fixed set of
    scenarios (derandomized, so every run posts the same), each under a fresh prefix."""

    @settings(
        max_examples=20,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(scenario=scenarios())
    def load(scenario):
        batches, _ = scenario
        prefix = "fp" + uuid.uuid4().hex[:10]
        with server.client(server.admin_key) as http:
            for batch in batches:
                post(http, *(spec.render(prefix) for spec in batch))

    load()


def test_recompute_reproduces_online_tables(server, online_tables):
    """Rebuild everything from events, nothing changes."""
    before = snapshot(server)
    assert before["customer_daily"], "the scenarios should have left data behind"
    server.scorer("features", "recompute")
    after = snapshot(server)
    for table in TABLES:
        assert after[table] == before[table], f"{table} differs after recompute"


def test_recompute_one_customer_restores_it(server, online_tables):
    """Drop one customer's derived rows, recompute only them: exactly as before."""
    rows = server.sql(
        "SELECT customer_id FROM orders WHERE customer_id LIKE 'fp%' AND amount IS NOT NULL "
        "GROUP BY customer_id ORDER BY count(*) DESC, customer_id LIMIT 1"
    )
    assert rows, "the scenarios should have left a customer with orders"
    customer_id = rows[0]["customer_id"]
    before = snapshot(server)
    for table in TABLES:
        server.sql(f"DELETE FROM {table} WHERE customer_id = $1", customer_id)
    assert snapshot(server) != before
    server.scorer("features", "recompute", "--customer", customer_id)
    after = snapshot(server)
    for table in TABLES:
        assert after[table] == before[table], f"{table} differs after recompute --customer"
