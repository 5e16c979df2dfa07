"""Reference chains and reference graphs: ``find_ref_chain``, ``find_backref_chain``,
``show_refs``, ``show_backrefs``, ``show_chain``.

Each call captures the heap once (in Rust) after objgraph's ``gc.collect()``, then walks the
captured graph; objgraph instead calls ``gc.get_referrers`` for every node, a full heap scan each.
The capture holds the objects alive only until the call returns.
"""

from __future__ import annotations

import itertools
import operator
import sys
from collections.abc import Callable, Iterable
from typing import IO, Any, NamedTuple

from . import _refgraph, labels, present

__all__ = [
    "find_backref_chain",
    "find_ref_chain",
    "show_backrefs",
    "show_chain",
    "show_refs",
]


def _ids(extra_ignore, func):
    try:
        return [operator.index(i) for i in extra_ignore]
    except TypeError:
        raise TypeError(
            f"{func}() extra_ignore must be a collection of object ids (ints from id())"
        ) from None


def _int_arg(value, name, func):
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{func}() {name} must be an int, not {type(value).__name__}") from None


def _is_proper_module_predicate(predicate):
    if predicate is labels.is_proper_module:
        return True
    # objgraph's own is_proper_module has the same meaning.
    return (
        getattr(predicate, "__name__", None) == "is_proper_module"
        and getattr(predicate, "__module__", None) == "objgraph"
    )


def _find_chain(obj, predicate, backwards, max_depth, extra_ignore, func):
    if not callable(predicate):
        raise TypeError(f"{func}() predicate must be callable, not {type(predicate).__name__}")
    max_depth = _int_arg(max_depth, "max_depth", func)
    ignore = _ids(extra_ignore, func)
    import gc

    gc.collect()
    roots = [obj]
    ignore += [id(roots), id(extra_ignore)]
    fast = _is_proper_module_predicate(predicate)
    if backwards:
        heap = _refgraph.Heap(True, roots)
    else:
        heap = _refgraph.Heap.forward(roots, max_depth)
    try:
        del roots
        if fast:
            heap.mark_proper_modules(labels.proper_modules())
        chain = heap.find_chain(obj, predicate, backwards, max_depth, ignore, fast)
    finally:
        heap.close()
    if chain is None:
        return [obj]
    return chain if backwards else chain[::-1]


def find_ref_chain(obj, predicate, max_depth=20, extra_ignore=()):
    """Find a shortest chain of references leading from obj.

    The end of the chain will be some object that matches your predicate.

    ``predicate`` is a function taking one argument and returning a boolean.

    ``max_depth`` limits the search depth.

    ``extra_ignore`` can be a list of object IDs to exclude those objects from
    your search.

    Example:

        >>> find_ref_chain(obj, lambda x: isinstance(x, MyClass))  # doctest: +SKIP
        [obj, ..., <MyClass object at ...>]

    Returns ``[obj]`` if such a chain could not be found.

        >>> leaf = ['leaf']
        >>> root = [[leaf]]
        >>> find_ref_chain(root, lambda x: x is leaf) == [root, root[0], leaf]
        True

    Unlike objgraph, a ``predicate`` that is not callable, a ``max_depth``
    that is not an int or ``extra_ignore`` holding something other than ids
    raise ``TypeError`` before any work is done.
    """
    return _find_chain(obj, predicate, False, max_depth, extra_ignore, "find_ref_chain")


def find_backref_chain(obj, predicate, max_depth=20, extra_ignore=()):
    """Find a shortest chain of references leading to obj.

    The start of the chain will be some object that matches your predicate.

    ``predicate`` is a function taking one argument and returning a boolean.

    ``max_depth`` limits the search depth.

    ``extra_ignore`` can be a list of object IDs to exclude those objects from
    your search.

    Example:

        >>> find_backref_chain(obj, is_proper_module)  # doctest: +SKIP
        [<module ...>, ..., obj]

    Returns ``[obj]`` if such a chain could not be found.

    The search stops at proper modules (:func:`is_proper_module`) without
    calling Python for each object. As for :func:`find_ref_chain`, bad
    argument types raise ``TypeError`` up front (objgraph fails later, or not
    at all).
    """
    return _find_chain(obj, predicate, True, max_depth, extra_ignore, "find_backref_chain")


class _GraphOptions(NamedTuple):
    """The options of ``show_refs``/``show_backrefs`` other than the objects (named after
    their parameters, with their defaults)."""

    max_depth: int = 3
    extra_ignore: Iterable[int] = ()
    filter: Callable[[Any], bool] | None = None
    too_many: int = 10
    highlight: Callable[[Any], bool] | None = None
    filename: str | None = None
    extra_info: Callable[[Any], str] | None = None
    refcounts: bool = False
    shortnames: bool = True
    output: IO[str] | None = None
    extra_node_attrs: Callable[[Any], dict] | None = None
    renderer: str | None = None


def _walk_view(objs, backwards, options, func):
    """Capture the heap, walk it and decorate the result: a ``_refgraph.View``."""
    import gc

    max_depth = _int_arg(options.max_depth, "max_depth", func)
    too_many = _int_arg(options.too_many, "too_many", func)
    filter, highlight = options.filter, options.highlight
    extra_info, extra_node_attrs = options.extra_info, options.extra_node_attrs
    refcounts, shortnames = options.refcounts, options.shortnames
    for name, value in (
        ("filter", filter),
        ("highlight", highlight),
        ("extra_info", extra_info),
        ("extra_node_attrs", extra_node_attrs),
    ):
        if value is not None and not callable(value):
            raise TypeError(f"{func}() {name} must be callable or None")
    # The options record refers to the user's callables: it is not a referrer to show.
    ignore = _ids(options.extra_ignore, func) + [id(objs), id(options.extra_ignore), id(options)]
    gc.collect()
    if backwards:
        heap = _refgraph.Heap(True, objs)
    else:
        heap = _refgraph.Heap.forward(objs, max_depth)
    try:
        if backwards:
            heap.mark_proper_modules(labels.proper_modules())
        walk = heap.walk(objs, backwards, max_depth, too_many, ignore, filter, backwards)
        held = heap.held_references
        roots = [labels.node_id(o) for o in objs]
        visits = []
        edges = []
        for visit in walk:
            obj = visit.obj
            neighbours = visit.neighbours
            key = labels.node_id(obj)
            refcount = None
            if refcounts:
                refcount = _displayed_refcount(visit.refcount, held, visit.lingering)
            label = labels.node_label(obj, extra_info, refcount, shortnames)
            attrs = None
            if extra_node_attrs is not None:
                attrs = [
                    (labels.text(str(k)), labels.text(v if isinstance(v, str) else str(v)))
                    for k, v in sorted(extra_node_attrs(obj).items())
                    if v is not None
                ]
            lit = bool(highlight(obj)) if highlight else False
            for other in neighbours:
                src, dst = (other, obj) if backwards else (obj, other)
                edges.append(
                    (
                        labels.node_id(src),
                        labels.node_id(dst),
                        labels.edge_label(src, dst, shortnames),
                    )
                )
            visits.append(
                _refgraph.ViewNode(
                    key,
                    label,
                    visit.depth,
                    module=labels.is_module(obj),
                    highlighted=lit,
                    has_del=labels.has_del(obj),
                    attrs=attrs,
                    edges=len(neighbours),
                    skipped=visit.skipped,
                )
            )
            del obj, neighbours, visit
        del walk
    finally:
        heap.close()
    return _refgraph.View.from_walk(roots, visits, edges, backwards, max_depth)


def _displayed_refcount(raw, held, lingering):
    """The number objgraph prints in ``[N]`` for an object.

    objgraph prints ``sys.getrefcount(obj) - 4`` while its own frames hold three references
    (four on Python 3.10) plus ``lingering`` ones in loop variables. ``raw`` is the count
    less this call's references other than the capture's ``held`` ones."""
    if _IMMORTAL is not None and raw >= _IMMORTAL:
        # Immortal objects (3.12+): the count never changes; objgraph prints it minus 4.
        return raw + 1 - 4
    return raw - held - _OVERHEAD_GAP + lingering


# sys.getrefcount(obj) - 4 undercounts by one since 3.11 (one less reference on the stack).
_OVERHEAD_GAP = 0 if sys.version_info < (3, 11) else 1
# Immortal objects (3.12+) report a fixed count (the extension knows it per version); a count
# within this margin below it, after subtracting this call's own references, is that count.
_IMMORTAL_COUNT = _refgraph.cpython_facts().get("immortal_refcount")
_IMMORTAL = None if _IMMORTAL_COUNT is None else _IMMORTAL_COUNT - 1024


def _show_graph(objs, backwards, options, func):
    # No dict or list that refers to the user's objects may be created here before the heap
    # is captured (it would show up as a referrer): the objects travel alone, the options in
    # a record that the capture ignores.
    if not labels.isinstance_(objs, (list, tuple)):
        objs = [objs]
    if options.filename and options.output:
        raise ValueError("Cannot specify both output and filename.")
    present.check_target(options.filename, options.renderer)
    view = _walk_view(objs, backwards, options, func)
    return present.present(view, options.filename, options.output, options.renderer)


def _graph_function(name, backwards, doc):
    """``show_refs`` or ``show_backrefs``: one signature (objgraph's, plus ``renderer``) and
    one body for both directions."""

    def show_graph(
        objs,
        max_depth=3,
        extra_ignore=(),
        filter=None,
        too_many=10,
        highlight=None,
        filename=None,
        extra_info=None,
        refcounts=False,
        shortnames=True,
        output=None,
        extra_node_attrs=None,
        renderer=None,
    ):
        options = _GraphOptions(
            max_depth=max_depth,
            extra_ignore=extra_ignore,
            filter=filter,
            too_many=too_many,
            highlight=highlight,
            filename=filename,
            extra_info=extra_info,
            refcounts=refcounts,
            shortnames=shortnames,
            output=output,
            extra_node_attrs=extra_node_attrs,
            renderer=renderer,
        )
        return _show_graph(objs, backwards, options, name)

    show_graph.__name__ = show_graph.__qualname__ = name
    show_graph.__doc__ = doc
    return show_graph


show_backrefs = _graph_function(
    "show_backrefs",
    True,
    """Generate an object reference graph ending at ``objs``.

    The graph will show you what objects refer to ``objs``, directly and
    indirectly.

    ``objs`` can be a single object, or it can be a list of objects.  If
    unsure, wrap the single object in a new list.

    ``filename`` if specified, can be the name of a .dot or an image file,
    whose extension indicates the desired output format. ``.png`` and
    ``.svg`` are drawn by refgraph itself (no Graphviz needed); other image
    formats go to Graphviz's ``dot`` when it is installed.  If ``filename``
    and ``output`` are not specified, ``show_backrefs`` will display the
    graph inline (in Jupyter), otherwise it'll write a .dot file and spawn a
    viewer (xdot), or draw a .png and print its name.

    ``output`` if specified, the DOT text will be written to this
    file object. ``output`` and ``filename`` should not both be specified.

    ``renderer`` (refgraph only): ``'native'`` or ``'graphviz'`` chooses who
    draws images; the default is ``$REFGRAPH_RENDERER`` or ``'native'``.

    Use ``max_depth`` and ``too_many`` to limit the depth and breadth of the
    graph.

    Use ``filter`` (a predicate) and ``extra_ignore`` (a list of object IDs) to
    remove undesired objects from the graph.

    Use ``highlight`` (a predicate) to highlight certain graph nodes in blue.

    Use ``extra_info`` (a function taking one argument and returning a
    string) to report extra information for objects.

    Use ``extra_node_attrs`` (a function taking the current object as argument,
    returning a dict of strings) to add extra attributes to the nodes. See
    https://www.graphviz.org/doc/info/attrs.html for a list of possible node
    attributes.

    Specify ``refcounts=True`` if you want to see reference counts.
    These will mostly match the number of arrows pointing to an object,
    but can be different for various reasons.

    Specify ``shortnames=False`` if you want to see fully-qualified type
    names ('package.module.ClassName').  By default you get to see only the
    class name part.

    Examples:

        >>> show_backrefs(obj)  # doctest: +SKIP
        >>> show_backrefs([obj1, obj2])  # doctest: +SKIP
        >>> show_backrefs(obj, max_depth=5)  # doctest: +SKIP
        >>> show_backrefs(obj, filter=lambda x: not inspect.isclass(x))  # doctest: +SKIP
        >>> show_backrefs(obj, highlight=inspect.isclass)  # doctest: +SKIP
        >>> show_backrefs(obj, extra_ignore=[id(locals())])  # doctest: +SKIP
        >>> show_backrefs(obj, extra_node_attrs=lambda x: dict(URL=str(id(x))))  # doctest: +SKIP

    Differences from objgraph: ``filter`` runs during the walk, as in
    objgraph, but ``highlight``, ``extra_info`` and ``extra_node_attrs`` run
    after it, node by node in walk order (objgraph interleaves them with the
    walk; the calls made and the DOT text are the same). A label holding a
    lone surrogate is written with a ``\\udcff`` escape (objgraph fails to
    write it to a file); a ``repr`` or callback that raises inside a label
    shows ``(unrepresentable)``, and an edge label whose attribute lookup
    raises is left out instead of breaking the call.
    """,
)

show_refs = _graph_function(
    "show_refs",
    False,
    """Generate an object reference graph starting at ``objs``.

    The graph will show you what objects are reachable from ``objs``, directly
    and indirectly.

    ``objs`` can be a single object, or it can be a list of objects.  If
    unsure, wrap the single object in a new list.

    ``filename``, ``output`` and ``renderer`` work as for
    :func:`show_backrefs`: ``.png`` and ``.svg`` are drawn natively, ``.dot``
    is written as text, other formats need Graphviz.

    Use ``max_depth`` and ``too_many`` to limit the depth and breadth of the
    graph.

    Use ``filter`` (a predicate) and ``extra_ignore`` (a list of object IDs) to
    remove undesired objects from the graph.

    Use ``highlight`` (a predicate) to highlight certain graph nodes in blue.

    Use ``extra_info`` (a function returning a string) to report extra
    information for objects.

    Use ``extra_node_attrs`` (a function taking the current object as argument,
    returning a dict of strings) to add extra attributes to the nodes.

    Specify ``refcounts=True`` if you want to see reference counts.

    Examples:

        >>> show_refs(obj)  # doctest: +SKIP
        >>> show_refs([obj1, obj2])  # doctest: +SKIP
        >>> show_refs(obj, max_depth=5)  # doctest: +SKIP
        >>> show_refs(obj, filter=lambda x: not inspect.isclass(x))  # doctest: +SKIP
        >>> show_refs(obj, highlight=inspect.isclass)  # doctest: +SKIP
        >>> show_refs(obj, extra_ignore=[id(locals())])  # doctest: +SKIP
        >>> show_refs(obj, extra_node_attrs=lambda x: dict(URL=str(id(x))))  # doctest: +SKIP

    The DOT text can go to any file object:

        >>> import io
        >>> out = io.StringIO()
        >>> show_refs([['x']], max_depth=1, output=out)
        >>> out.getvalue().splitlines()[0]
        'digraph ObjectGraph {'

    The differences from objgraph listed for :func:`show_backrefs` apply.
    """,
)


def show_chain(*chains, **kw):
    """Show a chain (or several chains) of object references.

    Useful in combination with :func:`find_ref_chain` or
    :func:`find_backref_chain`, e.g.

        >>> show_chain(find_backref_chain(obj, is_proper_module))  # doctest: +SKIP

    You can specify if you want that chain traced backwards or forwards
    by passing a ``backrefs`` keyword argument, e.g.

        >>> show_chain(find_ref_chain(obj, is_proper_module),  # doctest: +SKIP
        ...            backrefs=False)

    Ideally this shouldn't matter, but for some objects
    :func:`gc.get_referrers` and :func:`gc.get_referents` are not perfectly
    symmetrical.

    You can specify ``highlight``, ``extra_info``, ``refcounts``,
    ``shortnames``, ``filename`` or ``output`` arguments like for
    :func:`show_backrefs` or :func:`show_refs`.
    """
    backrefs = kw.pop("backrefs", True)
    chains = [chain for chain in chains if chain]
    if not chains:
        raise ValueError("show_chain() needs at least one non-empty chain")
    ids = set(map(id, itertools.chain(*chains)))

    def in_chains(x):
        return id(x) in ids

    max_depth = max(map(len, chains)) - 1
    if backrefs:
        show_backrefs([chain[-1] for chain in chains], max_depth=max_depth, filter=in_chains, **kw)
    else:
        show_refs([chain[0] for chain in chains], max_depth=max_depth, filter=in_chains, **kw)
