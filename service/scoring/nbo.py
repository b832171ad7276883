"""Next-best-offer inside a scoring request: live offers, the policy, the decision log.

Only requests for customers with an id decide (decisions are logged per customer).
A customer's decision is reused while it is younger than `decision_ttl_seconds`, so a
tool polling scores does not burn the contact-frequency cap with every poll.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from service.config import NboSettings
from service.offers.decisions import load_offers, new_decision_id, record_decision
from service.offers.policy import (
    CustomerContext,
    OfferSpec,
    PastDecision,
    decide,
    history_window,
)
from service.offers.propensity import PropensityModel

_HISTORY = """
SELECT decision_id, decided_at, offer_id, reason, propensity, expected_value
FROM offer_decisions
WHERE customer_id = $1 AND decided_at > $2 AND decided_at <= $3
ORDER BY decided_at DESC
"""


@dataclass
class OfferCache:
    """Live offers, re-read at most every `ttl` seconds (the catalog changes rarely)."""

    ttl: float = 2.0
    _offers: list[OfferSpec] = field(default_factory=list)
    _loaded_at: float = -1e9

    async def get(self, conn: asyncpg.Connection, now: datetime) -> list[OfferSpec]:
        if time.monotonic() - self._loaded_at > self.ttl:
            self._offers = await load_offers(conn, now)
            self._loaded_at = time.monotonic()
        return [offer for offer in self._offers if offer.is_live(now)]


@dataclass
class NboContext:
    settings: NboSettings
    offers: OfferCache
    rng: random.Random = field(default_factory=random.Random)
    decision_ttl_seconds: float = 3600.0


def _offer_body(decision_id: str, offer: OfferSpec, propensity, expected_value) -> dict:
    return {
        "offer_id": offer.offer_id,
        "name": offer.name,
        "channel": offer.channel,
        "propensity": round(float(propensity or 0.0), 6),
        "expected_value": round(float(expected_value or 0.0), 4),
        "decision_id": decision_id,
    }


async def next_best_offer(
    conn: asyncpg.Connection,
    nbo: NboContext,
    propensity_model: PropensityModel,
    features: dict,
    segment: str,
    value_tier: str,
    churn_band: str,
    now: datetime,
    request_context: dict[str, Any],
) -> tuple[dict | None, str]:
    customer_id = features["customer_id"]
    if customer_id is None:
        return None, "anonymous_customer"
    offers = await nbo.offers.get(conn, now)
    if not offers:
        return None, "no_offers"
    policy = nbo.settings
    window = max(history_window(policy, offers), timedelta(seconds=nbo.decision_ttl_seconds))
    rows = await conn.fetch(_HISTORY, customer_id, now - window, now)
    reused = _reused_decision(rows[0] if rows else None, offers, nbo.decision_ttl_seconds, now)
    if reused is not None:
        return reused
    customer = CustomerContext(
        customer_id=customer_id,
        now=now,
        segment=segment,
        value_tier=value_tier,
        churn_band=churn_band,
        consent=features["consent"],
        history=[PastDecision(r["decided_at"], r["offer_id"]) for r in reversed(rows)],
    )
    propensities = propensity_model.score(features, segment, offers)
    by_offer = dict(zip((o.offer_id for o in offers), propensities, strict=True))
    decision = decide(customer, offers, lambda o: by_offer[o.offer_id], policy, nbo.rng)
    decision_id = new_decision_id()
    decision = await record_decision(
        conn,
        customer_id,
        decision_id,
        decision,
        now,
        policy,
        model_version=propensity_model.version,
        context=request_context,
    )
    if decision.offer is None:
        return None, decision.reason
    body = _offer_body(decision_id, decision.offer, decision.propensity, decision.expected_value)
    return body, decision.reason


def _reused_decision(
    latest: asyncpg.Record | None, offers: list[OfferSpec], ttl_seconds: float, now: datetime
) -> tuple[dict | None, str] | None:
    """The customer's decision younger than the TTL, offer or not, so every customer has one
    decision per TTL whichever group they are in (uplift compares decisions); None when
    there is none, or its offer has since gone."""
    if latest is None or (now - latest["decided_at"]).total_seconds() >= ttl_seconds:
        return None
    if latest["offer_id"] is None:
        return None, latest["reason"]
    offer = next((o for o in offers if o.offer_id == latest["offer_id"]), None)
    if offer is None:
        return None
    body = _offer_body(latest["decision_id"], offer, latest["propensity"], latest["expected_value"])
    return body, "previous_decision"
