"""Tables of the events domain: the append-only event log."""

from sqlalchemy import (
    Column,
    Date,
    DateTime,
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
    PrimaryKeyConstraint("customer_id", "event_id"),
    # Idempotency is global by event_id. Under Citus this becomes a ledger
    # table distributed by event_id; on one node a unique index is enough.
    Index("events_event_id_key", "event_id", unique=True),
)
