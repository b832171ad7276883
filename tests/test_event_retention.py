"""Raw-event retention: purging events past SCORER_EVENT_RETENTION_DAYS keeps every feature.

Random streams over ~200 days ending yesterday (late events, refunds before and after their
orders, refunds of old orders sent later, held refunds, duplicates, conflicts, facts) are
imported with no horizon, then the events before today - 90 are purged. The features (the
statement behind GET /v1/customers/{id}/features) as of every day on or after the horizon,
and as of days before it, must equal the plain-Python reference before the purge, after it,
after `recompute`, and after a second stream that arrives once the horizon is in force (its
events of purged days refused, its refunds of old orders applied); recompute must then
reproduce the tables the online path maintained.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import asyncpg
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from service.db import asyncpg_dsn
from service.events.retention import purge_events
from service.features.asof import end_of_day
from service.features.recompute import recompute_customers
from service.features.retention import read_horizon
from service.features.schemas import Features
from service.features.service import read_features
from service.offers.report import offers_report
from service.training.dataset import data_span
from service.training.nbo import impressions
from tests.conftest import SCORER
from tests.reference import ReferenceModel, day_of, differences
from tests.test_feature_properties import (
    CHANNELS,
    ENGAGEMENT_TYPES,
    OFFSETS,
    TABLES,
    Spec,
    amount_styles,
    amounts,
    post,
)

T = TypeVar("T")

RETENTION_DAYS = 90
SPAN_DAYS = 200
TODAY = datetime.now(UTC).date()
BASE = datetime.combine(TODAY - timedelta(days=SPAN_DAYS), time(), tzinfo=UTC)
HORIZON = TODAY - timedelta(days=RETENTION_DAYS)
HORIZON_INDEX = SPAN_DAYS - RETENTION_DAYS  # day index of the horizon in a stream
REFUSAL = (
    f"occurred_at: before the event retention horizon {HORIZON} "
    f"(SCORER_EVENT_RETENTION_DAYS={RETENTION_DAYS}): events of purged days can no longer "
    "be checked for duplicates"
)


def on_db(url: str, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    async def go() -> T:
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(go())


def purge(url: str, batch: int = 10_000, today: date = TODAY):
    sizes: list[int] = []

    async def work(conn):
        return await purge_events(conn, today, RETENTION_DAYS, batch, progress=sizes.append)

    return on_db(url, work), sizes


def forget_horizon(server) -> None:
    """As on a database where events were never purged (each example imports a history)."""
    server.sql("DELETE FROM event_retention")


# ---- random streams ------------------------------------------------------------------


@st.composite
def moments(draw, near_day: int | None = None) -> datetime:
    if near_day is None:
        day = draw(st.integers(0, SPAN_DAYS - 1))
    else:  # refunds: a few days before their order up to months after it
        day = min(SPAN_DAYS - 1, max(0, near_day + draw(st.integers(-3, 150))))
    second = draw(st.sampled_from((0, 43_200, 86_399)) | st.integers(0, 86_399))
    return BASE + timedelta(days=day, seconds=second)


@st.composite
def streams(draw):
    """(first, later): the history imported before any purge, in batches, and the events
    that arrive after it (new ones, late ones, re-sends of old ones)."""
    eids = iter(range(10_000))
    customers = draw(st.integers(1, 3))
    first: list[Spec] = []
    later: list[Spec] = []

    def spec(customer: int, kind: str, **kw) -> Spec:
        made = Spec(next(eids), customer, kind, offset=draw(st.sampled_from(OFFSETS)), **kw)
        (later if draw(st.integers(0, 3)) == 0 else first).append(made)
        return made

    for c in range(customers):
        for o in range(draw(st.integers(0, 5))):
            order = spec(
                c,
                "order_completed",
                at=draw(moments()),
                order=o,
                amount=draw(amounts(high=10**5)),
                amount_style=draw(amount_styles),
            )
            for kind in draw(st.lists(st.sampled_from(("partial", "full", "over")), max_size=2)):
                part = {
                    "partial": (order.amount / 4).quantize(Decimal("0.0001")),
                    "full": order.amount,
                    "over": order.amount + 1,
                }[kind]
                spec(
                    c,
                    "order_refunded",
                    at=draw(moments(near_day=(order.at - BASE).days)),
                    order=o,
                    amount=part,
                )
            if draw(st.booleans()):
                again = order.amount + draw(st.sampled_from((0, 0, 1)))
                spec(c, "order_completed", at=draw(moments()), order=o, amount=again)
        if draw(st.booleans()):  # a refund whose order never arrives
            spec(c, "order_refunded", at=draw(moments()), order=9, amount=draw(amounts()))
        for _ in range(draw(st.integers(0, 10))):
            spec(c, draw(st.sampled_from(ENGAGEMENT_TYPES)), at=draw(moments()))
        tie = draw(moments())
        for _ in range(draw(st.integers(0, 3))):
            answers = {"csat": draw(st.integers(1, 5))}
            spec(c, "survey_response", at=draw(st.just(tie) | moments()), properties=answers)
        for _ in range(draw(st.integers(0, 4))):
            stated = {"channel": draw(st.sampled_from(CHANNELS)), "granted": draw(st.booleans())}
            spec(c, "consent_updated", at=draw(st.just(tie) | moments()), properties=stated)
        if draw(st.booleans()):
            spec(c, "identify", at=draw(moments()), properties={"traits": {"plan": "gold"}})
    if not first:
        first.append(Spec(next(eids), 0, "session_started", at=draw(moments())))
    sent = list(first)
    for _ in range(draw(st.integers(0, 6))):
        original = draw(st.sampled_from(sent))
        if draw(st.booleans()):
            first.append(original)  # an exact re-send
        else:  # same event_id, other content: a conflict
            first.append(replace(original, at=original.at + timedelta(seconds=1)))
    # Re-sends after the purge: exact copies, of purged events too.
    later.extend(draw(st.lists(st.sampled_from(sent), max_size=6)))
    return batches(draw, draw(st.permutations(first))), batches(draw, draw(st.permutations(later)))


def batches(draw, specs: list[Spec]) -> list[list[Spec]]:
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(specs) - 1)), max_size=3)))
    parts = [specs[a:b] for a, b in zip([0, *cuts], [*cuts, len(specs)], strict=True)]
    return [part for part in parts if part]


# ---- reads and expectations ----------------------------------------------------------


def read_days() -> list[date]:
    """Every day from the horizon to today, and every fifth day before it."""
    early = [BASE.date() + timedelta(days=d) for d in range(0, HORIZON_INDEX, 5)]
    return [*early, *(HORIZON + timedelta(days=d) for d in range(RETENTION_DAYS + 1))]


def features_by_day(url: str, customer_ids: list[str]) -> dict[tuple[str, date], dict]:
    """The features (as the API answers them) of each customer as of each read day."""

    async def work(conn):
        found = {}
        for day in read_days():
            rows = await read_features(conn, customer_ids, end_of_day(day), day)
            for customer_id, row in rows.items():
                found[(customer_id, day)] = Features.model_validate(row).model_dump(mode="json")
        return found

    return on_db(url, work)


def assert_reference(model: ReferenceModel, got: dict, customer_ids: list[str], when: str):
    for customer_id in customer_ids:
        for day in read_days():
            expected = model.features(customer_id, end_of_day(day))
            have = got.get((customer_id, day))
            if expected is None:
                assert have is None, f"{customer_id} as of {day} {when}: should be unknown"
                continue
            assert have is not None, f"{customer_id} as of {day} {when}: unknown"
            diffs = differences(expected, have)
            assert not diffs, f"{customer_id} as of {day} {when}: (expected, got) {diffs}"


def tables(server, prefix: str) -> dict[str, list]:
    return {
        table: [
            tuple(row)
            for row in server.sql(
                f"SELECT * FROM {table} WHERE customer_id LIKE $1 ORDER BY {keys}", prefix + "-%"
            )
        ]
        for table, keys in TABLES.items()
    }


def stored_ids(server, prefix: str) -> set[str]:
    rows = server.sql("SELECT event_id FROM events WHERE customer_id LIKE $1", prefix + "-%")
    return {row["event_id"] for row in rows}


def kept_by_rule(model: ReferenceModel) -> set[str]:
    """What the purge keeps: events from the horizon on, and refunds before it whose order
    has not arrived or is of a day from the horizon on."""
    order_day = {
        (e.customer_id, e.order_id): e.day for e in model.arrival if e.type == "order_completed"
    }
    kept = set()
    for e in model.arrival:
        day = order_day.get((e.customer_id, e.order_id))
        refund_needed = e.type == "order_refunded" and (day is None or day >= HORIZON)
        if e.day >= HORIZON or refund_needed:
            kept.add(e.event_id)
    return kept


def expected_after_purge(model: ReferenceModel, stored: set[str], events: list[dict]) -> tuple:
    """The counters of a batch sent once the horizon is in force: events still stored and
    orders already recorded are judged as always; any other event of a purged day is refused."""
    accepted = duplicates = 0
    rejected = []
    for index, event in enumerate(events):
        known = event["event_id"] in stored
        recorded = (event["customer_id"], event.get("order_id")) in model.completions
        old = day_of(datetime.fromisoformat(event["occurred_at"])) < HORIZON
        if not known and not (event["type"] == "order_completed" and recorded) and old:
            rejected.append(index)
            continue
        result = model.ingest([event])
        accepted, duplicates = accepted + result.accepted, duplicates + result.duplicates
        rejected.extend(index for _ in result.rejected)
        if result.accepted:
            stored.add(event["event_id"])
    return accepted, duplicates, rejected


def recompute_all(url: str, customer_ids: list[str]) -> None:
    on_db(url, lambda conn: recompute_customers(conn, customer_ids))


PHASES = [Phase.explicit, Phase.reuse, Phase.generate]
if os.environ.get("SCORER_TEST_SHRINK"):
    PHASES.append(Phase.shrink)


@settings(
    max_examples=30,
    deadline=None,
    phases=PHASES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(stream=streams())
def test_features_survive_the_purge_and_recompute(server, client, stream):
    first, later = stream
    forget_horizon(server)
    prefix = "rt" + uuid.uuid4().hex[:10]
    model = ReferenceModel()
    for batch in first:
        events = [spec.render(prefix) for spec in batch]
        expected = model.ingest(events)
        body = post(client, *events)
        assert (body["accepted"], body["duplicates"]) == (expected.accepted, expected.duplicates)
    customer_ids = model.customers()
    before = features_by_day(server.database_url, customer_ids)
    assert_reference(model, before, customer_ids, "before the purge")
    stored_before = tables(server, prefix)

    (purged, sizes) = purge(server.database_url, batch=7)
    assert purged.horizon.purged_before == HORIZON
    assert sizes == sorted(sizes, reverse=True) and all(size == 7 for size in sizes[:-1])
    stored = stored_ids(server, prefix)
    assert stored == kept_by_rule(model), "the purge kept other events than its rule"
    assert features_by_day(server.database_url, customer_ids) == before, "after the purge"
    again, _ = purge(server.database_url, batch=7)
    assert again.deleted == 0

    recompute_all(server.database_url, customer_ids)
    assert tables(server, prefix) == stored_before, "recompute after the purge changed rows"
    assert features_by_day(server.database_url, customer_ids) == before, "after recompute"

    for batch in later:
        events = [spec.render(prefix) for spec in batch]
        want = expected_after_purge(model, stored, events)
        body = post(client, *events)
        got = (body["accepted"], body["duplicates"], [r["index"] for r in body["rejected"]])
        assert got == want, f"counters (accepted, duplicates, rejected) for {events}: {body}"
        for rejection in body["rejected"]:
            if rejection["error"].startswith("occurred_at"):
                assert rejection["error"] == REFUSAL
    customer_ids = model.customers()
    online = features_by_day(server.database_url, customer_ids)
    assert_reference(model, online, customer_ids, "after later events")
    maintained = tables(server, prefix)
    recompute_all(server.database_url, customer_ids)
    assert tables(server, prefix) == maintained, "recompute differs from the online upkeep"
    assert features_by_day(server.database_url, customer_ids) == online


# ---- idempotency at the horizon ------------------------------------------------------


def event(customer: str, n: int, kind: str, days_ago: int, **fields) -> dict[str, Any]:
    moment = datetime.combine(TODAY - timedelta(days=days_ago), time(12), tzinfo=UTC)
    return {
        "event_id": f"{customer}-e{n}",
        "customer_id": customer,
        "type": kind,
        "occurred_at": moment.isoformat().replace("+00:00", "Z"),
        **fields,
    }


def test_purged_events_are_refused_and_orders_still_dedupe(server, client):
    forget_horizon(server)
    customer = "rtb-" + uuid.uuid4().hex[:8]
    order = event(customer, 1, "order_completed", 150, order_id="o1", amount="40")
    session = event(customer, 2, "session_started", 150)
    assert post(client, order, session)["accepted"] == 2  # no horizon yet: history imports
    purge(server.database_url)

    body = post(client, session)
    assert body["accepted"] == 0 and body["rejected"][0]["error"] == REFUSAL
    late = event(customer, 3, "product_viewed", 100)
    assert post(client, late)["rejected"][0]["error"] == REFUSAL
    assert post(client, order)["duplicates"] == 1  # the order row still knows it
    again = {**order, "event_id": f"{customer}-e4"}
    assert post(client, again)["duplicates"] == 1
    # A refund sent now restates the kept order and its bucket of a purged day.
    refund = event(customer, 5, "order_refunded", 1, order_id="o1", amount="15")
    assert post(client, refund)["accepted"] == 1
    response = client.get(
        f"/v1/customers/{customer}/features", params={"as_of": f"{TODAY}T00:00:00Z"}
    )
    assert response.json()["revenue_total"] == 25.0
    assert response.json()["orders_total"] == 1
    recompute_all(server.database_url, [customer])
    again_response = client.get(
        f"/v1/customers/{customer}/features", params={"as_of": f"{TODAY}T00:00:00Z"}
    )
    assert again_response.json() == response.json()  # the refund is not applied twice


def test_concurrent_purgers_share_the_work(server, client):
    forget_horizon(server)
    customer = "rtc-" + uuid.uuid4().hex[:8]
    post(client, *(event(customer, n, "session_started", 120 + n % 30) for n in range(300)))
    old = server.sql("SELECT count(*) AS n FROM events WHERE day < $1", HORIZON)[0]["n"]
    assert old >= 300

    async def two(url):
        conns = [await asyncpg.connect(asyncpg_dsn(url)) for _ in range(2)]
        try:
            done = await asyncio.gather(
                *(purge_events(conn, TODAY, RETENTION_DAYS, batch=25) for conn in conns)
            )
        finally:
            for conn in conns:
                await conn.close()
        return done

    done = asyncio.run(two(server.database_url))
    kept = server.sql("SELECT count(*) AS n FROM events WHERE day < $1", HORIZON)[0]["n"]
    assert sum(p.deleted for p in done) == old - kept
    assert not server.sql("SELECT 1 FROM events WHERE customer_id = $1", customer)
    assert on_db(server.database_url, read_horizon).purged_before == HORIZON


# ---- what reads the raw events ---------------------------------------------------------


def test_offer_report_and_nbo_impressions_survive_the_purge(server, client):
    forget_horizon(server)
    customer = "rtd-" + uuid.uuid4().hex[:8]
    post(client, event(customer, 0, "session_started", 160))
    decided = datetime.combine(TODAY - timedelta(days=150), time(9), tzinfo=UTC)
    for n, (group, offer) in enumerate(
        (("treatment", "o-a"), ("treatment", "o-a"), ("control", None))
    ):
        server.sql(
            """INSERT INTO offer_decisions (customer_id, decision_id, decided_at, offer_id,
               "group", reason, action_probability) VALUES ($1, $2, $3, $4, $5, 'test', 1.0)""",
            customer,
            f"{customer}-d{n}",
            decided + timedelta(minutes=n),
            offer,
            group,
        )
    accepts = [
        event(
            customer, 10 + k, "offer_accepted", days, properties={"decision_id": f"{customer}-d0"}
        )
        for k, days in enumerate((149, 140))
    ]
    post(client, *accepts)
    accepted_at = server.sql(
        "SELECT accepted_at FROM offer_decisions WHERE decision_id = $1", f"{customer}-d0"
    )[0]["accepted_at"]
    assert accepted_at.date() == TODAY - timedelta(days=149)  # the first acceptance

    def outcomes():
        async def work(conn):
            start = datetime.now(UTC) - timedelta(days=200)
            report = await offers_report(conn, start, datetime.now(UTC), 30)
            shown = await impressions(conn, TODAY, lambda rows: ["s"] * len(rows))
            ours = [
                (s.offer_id, s.accepted) for s in shown if s.features["customer_id"] == customer
            ]
            return report["groups"], ours

        return on_db(server.database_url, work)

    before = outcomes()
    assert before[1] == [("o-a", True), ("o-a", False)]
    purge(server.database_url)
    assert not server.sql("SELECT 1 FROM events WHERE customer_id = $1", customer)
    assert outcomes() == before
    recompute_all(server.database_url, [customer])  # no events left: nothing is cleared
    assert outcomes() == before


def test_training_span_is_unchanged_by_the_purge(server, client):
    forget_horizon(server)
    customer = "rte-" + uuid.uuid4().hex[:8]
    post(client, event(customer, 1, "session_started", 199), event(customer, 2, "email_opened", 1))
    before = on_db(server.database_url, data_span)
    assert before[0] <= TODAY - timedelta(days=199)
    purge(server.database_url)
    assert on_db(server.database_url, data_span) == before


# ---- the command line ------------------------------------------------------------------


def scorer(server, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SCORER, *args],
        env={**server.env(), **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_purge_command(server, client):
    forget_horizon(server)
    unset = scorer(server, "events", "purge")
    assert unset.returncode == 2
    assert unset.stderr.strip().splitlines() == [
        "error: SCORER_EVENT_RETENTION_DAYS is not set, so events are kept forever: set it to "
        "the days of events to keep (e.g. 90) to purge older ones"
    ]
    customer = "rtf-" + uuid.uuid4().hex[:8]
    post(client, *(event(customer, n, "session_started", 88 + n) for n in range(5)))
    yesterday = (TODAY - timedelta(days=1)).isoformat()
    env = {"SCORER_EVENT_RETENTION_DAYS": str(RETENTION_DAYS)}
    done = scorer(server, "events", "purge", "--as-of", yesterday, **env)
    assert done.returncode == 0, done.stderr
    assert f"of days before {HORIZON - timedelta(days=1)}" in done.stdout
    assert "deleted " in done.stderr  # progress of each batch
    assert left(server, customer) == 4  # 92 days ago is gone
    done = scorer(server, "events", "purge", **env)  # as of today
    assert done.returncode == 0, done.stderr
    assert f"of days before {HORIZON} (SCORER_EVENT_RETENTION_DAYS=90)" in done.stdout
    assert left(server, customer) == 3
    rebuilt = scorer(server, "features", "recompute", "--customer", customer)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert rebuilt.stdout.strip() == (
        f"rebuilt 1 customer(s) from events on or after {HORIZON}; buckets, orders and facts "
        "before it kept as stored (events before it were purged)"
    )


def left(server, customer: str) -> int:
    return server.sql("SELECT count(*) AS n FROM events WHERE customer_id = $1", customer)[0]["n"]
