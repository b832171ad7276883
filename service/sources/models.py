"""Tables of the sources domain."""

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from service.db import metadata

# What a source sent that could not be stored: kept with the reason, never dropped. A
# message sent again while it still cannot be used updates its row (`attempts`), so client
# retries do not pile up copies.
dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("source", Text, nullable=False),
    Column("external_id", Text),
    Column("customer_id", Text),
    Column("reason", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="1"),
    Column("first_seen_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_seen_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index(
        "dead_letters_source_external_id_key",
        "source",
        "external_id",
        unique=True,
        postgresql_where=text("external_id IS NOT NULL"),
    ),
    Index("dead_letters_customer", "customer_id", postgresql_where=text("customer_id IS NOT NULL")),
)

# The signing secrets of shop platforms (Shopify app secrets, Stripe endpoint secrets). They
# are kept as given because verifying an HMAC needs the secret itself; nothing lists them.
# Several rows for one account are the rotation: any of them verifies.
source_secrets = Table(
    "source_secrets",
    metadata,
    Column("id", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("account", Text, nullable=False),
    Column("secret", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("source_secrets_kind_account", "kind", "account"),
)

# Which customer a platform's order belongs to, for refunds that name only the order
# (Shopify's refunds/create, Stripe's refund.created).
source_orders = Table(
    "source_orders",
    metadata,
    Column("source", Text, primary_key=True),
    Column("order_id", Text, primary_key=True),
    Column("customer_id", Text, nullable=False),
    Index("source_orders_customer", "customer_id"),
)

# What each `scorer consume` (by durable name) last saw of its JetStream consumer, so that
# the servers' /metrics can show the lag of consumers running elsewhere.
consumer_status = Table(
    "consumer_status",
    metadata,
    Column("name", Text, primary_key=True),
    Column("stream", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("pending", BigInteger, nullable=False),
    Column("ack_pending", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
