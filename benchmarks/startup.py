"""Start-up time and resident memory of `scorer serve`, optionally against another checkout.

Each round starts the server on a fresh, migrated database, waits for `/readyz` to answer
200 and reads the process's resident set size (VmRSS) and which heavy libraries it holds.
Targets alternate round by round so machine noise hits them alike; the report gives
medians and the ratio of this checkout to the other one.

    python benchmarks/startup.py                       # this checkout only
    python benchmarks/startup.py --against /path/to/other/checkout --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    REPO,
    create_database,
    drop_database,
    free_port,
    log,
    median,
    server_url,
    start_server,
    wait_ready,
    with_database,
)

WATCHED = ("sklearn", "skl2onnx", "onnxmltools", "lightgbm", "scipy", "onnx")
# Printed by the server process itself once it is ready (see `_probe_code`).
PROBE = "SCORER_STARTUP_PROBE"


def _probe_code(checkout: Path) -> str:
    """`scorer serve` for `checkout`, reporting its loaded modules once the app has started."""
    return f"""
import sys
sys.path.insert(0, {str(checkout)!r})
import service.app as app_module
original = app_module.lifespan
from contextlib import asynccontextmanager
@asynccontextmanager
async def lifespan(app):
    async with original(app):
        loaded = [m for m in {WATCHED!r} if m in sys.modules]
        print("{PROBE}", ",".join(loaded) or "-", flush=True)
        yield
app_module.lifespan = lifespan
from service.cli import main
sys.exit(main(sys.argv[1:]))
"""


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


async def one_round(checkout: Path, base_url: str, logdir: Path, label: str) -> dict:
    dbname = f"scorer_startup_{secrets.token_hex(4)}"
    await create_database(base_url, dbname)
    url = with_database(base_url, dbname)
    port = free_port()
    server = start_server(
        label,
        [sys.executable, "-c", _probe_code(checkout), "serve", "--port", str(port)],
        {"DATABASE_URL": url, "PYTHONPATH": str(checkout)},
        port,
        logdir,
    )
    try:
        started = time.perf_counter()
        await wait_ready(server, timeout=120)
        seconds = time.perf_counter() - started
        await asyncio.sleep(1.0)  # let start-up garbage settle before reading RSS
        rss = rss_kib(server.proc.pid)
        probe = [
            line.split(maxsplit=1)[1]
            for line in server.log_path.read_text().splitlines()
            if line.startswith(PROBE)
        ]
    finally:
        server.stop()
        await drop_database(base_url, dbname)
    return {"seconds": seconds, "rss_mib": rss / 1024, "modules": probe[0] if probe else "?"}


async def main_async(args: argparse.Namespace) -> int:
    base_url = server_url()
    targets = {"this": REPO}
    if args.against:
        targets["other"] = Path(args.against).resolve()
    logdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"scorer-startup-{secrets.token_hex(3)}"
    logdir.mkdir(parents=True)
    results: dict[str, list[dict]] = {name: [] for name in targets}
    # The first start of any checkout pays for a cold page cache; it is not counted.
    for name, checkout in targets.items():
        await one_round(checkout, base_url, logdir, f"{name}-warmup")
    for round_number in range(args.rounds):
        for name, checkout in targets.items():
            outcome = await one_round(checkout, base_url, logdir, f"{name}-{round_number}")
            log(
                f"round {round_number} {name}: ready in {outcome['seconds']:.2f} s, "
                f"RSS {outcome['rss_mib']:.1f} MiB, loaded: {outcome['modules']}"
            )
            results[name].append(outcome)
    print(f"| checkout | start-up to /readyz, s (median of {args.rounds}) | RSS, MiB | loaded |")
    print("|---|---:|---:|---|")
    summary = {}
    for name, rounds in results.items():
        seconds = median([r["seconds"] for r in rounds])
        rss = median([r["rss_mib"] for r in rounds])
        summary[name] = (seconds, rss)
        print(f"| {name} ({targets[name]}) | {seconds:.2f} | {rss:.1f} | {rounds[-1]['modules']} |")
    if "other" in summary:
        (s_this, r_this), (s_other, r_other) = summary["this"], summary["other"]
        print(f"\nthis / other: start-up {s_this / s_other:.2f}x, RSS {r_this / r_other:.2f}x")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", help="another checkout of the project to compare with")
    parser.add_argument("--rounds", type=int, default=5)
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
