"""Every error answer has one shape, `{"detail", "request_id"}` (422 adds `errors`), and the
database being unavailable or too slow is a JSON 503/504 with `Retry-After`, never a 500.
A 405 names every method of its path in `Allow`, and OPTIONS on an existing path is a 204
with that `Allow`.

The handlers are registered per exception class, so Starlette's ExceptionMiddleware answers
and the connection stays usable (a handler for bare `Exception` would answer from
ServerErrorMiddleware and then re-raise, which makes the server drop the connection).
"""

from __future__ import annotations

import logging
from http import HTTPStatus

import asyncpg
import sqlalchemy.exc
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from service.db import CONNECTION_ERRORS, DatabaseUnavailable, DeadlineExceeded
from service.ops.allow import allowed_methods
from service.ops.logs import request_id_var

log = logging.getLogger("scorer.errors")

RETRY_AFTER_SECONDS = 1
RETRY_AFTER = {"Retry-After": str(RETRY_AFTER_SECONDS)}


class ErrorBody(BaseModel):
    detail: str = Field(description="What went wrong, naming the field where one is at fault.")
    request_id: str = Field(description="The request's id (also the X-Request-Id header).")
    # Segment's and RudderStack's clients read these two (and crash without `code`).
    code: str = Field(description="The status as a word: bad_request, unauthorized, …")
    message: str = Field(description="The same text as `detail`.")


class FieldError(BaseModel):
    field: str = Field(description="Where: body.events.0.amount, query.as_of, path.customer_id")
    error: str


class ValidationErrorBody(ErrorBody):
    errors: list[FieldError]


# The server gave up on the statement: statement_timeout or lock_timeout.
_TOO_SLOW = (asyncpg.exceptions.QueryCanceledError, asyncpg.exceptions.LockNotAvailableError)


def classify(error: BaseException) -> type[Exception] | None:
    """DatabaseUnavailable, DeadlineExceeded or None (a real fault) for a driver error,
    also when SQLAlchemy wraps it."""
    if isinstance(error, sqlalchemy.exc.TimeoutError):  # its pool's checkout timeout
        return DeadlineExceeded
    if isinstance(error, sqlalchemy.exc.DBAPIError):
        if error.connection_invalidated:
            return DatabaseUnavailable
        error = error.orig.__cause__ or error.orig
    if isinstance(error, (*_TOO_SLOW, TimeoutError)):
        return DeadlineExceeded
    if isinstance(error, CONNECTION_ERRORS):
        return DatabaseUnavailable
    return None


def error_response(
    status: int, detail: str, headers: dict[str, str] | None = None, **extra
) -> JSONResponse:
    body = {
        "detail": detail,
        "request_id": request_id_var.get() or "",
        "code": status_code_word(status),
        "message": detail,
        **extra,
    }
    return JSONResponse(body, status_code=status, headers=headers)


def status_code_word(status: int) -> str:
    try:
        return HTTPStatus(status).name.lower()
    except ValueError:
        return "error"


def retry_later(status: int, detail: str) -> JSONResponse:
    """A 503/504 the client should repeat after `Retry-After` seconds."""
    return error_response(status, detail, RETRY_AFTER)


def unavailable_response(kind: type[Exception]) -> JSONResponse:
    if kind is DeadlineExceeded:
        return retry_later(504, "the database did not answer in time; retry")
    return retry_later(503, "the database is unavailable; retry")


async def _http_error(request: Request, exc: HTTPException) -> Response:
    headers = getattr(exc, "headers", None)
    if exc.status_code == 405:
        allow = {"Allow": ", ".join(allowed_methods(request))}
        if request.method == "OPTIONS":
            return Response(status_code=204, headers=allow)
        headers = {**(headers or {}), **allow}
    if exc.status_code == 422:
        # A route's own 422 (e.g. the batch envelope) keeps the ValidationErrorBody shape.
        error = {"field": "body", "error": str(exc.detail)}
        return error_response(422, str(exc.detail), headers, errors=[error])
    return error_response(exc.status_code, str(exc.detail), headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {
            "field": ".".join(str(part) for part in error["loc"]),
            "error": error["msg"].removeprefix("Value error, "),
        }
        for error in exc.errors()
    ]
    summary = "; ".join(f"{e['field']}: {e['error']}" for e in errors)
    return error_response(422, summary, errors=errors)


async def _driver_error(request: Request, exc: Exception) -> JSONResponse:
    kind = classify(exc)
    if kind is None:
        log.error("database error", exc_info=exc)
        return error_response(500, "internal error")
    log.warning("database %s: %s", kind.__name__, exc)
    return unavailable_response(kind)


async def _known_fault(request: Request, exc: Exception) -> JSONResponse:
    return unavailable_response(type(exc))


def install(app: FastAPI) -> None:
    from starlette.exceptions import HTTPException as StarletteHTTPException

    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for kind in (DatabaseUnavailable, DeadlineExceeded):
        app.add_exception_handler(kind, _known_fault)
    for driver_error in (
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        asyncpg.InternalClientError,
        OSError,
        sqlalchemy.exc.DBAPIError,
        sqlalchemy.exc.TimeoutError,
    ):
        app.add_exception_handler(driver_error, _driver_error)
