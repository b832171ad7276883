"""`scorer import` and `scorer features recompute`: the event log in bulk."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from service.cli.common import UsageError, load_settings, positive_int, run_with_connection

if TYPE_CHECKING:
    from service.backfill.importer import ImportSummary


def cmd_recompute(args: argparse.Namespace) -> int:
    from service.features.recompute import recompute

    async def work(raw, conn) -> int:
        one = args.customer is not None
        with tqdm(desc="recompute", unit="customer", file=sys.stderr, disable=one) as bar:
            count = await recompute(raw, args.customer, progress=bar.update)
        if one and not count:
            raise UsageError(
                f"no events for customer {args.customer!r}: nothing to rebuild "
                "(ids are case-sensitive; leave out --customer to rebuild everyone)"
            )
        print(f"recomputed features of {count} customer(s)")
        return 0

    return run_with_connection(load_settings(), work)


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

    importer = sub.add_parser("import", help="backfill events from NDJSON or orders from CSV")
    importer.add_argument("file")
    importer.add_argument(
        "--rejects", help="where to write rejected lines, if any (default FILE.rejects.ndjson)"
    )
    importer.add_argument("--batch-size", type=positive_int, default=5000)
    importer.set_defaults(func=cmd_import)
