"""What browsers see: docs pages that work offline, security headers on every answer, CORS
off by default and on when configured, and `Allow` naming every method of a path."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Server, start_server, stop_server

ALLOWED_ORIGIN = "https://crm.example.com"


@pytest.fixture(scope="module")
def configured(database_url: str, tmp_path_factory) -> Iterator[Server]:
    """A second server: docs off, CORS on for one origin."""
    running = start_server(
        database_url,
        tmp_path_factory.mktemp("configured") / "server.log",
        SCORER_DOCS_ENABLED="false",
        SCORER_CORS_ORIGINS=ALLOWED_ORIGIN,
    )
    try:
        yield running
    finally:
        stop_server(running)


def referenced_urls(html: str) -> list[str]:
    return re.findall(r'(?:src|href|spec-url)="([^"]+)"', html)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_everything_from_the_service_itself(server: Server, page: str):
    with httpx.Client(base_url=server.url, timeout=30) as http:
        response = http.get(page)
        assert response.status_code == 200
        assert "text/html" in response.headers["content-type"]
        urls = referenced_urls(response.text)
        scripts = [url for url in urls if url.endswith(".js")]
        assert scripts, response.text
        for url in urls:
            assert url.startswith("/"), f"{page} refers to another host: {url}"
            asset = http.get(url)
            assert asset.status_code == 200, url
            assert asset.content, url
        assert "/openapi.json" in response.text
        assert http.get("/openapi.json").json()["info"]["title"] == "Customer Scorer"


def test_swagger_page_policy_allows_exactly_its_own_inline_script(server: Server):
    response = httpx.get(f"{server.url}/docs", timeout=30)
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "'unsafe-inline'" not in policy.split(";")[1]
    assert re.search(r"script-src 'self' 'sha256-[A-Za-z0-9+/=]+'", policy), policy


def test_docs_can_be_switched_off(configured: Server):
    for path in ("/docs", "/redoc", "/openapi.json", "/docs/assets/swagger-ui-bundle.js"):
        assert httpx.get(f"{configured.url}{path}", timeout=30).status_code == 404, path


@pytest.mark.parametrize("path", ["/healthz", "/v1/customers/c-1", "/nope"])
def test_every_answer_carries_the_security_headers(server: Server, path: str):
    response = httpx.get(f"{server.url}{path}", timeout=30)
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-frame-options"] == "DENY"
    assert headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert headers["cache-control"] == "no-store"


def preflight(server: Server, origin: str) -> httpx.Response:
    return httpx.options(
        f"{server.url}/v1/score",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
        timeout=30,
    )


def test_cors_is_off_by_default(server: Server):
    response = preflight(server, ALLOWED_ORIGIN)
    assert "access-control-allow-origin" not in response.headers
    assert response.status_code == 204 and response.headers["allow"] == "OPTIONS, POST"


def test_cors_allows_the_configured_origins_only(configured: Server):
    allowed = preflight(configured, ALLOWED_ORIGIN)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()

    refused = preflight(configured, "https://evil.example.com")
    assert "access-control-allow-origin" not in refused.headers

    answer = httpx.get(f"{configured.url}/healthz", headers={"Origin": ALLOWED_ORIGIN})
    assert answer.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "x-request-id" in answer.headers["access-control-expose-headers"].lower()


def test_allow_names_every_method_of_the_path(client: httpx.Client):
    options = client.options("/v1/offers/any-offer")
    assert options.status_code == 204
    assert options.headers["allow"] == "DELETE, GET, OPTIONS, PUT"
    refused = client.patch("/v1/offers/any-offer")
    assert refused.status_code == 405
    assert refused.headers["allow"] == "DELETE, GET, OPTIONS, PUT"
    assert set(refused.json()) == {"detail", "request_id", "code", "message"}
    assert client.options("/v1/offers").headers["allow"] == "GET, OPTIONS, POST"
    assert client.options("/no-such-path").status_code == 404
