"""API keys, stored only as SHA-256 hashes."""

from sqlalchemy import ARRAY, Column, DateTime, Double, Table, Text, func

from service.db import metadata

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_hash", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("prefix", Text, nullable=False),
    Column("scopes", ARRAY(Text), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True)),
    # Requests a second per worker; null: the default (SCORER_RATE_LIMIT_PER_SECOND).
    Column("rate_limit_per_second", Double),
    # After it the key is refused (401); null: never.
    Column("expires_at", DateTime(timezone=True)),
)
