"""The ``refgraph`` command line (also ``python -m refgraph``).

Subcommands live in :mod:`refgraph.commands`, one module each.
"""

from __future__ import annotations

import argparse
import sys

from .commands import COMMANDS
from .commands._common import Failure


def build_parser():
    parser = argparse.ArgumentParser(
        prog="refgraph",
        description="Find what piles up in a Python process and what keeps it alive.",
        epilog="Snapshots: refgraph.snapshot().save('app.rgsnap') in the program, or "
        "refgraph.dump_on_signal() and kill -USR2 <pid>.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except Failure as e:
        print(f"refgraph {args.command}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("refgraph: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
