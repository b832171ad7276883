"""`scorer rescore`: every customer's current scores into `customer_scores`."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime

from service.cli.common import database_url, fail, run_with_connection
from service.config import get_settings


def cmd_rescore(args: argparse.Namespace) -> int:
    import asyncpg
    from tqdm import tqdm

    from service.db import asyncpg_dsn
    from service.features.service import resolve_as_of
    from service.modeling.registry import ensure_shipped
    from service.scoring.batch import READ_AHEAD, rescore
    from service.scoring.store import ModelStore

    settings = get_settings()
    try:
        as_of = datetime.fromisoformat(args.as_of) if args.as_of else None
    except ValueError:
        return fail(f"--as-of {args.as_of!r} is not an RFC 3339 timestamp")
    if as_of is not None and as_of.tzinfo is None:
        return fail("--as-of needs a UTC offset, e.g. 2026-01-31T00:00:00Z")
    moment, day = resolve_as_of(as_of, settings.zone)

    async def work(raw, conn) -> int:
        store = ModelStore(settings.pcltv.tiers())
        await ensure_shipped(raw)
        await store.refresh(raw)
        if not store.ready:
            return fail("no active models: register and activate them with `scorer models`")
        started = time.perf_counter()
        pool = await asyncpg.create_pool(
            asyncpg_dsn(database_url(settings)), min_size=READ_AHEAD + 1, max_size=READ_AHEAD + 1
        )
        try:
            with tqdm(desc="rescore", unit="customer", file=sys.stderr) as bar:
                count = await rescore(pool, store.current, moment, day, args.customer, bar.update)
        finally:
            await pool.close()
        seconds = time.perf_counter() - started
        print(
            f"rescored {count} customer(s) in {seconds:.2f} s ({count / max(seconds, 1e-9):,.0f}/s)"
        )
        return 0

    return run_with_connection(settings, work)


def add_commands(sub) -> None:
    parser = sub.add_parser("rescore", help="store every customer's current scores")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every known customer")
    which.add_argument("--customer", help="only this customer")
    parser.add_argument("--as-of", help="RFC 3339 with offset (default now)")
    parser.set_defaults(func=cmd_rescore)
