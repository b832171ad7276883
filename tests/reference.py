"""A plain-Python reference model of event ingestion and the features of docs/features.md.

Written from the contract (docs/time.md, docs/features.md), independently of `service.features`: no
SQL, no buckets, just the stored events replayed for every read. The property
tests compare the real service against it.

Semantics modelled (events are assumed to be valid; validation is tested elsewhere):

- Events of a batch are taken in order, as if sent one by one.
- Same `event_id` already stored with the same content: duplicate, no effect;
  with different content: rejected (conflict). Content is compared canonically:
  the instant of `occurred_at` (not its offset), the amount as a decimal
  (`10` == `"10.00"`), the currency with its USD default on order events.
- A second `order_completed` for a stored (customer_id, order_id) under another
  event_id: same amount -> duplicate (not stored, its event_id stays free),
  different amount -> rejected.
- Refunds (`order_refunded`) accumulate per (customer_id, order_id), whenever they
  occurred or arrived ("current knowledge"); an order refunded by a total > 0 and
  >= its amount no longer counts; its net revenue is max(amount - refunds, 0) and
  stays on the order's own day.
- A read as of T sees bucket days d <= day(T); an N-day window is
  day(T) - N < d <= day(T). Days are UTC calendar days.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

CENT = Decimal("0.01")
CONSENT_CHANNELS = ("email", "sms", "push", "web", "profiling")
ORDER_TYPES = ("order_completed", "order_refunded")
ENGAGEMENT = {
    "sessions_30d": ("session_started", 30),
    "product_views_30d": ("product_viewed", 30),
    "cart_adds_30d": ("cart_updated", 30),
    "checkouts_30d": ("checkout_started", 30),
    "email_opens_30d": ("email_opened", 30),
    "email_clicks_30d": ("email_clicked", 30),
    "support_tickets_90d": ("support_ticket", 90),
}
WINDOWS = (7, 30, 90, 365)
FEATURE_NAMES = (
    "customer_id",
    "as_of",
    "first_seen_at",
    "first_order_at",
    "last_order_at",
    "recency_days",
    "tenure_days",
    "orders_total",
    "revenue_total",
    *(f"orders_{n}d" for n in WINDOWS),
    *(f"revenue_{n}d" for n in WINDOWS),
    "aov",
    "avg_days_between_orders",
    *ENGAGEMENT,
    "last_csat",
    "consent",
)
MONEY_FEATURES = frozenset({"revenue_total", "aov", *(f"revenue_{n}d" for n in WINDOWS)})
TIME_FEATURES = frozenset({"as_of", "first_seen_at", "first_order_at", "last_order_at"})


def parse_time(value: str) -> datetime:
    """RFC 3339 (with offset) to an aware datetime."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"naive timestamp {value!r}")
    return moment


def day_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def cents(value: Decimal | Fraction) -> Decimal:
    """Round half up to cents."""
    if isinstance(value, Fraction):
        value = Decimal(value.numerator) / Decimal(value.denominator)
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Stored:
    """One stored event, reduced to what matters."""

    event_id: str
    customer_id: str
    type: str
    occurred_at: datetime
    properties: dict[str, Any]
    order_id: str | None
    amount: Decimal | None
    content: tuple

    @property
    def day(self) -> date:
        return day_of(self.occurred_at)


def _content(raw: dict[str, Any], default_currency: str) -> tuple:
    kind = raw["type"]
    amount = raw.get("amount")
    currency = raw.get("currency") or (default_currency if kind in ORDER_TYPES else None)
    return (
        raw["customer_id"],
        kind,
        parse_time(raw["occurred_at"]).astimezone(UTC),
        json.dumps(raw.get("properties") or {}, sort_keys=True),
        raw.get("order_id"),
        None if amount is None else Decimal(str(amount)),
        currency,
    )


@dataclass
class BatchResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[int] = field(default_factory=list)


class ReferenceModel:
    def __init__(self, currency: str = "USD") -> None:
        self.currency = currency
        self.events: dict[str, Stored] = {}
        self.completions: dict[tuple[str, str], Decimal] = {}
        self.arrival: list[Stored] = []

    # ---- ingestion ---------------------------------------------------------

    def ingest(self, batch: list[dict[str, Any]]) -> BatchResult:
        result = BatchResult()
        for index, raw in enumerate(batch):
            outcome = self._ingest_one(raw)
            if outcome == "accepted":
                result.accepted += 1
            elif outcome == "duplicate":
                result.duplicates += 1
            else:
                result.rejected.append(index)
        return result

    def _ingest_one(self, raw: dict[str, Any]) -> str:
        content = _content(raw, self.currency)
        known = self.events.get(raw["event_id"])
        if known is not None:
            return "duplicate" if known.content == content else "rejected"
        customer_id, kind, occurred_at, _, order_id, amount, _ = content
        if kind == "order_completed":
            recorded = self.completions.get((customer_id, order_id))
            if recorded is not None:
                return "duplicate" if recorded == amount else "rejected"
            self.completions[(customer_id, order_id)] = amount
        event = Stored(
            event_id=raw["event_id"],
            customer_id=customer_id,
            type=kind,
            occurred_at=occurred_at,
            properties=raw.get("properties") or {},
            order_id=order_id,
            amount=amount,
            content=content,
        )
        self.events[event.event_id] = event
        self.arrival.append(event)
        return "accepted"

    # ---- features ----------------------------------------------------------

    def customer_events(self, customer_id: str) -> list[Stored]:
        return [e for e in self.arrival if e.customer_id == customer_id]

    def customers(self) -> list[str]:
        return sorted({e.customer_id for e in self.arrival})

    def features(self, customer_id: str, as_of: datetime) -> dict[str, Any] | None:
        """The feature vector (money as Decimal cents, times as aware datetimes), or None (404)."""
        events = self.customer_events(customer_id)
        today = day_of(as_of)
        if not events:
            return None
        first_seen = min(events, key=lambda e: e.occurred_at)
        if first_seen.day > today:
            return None

        refunds: dict[str, Decimal] = {}
        for e in events:
            if e.type == "order_refunded":
                refunds[e.order_id] = refunds.get(e.order_id, Decimal(0)) + e.amount
        # (day, occurred_at, counted, net) of every completed order on or before today
        orders = []
        for e in events:
            if e.type != "order_completed" or e.day > today:
                continue
            refunded = refunds.get(e.order_id, Decimal(0))
            counted = not (refunded > 0 and refunded >= e.amount)
            orders.append((e.day, e.occurred_at, counted, max(e.amount - refunded, Decimal(0))))

        def in_window(d: date, n: int | None) -> bool:
            return n is None or (today - d).days < n

        def orders_in(n: int | None) -> int:
            return sum(1 for d, _, counted, _ in orders if counted and in_window(d, n))

        def revenue_in(n: int | None) -> Decimal:
            return sum((net for d, _, _, net in orders if in_window(d, n)), Decimal(0))

        counted = [(d, at) for d, at, c, _ in orders if c]
        orders_total = orders_in(None)
        revenue_total = revenue_in(None)
        features: dict[str, Any] = {
            "customer_id": customer_id,
            "as_of": as_of,
            "first_seen_at": first_seen.occurred_at,
            "first_order_at": min((at for _, at in counted), default=None),
            "last_order_at": max((at for _, at in counted), default=None),
            "recency_days": (today - max(d for d, _ in counted)).days if counted else None,
            "tenure_days": (today - first_seen.day).days,
            "orders_total": orders_total,
            "revenue_total": cents(revenue_total),
        }
        for n in WINDOWS:
            features[f"orders_{n}d"] = orders_in(n)
        for n in WINDOWS:
            features[f"revenue_{n}d"] = cents(revenue_in(n))
        features["aov"] = cents(Fraction(revenue_total) / orders_total) if orders_total else None
        if orders_total >= 2:
            first_day, last_day = min(d for d, _ in counted), max(d for d, _ in counted)
            features["avg_days_between_orders"] = (last_day - first_day).days / (orders_total - 1)
        else:
            features["avg_days_between_orders"] = None
        for name, (kind, n) in ENGAGEMENT.items():
            features[name] = sum(
                1 for e in events if e.type == kind and e.day <= today and in_window(e.day, n)
            )

        def latest(matching: list[Stored]) -> Stored | None:
            seen = [e for e in matching if e.day <= today]
            return max(seen, key=lambda e: (e.occurred_at, e.event_id), default=None)

        csat = latest(
            [
                e
                for e in events
                if e.type == "survey_response" and e.properties.get("csat") is not None
            ]
        )
        features["last_csat"] = None if csat is None else csat.properties["csat"]
        consent = {}
        for channel in CONSENT_CHANNELS:
            stated = latest(
                [
                    e
                    for e in events
                    if e.type == "consent_updated" and e.properties.get("channel") == channel
                ]
            )
            consent[channel] = None if stated is None else stated.properties["granted"]
        features["consent"] = consent
        return features


def normalize_response(body: dict[str, Any]) -> dict[str, Any]:
    """A features response in the reference's terms (times parsed, money as Decimal cents)."""
    out = dict(body)
    for name in TIME_FEATURES:
        if out.get(name) is not None:
            out[name] = parse_time(out[name])
    for name in MONEY_FEATURES:
        if out.get(name) is not None:
            out[name] = cents(Decimal(str(out[name])))
    return out


def differences(expected: dict[str, Any], got: dict[str, Any]) -> dict[str, tuple]:
    """Feature name -> (expected, got) for every mismatch, missing or unexpected key."""
    got = normalize_response(got)
    diffs = {}
    for name in sorted(set(FEATURE_NAMES) | set(got)):
        want, have = expected.get(name, "<absent>"), got.get(name, "<absent>")
        same = isinstance(want, bool) == isinstance(have, bool) and want == have
        if name == "avg_days_between_orders" and want is not None:
            same = same and type(have) is float
        if not same:
            diffs[name] = (want, have)
    return diffs
