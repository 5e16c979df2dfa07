"""Objects that a traverse function reports but that are not alive are never referenced.

CPython 3.12.0-3.12.5's ``_asyncio`` module visits its free list of ``FutureIter`` objects
(gh-122695): dead objects, reference count 0. A walker that takes a reference to each referent
and drops it deallocates them a second time: the free list becomes a cycle (the next
``gc.collect()`` hangs) or a reference count goes negative (a crash). Each case runs in a
subprocess with a timeout, so that a regression fails the test instead of hanging the suite.

On interpreters without the bug the same programs must simply work: the tests run everywhere.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

PRELUDE = """
import asyncio, faulthandler, gc, sys
import refgraph

faulthandler.enable()
# A hang would otherwise last forever: dump the stacks and exit well before the test times out.
faulthandler.dump_traceback_later(50, exit=True)

async def handler(n):
    await asyncio.sleep(0)
    return n

async def main():
    return await asyncio.gather(*(handler(i) for i in range(5)))

class Session:
    pass

keep = [Session() for _ in range(3)]
holder = {"sessions": keep}
"""

# One call per refgraph entry point that walks referents; `keep[0]` is a live target.
CALLS = {
    "snapshot": "refgraph.snapshot()",
    "snapshot_save_load": (
        "import tempfile, os\n"
        "d = tempfile.mkdtemp()\n"
        "p = os.path.join(d, 's.rgsnap')\n"
        "refgraph.snapshot().save(p)\n"
        "refgraph.load(p).typestats()"
    ),
    "find_backref_chain": "refgraph.find_backref_chain(keep[0], refgraph.is_proper_module)",
    "find_ref_chain": (
        "refgraph.find_ref_chain(sys.modules['__main__'], lambda o: o is keep[0], max_depth=5)"
    ),
    "show_refs": "refgraph.show_refs([holder], output=__import__('io').StringIO())",
    "show_backrefs": "refgraph.show_backrefs([keep[0]], output=__import__('io').StringIO())",
    "get_leaking_objects": "refgraph.get_leaking_objects()",
    "get_new_ids": "refgraph.get_new_ids(skip_update=False, limit=0)",
    "typestats": "refgraph.typestats()",
}

LOOP = """
for k in range(6):
    asyncio.run(main())
    CALL
    gc.collect()
print("ok", k)
"""


def run_case(call: str) -> subprocess.CompletedProcess:
    body = textwrap.indent(call, "    ")
    src = PRELUDE + LOOP.replace("    CALL", body)
    env = dict(os.environ)
    env.pop("PYTHONFAULTHANDLER", None)
    return subprocess.run(
        [sys.executable, "-c", src],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


@pytest.mark.parametrize("name", sorted(CALLS))
def test_asyncio_free_list_after_gather(name):
    try:
        r = run_case(CALLS[name])
    except subprocess.TimeoutExpired:  # pragma: no cover - only on a regression
        pytest.fail(f"{name}: the process hung (dead referents were referenced)")
    assert r.returncode == 0, f"{name}: exit {r.returncode}\n{r.stdout}\n{r.stderr[-3000:]}"
    assert r.stdout.strip() == "ok 5", r.stdout


def test_dead_referents_are_not_recorded():
    """Where the bug exists (3.12.0-3.12.5 with _asyncio), the free list's objects are visited
    with reference count 0: the capture has no node for them, and the heap stays sound."""
    src = PRELUDE + textwrap.dedent(
        """
        asyncio.run(main())
        gc.collect()
        snap = refgraph.snapshot()
        # Every node of the capture is alive: a FutureIter in a snapshot can only be one that is
        # referenced (none here, after asyncio.run returned).
        stats = dict((row.name, row.count) for row in snap.typestats())
        print("FutureIter", stats.get("_asyncio.FutureIter", 0))
        print("dead", refgraph._refgraph.dead_referents())
        for _ in range(3):
            asyncio.run(main())
            refgraph.snapshot()
            gc.collect()
        print("ok")
        """
    )
    r = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = r.stdout.split()
    assert lines[-1] == "ok"
    assert lines[:2] == ["FutureIter", "0"], r.stdout
    # The case is really exercised where CPython has the bug, and absent where it does not.
    dead = int(lines[3])
    if AFFECTED:
        assert dead > 0, r.stdout
    else:
        assert dead == 0, r.stdout


# gh-122695 was fixed in 3.12.6 and 3.13.0.
AFFECTED = (3, 12, 0) <= sys.version_info[:3] < (3, 12, 6)
