"""`scorer`: the command line of the service (serve, migrate, keys, import, train, …).

Each module adds its commands to the parser; the commands call into the domains, which
never import the CLI.
"""

from __future__ import annotations

import argparse
import sys

from service.cli import data, keys, models, reports, scores, server, simulate


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scorer", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (server, keys, data, simulate, models, scores, reports):
        module.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
