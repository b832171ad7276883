"""The offer catalog over real HTTP (`/v1/offers`, admin), and the decision log in PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from service.config import NboSettings
from service.db import asyncpg_dsn
from service.offers.decisions import (
    load_offers,
    new_decision_id,
    recent_decisions,
    record_decision,
)
from service.offers.policy import (
    BUDGET_EXHAUSTED,
    FREQUENCY_CAP,
    NO_ELIGIBLE_OFFER,
    CustomerContext,
    decide,
    history_window,
)
from service.vocabulary import OFFER_CHANNELS as CHANNELS


def offer_fields(**overrides) -> dict:
    """An offer's fields without its id (a PUT body)."""
    return {key: value for key, value in body("-", **overrides).items() if key != "offer_id"}


def body(offer_id: str, **fields) -> dict:
    return {
        "offer_id": offer_id,
        "name": f"Offer {offer_id}",
        "channel": "email",
        "value": "40.50",
        "cost": 1.25,
        **fields,
    }


def field_errors(response) -> set[str]:
    assert response.status_code == 422, response.text
    return {error["field"] for error in response.json()["errors"]}


def test_crud_round_trip(client):
    created = client.post(
        "/v1/offers",
        json=body(
            "crud-1",
            eligibility={
                "segments": ["Champions", "At Risk", "Champions"],
                "value_tiers": ["high"],
                "min_days_since_last_offer": 7,
            },
            budget=100,
            starts_at="2026-01-01T00:00:00+01:00",
        ),
    )
    assert created.status_code == 200, created.text
    offer = created.json()
    assert offer["offer_id"] == "crud-1"
    assert (offer["value"], offer["cost"], offer["budget"]) == (40.5, 1.25, 100.0)
    assert (offer["spent"], offer["budget_remaining"]) == (0.0, 100.0)
    assert offer["eligibility"] == {
        "segments": ["Champions", "At Risk"],
        "value_tiers": ["high"],
        "churn_bands": None,
        "min_days_since_last_offer": 7,
    }
    assert offer["active"] is True and offer["deleted_at"] is None
    assert offer["starts_at"].startswith("2025-12-31T23:00:00")

    assert client.get("/v1/offers/crud-1").json() == offer
    listed = client.get("/v1/offers").json()["offers"]
    assert offer in listed

    replaced = client.put(
        "/v1/offers/crud-1", json={"name": "Renamed", "channel": "sms", "value": 10, "cost": 0}
    )
    assert replaced.status_code == 200, replaced.text
    after = replaced.json()
    assert (after["name"], after["channel"], after["value"], after["cost"]) == (
        "Renamed",
        "sms",
        10.0,
        0.0,
    )
    # Replace means replace: omitted fields are back to their defaults.
    assert after["budget"] is None and after["starts_at"] is None
    assert after["eligibility"]["segments"] is None
    assert after["created_at"] == offer["created_at"]
    assert after["updated_at"] > offer["updated_at"]
    assert client.get("/v1/offers/crud-1").json() == after

    deleted = client.delete("/v1/offers/crud-1")
    assert deleted.status_code == 200
    assert deleted.json()["deleted_at"] is not None and deleted.json()["active"] is False


def test_soft_delete_hides_the_offer_but_keeps_its_id(client, server):
    assert client.post("/v1/offers", json=body("gone-1")).status_code == 200
    assert client.delete("/v1/offers/gone-1").status_code == 200
    assert client.get("/v1/offers/gone-1").status_code == 404
    assert "gone-1" not in {o["offer_id"] for o in client.get("/v1/offers").json()["offers"]}
    assert client.put("/v1/offers/gone-1", json=offer_fields()).status_code == 404
    assert client.delete("/v1/offers/gone-1").status_code == 404
    again = client.post("/v1/offers", json=body("gone-1"))
    assert again.status_code == 409 and "deleted" in again.json()["detail"]
    rows = server.sql("SELECT deleted_at FROM offers WHERE offer_id = 'gone-1'")
    assert rows[0]["deleted_at"] is not None


def test_duplicate_id_is_409(client):
    assert client.post("/v1/offers", json=body("dup-1")).status_code == 200
    response = client.post("/v1/offers", json=body("dup-1", name="Other"))
    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]
    assert client.get("/v1/offers/dup-1").json()["name"] == "Offer dup-1"


def test_unknown_offers_are_404(client):
    assert client.get("/v1/offers/nope").status_code == 404
    assert client.put("/v1/offers/nope", json=offer_fields()).status_code == 404
    response = client.delete("/v1/offers/nope")
    assert response.status_code == 404 and "nope" in response.json()["detail"]


def test_active_filter(client):
    now = datetime.now(UTC)
    client.post("/v1/offers", json=body("act-live"))
    client.post(
        "/v1/offers", json=body("act-future", starts_at=(now + timedelta(days=3)).isoformat())
    )
    client.post(
        "/v1/offers",
        json=body(
            "act-ended",
            starts_at=(now - timedelta(days=9)).isoformat(),
            ends_at=(now - timedelta(days=1)).isoformat(),
        ),
    )
    client.post("/v1/offers", json=body("act-broke", budget="1.00", cost="1.50"))

    def ids(query: str) -> set[str]:
        response = client.get(f"/v1/offers{query}")
        assert response.status_code == 200, response.text
        return {
            o["offer_id"] for o in response.json()["offers"] if o["offer_id"].startswith("act-")
        }

    assert ids("?active=true") == {"act-live"}
    assert ids("?active=false") == {"act-future", "act-ended", "act-broke"}
    assert ids("") == {"act-live", "act-future", "act-ended", "act-broke"}
    assert client.get("/v1/offers?active=maybe").status_code == 422


def test_an_empty_window_is_accepted_and_never_active(client):
    """`ends_at` at or before `starts_at` is schema-valid, so it is accepted: never offered."""
    window = {"starts_at": "2026-02-01T00:00:00Z", "ends_at": "2026-01-01T00:00:00Z"}
    response = client.post("/v1/offers", json=body("empty-window", **window))
    assert response.status_code == 200, response.text
    assert response.json()["active"] is False


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"value": -1}, "body.value"),
        ({"cost": "-0.01"}, "body.cost"),
        ({"value": "lots"}, "body.value"),
        ({"cost": "NaN"}, "body.cost"),
        ({"value": "1.23456"}, "body.value"),
        ({"budget": -5}, "body.budget"),
        ({"channel": "fax"}, "body.channel"),
        ({"name": ""}, "body.name"),
        ({"name": "   "}, "body.name"),
        ({"offer_id": "has space"}, "body.offer_id"),
        ({"offer_id": "x" * 129}, "body.offer_id"),
        ({"starts_at": "2026-01-01T00:00:00"}, "body.starts_at"),
        # What the schema refuses, validation refuses too.
        ({"value": ""}, "body.value"),
        ({"cost": "1e3"}, "body.cost"),
        ({"value": 0.00001}, "body.value"),
        ({"starts_at": 0}, "body.starts_at"),
        ({"ends_at": "1969-12-31T23:59:59Z"}, "body.ends_at"),
        (
            {"eligibility": {"min_days_since_last_offer": "5"}},
            "body.eligibility.min_days_since_last_offer",
        ),
        ({"eligibility": {"segments": ["Whales"]}}, "body.eligibility.segments.0"),
        ({"eligibility": {"segments": []}}, "body.eligibility.segments"),
        ({"eligibility": {"value_tiers": ["gold"]}}, "body.eligibility.value_tiers.0"),
        ({"eligibility": {"churn_bands": ["extreme"]}}, "body.eligibility.churn_bands.0"),
        (
            {"eligibility": {"min_days_since_last_offer": -1}},
            "body.eligibility.min_days_since_last_offer",
        ),
        ({"eligibility": {"audience": "all"}}, "body.eligibility.audience"),
        ({"spent": 3}, "body.spent"),
    ],
)
def test_validation_errors_name_the_field(client, fields, field):
    response = client.post("/v1/offers", json={**body("bad-1"), **fields})
    assert field in field_errors(response)
    assert field in response.json()["detail"]


def test_missing_fields_and_a_put_body_id_are_422_broken_json_400(client):
    assert field_errors(client.post("/v1/offers", json={"offer_id": "m"})) >= {
        "body.name",
        "body.channel",
        "body.value",
        "body.cost",
    }
    client.post("/v1/offers", json=body("put-1"))
    # The id is the path's: the body may not name one, not even the same.
    assert field_errors(client.put("/v1/offers/put-1", json=body("put-1"))) == {"body.offer_id"}
    assert client.put("/v1/offers/put-1", json=offer_fields()).status_code == 200
    broken = client.post("/v1/offers", content=b"{", headers={"content-type": "application/json"})
    assert broken.status_code == 400 and "not valid JSON" in broken.json()["detail"]


def test_offers_need_the_admin_scope(server):
    key = server.scorer("keys", "create", "--name", "offers-reader", "--scopes", "scores:read")
    with server.client(key.stdout.strip()) as reader:
        for method, path in [
            ("GET", "/v1/offers"),
            ("GET", "/v1/offers/x"),
            ("POST", "/v1/offers"),
            ("PUT", "/v1/offers/x"),
            ("DELETE", "/v1/offers/x"),
        ]:
            response = reader.request(method, path, json=body("x"))
            assert response.status_code == 403, (method, path)
            assert "admin" in response.json()["detail"]
    with server.client() as anonymous:
        assert anonymous.get("/v1/offers").status_code == 401
        assert anonymous.post("/v1/offers", json={}).status_code == 401


# --- the decision log (what the scoring path calls) ------------------------------------------


def run(database_url: str, work):
    async def go():
        conn = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(go())


SETTINGS = NboSettings(epsilon=0.0, control_share=0.0, frequency_cap=2)


def customer(customer_id: str, now: datetime, history=()) -> CustomerContext:
    return CustomerContext(
        customer_id=customer_id,
        now=now,
        segment="Champions",
        value_tier="high",
        churn_band="low",
        consent=dict.fromkeys(CHANNELS, True),
        history=history,
    )


def test_decisions_are_logged_and_charge_the_budget(client, server):
    client.post("/v1/offers", json=body("log-1", value=100, cost=2, budget=5))
    now = datetime.now(UTC)

    async def work(conn):
        offers = [o for o in await load_offers(conn, now) if o.offer_id == "log-1"]
        assert len(offers) == 1 and offers[0].budget == Decimal(5)
        outcomes = []
        for n in range(3):
            at = now + timedelta(seconds=n)
            decision = decide(
                customer(f"log-c{n}", at), offers, lambda o: 0.5, SETTINGS, random.Random(n)
            )
            assert decision.offer_id == "log-1"  # the policy saw the budget as it was
            decision_id = new_decision_id()
            logged = await record_decision(
                conn,
                f"log-c{n}",
                decision_id,
                decision,
                at,
                SETTINGS,
                model_version="nbo-test",
                context={"channel": "web"},
            )
            outcomes.append((decision_id, logged))
        return outcomes

    outcomes = run(server.database_url, work)
    assert [logged.offer_id for _, logged in outcomes] == ["log-1", "log-1", None]
    assert outcomes[2][1].reason == BUDGET_EXHAUSTED and outcomes[2][1].group == "none"
    offer = client.get("/v1/offers/log-1").json()
    assert (offer["spent"], offer["budget_remaining"], offer["active"]) == (4.0, 1.0, False)
    rows = server.sql(
        "SELECT * FROM offer_decisions WHERE customer_id LIKE 'log-c%' ORDER BY customer_id"
    )
    assert [r["decision_id"] for r in rows] == [d for d, _ in outcomes]
    first = rows[0]
    assert (first["group"], first["reason"], first["offer_id"]) == (
        "treatment",
        "best_expected_value",
        "log-1",
    )
    assert first["propensity"] == 0.5 and first["expected_value"] == pytest.approx(48.0)
    assert first["action_probability"] == 1.0 and first["model_version"] == "nbo-test"
    assert json.loads(first["context"])["policy"]["probabilities"] == {"log-1": 1.0}
    assert json.loads(rows[2]["context"])["withdrawn_offer_id"] == "log-1"


def test_the_frequency_cap_holds_under_concurrent_requests(client, server):
    """Requests for one customer race; the per-customer lock keeps the cap."""
    client.post("/v1/offers", json=body("race-1", value=100, cost=0))
    now = datetime.now(UTC)

    async def work(_conn):
        pool = await asyncpg.create_pool(asyncpg_dsn(server.database_url), min_size=8, max_size=8)
        offers = [o for o in await load_offers(_conn, now) if o.offer_id == "race-1"]

        async def one(n: int):
            async with pool.acquire() as conn:
                # Every request decides on the same (stale) history: none yet.
                decision = decide(
                    customer("race-c", now), offers, lambda o: 0.5, SETTINGS, random.Random(n)
                )
                return await record_decision(
                    conn, "race-c", new_decision_id(), decision, now, SETTINGS
                )

        try:
            results = await asyncio.gather(*(one(n) for n in range(8)))
            history = await recent_decisions(_conn, "race-c", now, history_window(SETTINGS, offers))
        finally:
            await pool.close()
        return results, history

    results, history = run(server.database_url, work)
    assert sum(r.offer is not None for r in results) == 2
    assert {r.reason for r in results if r.offer is None} == {FREQUENCY_CAP}
    assert len(history) == 2


def test_record_decision_rechecks_the_cooldown(client, server):
    client.post(
        "/v1/offers",
        json=body("cool-1", value=100, cost=0, eligibility={"min_days_since_last_offer": 3}),
    )
    now = datetime.now(UTC)

    async def work(conn):
        offers = [o for o in await load_offers(conn, now) if o.offer_id == "cool-1"]
        stale = decide(customer("cool-c", now), offers, lambda o: 0.5, SETTINGS, random.Random(0))
        first = await record_decision(conn, "cool-c", new_decision_id(), stale, now, SETTINGS)
        later = now + timedelta(days=1)
        second = await record_decision(conn, "cool-c", new_decision_id(), stale, later, SETTINGS)
        return first, second

    first, second = run(server.database_url, work)
    assert first.offer_id == "cool-1"
    assert second.offer is None and second.reason == NO_ELIGIBLE_OFFER


def test_the_database_refuses_inconsistent_decisions(server):
    with pytest.raises(asyncpg.CheckViolationError):
        server.sql(
            """INSERT INTO offer_decisions (customer_id, decision_id, decided_at, offer_id,
               "group", reason, action_probability) VALUES ('x', 'd', now(), NULL, 'treatment',
               'best_expected_value', 1.0)"""
        )
