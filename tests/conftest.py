"""Shared helpers: refgraph and objgraph (from PyPI) side by side on the same heap."""

from __future__ import annotations

import gc
import io
import tempfile

import objgraph
import pytest

import refgraph


@pytest.fixture(scope="session")
def _session_tempdir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tempfile"))


@pytest.fixture(autouse=True)
def _temporary_files_stay_with_the_tests(_session_tempdir, monkeypatch):
    """refgraph, as objgraph does, leaves the .dot file of a graph shown without a filename in
    the temporary directory for the user to open: the tests' go to pytest's own temporary
    directory (removed with its older runs) instead of piling up in /tmp."""
    monkeypatch.setattr(tempfile, "tempdir", _session_tempdir)


@pytest.fixture
def og():
    return objgraph


@pytest.fixture
def rg():
    return refgraph


def dot_of(module, func, *args, **kwargs):
    out = io.StringIO()
    getattr(module, func)(*args, output=out, **kwargs)
    return out.getvalue()


def same_dot(func, *args, **kwargs):
    """Run ``func`` with objgraph and refgraph on the same heap; return both DOT texts.

    Each is run once first: drawing reads attributes that CPython creates lazily (a function's
    ``__dict__``), so the first call may change the heap for the second. Single objects are
    wrapped in one list shared by both calls: otherwise each call's own argument tuple, a
    different object each time, would show up as a referrer."""
    args = tuple(a if isinstance(a, (list, tuple)) else [a] for a in args)
    for module in (objgraph, refgraph):
        dot_of(module, func, *args, **kwargs)
    gc.collect()
    expected = dot_of(objgraph, func, *args, **kwargs)
    got = dot_of(refgraph, func, *args, **kwargs)
    return expected, got


def rss_kb():
    """The resident set size of this process in kB, from /proc/self/status. Skips the calling
    test (explicitly, with the reason) where /proc does not exist or has no VmRSS line: an RSS
    check must not pass by reading nothing."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError as e:
        pytest.skip(f"no /proc/self/status to read the RSS from: {e}")
    pytest.skip("/proc/self/status has no VmRSS line")
