"""Tables of the model runtime: the registry of model versions."""

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    LargeBinary,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from service.db import metadata

model_registry = Table(
    "model_registry",
    metadata,
    Column("name", Text, nullable=False),
    Column("version", Text, nullable=False),
    Column("manifest", JSONB, nullable=False),
    Column("model", LargeBinary, nullable=False),
    Column("explainer", Text),
    Column("active", Boolean, nullable=False, server_default="false"),
    Column("registered_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("activated_at", DateTime(timezone=True)),
    PrimaryKeyConstraint("name", "version"),
)
