"""`scorer worker`: the background work of `scorer serve` without the API (scoring loop,
webhook delivery, feed retention), for deployments that scale it apart."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from service.cli.common import database_url, load_settings


def cmd_worker(args: argparse.Namespace) -> int:
    import uvloop

    from service.background import Background, open_pool
    from service.db import asyncpg_dsn, migrate
    from service.modeling.registry import ensure_shipped
    from service.scoring.store import ModelStore

    settings = load_settings()
    url = database_url(settings)
    migrate(url)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        pool = await open_pool(asyncpg_dsn(url))
        models = ModelStore(settings.pcltv.tiers())
        async with pool.acquire() as conn:
            await ensure_shipped(conn)
            await models.refresh(conn)
        poller = asyncio.create_task(models.poll(pool.acquire, settings.model_poll_seconds))
        background = Background(pool, models, settings)
        print("worker started: scoring loop, webhook delivery, retention", file=sys.stderr)
        await stop.wait()
        poller.cancel()
        await background.stop()
        print("worker stopped", file=sys.stderr)
        return 0

    return uvloop.run(main())


def add_commands(sub) -> None:
    worker = sub.add_parser(
        "worker", help="run the scoring loop and webhook delivery without the API (until SIGTERM)"
    )
    worker.set_defaults(func=cmd_worker)
