"""The ``refgraph`` command line (also ``python -m refgraph``)."""

from __future__ import annotations

import argparse
import sys


def _demo(args):
    from . import demo

    demo.main(out_dir=args.out_dir, requests=args.requests)
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="refgraph",
        description="Find what piles up in a Python process and what keeps it alive.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="run a small leaking program and find its leak")
    demo.add_argument("--out-dir", default=".", help="where to write refgraph-demo.png")
    demo.add_argument("--requests", type=int, default=500, help="requests to simulate")
    demo.set_defaults(func=_demo)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("refgraph: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
