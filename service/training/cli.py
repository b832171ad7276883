"""`scorer train`, `scorer models list|activate`."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path


def _train(args: argparse.Namespace) -> int:
    from service.cli import run_with_connection
    from service.config import get_settings
    from service.training import artifacts, registry
    from service.training.pipeline import TrainConfig, train

    settings = get_settings()
    config = TrainConfig(
        as_of=date.fromisoformat(args.as_of) if args.as_of else None,
        churn_horizon_days=args.churn_horizon_days or settings.churn_horizon_days,
        pcltv_horizon_days=args.pcltv_horizon_days or settings.pcltv_horizon_days,
        margin=settings.pcltv_margin if args.margin is None else args.margin,
        annual_discount_rate=(
            settings.pcltv_discount_rate if args.discount_rate is None else args.discount_rate
        ),
        seed=args.seed,
    )
    models_dir = Path(args.models_dir) if args.models_dir else artifacts.MODELS_DIR

    async def work(raw, conn) -> int:
        def log(line: str) -> None:
            print(f"[train] {line}", file=sys.stderr, flush=True)

        result = await train(raw, config, models_dir, log)
        for name, folder in result.folders.items():
            manifest = await registry.register(raw, folder)
            if not args.no_activate:
                await registry.activate(raw, name, manifest.version)
            print(f"{name} {manifest.version} -> {folder}")
        print(json.dumps(result.metrics, indent=2, default=str))
        print(f"report: {result.report}")
        return 0

    return run_with_connection(settings, work)


def _models(args: argparse.Namespace) -> int:
    from service.cli import run_with_connection
    from service.config import get_settings
    from service.training import registry

    async def work(raw, conn) -> int:
        if args.models_command == "register":
            manifest = await registry.register(raw, Path(args.folder))
            if args.activate:
                await registry.activate(raw, manifest.name, manifest.version)
            print(f"registered {manifest.name} {manifest.version}")
            return 0
        if args.models_command == "activate":
            try:
                await registry.activate(raw, args.name, args.version)
            except LookupError as error:
                print(f"error: {error}", file=sys.stderr)
                return 2
            print(f"activated {args.name} {args.version}")
            return 0
        await registry.ensure_shipped(raw)
        for row in await registry.list_models(raw):
            mark = "*" if row["active"] else " "
            print(
                f"{mark} {row['name']:<8} {row['version']}  registered {row['registered_at']:%F %T}"
            )
        return 0

    return run_with_connection(get_settings(), work)


def add_commands(sub) -> None:
    train = sub.add_parser("train", help="train, export and register churn/pCLTV/segment models")
    train.add_argument("--as-of", help="last day of data to use (default: newest event day)")
    train.add_argument("--churn-horizon-days", type=int, help="SCORER_CHURN_HORIZON_DAYS (90)")
    train.add_argument("--pcltv-horizon-days", type=int, help="SCORER_PCLTV_HORIZON_DAYS (365)")
    train.add_argument("--margin", type=float, help="SCORER_PCLTV_MARGIN (1.0)")
    train.add_argument("--discount-rate", type=float, help="SCORER_PCLTV_DISCOUNT_RATE (0)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--models-dir", help="where artifacts go (default: models/)")
    train.add_argument("--no-activate", action="store_true", help="register without activating")
    train.set_defaults(func=_train)

    models = sub.add_parser("models", help="list or activate model versions")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    models_sub.add_parser("list", help="registered versions (* = active)")
    register = models_sub.add_parser("register", help="register an artifact folder")
    register.add_argument("folder", help="models/<name>/<version>")
    register.add_argument("--activate", action="store_true")
    activate = models_sub.add_parser("activate", help="make a version active (hot reload)")
    activate.add_argument("name", choices=["churn", "pcltv", "segment", "nbo"])
    activate.add_argument("version")
    models.set_defaults(func=_models)
    add_evaluation_commands(sub)
    add_backtest_command(sub)


def _evaluate(args: argparse.Namespace) -> int:
    from service.cli import run_with_connection
    from service.config import get_settings
    from service.scoring.engine import Tiers
    from service.scoring.store import ModelStore
    from service.training.dataset import data_span
    from service.training.evaluate import predict_at, side_by_side, truth_outcomes
    from service.training.registry import ensure_shipped

    settings = get_settings()

    async def work(raw, conn) -> int:
        await ensure_shipped(raw)
        store = ModelStore(Tiers(settings.pcltv_tier_high, settings.pcltv_tier_medium))
        await store.refresh(raw)
        models = store.current
        day = date.fromisoformat(args.as_of) if args.as_of else (await data_span(raw))[1]
        pcltv_days, churn_days = models.horizon("pcltv"), models.horizon("churn")
        predictions = await predict_at(raw, models, day, pcltv_days)
        churned, spend = truth_outcomes(
            Path(args.truth), predictions.customer_ids, churn_days, pcltv_days
        )
        report = side_by_side(predictions, churned, spend)
        report.update(
            as_of=str(day), customers=len(predictions.customer_ids), model_versions=models.versions
        )
        print(json.dumps(report, indent=2))
        return 0

    return run_with_connection(settings, work)


def add_evaluation_commands(sub) -> None:
    evaluate = sub.add_parser(
        "evaluate", help="metrics of the active models against a simulator truth file"
    )
    evaluate.add_argument("--truth", required=True, help="the .truth.csv of `scorer simulate`")
    evaluate.add_argument("--as-of", help="day to predict from (default: newest event day)")
    evaluate.set_defaults(func=_evaluate)


def _backtest(args: argparse.Namespace) -> int:
    import asyncio

    import asyncpg

    from service.cli import database_url, event_rules
    from service.config import get_settings
    from service.db import asyncpg_dsn
    from service.training import backtest

    settings = get_settings()
    server = database_url(settings)
    path = Path(args.transactions)

    def log(line: str) -> None:
        print(f"[backtest] {line}", file=sys.stderr, flush=True)

    async def main(url: str) -> dict:
        await backtest.import_transactions(url, path, event_rules(settings), log)
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            return await backtest.run_backtest(
                conn, date.fromisoformat(args.cutoff), args.horizon_days, args.seed, log
            )
        finally:
            await conn.close()

    url = backtest.scratch_database(server)
    try:
        report = asyncio.run(main(url))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        backtest.drop_database(server, url)
    text = backtest.markdown(report)
    print(text)
    out = Path(args.out) if args.out else path.with_suffix(".backtest.json")
    out.write_text(json.dumps(report, indent=2))
    out.with_suffix(".md").write_text(text)
    print(f"written: {out} and {out.with_suffix('.md')}")
    return 0


def add_backtest_command(sub) -> None:
    parser = sub.add_parser("backtest", help="train before a cutoff, score the horizon after it")
    parser.add_argument("--transactions", required=True, help="CSV: customer_id,date,amount")
    parser.add_argument("--cutoff", required=True, help="YYYY-MM-DD: last day the models see")
    parser.add_argument("--horizon-days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="report path (default: FILE.backtest.json, and .md)")
    parser.set_defaults(func=_backtest)
