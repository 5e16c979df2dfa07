import os
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from .snapshot import Snapshot

__all__ = ["LeakReport", "PathStep", "Suspect", "TypeGrowth", "find_leaks", "leaks_between"]

class TypeGrowth(NamedTuple):
    type: str
    per_run: float

class PathStep(NamedTuple):
    type: str
    label: str
    edge: str | None
    address: int

class Suspect(NamedTuple):
    holder: str
    holder_type: str
    new_objects: int
    bytes_per_run: int
    share: float
    types: list[TypeGrowth]
    path: list[PathStep]
    holder_step: int | None
    allocated_at: list[tuple[str, int]] | None
    lengths: tuple[int, int] | None
    def to_json(self) -> dict[str, Any]: ...

class LeakReport:
    runs: int
    calls_per_run: int
    suspects: list[Suspect]
    new_objects: int
    snapshots: int | None
    def __init__(
        self,
        runs: int,
        calls_per_run: int,
        suspects: list[Suspect],
        new_objects: int,
        snapshots: int | None = None,
    ) -> None: ...
    def __bool__(self) -> bool: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[Suspect]: ...
    def __getitem__(self, i: int) -> Suspect: ...
    def to_json(self) -> dict[str, Any]: ...
    def show(
        self, filename: str | os.PathLike[str] | None = None, index: int = 0
    ) -> str | None: ...
    def to_html(self, path: str | os.PathLike[str]) -> int: ...
    def _repr_html_(self) -> str: ...

def find_leaks(
    workload: Callable[[], object],
    *,
    runs: int = 5,
    warmup: int = 3,
    calls_per_run: int = 2,
    trace: bool = False,
    strings: str = "names",
) -> LeakReport: ...
def leaks_between(*snapshots: Snapshot) -> LeakReport: ...
