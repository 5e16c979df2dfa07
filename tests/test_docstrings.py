"""The examples in refgraph's docstrings run (doctest). Examples that only illustrate a call
(they need the reader's objects, or open a viewer) are marked ``# doctest: +SKIP``."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import refgraph

# Not imported here: ``__main__`` runs the command line; ``attach._target`` is text run inside
# a target process, never imported.
NOT_IMPORTED = {"refgraph.__main__", "refgraph.attach._target"}
MODULES = ["refgraph"] + sorted(
    name
    for _, name, _ in pkgutil.walk_packages(refgraph.__path__, "refgraph.")
    if name not in NOT_IMPORTED
)
# Modules whose public functions have examples that run: a module listed here that runs none
# (all skipped, or the finder lost them) fails.
WITH_EXAMPLES = {"refgraph.graphs", "refgraph.labels", "refgraph.snapshot", "refgraph.stats"}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name):
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} docstring example(s) of {name} failed"
    if name in WITH_EXAMPLES:
        assert results.attempted > 0, f"no docstring example of {name} ran"
