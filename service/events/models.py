"""Tables of the events domain: the append-only event log, orders and stated facts."""

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Index,
    LargeBinary,
    Numeric,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from service.db import metadata

# Wide enough that sums of many maximal amounts (1e12 each) never overflow.
MONEY = Numeric(38, 4)

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

# One row per (customer, order): the completed amount (null while only refunds
# are known, i.e. refunds held for an order that has not arrived) and the sum
# of refunds so far.
orders = Table(
    "orders",
    metadata,
    Column("customer_id", Text, nullable=False),
    Column("order_id", Text, nullable=False),
    Column("amount", MONEY),
    Column("refunded", MONEY, nullable=False, server_default="0"),
    Column("occurred_at", DateTime(timezone=True)),
    Column("day", Date),
    Column("event_id", Text),
    PrimaryKeyConstraint("customer_id", "order_id"),
)

# Stated facts whose latest value matters (consent per channel, CSAT, traits).
customer_facts = Table(
    "customer_facts",
    metadata,
    Column("customer_id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("event_id", Text, nullable=False),
    Column("day", Date, nullable=False),
    Column("value", JSONB, nullable=False),
    PrimaryKeyConstraint("customer_id", "kind", "occurred_at", "event_id"),
)
