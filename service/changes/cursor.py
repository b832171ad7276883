"""Feed cursors: opaque to clients, stable, and valid by their pattern alone (every string
the API's pattern admits decodes), so a well-formed cursor is never refused."""

from __future__ import annotations

import string

PATTERN = r"^v1\.[0-9a-z]{1,12}$"
_DIGITS = string.digits + string.ascii_lowercase
_PREFIX = "v1."


def encode(seq: int) -> str:
    digits = ""
    while True:
        seq, rest = divmod(seq, 36)
        digits = _DIGITS[rest] + digits
        if not seq:
            return _PREFIX + digits


def decode(cursor: str) -> int:
    """The position of a cursor that matches PATTERN (the route checks it)."""
    return int(cursor.removeprefix(_PREFIX), 36)


def change_id(seq: int) -> str:
    return f"chg_{seq}"
