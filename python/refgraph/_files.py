"""Writing files that hold heap content (snapshots, reports, drawings of the heap).

Such a file can hold whatever the process held, so it is written for its owner only and never
through a name someone else prepared: :func:`write_private` is the one way refgraph writes them.
"""

from __future__ import annotations

import os
import secrets

__all__ = ["write_private"]

_FLAGS = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


def _chunks(data):
    if isinstance(data, (bytes, bytearray, memoryview)):
        yield data
    elif isinstance(data, str):
        raise TypeError("write_private takes bytes, not str: encode the text first")
    else:
        for chunk in data:
            if not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise TypeError(f"write_private: a chunk is {type(chunk).__name__}, not bytes")
            yield chunk


def write_private(path, data):
    """Write ``data`` to ``path`` so that only the file's owner can read it, atomically.

    ``data``: bytes (or bytearray, memoryview), or an iterable of such chunks for content made
    piece by piece. Returns the number of bytes written.

    The bytes go to a new temporary file in the same directory, created exclusively
    (``O_CREAT | O_EXCL | O_NOFOLLOW``) with mode 0600 whatever the umask, flushed to disk,
    then renamed over ``path``. A reader sees the old file or the complete new one, never a
    half-written one; a symbolic link planted at ``path`` is replaced, not followed (its target
    is left untouched). On any error, including an interrupting signal, the temporary file is
    removed and ``path`` is unchanged.
    """
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    directory, name = os.path.split(path)
    if not name:
        raise IsADirectoryError(f"{path!r} names a directory, not a file")
    fd = tmp = None
    for _ in range(100):
        tmp = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, _FLAGS, 0o600)
            break
        except FileExistsError:
            continue
    if fd is None:
        raise FileExistsError(f"could not create a temporary file next to {path!r}")
    size = 0
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            fd = None  # the file object owns it now
            for chunk in _chunks(data):
                f.write(chunk)
                size += memoryview(chunk).nbytes
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
    finally:
        if fd is not None:
            os.close(fd)
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    _sync_directory(directory)
    return size


def _sync_directory(directory):
    """Make the rename durable (best effort: not every platform can open a directory)."""
    try:
        dfd = os.open(directory or ".", os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)
