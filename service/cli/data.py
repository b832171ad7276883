"""`scorer import` and `scorer features recompute`: the event log in bulk."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from service.cli.common import fail, run_with_connection
from service.config import get_settings


def cmd_recompute(args: argparse.Namespace) -> int:
    from service.features.recompute import recompute

    async def work(raw, conn) -> int:
        with tqdm(desc="recompute", unit="customer", file=sys.stderr) as bar:
            count = await recompute(raw, args.customer, progress=bar.update)
        print(f"recomputed features of {count} customer(s)")
        return 0

    return run_with_connection(get_settings(), work)


def cmd_import(args: argparse.Namespace) -> int:
    from service.backfill.importer import import_file
    from service.events.validation import EventRules

    settings = get_settings()
    path = Path(args.file)
    if not path.is_file():
        return fail(f"no such file {path}")
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
        print(
            f"lines {summary.lines}: accepted {summary.accepted}, duplicates "
            f"{summary.duplicates}, rejected {summary.rejected} (details: {rejects})"
        )
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
        "--rejects", help="where to write rejected lines (default FILE.rejects.ndjson)"
    )
    importer.add_argument("--batch-size", type=int, default=5000)
    importer.set_defaults(func=cmd_import)
