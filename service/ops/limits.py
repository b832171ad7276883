"""Request limits, enforced before any route runs, as one pure-ASGI middleware.

- Headers: more than `max_headers`, or more than `max_header_bytes` of them in all: 431.
- Body: read whole (every body here is small JSON) within `body_read_seconds`, else 408;
  capped per route (`POST /v1/events`: `max_body_bytes`, every other route
  `max_body_bytes_default`): 413 as soon as Content-Length or the stream exceeds it.
- `Content-Encoding: gzip` is inflated here, capped at the same per-route size (a gzip
  bomb is a 413 after at most cap + 1 inflated bytes); any other coding: 415. The route
  then sees a plain body with the header removed.
- A non-empty body must be `application/json` (or `+json`): 415.
- A client that leaves mid-body gets no answer and no error log: it is not a fault.

uvicorn parses the request line and headers before the app sees them, so what it refuses
(see docs/operations.md) never reaches this module.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from dataclasses import dataclass

from fastapi.responses import JSONResponse

from service.ops.errors import error_response

log = logging.getLogger("scorer.limits")

_PASSED_CODINGS = frozenset({b"", b"identity"})


@dataclass(frozen=True)
class Limits:
    max_headers: int
    max_header_bytes: int
    body_read_seconds: float
    max_body_bytes_default: int
    route_body_bytes: dict[str, int]

    def body_cap(self, path: str) -> int:
        return self.route_body_bytes.get(path, self.max_body_bytes_default)


class _Refusal(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class _ClientLeft(Exception):
    pass


class LimitsMiddleware:
    def __init__(self, app, limits: Limits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        try:
            self._check_headers(scope["headers"])
        except _Refusal as refusal:
            return await _refuse(refusal.status, refusal.detail)(scope, receive, send)
        if not _announces_body(scope["headers"]):
            # Neither Content-Length nor Transfer-Encoding: the request has no body (RFC 9112
            # section 6.3), so nothing is read, decoded or replayed (every GET).
            return await self.app(scope, receive, send)
        try:
            headers = dict(scope["headers"])
            async with asyncio.timeout(self.limits.body_read_seconds):
                body = await self._read_body(scope["path"], headers, receive)
            body = self._decode(scope["path"], headers, body)
            if body and not _is_json(headers.get(b"content-type", b"")):
                raise _Refusal(415, "Content-Type must be application/json")
        except _Refusal as refusal:
            return await _refuse(refusal.status, refusal.detail)(scope, receive, send)
        except TimeoutError:
            seconds = self.limits.body_read_seconds
            detail = f"request body not received within {seconds:g} s"
            return await _refuse(408, detail)(scope, receive, send)
        except _ClientLeft:
            log.info("client left mid-body: %s %s", scope["method"], scope["path"])
            return None
        # In place, not a copy: the outer middleware reads the matched route off this scope.
        scope["headers"] = _plain_headers(scope["headers"], len(body))
        await self.app(scope, _replay(body, receive), send)

    def _check_headers(self, headers: list[tuple[bytes, bytes]]) -> None:
        if len(headers) > self.limits.max_headers:
            raise _Refusal(431, f"more than {self.limits.max_headers} request headers")
        size = sum(len(name) + len(value) + 4 for name, value in headers)
        if size > self.limits.max_header_bytes:
            raise _Refusal(431, f"request headers exceed {self.limits.max_header_bytes} bytes")

    async def _read_body(self, path: str, headers: dict[bytes, bytes], receive) -> bytes:
        cap = self.limits.body_cap(path)
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > cap:
            raise _Refusal(413, f"request body exceeds {cap} bytes")
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientLeft
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > cap:
                raise _Refusal(413, f"request body exceeds {cap} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _decode(self, path: str, headers: dict[bytes, bytes], body: bytes) -> bytes:
        coding = headers.get(b"content-encoding", b"").strip().lower()
        if coding in _PASSED_CODINGS:
            return body
        if coding not in (b"gzip", b"x-gzip"):
            raise _Refusal(415, f"Content-Encoding {coding.decode('latin-1')!r} is not supported")
        cap = self.limits.body_cap(path)
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            inflated = inflater.decompress(body, cap + 1)
        except zlib.error as error:
            raise _Refusal(400, f"body is not valid gzip: {error}") from None
        if len(inflated) > cap:
            raise _Refusal(413, f"inflated request body exceeds {cap} bytes")
        if not inflater.eof:
            raise _Refusal(400, "body is not valid gzip: truncated")
        return inflated


def _announces_body(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(name in (b"content-length", b"transfer-encoding") for name, _ in headers)


def _is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


def _plain_headers(headers: list[tuple[bytes, bytes]], length: int) -> list[tuple[bytes, bytes]]:
    """The headers of the body the route sees: decoded, of a known length."""
    kept = [
        (name, value)
        for name, value in headers
        if name not in (b"content-encoding", b"content-length", b"transfer-encoding")
    ]
    return [*kept, (b"content-length", str(length).encode())]


def _replay(body: bytes, receive):
    """The body as one message, then the client's own messages (its disconnect)."""
    delivered = False

    async def replayed():
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def _refuse(status: int, detail: str) -> JSONResponse:
    # The rest of the request may still be on the wire: close rather than read it.
    return error_response(status, detail, {"Connection": "close"})
