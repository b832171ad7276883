"""Access: bearer keys with scopes, stored hashed, never logged in clear."""

from __future__ import annotations

import time

import pytest

from service.access.service import hash_key

EVENT = {
    "event_id": "auth-e1",
    "customer_id": "auth-c1",
    "type": "session_started",
    "occurred_at": "2026-01-05T10:00:00+00:00",
}


def create_key(server, name: str, scopes: str) -> str:
    result = server.scorer("keys", "create", "--name", name, "--scopes", scopes)
    return result.stdout.strip()


@pytest.fixture(scope="module")
def keys(server) -> dict[str, str]:
    return {
        "reader": create_key(server, "auth-reader", "scores:read"),
        "writer": create_key(server, "auth-writer", "events:write"),
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/customers/auth-c1/features"),
        ("GET", "/v1/customers/auth-c1"),
        ("POST", "/v1/events"),
        ("GET", "/metrics"),
    ],
)
def test_missing_or_unknown_key_is_401(server, method, path):
    with server.client() as anonymous:
        response = anonymous.request(method, path, json={"events": [EVENT]})
        assert response.status_code == 401
        assert "API key" in response.json()["detail"]
    with server.client("cs_not_a_real_key") as stranger:
        assert stranger.request(method, path, json={"events": [EVENT]}).status_code == 401
    with server.client() as malformed:
        response = malformed.request(method, path, headers={"Authorization": "Basic abc"})
        assert response.status_code == 401


def test_scopes_are_enforced_with_403(server, keys):
    with server.client(keys["reader"]) as reader:
        response = reader.post("/v1/events", json={"events": [EVENT]})
        assert response.status_code == 403
        assert "events:write" in response.json()["detail"]
        assert reader.get("/metrics").status_code == 403
    with server.client(keys["writer"]) as writer:
        assert writer.post("/v1/events", json={"events": [EVENT]}).status_code == 200
        assert writer.get("/v1/customers/auth-c1/features").status_code == 403
    with server.client(keys["reader"]) as reader:
        assert reader.get("/v1/customers/auth-c1/features").status_code == 200


def test_health_endpoints_are_open(server):
    with server.client() as anonymous:
        assert anonymous.get("/healthz").json() == {"status": "ok"}
        assert anonymous.get("/readyz").status_code == 200


def test_keys_are_stored_hashed_and_listed_by_prefix(server, keys):
    stored = server.sql("SELECT key_hash, prefix FROM api_keys")
    hashes = {row["key_hash"] for row in stored}
    for key in keys.values():
        assert hash_key(key) in hashes
        assert all(key not in row["key_hash"] and row["prefix"] != key for row in stored)
    listing = server.scorer("keys", "list").stdout
    for key in keys.values():
        assert key not in listing
        assert key[:10] in listing


def test_revoked_key_stops_working(server):
    key = create_key(server, "auth-revoked", "scores:read")
    with server.client(key) as http:
        assert http.get("/v1/customers/none/features").status_code == 404
        server.scorer("keys", "revoke", "auth-revoked")
        # Verified keys are cached for at most 5 seconds.
        deadline = time.monotonic() + 10
        while http.get("/v1/customers/none/features").status_code != 401:
            assert time.monotonic() < deadline, "revoked key still accepted after 10 s"
            time.sleep(0.5)


def test_unknown_scope_is_refused_by_cli(server):
    result = server.scorer("keys", "create", "--name", "x", "--scopes", "root", check=False)
    assert result.returncode == 2
    assert "unknown scope" in result.stderr


def test_keys_never_appear_in_logs(server, keys):
    with server.client(keys["reader"]) as reader:
        reader.get("/v1/customers/auth-c1/features", headers={"X-Request-ID": "auth-log-probe"})
    time.sleep(0.2)
    log = (server.log_path).read_text()
    assert "auth-log-probe" in log, "the request line should have been written"
    assert keys["reader"] not in log
    assert server.admin_key not in log
