"""`scorer serve`, `scorer migrate`, `scorer demo`."""

from __future__ import annotations

import argparse
import asyncio

from service.cli.common import database_url
from service.config import get_settings
from service.db import migrate


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from service.ops.logs import uvicorn_log_config

    settings = get_settings()
    url = database_url(settings)
    migrate(url)
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=args.workers or settings.workers,
        timeout_graceful_shutdown=settings.shutdown_timeout_seconds,
        log_config=uvicorn_log_config(),
        access_log=False,
    )
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    migrate(database_url(get_settings()))
    print("database schema is current")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from service.cli.demo import prepare_demo

    settings = get_settings()
    url = database_url(settings)
    migrate(url)
    key = asyncio.run(prepare_demo(url, settings, args.customers))
    host, port = args.host or settings.host, args.port or settings.port
    sample = "c000001"
    print(
        f"\nCustomer Scorer demo on http://{host}:{port}  (API docs: http://{host}:{port}/docs)\n"
        f"API key (admin): {key}\n"
        f"Try:  curl -H 'Authorization: Bearer {key}' "
        f"http://{host}:{port}/v1/customers/{sample}/features\n",
        flush=True,
    )
    args.workers = None
    return cmd_serve(args)


def _server_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="bind address (SCORER_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (SCORER_PORT, default 8000)")


def add_commands(sub) -> None:
    serve = sub.add_parser("serve", help="migrate, then serve the HTTP API")
    _server_flags(serve)
    serve.add_argument("--workers", type=int, help="worker processes (SCORER_WORKERS, default 1)")
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)

    demo = sub.add_parser("demo", help="load simulated demo data once, then serve")
    _server_flags(demo)
    demo.add_argument("--customers", type=int, default=2000)
    demo.set_defaults(func=cmd_demo)
