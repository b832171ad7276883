"""`scorer rescore`: every customer's scores into `customer_scores` now, in the foreground
(the scoring loop does the same in the background)."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime

from service.cli.common import (
    AS_OF_HELP,
    UsageError,
    as_of_argument,
    as_of_day,
    database_url,
    load_settings,
    run_with_connection,
)


def cmd_rescore(args: argparse.Namespace) -> int:
    import asyncpg
    from tqdm import tqdm

    from service.db import asyncpg_dsn
    from service.modeling.registry import ensure_shipped
    from service.scoring.batch import CONNECTIONS, rescore
    from service.scoring.store import ModelStore
    from service.scoring.transitions import Thresholds

    settings = load_settings()
    url = database_url(settings)

    async def work(raw, conn) -> int:
        day = await as_of_day(raw, args.as_of, settings.zone)
        # The features' `as_of` field: the timestamp given, else the start of the day.
        moment = args.as_of if isinstance(args.as_of, datetime) else None
        moment = moment or datetime(day.year, day.month, day.day, tzinfo=settings.zone)
        store = ModelStore(settings.pcltv.tiers())
        await ensure_shipped(raw)
        await store.refresh(raw)
        if not store.ready:
            raise UsageError("no active models: register and activate them with `scorer models`")
        started = time.perf_counter()
        thresholds = Thresholds(settings.changes.churn_delta, settings.changes.pcltv_ratio)
        one = args.customer is not None
        # Connections of its own: each chunk commits on its own, so the scores and
        # changes of a long run become visible as it goes.
        pool = await asyncpg.create_pool(
            asyncpg_dsn(url), min_size=CONNECTIONS + 1, max_size=CONNECTIONS + 1
        )
        try:
            with tqdm(desc="rescore", unit="customer", file=sys.stderr, disable=one) as bar:
                count = await rescore(
                    pool, store.current, moment, day, thresholds, args.customer, bar.update
                )
        finally:
            await pool.close()
        seconds = time.perf_counter() - started
        print(
            f"rescored {count} customer(s) in {seconds:.2f} s "
            f"({count / max(seconds, 1e-9):,.0f}/s) as of {day}"
        )
        return 0

    return run_with_connection(settings, work)


def add_commands(sub) -> None:
    parser = sub.add_parser("rescore", help="store every customer's current scores")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every known customer")
    which.add_argument("--customer", help="only this customer")
    parser.add_argument("--as-of", type=as_of_argument, help=AS_OF_HELP)
    parser.set_defaults(func=cmd_rescore)
