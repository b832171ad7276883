"""What the scoring path needs around `policy.decide`: load, then log (asyncpg, hot path).

Typical use, for one customer::

    offers = await load_offers(conn, now)                 # cacheable for a few seconds
    history = await recent_decisions(conn, customer_id, now, history_window(settings, offers))
    decision = decide(CustomerContext(..., history=history), offers, propensity, settings, rng)
    decision = await record_decision(conn, customer_id, new_decision_id(), decision, now,
                                     settings, model_version=..., context={...})

`record_decision` re-checks the frequency cap, the cool-down and the budget
under a per-customer lock, in the same transaction as the insert, so
concurrent requests for one customer can not exceed the cap and concurrent
requests for one offer can not overspend its budget. A decision that loses
such a race is logged (and returned) as no offer with the matching reason.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from service.config import NboSettings
from service.offers.policy import (
    BUDGET_EXHAUSTED,
    FREQUENCY_CAP,
    NO_ELIGIBLE_OFFER,
    CustomerContext,
    Decision,
    OfferSpec,
    PastDecision,
    cooled_down,
    frequency_capped,
    history_window,
)
from service.offers.service import spec_from_row

_LIVE_OFFERS = """
SELECT * FROM offers
WHERE deleted_at IS NULL
  AND (starts_at IS NULL OR starts_at <= $1) AND (ends_at IS NULL OR ends_at > $1)
ORDER BY offer_id
"""
_RECENT_OFFERS = """
SELECT decided_at, offer_id FROM offer_decisions
WHERE customer_id = $1 AND offer_id IS NOT NULL AND decided_at > $2 AND decided_at <= $3
ORDER BY decided_at
"""
_LOCK_CUSTOMER = "SELECT pg_advisory_xact_lock(hashtextextended('offer_decisions:' || $1, 0))"
_CHARGE_BUDGET = """
UPDATE offers SET spent = spent + cost
WHERE offer_id = $1 AND deleted_at IS NULL AND (budget IS NULL OR budget - spent >= cost)
RETURNING offer_id
"""
_OFFER_GONE = "SELECT deleted_at IS NOT NULL FROM offers WHERE offer_id = $1"
_INSERT_DECISION = """
INSERT INTO offer_decisions (customer_id, decision_id, decided_at, offer_id, "group", reason,
  propensity, expected_value, action_probability, explored, model_version, context)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb)
"""


def new_decision_id() -> str:
    return str(uuid.uuid4())


async def load_offers(conn: asyncpg.Connection, now: datetime) -> list[OfferSpec]:
    """Offers not deleted and inside their active window at `now`."""
    return [spec_from_row(row) for row in await conn.fetch(_LIVE_OFFERS, now)]


async def recent_decisions(
    conn: asyncpg.Connection, customer_id: str, now: datetime, window: timedelta
) -> list[PastDecision]:
    """This customer's decisions that made an offer in (now - window, now]."""
    rows = await conn.fetch(_RECENT_OFFERS, customer_id, now - window, now)
    return [PastDecision(row["decided_at"], row["offer_id"]) for row in rows]


def withdrawn(decision: Decision, reason: str) -> Decision:
    """The decision turned into 'no offer' (it lost a race for the cap or the budget)."""
    return replace(
        decision,
        offer=None,
        group="none",
        reason=reason,
        propensity=None,
        expected_value=None,
        action_probability=1.0,
        explored=False,
        probabilities={},
    )


async def _confirm(
    conn: asyncpg.Connection,
    customer_id: str,
    decision: Decision,
    decided_at: datetime,
    settings: NboSettings,
) -> Decision:
    offer = decision.offer
    assert offer is not None
    history = await recent_decisions(
        conn, customer_id, decided_at, history_window(settings, [offer])
    )
    context = CustomerContext(customer_id, decided_at, history=history)
    if frequency_capped(context, settings):
        return withdrawn(decision, FREQUENCY_CAP)
    if not cooled_down(offer, context.last_offer_at(), decided_at):
        return withdrawn(decision, NO_ELIGIBLE_OFFER)
    if await conn.fetchval(_CHARGE_BUDGET, offer.offer_id) is None:
        gone = await conn.fetchval(_OFFER_GONE, offer.offer_id)
        return withdrawn(decision, NO_ELIGIBLE_OFFER if gone in (True, None) else BUDGET_EXHAUSTED)
    return decision


def _logged_context(decision: Decision, context: Mapping[str, Any] | None) -> str:
    logged = dict(context or {})
    policy: dict[str, Any] = {}
    if decision.probabilities:
        policy["probabilities"] = dict(decision.probabilities)
    if decision.counterfactual_offer_id:
        policy["counterfactual_offer_id"] = decision.counterfactual_offer_id
    if policy:
        logged["policy"] = policy
    return json.dumps(logged, default=str)


async def record_decision(
    conn: asyncpg.Connection,
    customer_id: str,
    decision_id: str,
    decision: Decision,
    decided_at: datetime,
    settings: NboSettings,
    model_version: str | None = None,
    context: Mapping[str, Any] | None = None,
) -> Decision:
    """Log the decision (charging the offer's budget); returns what was actually logged."""
    async with conn.transaction():
        await conn.execute(_LOCK_CUSTOMER, customer_id)
        if decision.offer is not None:
            original = decision
            decision = await _confirm(conn, customer_id, decision, decided_at, settings)
            if decision is not original:
                context = {**(context or {}), "withdrawn_offer_id": original.offer_id}
        await conn.execute(
            _INSERT_DECISION,
            customer_id,
            decision_id,
            decided_at,
            decision.offer_id,
            decision.group,
            decision.reason,
            decision.propensity,
            decision.expected_value,
            decision.action_probability,
            decision.explored,
            model_version,
            _logged_context(decision, context),
        )
    return decision
