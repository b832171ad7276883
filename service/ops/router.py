"""`/healthz`, `/readyz`, `/metrics`; the only routes open without a key
(besides /metrics, which takes the admin scope)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from sqlalchemy import text

from service.db import head_revision
from service.deps import ScopedBearer
from service.ops.responses import error_responses

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    database: bool
    pool_exhausted: bool = Field(
        description="A request waited in vain for a database connection in the last seconds."
    )
    migrations: str | None
    migrations_head: str
    models: dict[str, str | None]


READINESS_TIMEOUT_SECONDS = 1.0
METRICS_DATABASE_SECONDS = 1.0


# The operations routes are never shed nor deadlined (service/ops/deadlines.py).
_OPEN = error_responses(authenticated=False, validated=False, deadlined=False)


@router.get("/healthz", response_model=Health, responses=_OPEN)
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={
        **_OPEN,
        503: {"model": Readiness, "description": "Not ready (the body tells what is missing)"},
    },
)
async def readyz(request: Request):
    head = head_revision()
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            async with request.app.state.engine.connect() as conn:
                version = text("SELECT version_num FROM alembic_version")
                current = (await conn.execute(version)).scalar()
        reachable = True
    except Exception:  # any failure to reach or read the database in time: "not ready"
        current, reachable = None, False
    store = request.app.state.models
    exhausted = request.app.state.pool.exhausted
    ready = reachable and not exhausted and current == head and store.ready
    body = Readiness(
        status="ready" if ready else "not ready",
        database=reachable,
        pool_exhausted=exhausted,
        migrations=current,
        migrations_head=head,
        models=store.current.versions if store.current else {},
    )
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus exposition"},
        # The key lookup may still find the database unavailable or slow: 503/504.
        **error_responses(validated=False),
    },
)
async def metrics(
    request: Request, _key: Annotated[object, Depends(ScopedBearer("admin"))]
) -> Response:
    # Gauges read from the database (set by the app at start-up) count what every process
    # wrote, not only this one; a slow database leaves them as last read.
    try:
        async with asyncio.timeout(METRICS_DATABASE_SECONDS):
            async with request.app.state.pool.acquire() as conn:
                for refresh in request.app.state.database_gauges:
                    await refresh(conn)
    except Exception:  # /metrics must answer even when the database does not
        pass
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
