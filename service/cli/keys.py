"""`scorer keys create|list|revoke`."""

from __future__ import annotations

import argparse
import sys

from service.cli.common import UsageError, load_settings, run_with_connection


def cmd_keys(args: argparse.Namespace) -> int:
    from service.access import service as keys

    async def work(raw, conn) -> int:
        if args.keys_command == "create":
            if args.rate_limit is not None and args.rate_limit < 0:
                raise UsageError("--rate-limit: give requests per second, 0 or more (0: none)")
            try:
                key, record = await keys.create_key(
                    conn, args.name, args.scopes.split(","), args.rate_limit
                )
            except ValueError as error:
                raise UsageError(f"--scopes: {error}") from error
            print(key)
            print(
                f"created {record.name} ({record.prefix}…) scopes={','.join(record.scopes)}; "
                "the key is shown only now",
                file=sys.stderr,
            )
        elif args.keys_command == "list":
            for item in await keys.list_keys(conn):
                state = f"revoked {item.revoked_at:%Y-%m-%d}" if item.revoked_at else "active"
                limit = _limit(item.rate_limit_per_second)
                print(f"{item.prefix}…\t{item.name}\t{','.join(item.scopes)}\t{limit}\t{state}")
        else:
            count = await keys.revoke_key(conn, args.key)
            if not count:
                raise UsageError(
                    f"no active key has the prefix or name {args.key!r} (see `scorer keys list`)"
                )
            print(f"revoked {count} key(s)")
        return 0

    return run_with_connection(load_settings(), work)


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
    keys_sub.add_parser("list", help="list keys (prefixes only)")
    revoke = keys_sub.add_parser("revoke", help="revoke a key by prefix or name")
    revoke.add_argument("key")
    keys.set_defaults(func=cmd_keys)
