"""FastAPI dependencies: settings, database connections and scoped API-key auth."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import asyncpg
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.access.service import ApiKey


def get_engine(request: Request) -> AsyncEngine:
    return request.app.state.engine


async def get_connection(
    engine: Annotated[AsyncEngine, Depends(get_engine)],
) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as conn:
        yield conn


async def get_driver(request: Request) -> AsyncIterator[asyncpg.Connection]:
    async with request.app.state.pool.acquire() as conn:
        yield conn


_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer <key>`")


def require_scope(scope: str):
    """401 without a valid key, 403 when the key lacks `scope` (admin has every scope)."""

    async def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> ApiKey:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise HTTPException(
                401,
                "missing API key: send Authorization: Bearer <key>",
                headers={"WWW-Authenticate": "Bearer"},
            )
        key = await request.app.state.key_verifier.verify(
            request.app.state.pool, credentials.credentials
        )
        if key is None:
            raise HTTPException(
                401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"}
            )
        if not key.allows(scope):
            raise HTTPException(403, f"API key lacks the '{scope}' scope")
        return key

    return check


Driver = Annotated[asyncpg.Connection, Depends(get_driver)]
Connection = Annotated[AsyncConnection, Depends(get_connection)]
