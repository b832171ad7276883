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


class SecurityHeadersMiddleware:
    def __init__(
        self, app, docs_paths: tuple[str, ...], assets_path: str, docs_policy: str
    ) -> None:
        self.app = app
        self.docs_paths = frozenset(docs_paths)
        self.assets_prefix = assets_path.rstrip("/") + "/"
        self.docs_policy = docs_policy.encode()

    def headers_for(self, path: str) -> list[tuple[bytes, bytes]]:
        if path.startswith(self.assets_prefix):
            policy, cache = self.docs_policy, b"public, max-age=86400"
        elif path in self.docs_paths:
            policy, cache = self.docs_policy, b"no-store"
        else:
            policy, cache = API_CONTENT_SECURITY_POLICY.encode(), b"no-store"
        return [*_ALWAYS, (b"content-security-policy", policy), (b"cache-control", cache)]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        added = self.headers_for(scope["path"])

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                names = {name for name, _ in added}
                kept = [(n, v) for n, v in message.get("headers", []) if n.lower() not in names]
                message["headers"] = [*kept, *added]
            await send(message)

        await self.app(scope, receive, send_with_headers)
