"""Tables of the features domain: who we know, and exact daily buckets."""

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Integer,
    PrimaryKeyConstraint,
    Table,
    Text,
)

from service.db import metadata
from service.events.models import MONEY
from service.features.definitions import INTEGER_BUCKET_COLUMNS, MONEY_BUCKET_COLUMNS

customers = Table(
    "customers",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
    Column("first_seen_day", Date, nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
)

customer_daily = Table(
    "customer_daily",
    metadata,
    Column("customer_id", Text, nullable=False),
    Column("day", Date, nullable=False),
    *(Column(name, Integer, nullable=False, server_default="0") for name in INTEGER_BUCKET_COLUMNS),
    *(Column(name, MONEY, nullable=False, server_default="0") for name in MONEY_BUCKET_COLUMNS),
    PrimaryKeyConstraint("customer_id", "day"),
)
