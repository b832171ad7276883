"""Scores out: the outbox and scoring loop keep `customer_scores` fresh, reads serve the
stored row when it is current, and the change feed misses nothing under concurrency."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import random
import re
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from service.changes.service import NewChange, record
from service.db import asyncpg_dsn
from tests.conftest import SCORER

NOW = datetime.now(UTC)
LABELS = {
    "segment.changed": "segment",
    "churn_band.changed": "churn_band",
    "tier.changed": "pcltv_tier",
}


def order(customer: str, n: int, days_ago: float, amount: str) -> dict:
    return {
        "event_id": f"{customer}-o{n}",
        "customer_id": customer,
        "type": "order_completed",
        "occurred_at": (NOW - timedelta(days=days_ago)).isoformat(),
        "order_id": f"{customer}-{n}",
        "amount": amount,
    }


def post(client: httpx.Client, events: list[dict]) -> None:
    response = client.post("/v1/events", json={"events": events})
    assert response.status_code == 200 and not response.json()["rejected"], response.text


def drained(server, seconds: float = 30) -> None:
    """Until the scoring loop has rescored every write."""
    deadline = time.monotonic() + seconds
    while server.sql("SELECT count(*) AS n FROM score_outbox")[0]["n"]:
        assert time.monotonic() < deadline, "the outbox did not drain"
        time.sleep(0.05)


def follow(client: httpx.Client, cursor: str | None = None, **query) -> tuple[list[dict], str]:
    """Every change after `cursor`, page by page, and the cursor past the last."""
    seen = []
    while True:
        params = {"limit": 200, **query, **({"after": cursor} if cursor else {})}
        page = client.get("/v1/changes", params=params).json()
        seen += page["data"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return seen, cursor


def reads(client: httpx.Client, source: str) -> float:
    text = client.get("/metrics").text
    found = re.search(rf'^scorer_score_reads_total{{source="{source}"}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def test_a_write_is_rescored_and_its_changes_are_in_the_feed(client, server):
    started = time.monotonic()
    post(client, [order("so-1", 1, 3, "40")])
    deadline = time.monotonic() + 10
    while len(follow(client, customer_id="so-1")[0]) < 4:
        assert time.monotonic() < deadline, "no changes for a written customer"
        time.sleep(0.02)
    print(f"first scores in the feed after {time.monotonic() - started:.3f} s")
    first, cursor = follow(client, customer_id="so-1")
    assert sorted(c["type"] for c in first) == sorted([*LABELS, "scores.changed"])
    assert all(c["before"] is None and c["id"].startswith("chg_") for c in first)
    scores = client.get("/v1/customers/so-1/scores").json()
    assert first[0]["after"]["segment"] == scores["segment"]["name"]
    assert first[0]["after"]["churn_probability"] == scores["churn"]["probability"]

    post(client, [order("so-1", 2, 0, "5000")])  # a big order moves pCLTV and its tier
    deadline = time.monotonic() + 10
    while not (later := follow(client, cursor, customer_id="so-1")[0]):
        assert time.monotonic() < deadline, "no change after a big order"
        time.sleep(0.02)
    moved = {c["type"]: c for c in later}
    assert "scores.changed" in moved
    assert moved["scores.changed"]["before"] == first[0]["after"]
    assert moved["scores.changed"]["after"]["pcltv"] > first[0]["after"]["pcltv"]


def test_feed_pages_filters_and_refuses_bad_input(client, server):
    post(client, [order(f"sp-{i}", 1, 5 + i, str(20 + i)) for i in range(6)])
    drained(server)
    everything, _ = follow(client)
    paged, cursor = follow(client, limit=3)
    assert [c["id"] for c in paged] == [c["id"] for c in everything]
    again = client.get("/v1/changes", params={"after": cursor}).json()
    assert again["data"] == [] and again["next_cursor"] == cursor and not again["has_more"]

    bands, _ = follow(client, types="churn_band.changed,tier.changed")
    assert bands and {c["type"] for c in bands} <= {"churn_band.changed", "tier.changed"}
    # Other tests' changes may be in the feed too (some without scores): take one of ours.
    segment = next(c for c in everything if c["customer_id"].startswith("sp-"))["after"]["segment"]
    inside, _ = follow(client, segment=segment)
    assert inside and all(
        segment in (c["after"]["segment"], (c["before"] or {}).get("segment")) for c in inside
    )

    for params, field in (
        ({"after": "bm90LWEtY3Vyc29y"}, "query.after"),
        ({"after": "v1.-1"}, "query.after"),
        ({"types": "segment.moved"}, "query.types"),
        ({"segment": "Champs"}, "query.segment"),
        ({"limit": 0}, "query.limit"),
    ):
        response = client.get("/v1/changes", params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["errors"][0]["field"] == field
    assert httpx.get(f"{server.url}/v1/changes").status_code == 401


def random_history(rng: random.Random, customer: str) -> list[dict]:
    events = [
        order(customer, n, rng.uniform(0, 400), f"{rng.uniform(1, 400):.2f}")
        for n in range(rng.randint(0, 12))
    ]
    kinds = ["session_started", "product_viewed", "email_opened", "support_ticket"]
    for n in range(rng.randint(1, 15)):
        events.append(
            {
                "event_id": f"{customer}-e{n}",
                "customer_id": customer,
                "type": rng.choice(kinds),
                "occurred_at": (NOW - timedelta(days=rng.uniform(0, 120))).isoformat(),
            }
        )
    if rng.random() < 0.3:
        events.append(
            {
                "event_id": f"{customer}-c",
                "customer_id": customer,
                "type": "consent_updated",
                "occurred_at": (NOW - timedelta(days=3)).isoformat(),
                "properties": {"channel": "email", "granted": rng.random() < 0.5},
            }
        )
    return events


@pytest.mark.parametrize("seed", range(3))
def test_served_scores_equal_computed_scores(client, server, seed):
    """Property: for random customers, the body served from the stored row equals the one
    computed from the features (`explain=true` always computes; its reasons aside)."""
    rng = random.Random(seed)
    customers = [f"sq-{seed}-{i}" for i in range(15)]
    post(client, [e for c in customers for e in random_history(rng, c)])
    drained(server)
    stored_before = reads(client, "stored")
    for customer in customers:
        served = client.get(f"/v1/customers/{customer}/scores").json()
        computed = client.get(f"/v1/customers/{customer}/scores", params={"explain": "true"}).json()
        computed.pop("reasons"), served.pop("reasons")
        served.pop("as_of"), computed.pop("as_of")
        assert served == computed, customer
    assert reads(client, "stored") - stored_before == len(customers)

    # A write makes the row stale: the next read computes, and sees the write at once.
    before_computed = reads(client, "computed")
    server.sql("INSERT INTO score_outbox (customer_id) VALUES ($1)", customers[0])
    client.get(f"/v1/customers/{customers[0]}/scores")
    assert reads(client, "computed") >= before_computed + 1


def test_a_late_commit_is_never_skipped(server, client):
    """Two writers of changes: the first numbers its row and waits before committing; the
    second cannot number its own until the first commits, so a poller can never pass a
    row that is still to appear."""
    _, cursor = follow(client)
    dsn = asyncpg_dsn(server.database_url)

    async def scenario() -> list[str]:
        first, second = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
        try:
            slow = first.transaction()
            await slow.start()
            await record(first, [NewChange("scores.changed", "late-1", None, None)])

            async def fast() -> None:
                async with second.transaction():
                    await record(second, [NewChange("scores.changed", "late-2", None, None)])

            racing = asyncio.create_task(fast())
            await asyncio.sleep(0.5)
            assert not racing.done(), "the second writer numbered its change first"
            seen_meanwhile = await asyncio.to_thread(follow, client, cursor)
            assert [c["customer_id"] for c in seen_meanwhile[0]] == []
            await slow.commit()
            await racing
        finally:
            await first.close()
            await second.close()
        return [c["customer_id"] for c in (await asyncio.to_thread(follow, client, cursor))[0]]

    assert asyncio.run(scenario()) == ["late-1", "late-2"]


def start_worker(server) -> subprocess.Popen:
    return subprocess.Popen(
        [SCORER, "worker"], env=server.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def test_gap_free_feed_under_concurrent_writers(client, server):
    """8 writers ingest for 30 s while the server and two `scorer worker`s rescore at once
    and a poller follows the feed: it sees every change exactly once, in order per
    customer (each label change starts where the customer's previous one ended)."""
    _, start = follow(client)
    workers = [start_worker(server) for _ in range(2)]
    stop, done_polling, seen, errors = threading.Event(), threading.Event(), [], []
    customers = [f"sg-{i}" for i in range(120)]

    def writer(n: int) -> None:
        rng, sent = random.Random(n), 0
        with server.client(server.admin_key) as http:
            while not stop.is_set():
                batch = []
                for _ in range(rng.randint(1, 20)):
                    customer = rng.choice(customers)
                    sent += 1
                    batch.append(
                        order(
                            customer,
                            n * 1_000_000 + sent,
                            rng.uniform(0, 200),
                            f"{rng.uniform(1, 900):.2f}",
                        )
                    )
                try:
                    post(http, batch)
                except AssertionError as error:
                    errors.append(error)

    def poller() -> None:
        cursor = start
        with server.client(server.admin_key) as http:
            while not done_polling.is_set():
                page, cursor = follow(http, cursor)
                seen.extend(page)
                time.sleep(0.01)
            page, cursor = follow(http, cursor)
            seen.extend(page)

    writers = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in writers:
        thread.start()
    polling = threading.Thread(target=poller)
    polling.start()
    time.sleep(30)
    stop.set()
    for thread in writers:
        thread.join()
    drained(server, 60)
    done_polling.set()
    polling.join()
    for worker in workers:
        worker.terminate()
        assert worker.wait(timeout=30) == 0, worker.stderr.read().decode()[-2000:]
    assert not errors, errors[:3]
    seen_tail, _ = follow(client, start)
    committed = [
        row["seq"]
        for row in server.sql(
            "SELECT seq FROM score_changes WHERE customer_id LIKE 'sg-%' ORDER BY seq"
        )
    ]
    ours = [c for c in seen if c["customer_id"].startswith("sg-")]
    ids = [int(c["id"].removeprefix("chg_")) for c in ours]
    print(f"{len(committed)} changes committed, {len(ids)} seen while writing")
    assert ids == committed, "the poller missed or repeated changes"
    assert [c["id"] for c in seen_tail if c["customer_id"].startswith("sg-")] == [
        c["id"] for c in ours
    ]
    last: dict[tuple[str, str], dict] = {}
    for change in ours:
        field = LABELS.get(change["type"])
        if field is None:
            continue
        key = (change["customer_id"], field)
        if key in last:
            assert change["before"][field] == last[key]["after"][field], change
        last[key] = change


def test_audiences_export_pages_as_ndjson_and_csv(client, server):
    post(client, [order(f"sa-{i:02d}", 1, 2 + i, str(30 + 10 * i)) for i in range(12)])
    drained(server)
    expected = {
        row["customer_id"]: row
        for row in server.sql(
            "SELECT customer_id, segment, pcltv_tier, churn_band, pcltv FROM customer_scores"
        )
    }
    lines, params = [], {"limit": 5}
    while True:
        response = client.get("/v1/audiences", params=params)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        lines += [json.loads(line) for line in response.text.splitlines()]
        if "x-next-cursor" not in response.headers:
            break
        assert 'rel="next"' in response.headers["link"]
        params = {"limit": 5, "after": response.headers["x-next-cursor"]}
    assert [line["customer_id"] for line in lines] == sorted(expected)
    assert all(line["pcltv"] == expected[line["customer_id"]]["pcltv"] for line in lines)

    segment = lines[0]["segment"]
    response = client.get("/v1/audiences", params={"segment": segment, "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert response.headers["content-type"].startswith("text/csv")
    assert sorted(r["customer_id"] for r in rows) == sorted(
        c for c, row in expected.items() if row["segment"] == segment
    )
    low = client.get("/v1/audiences", params={"tier": "low", "churn_band": "low"}).text
    assert all(
        expected[json.loads(line)["customer_id"]]["pcltv_tier"] == "low"
        for line in low.splitlines()
    )
    for params, field in (
        ({"segment": "Champs"}, "query.segment"),
        ({"format": "xml"}, "query.format"),
        ({"limit": 50_001}, "query.limit"),
    ):
        response = client.get("/v1/audiences", params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["errors"][0]["field"] == field


def test_a_starting_worker_sweeps_rows_of_another_day_or_other_models(client, server):
    """Day rollover and model activation leave stored rows of another day or other model
    versions; a scoring loop's sweep refreshes them in the background (here a fresh
    `scorer worker`, whose first pass looks at every customer)."""
    post(client, [order(f"sw-{i}", 1, 4 + i, str(50 + i)) for i in range(20)])
    drained(server)
    yesterday, other_models = [f"sw-{i}" for i in range(8)], [f"sw-{i}" for i in range(8, 12)]
    server.sql(
        "UPDATE customer_scores SET as_of = as_of - 1 WHERE customer_id = ANY($1)", yesterday
    )
    server.sql(
        "UPDATE customer_scores SET model_versions = '{}' WHERE customer_id = ANY($1)",
        other_models,
    )
    stale = """SELECT count(*) AS n FROM customer_scores WHERE customer_id LIKE 'sw-%'
               AND (as_of < current_date OR model_versions = '{}')"""
    assert server.sql(stale)[0]["n"] == 12
    worker = start_worker(server)
    try:
        deadline = time.monotonic() + 30
        while server.sql(stale)[0]["n"]:
            assert time.monotonic() < deadline, "the sweep did not refresh the stale rows"
            time.sleep(0.1)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    versions = {
        row["v"] for row in server.sql("SELECT model_versions::text AS v FROM customer_scores")
    }
    assert len(versions) == 1 and versions != {"{}"}


def test_changes_past_the_retention_are_purged(client, server):
    """A worker's first round of retention deletes changes older than
    SCORER_CHANGES_RETENTION_DAYS (30) and keeps the rest."""
    server.sql(
        """INSERT INTO score_changes (seq, type, customer_id, occurred_at)
           SELECT nextval('score_changes_seq'), 'scores.changed', customer_id,
                  now() - make_interval(days => age)
           FROM (VALUES ('sr-old', 31), ('sr-kept', 29)) AS v(customer_id, age)"""
    )
    worker = start_worker(server)
    try:
        deadline = time.monotonic() + 30
        while server.sql("SELECT count(*) AS n FROM score_changes WHERE customer_id = 'sr-old'")[0][
            "n"
        ]:
            assert time.monotonic() < deadline, "old changes were not purged"
            time.sleep(0.1)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert (
        server.sql("SELECT count(*) AS n FROM score_changes WHERE customer_id = 'sr-kept'")[0]["n"]
        == 1
    )
