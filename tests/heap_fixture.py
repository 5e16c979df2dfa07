"""A small heap with every kind of object objgraph draws: instances with ``__dict__`` and
``__slots__``, dicts with identifier and other keys, lists, tuples, sets, cycles, a class with
``__del__``, bound methods, closures, functions with attributes, modules and frames."""

from __future__ import annotations

import sys
import types


class Node:
    def __init__(self, name):
        self.name = name
        self.children = []

    def method(self):
        return self.name


class Slotted:
    __slots__ = ("left", "right")


class Finalized(list):
    def __del__(self):
        pass


def make_closure(value):
    def inner():
        return value

    return inner


def make_frame():
    """A frame kept alive by a traceback."""
    try:
        local_list = [1, 2]  # noqa: F841
        raise ValueError("kept")
    except ValueError as e:
        return e.__traceback__.tb_frame


def gen():
    local_dict = {"in": "generator"}  # noqa: F841
    yield 1


root = Node("root")
child = Node("child")
root.children.append(child)
child.parent = root  # a cycle through __dict__s
slotted = Slotted()
slotted.left = child
slotted.right = (root, "text")
finalized = Finalized([child])
bound = child.method
closure = make_closure(child)
closure.tag = child
registry = {"child": child, 42: child, ("a", 1): [child], "not an identifier": root}
a_set = {("frozen", 1)}
module_ref = types
fake_module = types.ModuleType("not_in_sys_modules")
fake_module.child = child
frame = make_frame()
suspended = gen()
next(suspended)
quoting = {'quote"back\\slash\nnewline\x00nul': child}
this_module = sys.modules[__name__]
