from collections import defaultdict
from collections.abc import Callable, Collection, Iterable
from typing import IO, Any

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

from .leaks import (
    LeakReport as LeakReport,
)
from .leaks import (
    Suspect as Suspect,
)
from .leaks import (
    find_leaks as find_leaks,
)
from .leaks import (
    leaks_between as leaks_between,
)
from .snapshot import (
    Paths as Paths,
)
from .snapshot import (
    Snapshot as Snapshot,
)
from .snapshot import (
    SnapshotError as SnapshotError,
)
from .snapshot import (
    dump_on_signal as dump_on_signal,
)
from .snapshot import (
    load as load,
)
from .snapshot import (
    snapshot as snapshot,
)

__version__: str

Predicate = Callable[[Any], object]

def count(typename: str, objects: Iterable[Any] | None = None) -> int: ...
def typestats(
    objects: Iterable[Any] | None = None,
    shortnames: bool = True,
    filter: Predicate | None = None,
) -> dict[str, int]: ...
def most_common_types(
    limit: int | None = 10,
    objects: Iterable[Any] | None = None,
    shortnames: bool = True,
    filter: Predicate | None = None,
) -> list[tuple[str, int]]: ...
def show_most_common_types(
    limit: int | None = 10,
    objects: Iterable[Any] | None = None,
    shortnames: bool = True,
    file: IO[str] | None = None,
    filter: Predicate | None = None,
) -> None: ...
def growth(
    limit: int | None = 10,
    peak_stats: dict[str, int] = ...,
    shortnames: bool = True,
    filter: Predicate | None = None,
) -> list[tuple[str, int, int]]: ...
def show_growth(
    limit: int | None = 10,
    peak_stats: dict[str, int] | None = None,
    shortnames: bool = True,
    file: IO[str] | None = None,
    filter: Predicate | None = None,
) -> None: ...
def get_new_ids(
    skip_update: bool = False,
    limit: int | None = 10,
    sortby: str = "deltas",
    shortnames: bool | None = None,
    file: IO[str] | None = None,
    _state: dict[str, Any] = ...,
) -> defaultdict[str, set[int]]: ...
def get_leaking_objects(objects: Iterable[Any] | None = None) -> list[Any]: ...
def by_type(typename: str, objects: Iterable[Any] | None = None) -> list[Any]: ...
def at(addr: int) -> Any | None: ...
def at_addrs(address_set: Collection[int]) -> list[Any]: ...
def is_proper_module(obj: object) -> bool: ...
def find_ref_chain(
    obj: object, predicate: Predicate, max_depth: int = 20, extra_ignore: Iterable[int] = ()
) -> list[Any]: ...
def find_backref_chain(
    obj: object, predicate: Predicate, max_depth: int = 20, extra_ignore: Iterable[int] = ()
) -> list[Any]: ...
def show_refs(
    objs: Any,
    max_depth: int = 3,
    extra_ignore: Iterable[int] = (),
    filter: Predicate | None = None,
    too_many: int = 10,
    highlight: Predicate | None = None,
    filename: str | None = None,
    extra_info: Callable[[Any], object] | None = None,
    refcounts: bool = False,
    shortnames: bool = True,
    output: IO[str] | None = None,
    extra_node_attrs: Callable[[Any], dict[str, object]] | None = None,
    renderer: str | None = None,
) -> Any: ...
def show_backrefs(
    objs: Any,
    max_depth: int = 3,
    extra_ignore: Iterable[int] = (),
    filter: Predicate | None = None,
    too_many: int = 10,
    highlight: Predicate | None = None,
    filename: str | None = None,
    extra_info: Callable[[Any], object] | None = None,
    refcounts: bool = False,
    shortnames: bool = True,
    output: IO[str] | None = None,
    extra_node_attrs: Callable[[Any], dict[str, object]] | None = None,
    renderer: str | None = None,
) -> Any: ...
def show_chain(*chains: list[Any], **kw: Any) -> None: ...
def snapshot_from_bytes(data: bytes) -> Snapshot: ...
