"""Calling two functions in another process's main thread on x86_64 Linux, with ptrace, and
putting every register back exactly as it was, the vector registers included.

Why not gdb: gdb before version 14 reads and writes the AVX-512 registers at Intel's offsets of
the XSAVE area; on AMD CPUs with AVX-512 (Zen 4) they sit elsewhere, so every function gdb
calls in a process leaves its registers ymm16-ymm31 changed. glibc's string functions keep data
in those registers there (``memcpy`` of 65-128 bytes loads it into ymm16-ymm19, then stores
it): a process stopped between the loads and the stores wrote zeros where its data should have
been, and crashed later. Here the whole XSAVE area is saved as the kernel gives it and given
back byte for byte.

This file runs as a program of its own (``python -I ptrace.py ...``), started by
:mod:`refgraph.attach.inject` in a session of its own, so that a Ctrl-C or a kill of the CLI
never stops it in the middle of a call. It imports nothing from refgraph. What it does:

1. ``PTRACE_SEIZE`` + ``PTRACE_INTERRUPT`` the main thread (the other threads run on); save its
   general registers and its XSAVE area.
2. Unless a free page of an earlier attach is reused: call ``mmap`` for one fresh read-only
   page (a system call: no lock of the allocator is taken at the stop).
3. Write the code into the page (``/proc/PID/mem``), call
   ``Py_AddPendingCall(PyRun_SimpleString, page)``.
4. Put the registers and the XSAVE area back, read them again to check, detach. A system call
   the thread was stopped in is restarted by the kernel, as after any signal.

A call returns to address 0: the fault that follows is the sign it is done (the fault is not
delivered). A signal that arrives during a call is delivered to the target's handler as usual.
A call that does not return within the time limit is abandoned: the thread is stopped and put
back where it was. Output: one line ``refgraph: page 0x... rc N`` or ``refgraph: error ...``.
"""

from __future__ import annotations

import ctypes
import os
import signal
import struct
import sys
import time

PTRACE_CONT = 7
PTRACE_GETREGS = 12
PTRACE_SETREGS = 13
PTRACE_DETACH = 17
PTRACE_GETREGSET = 0x4204
PTRACE_SETREGSET = 0x4205
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
PTRACE_EVENT_STOP = 128
NT_X86_XSTATE = 0x202
WALL = 0x40000000

# struct user_regs_struct (x86_64): 27 unsigned longs; the ones used here
R9, R8, RAX, RCX, RDX, RSI, RDI, ORIG_RAX, RIP, EFLAGS, RSP = (
    8,
    9,
    10,
    11,
    12,
    13,
    14,
    15,
    16,
    18,
    19,
)
NREGS = 27
XSTATE_MAX = 1 << 16  # bytes: larger than any XSAVE area (AMX's is about 11 kB)
RED_ZONE = 128
RETURN = 0  # the address calls return to
FAULTS = (signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGTRAP)


class Regs(ctypes.Structure):
    _fields_ = [("r", ctypes.c_ulonglong * NREGS)]
    r: ctypes.Array[ctypes.c_ulonglong]


class Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
    base: int | None
    len: int


class PtraceError(Exception):
    pass


class Gone(PtraceError):
    """The target exited or was killed."""


_libc = ctypes.CDLL(None, use_errno=True)
_ptrace = _libc.ptrace
_ptrace.restype = ctypes.c_long
_ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]


def ptrace(request, pid, addr=None, data=None):
    ctypes.set_errno(0)
    r = _ptrace(request, pid, addr, data)
    if r == -1:
        e = ctypes.get_errno()
        if e:
            raise PtraceError(f"ptrace({request:#x}) of {pid}: {os.strerror(e)}")
    return r


def _signed(v):
    return v - (1 << 64) if v >= 1 << 63 else v


class Tracee:
    """The main thread of process ``pid``, stopped; :meth:`release` puts it back and lets it go."""

    def __init__(self, pid):
        self.pid = pid
        self.attached = False
        self.mem = None
        try:
            ptrace(PTRACE_SEIZE, pid, None, None)
        except PtraceError as e:
            raise PtraceError(f"cannot trace process {pid}: {e}") from None
        self.attached = True
        try:
            ptrace(PTRACE_INTERRUPT, pid)
            self._wait_for_stop(time.monotonic() + 10.0)
            self.regs = self.get_regs()
            self.xstate = self.get_xstate()
            self.mem = open(f"/proc/{pid}/mem", "r+b", buffering=0)
        except BaseException:
            self._detach()
            raise

    # -- registers
    def get_regs(self):
        regs = Regs()
        ptrace(PTRACE_GETREGS, self.pid, None, ctypes.byref(regs))
        return regs

    def set_regs(self, regs):
        ptrace(PTRACE_SETREGS, self.pid, None, ctypes.byref(regs))

    def get_xstate(self):
        buf = ctypes.create_string_buffer(XSTATE_MAX)
        iov = Iovec(ctypes.cast(buf, ctypes.c_void_p), XSTATE_MAX)
        ptrace(PTRACE_GETREGSET, self.pid, NT_X86_XSTATE, ctypes.byref(iov))
        return buf.raw[: iov.len]

    def set_xstate(self, data):
        buf = ctypes.create_string_buffer(data, len(data))
        iov = Iovec(ctypes.cast(buf, ctypes.c_void_p), len(data))
        ptrace(PTRACE_SETREGSET, self.pid, NT_X86_XSTATE, ctypes.byref(iov))

    # -- waiting
    def _wait(self, deadline):
        """The next stop's (signal, event), or None at the deadline; raises :class:`Gone`."""
        while True:
            try:
                wpid, status = os.waitpid(self.pid, os.WNOHANG | WALL)
            except ChildProcessError:
                raise Gone(f"process {self.pid} is gone") from None
            if wpid == self.pid:
                if os.WIFEXITED(status) or os.WIFSIGNALED(status):
                    self.attached = False
                    raise Gone(f"process {self.pid} exited")
                if os.WIFSTOPPED(status):
                    return os.WSTOPSIG(status), status >> 16
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.0005)

    def _wait_for_stop(self, deadline):
        while True:
            got = self._wait(deadline)
            if got is None:
                raise PtraceError(f"process {self.pid} did not stop")
            sig, event = got
            if event == PTRACE_EVENT_STOP:
                return
            if sig == signal.SIGSEGV and self.get_regs().r[RIP] == RETURN:
                return  # a call of ours returned just as it was being given up: stopped
            # A signal on its way to the target: let it have it; the interrupt stop follows.
            ptrace(PTRACE_CONT, self.pid, None, sig)

    # -- memory
    def write(self, addr, data):
        self.mem.seek(addr)
        if self.mem.write(data) != len(data):
            raise PtraceError(f"short write at {addr:#x}")

    # -- calls
    def call(self, func, *args, timeout=10.0):
        """Call ``func(*args)`` (at most six integer arguments) in the stopped thread; its
        return value (rax). The thread is stopped again afterwards, registers not restored."""
        regs = Regs()
        ctypes.memmove(ctypes.byref(regs), ctypes.byref(self.regs), ctypes.sizeof(Regs))
        sp = (self.regs.r[RSP] - RED_ZONE - 256) & ~0xF
        sp -= 8  # the return address: at a function's entry, rsp + 8 is 16-aligned
        self.write(sp, struct.pack("<Q", RETURN))
        regs.r[RSP] = sp
        regs.r[RIP] = func
        regs.r[RAX] = 0
        regs.r[ORIG_RAX] = (1 << 64) - 1  # not in a system call: nothing to restart
        regs.r[EFLAGS] &= ~0x400  # direction flag clear, as the ABI wants at a call
        if len(args) > 6:
            raise ValueError("at most six arguments")
        for reg, value in zip((RDI, RSI, RDX, RCX, R8, R9), args, strict=False):
            regs.r[reg] = value & ((1 << 64) - 1)
        self.set_regs(regs)
        ptrace(PTRACE_CONT, self.pid, None, 0)
        deadline = time.monotonic() + timeout
        while True:
            got = self._wait(deadline)
            if got is None:
                ptrace(PTRACE_INTERRUPT, self.pid)
                self._wait_for_stop(time.monotonic() + 10.0)
                raise PtraceError(f"the call did not return within {timeout:g} s")
            sig, event = got
            if event == PTRACE_EVENT_STOP:
                ptrace(PTRACE_CONT, self.pid, None, 0)
                continue
            if sig in FAULTS:
                now = self.get_regs()
                if sig == signal.SIGSEGV and now.r[RIP] == RETURN:
                    return now.r[RAX]
                raise PtraceError(
                    f"the call faulted (signal {sig} at {now.r[RIP]:#x}); it was undone"
                )
            ptrace(PTRACE_CONT, self.pid, None, sig)  # the target's own signal

    def release(self):
        """Put the registers and the XSAVE area back, check them, detach. Returns a problem
        (text) if they did not read back the same, else None."""
        if not self.attached:
            return None
        problem = None
        try:
            self.set_regs(self.regs)
            self.set_xstate(self.xstate)
            back = self.get_regs()
            if bytes(back) != bytes(self.regs):
                problem = "the general registers did not read back the same"
            elif self.get_xstate() != self.xstate:
                problem = "the vector registers (XSAVE area) did not read back the same"
        finally:
            self._detach()
        return problem

    def _detach(self):
        if self.attached:
            try:
                ptrace(PTRACE_DETACH, self.pid, None, 0)
            except PtraceError:
                pass
            self.attached = False
        if self.mem is not None:
            self.mem.close()
            self.mem = None


def inject(pid, text, size, reuse, mmap_addr, add_pending, run_string, timeout):
    """The injection (steps 1-4 above); returns the output line."""
    t = Tracee(pid)
    page = None
    rc = None
    error = None
    try:
        if reuse:
            page = reuse
        else:
            page = t.call(mmap_addr, 0, size, 1, 0x22, -1, 0, timeout=timeout)  # PROT_READ,
            if _signed(page) < 0 and _signed(page) > -4096:  # MAP_PRIVATE | MAP_ANONYMOUS
                error = f"mmap failed in the target: errno {-_signed(page)}"
                page = None
        if page is not None:
            t.write(page, text)
            rc = _signed(t.call(add_pending, run_string, page, timeout=timeout) & 0xFFFFFFFF)
            rc = rc - (1 << 32) if rc >= 1 << 31 else rc
    except Gone:
        raise
    except (PtraceError, OSError) as e:
        error = str(e)
    finally:
        problem = t.release()
    if problem:
        return f"refgraph: error registers: {problem}"
    if error:
        return f"refgraph: error {error}"
    return f"refgraph: page {page:#x} rc {rc}"


def main(argv):
    # Never stopped half-way by a signal meant for the CLI: these wait until the end.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
    pid, path, size, reuse, mmap_addr, add_pending, run_string, timeout = argv
    with open(path, "rb") as f:
        text = f.read()
    try:
        line = inject(
            int(pid),
            text,
            int(size),
            int(reuse, 0),
            int(mmap_addr, 0),
            int(add_pending, 0),
            int(run_string, 0),
            float(timeout),
        )
    except Gone as e:
        line = f"refgraph: error gone {e}"
    except PtraceError as e:
        line = f"refgraph: error {e}"
    print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
