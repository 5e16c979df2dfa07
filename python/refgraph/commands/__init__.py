"""The ``refgraph`` command line: one module per subcommand.

Each module has ``register(subparsers)``, which adds its parser and sets ``func`` to a function
that takes the parsed arguments and returns the exit code: 0 on success, 1 when the input cannot
be used (a missing or corrupt snapshot, no such type), 2 for usage errors (argparse).
"""

from . import attach, demo, diff, graph, info, leaks, paths, report, top

COMMANDS = [demo, top, diff, leaks, paths, graph, info, report, attach]
