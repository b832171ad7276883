"""Alembic environment: async engine (asyncpg), the service's metadata."""

import asyncio

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine

import service.tables  # noqa: F401  (registers every table on the metadata)
from service.db import metadata

config = context.config
target_metadata = metadata


def run_with(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    engine = create_async_engine(config.get_main_option("sqlalchemy.url"))
    async with engine.connect() as connection:
        await connection.run_sync(run_with)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(run_online())
