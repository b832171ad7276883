"""`scorer customers erase|export`: a customer's erasure and export from the command line,
for whoever answers privacy requests without an API key at hand."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import asynccontextmanager, nullcontext
from pathlib import Path

from service.cli.common import UsageError, load_settings, run_with_connection


def cmd_customers(args: argparse.Namespace) -> int:
    from service.audit import service as audit
    from service.identifiers import normalise_id
    from service.privacy.erasure import erase
    from service.privacy.export import open_export

    settings = load_settings()
    try:
        customer_id = normalise_id(args.customer_id)
    except ValueError as error:
        raise UsageError(f"customer id {args.customer_id!r}: {error}") from error

    async def work(raw, _conn) -> int:
        if args.customers_command == "erase":
            if not args.yes:
                raise UsageError("an erasure cannot be undone: add --yes to erase this customer")
            outcome = await erase(
                raw, customer_id, audit.cli_actor(), settings.write_deadline_seconds
            )
            print(json.dumps({**vars(outcome), "erased_at": outcome.erased_at.isoformat()}))
            return 0

        @asynccontextmanager
        async def connection():
            yield raw

        document = await open_export(connection, customer_id, settings.zone, settings.currency)
        if document is None:
            raise UsageError(f"nothing is held about customer {customer_id!r}")
        with Path(args.out).open("w") if args.out else nullcontext(sys.stdout) as out:
            async for piece in document:
                out.write(piece)
            out.write("\n")
        await audit.record(raw, audit.cli_actor(), "customer.exported", customer_id)
        return 0

    return run_with_connection(settings, work)


def add_commands(sub: argparse._SubParsersAction) -> None:
    command = sub.add_parser("customers", help="erase or export one customer (privacy requests)")
    actions = command.add_subparsers(dest="customers_command", required=True)
    erase = actions.add_parser("erase", help="remove the customer from every table, for good")
    erase.add_argument("customer_id")
    erase.add_argument("--yes", action="store_true", help="confirm: an erasure cannot be undone")
    export = actions.add_parser("export", help="everything held about the customer, as JSON")
    export.add_argument("customer_id")
    export.add_argument("--out", help="write to this file (default: standard output)")
    for parser in (erase, export):
        parser.set_defaults(func=cmd_customers)
