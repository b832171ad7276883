"""Standard Webhooks v1 signatures: `whsec_` secrets and the `webhook-signature` header."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"
# The specification asks for 24 to 64 random bytes; 32 is HMAC-SHA256's own key size.
SECRET_BYTES = 32


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def fingerprint(secret: str) -> str:
    """Tells two secrets apart in a listing without showing either."""
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:8]


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256>` of `{id}.{timestamp}.{body}`, keyed with the secret's
    decoded bytes (not its text)."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(
    secrets_in_use: list[str], message_id: str, timestamp: int, body: bytes
) -> str:
    """One signature per secret, space-separated: during a rotation a receiver holding
    either the old or the new secret finds one that verifies."""
    return " ".join(signature(secret, message_id, timestamp, body) for secret in secrets_in_use)
