"""`scorer import`, `scorer features recompute` and `scorer events purge`: the event log in
bulk."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from service.cli.common import (
    AS_OF_TODAY_HELP,
    UsageError,
    as_of_argument,
    day_of,
    load_settings,
    positive_int,
    run_with_connection,
)

if TYPE_CHECKING:
    from service.backfill.importer import ImportSummary


def cmd_recompute(args: argparse.Namespace) -> int:
    from service.features.recompute import recompute

    async def work(raw, conn) -> int:
        one = args.customer is not None
        with tqdm(desc="recompute", unit="customer", file=sys.stderr, disable=one) as bar:
            done = await recompute(raw, args.customer, progress=bar.update)
        if one and not done.customers:
            raise UsageError(
                f"no events for customer {args.customer!r}: nothing to rebuild "
                "(ids are case-sensitive; leave out --customer to rebuild everyone)"
            )
        if done.horizon is None:
            print(f"recomputed features of {done.customers} customer(s)")
        else:
            print(
                f"rebuilt {done.customers} customer(s) from events on or after {done.horizon}; "
                "buckets, orders and facts before it kept as stored (events before it were "
                "purged)"
            )
        return 0

    return run_with_connection(load_settings(), work)


def cmd_purge(args: argparse.Namespace) -> int:
    import asyncpg

    from service.events.retention import purge_events

    settings = load_settings()
    days = settings.event_retention_days
    if days is None:
        raise UsageError(
            "SCORER_EVENT_RETENTION_DAYS is not set, so events are kept forever: set it to the "
            "days of events to keep (e.g. 90) to purge older ones"
        )
    today = day_of(args.as_of or datetime.now(UTC), settings.zone)

    async def work(raw, conn) -> int:
        done = 0

        def progress(deleted: int) -> None:
            nonlocal done
            done += deleted
            print(f"deleted {deleted} events ({done} so far)", file=sys.stderr, flush=True)

        try:
            purged = await purge_events(raw, today, days, progress=progress)
        except asyncpg.LockNotAvailableError as error:
            raise UsageError(
                "ingest batches held the retention horizon for too long to move it "
                f"({error}); run the command again"
            ) from error
        print(
            f"purged {purged.deleted} events of days before {purged.horizon.purged_before} "
            f"(SCORER_EVENT_RETENTION_DAYS={purged.horizon.retention_days}); kept "
            f"{purged.kept} refunds before it whose order is later or has not arrived"
        )
        return 0

    return run_with_connection(settings, work)


def _summary_line(summary: ImportSummary, rejects: Path) -> str:
    details = f" (details: {rejects})" if summary.rejected else ""
    return (
        f"lines {summary.lines}: accepted {summary.accepted}, duplicates "
        f"{summary.duplicates}, rejected {summary.rejected}{details}"
    )


def _nothing_accepted(path: Path, summary: ImportSummary, rejects: Path) -> UsageError:
    first = summary.first_rejection
    return UsageError(
        f"none of the {summary.lines} lines of {path} was accepted (line {first.index}: "
        f"{first.error}); all rejections are in {rejects}"
    )


def cmd_import(args: argparse.Namespace) -> int:
    from service.backfill.importer import import_file
    from service.events.validation import EventRules

    settings = load_settings()
    path = Path(args.file)
    if not path.is_file():
        raise UsageError(
            f"no such file: {path} (give an NDJSON file of events or a CSV file of orders)"
        )
    rejects = Path(args.rejects) if args.rejects else path.with_name(path.name + ".rejects.ndjson")
    with path.open("rb") as stream:
        total = sum(1 for _ in stream)

    async def work(raw, conn) -> int:
        with tqdm(total=total, desc=f"import {path.name}", unit="line", file=sys.stderr) as bar:
            summary = await import_file(
                raw,
                path,
                EventRules.from_settings(settings),
                rejects,
                args.batch_size,
                progress=lambda lines: bar.update(lines - bar.n),
            )
        print(_summary_line(summary, rejects))
        if summary.lines and not (summary.accepted or summary.duplicates):
            raise _nothing_accepted(path, summary, rejects)
        return 0

    return run_with_connection(settings, work)


def add_commands(sub) -> None:
    features = sub.add_parser("features", help="feature maintenance")
    features_sub = features.add_subparsers(dest="features_command", required=True)
    recompute = features_sub.add_parser("recompute", help="rebuild feature buckets from events")
    recompute.add_argument("--customer", help="only this customer")
    recompute.set_defaults(func=cmd_recompute)

    events = sub.add_parser("events", help="the raw event log")
    events_sub = events.add_subparsers(dest="events_command", required=True)
    purge = events_sub.add_parser(
        "purge", help="delete events past SCORER_EVENT_RETENTION_DAYS now (features are kept)"
    )
    purge.add_argument("--as-of", type=as_of_argument, help=AS_OF_TODAY_HELP)
    purge.set_defaults(func=cmd_purge)

    importer = sub.add_parser("import", help="backfill events from NDJSON or orders from CSV")
    importer.add_argument("file")
    importer.add_argument(
        "--rejects", help="where to write rejected lines, if any (default FILE.rejects.ndjson)"
    )
    importer.add_argument("--batch-size", type=positive_int, default=5000)
    importer.set_defaults(func=cmd_import)
