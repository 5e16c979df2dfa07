"""pytest plugin: fail the test that leaks, and say what it leaks and who holds it.

Registered by the ``pytest11`` entry point ``refgraph``; it does nothing unless asked:

- ``pytest --refgraph-leaks`` (or ``refgraph_leaks = true`` in the ini file) checks every test;
- ``@pytest.mark.no_leaks(runs=5, warmup=3, allow=["module.Type"])`` checks one test (and
  relaxes or tightens it when the option is on);
- ``@pytest.mark.leaks_ok`` exempts one test.

A checked test's call phase runs the test function ``warmup`` times, then ``runs`` rounds of
two calls, with its fixtures set up once, and :func:`refgraph.find_leaks` decides (when those
rounds show growth, ``runs`` more rounds of two calls are measured in full). A test that
fails on its first call is reported as its own failure, untouched; a test that passes once and
fails when called again cannot be repeated: it passes and its check is reported as not done.

What a function-scoped fixture holds lives for one test: the repeated calls share its value
(a ``monkeypatch``, a ``caplog``, your own ``bus`` fixture), and growth held only through it,
or through pytest's own objects (log capture, recorded warnings), is released at teardown and
is not reported. Growth held by a module- or session-scoped fixture, a module global, a class
attribute or anything else that outlives the test is a leak.
"""

from __future__ import annotations

import json
import os
import re
import time

import pytest

__all__ = ["LeakCheck"]

_RUNS = 5
_WARMUP = 3
_CALLS_PER_RUN = 2

_PYTEST_MODULES = ("_pytest.", "pytest.", "pluggy.", "pytest_asyncio.", "xdist.", "execnet.")


def pytest_addoption(parser):
    group = parser.getgroup("refgraph", "refgraph: find the test that leaks")
    group.addoption(
        "--refgraph-leaks",
        action="store_true",
        default=None,
        help="check every test for leaks: repeat its call and fail it when objects accumulate",
    )
    group.addoption(
        "--refgraph-leaks-runs",
        type=int,
        default=None,
        metavar="N",
        help=f"measured rounds of {_CALLS_PER_RUN} calls per test (default {_RUNS})",
    )
    group.addoption(
        "--refgraph-leaks-warmup",
        type=int,
        default=None,
        metavar="N",
        help=f"calls before measuring (default {_WARMUP})",
    )
    group.addoption(
        "--refgraph-leaks-trace",
        action="store_true",
        default=None,
        help="trace allocations during the rounds: name the file:line that allocated the leak",
    )
    group.addoption(
        "--refgraph-leaks-json",
        default=None,
        metavar="FILE",
        help="write every checked test's leak report to FILE (JSON)",
    )
    group.addoption(
        "--refgraph-leaks-html",
        default=None,
        metavar="DIR",
        help="write one HTML page per leaking test into DIR",
    )
    parser.addini("refgraph_leaks", "check every test for leaks", type="bool", default=False)
    parser.addini("refgraph_leaks_runs", f"measured rounds per test (default {_RUNS})")
    parser.addini("refgraph_leaks_warmup", f"calls before measuring (default {_WARMUP})")
    parser.addini(
        "refgraph_leaks_trace", "trace allocations of the leaks", type="bool", default=False
    )
    parser.addini(
        "refgraph_leaks_allow",
        "leaked type names never reported (module.QualName or QualName), one a line",
        type="linelist",
        default=[],
    )


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "no_leaks(runs=5, warmup=3, allow=()): check this test for leaks with refgraph "
        "(its call is repeated with its fixtures set up once)",
    )
    config.addinivalue_line("markers", "leaks_ok: never check this test for leaks")
    config.pluginmanager.register(LeakCheck(config), "refgraph-leak-check")


def _int_setting(config, option, ini, default, low):
    value = config.getoption(option)
    source = f"--{option.replace('_', '-')}"
    if value is None:
        raw = config.getini(ini)
        source = ini
        if raw in (None, "", []):
            return default
        try:
            value = int(str(raw).strip())
        except ValueError:
            raise pytest.UsageError(f"{ini} must be an integer, not {raw!r}") from None
    if value < low:
        raise pytest.UsageError(f"{source} must be at least {low}, not {value}")
    return value


class _Settings:
    __slots__ = ("runs", "warmup", "allow", "explicit")

    def __init__(self, runs, warmup, allow, explicit):
        self.runs = runs
        self.warmup = warmup
        self.allow = allow
        self.explicit = explicit


_FIRST = "the test did not pass its first call (its own outcome is reported)"


class _NotRepeatable(Exception):
    pass


def _type_matches(name, allowed):
    for a in allowed:
        if name == a or name.rsplit(".", 1)[-1] == a or name.endswith("." + a):
            return True
    return False


def _scope_name(fixturedef):
    scope = getattr(fixturedef, "scope", "function")
    return getattr(scope, "value", scope)


def _fixture_values(item):
    """id of each fixture value the test sees -> (name, scope)."""
    out = {}
    info = getattr(item, "_fixtureinfo", None)
    defs = getattr(info, "name2fixturedefs", {}) if info is not None else {}
    for name, value in getattr(item, "funcargs", {}).items():
        fixturedefs = defs.get(name)
        scope = _scope_name(fixturedefs[-1]) if fixturedefs else "function"
        out[id(value)] = (name, scope)
    request = getattr(item, "_request", None)
    if request is not None:
        out.setdefault(id(request), ("request", "function"))
    return out


def _expression(base, steps):
    """``base`` followed by the edges of ``steps`` as a Python expression, or None when an edge
    is not one (a set member, an unnamed reference)."""
    out = base
    edges = [st.edge for st in steps]
    i = 0
    while i < len(edges):
        e = edges[i]
        if e is None:
            return None
        nxt = edges[i + 1] if i + 1 < len(edges) else None
        m = re.fullmatch(r"\['([A-Za-z_][A-Za-z0-9_]*)'\]", nxt or "")
        if e == ".__dict__" and m:
            out += "." + m.group(1)
            i += 2
            continue
        if not e.startswith((".", "[")):
            return None
        out += e
        i += 1
    return out


def _grew_with_garbage(suspect, h):
    """A reason when the suspect is an old container that retains no new object and whose
    length, counted again at the final snapshot (after a collection), is back at or below its
    length before the rounds: its growth was entries for cyclic garbage (``object``'s table
    of subclasses gains one per class a test defines, until the collector frees the class).
    The rounds measure lengths without collecting."""
    if suspect.new_objects or suspect.lengths is None or not suspect.path:
        return None
    m = re.fullmatch(r"(\d+) items", suspect.path[h].label or "")
    if m is None or int(m.group(1)) > suspect.lengths[0]:
        return None
    return (
        f"its length grew with garbage: {suspect.lengths[0]} -> {suspect.lengths[1]} during the "
        f"rounds, {m.group(1)} after collection, no new object retained"
    )


def _classify(suspect, fixtures):
    """``(reason, holder)``: why the suspect's growth dies with the test (None when it outlives
    it), and the holder as the report should name it.

    From the holder towards the root: a function-scoped fixture value or one of pytest's own
    objects (the item, a fixture request, a capture) keeps it for the test only; a
    longer-scoped fixture value keeps it for the module or the session, and names it.
    """
    h = suspect.holder_step if suspect.holder_step is not None else len(suspect.path) - 1
    garbage = _grew_with_garbage(suspect, h)
    if garbage is not None:
        return garbage, suspect.holder
    for k in range(min(h, len(suspect.path) - 1), -1, -1):
        step = suspect.path[k]
        found = fixtures.get(step.address)
        if found is not None:
            name, scope = found
            if scope == "function":
                why = f"held by the function-scoped fixture {name!r}, released at teardown"
                return why, suspect.holder
            expr = _expression(f"<{scope}-scoped fixture {name!r}>", suspect.path[k:h])
            return None, expr or suspect.holder
        if step.type.startswith(_PYTEST_MODULES):
            return f"held by pytest's {step.type} for this test", suspect.holder
    if suspect.holder.startswith("warnings._showwarnmsg_impl"):
        return "warnings recorded by pytest for this test", suspect.holder
    return None, suspect.holder


def _reset_log_capture():
    """Empty pytest's log capture handlers (the report's, caplog's) before a repeated call:
    they keep the records of one call, as a test run once would, not of every call."""
    import logging

    for handler in list(logging.getLogger().handlers):
        if type(handler).__module__ == "_pytest.logging" and getattr(handler, "records", None):
            handler.reset()


def _one_line(suspect):
    lead = suspect.types[0] if suspect.types else None
    per = f"{lead.per_run:g} {lead.type}" if lead else f"{suspect.new_objects} objects"
    line = (
        f"+{per} per run, {suspect.bytes_per_run:,} B per run, held by {suspect.holder} "
        f"({suspect.share:.0%})"
    )
    if suspect.allocated_at:
        f, n = suspect.allocated_at[0]
        line += f", allocated at {f}:{n}"
    return line


def _safe_name(nodeid):
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("._")[:150]
    return name or "test"


class LeakCheck:
    """The plugin's state for one session: settings, and what each checked test gave."""

    def __init__(self, config):
        self.config = config
        self.enabled = bool(config.getoption("refgraph_leaks") or config.getini("refgraph_leaks"))
        self.runs = _int_setting(config, "refgraph_leaks_runs", "refgraph_leaks_runs", _RUNS, 1)
        if self.runs > 64:
            raise pytest.UsageError("--refgraph-leaks-runs must be at most 64")
        self.warmup = _int_setting(
            config, "refgraph_leaks_warmup", "refgraph_leaks_warmup", _WARMUP, 0
        )
        self.trace = bool(
            config.getoption("refgraph_leaks_trace") or config.getini("refgraph_leaks_trace")
        )
        self.allow = list(config.getini("refgraph_leaks_allow"))
        self.json_path = config.getoption("refgraph_leaks_json")
        self.html_dir = config.getoption("refgraph_leaks_html")
        self.results = {}  # nodeid -> result dict (from the reports, also under xdist)
        self._pending = {}  # nodeid -> result dict of the call in progress (this process)

    # ----------------------------------------------------------------- which tests

    def _settings(self, item):
        if item.get_closest_marker("leaks_ok") is not None:
            return None
        marker = item.get_closest_marker("no_leaks")
        if marker is None and not self.enabled:
            return None
        kwargs = dict(marker.kwargs) if marker is not None else {}
        if marker is not None and marker.args:
            raise pytest.UsageError(
                f"{item.nodeid}: no_leaks takes keywords only (runs=, warmup=, allow=)"
            )
        unknown = set(kwargs) - {"runs", "warmup", "allow"}
        if unknown:
            raise pytest.UsageError(f"{item.nodeid}: no_leaks got unknown {sorted(unknown)}")
        allow = kwargs.get("allow", ())
        if isinstance(allow, str):
            allow = [allow]
        return _Settings(
            kwargs.get("runs", self.runs),
            kwargs.get("warmup", self.warmup),
            list(self.allow) + [str(a) for a in allow],
            marker is not None,
        )

    @staticmethod
    def _not_repeatable_reason(item):
        if not isinstance(item, pytest.Function):
            kind = type(item).__name__
            if "doctest" in type(item).__module__.lower() or kind == "DoctestItem":
                return "a doctest: its examples run once in one namespace"
            return f"a {kind}, not a Python test function"
        return None

    # ----------------------------------------------------------------- the call phase

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_call(self, item):
        settings = self._settings(item)
        if settings is None:
            return (yield)
        reason = self._not_repeatable_reason(item)
        if reason is not None:
            self._pending[item.nodeid] = {"status": "not checked", "reason": reason}
            return (yield)
        had_own = "runtest" in item.__dict__
        original = item.runtest

        def checked_runtest():
            self._check(item, original, settings)

        item.runtest = checked_runtest
        try:
            return (yield)
        finally:
            if had_own:
                item.runtest = original
            else:
                del item.runtest

    def _check(self, item, original, settings):
        from .leaks import find_leaks

        errors = item.__dict__.get("_excinfo")  # unittest records outcomes there
        state = {"calls": 0, "in_test": 0.0}

        def errors_now():
            e = item.__dict__.get("_excinfo")
            return len(e) if e else 0

        def workload():
            state["calls"] += 1
            if state["calls"] > 1:
                _reset_log_capture()
            before = errors_now()
            t0 = time.perf_counter()
            try:
                original()
            except BaseException as e:
                state["raised"] = e
                raise
            finally:
                state["in_test"] += time.perf_counter() - t0
            if errors_now() != before:
                state["raised"] = _NotRepeatable("unittest outcome")
                raise state["raised"]

        # The first call is the test itself: its failure, skip or xfail is its own outcome.
        t_start = time.perf_counter()
        try:
            workload()
        except _NotRepeatable:  # unittest recorded the outcome: pytest reports it
            self._pending[item.nodeid] = {"status": "not checked", "reason": _FIRST}
            return
        except BaseException:
            self._pending[item.nodeid] = {"status": "not checked", "reason": _FIRST}
            raise
        n_errors = errors_now()
        try:
            report = find_leaks(
                workload,
                runs=settings.runs,
                warmup=max(settings.warmup - 1, 0),
                calls_per_run=_CALLS_PER_RUN,
                trace=self.trace,
            )
        except (KeyboardInterrupt, SystemExit, pytest.exit.Exception):
            raise
        except BaseException as e:  # noqa: BLE001 - any outcome of a repeated call
            if errors is None and "_excinfo" in item.__dict__ and n_errors == 0:
                del item.__dict__["_excinfo"]
            elif item.__dict__.get("_excinfo"):
                del item.__dict__["_excinfo"][n_errors:]
            what = (
                "unittest reported a failure"
                if isinstance(e, _NotRepeatable)
                else (
                    f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".rstrip(": ")
                )
            )
            if state.get("raised") is e:
                reason = (
                    f"cannot be repeated: call {state['calls']} failed ({what}) after the first "
                    "passed, with its fixtures set up once"
                )
            else:  # not the test's: the search itself failed
                tb = e.__traceback__
                while tb is not None and tb.tb_next is not None:
                    tb = tb.tb_next
                where = (
                    f" at {os.path.basename(tb.tb_frame.f_code.co_filename)}:{tb.tb_lineno}"
                    if tb is not None
                    else ""
                )
                reason = f"refgraph's search failed after {state['calls']} calls ({what}{where})"
                del tb
            self._pending[item.nodeid] = {"status": "not checked", "reason": reason}
            if settings.explicit:
                pytest.fail(f"refgraph no_leaks: the test {reason}", pytrace=False)
            return
        total = time.perf_counter() - t_start
        fixtures = _fixture_values(item)
        leaking, ignored = [], []
        for s in report.suspects:
            lead = s.types[0].type if s.types else s.path[-1].type if s.path else ""
            if settings.allow and _type_matches(lead, settings.allow):
                ignored.append({"holder": s.holder, "type": lead, "reason": "allowed"})
                continue
            why, holder = _classify(s, fixtures)
            if why is not None:
                ignored.append({"holder": s.holder, "type": lead, "reason": why})
                continue
            leaking.append(s._replace(holder=holder) if holder != s.holder else s)
        report.suspects[:] = leaking
        self._pending[item.nodeid] = {
            "status": "leaks" if leaking else "clean",
            "reason": None,
            "calls": state["calls"],
            "overhead_ms": round((total - state["in_test"]) * 1000, 1),
            "report": report.to_json(),
            "ignored": ignored,
            "summary": [_one_line(s) for s in leaking],
        }
        if leaking:
            head = (
                f"refgraph: this test leaks. {settings.warmup} warm-up calls, then "
                f"{settings.runs} quick runs and {settings.runs} measured runs of "
                f"{_CALLS_PER_RUN} calls, fixtures set up once"
            )
            pytest.fail(f"{head}\n{report}", pytrace=False)

    # ----------------------------------------------------------------- reports

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        rep = yield
        if call.when == "call":
            result = self._pending.pop(item.nodeid, None)
            if result is not None:
                rep.refgraph_leaks = result
        return rep

    def pytest_runtest_logreport(self, report):
        result = getattr(report, "refgraph_leaks", None)
        if result is not None and report.when == "call":
            self.results[report.nodeid] = result

    def pytest_terminal_summary(self, terminalreporter):
        if not self.results:
            return
        leaking = {k: v for k, v in self.results.items() if v["status"] == "leaks"}
        skipped = {k: v for k, v in self.results.items() if v["status"] == "not checked"}
        clean = sum(1 for v in self.results.values() if v["status"] == "clean")
        tr = terminalreporter
        tr.write_sep("=", "refgraph leaks")
        for nodeid, v in leaking.items():
            for line in v["summary"][:1]:
                tr.write_line(f"LEAK {nodeid}: {line}", red=True)
        for nodeid, v in list(skipped.items())[:20]:
            tr.write_line(f"not checked {nodeid}: {v['reason']}")
        if len(skipped) > 20:
            tr.write_line(f"... {len(skipped) - 20} more not checked (see --refgraph-leaks-json)")
        tr.write_line(
            f"{len(leaking)} leaking, {clean} clean, {len(skipped)} not checked "
            f"of {len(self.results)} tests"
        )
        for path in self._written:
            tr.write_line(f"wrote {path}")

    _written = ()

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session):
        if hasattr(self.config, "workerinput"):  # an xdist worker: the controller writes
            return
        written = []
        if self.json_path:
            from ._files import write_private

            data = {"tests": self.results}
            write_private(self.json_path, json.dumps(data, indent=1).encode())
            written.append(self.json_path)
        if self.html_dir:
            leaking = {k: v for k, v in self.results.items() if v["status"] == "leaks"}
            if leaking:
                from .report import suspects_page, write_page

                os.makedirs(self.html_dir, exist_ok=True)
                for nodeid, v in leaking.items():
                    path = os.path.join(self.html_dir, _safe_name(nodeid) + ".html")
                    write_page(path, suspects_page(v["report"], source={"test": nodeid}))
                    written.append(path)
        self._written = written
