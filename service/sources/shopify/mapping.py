"""Shopify webhook payloads to our events: pure functions, no I/O.

Event ids derive from `X-Shopify-Event-Id`, so Shopify's redeliveries of one event (up to 8
over 4 hours) are duplicates; `orders/create` and `orders/paid` of one order are one order
(an order counts once per customer and order id).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from service.sources.unusable import Unusable, checked_id

ORDER_TOPICS = ("orders/create", "orders/paid")
CUSTOMER_TOPICS = ("customers/create", "customers/update")
TOPICS = (*ORDER_TOPICS, "refunds/create", *CUSTOMER_TOPICS)

# Marketing consent states: Shopify's `subscribed` grants, the refusals withdraw; `pending`
# (double opt-in not confirmed), `invalid` and `redacted` say nothing.
_CONSENT_STATES = {"subscribed": True, "unsubscribed": False, "not_subscribed": False}
_TRAITS = ("email", "phone", "first_name", "last_name", "tags", "state", "verified_email")


def order_event(event_key: str, order: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """An order webhook as an order_completed event, and the order's id.

    The amount is `subtotal_price`: after discounts, before shipping and tax, which are not
    the shop's to keep; the same rule as Segment's `revenue`."""
    customer = _customer_id(order.get("customer"))
    order_id = _id(order, "id")
    event = {
        "event_id": f"shopify:{event_key}",
        "customer_id": customer,
        "type": "order_completed",
        "occurred_at": _time(order, "processed_at", "created_at"),
        "order_id": order_id,
        "amount": _money(order, "subtotal_price"),
        "currency": order.get("currency"),
        "properties": _kept(order, ("name", "order_number", "total_price", "total_tax")),
    }
    return event, order_id


def refund_event(event_key: str, refund: dict[str, Any], customer: str) -> dict[str, Any]:
    """A refund as an order_refunded event of `customer` (the order's, looked up).

    The amount is the refunded line items' `subtotal` (merchandise before tax, matching the
    order's amount); a refund without line items (an amount or shipping refund) counts its
    successful refund transactions."""
    lines = refund.get("refund_line_items") or []
    if not isinstance(lines, list):
        raise Unusable("refund_line_items: must be a list")
    if lines:
        amount = sum(
            (
                _decimal(line.get("subtotal"), f"refund_line_items.{i}.subtotal")
                for i, line in enumerate(lines)
                if isinstance(line, dict)
            ),
            Decimal(0),
        )
    else:
        amount = sum(
            (
                _decimal(item.get("amount"), f"transactions.{i}.amount")
                for i, item in enumerate(refund.get("transactions") or [])
                if isinstance(item, dict)
                and item.get("kind") == "refund"
                and item.get("status") == "success"
            ),
            Decimal(0),
        )
    currency = next(
        (
            item.get("currency")
            for item in refund.get("transactions") or []
            if isinstance(item, dict) and item.get("currency")
        ),
        None,
    )
    event = {
        "event_id": f"shopify:{event_key}",
        "customer_id": customer,
        "type": "order_refunded",
        "occurred_at": _time(refund, "processed_at", "created_at"),
        "order_id": _id(refund, "order_id"),
        "amount": str(amount),
        "properties": {"refund_id": refund.get("id")},
    }
    if currency is not None:
        event["currency"] = currency
    return event


def refund_order_id(refund: dict[str, Any]) -> str:
    return _id(refund, "order_id")


def customer_events(event_key: str, customer: dict[str, Any]) -> list[dict[str, Any]]:
    """A customer webhook: an identify with the profile traits, and a consent event per
    channel whose marketing consent state says granted or withdrawn."""
    customer_id = _customer_id(customer)
    occurred_at = _time(customer, "updated_at", "created_at")
    events = [
        {
            "event_id": f"shopify:{event_key}",
            "customer_id": customer_id,
            "type": "identify",
            "occurred_at": occurred_at,
            "properties": {"traits": _kept(customer, _TRAITS)},
        }
    ]
    for channel, field in (("email", "email_marketing_consent"), ("sms", "sms_marketing_consent")):
        stated = customer.get(field)
        granted = _CONSENT_STATES.get(stated.get("state")) if isinstance(stated, dict) else None
        if granted is not None:
            events.append(
                {
                    "event_id": f"shopify:{event_key}:consent:{channel}",
                    "customer_id": customer_id,
                    "type": "consent_updated",
                    "occurred_at": occurred_at,
                    "properties": {"channel": channel, "granted": granted, "source": "shopify"},
                }
            )
    return events


def _customer_id(customer: Any) -> str:
    if not isinstance(customer, dict) or customer.get("id") is None:
        raise Unusable("customer: none on this order (a guest checkout cannot be attributed)")
    return _id(customer, "id")


def _id(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        raise Unusable(f"{name}: required, a number or string")
    return checked_id(str(value), name)


def _time(payload: dict[str, Any], *names: str) -> str:
    for name in names:
        if isinstance(payload.get(name), str):
            return payload[name]
    raise Unusable(f"{names[0]}: required, an ISO 8601 timestamp")


def _money(payload: dict[str, Any], name: str) -> str:
    return str(_decimal(payload.get(name), name))


def _decimal(value: Any, name: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise Unusable(f"{name}: must be a decimal amount, got {str(value)[:40]!r}") from None
    if not amount.is_finite() or amount.adjusted() > 12:
        raise Unusable(f"{name}: must be a finite amount below 1e12")
    return amount


def _kept(payload: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: payload[name] for name in names if payload.get(name) is not None}
