"""refgraph: find what piles up in a Python process and what keeps it alive.

A fast drop-in replacement for objgraph: ``import refgraph as objgraph`` runs objgraph
programs unchanged. The heap is captured once per call by a Rust extension; graphs are drawn
to PNG and SVG without Graphviz.
"""

from __future__ import annotations

from . import _refgraph
from .graphs import (
    find_backref_chain,
    find_ref_chain,
    show_backrefs,
    show_chain,
    show_refs,
)
from .labels import is_proper_module
from .leaks import LeakReport, Suspect, find_leaks, leaks_between
from .snapshot import Snapshot, SnapshotError, dump_on_signal, load, snapshot
from .snapshot import from_bytes as snapshot_from_bytes
from .stats import (
    at,
    at_addrs,
    by_type,
    count,
    get_leaking_objects,
    get_new_ids,
    growth,
    most_common_types,
    show_growth,
    show_most_common_types,
    typestats,
)

__version__ = _refgraph.__version__  # from Cargo.toml, through the extension

__all__ = [
    "LeakReport",
    "Suspect",
    "find_leaks",
    "leaks_between",
    "Snapshot",
    "SnapshotError",
    "dump_on_signal",
    "load",
    "snapshot",
    "snapshot_from_bytes",
    "at",
    "at_addrs",
    "by_type",
    "count",
    "find_backref_chain",
    "find_ref_chain",
    "get_leaking_objects",
    "get_new_ids",
    "growth",
    "is_proper_module",
    "most_common_types",
    "show_backrefs",
    "show_chain",
    "show_growth",
    "show_most_common_types",
    "show_refs",
    "typestats",
]
