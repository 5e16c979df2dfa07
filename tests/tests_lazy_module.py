"""Imported lazily by a leak-suspect test (tests/leak_patterns.py): a module with some state."""

TABLE = {i: [i] * 4 for i in range(50)}


class Thing:
    pass


THINGS = [Thing() for _ in range(20)]
