"""Stripe events to our events: pure functions, no I/O.

Orders: `checkout.session.completed` (`amount_total`) or `charge.succeeded` (`amount`), both
the gross amount paid (Stripe does not itemise tax on a charge, so the two agree), with the
payment intent as the order id, so that a session and its charge are one order. Refunds:
each refund once, by its id: `refund.created`, or `charge.refunded` listing its refunds; a
`charge.refunded` without the list refunds what its cumulative `amount_refunded` adds to
what the order already had refunded. Amounts are in the currency's minor unit.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from service.sources.unusable import Unusable, checked_id

ORDER_TYPES = ("checkout.session.completed", "charge.succeeded")
REFUND_TYPES = ("charge.refunded", "refund.created")

# Stripe's zero- and three-decimal currencies; every other one has two decimals.
_ZERO_DECIMAL = frozenset(
    ["BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA"]
    + ["PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"]
)
_THREE_DECIMAL = frozenset(["BHD", "JOD", "KWD", "OMR", "TND"])


def major_units(minor: Any, currency: str, name: str) -> str:
    if isinstance(minor, bool) or not isinstance(minor, int) or not 0 <= minor < 10**15:
        raise Unusable(f"{name}: must be a whole number of minor units, 0 to 10^15")
    exponent = 0 if currency in _ZERO_DECIMAL else 3 if currency in _THREE_DECIMAL else 2
    return str(Decimal(minor).scaleb(-exponent))


def customer_of(obj: dict[str, Any], metadata_key: str) -> str:
    """`metadata[<key>]` when the shop put our customer id there, else the Stripe customer."""
    metadata = obj.get("metadata")
    stated = metadata.get(metadata_key) if isinstance(metadata, dict) else None
    if isinstance(stated, str) and stated:
        return checked_id(stated, f"metadata.{metadata_key}")
    customer = obj.get("customer")
    if isinstance(customer, dict):  # an expanded customer object
        customer = customer.get("id")
    if isinstance(customer, str) and customer:
        return checked_id(customer, "customer")
    raise Unusable(f"customer: none, and no metadata.{metadata_key} (a guest payment)")


def order_id_of(obj: dict[str, Any]) -> str:
    intent = obj.get("payment_intent")
    if isinstance(intent, dict):
        intent = intent.get("id")
    if isinstance(intent, str) and intent:
        return checked_id(intent, "payment_intent")
    if isinstance(obj.get("id"), str) and obj["id"]:
        return checked_id(obj["id"], "id")
    raise Unusable("data.object.id: required")


def currency_of(obj: dict[str, Any]) -> str:
    currency = obj.get("currency")
    if not isinstance(currency, str):
        raise Unusable("currency: required")
    return currency.upper()


def order_event(event: dict[str, Any], obj: dict[str, Any], customer: str) -> dict[str, Any]:
    currency = currency_of(obj)
    field = "amount_total" if event["type"] == "checkout.session.completed" else "amount"
    return {
        "event_id": f"stripe:{event['id']}",
        "customer_id": customer,
        "type": "order_completed",
        "occurred_at": _time(obj.get("created", event.get("created"))),
        "order_id": order_id_of(obj),
        "amount": major_units(obj.get(field), currency, f"data.object.{field}"),
        "currency": currency,
        "properties": {"stripe_object": obj.get("id"), "stripe_type": event["type"]},
    }


def listed_refunds(obj: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The refunds a charge lists, or None when the charge does not carry them (newer API
    versions leave `refunds` out unless expanded)."""
    refunds = obj.get("refunds")
    data = refunds.get("data") if isinstance(refunds, dict) else None
    return data if isinstance(data, list) else None


def refund_events(
    order_id: str, customer: str, refunds: list[dict[str, Any]], currency: str
) -> list[dict[str, Any]]:
    events = []
    for index, refund in enumerate(refunds):
        if not isinstance(refund, dict) or not isinstance(refund.get("id"), str):
            raise Unusable(f"refunds.data.{index}.id: required")
        if refund.get("status") not in (None, "succeeded", "pending"):
            continue  # failed or canceled refunds gave nothing back
        events.append(
            {
                "event_id": f"stripe:{refund['id']}",
                "customer_id": customer,
                "type": "order_refunded",
                "occurred_at": _time(refund.get("created")),
                "order_id": order_id,
                "amount": major_units(
                    refund.get("amount"), currency, f"refunds.data.{index}.amount"
                ),
                "currency": currency,
                "properties": {"stripe_refund": refund["id"]},
            }
        )
    return events


def cumulative_refund_event(
    event: dict[str, Any], obj: dict[str, Any], customer: str, already_refunded: Decimal
) -> dict[str, Any] | None:
    """The part of `amount_refunded` (cumulative) the order has not had refunded yet; None
    if nothing is new (an older event arriving after a newer one)."""
    currency = currency_of(obj)
    total = Decimal(
        major_units(obj.get("amount_refunded"), currency, "data.object.amount_refunded")
    )
    new = total - already_refunded
    if new <= 0:
        return None
    return {
        "event_id": f"stripe:{event['id']}",
        "customer_id": customer,
        "type": "order_refunded",
        "occurred_at": _time(event.get("created")),
        "order_id": order_id_of(obj),
        "amount": str(new),
        "currency": currency,
        "properties": {"stripe_charge": obj.get("id"), "amount_refunded": str(total)},
    }


def _time(created: Any) -> str:
    if isinstance(created, bool) or not isinstance(created, int):
        raise Unusable("created: required, a Unix time")
    try:
        return datetime.fromtimestamp(created, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        raise Unusable("created: not a usable Unix time") from None
