"""`scorer consume`: a durable JetStream pull consumer feeding the one write path."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from service.cli.common import UsageError, database_url, load_settings, positive_int


def cmd_consume(args: argparse.Namespace) -> int:
    import uvloop

    from service.db import asyncpg_dsn, migrate
    from service.events.validation import EventRules
    from service.sources.nats.consumer import ConsumerOptions, ConsumerSetupError, consume

    settings = load_settings()
    url = database_url(settings)
    migrate(url)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    options = ConsumerOptions(
        nats_url=args.nats or settings.nats_url,
        stream=args.stream or settings.nats_stream,
        subject=args.subject or settings.nats_subject,
        durable=args.durable or settings.nats_durable,
        batch=args.batch or settings.nats_batch,
        create_stream=args.create_stream,
        write_deadline_seconds=settings.write_deadline_seconds,
    )

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        try:
            progress = await consume(
                options, asyncpg_dsn(url), EventRules.from_settings(settings), stop
            )
        except ConsumerSetupError as error:
            raise UsageError(str(error)) from error
        print(progress.line(None))
        return 0

    return uvloop.run(main())


def add_commands(sub) -> None:
    consume = sub.add_parser(
        "consume", help="store events from a NATS JetStream stream (until SIGTERM)"
    )
    consume.add_argument("--nats", help="NATS URL (default SCORER_NATS_URL)")
    consume.add_argument("--stream", help="stream name (default SCORER_NATS_STREAM)")
    consume.add_argument("--subject", help="subject filter (default SCORER_NATS_SUBJECT)")
    consume.add_argument("--durable", help="durable consumer name (default SCORER_NATS_DURABLE)")
    consume.add_argument(
        "--batch", type=positive_int, help="messages per fetch (default SCORER_NATS_BATCH)"
    )
    consume.add_argument(
        "--create-stream", action="store_true", help="create the stream if it does not exist"
    )
    consume.set_defaults(func=cmd_consume)
