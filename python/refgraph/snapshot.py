"""Heap snapshots: the whole heap with sizes, saved to a file and analysed offline.

A snapshot records every object the garbage collector tracks (and, by default, the objects
they refer to that it does not track, such as str and int), what each refers to, its shallow
size in bytes, and cheap labels: names of modules, classes and functions, lengths of
built-in containers, the first characters of strings and the module globals that name objects.
No ``__repr__`` and no user-defined ``__sizeof__`` runs.

>>> import refgraph
>>> snap = refgraph.snapshot()
>>> snap.info()["objects"] > 0
True
"""

from __future__ import annotations

import datetime
import gc
import os
import signal as _signal
import sys
from typing import NamedTuple

from . import _refgraph
from .labels import is_proper_module

SnapshotError = _refgraph.SnapshotError

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class TypeStat(NamedTuple):
    """One row of :meth:`Snapshot.typestats`."""

    name: str
    count: int
    shallow: int
    retained: int


class TypeDiff(NamedTuple):
    """One row of :meth:`Snapshot.diff`: how a type changed from the older snapshot."""

    name: str
    old_count: int
    new_count: int
    old_bytes: int
    new_bytes: int
    new_objects: int
    new_objects_bytes: int
    new_objects_retained: int

    @property
    def count_delta(self):
        return self.new_count - self.old_count

    @property
    def bytes_delta(self):
        return self.new_bytes - self.old_bytes


class PathGroup(NamedTuple):
    """Retention paths of the same shape: ``shape`` runs from the root to the target's type;
    ``example`` is one such path as ``(address, description)`` pairs; ``expression`` writes
    the paths as Python (``__main__.bus._listeners[...].__self__``, ``[...]`` where they
    differ; ``a -> (set member) <T>`` where a step has no Python form); ``edges`` names each
    reference of the example (``'.__dict__'``, ``"['bus']"``, ``'[3]'``, ``'closure x'``, …;
    None when unnamed), one fewer than the steps."""

    shape: list
    count: int
    bytes: int
    example: list
    expression: str = ""
    edges: list = []


class Paths(NamedTuple):
    """What :meth:`Snapshot.paths` found: groups (most targets first), how many targets no
    root reaches, and how many targets there were."""

    groups: list
    unreachable: int
    targets: int


def _own_frame(frame):
    return frame.f_code.co_filename.startswith(_PACKAGE_DIR)


def _thread_frames():
    """Frames on every thread's stack (materialised so that their locals are seen), except
    refgraph's own."""
    frames = []
    top = f = None
    try:
        for top in sys._current_frames().values():
            f = top
            while f is not None:
                if not _own_frame(f):
                    frames.append(f)
                f = f.f_back
    finally:
        # This frame is among those found: holding it in a local would make a cycle that keeps
        # every frame above it (and their locals) alive until the next full collection.
        del top, f
    return frames


def _proper_modules():
    out = []
    for name, m in list(sys.modules.items()):
        if is_proper_module(m) and getattr(m, "__name__", None) == name:
            out.append((name, m))
    return out


_NO_OBJECT = object()


def _address(obj, address):
    """The address to look up: ``address`` if given, else ``id(obj)``."""
    if address is not None:
        if obj is not _NO_OBJECT:
            raise TypeError("give an object or address=, not both")
        return int(address)
    if obj is _NO_OBJECT:
        raise TypeError("give an object, or address= for an object of a loaded snapshot")
    return id(obj)


def _target(target, address=None):
    """A type name (str) stays a name; otherwise the object's (or ``address``'s) address."""
    if address is not None:
        return _address(_NO_OBJECT, address)
    if target is None:
        raise TypeError("give a type name, an object, or address=")
    if type(target) is str:
        return target
    return id(target)


class Snapshot:
    """A heap snapshot, live or loaded from a file.

    >>> import refgraph
    >>> class Session:
    ...     pass
    >>> sessions = [Session() for _ in range(3)]
    >>> snap = refgraph.snapshot()
    >>> [row.count for row in snap.typestats() if row.name.endswith("Session")]
    [3]
    """

    def __init__(self, inner):
        self._s = inner

    def __len__(self):
        return len(self._s)

    def __repr__(self):
        i = self._s.info()
        return f"<refgraph.Snapshot: {i['objects']:,} objects, {i['bytes']:,} bytes>"

    def save(self, path):
        """Write the snapshot to ``path`` (written to a temporary name, then renamed).
        Returns the file's size in bytes."""
        return self._s.save(os.fspath(path))

    def to_bytes(self):
        """The snapshot file's bytes."""
        return self._s.to_bytes()

    def info(self):
        """Counts and facts: objects, tracked, references, named_references (how many have a
        name: attribute, key, index, …), types, bytes, python, created (Unix time), pid,
        collected, untracked, modules, thread_frames, with_del."""
        return self._s.info()

    def typestats(self, retained=True, progress=None):
        """Per type (``module.Name``): count, shallow bytes and retained bytes, biggest retained
        first (shallow first with ``retained=False``, which skips the dominator computation).

        Retained bytes of a type count the objects that no other object of the same type
        dominates, so nothing is counted twice.
        """
        rows = [TypeStat(*r) for r in self._s.typestats(retained, progress)]
        key = (lambda r: (r.retained, r.shallow)) if retained else (lambda r: r.shallow)
        rows.sort(key=key, reverse=True)
        return rows

    def most_common_types(self, limit=10, sortby="count"):
        """``[(type name, count)]`` like :func:`refgraph.most_common_types`, from the snapshot."""
        rows = self._s.typestats(False, None)
        key = {"count": 1, "shallow": 2}.get(sortby)
        if key is None:
            raise ValueError("sortby must be 'count' or 'shallow'")
        rows.sort(key=lambda r: r[key], reverse=True)
        return [(r[0], r[key]) for r in rows[:limit]]

    def diff(self, older, progress=None):
        """What changed by type since ``older`` (an earlier snapshot of the same process):
        :class:`TypeDiff` rows. The first rows are the types that own the most new memory: the
        bytes retained by their new objects that no other new object dominates, so a leaking
        class comes before the dicts, lists and strings its instances hold; then growth in
        count and in bytes."""
        if not isinstance(older, Snapshot):
            raise TypeError(f"expected a Snapshot, not {type(older).__name__}")
        return [TypeDiff(*r) for r in self._s.diff(older._s, progress)]

    def paths(self, target=None, *, address=None):
        """Shortest retention paths from roots (modules in ``sys.modules``, frames on thread
        stacks, objects nothing in the heap refers to, such as a running function's locals) to
        ``target``: a type name (``'Record'`` or ``'app.Record'``), or an object of a live
        snapshot; ``address=`` names an object of a loaded one. Weak references do not retain.
        Paths are grouped by shape, most targets first."""
        groups, unreachable, n = self._s.paths(_target(target, address))
        return Paths([PathGroup(*g) for g in groups], unreachable, n)

    def retained_size(self, obj=_NO_OBJECT, *, address=None, progress=None):
        """Bytes that would be freed with ``obj`` (or the object at ``address``): its size plus
        everything only it keeps alive. None if it is not in the snapshot."""
        return self._s.retained_size(_address(obj, address), progress)

    def size(self, obj=_NO_OBJECT, *, address=None):
        """Shallow size in bytes of ``obj`` (or the object at ``address``) as captured, as
        ``sys.getsizeof`` reports it (a class's own ``__sizeof__`` is not called)."""
        return self._s.size(_address(obj, address))

    def describe(self, obj=_NO_OBJECT, *, address=None):
        """A one-line description of ``obj`` (or the object at ``address``)."""
        return self._s.describe(_address(obj, address))

    def expression(self, obj=_NO_OBJECT, *, address=None):
        """The shortest retention path to ``obj`` (or the object at ``address``) from a root,
        written as Python: ``'__main__.bus._listeners[3].__self__'``. None when no root
        reaches it or it is not in the snapshot. Snapshots taken before edge names were
        recorded give the ``<type> -> <type>`` form."""
        return self._s.expression(_address(obj, address))

    def referents(self, obj=_NO_OBJECT, *, address=None):
        """What ``obj`` (or the object at ``address``) refers to, in ``gc.get_referents``
        order, as ``[(address, name)]``: the name of the reference (``'.attr'``,
        ``"['key']"``, ``'[3]'``, ``'key 3'``, ``'set member'``, ``'closure x'``), or None
        when it is not known. None if the object is not in the snapshot."""
        return self._s.referents(_address(obj, address))

    def addresses(self, typename):
        """Addresses of the objects of a type (``module.Name`` or a short name)."""
        return self._s.addresses(typename)

    def graph(
        self,
        target=None,
        filename=None,
        count=1,
        backrefs=True,
        max_depth=5,
        too_many=10,
        *,
        address=None,
    ):
        """Draw what refers to ``target`` (a type name or an object, or ``address=``; the first
        ``count`` objects of a type), up to ``max_depth`` steps, or what it refers to with
        ``backrefs=False``. ``filename`` ending in ``.svg``, ``.png`` or ``.dot`` is written
        (no Graphviz needed); without a filename the SVG text is returned."""
        fmt = "svg"
        if filename is not None:
            fmt = os.path.splitext(os.fspath(filename))[1].lower().lstrip(".")
            if fmt not in ("svg", "png", "dot"):
                raise ValueError(
                    f"cannot draw {os.fspath(filename)!r}: use a .svg, .png or .dot file name"
                )
        drawn = self._s.graph(_target(target, address), fmt, count, backrefs, max_depth, too_many)
        if drawn is None:
            raise LookupError(f"no object {target!r} in the snapshot")
        data, nodes = drawn
        if filename is None:
            return data.decode()
        with open(filename, "wb") as f:
            f.write(data)
        return nodes


def snapshot(untracked=True, collect=True, names=True):
    """Capture the whole heap now.

    ``untracked``: also record the objects the gc does not track (str, int, bytes, …) that
    tracked objects refer to, so that their bytes are counted. ``collect``: run
    ``gc.collect()`` first, so that garbage is not reported (``False`` to see the heap exactly
    as it is, or when collecting is too slow). ``names``: record how each object holds each
    referent — attribute name, dict key, index, closure variable, … — so that paths read as
    Python (``__main__.bus._listeners[3].__self__``); ``False`` skips that pass (a faster,
    smaller snapshot whose paths show types only). Names are read without running any of the
    program's code and without creating instance ``__dict__``s.
    """
    if collect:
        gc.collect()
    frames = _thread_frames()
    modules = _proper_modules()
    try:
        inner = _refgraph.Snapshot.capture(
            untracked,
            frames,
            modules,
            collect,
            sys.version.split()[0],
            os.getpid(),
            int(datetime.datetime.now().timestamp()),
            bool(names),
        )
    finally:
        del frames, modules
    return Snapshot(inner)


def load(path):
    """Read a snapshot file. A file that is truncated, corrupt or not a snapshot raises
    :class:`SnapshotError` (a ``ValueError``); a missing file raises ``OSError``."""
    return Snapshot(_refgraph.Snapshot.load(os.fspath(path)))


def from_bytes(data):
    """A snapshot from the bytes of a snapshot file."""
    return Snapshot(_refgraph.Snapshot.from_bytes(bytes(data)))


def dump_on_signal(signum=None, directory=".", untracked=True, collect=True):
    """Install a handler that saves a snapshot to ``directory`` each time the process receives
    ``signum`` (``SIGUSR2`` by default): ``refgraph-<pid>-<YYYYmmdd-HHMMSS>-<n>.rgsnap``. Returns
    the previous handler. Then, from a shell: ``kill -USR2 <pid>``.

    The handler runs in the main thread between bytecodes, as every Python signal handler does.
    """
    if signum is None:
        signum = _signal.SIGUSR2
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise NotADirectoryError(directory)
    counter = [0]

    def handler(sig, frame):
        counter[0] += 1
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        name = f"refgraph-{os.getpid()}-{stamp}-{counter[0]}.rgsnap"
        path = os.path.join(directory, name)
        snapshot(untracked=untracked, collect=collect).save(path)
        print(f"refgraph: snapshot written to {path}", file=sys.stderr)

    return _signal.signal(signum, handler)
