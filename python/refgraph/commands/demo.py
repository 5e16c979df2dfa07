"""``refgraph demo``: run a small leaking program and find its leak."""

from __future__ import annotations


def run(args):
    from .. import demo

    demo.main(out_dir=args.out_dir, requests=args.requests)
    return 0


def register(sub):
    p = sub.add_parser("demo", help="run a small leaking program and find its leak")
    p.add_argument(
        "--out-dir",
        default=".",
        help="where to write refgraph-demo.png, refgraph-demo.html and refgraph-demo-chain.png",
    )
    p.add_argument("--requests", type=int, default=500, help="requests to simulate")
    p.set_defaults(func=run)
