"""Where refgraph attaches with gdb (machines other than x86_64; ``REFGRAPH_ATTACH_INJECTOR=gdb``
forces it, as here), it attaches only where gdb can call a function in a process and put its
registers back.

Some gdb, kernel and CPU combinations cannot (gdb 13 on Intel CPUs with AMX: "Couldn't write
extended state status: Bad address"); a target attached there goes on with wrong registers
(its interrupted sleep failed with errno 514). refgraph checks on a process of its own first.
On a machine where gdb works, the attach goes through; where it does not, refgraph refuses and
the target never notices. Either way the test checks what happened to a real target.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from refgraph.attach import preflight

pytestmark = [
    pytest.mark.skipif(sys.platform != "linux", reason="attach works on Linux"),
    pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb is not installed"),
]

# Sleeps until the test creates the file named by its argument (at most 20 s).
TARGET = """
import os, sys, time
print("started", flush=True)
for i in range(400):
    time.sleep(0.05)
    if os.path.exists(sys.argv[1]):
        break
print("done", flush=True)
"""


def test_gdb_output_that_means_registers_were_not_restored():
    out = (
        "[Thread debugging using libthread_db enabled]\n"
        "Couldn't write extended state status: Bad address.\n"
        "[Inferior 1 (process 2730) detached]\n"
    )
    assert preflight.registers_not_restored(out) == (
        "Couldn't write extended state status: Bad address."
    )
    fine = "$1 = 2730\n[Inferior 1 (process 2730) detached]\n"
    assert preflight.registers_not_restored(fine) is None


def test_attach_goes_through_or_refuses_without_touching_the_target(tmp_path):
    problem = preflight._gdb_call_problem(shutil.which("gdb"))
    stop = tmp_path / "stop"
    target = subprocess.Popen(
        [sys.executable, "-c", TARGET, str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert target.stdout.readline().strip() == "started"
        out = tmp_path / "t.rgsnap"
        proc = subprocess.run(
            [sys.executable, "-m", "refgraph", "attach", str(target.pid), "-o", str(out)],
            capture_output=True,
            text=True,
            timeout=120,
            env=dict(os.environ, REFGRAPH_ATTACH_INJECTOR="gdb"),
        )
        if problem is None:
            assert proc.returncode == 0, proc.stderr
            assert out.exists() and out.stat().st_size > 0
        else:
            assert proc.returncode != 0
            assert "gdb cannot call a function in a process and restore its registers" in (
                proc.stderr
            ), proc.stderr
            assert problem in proc.stderr
            assert not out.exists()
        # The target goes on as if nothing happened: its sleeps end normally, it finishes.
        time.sleep(0.5)
        stop.touch()
        rest, err = target.communicate(timeout=60)
        assert target.returncode == 0, err
        assert rest.strip().endswith("done") and "Error" not in err, (rest, err)
    finally:
        if target.poll() is None:
            target.kill()
            target.wait()
    assert not [d for d in os.listdir("/tmp") if d.startswith(f"refgraph-attach-{target.pid}-")]


def test_the_check_runs_once_per_gdb():
    gdb = shutil.which("gdb")
    preflight._gdb_calls_checked.pop(gdb, None)
    t0 = time.perf_counter()
    try:
        preflight.check_gdb_calls(gdb)
        first_ok = True
    except preflight.AttachError as e:
        first_ok = False
        assert "refgraph did not attach" in str(e)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    try:
        preflight.check_gdb_calls(gdb)
        assert first_ok
    except preflight.AttachError:
        assert not first_ok
    assert time.perf_counter() - t0 < first / 10
