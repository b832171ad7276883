"""`scorer keys create|list|revoke`."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from service.cli.common import (
    UsageError,
    as_of_argument,
    load_settings,
    positive_int,
    run_with_connection,
)


def cmd_keys(args: argparse.Namespace) -> int:
    from service.access import service as keys
    from service.audit import service as audit

    settings = load_settings()

    async def work(raw, conn) -> int:
        now = datetime.now(UTC)
        if args.keys_command == "create":
            if args.rate_limit is not None and args.rate_limit < 0:
                raise UsageError("--rate-limit: give requests per second, 0 or more (0: none)")
            expires_at = _expiry(args, settings.zone, now)
            try:
                key, record = await keys.create_key(
                    conn, args.name, args.scopes.split(","), args.rate_limit, expires_at
                )
            except ValueError as error:
                raise UsageError(f"--scopes: {error}") from error
            created = {
                "name": record.name,
                "scopes": list(record.scopes),
                "rate_limit_per_second": record.rate_limit_per_second,
                "expires_at": record.expires_at,
            }
            await audit.record_sa(conn, audit.cli_actor(), "key.created", record.prefix, created)
            print(key)
            print(
                f"created {record.name} ({record.prefix}…) scopes={','.join(record.scopes)}"
                f"{_until(record.expires_at)}; the key is shown only now",
                file=sys.stderr,
            )
        elif args.keys_command == "list":
            for item in await keys.list_keys(conn):
                limit = _limit(item.rate_limit_per_second)
                expiry = f"expires {_utc(item.expires_at)}" if item.expires_at else "no expiry"
                print(
                    f"{item.prefix}…\t{item.name}\t{','.join(item.scopes)}\t{limit}\t{expiry}\t"
                    f"{_state(item, now)}"
                )
        else:
            revoked = await keys.revoke_key(conn, args.key)
            if not revoked:
                raise UsageError(
                    f"no active key has the prefix or name {args.key!r} (see `scorer keys list`)"
                )
            for item in revoked:
                await audit.record_sa(
                    conn, audit.cli_actor(), "key.revoked", item.prefix, {"name": item.name}
                )
            print(f"revoked {len(revoked)} key(s)")
        return 0

    return run_with_connection(settings, work)


def _expiry(args: argparse.Namespace, zone: ZoneInfo, now: datetime) -> datetime | None:
    """When the new key stops working: `--expires-in` days from now, or `--expires-at` (a
    day: its start in SCORER_TIMEZONE); None: never."""
    if args.expires_in is not None and args.expires_at is not None:
        raise UsageError("give --expires-in or --expires-at, not both")
    if args.expires_in is not None:
        return now + timedelta(days=args.expires_in)
    if args.expires_at is None:
        return None
    at = args.expires_at
    if not isinstance(at, datetime):
        at = datetime.combine(at, time(), zone)
    if at <= now:
        raise UsageError(
            f"--expires-at {args.expires_at.isoformat()} is in the past; give a later day or time"
        )
    return at


def _utc(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _until(expires_at: datetime | None) -> str:
    return f" expires {_utc(expires_at)}" if expires_at else ""


def _state(key, now: datetime) -> str:
    if key.revoked_at:
        return f"revoked {key.revoked_at:%Y-%m-%d}"
    return f"expired {_utc(key.expires_at)}" if key.expired(now) else "active"


def _limit(rate: float | None) -> str:
    if rate is None:
        return "default rate limit"
    return "no rate limit" if rate == 0 else f"{rate:g}/s"


def add_commands(sub) -> None:
    keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True)
    create.add_argument(
        "--scopes", default="scores:read", help="comma list of events:write, scores:read, admin"
    )
    create.add_argument(
        "--rate-limit",
        type=float,
        help="requests per second per worker for this key (0: none; default: "
        "SCORER_RATE_LIMIT_PER_SECOND)",
    )
    create.add_argument(
        "--expires-in", type=positive_int, metavar="DAYS", help="days until the key stops working"
    )
    create.add_argument(
        "--expires-at",
        type=as_of_argument,
        metavar="DAY_OR_TIMESTAMP",
        help="the key stops working then: an RFC 3339 timestamp with offset, or a day "
        "(2027-01-31: its start in SCORER_TIMEZONE); default: never",
    )
    keys_sub.add_parser("list", help="list keys (prefixes only)")
    revoke = keys_sub.add_parser("revoke", help="revoke a key by prefix or name")
    revoke.add_argument("key")
    keys.set_defaults(func=cmd_keys)
