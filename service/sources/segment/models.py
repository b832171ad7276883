"""Tables of the Segment source: identity links and the events of not-yet-known visitors."""

from sqlalchemy import (
    Column,
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

# One anonymous id belongs to one customer, for good: the first link wins.
identity_links = Table(
    "identity_links",
    metadata,
    Column("anonymous_id", Text, primary_key=True),
    Column("customer_id", Text, nullable=False),
    Column("message_id", Text, nullable=False),
    Column("linked_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("identity_links_customer_id", "customer_id"),
)

# Events of an anonymous id that no customer is linked to yet, held (validated, in
# POST /v1/events shape without customer_id) until a link releases them into the customer's
# event log.
anonymous_events = Table(
    "anonymous_events",
    metadata,
    Column("anonymous_id", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("event", JSONB, nullable=False),
    Column("message", JSONB, nullable=False),
    Column("fingerprint", LargeBinary, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("anonymous_id", "event_id"),
    Index("anonymous_events_event_id_key", "event_id", unique=True),
)
