"""`scorer demo`: a ready-to-try service: simulated customers loaded once, a known key."""

from __future__ import annotations

import secrets
import sys
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from tqdm import tqdm

from service.access.service import KEY_PREFIX
from service.audit.service import cli_actor
from service.backfill.importer import import_file
from service.config import Settings
from service.db import driver_connection, open_engine
from service.events.validation import EventRules

DEMO_DAYS = 365


def demo_key(settings: Settings) -> str:
    """The same key on every run, kept beside the embedded database."""
    path = settings.data_dir / "demo-api-key"
    if not path.exists():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(KEY_PREFIX + secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


async def prepare_demo(url: str, settings: Settings, customers: int) -> str:
    from service.app import ensure_admin_key
    from service.simulation.simulator import SimulationConfig, simulate

    key = demo_key(settings)
    async with open_engine(url) as engine:
        async with engine.begin() as conn:
            await ensure_admin_key(conn, key, "demo", cli_actor())
            known = (await conn.execute(text("SELECT count(*) FROM customers"))).scalar()
        if known:
            print(f"demo data already loaded ({known} customers)", file=sys.stderr)
            return key
        events = settings.data_dir / "demo-events.ndjson"
        start = (datetime.now(UTC) - timedelta(days=DEMO_DAYS + 1)).date()
        config = SimulationConfig(customers=customers, days=DEMO_DAYS, seed=7, start=start)
        simulate(config, events, settings.data_dir / "demo-truth.csv", progress=True)
        with events.open("rb") as stream:
            total = sum(1 for _ in stream)
        async with engine.connect() as conn, driver_connection(conn) as raw:
            with tqdm(total=total, desc="load demo events", unit="event", file=sys.stderr) as bar:
                await import_file(
                    raw,
                    events,
                    EventRules.from_settings(settings),
                    events.with_suffix(".rejects.ndjson"),
                    progress=lambda lines: bar.update(lines - bar.n),
                )
    return key
