"""`scorer report offers`: acceptance per offer and uplift over the control group."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta

from service.cli.common import load_settings, positive_int, run_with_connection


def _report_offers(args: argparse.Namespace) -> int:
    from service.offers.report import offers_report

    end = datetime.now(UTC)
    start = end - timedelta(days=args.since_days)

    async def work(raw, conn) -> int:
        report = await offers_report(raw, start, end, args.outcome_days)
        print(json.dumps(report, indent=2))
        return 0

    return run_with_connection(load_settings(), work)


def add_commands(sub) -> None:
    report = sub.add_parser("report", help="reports")
    kinds = report.add_subparsers(dest="report", required=True)
    offers = kinds.add_parser("offers", help="acceptance per offer and uplift over control")
    offers.add_argument(
        "--since-days", type=positive_int, default=90, help="decisions of the last N days"
    )
    offers.add_argument(
        "--outcome-days", type=positive_int, default=30, help="outcome window per decision"
    )
    offers.set_defaults(func=_report_offers)
