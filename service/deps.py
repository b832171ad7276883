"""FastAPI dependencies shared by the routers: database connections, scoped API-key auth
and the path and query parameters several routes take."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request
from fastapi.security import HTTPBearer
from pydantic import AfterValidator, BeforeValidator
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.access.service import ApiKey
from service.db import RequestPool
from service.identifiers import MAX_ID_LENGTH, normalise_id, state_id_pattern
from service.timefmt import Timestamp


async def get_engine(request: Request) -> AsyncEngine:
    return request.app.state.engine


async def get_connection(
    engine: Annotated[AsyncEngine, Depends(get_engine)],
) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as conn:
        yield conn


async def get_pool(request: Request) -> RequestPool:
    return request.app.state.pool


class ScopedBearer(HTTPBearer):
    """`Authorization: Bearer <key>` needing `scope`: 401 without a valid key, 403 when the
    key lacks the scope (admin has every scope). One dependency per route that is also the
    OpenAPI security scheme."""

    def __init__(self, scope: str) -> None:
        super().__init__(
            auto_error=False,
            scheme_name="HTTPBearer",
            description="API key: `Authorization: Bearer <key>`",
        )
        self.scope = scope

    async def __call__(self, request: Request) -> ApiKey:
        credentials = await super().__call__(request)
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise HTTPException(
                401,
                "missing API key: send Authorization: Bearer <key>",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return await authorize(request, credentials.credentials, self.scope)


async def authorize(request: Request, presented: str, scope: str) -> ApiKey:
    """The active key `presented`, if it has `scope` and is within its rate limit:
    else 401, 403 or 429."""
    key = await request.app.state.key_verifier.verify(request.app.state.pool, presented)
    if key is None:
        raise HTTPException(
            401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"}
        )
    if key.expired(datetime.now(UTC)):
        raise HTTPException(
            401,
            f"API key expired on {key.expires_at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}; "
            "create a new one with scorer keys create",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    if not key.allows(scope):
        raise HTTPException(
            403,
            f"API key lacks the '{scope}' scope",
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
        )
    decision = request.app.state.rate_limiter.take(key)
    if decision is not None and not decision.allowed:
        raise HTTPException(
            429,
            f"rate limit of API key {key.prefix}… exceeded; retry after Retry-After seconds",
            headers=decision.headers(),
        )
    return key


# Handlers hold a pooled connection only around their statements (`async with
# pool.acquire()`), not for the whole request: it is back in the pool before the response
# is serialized and sent, and no per-request exit stack is paid for a yield dependency.
Pool = Annotated[RequestPool, Depends(get_pool)]
Connection = Annotated[AsyncConnection, Depends(get_connection)]
# The key of a route that reads features or scores.
ScoresReader = Annotated[ApiKey, Depends(ScopedBearer("scores:read"))]
# The guard of the admin routers, one instance: FastAPI runs a dependency once per request
# only when it is the same callable, so a router's guard and a route's `Admin` parameter
# share one key check (and one rate-limit token).
ADMIN_BEARER = ScopedBearer("admin")
# The key of an admin route that needs to know who acts (its name is the audit actor).
Admin = Annotated[ApiKey, Depends(ADMIN_BEARER)]


def _query_boolean(value: object) -> object:
    if isinstance(value, str) and value not in ("true", "false"):
        raise ValueError("must be true or false")
    return value


# FastAPI would also take 1/0, yes/no and on/off; the schema (boolean) says true or false.
QueryBool = Annotated[bool, BeforeValidator(_query_boolean)]

# Path ids follow the body ids' rule (service.identifiers), NFC-normalised alike, and the
# schema states that rule as a pattern.
CustomerId = Annotated[
    str,
    Path(min_length=1, max_length=MAX_ID_LENGTH, json_schema_extra=state_id_pattern),
    AfterValidator(normalise_id),
]
# The position of a paginated listing: the `next_cursor` of its previous page.
PageCursor = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=18,
        pattern=r"^[0-9]+$",
        description="`next_cursor` of the previous page.",
    ),
]
AsOf = Annotated[
    Timestamp | None,
    Query(
        description="RFC 3339 with offset; default now. Resolved to its day in the "
        "service's calendar (SCORER_TIMEZONE)."
    ),
]
