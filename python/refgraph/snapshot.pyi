import os
import signal
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

from . import _refgraph

Progress = Callable[[str, int, int], object]

StringPolicy = Literal["names", "all", "none"]
STRING_POLICIES: tuple[str, ...]

class SnapshotError(ValueError): ...

class TypeStat(NamedTuple):
    name: str
    count: int  # type: ignore[assignment]  # the field shadows tuple.count, as at run time
    shallow: int
    retained: int

class TypeDiff(NamedTuple):
    name: str
    old_count: int
    new_count: int
    old_bytes: int
    new_bytes: int
    new_objects: int
    new_objects_bytes: int
    new_objects_retained: int
    @property
    def count_delta(self) -> int: ...
    @property
    def bytes_delta(self) -> int: ...

class PathGroup(NamedTuple):
    shape: list[str]
    count: int  # type: ignore[assignment]  # the field shadows tuple.count, as at run time
    bytes: int
    example: list[tuple[int, str]]
    expression: str = ""
    edges: list[str | None] = []
    example_expression: str = ""

class Paths(NamedTuple):
    groups: list[PathGroup]
    unreachable: int
    targets: int

class Snapshot:
    def __init__(self, inner: _refgraph.Snapshot) -> None: ...
    def __len__(self) -> int: ...
    def save(self, path: str | os.PathLike[str], progress: Progress | None = None) -> int: ...
    def to_bytes(self) -> bytes: ...
    def to_html(
        self,
        path: str | os.PathLike[str],
        base: Snapshot | None = None,
        *,
        suspects: dict[str, Any] | None = None,
        progress: Progress | None = None,
    ) -> int: ...
    def _repr_html_(self) -> str: ...
    def info(self) -> dict[str, Any]: ...
    def typestats(
        self, retained: bool = True, progress: Progress | None = None
    ) -> list[TypeStat]: ...
    def most_common_types(
        self, limit: int | None = 10, sortby: str = "count"
    ) -> list[tuple[str, int]]: ...
    def diff(self, older: Snapshot, progress: Progress | None = None) -> list[TypeDiff]: ...
    def paths(self, target: Any = None, *, address: int | None = None) -> Paths: ...
    def retained_size(
        self, obj: Any = ..., *, address: int | None = None, progress: Progress | None = None
    ) -> int | None: ...
    def size(self, obj: Any = ..., *, address: int | None = None) -> int | None: ...
    def describe(self, obj: Any = ..., *, address: int | None = None) -> str | None: ...
    def expression(self, obj: Any = ..., *, address: int | None = None) -> str | None: ...
    def referents(
        self, obj: Any = ..., *, address: int | None = None
    ) -> list[tuple[int, str | None]] | None: ...
    def addresses(self, typename: str) -> list[int]: ...
    def graph(
        self,
        target: Any = None,
        filename: str | os.PathLike[str] | None = None,
        count: int = 1,
        backrefs: bool = True,
        max_depth: int = 5,
        too_many: int = 10,
        *,
        address: int | None = None,
    ) -> Any: ...

def snapshot(
    untracked: bool = True,
    collect: bool | Literal["graph"] = True,
    strings: StringPolicy = "names",
    names: bool = True,
    progress: Progress | None = None,
) -> Snapshot: ...
def load(path: str | os.PathLike[str], progress: Progress | None = None) -> Snapshot: ...
def from_bytes(data: bytes) -> Snapshot: ...
def dump_on_signal(
    signum: int | signal.Signals | None = None,
    directory: str | os.PathLike[str] = ".",
    untracked: bool = True,
    collect: bool | Literal["graph"] = True,
    strings: StringPolicy = "names",
) -> Any: ...
