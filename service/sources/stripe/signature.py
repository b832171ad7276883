"""`Stripe-Signature` verification, written here to keep the Stripe SDK out of the server;
tests check it agrees with the SDK's `Webhook.construct_event`."""

from __future__ import annotations

import hashlib
import hmac

TOLERANCE_SECONDS = 300


def verify(body: bytes, header: str, secrets: list[str], now: float) -> str | None:
    """None when `header` (`t=<unix time>,v1=<hex HMAC-SHA256 of "{t}.{body}">`, several v1
    allowed) carries a signature by one of `secrets` made within the tolerance; else what is
    wrong. Like Stripe's SDK, only v1 counts and a signature older than 300 s is refused."""
    timestamp, signatures = None, []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            timestamp = value
        elif name == "v1":
            signatures.append(value)
    if timestamp is None or not timestamp.isdigit():
        return "Stripe-Signature: no timestamp (t=...)"
    if not signatures:
        return "Stripe-Signature: no v1 signature"
    if int(timestamp) < now - TOLERANCE_SECONDS:
        return f"Stripe-Signature: older than {TOLERANCE_SECONDS} s (a replay, or a slow clock)"
    signed = timestamp.encode() + b"." + body
    for secret in secrets:
        expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        if any(hmac.compare_digest(expected, candidate) for candidate in signatures):
            return None
    return "Stripe-Signature: no signature matches the body and an endpoint secret"
