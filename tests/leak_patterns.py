"""Workloads for the leak-suspect tests: typical leaks and work that only looks like one.

Each ``leak_*`` function sets up fresh state and returns ``(workload, leaked type, holder)``:
``find_leaks(workload)`` must name that type (the end of the first suspect's path) and a holder
whose expression contains ``holder``. Each ``clean_*`` function returns a workload that must
give an empty report. State lives in this module's globals, as in a program.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import gc
import importlib
import linecache
import logging
import re
import sys
import threading
import weakref
from collections import deque

# --------------------------------------------------------------------------- leaked types


class Session:
    def __init__(self, n):
        self.n = n
        self.payload = [n] * 8

    def on_event(self, event):
        return event


class Request:
    def __init__(self, n):
        self.n = n
        self.headers = {"id": n}


class Record:
    __slots__ = ("n", "data")

    def __init__(self, n):
        self.n = n
        self.data = bytearray(64)


class Resource:
    def __init__(self, n):
        self.n = n
        self.buffer = bytearray(128)

    def close(self):
        self.buffer = None


class Value:
    def __init__(self, n):
        self.n = n


class Blob:
    def __init__(self, n):
        self.n = n
        self.data = bytearray(256)


class Zombie:
    def __init__(self, n):
        self.n = n

    def __del__(self):
        graveyard.append(self)


class LeakError(Exception):
    pass


class EventBus:
    def __init__(self):
        self._listeners = []

    def subscribe(self, listener):
        self._listeners.append(listener)


class Pricer:
    def __init__(self, n):
        self.n = n

    @functools.lru_cache  # noqa: B019 - the classic leak: the cache keeps every self
    def price(self, x):
        return x * 2


class Handler:
    seen = []  # noqa: RUF012 - the mutable class attribute is the leak under test

    def handle(self, n):
        self.seen.append(Request(n))


class Registry:
    def __init__(self):
        self.entries = []


# --------------------------------------------------------------------------- state

bus = None
last_request = None
errors = []
tasks = set()
loop = None
local = threading.local()
graveyard = []
trie = {}
side = []
cache = None
counts = {}
every_other = []
_n = 0


def _next():
    global _n
    _n += 1
    return _n


# --------------------------------------------------------------------------- leaks


def leak_event_bus():
    global bus

    bus = EventBus()

    def handle_request():
        s = Session(_next())
        bus.subscribe(s.on_event)

    return handle_request, "Session", "leak_patterns.bus._listeners"


def leak_event_bus_decoy():
    """The event bus, plus a global that keeps only the newest session."""
    global bus

    bus = EventBus()

    def handle_request():
        global last_request
        s = Session(_next())
        bus.subscribe(s.on_event)
        last_request = s

    return handle_request, "Session", "leak_patterns.bus._listeners"


def leak_lru_cache_method():
    Pricer.price.cache_clear()

    def work():
        Pricer(_next()).price(3)

    return work, "Pricer", "leak_patterns.Pricer.price"


def leak_loggers_per_request():
    def work():
        logging.getLogger(f"refgraph_test.request.{_next()}")

    return work, "Logger", ".manager.loggerDict"


def cleanup_loggers():
    d = logging.Logger.manager.loggerDict
    for k in [k for k in d if k.startswith("refgraph_test.")]:
        del d[k]


def leak_stored_exceptions():
    errors.clear()

    def fail(n):
        raise LeakError(f"request {n} failed")

    def work():
        try:
            fail(_next())
        except LeakError as e:
            errors.append(e)

    return work, "LeakError", "leak_patterns.errors"


def leak_asyncio_tasks():
    global loop
    if loop is None:
        loop = asyncio.new_event_loop()
    tasks.clear()

    async def job(n):
        return Request(n)

    async def spawn():
        t = loop.create_task(job(_next()))
        tasks.add(t)
        await t

    def work():
        loop.run_until_complete(spawn())

    # The tasks keep their results: the program's Request is named, Task is in the types.
    return work, "Request", "leak_patterns.tasks"


def leak_thread_local():
    def work():
        items = getattr(local, "items", None)
        if items is None:
            items = local.items = []
        items.append(Request(_next()))

    return work, "Request", "['items']"


def leak_finalizer():
    owner = Registry()
    keep.append(owner)

    def work():
        r = Resource(_next())
        weakref.finalize(owner, r.close)

    return work, "Resource", "weakref.finalize._registry"


keep = []


def leak_atexit():
    """Bound methods registered with atexit: held by the interpreter, outside the heap."""

    def work():
        r = Resource(_next())
        atexit.register(r.close)
        registered.add(r)

    return work, "Resource", "<no object of the heap"


registered = weakref.WeakSet()


def cleanup_atexit():
    for r in list(registered):
        atexit.unregister(r.close)


def leak_class_attribute():
    Handler.seen.clear()
    h = Handler()

    def work():
        h.handle(_next())

    return work, "Request", "leak_patterns.Handler.seen"


def leak_unbounded_dict():
    counts.clear()

    def work():
        n = _next()
        counts[f"user-{n}"] = n * 1000003

    return work, ("str", "int"), "leak_patterns.counts"


def leak_del_resurrection():
    graveyard.clear()

    def work():
        Zombie(_next())

    return work, "Zombie", "leak_patterns.graveyard"


def leak_deep_trie():
    trie.clear()

    def work():
        n = _next()
        node = trie
        for ch in f"{n:030d}"[::-1]:
            node = node.setdefault(ch, {})
        node["$"] = Value(n)

    return work, "Value", "leak_patterns.trie"


def leak_weak_value_dict():
    global cache
    cache = weakref.WeakValueDictionary()
    side.clear()

    def work():
        n = _next()
        b = Blob(n)
        cache[n] = b
        side.append(b)

    return work, "Blob", "leak_patterns.side"


def leak_module_singleton():
    sys.modules["refgraph_test_registry"] = Registry()

    def work():
        sys.modules["refgraph_test_registry"].entries.append(Record(_next()))

    return work, "Record", "sys.modules['refgraph_test_registry'].entries"


def cleanup_module_singleton():
    sys.modules.pop("refgraph_test_registry", None)


def leak_every_other_call():
    every_other.clear()

    def work():
        n = _next()
        if n % 2:
            every_other.append(Request(n))

    return work, "Request", "leak_patterns.every_other"


LEAKS = {
    "event_bus": leak_event_bus,
    "event_bus_decoy": leak_event_bus_decoy,
    "lru_cache_method": leak_lru_cache_method,
    "loggers_per_request": leak_loggers_per_request,
    "stored_exceptions": leak_stored_exceptions,
    "asyncio_tasks": leak_asyncio_tasks,
    "thread_local": leak_thread_local,
    "finalizer": leak_finalizer,
    "atexit": leak_atexit,
    "class_attribute": leak_class_attribute,
    "unbounded_dict": leak_unbounded_dict,
    "del_resurrection": leak_del_resurrection,
    "deep_trie": leak_deep_trie,
    "weak_value_dict": leak_weak_value_dict,
    "module_singleton": leak_module_singleton,
    "every_other_call": leak_every_other_call,
}

CLEANUPS = {
    "loggers_per_request": cleanup_loggers,
    "atexit": cleanup_atexit,
    "module_singleton": cleanup_module_singleton,
}


# --------------------------------------------------------------------------- not leaks

warm = {}


def clean_warm_cache():
    warm.clear()

    def work():
        for k in range(20):
            if k not in warm:
                warm[k] = Value(k)
        return sum(v.n for v in warm.values())

    return work


def clean_bounded_lru_cache():
    @functools.lru_cache(maxsize=4)
    def lookup(n):
        return Value(n)

    def work():
        lookup(_next())

    return work


def clean_re_cache():
    patterns = [f"item-(\\d+)-{i}" for i in range(10)]

    def work():
        for p in patterns:
            re.match(p, "item-42-3")

    return work


def clean_fixed_loggers():
    def work():
        for name in ("refgraph_fixed.a", "refgraph_fixed.b", "refgraph_fixed.c"):
            logging.getLogger(name).debug("hello %s", name)

    return work


def clean_lazy_import():
    sys.modules.pop("tests_lazy_module", None)
    calls = [0]

    def work():
        calls[0] += 1
        if calls[0] == 6:  # the second measured run
            importlib.import_module("tests_lazy_module")

    return work


def clean_interned_strings():
    def work():
        for i in range(10):
            sys.intern(f"refgraph_name_{i}")
            getattr(Value(i), f"n{''}")

    return work


def clean_linecache():
    def work():
        for i in range(1, 30):
            linecache.getline(__file__, i)

    return work


buffer = []


def clean_grow_then_shrink():
    buffer.clear()

    def work():
        buffer.append(Request(_next()))
        if len(buffer) >= 3:
            buffer.clear()
        scratch = [Value(i) for i in range(200)]
        del scratch

    return work


def clean_workload():
    def work():
        return sum(Session(i).n for i in range(50))

    return work


history = deque(maxlen=3)


def clean_bounded_deque():
    history.clear()

    def work():
        history.append(Request(_next()))

    return work


def clean_replaced_values():
    slots = {}

    def work():
        n = _next()
        slots[n % 4] = Value(n)

    return work


def clean_gc_cycles():
    def work():
        a = Value(1)
        b = Value(2)
        a.other, b.other = b, a
        gc.collect()

    return work


def clean_class_per_call():
    """A class defined on every call and dropped: while the rounds run, the base class's table
    of subclasses keeps growing with entries of dead classes until a collection (jinja2's and
    many test suites' pattern); the final snapshot, after collecting, has them gone."""

    def work():
        class Local:
            def __init__(self, n):
                self.n = n

        return Local(1).n

    return work


CLEAN = {
    "class_per_call": clean_class_per_call,
    "warm_cache": clean_warm_cache,
    "bounded_lru_cache": clean_bounded_lru_cache,
    "re_cache": clean_re_cache,
    "fixed_loggers": clean_fixed_loggers,
    "lazy_import": clean_lazy_import,
    "interned_strings": clean_interned_strings,
    "linecache": clean_linecache,
    "grow_then_shrink": clean_grow_then_shrink,
    "clean": clean_workload,
    "bounded_deque": clean_bounded_deque,
    "replaced_values": clean_replaced_values,
    "gc_cycles": clean_gc_cycles,
}
