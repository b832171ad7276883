"""`scorer train`, `scorer models list|activate|register`, `scorer evaluate`, `scorer backtest`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from service.cli.common import (
    AS_OF_HELP,
    UsageError,
    as_of_argument,
    as_of_day,
    database_url,
    day_of,
    load_settings,
    positive_int,
    run_with_connection,
)
from service.config import Settings
from service.modeling.artifacts import MANIFEST_FILE, MODEL_NAMES, Manifest

if TYPE_CHECKING:
    from service.training.pipeline import NotEnoughHistory


def trained_models_dir(settings: Settings) -> Path:
    """Where `scorer train` writes: the shipped `models/` stay the untouched defaults."""
    return settings.data_dir / "models"


def _train_config(settings: Settings, args: argparse.Namespace, churn_days, pcltv_days, as_of):
    """The run's configuration: flags where given, else the settings."""
    from service.training.pipeline import TrainConfig

    margin = getattr(args, "margin", None)
    discount_rate = getattr(args, "discount_rate", None)
    return TrainConfig(
        churn_horizon_days=churn_days or settings.churn.horizon_days,
        pcltv_horizon_days=pcltv_days or settings.pcltv.horizon_days,
        margin=settings.pcltv.margin if margin is None else margin,
        annual_discount_rate=settings.pcltv.discount_rate
        if discount_rate is None
        else discount_rate,
        as_of=as_of,
        seed=args.seed,
        value_tiers=settings.pcltv.tiers(),
    )


def _log(prefix: str):
    def log(line: str) -> None:
        print(f"[{prefix}] {line}", file=sys.stderr, flush=True)

    return log


def history_problem(error: NotEnoughHistory, as_of_flag: str) -> str:
    """The as-of day outside the events, and the days that would do."""
    first, last, as_of = error.first_day, error.last_day, error.as_of
    if as_of > last:
        return (
            f"{as_of_flag} {as_of} is after the newest event day {last}: the horizons after "
            f"it have no outcomes yet; give a day up to {last}"
        )
    return (
        f"{as_of_flag} {as_of} is before the first event day {first}: nothing to learn; "
        f"give a day from {first} to {last}"
    )


def cmd_train(args: argparse.Namespace) -> int:
    from service.training.pipeline import NotEnoughHistory, train

    settings = load_settings()
    models_dir = Path(args.models_dir) if args.models_dir else trained_models_dir(settings)

    async def work(raw, conn) -> int:
        day = await as_of_day(raw, args.as_of, settings.zone)
        config = _train_config(
            settings, args, args.churn_horizon_days, args.pcltv_horizon_days, day
        )
        try:
            result = await train(raw, config, models_dir, _log("train"))
        except NotEnoughHistory as error:
            raise UsageError(history_problem(error, "--as-of")) from error
        except ValueError as error:
            raise UsageError(str(error)) from error
        for name, folder in result.folders.items():
            manifest = await _register_audited(raw, folder, activate=not args.no_activate)
            print(f"{name} {manifest.version} -> {folder}")
        print(json.dumps(result.metrics, indent=2, default=str))
        print(f"report: {result.report}")
        return 0

    return run_with_connection(settings, work)


def _require_artifact_folder(text: str) -> None:
    if not (Path(text) / MANIFEST_FILE).is_file():
        raise UsageError(
            f"{text} is no model folder: it has no {MANIFEST_FILE} "
            "(give a <name>/<version> folder as `scorer train` writes)"
        )


async def _register_audited(raw, folder: Path, activate: bool) -> Manifest:
    """Register (and activate) an artifact, audited in the same transaction."""
    from service.audit import service as audit
    from service.modeling import registry

    async with raw.transaction():
        manifest = await registry.register(raw, folder)
        subject = f"{manifest.name}@{manifest.version}"
        details = {"name": manifest.name, "version": manifest.version, "folder": str(folder)}
        await audit.record(raw, audit.cli_actor(), "model.registered", subject, details)
        if activate:
            await _activate_audited(raw, manifest.name, manifest.version)
    return manifest


async def _activate_audited(raw, name: str, version: str) -> None:
    """Activate a version, audited with the one it replaced (the rollback target)."""
    from service.audit import service as audit
    from service.modeling import registry

    async with raw.transaction():
        previous = await registry.activate(raw, name, version)
        details = {"name": name, "version": version, "previous_version": previous}
        await audit.record(raw, audit.cli_actor(), "model.activated", f"{name}@{version}", details)


async def _register(raw, args: argparse.Namespace) -> int:
    folder = Path(args.folder)
    try:
        manifest = await _register_audited(raw, folder, activate=args.activate)
    except (ValueError, TypeError, KeyError) as error:
        raise UsageError(f"{folder} holds no valid model artifact ({error})") from error
    print(f"registered {manifest.name} {manifest.version}")
    return 0


async def _activate(raw, args: argparse.Namespace) -> int:
    try:
        await _activate_audited(raw, args.name, args.version)
    except LookupError as error:
        raise UsageError(f"{error} (see `scorer models list`)") from error
    print(f"activated {args.name} {args.version}")
    return 0


async def _list(raw, args: argparse.Namespace) -> int:
    from service.modeling import registry

    await registry.ensure_shipped(raw)
    for row in await registry.list_models(raw):
        mark = "*" if row["active"] else " "
        print(f"{mark} {row['name']:<8} {row['version']}  registered {row['registered_at']:%F %T}")
    return 0


async def _reference(raw, args: argparse.Namespace) -> int:
    from service.training.reference import rewrite_references

    try:
        manifests = await rewrite_references(raw, [Path(folder) for folder in args.folders])
    except (ValueError, KeyError) as error:
        raise UsageError(f"no reference for {' '.join(args.folders)} ({error})") from error
    for manifest in manifests:
        reference = manifest.reference
        print(
            f"{manifest.name} {manifest.version}: reference of {reference['customers']} "
            f"customers on {reference['cutoff']}"
        )
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    commands = {
        "register": _register,
        "activate": _activate,
        "list": _list,
        "reference": _reference,
    }
    command = commands[args.models_command]
    if args.models_command == "register":
        _require_artifact_folder(args.folder)
    for folder in getattr(args, "folders", []):
        _require_artifact_folder(folder)
    return run_with_connection(load_settings(), lambda raw, conn: command(raw, args))


def _truth(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise UsageError(
            f"--truth {path}: no such file (give the .truth.csv that `scorer simulate` writes)"
        )
    return path


def cmd_evaluate(args: argparse.Namespace) -> int:
    from service.modeling.registry import ensure_shipped
    from service.scoring.store import ModelStore
    from service.training.evaluate import predict_at, side_by_side, truth_outcomes

    settings = load_settings()
    truth = _truth(args.truth)

    async def work(raw, conn) -> int:
        day = await as_of_day(raw, args.as_of, settings.zone)
        known = "SELECT EXISTS (SELECT 1 FROM customers WHERE first_seen_day <= $1)"
        if not await raw.fetchval(known, day):
            raise UsageError(f"no customer is known as of {day}: give a later --as-of")
        await ensure_shipped(raw)
        store = ModelStore(settings.pcltv.tiers())
        await store.refresh(raw)
        models = store.current
        pcltv_days, churn_days = models.horizon("pcltv"), models.horizon("churn")
        predictions = await predict_at(raw, models, day, pcltv_days)
        try:
            churned, spend = truth_outcomes(truth, predictions.customer_ids, churn_days, pcltv_days)
        except KeyError as error:
            raise UsageError(f"--truth {truth} has no {error} column: not a truth file") from error
        except ValueError as error:
            raise UsageError(str(error)) from error
        report = side_by_side(predictions, churned, spend)
        report.update(
            as_of=str(day), customers=len(predictions.customer_ids), model_versions=models.versions
        )
        print(json.dumps(report, indent=2))
        return 0

    return run_with_connection(settings, work)


def cmd_backtest(args: argparse.Namespace) -> int:
    import asyncio

    import asyncpg

    from service.db import asyncpg_dsn
    from service.events.validation import EventRules
    from service.training import backtest
    from service.training.pipeline import NotEnoughHistory

    settings = load_settings()
    path = Path(args.transactions)
    if not path.is_file():
        raise UsageError(
            f"--transactions {path}: no such file (give a CSV of customer_id,date,amount)"
        )
    cutoff = day_of(args.cutoff, settings.zone)
    config = _train_config(settings, args, args.horizon_days, args.horizon_days, cutoff)
    log = _log("backtest")
    server = database_url(settings)

    async def main(url: str) -> dict:
        await backtest.import_transactions(url, path, EventRules.from_settings(settings), log)
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            return await backtest.run_backtest(conn, config, log)
        finally:
            await conn.close()

    url = backtest.scratch_database(server)
    try:
        report = asyncio.run(main(url))
    except NotEnoughHistory as error:
        raise UsageError(history_problem(error, "--cutoff")) from error
    except ValueError as error:
        raise UsageError(str(error)) from error
    finally:
        backtest.drop_database(server, url)
    text = backtest.markdown(report)
    print(text)
    out = Path(args.out) if args.out else path.with_suffix(".backtest.json")
    out.write_text(json.dumps(report, indent=2))
    out.with_suffix(".md").write_text(text)
    print(f"written: {out} and {out.with_suffix('.md')}")
    return 0


def add_commands(sub) -> None:
    train = sub.add_parser("train", help="train, export and register churn/pCLTV/segment models")
    train.add_argument(
        "--as-of", type=as_of_argument, help=f"last day of data to use: {AS_OF_HELP}"
    )
    train.add_argument(
        "--churn-horizon-days", type=positive_int, help="SCORER_CHURN_HORIZON_DAYS (90)"
    )
    train.add_argument(
        "--pcltv-horizon-days", type=positive_int, help="SCORER_PCLTV_HORIZON_DAYS (365)"
    )
    train.add_argument("--margin", type=float, help="SCORER_PCLTV_MARGIN (1.0)")
    train.add_argument("--discount-rate", type=float, help="SCORER_PCLTV_DISCOUNT_RATE (0)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--models-dir", help="where artifacts go (default: SCORER_DATA_DIR/models)")
    train.add_argument("--no-activate", action="store_true", help="register without activating")
    train.set_defaults(func=cmd_train)

    models = sub.add_parser("models", help="list or activate model versions")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    models_sub.add_parser("list", help="registered versions (* = active)")
    register = models_sub.add_parser("register", help="register an artifact folder")
    register.add_argument("folder", help="<models dir>/<name>/<version>")
    register.add_argument("--activate", action="store_true")
    activate = models_sub.add_parser("activate", help="make a version active (hot reload)")
    activate.add_argument("name", choices=MODEL_NAMES)
    activate.add_argument("version")
    reference = models_sub.add_parser(
        "reference",
        help="recompute the drift references of one training run's churn, pCLTV and segment "
        "artifacts from the database they were trained on, into their manifests",
    )
    reference.add_argument("folders", nargs="+", help="<models dir>/<name>/<version> folders")
    models.set_defaults(func=cmd_models)

    evaluate = sub.add_parser(
        "evaluate", help="metrics of the active models against a simulator truth file"
    )
    evaluate.add_argument("--truth", required=True, help="the .truth.csv of `scorer simulate`")
    evaluate.add_argument("--as-of", type=as_of_argument, help=f"day to predict from: {AS_OF_HELP}")
    evaluate.set_defaults(func=cmd_evaluate)

    backtest = sub.add_parser("backtest", help="train before a cutoff, score the horizon after it")
    backtest.add_argument("--transactions", required=True, help="CSV: customer_id,date,amount")
    backtest.add_argument(
        "--cutoff",
        required=True,
        type=as_of_argument,
        help="last day the models see: a day or an RFC 3339 timestamp with offset",
    )
    backtest.add_argument("--horizon-days", type=positive_int, default=90)
    backtest.add_argument("--seed", type=int, default=0)
    backtest.add_argument("--out", help="report path (default: FILE.backtest.json, and .md)")
    backtest.set_defaults(func=cmd_backtest)
