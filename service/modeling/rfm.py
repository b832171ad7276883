"""The RFM columns the segment model bins: which model features, at which positions."""

from service.features.vector import MODEL_FEATURES

RFM_FEATURES = ("recency_days", "orders_total", "revenue_total")
RFM_COLUMNS = [MODEL_FEATURES.index(name) for name in RFM_FEATURES]
