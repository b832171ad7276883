"""`scorer`: the command line of the service (serve, migrate, keys, import, train, …).

Each module adds its commands to the parser; the commands call into the domains, which
never import the CLI. A user error ends as one line on stderr and exit status 2, never as
a traceback (`scorer --debug …` shows it).
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import version

import asyncpg

from service.cli import (
    consume,
    customers,
    data,
    embedded,
    keys,
    models,
    reports,
    scores,
    server,
    simulate,
    sources,
    worker,
)
from service.cli.common import UsageError, fail


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scorer", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {version('customer-scorer')}"
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (
        server,
        embedded,
        keys,
        sources,
        customers,
        consume,
        worker,
        data,
        simulate,
        models,
        scores,
        reports,
    ):
        module.add_commands(sub)
    return parser


def _problem(error: BaseException) -> str | None:
    """The one line telling the user what went wrong, for errors of input or environment;
    None for anything else, which is a bug and keeps its traceback."""
    if isinstance(error, UsageError):
        return str(error)
    if isinstance(error, asyncpg.PostgresConnectionError):
        return f"lost the database connection ({error}); run the command again"
    if isinstance(error, OSError):
        return f"{error.strerror}: {error.filename}" if error.filename else str(error)
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        problem = _problem(error)
        if problem is None or args.debug:
            raise
        return fail(problem)


if __name__ == "__main__":
    sys.exit(main())
