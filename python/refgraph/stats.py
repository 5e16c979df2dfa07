"""Object counts by type, growth between calls, new and leaking objects.

Same names, signatures, defaults and printed formats as objgraph; the counting runs in Rust over
one ``gc.get_objects()`` list.
"""

from __future__ import annotations

import collections
import gc
import operator
import sys

from . import _refgraph

__all__ = [
    "at",
    "at_addrs",
    "by_type",
    "count",
    "get_leaking_objects",
    "get_new_ids",
    "growth",
    "most_common_types",
    "show_growth",
    "show_most_common_types",
    "typestats",
]


def _typename_arg(typename, func):
    if not isinstance(typename, str):
        raise TypeError(
            f"{func}() typename must be a str such as 'dict' or 'mymodule.MyClass', "
            f"not {type(typename).__name__}"
        )
    return typename


def _as_list(objects):
    """``objects`` as a list, or None for the whole heap (which the extension walks itself,
    without building ``gc.get_objects()`` when it can)."""
    if objects is None:
        return None
    if type(objects) is list:
        return objects
    try:
        return list(objects)
    except TypeError:
        raise TypeError(
            f"objects must be an iterable of objects, not {type(objects).__name__}"
        ) from None


def _filter_arg(filter):
    if filter is not None and not callable(filter):
        raise TypeError(f"filter must be a callable or None, not {type(filter).__name__}")
    return filter


def count(typename, objects=None):
    """Count objects tracked by the garbage collector with a given class name.

    The class name can optionally be fully qualified.

    Example:

        >>> count('dict')  # doctest: +SKIP
        42
        >>> count('mymodule.MyClass')  # doctest: +SKIP
        2
        >>> count('dict', [{}, {}, []])
        2

    .. note::

        The Python garbage collector does not track simple
        objects like int or str.  See
        https://docs.python.org/3/library/gc.html#gc.is_tracked
        for more information.

    Instead of looking through all objects tracked by the GC, you may
    specify your own collection, e.g.

        >>> count('MyClass', get_leaking_objects())  # doctest: +SKIP
        3

    An unknown type name counts 0. See also: :func:`get_leaking_objects`.

    Unlike objgraph, a ``typename`` that is not a ``str`` or ``objects`` that
    is not a collection raises a ``TypeError`` up front:

        >>> count(42)
        Traceback (most recent call last):
        ...
        TypeError: ...
    """
    _typename_arg(typename, "count")
    return _refgraph.count(_as_list(objects), typename)


def typestats(objects=None, shortnames=True, filter=None):
    """Count the number of instances for each type tracked by the GC.

    Note that the GC does not track simple objects like int or str.

    Note that classes with the same name but defined in different modules
    will be lumped together if ``shortnames`` is True.

    If ``filter`` is specified, it should be a function taking one argument and
    returning a boolean. Objects for which ``filter(obj)`` returns ``False``
    will be ignored.

    Example:

        >>> typestats()  # doctest: +SKIP
        {'list': 12041, 'tuple': 10245, ...}
        >>> typestats(get_leaking_objects())  # doctest: +SKIP
        {'MemoryError': 1, 'tuple': 2795, 'RuntimeError': 1, 'list': 47, ...}
        >>> typestats([[], [], {}])
        {'list': 2, 'dict': 1}
    """
    _filter_arg(filter)
    return dict(_refgraph.typestats(_as_list(objects), bool(shortnames), filter))


def most_common_types(limit=10, objects=None, shortnames=True, filter=None):
    """Count the names of types with the most instances.

    Returns a list of (type_name, count), sorted most-frequent-first.

    Limits the return value to at most ``limit`` items.  You may set ``limit``
    to None to avoid that.

    If ``filter`` is specified, it should be a function taking one argument and
    returning a boolean. Objects for which ``filter(obj)`` returns ``False``
    will be ignored.

    The caveats documented in :func:`typestats` apply.

    Example:

        >>> most_common_types(limit=2)  # doctest: +SKIP
        [('list', 12041), ('tuple', 10245)]
        >>> most_common_types(limit=1, objects=[[], {}, []])
        [('list', 2)]
    """
    stats = sorted(
        typestats(objects, shortnames=shortnames, filter=filter).items(),
        key=operator.itemgetter(1),
        reverse=True,
    )
    if limit:
        stats = stats[:limit]
    return stats


def show_most_common_types(limit=10, objects=None, shortnames=True, file=None, filter=None):
    """Print the table of types of most common instances.

    If ``filter`` is specified, it should be a function taking one argument and
    returning a boolean. Objects for which ``filter(obj)`` returns ``False``
    will be ignored.

    The caveats documented in :func:`typestats` apply.

    Example:

        >>> show_most_common_types(limit=5)  # doctest: +SKIP
        tuple                      8959
        function                   2442
        wrapper_descriptor         1048
        dict                       953
        builtin_function_or_method 800

        >>> show_most_common_types(objects=[[], {}, []])
        list 2
        dict 1

    With no objects at all, nothing is printed (objgraph raises
    ``ValueError``).
    """
    if file is None:
        file = sys.stdout
    stats = most_common_types(limit, objects, shortnames=shortnames, filter=filter)
    if not stats:
        return
    width = max(len(name) for name, _ in stats)
    for name, n in stats:
        file.write("%-*s %i\n" % (width, name, n))


_GROWTH_PEAKS: dict = {}


def growth(limit=10, peak_stats=_GROWTH_PEAKS, shortnames=True, filter=None):
    """Count the increase in peak object since last call.

    Returns a list of (type_name, total_count, increase_delta),
    descending order by increase_delta.

    Limits the output to ``limit`` largest deltas.  You may set ``limit`` to
    None to see all of them.

    Uses and updates ``peak_stats``, a dictionary from type names to previously
    seen peak object counts.  Usually you don't need to pay attention to this
    argument.

    If ``filter`` is specified, it should be a function taking one argument and
    returning a boolean. Objects for which ``filter(obj)`` returns ``False``
    will be ignored.

    The caveats documented in :func:`typestats` apply.

    Example:

        >>> growth(2)  # doctest: +SKIP
        [(tuple, 12282, 10), (dict, 1922, 7)]
    """
    if peak_stats is None:
        peak_stats = _GROWTH_PEAKS
    gc.collect()
    stats = typestats(shortnames=shortnames, filter=filter)
    deltas = {}
    for name, n in stats.items():
        old = peak_stats.get(name, 0)
        if n > old:
            deltas[name] = n - old
            peak_stats[name] = n
    ranked = sorted(deltas.items(), key=operator.itemgetter(1), reverse=True)
    if limit:
        ranked = ranked[:limit]
    return [(name, stats[name], delta) for name, delta in ranked]


def show_growth(limit=10, peak_stats=None, shortnames=True, file=None, filter=None):
    """Show the increase in peak object counts since last call.

    if ``peak_stats`` is None, peak object counts will recorded in
    func `growth`, and your can record the counts by yourself with set
    ``peak_stats`` to a dictionary.

    The caveats documented in :func:`growth` apply.

    Example:

        >>> show_growth()  # doctest: +SKIP
        wrapper_descriptor       970       +14
        tuple                  12282       +10
        dict                    1922        +7
        ...
    """
    if peak_stats is None:
        result = growth(limit, shortnames=shortnames, filter=filter)
    else:
        result = growth(limit, peak_stats, shortnames, filter)
    if result:
        if file is None:
            file = sys.stdout
        width = max(len(name) for name, _, _ in result)
        for name, n, delta in result:
            file.write("%-*s%9d %+9d\n" % (width, name, n, delta))


_SORT_COLUMNS = {"old": 1, "current": 2, "new": 3, "deltas": 4}


def get_new_ids(
    skip_update=False, limit=10, sortby="deltas", shortnames=None, file=None, _state={}
):
    """Find and display new objects allocated since last call.

    Shows the increase in object counts since last call to this
    function and returns the memory address ids for new objects.

    Returns a dictionary mapping object type names to sets of object IDs
    that have been created since the last time this function was called.

    ``skip_update`` (bool): If True, returns the same dictionary that
    was returned during the previous call without updating the internal
    state or examining the objects currently in memory.

    ``limit`` (int): The maximum number of rows that you want to print
    data for.  Use 0 to suppress the printing.  Use None to print everything.

    ``sortby`` (str): This is the column that you want to sort by in
    descending order.  Possible values are: 'old', 'current', 'new',
    'deltas'

    ``shortnames`` (bool): If True, classes with the same name but
    defined in different modules will be lumped together.  If False,
    all type names will be qualified with the module name.  If None (default),
    ``get_new_ids`` will remember the value from previous calls, so it's
    enough to prime this once.  By default the primed value is True.

    ``_state`` (dict): Stores the ids seen by previous calls (compactly, in
    Rust) and the returned ``new`` dictionary. Never pass in this argument
    unless you know what you're doing.

    The caveats documented in :func:`growth` apply.

    When one gets new_ids from :func:`get_new_ids`, one can use
    :func:`at_addrs` to get a list of those objects. Then one can iterate over
    the new objects, print out what they are, and call :func:`show_backrefs` or
    :func:`show_chain` to see where they are referenced.

    Example:

        >>> _ = get_new_ids(limit=0) # store current objects in _state
        >>> a = [0, 1, 2] # list we don't know about
        >>> b = [3, 4, 5] # list we don't know about
        >>> new_ids = get_new_ids(limit=3) # we see new lists  # doctest: +ELLIPSIS
        ======================================================================
        Type                    Old_ids  Current_ids      New_ids Count_Deltas
        ======================================================================
        ...
        ======================================================================
        >>> new_lists = at_addrs(new_ids['list'])
        >>> a in new_lists
        True
        >>> b in new_lists
        True

    Differences from objgraph: ``_state`` keeps the ids in Rust, so it has no
    ``'old'`` and ``'current'`` keys (``'new'`` is the same
    ``defaultdict(set)``); an unknown ``sortby`` raises ``ValueError``
    (objgraph: ``KeyError``).
    """
    if sortby not in _SORT_COLUMNS:
        raise ValueError(f"sortby must be one of {sorted(_SORT_COLUMNS)}, not {sortby!r}")
    if not _state:
        _state["new"] = collections.defaultdict(set)
        _state["shortnames"] = True
        _state["tracker"] = _refgraph.IdTracker()
    new_ids = _state["new"]
    if skip_update:
        return new_ids
    if shortnames is None:
        shortnames = _state["shortnames"]
    else:
        _state["shortnames"] = shortnames
    gc.collect()
    rows = _state["tracker"].update(_refgraph.gc_objects(), bool(shortnames))
    new_ids.clear()
    for name, addrs in _state["tracker"].new_ids():
        new_ids[name] = set(addrs)
    column = _SORT_COLUMNS[sortby]
    rows.sort(key=operator.itemgetter(column, 0), reverse=True)
    if limit is not None:
        rows = rows[:limit]
    if not rows:
        return new_ids
    if file is None:
        file = sys.stdout
    width = max(len(row[0]) for row in rows)
    rule = "=" * (width + 13 * 4)
    print(rule, file=file)
    print(
        "%-*s%13s%13s%13s%13s"
        % (width, "Type", "Old_ids", "Current_ids", "New_ids", "Count_Deltas"),
        file=file,
    )
    print(rule, file=file)
    for name, old, current, new, delta in rows:
        print("%-*s%13d%13d%+13d%+13d" % (width, name, old, current, new, delta), file=file)
    print(rule, file=file)
    return new_ids


def get_leaking_objects(objects=None):
    """Return objects that do not have any referents.

    These could indicate reference-counting bugs in C code.  Or they could
    be legitimate.

    If you pass in a list of ``objects``, this function will return
    a subset of them that have no referents, otherwise it will look among
    all the objects tracked by the garbage collector.

    Note that the GC does not track simple objects like int or str.

    Example:

       >>> get_leaking_objects(by_type('MyClass'))  # doctest: +SKIP
       ...
    """
    gc.collect()
    if objects is None:
        return _refgraph.leaking(None, None)
    return _refgraph.leaking(_as_list(objects), objects)


def by_type(typename, objects=None):
    """Return objects tracked by the garbage collector with a given class name.

    Example:

        >>> by_type('MyClass')  # doctest: +SKIP
        [<mymodule.MyClass object at 0x...>]
        >>> by_type('dict', [[], {}])
        [{}]

    Note that the GC does not track simple objects like int or str.
    An unknown type name gives ``[]``.
    """
    _typename_arg(typename, "by_type")
    return _refgraph.by_type(_as_list(objects), typename)


def at(addr):
    """Return an object at a given memory address.

    The reverse of id(obj):

        >>> obj = []
        >>> at(id(obj)) is obj
        True

    Note that this function does not work on objects that are not tracked by
    the GC (e.g. ints or strings).

    Unlike objgraph, an address that is not an ``int`` raises ``TypeError``.
    """
    if not isinstance(addr, int) or isinstance(addr, bool):
        raise TypeError(f"at() takes an address (an int from id()), not {type(addr).__name__}")
    if addr < 0:
        return None
    return _refgraph.at(None, addr)


def at_addrs(address_set):
    """Return a list of objects for a given set of memory addresses.

    The reverse of [id(obj1), id(obj2), ...].  Note that objects are returned
    in an arbitrary order.

    When one gets ``new_ids`` from :func:`get_new_ids`, one can use this
    function to get a list of those objects.  Then one can iterate over the new
    objects, print out what they are, and call :func:`show_backrefs` or
    :func:`show_chain` to see where they are referenced.

        >>> _ = get_new_ids(limit=0)
        >>> a = [0, 1, 2]
        >>> new_ids = get_new_ids(limit=0)
        >>> new_lists = at_addrs(new_ids['list'])
        >>> a in new_lists
        True

    Note that this function does not work on objects that are not tracked
    by the GC (e.g. ints or strings).
    """
    try:
        iter(address_set)
    except TypeError:
        raise TypeError(
            f"at_addrs() takes a collection of addresses, not {type(address_set).__name__}"
        ) from None
    return _refgraph.at_addrs(None, address_set)
