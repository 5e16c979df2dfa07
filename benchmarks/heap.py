"""A realistic heap for the benchmark, built inside this module so that its globals are module
globals (a proper module in ``sys.modules``, as in a real program).

``build(n)`` makes about ``n`` gc-tracked objects: instances with a ``__dict__`` and with
``__slots__``, dicts, lists, tuples, sets, closures and their cells, bound methods, reference
cycles, instances of a class with ``__del__``, a module-level cache that leaks, and two linked
chains, 20 and 1000 links deep, hanging off module globals.
"""

from __future__ import annotations

import gc

#: The leak: a module-level cache that only grows.
CACHE: dict = {}
#: Everything else the heap holds (reachable from this module).
RECORDS: list = []
#: Heads of the deep chains.
CHAIN20 = None
CHAIN1000 = None


class Record:
    def __init__(self, i):
        self.i = i
        self.tags = [i, "tag"]
        self.meta = {"id": i}
        self.peer = None

    def describe(self):
        return self.i


class Point:
    __slots__ = ("x", "y", "owner")


class Finalized:
    def __del__(self):
        pass


class Link:
    __slots__ = ("next", "payload")


def _closure(value):
    def get():
        return value

    return get


def _chain(length):
    head = Link()
    head.payload = 0
    cur = head
    for i in range(1, length):
        nxt = Link()
        nxt.payload = i
        cur.next = nxt
        cur = nxt
    cur.next = None
    return head


def tail(head):
    """The last link of a chain."""
    while head.next is not None:
        head = head.next
    return head


# Tracked objects created per unit (see build()): Record, its __dict__, tags list, meta dict,
# tuple, Point, set, closure function, cell, bound method, cache entry list.
PER_UNIT = 11


def build(n):
    """Build about ``n`` gc-tracked objects; returns the number of units made."""
    global CHAIN20, CHAIN1000
    gc.disable()
    try:
        units = max(1, n // PER_UNIT)
        prev = None
        for i in range(units):
            r = Record(i)
            _ = r.__dict__  # materialise the instance dict (3.11+ creates it lazily)
            if prev is not None and i % 2:
                r.peer = prev  # cycles between pairs of records
                prev.peer = r
            p = Point()
            p.x, p.y, p.owner = i, -i, r
            RECORDS.append((r, p, {i, -i}, _closure(r), r.describe))
            CACHE[i] = [r]
            if i % 100 == 0:
                RECORDS.append(Finalized())
            prev = r
        CHAIN20 = _chain(20)
        CHAIN1000 = _chain(1000)
        return units
    finally:
        gc.enable()


def clear():
    global CHAIN20, CHAIN1000
    CACHE.clear()
    RECORDS.clear()
    CHAIN20 = CHAIN1000 = None
