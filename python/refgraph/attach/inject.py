"""Running refgraph's capture inside another CPython process, safely.

How (see the README section "Attaching to a running process" for why):

1. A private run directory is made where the target can see it (mode 0700, owned by the
   target's user).
2. An injector stops the target's main thread, maps one fresh read-only page in the target
   (``mmap``: a system call, no allocator lock), writes the code of ``_target.py`` into it,
   calls ``Py_AddPendingCall(PyRun_SimpleString, page)``, puts the registers back and lets
   the thread go. Nothing else runs at the stop: the target is stopped for milliseconds and
   no Python code runs there. On x86_64 the injector is refgraph's own (``ptrace.py``, which
   puts back every register, the vector ones included, byte for byte); elsewhere it is gdb
   in batch mode.
3. The interpreter runs the pending call in its main thread at its next safe point between two
   bytecodes. The code claims the run (``claim``, created exclusively), captures the heap and
   writes ``snapshot.rgsnap`` and ``status`` (0600, temporary name + rename).
4. The CLI waits for ``status`` up to the timeout. If the main thread never reaches a safe point
   (sleeping, blocked in C, the GIL held elsewhere), it says why from /proc and cancels: it
   creates ``claim`` itself and removes the directory, so a late run does nothing.

On CPython 3.14+ ``sys.remote_exec`` replaces step 2 (same code, same protocol; untested here).
"""

from __future__ import annotations

import ast
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field

from . import elf, preflight
from .preflight import AttachError

_HERE = os.path.dirname(os.path.abspath(__file__))
_PACKAGE = os.path.dirname(_HERE)
STAGE = "<refgraph attach>"
PAGE = 4096
GDB_LIMIT = 60.0  # seconds gdb may take before it is interrupted (never killed)
CALL_LIMIT = 10.0  # seconds a call in the target may take before the ptrace helper undoes it


def extension_path():
    """The file of refgraph's extension module, as this process loaded it."""
    from .. import _refgraph

    return os.path.realpath(_refgraph.__file__)


def page_text(config):
    """The NUL-terminated text given to ``PyRun_SimpleString`` in the target: it runs
    ``_target.py`` in a namespace of its own and lets nothing escape."""
    with open(os.path.join(_HERE, "_target.py"), encoding="utf-8") as f:
        source = f.read()
    namespace = {
        "__name__": "__refgraph_attach__",
        "__file__": STAGE,
        "__refgraph_config__": config,
    }
    text = (
        "#refgraph-attach busy\n"
        "try:\n"
        f"    exec(compile({ascii(source)}, {STAGE!r}, 'exec'), {ascii(namespace)})\n"
        "except BaseException:\n"
        "    pass\n"
    )
    return text.encode("ascii") + b"\0"


# ----------------------------------------------------------------------------- the page

# The first line of the page's text says whether a pending call may still read it. "busy"
# while it may; the CLI overwrites it with "free" once the call has run (PyRun_SimpleString
# reads its text only before running it), and the next attach writes its text over a free
# page instead of mapping a new one. A page whose call was cancelled stays busy: it may still
# run.
MARK_BUSY = b"#refgraph-attach busy\n"
MARK_FREE = b"#refgraph-attach free\n"
_SCAN_LIMIT = 256  # pages read at most when looking for a free one


def find_free_page(pid, size):
    """The address of a free page (run of ``size`` bytes) left by an earlier attach, or None."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            maps = f.read().splitlines()
        mem = open(f"/proc/{pid}/mem", "rb", buffering=0)
    except OSError:
        return None
    read = 0
    with mem:
        for line in maps:
            parts = line.split()
            if len(parts) != 5 or parts[1] != "r--p" or parts[4] != "0":
                continue  # pages refgraph maps are anonymous and read-only
            start, end = (int(x, 16) for x in parts[0].split("-"))
            for addr in range(start, end - size + 1, PAGE):
                if read >= _SCAN_LIMIT:
                    return None
                read += 1
                try:
                    mem.seek(addr)
                    head = mem.read(len(MARK_FREE) + 12)
                except (OSError, ValueError, OverflowError):
                    break
                if head.startswith(MARK_FREE):
                    try:
                        if int(head[len(MARK_FREE) :].split(b"\n")[0]) >= size:
                            return addr
                    except ValueError:
                        pass
    return None


def mark_page_free(pid, addr, size):
    """Write the free mark over the page's first line (through /proc/PID/mem, which may write
    a read-only page of a process one may trace). Best effort: False if the kernel refuses."""
    mark = MARK_FREE + b"%d\n" % size
    try:
        with open(f"/proc/{pid}/mem", "r+b", buffering=0) as mem:
            mem.seek(addr)
            return mem.write(mark) == len(mark)
    except (OSError, ValueError, OverflowError):
        return False


# ----------------------------------------------------------------------------- addresses

_LIBC = re.compile(r"^libc(\.so|-[0-9]|\.musl)")


def _file_mappings(pid):
    """(start, file offset, inode, path) of every file the process maps."""
    out = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) < 6 or not parts[5].startswith("/"):
                continue
            path = parts[5].rstrip("\n")
            if path.endswith(" (deleted)"):
                path = path[: -len(" (deleted)")]
            start = int(parts[0].split("-")[0], 16)
            out.append((start, int(parts[2], 16), int(parts[4]), path))
    return out


def _load_bias(e, start):
    """What to add to ``e``'s addresses, given where its first bytes are mapped."""
    firsts = [vaddr for vaddr, offset, _size in e.segments if offset == 0]
    if not firsts:
        raise AttachError("an ELF file without a segment at its start")
    return start - (firsts[0] & ~(PAGE - 1))


def _mapped_elf(pid, maps, path, read, inode=None):
    """(Elf, load bias) of the file the process maps at ``path`` (read through ``read``)."""
    e = elf.load(read)
    starts = [m[0] for m in maps if m[1] == 0 and (m[3] == path or m[2] == inode)]
    if not starts:
        raise AttachError(f"process {pid}: {path} is not in its memory map")
    return e, _load_bias(e, min(starts))


def libc_function(pid, name, maps=None):
    """The address of C library function ``name`` in process ``pid``, or None."""
    maps = _file_mappings(pid) if maps is None else maps
    for path in sorted({m[3] for m in maps if _LIBC.match(os.path.basename(m[3]))}):
        try:
            lib, bias = _mapped_elf(pid, maps, path, f"/proc/{pid}/root{path}")
        except (OSError, elf.ElfError, AttachError):
            continue
        if name in lib.symbols:
            return lib.symbols[name][0] + bias
    return None


def remote_functions(pid, target):
    """Addresses, in process ``pid``, of ``mmap``, ``Py_AddPendingCall`` and
    ``PyRun_SimpleString``, from the files' dynamic symbols and where they are mapped."""
    maps = _file_mappings(pid)
    exe = target.interpreter == target.exe
    read = f"/proc/{pid}/exe" if exe else f"/proc/{pid}/root{target.interpreter}"
    try:
        py, bias = _mapped_elf(pid, maps, target.interpreter, read, os.stat(read).st_ino)
    except elf.ElfError as e:
        raise AttachError(f"process {pid}: {e}") from None
    mmap = libc_function(pid, "mmap", maps)
    if mmap is None and "mmap" in py.symbols:  # a static interpreter
        mmap = py.symbols["mmap"][0] + bias
    if mmap is None:
        raise AttachError(f"process {pid}: no C library with mmap found in its memory map")
    add_pending = py.symbols["Py_AddPendingCall"][0] + bias
    return mmap, add_pending, py.symbols["PyRun_SimpleString"][0] + bias


# ----------------------------------------------------------------------------- files


def _same_mount_namespace(pid):
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt") == os.readlink("/proc/self/ns/mnt")
    except OSError:
        return False


def _same_pid_namespace(pid):
    try:
        return os.readlink(f"/proc/{pid}/ns/pid") == os.readlink("/proc/self/ns/pid")
    except OSError:
        return False


def _target_groups(pid):
    gids = set()
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("Gid:", "Groups:")):
                    gids.update(int(g) for g in line.split(":", 1)[1].split())
    except (OSError, ValueError):
        pass
    return gids


def _readable_by(path, uid, gids):
    """Whether user ``uid`` (groups ``gids``) can read ``path`` (and search its directories),
    from the permission bits (ACLs are not read)."""
    if uid == 0:
        return True
    parts = os.path.abspath(path).split(os.sep)
    for i in range(1, len(parts) + 1):
        p = os.sep.join(parts[:i]) or os.sep
        try:
            st = os.stat(p)
        except OSError:
            return False
        need = 0o4 if i == len(parts) else 0o1
        if st.st_uid == uid:
            ok = st.st_mode & (need << 6)
        elif st.st_gid in gids:
            ok = st.st_mode & (need << 3)
        else:
            ok = st.st_mode & need
        if not ok:
            return False
    return True


# ----------------------------------------------------------------------------- why it waits

_SYSCALLS = {
    "x86_64": {
        0: "read",
        7: "poll",
        23: "select",
        34: "pause",
        35: "nanosleep",
        43: "accept",
        45: "recvfrom",
        47: "recvmsg",
        61: "wait4",
        128: "rt_sigtimedwait",
        130: "rt_sigsuspend",
        202: "futex",
        230: "clock_nanosleep",
        232: "epoll_wait",
        247: "waitid",
        270: "pselect6",
        271: "ppoll",
        281: "epoll_pwait",
        288: "accept4",
        441: "epoll_pwait2",
    },
    "aarch64": {
        22: "epoll_pwait",
        63: "read",
        72: "pselect6",
        73: "ppoll",
        98: "futex",
        101: "nanosleep",
        115: "clock_nanosleep",
        202: "accept",
        207: "recvfrom",
        212: "recvmsg",
        242: "accept4",
        260: "wait4",
        441: "epoll_pwait2",
    },
}

_WHY = {
    "nanosleep": "sleeping (time.sleep)",
    "clock_nanosleep": "sleeping (time.sleep)",
    "pause": "sleeping (signal.pause)",
    "rt_sigsuspend": "waiting for a signal",
    "rt_sigtimedwait": "waiting for a signal",
    "accept": "blocked in C in accept() (a server waiting for a connection)",
    "accept4": "blocked in C in accept() (a server waiting for a connection)",
    "read": "blocked in C in read() (waiting for input)",
    "recvfrom": "blocked in C receiving from a socket",
    "recvmsg": "blocked in C receiving from a socket",
    "poll": "blocked in C waiting for I/O (select/poll: an idle event loop?)",
    "ppoll": "blocked in C waiting for I/O (select/poll: an idle event loop?)",
    "select": "blocked in C waiting for I/O (select/poll: an idle event loop?)",
    "pselect6": "blocked in C waiting for I/O (select/poll: an idle event loop?)",
    "epoll_wait": "blocked in C waiting for I/O (epoll: an idle event loop?)",
    "epoll_pwait": "blocked in C waiting for I/O (epoll: an idle event loop?)",
    "epoll_pwait2": "blocked in C waiting for I/O (epoll: an idle event loop?)",
    "wait4": "waiting for a child process",
    "waitid": "waiting for a child process",
}


def _thread_state(pid, tid):
    """(state letter, syscall name or None, cpu ticks) of one thread, or None if gone."""
    base = f"/proc/{pid}/task/{tid}"
    try:
        with open(f"{base}/stat", "rb") as f:
            data = f.read()
        fields = data[data.rfind(b")") + 2 :].split()
        state = fields[0].decode()
        ticks = int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None
    call = None
    try:
        with open(f"{base}/syscall") as f:
            words = f.read().split()
        if words and words[0] not in ("running", "-1"):
            nr = int(words[0])
            call = _SYSCALLS.get(os.uname().machine, {}).get(nr, f"syscall {nr}")
            args = [int(w, 16) for w in words[1:7]]
            # select() or poll() on no file at all is a sleep (time.sleep on Python 3.10)
            if call in ("select", "pselect6") and args[:1] == [0]:
                call = "nanosleep"
            elif call in ("poll", "ppoll") and args[1:2] == [0]:
                call = "nanosleep"
    except (OSError, ValueError):
        pass
    if call is None and state in ("S", "D"):
        try:
            with open(f"{base}/wchan") as f:
                w = f.read().strip()
            if w and w != "0":
                call = w
        except OSError:
            pass
    return state, call, ticks


@dataclass
class Watch:
    """Samples of where the target's threads are while the CLI waits."""

    pid: int
    main: Counter = field(default_factory=Counter)
    busy_others: Counter = field(default_factory=Counter)
    samples: int = 0
    first_ticks: dict = field(default_factory=dict)
    last_ticks: dict = field(default_factory=dict)
    threads: int = 0

    def sample(self):
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{self.pid}/task")]
        except (OSError, ValueError):
            return
        self.samples += 1
        self.threads = len(tids)
        for tid in tids if len(tids) <= 64 else [self.pid]:
            st = _thread_state(self.pid, tid)
            if st is None:
                continue
            self.first_ticks.setdefault(tid, st[2])
            self.last_ticks[tid] = st[2]
            if tid == self.pid:
                self.main[(st[0], st[1])] += 1
            elif st[0] == "R":
                self.busy_others[tid] += 1
        if len(tids) > 64:
            self.busy_others.clear()

    def why(self):
        """A sentence on why the main thread did not reach a safe point."""
        if not self.main:
            return "the target's main thread could not be observed"
        (state, call), _n = self.main.most_common(1)[0]
        if state == "Z":
            return (
                "the main thread has exited while other threads run: CPython runs the "
                "injected call only in the main thread"
            )
        if state in ("T", "t"):
            return "the target is stopped (SIGSTOP or a debugger): resume it with kill -CONT"
        hogs = [t for t, n in self.busy_others.items() if n >= max(1, self.samples // 2)]
        if state == "R" or call is None:
            return (
                "the main thread is running C code without returning to Python (a long call "
                "into C or an extension module, holding the GIL)"
            )
        if call == "futex":
            text = "the main thread is waiting on a lock (threading.Lock, Event, Queue, join)"
            if hogs:
                text += (
                    " or for the GIL: thread"
                    f"{'s' if len(hogs) > 1 else ''} {', '.join(map(str, sorted(hogs)[:5]))} "
                    "ran all the time (C code holding the GIL?)"
                )
            return text
        reason = _WHY.get(call, f"blocked in C (in {call})")
        return f"the main thread is {reason}"


# ----------------------------------------------------------------------------- the attach


@dataclass
class Attached:
    """A snapshot taken inside the target: its bytes and what the target reported."""

    data: bytes
    status: dict
    seconds: float  # from start to the snapshot's arrival
    inject_seconds: float  # the injector's run (ptrace helper or gdb)


class Timeout(AttachError):
    """The target did not reach a safe point in time; the attach was cancelled."""


def _gdb_script(path, code_path, size, reuse=None):
    if reuse is None:
        page = (
            f"set $page = (char *) mmap((void *) 0, (unsigned long) {size}, 1, 0x22, -1, (long) 0)"
        )
    else:
        page = f"set $page = (char *) {reuse:#x}"
    script = f"""set pagination off
set confirm off
set width 0
set height 0
set print thread-events off
set unwindonsignal on
handle SIGUSR1 SIGUSR2 SIGALRM SIGCHLD SIGPIPE SIGHUP nostop noprint pass
handle SIGTERM SIGWINCH SIGIO SIGPROF SIGURG SIGVTALRM nostop noprint pass
{page}
if $page == (char *) -1 || $page == (char *) 0
  printf "refgraph: mmap failed\\n"
else
  restore {code_path} binary $page
  set $rc = (int) Py_AddPendingCall((int (*)(void *)) PyRun_SimpleString, (void *) $page)
  printf "refgraph: page 0x%lx rc %d\\n", (unsigned long) $page, $rc
end
detach
quit
"""
    with open(path, "w") as f:
        f.write(script)


class Session:
    """One attach: the run directory, the injection, the wait, the cleanup."""

    def __init__(
        self, target, timeout=10.0, collect=True, untracked=True, workdir=None, strings="names"
    ):
        if strings not in ("names", "all", "none"):
            raise ValueError(f"strings must be 'names', 'all' or 'none', not {strings!r}")
        self.strings = strings
        self.target = target
        self.timeout = timeout
        self.collect = collect
        self.untracked = untracked
        self.pid = target.pid
        self.same_ns = _same_mount_namespace(self.pid)
        self.prefix = "" if self.same_ns else f"/proc/{self.pid}/root"
        self.target_dir = None  # the run directory as the target names it
        self.dir = None  # the same directory as this process names it
        self.page = None
        self.page_size = 0
        self.inject_seconds = 0.0
        self.workdir = workdir or "/tmp"
        self.watch = Watch(self.pid)

    # -- setup
    def _check_visible(self, so):
        if not self.same_ns:
            try:
                same = os.path.samefile(f"/proc/{self.pid}/root{so}", so)
            except OSError:
                same = False
            if not same:
                raise AttachError(
                    f"process {self.pid} cannot see refgraph's files at {so} (another mount "
                    "namespace: a container?): install refgraph inside it and attach from there"
                )
        if self.target.uid != os.geteuid():
            if not _readable_by(so, self.target.uid, _target_groups(self.pid)):
                raise AttachError(
                    f"process {self.pid}'s user (uid {self.target.uid}) cannot read {so}: "
                    "install refgraph where that user can read it"
                )

    def _make_dir(self):
        base = self.prefix + self.workdir
        _remove_stale_dirs(base, self.pid)
        d = tempfile.mkdtemp(prefix=f"refgraph-attach-{self.pid}-{os.getpid()}-", dir=base)
        if os.geteuid() == 0 and self.target.uid != 0:
            os.chown(d, self.target.uid, -1)
        self.dir = d
        self.target_dir = d[len(self.prefix) :]

    def config(self, so):
        same_pid = _same_pid_namespace(self.pid)
        return {
            "pid": self.pid if same_pid else _ns_pid(self.pid),
            "dir": self.target_dir,
            "uid": self.target.uid,
            "extension": so,
            "collect": bool(self.collect),
            "untracked": bool(self.untracked),
            "strings": self.strings,
            "cli_pid": os.getpid() if same_pid else 0,
            "cli_start": preflight.start_time(os.getpid()) if same_pid else 0,
        }

    # -- injection
    def _inject_gdb(self, text, gdb):
        size = (len(text) + PAGE - 1) // PAGE * PAGE
        reuse = find_free_page(self.pid, size)
        self.page_size = size
        # gdb reads these two files; they are removed as soon as it is done.
        code_path = os.path.join(self.dir, "page.bin")
        script = os.path.join(self.dir, "gdb.cmd")
        with open(code_path, "wb") as f:
            f.write(text)
        _gdb_script(script, code_path, size, reuse)
        cmd = preflight.gdb_batch(gdb) + [
            # The executable through /proc: right even if its file was deleted or replaced.
            f"/proc/{self.pid}/exe",
            "-p",
            str(self.pid),
            "-x",
            script,
        ]
        out, err, interrupted = self._run_helper(cmd, (code_path, script))
        m = re.search(r"refgraph: page 0x([0-9a-f]+) rc (-?\d+)", out)
        if not m and interrupted:
            raise AttachError(
                f"gdb did not finish within {GDB_LIMIT:g} s: it was interrupted, the call it "
                f"was making in process {self.pid} unwound, and the process left running"
            )
        if not m:
            lines = [ln for ln in (err + out).splitlines() if ln.strip()]
            detail = _gdb_problem(lines)
            raise AttachError(f"gdb could not attach to process {self.pid}: {detail}")
        self._injected(int(m.group(1), 16), int(m.group(2)))

    def _inject_ptrace(self, text):
        size = (len(text) + PAGE - 1) // PAGE * PAGE
        reuse = find_free_page(self.pid, size)
        self.page_size = size
        mmap, add_pending, run_string = remote_functions(self.pid, self.target)
        code_path = os.path.join(self.dir, "page.bin")
        with open(code_path, "wb") as f:
            f.write(text)
        cmd = [
            sys.executable,
            "-I",
            os.path.join(_HERE, "ptrace.py"),
            str(self.pid),
            code_path,
            str(size),
            hex(reuse or 0),
            hex(mmap),
            hex(add_pending),
            hex(run_string),
            str(CALL_LIMIT),
        ]
        out, err, _interrupted = self._run_helper(cmd, (code_path,))
        m = re.search(r"refgraph: page 0x([0-9a-f]+) rc (-?\d+)", out)
        if m:
            self._injected(int(m.group(1), 16), int(m.group(2)))
            return
        m = re.search(r"refgraph: error (.*)", out)
        detail = m.group(1) if m else ((err + out).strip().splitlines() or ["no output"])[-1]
        if detail.startswith("registers: "):
            raise AttachError(
                f"process {self.pid}'s registers could not be put back exactly after the "
                f"injection ({detail[11:]}): it may misbehave"
            )
        if detail.startswith("gone "):
            raise AttachError(f"process {self.pid} exited during the attach")
        if "Operation not permitted" in detail:
            detail += " (ptrace blocked: seccomp, Yama or a missing capability?)"
        raise AttachError(f"could not inject into process {self.pid}: {detail}")

    def _run_helper(self, cmd, files):
        """Run gdb or the ptrace helper in a session of its own; (stdout, stderr, whether it
        had to be interrupted). ``files`` are removed afterwards."""
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,  # a Ctrl-C of the CLI does not reach it mid-call
        )
        interrupted = False
        try:
            out, err = proc.communicate(timeout=GDB_LIMIT)
        except subprocess.TimeoutExpired:
            # Never kill it: it may be inside the call, and the target would be left in it.
            # An interrupt makes gdb unwind the call (unwindonsignal) and detach; the ptrace
            # helper keeps to its own limit.
            interrupted = True
            proc.send_signal(2)
            out, err = proc.communicate()
        finally:
            self.inject_seconds = time.perf_counter() - t0
            for p in files:
                try:
                    os.unlink(p)
                except OSError:
                    pass
        return out, err, interrupted

    def _injected(self, page, rc):
        self.page = page
        if rc != 0:
            raise AttachError(
                f"process {self.pid}'s queue of pending calls is full: try again in a moment"
            )

    def _inject_remote_exec(self, text):
        # CPython 3.14+ (PEP 768). Untested: no such interpreter on the machine this was
        # written on.
        script = os.path.join(self.dir, "inject.py")
        with open(script, "wb") as f:
            f.write(text.rstrip(b"\0"))
        os.chmod(script, 0o600)
        if self.target.uid != os.geteuid() and os.geteuid() == 0:
            os.chown(script, self.target.uid, -1)
        try:
            sys.remote_exec(self.pid, self.target_dir + "/inject.py")
        except Exception as e:
            raise AttachError(f"sys.remote_exec({self.pid}) failed: {e}") from None

    # -- waiting
    def _alive(self):
        return preflight.alive(self.pid, self.target.start)

    def _claim(self):
        """Create ``claim`` before the target does: True if the target will now do nothing."""
        try:
            fd = os.open(
                os.path.join(self.dir, "claim"),
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                0o600,
            )
        except FileExistsError:
            return False
        except OSError:
            return True  # the directory is gone (the target exited)
        os.write(fd, b"cancel")
        os.close(fd)
        return True

    def _status(self):
        try:
            with open(os.path.join(self.dir, "status"), "rb") as f:
                return ast.literal_eval(f.read().decode())
        except FileNotFoundError:
            return None
        except (OSError, ValueError, SyntaxError) as e:
            return {"ok": False, "error": f"unreadable status: {e}"}

    def _wait(self, deadline, progress=None):
        next_sample = 0.0
        while True:
            status = self._status()
            if status is not None:
                return status
            now = time.monotonic()
            if not self._alive():
                return None
            if deadline is not None and now >= deadline:
                return False
            if now >= next_sample:
                self.watch.sample()
                next_sample = now + 0.1
            time.sleep(0.02)

    def run(self, progress=None):
        """Attach, wait, and return an :class:`Attached`; raise :class:`AttachError` (or
        :class:`Timeout`) with the reason."""
        try:
            return self._run(progress)
        except (AttachError, OSError) as e:
            if isinstance(e, Timeout) or self._alive():
                if isinstance(e, OSError):
                    raise AttachError(f"process {self.pid}: {e}") from None
                raise
            raise AttachError(f"process {self.pid} exited during the attach") from None

    def _run(self, progress):
        so = extension_path()
        self._check_visible(so)
        t0 = time.perf_counter()
        how = preflight.injector(self.target.version)
        if how == "gdb":
            # Before the run directory exists: a CLI killed during this check (its own probe
            # process) leaves nothing behind.
            gdb = preflight.find_gdb()
            preflight.check_gdb_calls(gdb)
        self._make_dir()
        try:
            text = page_text(self.config(so))
            if progress:
                progress.stage(f"attaching to {self.pid}")
            if how == "ptrace":
                self._inject_ptrace(text)
            elif how == "gdb":
                self._inject_gdb(text, gdb)
            else:
                self._inject_remote_exec(text)
            if progress:
                progress.stage(f"waiting for {self.pid} to run the snapshot")
            deadline = time.monotonic() + self.timeout
            try:
                status = self._wait(deadline)
            except KeyboardInterrupt:
                if self._claim():
                    raise
                status = self._wait(None)  # already running: let it finish
            if status is False:
                if self._claim():
                    raise Timeout(
                        f"no snapshot from process {self.pid} after {self.timeout:g} s: "
                        f"{self.watch.why()}. Cancelled; the target is unchanged "
                        "(try a longer --timeout)"
                    )
                if progress:
                    progress.stage(f"process {self.pid} is taking the snapshot")
                status = self._wait(None)
            if status is None:
                raise AttachError(f"process {self.pid} exited before the snapshot was taken")
            if not status.get("ok"):
                raise AttachError(
                    f"the snapshot failed inside process {self.pid}: {status.get('error')}"
                )
            with open(os.path.join(self.dir, "snapshot.rgsnap"), "rb") as f:
                data = f.read()
            self._mark_page_free()
            return Attached(data, status, time.perf_counter() - t0, self.inject_seconds)
        finally:
            self._cleanup()

    def _mark_page_free(self):
        """The pending call has run: its page is never read again; the next attach may reuse
        it."""
        if self.page is not None and self._alive():
            mark_page_free(self.pid, self.page, self.page_size)

    def _cleanup(self):
        if self.dir is None:
            return
        for name in ("snapshot.rgsnap", "status", "claim", "page.bin", "gdb.cmd", "inject.py"):
            try:
                os.unlink(os.path.join(self.dir, name))
            except OSError:
                pass
        try:
            os.rmdir(self.dir)
        except OSError:
            shutil.rmtree(self.dir, ignore_errors=True)


def _remove_stale_dirs(base, pid):
    """Run directories for ``pid`` left by a CLI that was killed (its pid in the name is gone):
    removed, so that the pending call it left, if it ever runs, does nothing."""
    for d in glob.glob(os.path.join(base, f"refgraph-attach-{pid}-*-*")):
        parts = os.path.basename(d).split("-")
        try:
            cli = int(parts[3])
        except (IndexError, ValueError):
            continue
        if cli == os.getpid() or os.path.exists(f"/proc/{cli}"):
            continue
        try:
            st = os.lstat(d)
        except OSError:
            continue
        if not os.path.isdir(d) or os.path.islink(d) or st.st_mode & 0o077:
            continue
        for name in ("claim", "page.bin", "gdb.cmd", "inject.py", "status", "snapshot.rgsnap"):
            try:
                os.unlink(os.path.join(d, name))
            except OSError:
                pass
        for name in os.listdir(d) if os.path.isdir(d) else []:
            if name.endswith(".tmp") or ".tmp" in name:
                try:
                    os.unlink(os.path.join(d, name))
                except OSError:
                    pass
        try:
            os.rmdir(d)
        except OSError:
            pass


def _ns_pid(pid):
    """The pid of ``pid`` inside its own pid namespace (NSpid's last field)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError):
        pass
    return pid


def _gdb_problem(lines):
    for ln in lines:
        low = ln.lower()
        if "operation not permitted" in low or "ptrace:" in low:
            return ln.strip() + " (ptrace blocked: seccomp, Yama or a missing capability?)"
        if "no symbol" in low:
            return ln.strip() + " (the interpreter's symbols are not visible to gdb)"
    return lines[-1].strip() if lines else "no output"


def snapshot_bytes(pid, timeout=10.0, collect=True, untracked=True, progress=None, strings="names"):
    """Pre-flight checks, then a snapshot of process ``pid``: an :class:`Attached`.
    ``strings``: what the snapshot keeps of the target's strings, as for
    :func:`refgraph.snapshot`."""
    target = preflight.check(pid)
    return Session(target, timeout, collect, untracked, strings=strings).run(progress)
