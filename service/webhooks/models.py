"""Tables of the webhooks domain."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from service.db import metadata

# A subscription. `fanned_out_seq` is the last change of the feed (score_changes.seq) that
# has been turned into deliveries for it; the feed is commit-ordered, so reading on from
# there misses nothing. Secrets are kept as issued: signing needs the secret itself.
# `previous_secret` still signs (alongside `secret`) until `previous_secret_expires_at`.
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Text, primary_key=True),
    Column("url", Text, nullable=False),
    Column("description", Text),
    Column("event_types", ARRAY(Text), nullable=False),
    Column("filters", JSONB, nullable=False),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("disabled_reason", Text),
    Column("secret", Text, nullable=False),
    Column("previous_secret", Text),
    Column("previous_secret_expires_at", DateTime(timezone=True)),
    Column("fanned_out_seq", BigInteger, nullable=False),
    # Set from a 429 or 503 with Retry-After: none of the endpoint's deliveries go out before.
    Column("throttled_until", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# One change to send to one endpoint. The id is the `webhook-id` of every attempt, and
# `payload` the exact body, so retries and redeliveries are byte-identical. A claimed
# delivery is leased (`leased_until`) while its attempt is in flight: a process that dies
# mid-attempt leaves it to be claimed again once the lease has passed.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Text, primary_key=True),
    Column(
        "endpoint_id",
        Text,
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("change_seq", BigInteger, nullable=False),
    Column("type", Text, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("payload", Text, nullable=False),
    # Whose change it carries, so that erasing a customer finds its pending payloads.
    Column("customer_id", Text),
    Column("status", Text, nullable=False, server_default="pending"),
    # All attempts ever made, and those since it was last (re)queued (its place in the
    # retry schedule).
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("round_attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("leased_until", DateTime(timezone=True)),
    Column("last_attempt_at", DateTime(timezone=True)),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("attempt_log", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("delivered_at", DateTime(timezone=True)),
    UniqueConstraint("endpoint_id", "change_seq", name="webhook_deliveries_endpoint_change_key"),
    Index(
        "webhook_deliveries_due",
        "endpoint_id",
        "next_attempt_at",
        postgresql_where=text("status = 'pending'"),
    ),
    Index(
        "webhook_deliveries_customer",
        "customer_id",
        postgresql_where=text("customer_id IS NOT NULL"),
    ),
)
