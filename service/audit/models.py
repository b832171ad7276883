"""The audit log: one row per admin action, appended, never changed."""

from sqlalchemy import BigInteger, Column, DateTime, Identity, Table, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB

from service.db import metadata

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # The API key's name, `cli:<OS user>` or `system`.
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("subject", Text),
    # What was done, never a secret: changed fields, scopes, the version replaced.
    Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    # The API request that did it (its X-Request-Id, as in the logs); null for commands.
    Column("request_id", Text),
)
