"""Deadlines, admission control and cancelling the work of clients that left, as one
pure-ASGI middleware.

- Admission: at most `max_in_flight` requests run in this worker; one more gets a fast 503
  with `Retry-After` instead of a place in a queue it would wait in past its deadline.
- Deadline: a request's work is cancelled once it has run `read_seconds` (reads, scoring)
  or `write_seconds` (ingest and other writes); if no answer was started, the client gets
  a JSON 504. Cancelling the task also cancels its running statement (asyncpg sends the
  server a cancel request).
- Disconnects: once the request body has been read, the middleware listens for the client
  leaving and cancels the work it would no longer receive.

Operations routes (`/healthz`, `/readyz`, `/metrics`) are never shed, so an overloaded
worker still tells its load balancer how it is.
"""

from __future__ import annotations

import asyncio
import logging
import re

from service.ops.errors import retry_later

log = logging.getLogger("scorer.deadlines")

ALWAYS_ADMITTED = frozenset({"/healthz", "/readyz", "/metrics"})
# POST routes that only read (and may log a decision): they get the read deadline.
READING_POSTS = frozenset({"/v1/score"})
# Streamed documents as long as a customer's history: a deadline of their own.
EXPORTS = re.compile(r"^/v1/customers/[^/]+/export$")


class DeadlineMiddleware:
    def __init__(
        self,
        app,
        read_seconds: float,
        write_seconds: float,
        export_seconds: float,
        max_in_flight: int,
    ):
        self.app = app
        self.read_seconds = read_seconds
        self.write_seconds = write_seconds
        self.export_seconds = export_seconds
        self.max_in_flight = max_in_flight
        self.in_flight = 0

    def deadline_of(self, scope) -> float:
        method = scope["method"]
        if method == "GET" and EXPORTS.match(scope["path"]):
            return self.export_seconds
        if method in ("GET", "HEAD", "OPTIONS") or scope["path"] in READING_POSTS:
            return self.read_seconds
        return self.write_seconds

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in ALWAYS_ADMITTED:
            return await self.app(scope, receive, send)
        if self.in_flight >= self.max_in_flight:
            limit = self.max_in_flight
            detail = f"this worker is at its limit of {limit} requests in flight; retry"
            return await retry_later(503, detail)(scope, receive, send)
        self.in_flight += 1
        try:
            await self._run(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _run(self, scope, receive, send) -> None:
        state = _Exchange(receive, send)
        work = asyncio.current_task()
        watcher: asyncio.Task | None = None

        def start_watching() -> None:
            nonlocal watcher
            if watcher is None:
                watcher = asyncio.ensure_future(state.wait_for_disconnect(work))

        state.on_body_read = start_watching
        if scope["method"] in ("GET", "HEAD"):
            # No body to wait for: its one (empty) message is already buffered.
            await state.prefetch()
        try:
            async with asyncio.timeout(self.deadline_of(scope)):
                await self.app(scope, state.receive, state.send)
        except TimeoutError:
            if not state.started:
                log.warning("deadline exceeded: %s %s", scope["method"], scope["path"])
                detail = "the request did not finish within its deadline; retry"
                await retry_later(504, detail)(scope, receive, send)
        except asyncio.CancelledError:
            if not state.client_left:
                raise
            # The client will never read an answer: end quietly, the work is undone.
            log.info("client disconnected: %s %s cancelled", scope["method"], scope["path"])
            asyncio.current_task().uncancel()
        finally:
            if watcher is not None:
                watcher.cancel()


class _Exchange:
    """One request's receive and send, noting what the middleware needs to know."""

    def __init__(self, receive, send) -> None:
        self._receive = receive
        self._send = send
        self.started = False  # the answer's status line went out
        self.finished = False
        self.client_left = False
        self.on_body_read = lambda: None
        self._prefetched: dict | None = None

    async def prefetch(self) -> None:
        self._prefetched = await self.receive()

    async def receive(self):
        if self._prefetched is not None:
            message, self._prefetched = self._prefetched, None
            return message
        message = await self._receive()
        if message["type"] == "http.request" and not message.get("more_body", False):
            self.on_body_read()
        return message

    async def send(self, message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        elif message["type"] == "http.response.body" and not message.get("more_body"):
            self.finished = True
        await self._send(message)

    async def wait_for_disconnect(self, work: asyncio.Task) -> None:
        message = await self._receive()
        if message["type"] == "http.disconnect" and not self.finished:
            self.client_left = True
            work.cancel()
