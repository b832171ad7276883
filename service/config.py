"""Every setting of the service, read from the environment (SCORER_* and DATABASE_URL).

This is the only module that reads the environment: everything else is handed a
`Settings` (or one of its sections), so `create_app(settings)` and the CLI commands are
fully injectable. Sections map to variables by prefix: `nbo.epsilon` is
`SCORER_NBO_EPSILON`, `pcltv.tier_high` is `SCORER_PCLTV_TIER_HIGH`.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.vocabulary import ValueTiers

_ORIGIN = re.compile(r"^https?://[^/\s]+$")


def parse_origins(text: str) -> list[str]:
    """`a, b` or `["a", "b"]` -> the origins; each `*` or scheme://host[:port], no path."""
    origins = json.loads(text) if text.lstrip().startswith("[") else text.split(",")
    origins = [origin.strip() for origin in origins if origin.strip()]
    for origin in origins:
        if origin != "*" and not _ORIGIN.match(origin):
            raise ValueError(f"CORS origin {origin!r} is not * nor scheme://host[:port]")
    return origins


class ChurnSettings(BaseModel):
    horizon_days: int = Field(default=90, ge=1, description="Training horizon of churn.")


class PcltvSettings(BaseModel):
    horizon_days: int = Field(default=365, ge=1, description="Training horizon of pCLTV.")
    margin: float = Field(default=1.0, description="Share of revenue that is margin (training).")
    discount_rate: float = Field(default=0.0, description="Annual discount rate (training).")
    tier_high: float = Field(default=500.0, description="pCLTV above this: tier high.")
    tier_medium: float = Field(default=200.0, description="From this to high: medium.")

    def tiers(self) -> ValueTiers:
        return ValueTiers(self.tier_high, self.tier_medium)


class ChangeSettings(BaseModel):
    """When a rescoring is a change worth telling, and how long the feed keeps it."""

    churn_delta: float = Field(
        default=0.05, gt=0, le=1, description="Churn probability move that is `scores.changed`."
    )
    pcltv_ratio: float = Field(
        default=0.10, gt=0, description="Relative pCLTV move that is `scores.changed`."
    )
    retention_days: int = Field(default=30, ge=1, description="Days the change feed keeps.")


class InsightSettings(BaseModel):
    """How often the background work refreshes today's insight snapshots and checks alerts."""

    refresh_seconds: float = Field(
        default=300.0, gt=0, description="Refresh of today's insight snapshots, seconds."
    )
    alert_seconds: float = Field(
        default=60.0, gt=0, description="Evaluation of the insight alerts, seconds."
    )


class NboSettings(BaseModel):
    """Knobs of the next-best-offer policy."""

    model_config = ConfigDict(frozen=True)

    epsilon: float = Field(
        default=0.05, ge=0, le=1, description="Exploration probability (uniform among eligible)."
    )
    control_share: float = Field(
        default=0.10, ge=0, lt=1, description="Share of customers held out with no offer."
    )
    frequency_cap: int = Field(default=3, ge=0, description="Most offers per customer per window.")
    frequency_window_days: int = Field(default=30, ge=1, description="Window of the cap, days.")
    min_expected_value: float = Field(
        default=0.0, description="Offers must beat this expected value (no offer is worth 0)."
    )
    control_salt: str = Field(
        default="nbo-control-v1",
        min_length=1,
        description="Seeds the control-group hash; changing it reshuffles the groups.",
    )


# The retry schedule of the Standard Webhooks specification: the delay before each attempt.
STANDARD_RETRY_SCHEDULE = "0,5,300,1800,7200,18000,36000,50400,72000,86400"


def parse_schedule(text: str) -> tuple[float, ...]:
    """`0,5,300` -> (0.0, 5.0, 300.0): seconds before each attempt, at least one."""
    try:
        delays = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ValueError("must be comma-separated seconds, e.g. 0,5,300") from None
    if not all(0 <= delay <= 7 * 86400 for delay in delays):
        raise ValueError("each delay must be from 0 to 604800 seconds")
    return delays


class WebhookSettings(BaseModel):
    """Outbound webhooks (service.webhooks)."""

    model_config = ConfigDict(frozen=True)

    allow_private_targets: bool = Field(
        default=False,
        description="Allow webhook URLs that resolve to private, loopback, link-local, "
        "multicast or reserved addresses (tests, closed networks).",
    )
    retry_schedule: str = Field(
        default=STANDARD_RETRY_SCHEDULE,
        description="Seconds before each delivery attempt, comma-separated; after the last "
        "one fails the delivery is failed.",
    )
    timeout_seconds: float = Field(default=15.0, gt=0, description="Per delivery attempt.")
    poll_seconds: float = Field(
        default=0.2, gt=0, description="How often an idle dispatcher looks for work."
    )
    concurrency: int = Field(
        default=16, ge=1, description="Deliveries in flight at once, per process."
    )

    @field_validator("retry_schedule")
    @classmethod
    def _known_schedule(cls, value: str) -> str:
        parse_schedule(value)
        return value

    @property
    def schedule(self) -> tuple[float, ...]:
        return parse_schedule(self.retry_schedule)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SCORER_",
        extra="ignore",
        env_nested_delimiter="_",
        env_nested_max_split=1,
    )

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "SCORER_DATABASE_URL"),
        description="postgresql://… URL; unset means the embedded PostgreSQL under data_dir.",
    )
    data_dir: Path = Field(default=Path(".scorer-data"), description="Embedded PostgreSQL home.")
    timezone: str = Field(default="UTC", description="Calendar used for daily feature buckets.")
    currency: str = Field(default="USD", description="The one ISO 4217 currency accepted.")
    bootstrap_api_key: str | None = Field(default=None, description="Ensured as an admin key.")
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    log_level: str = "INFO"
    max_batch_events: int = 1000
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1, description="Body cap of POST /v1/events (also inflated)."
    )
    nats_url: str = Field(
        default="nats://127.0.0.1:4222", description="NATS server of `scorer consume`."
    )
    nats_stream: str = Field(default="events", description="JetStream stream to consume.")
    nats_subject: str = Field(default="events.>", description="Subject of the events.")
    nats_durable: str = Field(
        default="scorer", description="Durable consumer name; consumers sharing it share work."
    )
    nats_batch: int = Field(default=500, ge=1, le=5000, description="Messages per fetch.")
    shopify_test_orders: bool = Field(
        default=False, description="Store Shopify orders marked test: true (else ignored)."
    )
    stripe_customer_metadata_key: str = Field(
        default="customer_id",
        min_length=1,
        description="Stripe metadata key holding our customer id (else the Stripe customer).",
    )
    max_segment_batch_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1,
        description="Body cap of POST /v1/batch (also inflated): RudderStack sends up to 4 MB.",
    )
    # Request limits (service.ops.limits): past them 413, 431 or 408 before any route runs.
    max_body_bytes_default: int = Field(
        default=64 * 1024, ge=1, description="Body cap of every other route (also inflated)."
    )
    max_headers: int = Field(default=100, ge=1, description="Most request headers; past: 431.")
    max_header_bytes: int = Field(
        default=16 * 1024, ge=1, description="Most bytes of all request headers; past: 431."
    )
    body_read_seconds: float = Field(
        default=10.0, gt=0, description="Longest wait for a whole request body; past: 408."
    )
    future_tolerance_seconds: int = 300
    db_pool_size: int = 16
    # Deadlines and overload: no request waits longer than its deadline, and a worker sheds
    # load it cannot serve in time instead of queueing it.
    read_deadline_seconds: float = Field(
        default=2.0, gt=0, description="Deadline of reads and scoring; also statement_timeout."
    )
    write_deadline_seconds: float = Field(
        default=10.0, gt=0, description="Deadline of ingest and other writes."
    )
    export_deadline_seconds: float = Field(
        default=300.0, gt=0, description="Deadline of a streamed customer export."
    )
    db_acquire_timeout_seconds: float = Field(
        default=1.0, gt=0, description="Longest wait for a free database connection."
    )
    db_lock_timeout_seconds: float = Field(
        default=1.0, gt=0, description="Longest wait for a row or table lock (lock_timeout)."
    )
    db_connect_timeout_seconds: float = Field(
        default=2.0, gt=0, description="Longest wait to open a database connection."
    )
    max_requests_in_flight: int = Field(
        default=64, ge=1, description="Per worker; past it requests get a fast 503."
    )
    rate_limit_per_second: float = Field(
        default=0.0, ge=0, description="Default requests/s per API key and worker; 0: none."
    )
    shutdown_timeout_seconds: int = 30
    model_poll_seconds: float = Field(default=2.0, description="Registry poll for hot reload.")
    docs_enabled: bool = Field(
        default=True, description="Serve /docs, /redoc and /openapi.json; false: all 404."
    )
    cors_origins: str | None = Field(
        default=None,
        description="Browser origins allowed by CORS, comma-separated or a JSON list "
        '(e.g. https://crm.example.com or ["*"]); unset: CORS off.',
    )
    background_work: bool = Field(
        default=True,
        description="Run the scoring loop, webhook delivery and feed retention in `scorer serve`.",
    )
    scoring_batch: int = Field(
        default=500, ge=1, le=10_000, description="Customers rescored per transaction."
    )
    event_retention_days: int | None = Field(
        default=None,
        ge=1,
        description="Days of raw events kept (by their day in SCORER_TIMEZONE); older ones are "
        "purged, their features kept in the derived tables. Unset: kept forever.",
    )
    drift_psi_threshold: float = Field(
        default=0.2,
        gt=0,
        description="PSI above which a feature or prediction is named drifted in "
        "GET /v1/insights/model-health (0.1: watch, 0.2: act, by convention).",
    )
    churn: ChurnSettings = ChurnSettings()
    changes: ChangeSettings = ChangeSettings()
    insights: InsightSettings = InsightSettings()
    pcltv: PcltvSettings = PcltvSettings()
    nbo: NboSettings = NboSettings()
    webhook: WebhookSettings = WebhookSettings()

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        ZoneInfo(value)
        return value

    @field_validator("currency")
    @classmethod
    def _upper_currency(cls, value: str) -> str:
        return value.upper()

    @field_validator("cors_origins")
    @classmethod
    def _known_origins(cls, value: str | None) -> str | None:
        if value is not None:
            parse_origins(value)
        return value

    @property
    def cors_origin_list(self) -> list[str]:
        return parse_origins(self.cors_origins) if self.cors_origins else []

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@lru_cache
def get_settings() -> Settings:
    return Settings()
