"""The error answers of each route, for its OpenAPI `responses`: what the service really
sends, all in the ErrorBody shape (422: ValidationErrorBody), with the headers that come
with them. One helper so that every router documents the same statuses the same way."""

from __future__ import annotations

from typing import Any

from service.ops.errors import ErrorBody, ValidationErrorBody


def _seconds_or_count(description: str, minimum: int = 0) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "integer", "minimum": minimum}}


_RETRY_AFTER = {"Retry-After": _seconds_or_count("Seconds to wait before retrying.", minimum=1)}
_RATE_LIMIT = {
    "RateLimit-Limit": _seconds_or_count(
        "Requests the key may burst (two seconds' worth of its rate)."
    ),
    "RateLimit-Remaining": _seconds_or_count("Requests left in the burst now."),
    "RateLimit-Reset": _seconds_or_count("Seconds until the burst is full again."),
}
_WWW_AUTHENTICATE = {
    "WWW-Authenticate": {
        "description": "The scheme to authenticate with: `Bearer` (403: with the scope).",
        "schema": {"type": "string"},
    }
}


def _error(description: str, headers: dict | None = None, model: type = ErrorBody) -> dict:
    response: dict[str, Any] = {"model": model, "description": description}
    if headers:
        response["headers"] = headers
    return response


# Every route: the header limits of the server come before routing.
_ANY_ROUTE = {431: _error("Request headers too large or too many")}
_AUTHENTICATED = {
    401: _error("Missing, unknown or revoked API key", _WWW_AUTHENTICATE),
    403: _error("The API key lacks the route's scope", _WWW_AUTHENTICATE),
    429: _error("The API key's rate limit is exceeded", {**_RETRY_AFTER, **_RATE_LIMIT}),
}
_VALIDATED = {422: _error("Invalid parameters or body fields", model=ValidationErrorBody)}
_WITH_BODY = {
    400: _error("The body is not valid JSON (also duplicate keys, NaN, Infinity)"),
    408: _error("The body was not received in time"),
    413: _error("The body (or its gzip-inflated form) is too large"),
    415: _error("The body is not application/json, or its Content-Encoding is unsupported"),
}
# Routes that are shed under overload and run under a deadline (not the operations routes).
_DEADLINED = {
    503: _error(
        "The database is unavailable, or this worker is at its admission limit", _RETRY_AFTER
    ),
    504: _error("The request or the database did not finish within its deadline", _RETRY_AFTER),
}


def error_responses(
    *,
    authenticated: bool = True,
    validated: bool = True,
    body: bool = False,
    deadlined: bool = True,
    extra: dict[int, str] | None = None,
) -> dict[int | str, dict[str, Any]]:
    """The error `responses` of a route: `authenticated` (401/403/429), `validated` (422),
    `body` (400/408/413/415), `deadlined` (503/504), plus the route's own statuses in `extra`
    (a status already listed gets its description extended)."""
    responses: dict[int, dict[str, Any]] = dict(_ANY_ROUTE)
    for wanted, group in (
        (authenticated, _AUTHENTICATED),
        (validated, _VALIDATED),
        (body, _WITH_BODY),
        (deadlined, _DEADLINED),
    ):
        if wanted:
            responses.update(group)
    for status, description in (extra or {}).items():
        if status in responses:
            known = responses[status]
            responses[status] = {
                **known,
                "description": f"{known['description']}; or: {description}",
            }
        else:
            responses[status] = _error(description)
    return dict(sorted(responses.items()))
