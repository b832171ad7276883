"""Hostile input across every route: each case is a 4xx in the one error shape whose
`detail` names the field or limit, never a 500; where a batch holds a valid neighbour it
is kept. A real server over real HTTP (raw sockets where httpx would refuse to send it)."""

from __future__ import annotations

import gzip
import json
import socket
import time
import unicodedata
import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import Server, running_server

AT = "2024-05-01T12:00:00Z"
AS_OF = "2024-05-02T00:00:00Z"
BODY_READ_SECONDS = 1


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory) -> Iterator[Server]:
    """A server with a short body-read timeout, so the slow-client case is fast."""
    settings = {"SCORER_BODY_READ_SECONDS": str(BODY_READ_SECONDS)}
    with running_server(database_url, tmp_path_factory, **settings) as running:
        yield running


@pytest.fixture(scope="module")
def live_offer(server: Server) -> str:
    """An offer anyone may get, so scoring logs a decision (and its context) in jsonb."""
    with server.client(server.admin_key) as http:
        created = http.post(
            "/v1/offers",
            json={
                "offer_id": "hostile-live",
                "name": "Live",
                "channel": "email",
                "value": 100,
                "cost": 0,
            },
        )
        assert created.status_code == 200, created.text
        ingested = http.post("/v1/events", json={"events": [session("hostile-known", "hk-1")]})
        assert ingested.json()["accepted"] == 1, ingested.text
    return "hostile-live"


def session(customer_id: str, event_id: str) -> dict:
    return {
        "event_id": event_id,
        "customer_id": customer_id,
        "type": "session_started",
        "occurred_at": AT,
    }


def offer_fields(offer_id: str) -> dict:
    """An offer's fields but its id (a PUT body may not name it)."""
    return {"name": "x", "channel": "email", "value": 1, "cost": 0}


def offer_body(offer_id: str) -> dict:
    return {"offer_id": offer_id, **offer_fields(offer_id)}


def as_json(document) -> bytes:
    """ASCII-escaped JSON, so lone surrogates and NUL travel as \\u escapes."""
    return json.dumps(document, ensure_ascii=True).encode()


def score_with(customer_id) -> bytes:
    return as_json({"customer_id": customer_id})


def context_with(raw_pair: str) -> bytes:
    """A /v1/score body whose context holds one raw JSON `"key": value` pair."""
    return b'{"customer_id": "hostile-known", "context": {' + raw_pair.encode() + b"}}"


def assert_refused(response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text[:300]
    body = response.json()
    assert set(body) >= {"detail", "request_id"}, body
    assert body["request_id"] == response.headers["x-request-id"]
    for word in words:
        assert word.lower() in body["detail"].lower(), f"{word!r} not in {body['detail']!r}"


JSON = {"Content-Type": "application/json"}
OFFER = "/v1/offers"
# (id, method, path, body, extra headers, status, words the detail must contain)
CASES: list[tuple[str, str, str, bytes | None, dict, int, tuple[str, ...]]] = [
    # /v1/score: ids
    ("score-id-nul", "POST", "/v1/score", score_with("a\x00b"), JSON, 422, ("customer_id",)),
    (
        "score-id-zwj",
        "POST",
        "/v1/score",
        score_with("a\u200db"),
        JSON,
        422,
        ("customer_id", "200D"),
    ),
    (
        "score-id-spaces",
        "POST",
        "/v1/score",
        score_with(" a "),
        JSON,
        422,
        ("customer_id", "whitespace"),
    ),
    ("score-id-newline", "POST", "/v1/score", score_with("a\nb"), JSON, 422, ("customer_id",)),
    ("score-id-surrogate", "POST", "/v1/score", score_with("a\ud800"), JSON, 422, ("customer_id",)),
    ("score-id-bom", "POST", "/v1/score", score_with("\ufeffa"), JSON, 422, ("customer_id",)),
    (
        "score-id-line-separator",
        "POST",
        "/v1/score",
        score_with("a\u2028b"),
        JSON,
        422,
        ("customer_id", "2028"),
    ),
    (
        "score-id-bidi-override",
        "POST",
        "/v1/score",
        score_with("abc\u202e"),
        JSON,
        422,
        ("customer_id", "202E"),
    ),
    ("score-id-empty", "POST", "/v1/score", score_with(""), JSON, 422, ("customer_id",)),
    ("score-id-129", "POST", "/v1/score", score_with("x" * 129), JSON, 422, ("customer_id", "128")),
    ("score-id-number", "POST", "/v1/score", score_with(42), JSON, 422, ("customer_id",)),
    # /v1/score: the context
    (
        "context-nan",
        "POST",
        "/v1/score",
        context_with('"x": NaN'),
        JSON,
        400,
        ("body.context.x", "NaN"),
    ),
    (
        "context-infinity",
        "POST",
        "/v1/score",
        context_with('"x": Infinity'),
        JSON,
        400,
        ("body.context.x",),
    ),
    (
        "context-minus-infinity",
        "POST",
        "/v1/score",
        context_with('"x": -Infinity'),
        JSON,
        400,
        ("body.context.x",),
    ),
    (
        "context-1e400",
        "POST",
        "/v1/score",
        context_with('"x": 1e400'),
        JSON,
        422,
        ("context", "'x'", "finite"),
    ),
    (
        "context-cart-1e400",
        "POST",
        "/v1/score",
        context_with('"cart_value": 1e400'),
        JSON,
        422,
        ("cart_value",),
    ),
    (
        "context-nul-value",
        "POST",
        "/v1/score",
        context_with('"x": "\\u0000"'),
        JSON,
        422,
        ("context", "'x'"),
    ),
    (
        "context-surrogate-value",
        "POST",
        "/v1/score",
        context_with('"x": "\\ud800"'),
        JSON,
        422,
        ("context", "'x'"),
    ),
    (
        "context-nul-key",
        "POST",
        "/v1/score",
        context_with('"a\\u0000b": 1'),
        JSON,
        422,
        ("context", "key"),
    ),
    (
        "context-nested",
        "POST",
        "/v1/score",
        context_with('"x": {"y": 1}'),
        JSON,
        422,
        ("context", "'x'"),
    ),
    (
        "context-long-string",
        "POST",
        "/v1/score",
        context_with(f'"x": "{"v" * 257}"'),
        JSON,
        422,
        ("context", "256"),
    ),
    (
        "context-long-key",
        "POST",
        "/v1/score",
        context_with(f'"{"k" * 65}": 1'),
        JSON,
        422,
        ("context", "64"),
    ),
    (
        "context-many-keys",
        "POST",
        "/v1/score",
        context_with(", ".join(f'"k{i}": 1' for i in range(33))),
        JSON,
        422,
        ("context", "32"),
    ),
    (
        "context-surrogate-key",
        "POST",
        "/v1/score",
        context_with('"k\\udc00": 1'),
        JSON,
        422,
        ("context", "surrogates"),
    ),
    (
        "context-20MB-field",
        "POST",
        "/v1/score",
        context_with(f'"x": "{"v" * 20_000_000}"'),
        JSON,
        413,
        ("bytes",),
    ),
    (
        "context-duplicate-key",
        "POST",
        "/v1/score",
        context_with('"x": 1, "x": 2'),
        JSON,
        400,
        ("duplicate", "'x'"),
    ),
    (
        "score-duplicate-customer",
        "POST",
        "/v1/score",
        b'{"customer_id": "a", "customer_id": "b"}',
        JSON,
        400,
        ("duplicate", "customer_id"),
    ),
    ("score-not-json", "POST", "/v1/score", b"{customer_id}", JSON, 400, ("JSON",)),
    ("score-invalid-utf8", "POST", "/v1/score", b'{"customer_id": "\xff"}', JSON, 400, ("JSON",)),
    (
        "score-text-plain",
        "POST",
        "/v1/score",
        b'{"customer_id": "a"}',
        {"Content-Type": "text/plain"},
        415,
        ("Content-Type",),
    ),
    (
        "score-no-content-type",
        "POST",
        "/v1/score",
        b'{"customer_id": "a"}',
        {},
        415,
        ("Content-Type",),
    ),
    (
        "score-brotli",
        "POST",
        "/v1/score",
        b"xx",
        {**JSON, "Content-Encoding": "br"},
        415,
        ("Content-Encoding", "br"),
    ),
    (
        "score-bad-gzip",
        "POST",
        "/v1/score",
        b"not gzip",
        {**JSON, "Content-Encoding": "gzip"},
        400,
        ("gzip",),
    ),
    (
        "score-truncated-gzip",
        "POST",
        "/v1/score",
        gzip.compress(score_with("a"))[:-12],
        {**JSON, "Content-Encoding": "gzip"},
        400,
        ("gzip",),
    ),
    (
        "score-over-64KiB",
        "POST",
        "/v1/score",
        as_json({"customer_id": "a", "pad": "x" * 65536}),
        JSON,
        413,
        ("65536",),
    ),
    (
        "score-unknown-field",
        "POST",
        "/v1/score",
        as_json({"customer_id": "a", "x": 1}),
        JSON,
        422,
        ("x",),
    ),
    # ids in paths
    ("features-nul", "GET", "/v1/customers/a%00b/features", None, {}, 422, ("customer_id",)),
    ("features-zwj", "GET", "/v1/customers/a%E2%80%8Db/features", None, {}, 422, ("customer_id",)),
    (
        "features-spaces",
        "GET",
        "/v1/customers/%20a%20/features",
        None,
        {},
        422,
        ("customer_id", "whitespace"),
    ),
    (
        # Invalid UTF-8 in a path decodes to U+FFFD (printable): an unknown customer.
        "features-surrogate-bytes",
        "GET",
        "/v1/customers/a%ED%A0%80/features",
        None,
        {},
        404,
        ("customer",),
    ),
    (
        "features-129",
        "GET",
        "/v1/customers/" + "x" * 129 + "/features",
        None,
        {},
        422,
        ("customer_id",),
    ),
    ("profile-nul", "GET", "/v1/customers/a%00b", None, {}, 422, ("customer_id",)),
    ("profile-tab", "GET", "/v1/customers/a%09b", None, {}, 422, ("customer_id",)),
    ("scores-zwj", "GET", "/v1/customers/a%E2%80%8Db/scores", None, {}, 422, ("customer_id",)),
    ("scores-newline", "GET", "/v1/customers/a%0Ab/scores", None, {}, 422, ("customer_id",)),
    ("offer-get-nul", "GET", f"{OFFER}/a%00b", None, {}, 422, ("offer_id",)),
    ("offer-put-nul", "PUT", f"{OFFER}/a%00b", as_json(offer_body("a")), JSON, 422, ("offer_id",)),
    ("offer-delete-nul", "DELETE", f"{OFFER}/a%00b", None, {}, 422, ("offer_id",)),
    ("offer-delete-zwj", "DELETE", f"{OFFER}/a%E2%80%8Db", None, {}, 422, ("offer_id",)),
    ("offer-get-129", "GET", f"{OFFER}/" + "o" * 129, None, {}, 422, ("offer_id",)),
    # offer bodies
    ("offer-body-id-nul", "POST", OFFER, as_json(offer_body("a\x00b")), JSON, 422, ("offer_id",)),
    ("offer-body-id-spaces", "POST", OFFER, as_json(offer_body(" a ")), JSON, 422, ("offer_id",)),
    (
        "offer-body-value-nan",
        "POST",
        OFFER,
        b'{"offer_id": "n", "name": "x", "channel": "email", "value": NaN, "cost": 0}',
        JSON,
        400,
        ("body.value",),
    ),
    (
        "offer-body-cost-1e400",
        "POST",
        OFFER,
        b'{"offer_id": "n", "name": "x", "channel": "email", "value": 1, "cost": 1e400}',
        JSON,
        422,
        ("cost",),
    ),
    (
        "offer-body-duplicate",
        "POST",
        OFFER,
        b'{"offer_id": "d1", "offer_id": "d2", "name": "x", "channel": "email",'
        b' "value": 1, "cost": 0}',
        JSON,
        400,
        ("duplicate", "offer_id"),
    ),
    (
        "offer-body-text-plain",
        "POST",
        OFFER,
        as_json(offer_body("t")),
        {"Content-Type": "text/plain"},
        415,
        ("Content-Type",),
    ),
    (
        "offer-body-over-64KiB",
        "POST",
        OFFER,
        as_json({**offer_body("big"), "name": "x" * 70000}),
        JSON,
        413,
        ("bytes",),
    ),
    # ingest, request-level
    (
        "events-duplicate-events",
        "POST",
        "/v1/events",
        b'{"events": [], "events": []}',
        JSON,
        400,
        ("duplicate", "events"),
    ),
    (
        "events-nan-names-field",
        "POST",
        "/v1/events",
        b'{"events": [{"amount": -Infinity}]}',
        JSON,
        400,
        ("body.events.0.amount",),
    ),
    (
        "events-gzip-over-1MiB-inflated",
        "POST",
        "/v1/events",
        gzip.compress(b" " * (1024 * 1024 + 1)),
        {**JSON, "Content-Encoding": "gzip"},
        413,
        ("inflated",),
    ),
    (
        "events-deflate",
        "POST",
        "/v1/events",
        b"x",
        {**JSON, "Content-Encoding": "deflate"},
        415,
        ("deflate",),
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status", "words"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_hostile_request_is_a_named_4xx(
    client, live_offer, method, path, body, headers, status, words
):
    response = client.request(method, path, content=body, headers=headers)
    assert_refused(response, status, *words)


def test_the_cases_above_are_not_500s_in_the_log(server, client, live_offer):
    log = server.log_path.read_text()
    assert '"status": 500' not in log and "Traceback" not in log, log[-3000:]


def test_valid_context_with_live_offer_is_stored(client, server, live_offer):
    response = client.post(
        "/v1/score",
        json={"customer_id": "hostile-known", "context": {"channel": "web", "note": "é"}},
    )
    assert response.status_code == 200, response.text
    rows = server.sql("SELECT context FROM offer_decisions WHERE customer_id = $1", "hostile-known")
    assert rows, "a live offer should log a decision"


# (id, event field overrides) for one bad event next to a valid one: only it is rejected.
BAD_EVENT_IDS = [
    ("customer-zwj", {"customer_id": "a\u200db"}, "customer_id"),
    ("customer-spaces", {"customer_id": " a "}, "customer_id"),
    ("customer-nul", {"customer_id": "a\x00b"}, "customer_id"),
    ("customer-bom", {"customer_id": "\ufeffa"}, "customer_id"),
    ("event-id-surrogate", {"event_id": "e\ud800"}, "event_id"),
    ("event-id-newline", {"event_id": "e\n"}, "event_id"),
    (
        "order-id-zwj",
        {"type": "order_completed", "order_id": "o\u200d", "amount": "1.00"},
        "order_id",
    ),
    ("amount-1e400", {"type": "order_completed", "order_id": "o1", "amount": 1e400}, "amount"),
]


@pytest.mark.parametrize(
    ("fields", "word"), [pytest.param(f, w, id=i) for i, f, w in BAD_EVENT_IDS]
)
def test_bad_id_in_a_batch_is_rejected_alone(client, fields, word):
    prefix = "h" + uuid.uuid4().hex[:10]
    bad = {**session(f"{prefix}-bad", f"{prefix}-e1"), **fields}
    good = session(f"{prefix}-good", f"{prefix}-e2")
    body = json.dumps({"events": [bad, good]}, ensure_ascii=True).replace("Infinity", "1e400")
    response = client.post("/v1/events", content=body, headers=JSON)
    assert response.status_code == 200, response.text
    outcome = response.json()
    assert outcome["accepted"] == 1, outcome
    assert [r["index"] for r in outcome["rejected"]] == [0]
    assert word in outcome["rejected"][0]["error"], outcome
    stored = client.get(f"/v1/customers/{prefix}-good/features", params={"as_of": AS_OF})
    assert stored.status_code == 200, stored.text


def test_duplicate_key_stores_nothing(client, server):
    customer = "dup-" + uuid.uuid4().hex[:8]
    order = {**session(customer, f"{customer}-o"), "type": "order_completed", "order_id": "o1"}
    event = json.dumps({**order, "amount": "1.00"})
    twice = event.replace('"amount": "1.00"', '"amount": "1.00", "amount": "999999.00"')
    body = '{"events": [' + twice + "]}"
    response = client.post("/v1/events", content=body, headers=JSON)
    assert_refused(response, 400, "duplicate", "amount")
    assert server.sql("SELECT 1 FROM events WHERE customer_id = $1", customer) == []


def test_nfc_and_nfd_address_the_same_customer(client):
    stem = "nfc-" + uuid.uuid4().hex[:8]
    composed, decomposed = stem + "\u00e9", stem + "e\u0301"
    assert unicodedata.normalize("NFC", decomposed) == composed
    events = [session(decomposed, f"{stem}-1"), session(composed, f"{stem}-2")]
    response = client.post("/v1/events", json={"events": events})
    assert response.json()["accepted"] == 2, response.text
    for form in (composed, decomposed):
        features = client.get(f"/v1/customers/{form}/features", params={"as_of": AS_OF})
        assert features.status_code == 200, features.text
        assert features.json()["customer_id"] == composed
        assert features.json()["sessions_30d"] == 2, features.json()
        assert client.get(f"/v1/customers/{form}").status_code == 200
        scores = client.get(f"/v1/customers/{form}/scores", params={"as_of": AS_OF})
        assert scores.json()["customer_id"] == composed and scores.json()["known"], scores.text
        posted = client.post("/v1/score", json={"customer_id": form, "as_of": AS_OF})
        assert posted.json()["customer_id"] == composed and posted.json()["known"], posted.text


def test_gzip_body_is_accepted_on_every_body_route(client):
    stem = "gz-" + uuid.uuid4().hex[:8]
    gz = {**JSON, "Content-Encoding": "gzip"}
    ingest = client.post(
        "/v1/events", content=gzip.compress(as_json({"events": [session(stem, stem)]})), headers=gz
    )
    assert ingest.status_code == 200 and ingest.json()["accepted"] == 1, ingest.text
    score = client.post("/v1/score", content=gzip.compress(score_with(stem)), headers=gz)
    assert score.status_code == 200 and score.json()["known"], score.text
    created = client.post(OFFER, content=gzip.compress(as_json(offer_body(stem))), headers=gz)
    assert created.status_code == 200, created.text
    replaced = client.put(
        f"{OFFER}/{stem}",
        content=gzip.compress(as_json({**offer_fields(stem), "name": "y"})),
        headers=gz,
    )
    assert replaced.status_code == 200 and replaced.json()["name"] == "y", replaced.text


def test_gzip_bomb_is_413(client):
    bomb = gzip.compress(b"0" * (200 * 1024 * 1024))  # ~200 KB on the wire, 200 MB inflated
    response = client.post("/v1/events", content=bomb, headers={**JSON, "Content-Encoding": "gzip"})
    assert_refused(response, 413, "inflated")


def raw_exchange(server: Server, request: bytes, then: bytes = b"", pause: float = 0) -> bytes:
    """Send `request` on a raw socket (then `then` after `pause`); the answer, or b""."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        try:
            sock.sendall(request)
            if pause:
                time.sleep(pause)
            if then:
                sock.sendall(then)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before reading it all
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (ConnectionResetError, TimeoutError):
            pass
        return answer


def head(server: Server, path: str, extra: bytes = b"", body_length: int | None = None) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1".encode()
        if body_length is not None
        else f"GET {path} HTTP/1.1".encode(),
        b"Host: test",
        f"Authorization: Bearer {server.admin_key}".encode(),
        b"Connection: close",
    ]
    if body_length is not None:
        lines += [b"Content-Type: application/json", f"Content-Length: {body_length}".encode()]
    return b"\r\n".join(lines) + b"\r\n" + extra + b"\r\n"


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def test_50MB_declared_to_score_is_413_before_it_is_sent(server):
    answer = raw_exchange(server, head(server, "/v1/score", body_length=50_000_000), b"{" * 65536)
    assert status_of(answer) == 413, answer[:300]
    assert b"exceeds 65536 bytes" in answer


def test_50MB_streamed_to_score_is_413(client):
    def chunks():
        for _ in range(800):
            yield b" " * 65536

    response = client.post("/v1/score", content=chunks(), headers=JSON)
    assert_refused(response, 413, "65536")


def test_slow_body_is_408(server):
    answer = raw_exchange(
        server,
        head(server, "/v1/score", body_length=20) + b'{"customer_id":',
        pause=BODY_READ_SECONDS + 1,
    )
    assert status_of(answer) == 408, answer[:300]
    assert b"not received within" in answer


def test_client_leaving_mid_body_is_not_a_500(server):
    before = server.log_path.read_text()
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(head(server, "/v1/events", body_length=1000) + b'{"events": [')
        time.sleep(0.2)
    time.sleep(0.5)
    added = server.log_path.read_text()[len(before) :]
    assert "client left mid-body" in added, added
    assert '"status": 499' in added, added
    assert "Traceback" not in added and '"status": 500' not in added, added


def test_10MB_header_is_431(server):
    answer = raw_exchange(
        server, head(server, "/v1/customers/c", b"X-Big: " + b"a" * 10_000_000 + b"\r\n")
    )
    assert status_of(answer) == 431, answer[:300]
    assert b"request headers exceed" in answer


def test_10000_headers_are_431(server):
    many = b"".join(f"X-H{i}: v\r\n".encode() for i in range(10_000))
    answer = raw_exchange(server, head(server, "/v1/customers/c", many))
    assert status_of(answer) == 431, answer[:300]
    assert b"more than 100 request headers" in answer
