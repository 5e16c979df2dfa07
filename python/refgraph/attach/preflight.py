"""Checks made before touching a process: it exists, it is CPython of a supported version and
build, this user may trace it, and the tools needed are here. Each failure is one line that
says what to do (:class:`AttachError`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass

from . import elf

SUPPORTED = ((3, 10), (3, 13))
"""Oldest and newest minor version attached through a pending call (gdb)."""

CAP_SYS_PTRACE = 19

# Symbols every CPython 3.10+ exports, even stripped: what the injection calls.
NEEDED = ("Py_AddPendingCall", "PyRun_SimpleString", "_PyRuntime")
# Exported only by free-threaded (PEP 703) builds.
FREE_THREADED = ("_Py_DecRefShared", "_Py_MergeZeroLocalRefcount")


class AttachError(Exception):
    """A one-line reason why the process cannot be attached to, and what to do about it."""


@dataclass
class Target:
    pid: int
    exe: str  # the executable, as the target's /proc entry names it
    interpreter: str  # the file that holds CPython (the executable or a libpython)
    version: tuple  # (major, minor, micro)
    uid: int  # effective user id of the target
    start: int  # start time in clock ticks after boot (to notice a reused pid)
    root_same: bool  # the target sees the same root directory as this process

    @property
    def version_text(self):
        return ".".join(str(p) for p in self.version)


def _read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


def _status(pid):
    out = {}
    for line in _read(f"/proc/{pid}/status").splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def start_time(pid):
    """Field 22 of /proc/PID/stat (start time in clock ticks), or None if the process is gone."""
    try:
        data = _read(f"/proc/{pid}/stat", "rb")
    except OSError:
        return None
    return int(data[data.rfind(b")") + 2 :].split()[19])


def alive(pid, start):
    """Whether process ``pid``, started at ``start``, still runs (not gone, not a zombie)."""
    try:
        data = _read(f"/proc/{pid}/stat", "rb")
    except OSError:
        return False
    fields = data[data.rfind(b")") + 2 :].split()
    return fields[0] not in (b"Z", b"X") and int(fields[19]) == start


def _user(uid):
    try:
        import pwd

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (KeyError, ImportError):
        return f"uid {uid}"


def has_cap_sys_ptrace(status=None):
    status = status or _status("self")
    return bool(int(status.get("CapEff", "0"), 16) >> CAP_SYS_PTRACE & 1)


def _yama_scope():
    try:
        return int(_read("/proc/sys/kernel/yama/ptrace_scope").strip())
    except (OSError, ValueError):
        return 0  # no Yama: classic ptrace permissions


def _is_ancestor_of(pid):
    me = os.getpid()
    p = pid
    for _ in range(4096):
        try:
            p = int(_status(p).get("PPid", "0"))
        except (OSError, ValueError):
            return False
        if p == me:
            return True
        if p <= 1:
            return False
    return False


def check_permission(pid, status):
    """Raise AttachError unless this process may ptrace ``pid`` (same checks as the kernel,
    as far as /proc shows them)."""
    me = _status("self")
    cap = has_cap_sys_ptrace(me)
    my_uid = os.geteuid()
    uids = [int(u) for u in status.get("Uid", "0 0 0 0").split()[:3]]
    if not cap and any(u != my_uid for u in uids):
        raise AttachError(
            f"pid {pid} runs as {_user(uids[1])}, you are {_user(my_uid)}: run refgraph as that "
            f"user (sudo -u '#{uids[1]}' refgraph attach {pid}) or as root"
        )
    scope = _yama_scope()
    if scope == 3:
        raise AttachError(
            "ptrace is disabled on this machine (kernel.yama.ptrace_scope=3, until reboot)"
        )
    if scope == 2 and not cap:
        raise AttachError(
            "only root may trace processes here (kernel.yama.ptrace_scope=2): run refgraph "
            "with sudo"
        )
    if scope == 1 and not cap and not _is_ancestor_of(pid):
        raise AttachError(
            "ptrace is restricted to child processes (kernel.yama.ptrace_scope=1): run refgraph "
            "with sudo, or allow it with 'sudo sysctl kernel.yama.ptrace_scope=0'"
        )
    # The kernel also wants the target's permitted capabilities to be a subset of the
    # tracer's, unless the tracer has CAP_SYS_PTRACE.
    theirs = int(status.get("CapPrm", "0"), 16)
    mine = int(me.get("CapPrm", "0"), 16)
    if not cap and theirs & ~mine:
        if my_uid == 0:
            raise AttachError(
                "root without CAP_SYS_PTRACE (a container?): start the container with "
                "--cap-add=SYS_PTRACE, or run refgraph on the host"
            )
        raise AttachError(
            f"process {pid} has capabilities you lack (it runs with more privileges): run "
            "refgraph as root"
        )


def _python_files(pid, exe):
    """The executable, then every mapped file named libpython*: where CPython may live."""
    files = [exe]
    try:
        maps = _read(f"/proc/{pid}/maps")
    except OSError:
        return files
    for line in maps.splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6:
            path = parts[5]
            if os.path.basename(path).startswith("libpython") and path not in files:
                files.append(path)
    return files


def _interpreter(pid, exe):
    """(path, Elf) of the file exporting CPython's API, or None."""
    for path in _python_files(pid, exe):
        # The executable through /proc (even if it was deleted or replaced since it started);
        # others through the target's root, so that a file it sees (a container's) is read.
        first = f"/proc/{pid}/exe" if path == exe else f"/proc/{pid}/root{path}"
        for candidate in (first, path):
            try:
                e = elf.load(candidate)
            except (OSError, elf.ElfError):
                continue
            if all(name in e.symbols for name in NEEDED):
                return path, e
            break
    return None


def version_of(e):
    """(major, minor, micro) of the CPython in ELF ``e``, or None for 3.9 and older."""
    v = e.unpack("I", "Py_Version")
    if v is not None:
        v = v[0]
        return (v >> 24, (v >> 16) & 0xFF, (v >> 8) & 0xFF)
    if "Py_NewRef" in e.symbols:  # a function since 3.10; Py_Version arrived in 3.11
        return (3, 10, 0)
    return None


def check_platform(pid, interpreter):
    """The target's interpreter and refgraph's extension must be for the same machine."""
    from .inject import extension_path

    try:
        ours = elf.header(extension_path())
    except (OSError, elf.ElfError, ImportError):
        return  # nothing to compare with: the load in the target will say
    theirs = (interpreter.bits, interpreter.end, elf._MACHINES.get(interpreter.machine, ""))
    if theirs[:2] != ours[:2] or (theirs[2] and theirs[2] != ours[2]):
        raise AttachError(
            f"process {pid} runs a {theirs[2] or 'different'} {theirs[0]}-bit Python; "
            f"refgraph's extension here is for {ours[2]} ({ours[0]}-bit): run a refgraph "
            "built for that platform"
        )


def injector(version):
    """How refgraph's code gets into a process running CPython ``version``: ``"remote_exec"``
    (3.14+, PEP 768), ``"ptrace"`` (refgraph's own, on x86_64) or ``"gdb"`` (other machines).
    ``REFGRAPH_ATTACH_INJECTOR=gdb`` or ``=ptrace`` chooses for 3.10-3.13 (the tests use it)."""
    if version[:2] > SUPPORTED[1]:
        return "remote_exec"
    forced = os.environ.get("REFGRAPH_ATTACH_INJECTOR", "")
    if forced in ("gdb", "ptrace"):
        return forced
    return "ptrace" if os.uname().machine == "x86_64" else "gdb"


def find_gdb():
    gdb = shutil.which("gdb")
    if gdb is None:
        raise AttachError(
            "gdb is needed to attach: install it (apt-get install gdb, dnf install gdb, "
            "apk add gdb)"
        )
    return gdb


# What gdb prints when it could not put a process's registers back after calling a function
# in it: the process then goes on with wrong registers (seen with gdb 13 on Intel CPUs with
# AMX, where a sleeping target's next system call failed with errno 514).
_REGISTERS_NOT_RESTORED = (
    "Couldn't write extended state",
    "Couldn't write registers",
    "Couldn't write floating point",
    "Couldn't write debug register",
)

_gdb_calls_checked: dict[str, str | None] = {}


def registers_not_restored(gdb_output):
    """The line of gdb's output that says it could not restore a process's registers, or None."""
    for line in gdb_output.splitlines():
        if any(p in line for p in _REGISTERS_NOT_RESTORED):
            return line.strip()
    return None


def gdb_batch(gdb):
    """The start of a gdb command line in batch mode that reads no debug info, no init file
    and no auto-loaded scripts."""
    return [
        gdb,
        "-nx",
        "-batch",
        "--readnever",
        "-iex",
        "set auto-load off",
        "-iex",
        "set debuginfod enabled off",
    ]


def check_gdb_calls(gdb):
    """Make sure gdb can call a function in a process and put its registers back, on a process
    of our own (a sleeping copy of this interpreter) before it touches the target: some gdb,
    kernel and CPU combinations cannot, and the target would go on with corrupted registers.
    Once per gdb per process; raises :class:`AttachError` naming what gdb said."""
    if gdb in _gdb_calls_checked:
        problem = _gdb_calls_checked[gdb]
    else:
        problem = _gdb_call_problem(gdb)
        _gdb_calls_checked[gdb] = problem
    if problem:
        raise AttachError(
            "gdb cannot call a function in a process and restore its registers here "
            f"({problem}); attaching would corrupt the target, so refgraph did not attach. "
            "A newer gdb (14 or later) may work; or take the snapshot in the program "
            "(refgraph.dump_on_signal())"
        )


def _gdb_call_problem(gdb):
    code = "import sys, time\nsys.stdout.write('ready\\n'); sys.stdout.flush()\n"
    code += "time.sleep(30)\nprint('slept')\n"
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if child.stdout.readline().strip() != "ready":
            return None  # the probe itself could not start: let the attach say what is wrong
        proc = subprocess.run(
            gdb_batch(gdb) + ["-p", str(child.pid), "-ex", "print (int) getpid()", "-ex", "detach"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=60,
        )
        problem = registers_not_restored(proc.stdout + proc.stderr)
        if problem:
            return problem
        # The probe must still be sleeping, unharmed (an interrupted sleep that fails is the
        # sign of registers put back wrongly).
        time.sleep(0.2)
        if child.poll() is not None:
            err = child.stderr.read().strip().splitlines()
            return "the probe process died: " + (err[-1] if err else f"exit {child.returncode}")
        return None
    except (OSError, subprocess.TimeoutExpired):
        return None  # no verdict: the attach itself reports gdb's problems
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        for f in (child.stdout, child.stderr):
            f.close()


def check(pid, need_gdb=True):
    """Every check; returns a :class:`Target` or raises :class:`AttachError`."""
    if pid <= 0:
        raise AttachError(f"{pid} is not a process id")
    if pid == os.getpid():
        raise AttachError("cannot attach to refgraph itself: use refgraph.snapshot()")
    try:
        status = _status(pid)
    except FileNotFoundError:
        raise AttachError(f"no process {pid}") from None
    except OSError as e:
        raise AttachError(f"pid {pid}: {e.strerror}") from None
    tgid = int(status.get("Tgid", pid))
    if tgid != pid:
        raise AttachError(f"{pid} is a thread of process {tgid}: attach to {tgid}")
    if status.get("State", "").startswith(("Z", "X")):
        raise AttachError(f"process {pid} has exited (zombie)")
    if status.get("State", "").startswith("T"):
        raise AttachError(
            f"process {pid} is stopped (SIGSTOP or job control): resume it with kill -CONT {pid}"
            " first"
        )
    tracer = int(status.get("TracerPid", "0") or 0)
    if tracer:
        raise AttachError(
            f"process {pid} is already traced by process {tracer} (a debugger, strace?): "
            "detach it first"
        )
    check_permission(pid, status)
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except FileNotFoundError:
        raise AttachError(f"no process {pid} (or a kernel thread)") from None
    except PermissionError:
        raise AttachError(
            f"not allowed to inspect process {pid}: run refgraph as its user or as root"
        ) from None
    found = _interpreter(pid, exe)
    if found is None:
        raise AttachError(f"process {pid} ({os.path.basename(exe)}) is not CPython")
    path, elf_file = found
    version = version_of(elf_file)
    if version is None or version[:2] < SUPPORTED[0]:
        shown = "older than 3.10" if version is None else ".".join(map(str, version))
        raise AttachError(f"process {pid} runs CPython {shown}: refgraph needs 3.10 or newer")
    if any(name in elf_file.symbols for name in FREE_THREADED):
        raise AttachError(
            f"process {pid} runs a free-threaded CPython {version[0]}.{version[1]} build: "
            "not supported yet"
        )
    check_platform(pid, elf_file)
    if version[:2] > SUPPORTED[1] and not hasattr(sys, "remote_exec"):
        raise AttachError(
            f"process {pid} runs CPython {version[0]}.{version[1]}: attach to 3.14 and newer "
            "needs refgraph itself to run on Python 3.14+ (sys.remote_exec)"
        )
    if injector(version) == "gdb" and need_gdb:
        find_gdb()
    try:
        root_same = os.path.samestat(os.stat(f"/proc/{pid}/root"), os.stat("/"))
    except OSError:
        root_same = False
    return Target(
        pid=pid,
        exe=exe,
        interpreter=path,
        version=version,
        uid=int(status.get("Uid", "0 0").split()[1]),
        start=start_time(pid),
        root_same=root_same,
    )
