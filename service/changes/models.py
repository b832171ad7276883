"""The change feed: one row per change of a customer's scores (or, later, of the customer).

`seq` is assigned under one transaction lock held until commit (see `service.record`), so
rows become visible in `seq` order and a reader that has passed `seq` N never meets a
row below N later: the feed has no gaps to skip.
"""

from sqlalchemy import BigInteger, Column, DateTime, Index, Sequence, Table, Text
from sqlalchemy.dialects.postgresql import JSONB

from service.db import metadata

change_seq = Sequence("score_changes_seq", metadata=metadata)

score_changes = Table(
    "score_changes",
    metadata,
    Column("seq", BigInteger, primary_key=True),
    Column("type", Text, nullable=False),
    # NULL for `customer.erased`, which names the erasure instead (`erasure_id`).
    Column("customer_id", Text),
    Column("erasure_id", Text),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("before", JSONB),
    Column("after", JSONB),
    Index("score_changes_customer", "customer_id", "seq"),
    Index("score_changes_occurred_at", "occurred_at"),
)
