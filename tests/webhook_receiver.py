"""A webhook receiver over real HTTP (a server in a thread) that checks every request it
gets with the `standardwebhooks` library, for the tests of outbound webhooks."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.conftest import free_port


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    status: int
    problems: list[str]

    @property
    def document(self) -> dict:
        return json.loads(self.body)

    @property
    def change_id(self) -> str:
        return self.document["data"]["id"]


@dataclass
class Receiver:
    """Answers POSTs per path (scripted answers first, then `failing`, else 200) and checks
    each with standardwebhooks against every secret in `secrets[path]`, one at a time.
    HTTP/1.0: every request has a connection of its own, so a stopped receiver refuses."""

    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    secrets: dict[str, list[str]] = field(default_factory=dict)
    scripts: dict[str, deque] = field(default_factory=dict)
    failing: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    httpd: ThreadingHTTPServer | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                status, headers = receiver.answer(self.path)
                receiver.note(self.path, dict(self.headers), body, status)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def answer(self, path: str) -> tuple[int, dict[str, str]]:
        with self.lock:
            script = self.scripts.get(path)
            if script:
                return script.popleft()
            return self.failing.get(path, 200), {}

    def note(self, path: str, headers: dict[str, str], body: bytes, status: int) -> None:
        problems = []
        for secret in self.secrets.get(path, []):
            try:
                Webhook(secret).verify(body, headers)
            except WebhookVerificationError as error:
                problems.append(f"{secret[:12]}…: {error}")
        if path not in self.secrets:
            problems.append("no secret to verify with")
        with self.lock:
            self.received.append(Received(path, headers, body, time.monotonic(), status, problems))

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [request for request in self.received if request.path == path]

    def delivered(self, path: str) -> list[Received]:
        return [request for request in self.at(path) if 200 <= request.status < 300]

    def wait_delivered(self, path: str, count: int, seconds: float = 15) -> list[Received]:
        """The first `count` 2xx answered at `path`, once there are that many."""

        def enough() -> list[Received]:
            delivered = self.delivered(path)
            return delivered[:count] if len(delivered) >= count else []

        return wait_until(enough, seconds, f"{count} deliveries at {path}")


def wait_until(check, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value
