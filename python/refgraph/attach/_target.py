"""The code ``refgraph attach`` runs inside the target process.

This file is never imported there: its text is compiled and run by a pending call (or by
``sys.remote_exec`` on 3.14+) in a fresh namespace, with ``__refgraph_config__`` set to a dict
of plain literals chosen by the CLI. It runs in the target's main thread at a point where
running Python is safe (between two bytecodes), so it must

- import nothing that is not already loaded except CPython's builtin ``gc`` and ``time`` and
  what the capture itself needs (``types``, ``weakref``), and refgraph's extension module, which
  is loaded from its file without going through ``sys.path`` and removed from ``sys.modules``
  afterwards (the shared library itself stays mapped: CPython never unloads one);
- catch everything (a pending call that fails kills the target), and bind no name in
  ``__main__``;
- do nothing at all when it runs late (after the CLI gave up, died or was killed: it may run
  minutes later when the target's main thread was idle), in a forked child, or when its run
  directory is not the one the CLI made (owner and mode checked, no symlinks followed);
- write the snapshot and a status file 0600, atomically (temporary name + rename).

The CLI and this code agree through one file in the run directory, ``claim``, created with
``O_EXCL``: whoever creates it first wins. The target writes ``run`` in it and goes on; the CLI
writes ``cancel`` in it when it gives up, and the target, seeing it exists, does nothing.
"""

import gc
import os
import sys
import time

STAGE = "<refgraph attach>"
LEFT_BY_CLI = ("page.bin", "gdb.cmd", "inject.py")  # what a killed CLI may leave in the run dir


def _stat_fields(which):
    """The fields of ``/proc/<which>/stat`` after the command name (the first is the state),
    or ``None`` when it cannot be read."""
    try:
        with open("/proc/%s/stat" % which, "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rfind(b")") + 2 :].split()


def _cli_alive(cfg):
    pid = cfg.get("cli_pid")
    if not pid:
        return True  # another pid namespace: the claim alone decides
    fields = _stat_fields(pid)
    return fields is not None and len(fields) > 19 and fields[19] == str(cfg["cli_start"]).encode()


def _os_threads():
    """The number of threads of this process as the kernel counts them (``None`` if unknown)."""
    fields = _stat_fields("self")
    try:
        return int(fields[17])
    except (TypeError, ValueError, IndexError):
        return None


def _wait_threads_gone(before, limit=0.5):
    """Wait (briefly) until the capture's second thread, already joined, has left the kernel's
    count too: a process that forks right after this call would otherwise be told by CPython
    3.12+ that it is multi-threaded (a DeprecationWarning of the target's own)."""
    if before is None:
        return
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        now = _os_threads()
        if now is None or now <= before:
            return
        time.sleep(0.001)


def _run_dir_ok(d, uid):
    try:
        st = os.lstat(d)
    except OSError:
        return False
    return (st.st_mode & 0o170000) == 0o040000 and st.st_uid == uid and not st.st_mode & 0o077


def _claim(d):
    try:
        fd = os.open(
            os.path.join(d, "claim"),
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0),
            0o600,
        )
    except OSError:
        return False
    try:
        os.write(fd, b"run")
    finally:
        os.close(fd)
    return True


def write_private(path, data):
    """Write ``data`` to ``path``: a temporary name in the same directory (0600, created
    exclusively, no symlink followed), then renamed over ``path``."""
    tmp = "%s.tmp%d" % (path, os.getpid())
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(tmp, flags, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def load_extension(path):
    """refgraph's extension module, loaded from ``path`` without ``sys.path``; returns
    (module, undo) where ``undo()`` puts ``sys.modules`` back as it was."""
    import _frozen_importlib as bootstrap
    import _frozen_importlib_external as external

    name = "refgraph._refgraph"
    missing = object()
    before = sys.modules.get(name, missing)
    loader = external.ExtensionFileLoader(name, path)
    spec = bootstrap.spec_from_loader(name, loader)
    module = bootstrap.module_from_spec(spec)
    loader.exec_module(module)

    def undo():
        if before is missing:
            if sys.modules.get(name) is module:
                del sys.modules[name]
        else:
            sys.modules[name] = before
        if module is not before:
            # Its functions refer to it and its dict to them: without this, each attach would
            # leave a module behind until the target's next garbage collection.
            module.__dict__.clear()

    return module, undo


def _own_frames():
    """Ids of this code's frames on the main thread, and of the frame that runs it (the
    ``<string>`` module frame of ``PyRun_SimpleString``, or ``sys.remote_exec``'s)."""
    own = set()
    f = sys._getframe()
    mine = (STAGE, globals().get("__file__"))
    while f is not None and f.f_code.co_filename in mine:
        own.add(id(f))
        f = f.f_back
    if f is not None and f.f_code.co_filename == "<string>" and f.f_code.co_name == "<module>":
        own.add(id(f))
    del f
    return own


def capture(ext, untracked=True, collect=True, skip_frames=(), strings="names"):
    """What ``refgraph.snapshot()`` does, with the extension module ``ext`` and without the
    rest of refgraph: roots are the frames of every thread (except ``skip_frames``, ids) and
    the modules in ``sys.modules``."""
    if collect:
        gc.collect()
    module_type = type(sys)
    frames = []
    top = f = None
    try:
        for top in sys._current_frames().values():
            f = top
            while f is not None:
                if id(f) not in skip_frames:
                    frames.append(f)
                f = f.f_back
    finally:
        del top, f
    modules = []
    for name, m in sys.modules.copy().items():
        try:
            if isinstance(m, module_type) and m.__name__ == name and sys.modules.get(name) is m:
                modules.append((name, m))
        except Exception:
            pass
    try:
        return ext.Snapshot.capture(
            untracked,
            frames,
            modules,
            collect,
            sys.version.split()[0],
            os.getpid(),
            int(time.time()),
            strings,
        )
    finally:
        del frames, modules


def main(cfg):
    if os.getpid() != cfg["pid"]:
        return  # a child forked after the call was scheduled
    d = cfg["dir"]
    if not _run_dir_ok(d, cfg["uid"]):
        return  # cancelled and cleaned up, or not ours
    if not _cli_alive(cfg):
        # The CLI is gone (killed): leave nothing behind.
        for name in LEFT_BY_CLI:
            try:
                os.unlink(os.path.join(d, name))
            except OSError:
                pass
        try:
            os.rmdir(d)
        except OSError:
            pass
        return
    if not _claim(d):
        return  # the CLI cancelled
    t0 = time.perf_counter()
    threads = _os_threads()
    status = {"ok": False, "error": "unknown"}
    undo = None
    try:
        ext, undo = load_extension(cfg["extension"])
        snap = capture(
            ext, cfg["untracked"], cfg["collect"], _own_frames(), cfg.get("strings", "names")
        )
        t1 = time.perf_counter()
        # Written 0600 (temporary name + rename) inside the run directory, which only the
        # target's user can enter.
        path = os.path.join(d, "snapshot.rgsnap")
        data = snap.to_bytes()
        size = len(data)
        write_private(path, data)
        del data
        objects = len(snap)
        del snap
        status = {
            "ok": True,
            "objects": objects,
            "bytes": size,
            "capture_seconds": t1 - t0,
            "seconds": time.perf_counter() - t0,
        }
    except BaseException as e:  # noqa: B036 - nothing may escape into the target
        try:
            status = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
        except BaseException:
            status = {"ok": False, "error": type(e).__name__}
    finally:
        if undo is not None:
            try:
                undo()
            except BaseException:
                pass
        try:
            _wait_threads_gone(threads)
        except BaseException:  # noqa: B036 - nothing may escape into the target
            pass
    write_private(os.path.join(d, "status"), repr(status).encode())


if __name__ == "__refgraph_attach__":
    try:
        main(__refgraph_config__)  # type: ignore[name-defined]  # noqa: F821 - set by the code that runs this text
    except BaseException:
        pass
    finally:
        # The functions above and this namespace refer to each other: clear it so that nothing
        # of this code waits for the target's next garbage collection.
        globals().clear()
