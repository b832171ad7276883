"""Prometheus metrics (DESIGN §10)."""

from prometheus_client import Counter, Gauge, Histogram

REQUEST_SECONDS = Histogram(
    "scorer_request_duration_seconds",
    "HTTP request latency by route template.",
    ["method", "route", "status"],
    buckets=(0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
EVENTS_INGESTED = Counter("scorer_events_ingested_total", "Events stored.")
EVENTS_DUPLICATE = Counter("scorer_events_duplicate_total", "Events already stored.")
EVENTS_REJECTED = Counter("scorer_events_rejected_total", "Events rejected as invalid.")
MODEL_VERSION = Gauge(
    "scorer_model_version_info", "Active model version (value 1).", ["model", "version"]
)
