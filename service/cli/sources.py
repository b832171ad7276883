"""`scorer sources add|list|remove`: the signing secrets of Shopify shops and Stripe
endpoints. A secret is read from stdin (or an environment variable), never from the command
line, where shell history and `ps` would keep it; listings show only a fingerprint."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from service.cli.common import UsageError, load_settings, run_with_connection

if TYPE_CHECKING:
    from service.sources.secrets import SecretRecord


def _secret(args: argparse.Namespace) -> str:
    if args.secret_env:
        value = os.environ.get(args.secret_env)
        if not value:
            raise UsageError(f"--secret-env: the variable {args.secret_env} is unset or empty")
        return value
    if sys.stdin.isatty():
        print(f"paste the {args.kind} secret, then Enter:", file=sys.stderr)
    value = sys.stdin.readline().strip()
    if not value:
        raise UsageError("no secret on stdin: pipe it in, or use --secret-env VARIABLE")
    return value


def _audited(record: SecretRecord) -> dict[str, str]:
    """What the audit log shows of a source secret: never the secret."""
    return {"kind": record.kind, "account": record.account, "fingerprint": record.fingerprint}


def cmd_sources(args: argparse.Namespace) -> int:
    from service.audit import service as audit
    from service.sources import secrets

    secret = _secret(args) if args.sources_command == "add" else None

    async def work(raw, conn) -> int:
        if args.sources_command == "add":
            async with raw.transaction():
                try:
                    record = await secrets.add(raw, args.kind, args.account, secret)
                except ValueError as error:
                    raise UsageError(f"{error}") from error
                await audit.record(
                    raw, audit.cli_actor(), "source.added", record.id, _audited(record)
                )
            print(record.id)
            print(
                f"added {record.kind} secret for {record.account} ({record.fingerprint})",
                file=sys.stderr,
            )
        elif args.sources_command == "list":
            for item in await secrets.listing(raw):
                print(
                    f"{item.id}\t{item.kind}\t{item.account}\t{item.fingerprint}\t"
                    f"{item.created_at:%Y-%m-%d %H:%M}"
                )
        else:
            async with raw.transaction():
                record = await secrets.remove(raw, args.id)
                if record is None:
                    raise UsageError(
                        f"no source secret has the id {args.id!r} (see `scorer sources list`)"
                    )
                await audit.record(
                    raw, audit.cli_actor(), "source.removed", record.id, _audited(record)
                )
            print(f"removed {args.id}")
        return 0

    return run_with_connection(load_settings(), work)


def add_commands(sub) -> None:
    sources = sub.add_parser("sources", help="manage Shopify and Stripe webhook secrets")
    sources_sub = sources.add_subparsers(dest="sources_command", required=True)
    add = sources_sub.add_parser("add", help="add a secret (read from stdin)")
    kinds = add.add_subparsers(dest="kind", required=True)
    shopify = kinds.add_parser("shopify", help="a Shopify app's secret for one shop")
    shopify.add_argument("--shop", dest="account", required=True, help="e.g. my-shop.myshopify.com")
    stripe = kinds.add_parser("stripe", help="a Stripe webhook endpoint's secret (whsec_…)")
    stripe.add_argument("--account", required=True, help="a name for it, e.g. the acct_ id")
    for parser in (shopify, stripe):
        parser.add_argument(
            "--secret-env", metavar="VARIABLE", help="read the secret from this variable"
        )
    sources_sub.add_parser("list", help="list secrets (fingerprints only)")
    remove = sources_sub.add_parser("remove", help="remove a secret by id")
    remove.add_argument("id")
    sources.set_defaults(func=cmd_sources)
