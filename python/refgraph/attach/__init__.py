"""``refgraph attach PID``: a snapshot of another, running CPython process, taken inside it at a
safe point, without changing its code or restarting it.

:func:`snapshot_of` is the entry point; :mod:`.preflight` holds the checks, :mod:`.inject` the
injection and the wait, ``_target.py`` the code that runs in the target.
"""

from __future__ import annotations

from .inject import Attached, Timeout, snapshot_bytes
from .preflight import AttachError


def snapshot_of(pid, timeout=10.0, collect=True, untracked=True, strings="names"):
    """A :class:`refgraph.Snapshot` of the CPython process ``pid`` (same machine, 3.10+, a user
    allowed to trace it; gdb installed on machines other than x86_64). Raises
    :class:`AttachError` with the reason when it cannot (:class:`Timeout` when the target did
    not reach a safe point in ``timeout`` seconds; the attach is then cancelled and the target
    left as it was). ``strings``: what
    the snapshot keeps of the target's strings, as for :func:`refgraph.snapshot`."""
    from ..snapshot import from_bytes

    return from_bytes(snapshot_bytes(pid, timeout, collect, untracked, strings=strings).data)


__all__ = ["Attached", "AttachError", "Timeout", "snapshot_bytes", "snapshot_of"]
