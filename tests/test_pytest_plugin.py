"""The pytest plugin (``pytest --refgraph-leaks``), run on real suites in a pytest subprocess:
deliberately leaking tests fail naming the leaked type and its holder, tests that only look
like leaks pass, failures stay the test's own."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import leak_patterns as lp
import pytest

pytest_plugins = ["pytester"]

HERE = Path(__file__).parent
SUITES = HERE / "plugin_suites"

# Leaky suite: node id -> (leaked type, holder expression part).
LEAKY = {
    f"test_leaky.py::test_typical[{name}]": (
        (lambda t: t if isinstance(t, tuple) else (t,))(lp.LEAKS[name]()[1]),
        lp.LEAKS[name]()[2],
    )
    for name in sorted(lp.LEAKS)
}
for cleanup in lp.CLEANUPS.values():
    cleanup()
LEAKY.update(
    {
        "test_leaky.py::test_session_fixture": (
            ("Entry",),
            "<session-scoped fixture 'app'>.registry",
        ),
        "test_leaky.py::test_function_fixture_leaks_to_global": (("Entry",), "test_leaky.history"),
        "test_leaky.py::test_module_global": (("Listener",), "test_leaky.seen"),
        "test_leaky.py::test_parametrized[1]": (("Entry",), "test_leaky.seen"),
        "test_leaky.py::test_parametrized[2]": (("Entry",), "test_leaky.seen"),
        "test_leaky.py::TestClassAttribute::test_class_attribute": (
            ("Entry",),
            "test_leaky.TestClassAttribute.cache",
        ),
        "test_leaky.py::CaseLeak::test_unittest": (("Entry",), "test_leaky.CaseLeak.kept"),
    }
)


def _copy(pytester, *names, **renamed):
    for name in names:
        pytester.makepyfile(**{Path(name).stem: (HERE / name).read_text()})
    for target, source in renamed.items():
        pytester.makepyfile(**{target: (SUITES / source).read_text()})


def _run(pytester, *args):
    return pytester.runpytest_subprocess("-p", "no:randomly", *args)


def _summary(result):
    """node id -> summary line of each test the plugin names as leaking."""
    out = {}
    for line in result.outlines:
        m = re.match(r"LEAK (\S+): (.*)$", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


@pytest.fixture
def leaky(pytester):
    _copy(pytester, "leak_patterns.py", "tests_lazy_module.py", test_leaky="leaky.py")
    return pytester


@pytest.fixture
def clean(pytester):
    _copy(pytester, "leak_patterns.py", "tests_lazy_module.py", test_clean="clean.py")
    return pytester


def test_entry_point_is_registered():
    from importlib.metadata import entry_points

    found = [ep for ep in entry_points(group="pytest11") if ep.name == "refgraph"]
    assert [ep.value for ep in found] == ["refgraph.pytest_plugin"]


def test_inactive_unless_asked(leaky):
    result = _run(leaky)
    result.assert_outcomes(passed=len(LEAKY))
    assert "refgraph leaks" not in result.stdout.str()


def test_every_deliberate_leak_fails_naming_type_and_holder(leaky):
    result = _run(leaky, "--refgraph-leaks", "-rN")
    result.assert_outcomes(failed=len(LEAKY))
    summary = _summary(result)
    assert set(summary) == set(LEAKY), result.stdout.str()
    text = result.stdout.str()
    for nodeid, (types, holder) in LEAKY.items():
        line = summary[nodeid]
        assert holder in line, f"{nodeid}: {line}"
        # The failure message of the test names a leaked type and the holder.
        section = text.split(f"_ {nodeid.split('::', 1)[1].replace('::', '.')} _", 1)
        assert len(section) == 2, nodeid
        body = section[1].split("\n_____", 1)[0]
        assert "refgraph: this test leaks" in body, body
        assert holder in body
        assert any(re.search(rf"\b{re.escape(t)}\b", body) for t in types), body
    assert f"{len(LEAKY)} leaking, 0 clean, 0 not checked" in text


def test_clean_tests_pass(clean):
    result = _run(clean, "--refgraph-leaks", "-rN")
    n = len(lp.CLEAN) + 10
    result.assert_outcomes(passed=n)
    assert _summary(result) == {}
    assert f"0 leaking, {n} clean, 0 not checked of {n} tests" in result.stdout.str()


def test_a_failing_test_is_its_own_failure(pytester):
    pytester.makepyfile(
        test_fails="""
        leaked = []

        def test_fails():
            leaked.append(object())
            assert 1 == 2, "its own failure"

        def test_second_call_fails():
            leaked.append([1])
            assert len(leaked) == 2, "cannot run twice"
        """
    )
    result = _run(pytester, "--refgraph-leaks")
    result.assert_outcomes(failed=1, passed=1)
    out = result.stdout.str()
    assert "its own failure" in out
    assert "this test leaks" not in out
    assert re.search(
        r"not checked test_fails.py::test_fails: the test did not pass its first call", out
    )
    assert re.search(
        r"not checked test_fails.py::test_second_call_fails: cannot be repeated: call 2 failed "
        r"\(AssertionError: cannot run twice",
        out,
    )


def test_markers_without_the_option(pytester):
    pytester.makepyfile(
        test_marked="""
        import pytest

        class Item:
            pass

        kept = []

        @pytest.mark.no_leaks(runs=3, warmup=1)
        def test_checked():
            kept.append(Item())

        def test_not_checked():
            kept.append(Item())

        @pytest.mark.no_leaks(allow=["Item"])
        def test_allowed():
            kept.append(Item())

        @pytest.mark.no_leaks
        def test_not_repeatable():
            kept.append(1)
            assert kept.count(1) == 1
        """
    )
    result = _run(pytester)
    result.assert_outcomes(failed=2, passed=2)
    out = result.stdout.str()
    assert "1 warm-up calls, then 3 quick runs and 3 measured runs of 2 calls" in out
    assert "test_marked.kept" in out
    assert "refgraph no_leaks: the test cannot be repeated: call 2 failed" in out
    assert set(_summary(result)) == {"test_marked.py::test_checked"}


def test_leaks_ok_and_ini_options(pytester):
    pytester.makeini(
        """
        [pytest]
        refgraph_leaks = true
        refgraph_leaks_runs = 3
        refgraph_leaks_warmup = 2
        """
    )
    pytester.makepyfile(
        test_ini="""
        import pytest

        kept = []

        @pytest.mark.leaks_ok
        def test_exempt():
            kept.append(object())

        def test_leaks():
            kept.append([0])
        """
    )
    result = _run(pytester)
    result.assert_outcomes(failed=1, passed=1)
    assert (
        "2 warm-up calls, then 3 quick runs and 3 measured runs of 2 calls" in result.stdout.str()
    )
    assert set(_summary(result)) == {"test_ini.py::test_leaks"}


def test_bad_option_is_a_usage_error(pytester):
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = _run(pytester, "--refgraph-leaks", "--refgraph-leaks-runs", "0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--refgraph-leaks-runs must be at least 1" in result.stderr.str()


def test_doctests_are_not_checked(pytester):
    pytester.makepyfile(
        mod='''
        kept = []

        def f():
            """
            >>> kept.append(1)
            """
        '''
    )
    result = _run(pytester, "--refgraph-leaks", "--doctest-modules")
    result.assert_outcomes(passed=1)
    assert "not checked mod.py::mod.f: a doctest" in result.stdout.str()


def test_trace_names_the_allocating_line(pytester):
    # A class with __slots__: CPython 3.11's tracemalloc finds no traceback for an instance
    # with a managed __dict__ (its memory starts before the object), 3.12 does.
    pytester.makepyfile(
        test_traced="""
        class Token:
            __slots__ = ("n",)

            def __init__(self, n):
                self.n = n

        tokens = []

        def test_leak():
            tokens.append(Token(1))
        """
    )
    result = _run(pytester, "--refgraph-leaks", "--refgraph-leaks-trace")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert re.search(r"allocated at \S*test_traced.py:10\b", out), out


def test_last_failed_reruns_only_the_leaking(pytester):
    pytester.makepyfile(
        test_lf="""
        kept = []

        def test_ok():
            pass

        def test_leak():
            kept.append(object())
        """
    )
    _run(pytester, "--refgraph-leaks").assert_outcomes(failed=1, passed=1)
    result = _run(pytester, "--refgraph-leaks", "--lf")
    result.assert_outcomes(failed=1)
    assert "rerun previous 1 failure" in result.stdout.str()
    assert set(_summary(result)) == {"test_lf.py::test_leak"}


def test_reruns(pytester):
    pytest.importorskip("pytest_rerunfailures")
    pytester.makepyfile(
        test_reruns="""
        import os

        kept = []
        flag = os.path.join(os.path.dirname(__file__), "flaky-failed-once")


        def test_leak():
            kept.append(object())


        def test_flaky_then_clean():
            # Fails the first time it is ever run, passes when rerun (and when repeated).
            if not os.path.exists(flag):
                open(flag, "w").close()
                raise AssertionError("flaky")


        def test_ok():
            pass
        """
    )
    out_json = pytester.path / "leaks.json"
    result = _run(pytester, "--refgraph-leaks", "--reruns", "1", "--refgraph-leaks-json", out_json)
    # The leak fails on its run and its rerun; the flaky test fails as itself, then its rerun
    # passes and is checked like any other.
    outcomes = result.parseoutcomes()
    assert (outcomes.get("failed"), outcomes.get("passed"), outcomes.get("rerun")) == (1, 2, 2)
    out = result.stdout.str()
    assert set(_summary(result)) == {"test_reruns.py::test_leak"}
    assert "1 leaking, 2 clean, 0 not checked of 3 tests" in out
    tests = json.loads(out_json.read_text())["tests"]
    assert {k: v["status"] for k, v in tests.items()} == {
        "test_reruns.py::test_leak": "leaks",
        "test_reruns.py::test_flaky_then_clean": "clean",
        "test_reruns.py::test_ok": "clean",
    }


def test_json_and_html_reports(leaky, tmp_path):
    out = tmp_path / "leaks.json"
    html_dir = tmp_path / "pages"
    result = _run(
        leaky,
        "--refgraph-leaks",
        "-k",
        "test_module_global or test_class_attribute",
        f"--refgraph-leaks-json={out}",
        f"--refgraph-leaks-html={html_dir}",
    )
    result.assert_outcomes(failed=2)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    data = json.loads(out.read_text())["tests"]
    entry = data["test_leaky.py::test_module_global"]
    assert entry["status"] == "leaks"
    first = entry["report"]["suspects"][0]
    assert first["holder"] == "test_leaky.seen"
    assert first["types"][0]["type"] == "test_leaky.Listener"
    assert entry["overhead_ms"] >= 0
    pages = sorted(p.name for p in html_dir.iterdir())
    assert len(pages) == 2, pages
    page = (html_dir / pages[1]).read_text()
    assert "test_leaky.seen" in page or "test_leaky.TestClassAttribute.cache" in page
    for p in html_dir.iterdir():
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o600


ASYNC = """
import asyncio

import pytest


class Thing:
    pass


kept = []


@pytest.mark.asyncio
async def test_asyncio_leak():
    await asyncio.sleep(0)
    kept.append(Thing())


@pytest.mark.asyncio
async def test_asyncio_clean():
    await asyncio.sleep(0)
    return [Thing() for _ in range(5)]


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_anyio_leak():
    import anyio

    await anyio.sleep(0)
    kept.append(Thing())


@pytest.mark.anyio
async def test_anyio_clean():
    import anyio

    await anyio.sleep(0)
"""


def test_async_tests(pytester):
    pytester.makepyfile(test_async=ASYNC)
    result = _run(pytester, "--refgraph-leaks")
    result.assert_outcomes(failed=2, passed=2)
    summary = _summary(result)
    assert set(summary) == {"test_async.py::test_asyncio_leak", "test_async.py::test_anyio_leak"}
    assert all("test_async.kept" in line and "Thing" in line for line in summary.values())


def test_xdist(leaky):
    result = _run(leaky, "--refgraph-leaks", "-n", "2")
    result.assert_outcomes(failed=len(LEAKY))
    summary = _summary(result)
    assert set(summary) == set(LEAKY)
    for nodeid, (_, holder) in LEAKY.items():
        assert holder in summary[nodeid]
