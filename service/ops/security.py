"""Security headers on every answer, as one pure-ASGI middleware.

API answers are JSON that no browser should render, frame or cache: a CSP that allows
nothing, `nosniff`, no referrer and `Cache-Control: no-store` (keys and customer data pass
through them). The pages (documentation, dashboard) each get a CSP of their own that lets
them run from this origin only, and their static assets may be cached."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"

_ALWAYS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


_SET_HERE = frozenset(
    {name for name, _ in _ALWAYS} | {b"content-security-policy", b"cache-control"}
)


def _header_set(policy: bytes, cache: bytes) -> list[tuple[bytes, bytes]]:
    return [*_ALWAYS, (b"content-security-policy", policy), (b"cache-control", cache)]


@dataclass(frozen=True)
class Pages:
    """Browser pages that share a policy: their exact paths and the folder of their assets."""

    paths: tuple[str, ...]
    assets_path: str
    policy: str


class SecurityHeadersMiddleware:
    def __init__(self, app, pages: Sequence[Pages]) -> None:
        self.app = app
        # Built once: this runs on every answer.
        self.api_headers = _header_set(API_CONTENT_SECURITY_POLICY.encode(), b"no-store")
        self.page_headers = {
            path: _header_set(group.policy.encode(), b"no-store")
            for group in pages
            for path in group.paths
        }
        self.asset_headers = [
            (
                group.assets_path.rstrip("/") + "/",
                _header_set(group.policy.encode(), b"public, max-age=86400"),
            )
            for group in pages
        ]

    def headers_for(self, path: str) -> list[tuple[bytes, bytes]]:
        for prefix, headers in self.asset_headers:
            if path.startswith(prefix):
                return headers
        return self.page_headers.get(path, self.api_headers)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        added = self.headers_for(scope["path"])

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                kept = [(n, v) for n, v in message.get("headers", []) if n.lower() not in _SET_HERE]
                message["headers"] = [*kept, *added]
            await send(message)

        await self.app(scope, receive, send_with_headers)
