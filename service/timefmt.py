"""RFC 3339 timestamps, strictly: a string with date, time and offset (docs/time.md)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, WithJsonSchema

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})?$"
)
EARLIEST_YEAR, LATEST_YEAR = 1970, 9998
# What the validators below accept, for the JSON Schema: years 1970-9998, offset required.
TIMESTAMP_PATTERN = (
    r"^(19[7-9]\d|[2-8]\d{3}|9[0-8]\d{2}|99[0-8]\d)-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}"
    r"(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)


def _require_rfc3339(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("must be an RFC 3339 timestamp with offset, e.g. 2026-01-31T12:00:00Z")
    return value


def _in_range(value: datetime) -> datetime:
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValueError(f"must be between the years {EARLIEST_YEAR} and {LATEST_YEAR}")
    return value


Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_require_rfc3339),
    AfterValidator(_in_range),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN}),
]
"""An offset-aware RFC 3339 timestamp; naive ones fail with 'should have timezone info'."""
