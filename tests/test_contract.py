"""The live service keeps its OpenAPI contract: schemathesis (every check, every phase,
stateful included) against a real server with an admin key and a few customers and offers,
so the 200 paths are reached too."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Server

SCHEMATHESIS = str(Path(sys.executable).with_name("st"))
# What the schema cannot state, per operation (a webhook URL pointing somewhere private).
CONFIG = Path(__file__).with_name("schemathesis.toml")
# Enough cases per operation to find the mismatches of each phase (about 2,700 cases), in
# well under a minute on two cores.
MAX_EXAMPLES = 100
SEED = 20261202


@pytest.fixture(scope="module")
def seeded(server: Server) -> Server:
    with server.client(server.admin_key) as http:
        events = [
            {
                "event_id": f"contract-{n}",
                "customer_id": customer,
                "type": "order_completed",
                "occurred_at": "2026-01-05T10:00:00Z",
                "order_id": f"o-{n}",
                "amount": "42.50",
            }
            for n, customer in enumerate(["c-1", "c-2", "c-3"])
        ]
        assert http.post("/v1/events", json={"events": events}).json()["accepted"] == 3
        for offer_id in ("free-ship", "winback-10"):
            offer = {"offer_id": offer_id, "name": offer_id, "channel": "email"}
            response = http.post("/v1/offers", json={**offer, "value": "25", "cost": "1.5"})
            assert response.status_code == 200, response.text
    return server


def test_the_service_keeps_its_openapi_contract(seeded: Server, tmp_path):
    report = tmp_path / "report.json"
    started = time.monotonic()
    result = subprocess.run(
        [
            SCHEMATHESIS,
            f"--config-file={CONFIG}",
            "run",
            f"{seeded.url}/openapi.json",
            "--checks=all",
            "--phases=examples,coverage,fuzzing,stateful",
            f"--max-examples={MAX_EXAMPLES}",
            f"--seed={SEED}",
            "--workers=1",
            "--header",
            f"Authorization: Bearer {seeded.admin_key}",
            "--report=json",
            f"--report-json-path={report}",
            "--generation-database=none",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,  # schemathesis keeps a cache of crashes in its working directory
    )
    elapsed = time.monotonic() - started
    summary = result.stdout[-20000:]
    print(summary)
    print(f"schemathesis ran for {elapsed:.0f} s")
    assert result.returncode == 0, summary + result.stderr[-3000:]
    assert json.loads(report.read_text()), "schemathesis wrote its report"
