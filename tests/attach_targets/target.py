"""A program for refgraph attach's tests to attach to: ``target.py MODE STATE``.

It builds a known heap (``Marker`` objects, lists of ints), then behaves as MODE says, counting
work in a counter that it writes to STATE (``counter pid extra``, replaced atomically) so that the
test can see it go on. It stops when STATE.stop exists (or on SIGUSR1 where the main thread is
idle), checks that its own state is intact (results right, sys.path unchanged, no refgraph
module left) and exits with status 7 after printing ``ok`` and what it checked; anything wrong
makes it exit with status 3.

MODE: busy, leak, sleep, accept, lock, gil, fork, threads, exit, vector, compare.
"""

import os
import re
import signal
import socket
import sys
import threading
import time

mode, state = sys.argv[1], sys.argv[2]
stop_file = state + ".stop"
PATH_BEFORE = list(sys.path)


class Marker:
    def __init__(self, i):
        self.i = i


markers = [Marker(i) for i in range(1000)]
numbers = [list(range(10)) for _ in range(100)]
counter = 0
lock = threading.Lock()
extra = ""


class Leaked:
    pass


leaked = []


class Stop(Exception):
    pass


def on_usr1(signum, frame):
    raise Stop


signal.signal(signal.SIGUSR1, on_usr1)


def publish():
    tmp = "%s.%d.%d.tmp" % (state, os.getpid(), threading.get_ident())
    with open(tmp, "w") as f:
        f.write("%d %d %s" % (counter, os.getpid(), extra))
    os.replace(tmp, state)


def stopping():
    return os.path.exists(stop_file)


def work(n=2000):
    """Python code whose result is known: checks the interpreter still computes right."""
    global counter
    total = 0
    for i in range(n):
        total += i * i
    assert total == (n - 1) * n * (2 * n - 1) // 6, total
    counter += 1


def worker():
    # SIGUSR1 wakes the main thread: a signal sent to the process may go to any thread that
    # does not block it, and one taken by a worker would not interrupt the main thread's sleep.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    while not stopping():
        work(200)
        publish()
        time.sleep(0.01)


def busy():
    while not stopping():
        for _ in range(50):
            work()
        publish()


def start_workers(n=2):
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    return threads


def main():
    global extra
    if mode == "busy":
        busy()
    elif mode == "leak":
        while not stopping():
            for _ in range(20):
                work()
            leaked.extend(Leaked() for _ in range(100))
            publish()
            time.sleep(0.02)
    elif mode == "sleep":
        start_workers()
        try:
            time.sleep(600)
        except Stop:
            pass
    elif mode == "accept":
        start_workers()
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        extra = "port=%d" % server.getsockname()[1]
        publish()
        try:
            conn, _ = server.accept()
            conn.close()
        except Stop:
            pass
        server.close()
    elif mode == "lock":
        held = threading.Lock()
        held.acquire()

        def release_on_stop():
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
            while not stopping():
                work(200)
                publish()
                time.sleep(0.01)
            held.release()

        threading.Thread(target=release_on_stop, daemon=True).start()
        held.acquire()
    elif mode == "gil":
        # The main thread holds the GIL in C (the regex engine) for seconds at a time.
        evil = re.compile(r"(a+)+$")
        while not stopping():
            t0 = time.perf_counter()
            assert evil.match("a" * int(os.environ.get("TARGET_GIL_N", "22")) + "b") is None
            extra = "c_seconds=%.2f" % (time.perf_counter() - t0)
            work()
            publish()
    elif mode == "fork":
        children = 0
        while not stopping():
            pid = os.fork()
            if pid == 0:
                work(100)
                os._exit(0 if len(markers) == 1000 else 5)
            _, status = os.waitpid(pid, 0)
            if status != 0:
                print("child failed: status", status)
                sys.exit(3)
            children += 1
            work()
            extra = "children=%d" % children
            publish()
    elif mode == "threads":
        n = int(os.environ.get("TARGET_THREADS", "2000"))
        event = threading.Event()
        threads = [threading.Thread(target=event.wait, daemon=True) for _ in range(n)]
        for t in threads:
            t.start()
        extra = "threads=%d" % threading.active_count()
        busy()
        event.set()
        for t in threads:
            t.join()
    elif mode == "exit":
        delay = float(os.environ.get("TARGET_EXIT_AFTER", "0.5"))
        t0 = time.time()
        publish()
        while time.time() - t0 < delay:
            work(200)
        publish()
        sys.exit(int(os.environ.get("TARGET_EXIT_CODE", "4")))
    elif mode == "vector":
        # Most of the time in C code that keeps values in AVX-512 registers (hold.c).
        import ctypes

        hold = ctypes.CDLL(os.environ["TARGET_HOLD_LIB"]).hold
        changed = 0
        while not stopping():
            changed += hold(2000000)
            work(20)
            extra = "changed=%d" % changed
            publish()
    elif mode == "compare":
        # An in-process snapshot, then a loop that allocates nothing that lives: an attach
        # snapshot taken now sees the same heap.
        sys.path.insert(0, os.environ["REFGRAPH_PATH"])
        import refgraph

        sys.path.remove(os.environ["REFGRAPH_PATH"])
        refgraph.snapshot().save(state + ".inproc.rgsnap")
        publish()
        while not stopping():
            for _ in range(100000):
                pass
        for name in [m for m in sys.modules if m == "refgraph" or m.startswith("refgraph.")]:
            del sys.modules[name]
    else:
        raise SystemExit("unknown mode " + mode)


MAIN_NAMES = set(globals()) | {"MAIN_NAMES"}
try:
    main()
except Stop:
    pass
problems = []
added = set(globals()) - MAIN_NAMES - {"problems"}
if added:
    problems.append("names added to __main__: %s" % sorted(added))
if len(markers) != 1000 or [m.i for m in markers] != list(range(1000)):
    problems.append("markers changed")
if any(n != list(range(10)) for n in numbers):
    problems.append("numbers changed")
if sys.path != PATH_BEFORE:
    problems.append("sys.path changed: %r" % sys.path)
left = sorted(m for m in sys.modules if m == "refgraph" or m.startswith("refgraph."))
if left:
    problems.append("refgraph modules left: %s" % left)
work()
publish()
if problems:
    print("problems:", "; ".join(problems))
    sys.exit(3)
with open("/proc/self/maps") as f:
    mapped = "_refgraph" in f.read()
print("ok", counter, "threads", threading.active_count(), "extension_mapped", mapped)
sys.exit(7)
