"""Security headers on every answer, as one pure-ASGI middleware.

API answers are JSON that no browser should render, frame or cache: a CSP that allows
nothing, `nosniff`, no referrer and `Cache-Control: no-store` (keys and customer data pass
through them). The documentation pages get a CSP that lets them run from this origin only,
and their static assets may be cached."""

from __future__ import annotations

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


class SecurityHeadersMiddleware:
    def __init__(
        self, app, docs_paths: tuple[str, ...], assets_path: str, docs_policy: str
    ) -> None:
        self.app = app
        self.docs_paths = frozenset(docs_paths)
        self.assets_prefix = assets_path.rstrip("/") + "/"
        # Built once: this runs on every answer.
        self.api_headers = _header_set(API_CONTENT_SECURITY_POLICY.encode(), b"no-store")
        self.page_headers = _header_set(docs_policy.encode(), b"no-store")
        self.asset_headers = _header_set(docs_policy.encode(), b"public, max-age=86400")

    def headers_for(self, path: str) -> list[tuple[bytes, bytes]]:
        if path.startswith(self.assets_prefix):
            return self.asset_headers
        if path in self.docs_paths:
            return self.page_headers
        return self.api_headers

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
