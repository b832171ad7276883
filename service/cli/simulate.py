"""`scorer simulate`: a synthetic event stream plus the ground truth behind it."""

from __future__ import annotations

import argparse
from pathlib import Path

from service.cli.common import day_argument, fail
from service.simulation.config import DEFAULT_HORIZONS, DEFAULT_START, SimulationConfig
from service.simulation.simulator import simulate


def _horizons(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of days: {text!r}") from None


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="write a synthetic e-commerce event stream (NDJSON) and its ground truth (CSV)",
        description=(
            "Simulate customers joining, browsing, buying, churning and refunding over an "
            "observed period; write the events in POST /v1/events shape, one per line, in "
            "arrival order (with late and duplicated deliveries), and a ground-truth CSV of "
            "each customer's hidden parameters and future orders. Deterministic per seed."
        ),
    )
    parser.add_argument("--customers", type=int, required=True, help="number of customers")
    parser.add_argument("--days", type=int, required=True, help="length of the observed period")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", type=Path, required=True, help="NDJSON events file to write")
    parser.add_argument(
        "--truth", type=Path, help="ground-truth CSV (default: <out stem>.truth.csv next to --out)"
    )
    parser.add_argument(
        "--start",
        type=day_argument,
        default=DEFAULT_START,
        help=f"first day of the observed period, YYYY-MM-DD (default {DEFAULT_START})",
    )
    parser.add_argument(
        "--horizon-days",
        type=_horizons,
        action="append",
        help="ground-truth horizon in days; repeat or comma-separate "
        f"(default {','.join(map(str, DEFAULT_HORIZONS))})",
    )
    parser.add_argument(
        "--duplicate-rate",
        type=float,
        default=0.01,
        help="share of events re-sent verbatim later in the file (default 0.01)",
    )
    parser.add_argument(
        "--late-rate",
        type=float,
        default=0.02,
        help="share of events written days after their occurrence order (default 0.02)",
    )
    parser.add_argument(
        "--refund-rate",
        type=float,
        default=0.05,
        help="share of orders refunded, fully or partly (default 0.05)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    horizons = [h for group in args.horizon_days for h in group] if args.horizon_days else None
    try:
        config = SimulationConfig(
            customers=args.customers,
            days=args.days,
            seed=args.seed,
            start=args.start,
            horizons=tuple(horizons) if horizons else DEFAULT_HORIZONS,
            duplicate_rate=args.duplicate_rate,
            late_rate=args.late_rate,
            refund_rate=args.refund_rate,
        )
    except ValueError as error:
        return fail(str(error))
    summary = simulate(config, args.out, args.truth, progress=not args.quiet)
    print(summary.line())
    return 0
