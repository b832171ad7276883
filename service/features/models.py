"""Tables derived from the event log: who we know, orders, stated facts, daily buckets.

Maintained online by `upkeep.py` and rebuilt by `recompute.py`."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from service.db import metadata
from service.features.definitions import (
    INTEGER_BUCKET_COLUMNS,
    MONEY_BUCKET_COLUMNS,
    cumulative,
)

# Wide enough that sums of many maximal amounts (1e12 each) never overflow.
MONEY = Numeric(38, 4)

customers = Table(
    "customers",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
    Column("first_seen_day", Date, nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
)

# One row per customer and active day: that day's counts and revenue, and their running
# totals, so that a sum over any span of days is the difference of two rows' totals.
customer_daily = Table(
    "customer_daily",
    metadata,
    Column("customer_id", Text, nullable=False),
    Column("day", Date, nullable=False),
    *(Column(name, Integer, nullable=False, server_default="0") for name in INTEGER_BUCKET_COLUMNS),
    *(Column(name, MONEY, nullable=False, server_default="0") for name in MONEY_BUCKET_COLUMNS),
    *(
        Column(cumulative(name), BigInteger, nullable=False, server_default="0")
        for name in INTEGER_BUCKET_COLUMNS
    ),
    *(
        Column(cumulative(name), MONEY, nullable=False, server_default="0")
        for name in MONEY_BUCKET_COLUMNS
    ),
    PrimaryKeyConstraint("customer_id", "day"),
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
    # A customer's first and last counted order up to a day, read in index order.
    Index("orders_customer_day", "customer_id", "day", "occurred_at"),
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
    # The source of the event that stated it (consent history shows where consent came from).
    Column("source", Text),
    PrimaryKeyConstraint("customer_id", "kind", "occurred_at", "event_id"),
)

# One row once raw events have been purged (SCORER_EVENT_RETENTION_DAYS): events of days
# before `purged_before` may be gone, so the derived rows of those days are the only record
# of them (recompute keeps them) and events of those days can no longer be deduplicated
# (ingest refuses them). The horizon only moves forward.
event_retention = Table(
    "event_retention",
    metadata,
    Column("id", Boolean, primary_key=True, server_default=text("true")),
    Column("purged_before", Date, nullable=False),
    Column("retention_days", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("id", name="event_retention_one_row"),
)
