"""What a node and an edge of an object graph say: type names, short reprs, edge labels.

These run on the few objects a graph shows (never on the whole heap) and only call the user
code objgraph calls too (``repr`` of shown objects, ``__dict__`` lookups, ``extra_info``).
Anything that raises is shown as ``(unrepresentable)`` or left unlabelled instead of breaking the
call.
"""

from __future__ import annotations

import os
import re
import sys
import types

_is_identifier = re.compile(r"[a-zA-Z_][a-zA-Z_0-9]*$").match


def isinstance_(obj, classinfo):
    """``isinstance`` by the real type: ``mock.Mock(spec=...)`` cannot lie about it."""
    return issubclass(type(obj), classinfo)


def short_typename(obj):
    """``type(obj).__name__``."""
    try:
        name = type(obj).__name__
    except Exception:
        return "?"
    return name if isinstance(name, str) else str(name)


def long_typename(obj):
    """``module.Name`` of the object's type (the bare name when the type has no module)."""
    tp = type(obj)
    name = short_typename(obj)
    try:
        module = getattr(tp, "__module__", None)
    except Exception:
        module = None
    if module:
        return f"{module}.{name}"
    return name


def typename(obj, shortnames=True):
    return short_typename(obj) if shortnames else long_typename(obj)


def node_id(obj):
    """The DOT node id objgraph uses: ``o<id>``."""
    return ("o%d" % id(obj)).replace("-", "_")


def is_proper_module(obj):
    """
    Returns ``True`` if ``obj`` can be treated like a garbage collector root.

    That is, if ``obj`` is a module that is in ``sys.modules``.

    >>> import types
    >>> is_proper_module([])
    False
    >>> is_proper_module(types)
    True
    >>> is_proper_module(types.ModuleType('foo'))
    False
    """
    if not is_module(obj):
        return False
    try:
        name = getattr(obj, "__name__", None)
        return obj is sys.modules.get(name)
    except Exception:
        return False


def is_module(obj):
    """``inspect.ismodule``, but False when the object's ``__class__`` raises."""
    try:
        return isinstance(obj, types.ModuleType)
    except Exception:
        return False


def proper_modules():
    """All modules in ``sys.modules`` that are proper modules."""
    return [m for m in sys.modules.copy().values() if is_proper_module(m)]


def _name_or_repr(value):
    try:
        result = value.__name__
    except AttributeError:
        result = repr(value)[:40]
    if isinstance_(result, str):
        return result
    return repr(value)[:40]


def short_repr(obj):
    """A short description of an object, as objgraph writes it under the type name."""
    if isinstance_(
        obj, (type, types.ModuleType, types.BuiltinMethodType, types.BuiltinFunctionType)
    ):
        return _name_or_repr(obj)
    if isinstance_(obj, types.MethodType):
        name = _name_or_repr(obj.__func__)
        if obj.__self__:
            return name + " (bound)"
        return name
    if isinstance_(obj, types.FunctionType) and obj.__name__ == "<lambda>":
        return "lambda: %s:%s" % (
            os.path.basename(obj.__code__.co_filename),
            obj.__code__.co_firstlineno,
        )
    if isinstance_(obj, types.FrameType):
        return "%s:%s" % (obj.f_code.co_filename, obj.f_lineno)
    if isinstance_(obj, (tuple, list, dict, set)):
        return "%d items" % len(obj)
    return repr(obj)[:40]


def safe_repr(obj):
    """:func:`short_repr`, or ``(unrepresentable)`` when the object's code raises."""
    try:
        return short_repr(obj)
    except Exception:
        return "(unrepresentable)"


def text(s):
    """``s`` as text that can be encoded: lone surrogates (which no file or picture can hold)
    are written as ``\\udcff`` escapes."""
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return s.encode("utf-8", "backslashreplace").decode("utf-8")


def node_label(obj, extra_info=None, refcount=None, shortnames=True):
    """The text of a node: type name (with ``[refcount]``), short repr, extra info."""
    first = typename(obj, shortnames)
    if refcount is not None:
        first += " [%d]" % refcount
    label = [first, safe_repr(obj)]
    if extra_info:
        label.append(str(extra_info(obj)))
    return text("\n".join(label))


def has_del(obj):
    """Whether the object's class defines ``__del__`` (drawn with a red marker)."""
    try:
        return hasattr(getattr(obj, "__class__", None), "__del__")
    except Exception:
        return False


def _attr(obj, name):
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


def edge_label(source, target, shortnames=True):
    """``(text, weight)`` of the edge ``source -> target``, or None: the attribute or dict key
    through which ``source`` refers to ``target``."""
    if isinstance_(target, dict) and target is _attr(source, "__dict__"):
        return ("__dict__", 10)
    if isinstance_(source, types.FrameType):
        if target is _attr(source, "f_locals"):
            return ("f_locals", 10)
        if target is _attr(source, "f_globals"):
            return ("f_globals", 10)
    if isinstance_(source, types.MethodType):
        if target is _attr(source, "__self__"):
            return ("__self__", 10)
        if target is _attr(source, "__func__"):
            return ("__func__", 10)
    if isinstance_(source, types.FunctionType):
        try:
            names = dir(source)
        except Exception:
            names = []
        for k in names:
            if target is _attr(source, k):
                return (text(str(k)), 10)
    if isinstance_(source, dict):
        try:
            items = list(source.items())
        except Exception:
            items = []
        for k, v in items:
            if v is target:
                if isinstance_(k, str) and _is_identifier(k):
                    return (str(k), 2)
                return (text(typename(k, shortnames) + "\n" + safe_repr(k)), None)
    return None
