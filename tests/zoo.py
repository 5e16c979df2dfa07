"""Hostile objects: each one tries to break a leak-hunting tool that touches it.

``make_zoo()`` returns ``{kind: object}``. The objects are built fresh for each call so tests can
free them and check that nothing kept them alive.
"""

from __future__ import annotations

import array
import asyncio
import gc
import types
import weakref
from unittest import mock


class Plain:
    pass


class RaisingRepr:
    def __repr__(self):
        raise RuntimeError("repr refused")


class RaisingEverything:
    """Every attribute lookup raises, even ``__class__`` and ``__dict__``."""

    def __getattribute__(self, name):
        raise RuntimeError(f"no attribute {name} for you")

    def __repr__(self):
        raise RuntimeError("no repr either")


class LyingClass:
    """Claims to be an int."""

    @property
    def __class__(self):
        return int


class RaisingEqHash:
    def __eq__(self, other):
        raise RuntimeError("eq")

    def __hash__(self):
        raise RuntimeError("hash")


class RaisingGetattr:
    def __getattr__(self, name):
        raise ValueError(name)


class NameRaisingMeta(type):
    @property
    def __name__(cls):
        raise RuntimeError("name")

    @property
    def __module__(cls):
        raise RuntimeError("module")


class WeirdName(metaclass=NameRaisingMeta):
    pass


class Slotted:
    __slots__ = ("a", "b")


RESURRECTED = []


class Resurrector:
    def __del__(self):
        RESURRECTED.append(self)


class HostileReprs:
    """Reprs that are hard to write safely in DOT, SVG and HTML."""

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return self.text


HOSTILE_TEXTS = [
    'quote " backslash \\ newline \n tab \t',
    "NUL \x00 and escape \x1b[31m",
    "</text><script>alert('x')</script>&amp;<![CDATA[",
    "lone surrogate \udcff here",
    "huge " + "x" * 10_000_000,
    "漢字 ünïcödé 🙂",
]


class Link:
    __slots__ = ("next",)


def deep_chain(n):
    head = Link()
    cur = head
    for _ in range(n - 1):
        nxt = Link()
        cur.next = nxt
        cur = nxt
    cur.next = None
    return head


def gen():
    local = [1, 2, 3]  # noqa: F841
    yield 1


async def coro():
    await asyncio.sleep(0)


def frame_with_locals():
    try:
        x = [1]  # noqa: F841
        raise KeyError("k")
    except KeyError as e:
        return e.__traceback__.tb_frame


def make_cell():
    value = Plain()

    def f():
        return value

    return f.__closure__[0]


async def _handler(n):
    await asyncio.sleep(0)
    return n


async def _gather():
    return await asyncio.gather(*(_handler(i) for i in range(5)))


def run_gather():
    """On CPython 3.12.0-3.12.5 this leaves dead ``FutureIter`` objects on ``_asyncio``'s free
    list, which its traverse function reports (gh-122695): the zoo's tests then run with dead
    referents in the heap. Only the zoo fixture calls it (never at collection time): objgraph's
    ``gc.get_referents`` hits the CPython bug once they exist (see tests/test_stats.py)."""
    asyncio.run(_gather())


def finished_future():
    """A done asyncio future."""
    loop = asyncio.new_event_loop()
    try:
        fut = loop.create_future()
        fut.set_result([1, 2])
    finally:
        loop.close()
    return fut


def make_zoo():
    target = Plain()
    zoo = {
        "raising_repr": RaisingRepr(),
        "raising_everything": RaisingEverything(),
        "lying_class": LyingClass(),
        "raising_eq_hash": RaisingEqHash(),
        "raising_getattr": RaisingGetattr(),
        "weird_name_meta": WeirdName(),
        "weird_name_class": WeirdName,
        "mock_spec": mock.Mock(spec=Plain),
        "magic_mock": mock.MagicMock(),
        "weakref_proxy": weakref.proxy(target),
        "weakref_ref": weakref.ref(target),
        "proxy_target": target,
        "resurrector": Resurrector(),
        "slotted": Slotted(),
        "managed_dict": Plain(),
        "generator": gen(),
        "frame": frame_with_locals(),
        "cell": make_cell(),
        "code": gen.__code__,
        "module": types.ModuleType("zoo_fake_module"),
        "array": array.array("i", range(100)),
        "bytearray": bytearray(b"abc"),
        "memoryview": memoryview(b"abcdef"),
        "big_int": 10**100,
        "str": "plain string",
        "deep_chain": deep_chain(1000),
        "asyncio_future": finished_future(),
    }
    g = zoo["generator"]
    next(g)
    c = coro()
    zoo["coroutine"] = c
    zoo["managed_dict"].attr = [1, 2]
    zoo["slotted"].a = zoo["managed_dict"]
    for i, t in enumerate(HOSTILE_TEXTS):
        zoo[f"hostile_repr_{i}"] = HostileReprs(t)
    return zoo


def close_zoo(zoo):
    zoo["coroutine"].close()
    zoo["generator"].close()
    RESURRECTED.clear()
    zoo.clear()
    gc.collect()
