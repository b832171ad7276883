"""Response shapes of the features domain, generated from the feature definitions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, create_model

from service.features.definitions import FEATURE_FIELDS, FeatureField


class Consent(BaseModel):
    """Latest stated consent per channel; null means never stated."""

    email: bool | None
    sms: bool | None
    push: bool | None
    web: bool | None
    profiling: bool | None


_TYPES: dict[str, type] = {
    "timestamp": datetime,
    "days": int,
    "count": int,
    "money": float,
    "ratio": float,
    "rating": int,
    "consent": Consent,
}


def _annotation(feature: FeatureField) -> tuple[Any, Any]:
    kind = _TYPES[feature.kind]
    annotation = kind | None if feature.nullable else kind
    if feature.description is None:
        return annotation, ...
    return annotation, Field(description=feature.description)


Features = create_model(
    "Features",
    customer_id=(str, ...),
    as_of=(datetime, ...),
    **{feature.name: _annotation(feature) for feature in FEATURE_FIELDS},
)
"""A customer's feature row as the API returns it (and as `read_features` builds it)."""
