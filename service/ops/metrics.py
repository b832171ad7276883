"""Prometheus metrics: request latency by route, ingest counts, models and predictions,
webhook deliveries."""

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
SEGMENT_MESSAGES = Counter(
    "scorer_segment_events_total",
    "Events from Segment-compatible calls, by outcome (custom: stored under an unknown "
    "event name).",
    ["outcome"],
)
WEBHOOKS_RECEIVED = Counter(
    "scorer_source_webhooks_total",
    "Verified Shopify and Stripe webhook deliveries, by outcome (stored, ignored).",
    ["source", "outcome"],
)
WEBHOOKS_REFUSED = Counter(
    "scorer_source_webhooks_refused_total",
    "Webhook deliveries refused for a missing, unknown or wrong signature (401).",
    ["source"],
)
CONSUMER_PENDING = Gauge(
    "scorer_nats_consumer_pending",
    "Messages in the stream not yet delivered to the consumer (its lag).",
    ["consumer"],
)
CONSUMER_ACK_PENDING = Gauge(
    "scorer_nats_consumer_ack_pending",
    "Messages delivered to the consumer and not yet acknowledged (being stored).",
    ["consumer"],
)
CONSUMER_STATUS_AGE = Gauge(
    "scorer_nats_consumer_status_age_seconds",
    "Seconds since the consumer last recorded its status (large: it is not running).",
    ["consumer"],
)
WEBHOOK_DELIVERIES = Counter(
    "scorer_webhook_deliveries_total",
    "Webhook delivery attempts by outcome: delivered (2xx), retrying (another attempt is "
    "scheduled), failed (the last attempt of the schedule failed), gone (410: the webhook "
    "was disabled).",
    ["outcome"],
)
WEBHOOK_DELIVERY_LATENCY = Histogram(
    "scorer_webhook_delivery_latency_seconds",
    "From a change's occurred_at to its first 2xx from a webhook receiver.",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400),
)
WEBHOOK_DELIVERIES_PENDING = Gauge(
    "scorer_webhook_deliveries_pending", "Webhook deliveries still to be sent (all processes)."
)
DEAD_LETTERS_STORED = Gauge(
    "scorer_dead_letters", "Dead letters held in the database, by source.", ["source"]
)
MODEL_VERSION = Gauge(
    "scorer_model_version_info", "Active model version (value 1).", ["model", "version"]
)
CHURN_PROBABILITY = Histogram(
    "scorer_churn_probability",
    "Served churn probabilities.",
    buckets=(0.1, 0.2, 0.33, 0.5, 0.66, 0.8, 0.9, 1.0),
)
PCLTV_VALUE = Histogram(
    "scorer_pcltv_value",
    "Served pCLTV values (currency units).",
    buckets=(0, 50, 100, 200, 500, 1000, 2000, 5000, 10000),
)
SEGMENTS_SERVED = Counter("scorer_segments_total", "Served segments.", ["segment"])
SCORE_LAG_SECONDS = Histogram(
    "scorer_score_lag_seconds",
    "From an accepted write's transaction to its customer's fresh stored scores.",
    buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1, 2, 5, 10, 30, 60),
)
CUSTOMERS_RESCORED = Counter(
    "scorer_customers_rescored_total",
    "Customers whose stored scores were refreshed, by why (written, sweep: day rollover or "
    "new models).",
    ["reason"],
)
CHANGES_RECORDED = Counter(
    "scorer_changes_recorded_total", "Change feed records written, by type.", ["type"]
)
OUTBOX_PENDING = Gauge(
    "scorer_score_outbox_pending", "Writes whose customers are not yet rescored."
)
SCORE_READS = Counter(
    "scorer_score_reads_total",
    "Scores served, by where from: stored (the fresh materialized row) or computed.",
    ["source"],
)
