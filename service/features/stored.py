"""A feature row as JSON and back, for rows kept beside materialized scores: the
timestamps return as the same aware datetimes, so a row read back equals the row
computed."""

from __future__ import annotations

import json
from datetime import datetime

from service.features.definitions import FEATURE_FIELDS

_TIMESTAMPS = tuple(f.name for f in FEATURE_FIELDS if f.kind == "timestamp")
_FIELDS = tuple(f.name for f in FEATURE_FIELDS)


def features_json(row: dict) -> str:
    """Every feature field but `customer_id` and `as_of` (the read supplies those)."""
    stored = {name: row[name] for name in _FIELDS}
    for name in _TIMESTAMPS:
        if stored[name] is not None:
            stored[name] = stored[name].isoformat()
    return json.dumps(stored)


def features_from_json(text: str, customer_id: str, as_of: datetime) -> dict:
    stored = json.loads(text)
    for name in _TIMESTAMPS:
        if stored[name] is not None:
            stored[name] = datetime.fromisoformat(stored[name])
    return {"customer_id": customer_id, "as_of": as_of, **stored}
