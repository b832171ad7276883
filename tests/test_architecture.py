"""The layering holds: import-linter's contracts pass, and a real server process never loads
the training tool chain (scikit-learn, skl2onnx, onnxmltools), even while it answers."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import ROOT, free_port, wait_ready

TRAINING_TOOL_CHAIN = ("sklearn", "skl2onnx", "onnxmltools")

# `scorer serve` in this interpreter, printing the top-level modules the process holds
# when the app shuts down (uvicorn ends the process by re-raising SIGTERM: no atexit).
SERVE_AND_REPORT_MODULES = """
import sys
from contextlib import asynccontextmanager
import service.app

serving = service.app.lifespan

@asynccontextmanager
async def lifespan(app):
    async with serving(app):
        yield
    print("LOADED", " ".join(sorted({m.split(".")[0] for m in sys.modules})), flush=True)

service.app.lifespan = lifespan
from service.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_import_contracts_are_kept():
    """The contracts of pyproject.toml: layers, serving without training, no cycles."""
    result = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Contracts: 3 kept, 0 broken." in result.stdout


def test_server_never_loads_the_training_tool_chain(database_url, tmp_path):
    port, key = free_port(), "cs_test_" + secrets.token_urlsafe(24)
    log = tmp_path / "server.log"
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE_AND_REPORT_MODULES, "serve", "--port", str(port)],
        env={**os.environ, "DATABASE_URL": database_url, "SCORER_BOOTSTRAP_API_KEY": key},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process, log)
        headers = {"Authorization": f"Bearer {key}"}
        event = {
            "event_id": "arch-1",
            "customer_id": "arch-c1",
            "type": "order_completed",
            "occurred_at": "2026-01-05T10:00:00+00:00",
            "order_id": "arch-o1",
            "amount": "42.00",
        }
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            assert http.post("/v1/events", json={"events": [event]}).json()["accepted"] == 1
            scores = http.get("/v1/customers/arch-c1/scores", params={"explain": "true"})
            assert scores.status_code == 200
            assert scores.json()["reasons"]["churn"], "explanations were computed"
            assert http.post("/v1/score", json={"customer_id": None}).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    report = [line for line in log.read_text().splitlines() if line.startswith("LOADED ")]
    assert report, log.read_text()[-2000:]
    loaded = set(report[-1].split()[1:])
    assert "onnxruntime" in loaded and "service" in loaded
    assert not loaded & set(TRAINING_TOOL_CHAIN), sorted(loaded & set(TRAINING_TOOL_CHAIN))
