"""Opaque, stable feed cursors: a versioned prefix and the last seq seen, base64url."""

from __future__ import annotations

import base64
import binascii

_PREFIX = "c1:"


class BadCursor(ValueError):
    pass


def encode(seq: int) -> str:
    return base64.urlsafe_b64encode(f"{_PREFIX}{seq}".encode()).decode().rstrip("=")


def decode(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadCursor("not a cursor this service issued") from None
    if not text.startswith(_PREFIX) or not text[len(_PREFIX) :].isdigit():
        raise BadCursor("not a cursor this service issued")
    seq = int(text[len(_PREFIX) :])
    if seq > 2**63 - 1:
        raise BadCursor("not a cursor this service issued")
    return seq


def change_id(seq: int) -> str:
    return f"chg_{seq}"
