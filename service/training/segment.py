"""RFM segments: quantile scores 1–5 learnt at training time, named by a fixed rule table.

The thresholds are a scikit-learn KBinsDiscretizer (quantile strategy) exported to
ONNX. Recency scores are reversed (recent = 5) by the serving graph, and the names come
from the RFM grid of `service.vocabulary` (documented in docs/scores.md). Customers
without a counted order have no R/F/M position: they are "New Customers" while their
tenure is within NEW_CUSTOMER_DAYS, else "Lost", with scores 1/1/1.
"""

from __future__ import annotations

import numpy as np
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.preprocessing import KBinsDiscretizer

from service.modeling.rfm import RFM_COLUMNS, RFM_FEATURES

NEW_CUSTOMER_DAYS = 30


def fit_rfm(X: np.ndarray) -> KBinsDiscretizer:
    """Quantile bins on buyers only (non-buyers are handled by rule)."""
    rfm = X[:, RFM_COLUMNS].astype(np.float64)
    buyers = rfm[~np.isnan(rfm[:, 0])]
    # Equal quantile edges (many customers with one order) are merged by scikit-learn;
    # the serving graph spreads the remaining bins over 1..5 (scoring/graph.py).
    binner = KBinsDiscretizer(n_bins=5, encode="ordinal", strategy="quantile")
    binner.fit(buyers)
    return binner


def to_onnx(binner: KBinsDiscretizer):
    return convert_sklearn(
        binner,
        initial_types=[("rfm", FloatTensorType([None, len(RFM_FEATURES)]))],
        target_opset={"": 15, "ai.onnx.ml": 3},
    )
