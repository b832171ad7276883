"""The numeric model input of a feature row, and the row of a customer never seen: both
derived from the feature definitions, for training and serving alike."""

from __future__ import annotations

import operator
from collections.abc import Iterable
from datetime import datetime

import numpy as np

from service.features.definitions import FEATURE_FIELDS, MODEL_CONSENT_CHANNEL
from service.vocabulary import CONSENT_CHANNELS

_TOP_LEVEL_INPUTS = tuple(feature.name for feature in FEATURE_FIELDS if feature.in_model)
MODEL_FEATURES: tuple[str, ...] = (
    *_TOP_LEVEL_INPUTS,
    f"consent_{MODEL_CONSENT_CHANNEL}",
)

_TOP_LEVEL = operator.itemgetter(*_TOP_LEVEL_INPUTS)


def feature_matrix(rows: Iterable[dict]) -> np.ndarray:
    """float32 rows in MODEL_FEATURES order; unknowns (no orders, never stated: None) become
    NaN, which the tree models route as missing."""
    return np.array(
        [[*_TOP_LEVEL(row), row["consent"][MODEL_CONSENT_CHANNEL]] for row in rows],
        dtype=np.float32,
    ).reshape(-1, len(MODEL_FEATURES))


def cold_start_features(customer_id: str | None, as_of: datetime) -> dict:
    """What a customer we have never seen looks like to the models: no history at all."""
    row: dict = {"customer_id": customer_id, "as_of": as_of}
    row.update((feature.name, feature.cold_start) for feature in FEATURE_FIELDS)
    row["consent"] = dict.fromkeys(CONSENT_CHANNELS)
    return row
