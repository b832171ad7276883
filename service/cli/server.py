"""`scorer serve`, `scorer migrate`, `scorer demo`."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from service.cli.common import database_url, load_settings, positive_int
from service.cli.embedded import release_embedded
from service.config import Settings
from service.db import migrate


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from service.ops.logs import uvicorn_log_config

    settings = load_settings()
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
    migrate(database_url(load_settings()))
    print("database schema is current")
    return 0


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)


def cmd_demo(args: argparse.Namespace) -> int:
    settings = load_settings()
    url = database_url(settings)
    # uvicorn re-raises the SIGTERM it shut down on: with the default handler the process
    # would die there, before the embedded PostgreSQL is stopped below.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        return _demo(args, settings, url)
    finally:
        if not settings.database_url:
            print(release_embedded(settings, url), file=sys.stderr)


def _demo(args: argparse.Namespace, settings: Settings, url: str) -> int:
    from service.cli.demo import prepare_demo

    migrate(url)
    key = asyncio.run(prepare_demo(url, settings, args.customers))
    host, port = args.host or settings.host, args.port or settings.port
    sample, base = "c000001", f"http://{host}:{port}"
    auth = f"curl -H 'Authorization: Bearer {key}'"
    print(
        f"\nCustomer Scorer demo on {base}  (API docs: {base}/docs)\n"
        f"API key (admin): {key}\n"
        f"Try:  {auth} {base}/v1/customers/{sample}/scores\n"
        f"      {auth} '{base}/v1/changes?limit=5'   (what changed, to poll)\n",
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
    serve.add_argument(
        "--workers", type=positive_int, help="worker processes (SCORER_WORKERS, default 1)"
    )
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)

    demo = sub.add_parser("demo", help="load simulated demo data once, then serve")
    _server_flags(demo)
    demo.add_argument("--customers", type=positive_int, default=2000)
    demo.set_defaults(func=cmd_demo)
