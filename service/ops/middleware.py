"""Request id, access log and latency metrics as one pure-ASGI middleware (cheap per request)."""

from __future__ import annotations

import logging
import time
import uuid

from service.ops.logs import request_id_var
from service.ops.metrics import REQUEST_SECONDS

log = logging.getLogger("scorer.request")


class RequestContextMiddleware:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming[:64] if incoming.isprintable() and incoming else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        # Kept when the app ends without answering: the client left before an answer
        # (nginx's "client closed request"), which is not a server fault.
        status = 499
        recorded = False

        def record() -> None:
            # Called as the last body part goes out: a client may send its next request
            # on this connection before this task resumes, and must already see it.
            nonlocal recorded
            recorded = True
            elapsed = time.perf_counter() - started
            template = getattr(scope.get("route"), "path", "unmatched")
            REQUEST_SECONDS.labels(scope["method"], template, str(status)).observe(elapsed)
            log.info(
                "request",
                extra={
                    "fields": {
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "ms": round(elapsed * 1000, 3),
                    }
                },
            )

        async def send_with_id(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                record()
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except BaseException:
            if status == 499:
                status = 500
            raise
        finally:
            if not recorded:
                record()
            request_id_var.reset(token)
