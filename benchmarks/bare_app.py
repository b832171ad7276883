"""Baseline for the feature-read benchmark: the thinnest FastAPI + asyncpg endpoint.

One route, one primary-key lookup on the service's own `customers` table, no
auth, no middleware, no logging. It answers on the same path as the service
(`/v1/customers/{customer_id}/features`) so the load generator sends
byte-for-byte the same requests to both.

    BARE_DATABASE_URL=postgresql://... uvicorn --app-dir benchmarks bare_app:app --workers 1

`BARE_POOL_SIZE` (default 10, the service's default `SCORER_DB_POOL_SIZE`)
sizes the pool per worker.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI, HTTPException, Request


def _dsn() -> str:
    url = os.environ.get("BARE_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError("set BARE_DATABASE_URL (or DATABASE_URL)")
    scheme, sep, rest = url.partition("://")
    return f"postgresql{sep}{rest}" if scheme.startswith("postgresql+") else url


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    size = int(os.environ.get("BARE_POOL_SIZE", "10"))
    app.state.pool = await asyncpg.create_pool(_dsn(), min_size=size, max_size=size)
    try:
        yield
    finally:
        await app.state.pool.close()


app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)


@app.get("/readyz")
async def readyz(request: Request) -> dict[str, str]:
    await request.app.state.pool.fetchval("SELECT 1")
    return {"status": "ready"}


@app.get("/v1/customers/{customer_id}/features")
async def customer(customer_id: str, request: Request) -> dict:
    row = await request.app.state.pool.fetchrow(
        "SELECT * FROM customers WHERE customer_id = $1", customer_id
    )
    if row is None:
        raise HTTPException(status_code=404, detail="unknown customer")
    return dict(row)
