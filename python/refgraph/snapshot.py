"""Heap snapshots: the whole heap with sizes, saved to a file and analysed offline.

A snapshot records every object the garbage collector tracks (and, by default, the objects
they refer to that it does not track, such as str and int, and what code objects hold: their
constants, names and line tables), what each refers to, its shallow size in bytes, and cheap
labels: names of modules, classes and functions, lengths of built-in containers and the
module globals that name objects. Of strings it keeps what the ``strings`` policy allows
(see :func:`snapshot`): by default only names (dict keys and names used by code that look
like identifiers) in full, and of every other string its length and a fingerprint, never
its characters. bytes and bytearray contents are never kept. Files are
written readable by their owner only. No ``__repr__`` and no user-defined ``__sizeof__`` runs.

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
from ._files import write_private
from .labels import is_proper_module
from .present import own_format

SnapshotError = _refgraph.SnapshotError

#: The string policies of :func:`snapshot`, default first.
STRING_POLICIES = ("names", "all", "none")

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
    None when unnamed), one fewer than the steps; ``example_expression`` is the example's own
    expression (``__main__.bus._listeners[2917].__self__``)."""

    shape: list
    count: int
    bytes: int
    example: list
    expression: str = ""
    edges: list = []
    example_expression: str = ""


class Paths(NamedTuple):
    """What :meth:`Snapshot.paths` found: groups (most targets first), how many targets no
    root reaches, and how many targets there were."""

    groups: list
    unreachable: int
    targets: int


def _record(cls, row):
    """The public named tuple ``cls`` made of the extension's record ``row``, field by name."""
    return cls._make([getattr(row, f) for f in cls._fields])


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
    # A copy made in C: iterating sys.modules itself can fail when a collection during the
    # loop runs a weakref callback that removes a module.
    for name, m in sys.modules.copy().items():
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
    >>> class ShopSession:
    ...     pass
    >>> sessions = [ShopSession() for _ in range(3)]
    >>> snap = refgraph.snapshot()
    >>> [row.count for row in snap.typestats() if row.name.endswith(".ShopSession")]
    [3]
    """

    def __init__(self, inner):
        self._s = inner

    def __len__(self):
        return len(self._s)

    def __repr__(self):
        i = self._facts()
        return f"<refgraph.Snapshot: {i['objects']:,} objects, {i['bytes']:,} bytes>"

    def save(self, path, progress=None):
        """Write the snapshot to ``path``, readable by its owner only (mode 0600 whatever the
        umask), atomically (a temporary file in the same directory, renamed over ``path``); a
        symbolic link at ``path`` is replaced, not followed. Returns the file's size in bytes.
        ``progress``, if given, is called as ``progress("saving", done, total)`` as the file is
        encoded and compressed (an exception it raises is ignored)."""
        return write_private(path, self._s.to_bytes(progress))

    def to_html(self, path, base=None, *, suspects=None, progress=None):
        """Write a one-file HTML report of the snapshot to ``path`` and return its size in bytes:
        a summary, the types (with the change since ``base``, an older snapshot of the same
        process), the biggest objects in the dominator tree and who keeps them alive, and the
        leak suspects of ``suspects`` (the dict of ``LeakReport.to_json()``) if given. The page
        opens from a file with no network and loads nothing from anywhere. ``progress``, if given,
        is called as ``progress("retained sizes", done, total)`` while the dominator tree is
        computed (once per snapshot; an exception it raises is ignored)."""
        from .report import snapshot_page, write_page

        if base is not None and not isinstance(base, Snapshot):
            raise TypeError(f"base: expected a Snapshot, not {type(base).__name__}")
        text = snapshot_page(self, base, suspects=suspects, progress=progress)
        return write_page(path, text)

    def _repr_html_(self):
        """A short HTML summary for Jupyter: counts and the biggest types by retained size."""
        import html

        human_bytes = _refgraph.human_bytes

        i = self._facts()
        rows = self.typestats()[:10]
        esc = html.escape
        cells = "".join(
            f"<tr><td style='text-align:left'><code>{esc(r.name)}</code></td>"
            f"<td>{r.count:,}</td><td>{esc(human_bytes(r.shallow))}</td>"
            f"<td>{esc(human_bytes(r.retained))}</td></tr>"
            for r in rows
        )
        return (
            f"<div><b>refgraph snapshot</b>: {i['objects']:,} objects, "
            f"{esc(human_bytes(i['bytes']))}, {i['types']:,} types, Python "
            f"{esc(str(i['python']))}, pid {int(i['pid'])}"
            "<table><thead><tr><th style='text-align:left'>type</th><th>count</th>"
            f"<th>shallow</th><th>retained</th></tr></thead><tbody>{cells}</tbody></table>"
            "<small>Snapshot.to_html(path) writes the full report.</small></div>"
        )

    def to_bytes(self):
        """The snapshot file's bytes."""
        return self._s.to_bytes(None)

    def info(self):
        """Counts and facts: objects, tracked, references, named_references (how many have a
        name: attribute, key, index, …), name_bytes (memory the names take), types, bytes,
        python, created (Unix time), pid, collected (the garbage left out: collected first or
        found on the graph), untracked, modules, thread_frames,
        with_del, and ``strings``: the string policy the snapshot was taken with (``'names'``,
        ``'all'`` or ``'none'``; ``'all'`` for files written before policies existed) with
        ``fingerprints``, the number of strings kept as length and fingerprint. A loaded file
        whose addresses, sizes, lengths, labels or edge names cannot be decoded (their checksums
        matched, so it was written that way) still loads, without them, and ``problems`` lists
        what could not be read and why (the key is there only then)."""
        return self._s.info()

    def _facts(self):
        """:meth:`info` without ``named_references`` and ``name_bytes``: a loaded snapshot's
        edge names stay compressed until a query needs them."""
        return self._s.info(False)

    def typestats(self, retained=True, progress=None):
        """Per type (``module.Name``): count, shallow bytes and retained bytes, biggest retained
        first (shallow first with ``retained=False``, which skips the dominator computation).

        Retained bytes of a type count the objects that no other object of the same type
        dominates, so nothing is counted twice. ``progress``, if given, is called as
        ``progress("retained sizes", done, total)`` while the dominator tree is computed (once per
        snapshot; an exception it raises is ignored).
        """
        rows = [_record(TypeStat, r) for r in self._s.typestats(retained, progress)]
        key = (lambda r: (r.retained, r.shallow)) if retained else (lambda r: r.shallow)
        rows.sort(key=key, reverse=True)
        return rows

    def most_common_types(self, limit=10, sortby="count"):
        """``[(type name, count)]`` like :func:`refgraph.most_common_types`, from the snapshot."""
        rows = self._s.typestats(False, None)
        if sortby not in ("count", "shallow"):
            raise ValueError("sortby must be 'count' or 'shallow'")
        rows.sort(key=lambda r: getattr(r, sortby), reverse=True)
        return [(r.name, getattr(r, sortby)) for r in rows[:limit]]

    def diff(self, older, progress=None):
        """What changed by type since ``older`` (an earlier snapshot of the same process):
        :class:`TypeDiff` rows. The first rows are the types that own the most new memory: the
        bytes retained by their new objects that no other new object dominates, so a leaking
        class comes before the dicts, lists and strings its instances hold; then growth in
        count and in bytes. ``progress``, if given, is called as ``progress("retained sizes", done,
        total)`` while the dominator tree is computed (once per snapshot; an exception it raises is
        ignored)."""
        if not isinstance(older, Snapshot):
            raise TypeError(f"expected a Snapshot, not {type(older).__name__}")
        return [_record(TypeDiff, r) for r in self._s.diff(older._s, progress)]

    def paths(self, target=None, *, address=None):
        """Shortest retention paths from roots (modules in ``sys.modules``, frames on thread
        stacks, objects nothing in the heap refers to, such as a running function's locals) to
        ``target``: a type name (``'Record'`` or ``'app.Record'``), or an object of a live
        snapshot; ``address=`` names an object of a loaded one. Weak references do not retain.
        Paths are grouped by shape, most targets first."""
        groups, unreachable, n = self._s.paths(_target(target, address))
        return Paths([_record(PathGroup, g) for g in groups], unreachable, n)

    def retained_size(self, obj=_NO_OBJECT, *, address=None, progress=None):
        """Bytes that would be freed with ``obj`` (or the object at ``address``): its size plus
        everything only it keeps alive. None if it is not in the snapshot. ``progress``, if given,
        is called as ``progress("retained sizes", done, total)`` while the dominator tree is
        computed (once per snapshot; an exception it raises is ignored)."""
        return self._s.retained_size(_address(obj, address), progress)

    def size(self, obj=_NO_OBJECT, *, address=None):
        """Shallow size in bytes of ``obj`` (or the object at ``address``) as captured, as
        ``sys.getsizeof`` reports it (a class's own ``__sizeof__`` is not called)."""
        return self._s.size(_address(obj, address))

    def describe(self, obj=_NO_OBJECT, *, address=None):
        """A one-line description of ``obj`` (or the object at ``address``). A string kept
        without its text is described by its length and fingerprint: ``str len=37
        #1f0a9c3b7d2e``."""
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
        (no Graphviz needed; readable by its owner only, like :meth:`save`); without a filename
        the SVG text is returned."""
        fmt = "svg" if filename is None else own_format(filename)[1:]
        drawn = self._s.graph(_target(target, address), fmt, count, backrefs, max_depth, too_many)
        if drawn is None:
            raise LookupError(f"no object {target!r} in the snapshot")
        data, nodes = drawn
        if filename is None:
            return data.decode()
        write_private(filename, data)
        return nodes


def _check_strings(strings):
    if strings not in STRING_POLICIES:
        raise ValueError(f"strings must be 'names', 'all' or 'none', not {strings!r}")
    return strings


def snapshot(untracked=True, collect=True, strings="names", names=True, progress=None):
    """Capture the whole heap now.

    ``untracked``: also record the objects the gc does not track (str, int, bytes, …) that
    tracked objects refer to, so that their bytes are counted. ``collect``: run
    ``gc.collect()`` first, so that garbage is not reported (``False`` to see the heap exactly
    as it is). ``collect="graph"`` leaves the garbage out without collecting: it is found on
    the captured graph from each object's reference count, as the collector finds it, which
    on a big heap costs a fraction of a collection (at 30M objects about 1 s, where
    ``gc.collect()`` takes 8 s), and no finalizer or weak reference callback runs. What
    freeing the garbage would change elsewhere is then still seen (a class's entry in its
    bases' ``__subclasses__()``, a weak dictionary's entry), and strings that only the
    garbage holds through references the collector does not follow (the names of its
    classes) stay: compare snapshots taken with the default, not with ``"graph"``, to look
    for leaks (garbage that outlives the young collections leaves more such traces with
    each snapshot until a full collection runs).

    ``strings``: what the snapshot keeps of the program's strings, which may be passwords, API
    keys or tokens.

    * ``'names'`` (default): strings used as names (dict keys, attribute and variable names in
      code) that look like identifiers (``_listeners``, ``cfg``, ``os.path``; at most 64
      characters, no token-like runs of digits) are kept in full. Every other string keeps
      only its length and a 48-bit fingerprint, a hash keyed by a random key that lives only in
      this process's memory: equal strings share a fingerprint (in one snapshot and in every
      snapshot this process takes), and the text cannot be recovered from it, not even by
      trying every short password.
    * ``'all'``: the first 40 characters of every string, by your explicit choice.
    * ``'none'``: no string content at all, not even fingerprints or dict keys (names of
      modules, classes and functions and of module globals are still kept).

    Names of modules, classes and functions, and module globals whose name looks like an
    identifier, are kept under every policy; bytes and bytearray contents never are.

    ``names``: record how each object holds each referent — attribute name, dict key, index,
    closure variable, … — so that paths read as Python (``__main__.bus._listeners[3].__self__``);
    ``False`` skips that pass (a faster, smaller snapshot whose paths show types only). Names
    are read without running any of the program's code and without creating instance
    ``__dict__``s; dict keys follow the ``strings`` policy.

    ``progress``: a callable, called as ``progress(phase, done, total)`` about once per
    percent of each phase, in this order: ``'walk'`` (the objects the collector tracks),
    ``'references'`` (what each object refers to; ``total`` grows as untracked objects are
    found), ``'garbage'`` (with ``collect="graph"``: the walk that finds it),
    ``'sizes'`` (sizes and labels) and ``'names'`` (with ``names=True``). Each phase
    starts with ``done == 0`` and ends with ``done == total``. It runs in the middle of the
    capture: keep it to showing progress (what it changes in the heap may or may not be seen).
    An exception it raises (a ``KeyboardInterrupt`` too) abandons the capture, releases every
    object it held and propagates from ``snapshot()``.
    """
    _check_strings(strings)
    if isinstance(collect, str) and collect != "graph":
        raise ValueError(f"collect must be True, False or 'graph', not {collect!r}")
    graph = collect == "graph"
    if progress is not None and not callable(progress):
        raise TypeError(f"progress: expected a callable, not {type(progress).__name__}")
    if collect and not graph:
        gc.collect()
    frames = _thread_frames()
    modules = _proper_modules()
    try:
        inner = _refgraph.Snapshot.capture(
            untracked,
            frames,
            modules,
            bool(collect),
            sys.version.split()[0],
            os.getpid(),
            int(datetime.datetime.now().timestamp()),
            strings,
            bool(names),
            progress,
            find_garbage=graph,
        )
    finally:
        del frames, modules
    return Snapshot(inner)


def load(path, progress=None):
    """Read a snapshot file. A file that is truncated, corrupt or not a snapshot raises
    :class:`SnapshotError` (a ``ValueError``); a missing file raises ``OSError``.
    ``progress``, if given, is called as ``progress("loading", done, total)`` as the file is
    decoded (an exception it raises is ignored)."""
    return Snapshot(_refgraph.Snapshot.load(os.fspath(path), progress))


def from_bytes(data):
    """A snapshot from the bytes of a snapshot file."""
    return Snapshot(_refgraph.Snapshot.from_bytes(bytes(data)))


def dump_on_signal(signum=None, directory=".", untracked=True, collect=True, strings="names"):
    """Install a handler that saves a snapshot to ``directory`` each time the process receives
    ``signum`` (``SIGUSR2`` by default): ``refgraph-<pid>-<YYYYmmdd-HHMMSS>-<n>.rgsnap``, mode
    0600, written atomically (see :meth:`Snapshot.save`). ``strings`` is the string policy of
    :func:`snapshot`. Returns the previous handler. Then, from a shell: ``kill -USR2 <pid>``.

    The handler runs in the main thread between bytecodes, as every Python signal handler does.
    """
    if signum is None:
        signum = _signal.SIGUSR2
    _check_strings(strings)
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise NotADirectoryError(directory)
    counter = [0]

    def handler(sig, frame):
        counter[0] += 1
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        name = f"refgraph-{os.getpid()}-{stamp}-{counter[0]}.rgsnap"
        path = os.path.join(directory, name)
        snapshot(untracked=untracked, collect=collect, strings=strings).save(path)
        print(f"refgraph: snapshot written to {path}", file=sys.stderr)

    return _signal.signal(signum, handler)
