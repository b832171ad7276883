"""`scorer`: the command line of the service (serve, migrate, keys, import, …)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import uvloop
from tqdm import tqdm

from service.config import Settings, get_settings
from service.db import driver_connection, export_url_for_children, migrate, open_engine
from service.db import resolve_database_url as resolve_url


def database_url(settings: Settings) -> str:
    url = resolve_url(settings)
    export_url_for_children(url)
    return url


def run_with_connection(settings: Settings, work: Callable[..., Awaitable[int]]) -> int:
    """Run `work(asyncpg_connection, sqlalchemy_connection)` in one engine's connection."""
    url = database_url(settings)
    migrate(url)

    async def main() -> int:
        async with open_engine(url) as engine, engine.connect() as conn:
            async with driver_connection(conn) as raw:
                result = await work(raw, conn)
            await conn.commit()
            return result

    # uvloop, as under `scorer serve`: the driver's I/O is a good part of batch commands.
    return uvloop.run(main())


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


def cmd_keys(args: argparse.Namespace) -> int:
    from service.access import service as keys

    async def work(raw, conn) -> int:
        if args.keys_command == "create":
            try:
                key, record = await keys.create_key(conn, args.name, args.scopes.split(","))
            except ValueError as error:
                print(f"error: {error}", file=sys.stderr)
                return 2
            print(key)
            print(
                f"created {record.name} ({record.prefix}…) scopes={','.join(record.scopes)}; "
                "the key is shown only now",
                file=sys.stderr,
            )
        elif args.keys_command == "list":
            for item in await keys.list_keys(conn):
                state = f"revoked {item.revoked_at:%Y-%m-%d}" if item.revoked_at else "active"
                print(f"{item.prefix}…\t{item.name}\t{','.join(item.scopes)}\t{state}")
        else:
            count = await keys.revoke_key(conn, args.key)
            print(f"revoked {count} key(s)")
            return 0 if count else 1
        return 0

    return run_with_connection(get_settings(), work)


def cmd_recompute(args: argparse.Namespace) -> int:
    from service.features.recompute import recompute

    async def work(raw, conn) -> int:
        with tqdm(desc="recompute", unit="customer", file=sys.stderr) as bar:
            count = await recompute(raw, args.customer, progress=bar.update)
        print(f"recomputed features of {count} customer(s)")
        return 0

    return run_with_connection(get_settings(), work)


def event_rules(settings: Settings):
    from service.events.validation import EventRules

    return EventRules(
        zone=settings.zone,
        currency=settings.currency,
        future_tolerance=timedelta(seconds=settings.future_tolerance_seconds),
    )


def cmd_import(args: argparse.Namespace) -> int:
    from service.backfill.importer import import_file

    settings = get_settings()
    path = Path(args.file)
    if not path.is_file():
        print(f"error: no such file {path}", file=sys.stderr)
        return 2
    rejects = Path(args.rejects) if args.rejects else path.with_name(path.name + ".rejects.ndjson")
    with path.open("rb") as stream:
        total = sum(1 for _ in stream)

    async def work(raw, conn) -> int:
        with tqdm(total=total, desc=f"import {path.name}", unit="line", file=sys.stderr) as bar:
            summary = await import_file(
                raw,
                path,
                event_rules(settings),
                rejects,
                args.batch_size,
                progress=lambda lines: bar.update(lines - bar.n),
            )
        print(
            f"lines {summary.lines}: accepted {summary.accepted}, duplicates "
            f"{summary.duplicates}, rejected {summary.rejected} (details: {rejects})"
        )
        return 0

    return run_with_connection(settings, work)


def cmd_demo(args: argparse.Namespace) -> int:
    from service.demo import prepare_demo

    settings = get_settings()
    url = database_url(settings)
    migrate(url)
    key = asyncio.run(prepare_demo(url, settings, event_rules(settings), args.customers))
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scorer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def add_server_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--host", help="bind address (SCORER_HOST, default 127.0.0.1)")
        p.add_argument("--port", type=int, help="port (SCORER_PORT, default 8000)")

    serve = sub.add_parser("serve", help="migrate, then serve the HTTP API")
    add_server_flags(serve)
    serve.add_argument("--workers", type=int, help="worker processes (SCORER_WORKERS, default 1)")
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)

    keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True)
    create.add_argument(
        "--scopes", default="scores:read", help="comma list of events:write, scores:read, admin"
    )
    keys_sub.add_parser("list", help="list keys (prefixes only)")
    revoke = keys_sub.add_parser("revoke", help="revoke a key by prefix or name")
    revoke.add_argument("key")
    keys.set_defaults(func=cmd_keys)

    features = sub.add_parser("features", help="feature maintenance")
    features_sub = features.add_subparsers(dest="features_command", required=True)
    recompute = features_sub.add_parser("recompute", help="rebuild feature buckets from events")
    recompute.add_argument("--customer", help="only this customer")
    recompute.set_defaults(func=cmd_recompute)

    importer = sub.add_parser("import", help="backfill events from NDJSON or orders from CSV")
    importer.add_argument("file")
    importer.add_argument(
        "--rejects", help="where to write rejected lines (default FILE.rejects.ndjson)"
    )
    importer.add_argument("--batch-size", type=int, default=5000)
    importer.set_defaults(func=cmd_import)

    demo = sub.add_parser("demo", help="load simulated demo data once, then serve")
    add_server_flags(demo)
    demo.add_argument("--customers", type=int, default=2000)
    demo.set_defaults(func=cmd_demo)

    from service.offers.cli import add_commands as add_offer_commands
    from service.scoring.cli import add_commands as add_scoring_commands
    from service.simulation.cli import add_commands as add_simulation_commands
    from service.training.cli import add_commands as add_training_commands

    add_simulation_commands(sub)
    add_training_commands(sub)
    add_scoring_commands(sub)
    add_offer_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
