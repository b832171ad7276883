"""Tables of the events domain: the append-only event log, the rescoring outbox and the
tombstones of erased customers."""

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Identity,
    Index,
    LargeBinary,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from service.db import metadata
from service.features.models import MONEY

events = Table(
    "events",
    metadata,
    Column("customer_id", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("day", Date, nullable=False),
    Column("order_id", Text),
    Column("amount", MONEY),
    Column("properties", JSONB, nullable=False),
    Column("fingerprint", LargeBinary, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # The way in (api, import, segment, shopify, stripe, nats); NULL for events stored
    # before sources were recorded.
    Column("source", Text),
    PrimaryKeyConstraint("customer_id", "event_id"),
    # Idempotency is global by event_id. Under Citus this becomes a ledger
    # table distributed by event_id; on one node a unique index is enough.
    Index("events_event_id_key", "event_id", unique=True),
    # The retention purge walks the oldest days; also the newest day of the data.
    Index("events_day", "day"),
)

# One row per accepted write of a customer, inserted in the write's transaction and
# deleted by the scoring loop in the transaction that stores the new scores: a customer
# with a row here has scores that may be stale. Append-only, so writers never wait.
score_outbox = Table(
    "score_outbox",
    metadata,
    Column("customer_id", Text, nullable=False),
    Column("id", BigInteger, Identity(), nullable=False),
    Column("marked_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("customer_id", "id"),
    Index("score_outbox_id", "id"),
)

# Keyed hashes (HMAC-SHA256 with the `tombstones` secret) of erased customers' ids: the
# write path counts their events as duplicates, so a replay cannot bring them back, and no
# id is kept in clear.
erased_customers = Table(
    "erased_customers",
    metadata,
    Column("id_hash", LargeBinary, primary_key=True),
    Column("erased_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Random keys the service makes for itself, kept where every process finds the same one.
privacy_secrets = Table(
    "privacy_secrets",
    metadata,
    Column("name", Text, primary_key=True),
    Column("secret", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
