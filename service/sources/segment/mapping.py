"""Segment spec messages to our events: pure functions, no I/O.

A message becomes zero or more events in `POST /v1/events` shape, with `customer_id` left
to the identity rules (service/sources/segment/identity.py): it is the `userId` when the
message has one, else whatever customer its `anonymousId` is linked to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from service.sources.unusable import Unusable, checked_id
from service.vocabulary import CONSENT_CHANNELS

MESSAGE_TYPES = ("track", "identify", "page", "screen", "alias", "group")

# Segment e-commerce spec v2 and email spec names (compared case-blind, "_" as " ").
TRACK_TYPES = {
    "order completed": "order_completed",
    "order refunded": "order_refunded",
    "product viewed": "product_viewed",
    "product added": "cart_updated",
    "product removed": "cart_updated",
    "checkout started": "checkout_started",
    "email opened": "email_opened",
    "email link clicked": "email_clicked",
    "email clicked": "email_clicked",
}

# Order value: merchandise revenue net of discounts, without shipping and tax (which are
# not the shop's to keep), is what lifetime value is about. Segment's `revenue` is exactly
# that; `subtotal` (after discounts, before shipping and tax) is the same where `revenue`
# is missing; `total` includes shipping and tax and is the last resort, then `value`.
AMOUNT_FIELDS = ("revenue", "subtotal", "total", "value")

# Trait flags some CDPs send for channel opt-in, besides our own `consent` object.
_OPT_IN_TRAITS = {"email_opt_in": "email", "sms_opt_in": "sms", "push_opt_in": "push"}


@dataclass(frozen=True)
class Translation:
    """What a message says: its events (customer left open), and who it is about."""

    message_id: str
    user_id: str | None
    anonymous_id: str | None
    events: list[dict[str, Any]] = field(default_factory=list)
    # alias: the id the user had before (an anonymous id to link to user_id).
    previous_id: str | None = None
    custom: int = 0

    @property
    def links(self) -> bool:
        """Whether the message ties its anonymous id (or previousId) to its userId."""
        return self.user_id is not None and (
            self.anonymous_id is not None or self.previous_id is not None
        )


def translate(
    message: Any, received_at: datetime, sent_at: Any = None, route_type: str | None = None
) -> Translation:
    """One Segment message to its events; `sent_at` is the batch's `sentAt` if the message
    has none; `route_type` the type a single-message route implies."""
    if not isinstance(message, dict):
        raise Unusable("message: must be a JSON object")
    kind = message.get("type", route_type)
    if route_type is not None and kind != route_type:
        raise Unusable(f"type: this route takes {route_type} messages, got {kind!r}")
    if kind not in MESSAGE_TYPES:
        raise Unusable(f"type: must be one of {', '.join(MESSAGE_TYPES)}, got {kind!r}")
    message_id = _id(message, "messageId", required=True)
    user_id = _id(message, "userId")
    anonymous_id = _id(message, "anonymousId")
    previous_id = _id(message, "previousId") if kind == "alias" else None
    if kind == "alias":
        if user_id is None or previous_id is None:
            raise Unusable("alias: needs both userId and previousId")
    elif user_id is None and anonymous_id is None:
        raise Unusable("userId or anonymousId: one is required")
    occurred_at = event_time(message, received_at, message.get("sentAt", sent_at)).isoformat()
    events, custom = _EVENTS_OF[kind](message, message_id, occurred_at)
    return Translation(message_id, user_id, anonymous_id, events, previous_id, custom)


def event_time(message: dict[str, Any], received_at: datetime, sent_at: Any) -> datetime:
    """When it happened, corrected for the sender's clock as Segment does:
    receivedAt - (sentAt - timestamp), so a clock that runs ahead or behind cancels out."""
    stated = message.get("timestamp") or message.get("originalTimestamp")
    if stated is None:
        return received_at
    happened = _timestamp(stated, "timestamp")
    if sent_at is None:
        return happened
    try:
        return received_at - (_timestamp(sent_at, "sentAt") - happened)
    except OverflowError:
        raise Unusable("sentAt: too far from timestamp to correct the clock by") from None


def _timestamp(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise Unusable(f"{name}: must be an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Unusable(f"{name}: not an ISO 8601 timestamp: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        raise Unusable(f"{name}: needs a UTC offset")
    return parsed


def _id(message: dict[str, Any], name: str, required: bool = False) -> str | None:
    value = message.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # the clients send numeric ids as numbers or strings
    if value is None or value == "":
        if required:
            raise Unusable(f"{name}: required")
        return None
    if not isinstance(value, str):
        raise Unusable(f"{name}: must be a string")
    return checked_id(value, name)


def _object(message: dict[str, Any], name: str) -> dict[str, Any]:
    value = message.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Unusable(f"{name}: must be an object")
    return value


def _track(message, message_id, occurred_at):
    name = message.get("event")
    if not isinstance(name, str) or not name.strip():
        raise Unusable("event: required for track (the event's name)")
    properties = _object(message, "properties")
    kind = TRACK_TYPES.get(name.strip().replace("_", " ").lower())
    if kind is None:
        return [_custom(message_id, occurred_at, name, properties)], 1
    event = {
        "event_id": message_id,
        "type": kind,
        "occurred_at": occurred_at,
        "properties": properties,
    }
    if kind in ("order_completed", "order_refunded"):
        event.update(_order_fields(properties, refund=kind == "order_refunded"))
    return [event], 0


def _order_fields(properties: dict[str, Any], refund: bool) -> dict[str, Any]:
    order_id = properties.get("order_id", properties.get("orderId"))
    if isinstance(order_id, int) and not isinstance(order_id, bool):
        order_id = str(order_id)
    if not isinstance(order_id, str) or not order_id:
        raise Unusable("properties.order_id: required for orders and refunds")
    fields = {"order_id": order_id, "amount": _amount(properties, refund)}
    currency = properties.get("currency")
    if currency is not None:
        fields["currency"] = currency.upper() if isinstance(currency, str) else currency
    return fields


def _amount(properties: dict[str, Any], refund: bool) -> Any:
    """See AMOUNT_FIELDS. A refund listing `products` (a partial refund) without an amount
    refunds their price × quantity."""
    for name in AMOUNT_FIELDS:
        if properties.get(name) is not None:
            return properties[name]
    products = properties.get("products")
    if isinstance(products, list) and products:
        return str(sum(_line_value(item, index) for index, item in enumerate(products)))
    what = "refund" if refund else "order"
    raise Unusable(
        f"properties: an {what} needs one of {', '.join(AMOUNT_FIELDS)} or a products list"
    )


def _line_value(item: Any, index: int) -> Decimal:
    where = f"properties.products.{index}"
    if not isinstance(item, dict):
        raise Unusable(f"{where}: must be an object")
    try:
        price = Decimal(str(item.get("price")))
        quantity = Decimal(str(item.get("quantity", 1)))
    except InvalidOperation:
        raise Unusable(f"{where}: price and quantity must be numbers") from None
    if (
        not (price.is_finite() and quantity.is_finite())
        or max(price.adjusted(), quantity.adjusted()) > 12
    ):
        raise Unusable(f"{where}: price and quantity must be finite numbers below 1e12")
    return price * quantity


def _custom(message_id, occurred_at, name, properties):
    return {
        "event_id": message_id,
        "type": "custom",
        "occurred_at": occurred_at,
        "properties": {**properties, "name": name},
    }


def _page(message, message_id, occurred_at):
    properties = dict(_object(message, "properties"))
    if isinstance(message.get("name"), str):
        properties.setdefault("name", message["name"])
    event = {
        "event_id": message_id,
        "type": "session_started",
        "occurred_at": occurred_at,
        "properties": properties,
    }
    return [event], 0


def _identify(message, message_id, occurred_at):
    # RudderStack's clients send identify traits in context.traits only.
    traits = _object(message, "traits") or _object(_object(message, "context"), "traits")
    events = [
        {
            "event_id": message_id,
            "type": "identify",
            "occurred_at": occurred_at,
            "properties": {"traits": traits},
        }
    ]
    for channel, granted in consent_in(traits).items():
        events.append(
            {
                "event_id": f"{message_id}:consent:{channel}",
                "type": "consent_updated",
                "occurred_at": occurred_at,
                "properties": {"channel": channel, "granted": granted, "source": "segment"},
            }
        )
    return events, 0


def consent_in(traits: dict[str, Any]) -> dict[str, bool]:
    """Channel consent stated in identify traits: `consent: {"email": true, "sms": false}`
    (any of email, sms, push, web, profiling), or `email_opt_in`/`sms_opt_in`/`push_opt_in`
    booleans. Anything else in traits is profile data, not consent."""
    stated: dict[str, bool] = {}
    for trait, channel in _OPT_IN_TRAITS.items():
        value = traits.get(trait)
        if isinstance(value, bool):
            stated[channel] = value
    consent = traits.get("consent")
    if consent is not None:
        if not isinstance(consent, dict):
            raise Unusable("traits.consent: must be an object of channel: true|false")
        for channel, value in consent.items():
            if channel not in CONSENT_CHANNELS or not isinstance(value, bool):
                raise Unusable(
                    f"traits.consent.{channel}: channels are {', '.join(CONSENT_CHANNELS)}, "
                    "each true or false"
                )
            stated[channel] = value
    return stated


def _group(message, message_id, occurred_at):
    properties = {"group_id": _id(message, "groupId"), "traits": _object(message, "traits")}
    return [_custom(message_id, occurred_at, "group", properties)], 1


def _alias(message, message_id, occurred_at):
    return [], 0


_EVENTS_OF = {
    "track": _track,
    "identify": _identify,
    "page": _page,
    "screen": _page,
    "alias": _alias,
    "group": _group,
}
