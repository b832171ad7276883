"""The lag of the NATS consumers, for the servers' /metrics (the consumers run elsewhere
and record their status in `consumer_status`)."""

from __future__ import annotations

import asyncpg

from service.ops.metrics import CONSUMER_ACK_PENDING, CONSUMER_PENDING, CONSUMER_STATUS_AGE

_STATUS = """
SELECT name, pending, ack_pending, extract(epoch FROM now() - updated_at) AS age
FROM consumer_status
"""


async def refresh_gauges(conn: asyncpg.Connection) -> None:
    for row in await conn.fetch(_STATUS):
        CONSUMER_PENDING.labels(consumer=row["name"]).set(row["pending"])
        CONSUMER_ACK_PENDING.labels(consumer=row["name"]).set(row["ack_pending"])
        CONSUMER_STATUS_AGE.labels(consumer=row["name"]).set(float(row["age"]))
