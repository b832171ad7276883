"""Operations: health, readiness, metrics, request ids in JSON logs, graceful shutdown."""

from __future__ import annotations

import json
import signal
import socket
import time

from tests.conftest import start_server


def test_metrics_expose_route_latency_and_ingest_counters(server, client):
    event = {
        "event_id": "ops-e1",
        "customer_id": "ops-c1",
        "type": "session_started",
        "occurred_at": "2026-01-05T10:00:00+00:00",
    }
    client.post("/v1/events", json={"events": [event, {"type": "nope"}]})
    client.get("/v1/customers/ops-c1/features")
    text = client.get("/metrics").text
    assert 'route="/v1/customers/{customer_id}/features"' in text
    assert "scorer_request_duration_seconds_bucket" in text
    ingested = [
        line for line in text.splitlines() if line.startswith("scorer_events_ingested_total")
    ]
    rejected = [
        line for line in text.splitlines() if line.startswith("scorer_events_rejected_total")
    ]
    assert float(ingested[0].split()[-1]) >= 1
    assert float(rejected[0].split()[-1]) >= 1


def test_metrics_expose_model_versions_and_prediction_distributions(client):
    order = {
        "event_id": "ops-o1",
        "customer_id": "ops-c2",
        "type": "order_completed",
        "occurred_at": "2026-01-05T10:00:00+00:00",
        "order_id": "ops-1",
        "amount": "25",
    }
    assert client.post("/v1/events", json={"events": [order]}).json()["accepted"] == 1
    client.get("/v1/customers/ops-c2/scores")
    text = client.get("/metrics").text
    assert 'scorer_model_version_info{model="churn"' in text
    assert "scorer_churn_probability_bucket" in text
    assert "scorer_pcltv_value_count" in text
    assert "scorer_segments_total{segment=" in text


def test_request_id_is_echoed_and_logged_as_json(server, client):
    response = client.get("/healthz", headers={"X-Request-ID": "trace-abc-123"})
    assert response.headers["x-request-id"] == "trace-abc-123"
    generated = client.get("/healthz").headers["x-request-id"]
    assert len(generated) == 32
    time.sleep(0.2)
    lines = [json.loads(line) for line in server.log_path.read_text().splitlines() if line]
    logged = [line for line in lines if line.get("request_id") == "trace-abc-123"]
    assert logged and logged[0]["path"] == "/healthz" and logged[0]["status"] == 200


def test_readyz_reports_migrations(server, client):
    body = client.get("/readyz").json()
    assert body["status"] == "ready"
    assert body["database"] is True
    assert body["migrations"] == body["migrations_head"]


def test_graceful_shutdown_finishes_in_flight_request(database_url, tmp_path):
    running = start_server(database_url, tmp_path / "server.log")
    port = int(running.url.rsplit(":", 1)[1])
    events = [
        {
            "event_id": f"shutdown-{i}",
            "customer_id": f"shutdown-c{i % 7}",
            "type": "product_viewed",
            "occurred_at": "2026-01-05T10:00:00+00:00",
        }
        for i in range(200)
    ]
    body = json.dumps({"events": events}).encode()
    head = (
        f"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {running.admin_key}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head + body[: len(body) // 2])
        time.sleep(0.3)
        running.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert running.process.poll() is None, "server quit with a request in flight"
        sock.sendall(body[len(body) // 2 :])
        sock.settimeout(30)
        response = b""
        while b"\r\n\r\n" not in response or not response.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            response += chunk
    assert response.startswith(b"HTTP/1.1 200"), response[:200]
    assert json.loads(response.split(b"\r\n\r\n", 1)[1])["accepted"] == 200
    # uvicorn re-raises the SIGTERM it handled once shutdown is complete.
    assert running.process.wait(timeout=30) in (0, -signal.SIGTERM)
    assert '"message": "stopped"' in running.log_path.read_text()
    stored = running.sql("SELECT count(*) AS n FROM events WHERE event_id LIKE 'shutdown-%'")
    assert stored[0]["n"] == 200
