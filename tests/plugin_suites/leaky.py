"""Deliberately leaking tests (copied as test_leaky.py by tests/test_pytest_plugin.py): every
test here leaks, and refgraph's plugin must fail it naming the leaked type and its holder.
The expected (type, holder) of each is in EXPECTED."""

import unittest

import leak_patterns as lp
import pytest


class Listener:
    pass


class Entry:
    def __init__(self, n):
        self.n = n


class App:
    def __init__(self):
        self.registry = []

    def handle(self):
        self.registry.append(Entry(len(self.registry)))


@pytest.fixture(scope="session")
def app():
    return App()


@pytest.fixture
def client():
    """Function-scoped, but what it leaks goes to a module global."""

    def call():
        history.append(Entry(0))

    return call


history = []
seen = []


@pytest.fixture(params=sorted(lp.LEAKS))
def typical(request):
    work, leaked, holder = lp.LEAKS[request.param]()
    yield work
    cleanup = lp.CLEANUPS.get(request.param)
    if cleanup:
        cleanup()


def test_typical(typical):
    typical()


def test_session_fixture(app):
    app.handle()


def test_function_fixture_leaks_to_global(client):
    client()


def test_module_global():
    seen.append(Listener())


@pytest.mark.parametrize("n", [1, 2])
def test_parametrized(n):
    seen.extend(Entry(n) for _ in range(n))


class TestClassAttribute:
    cache = []

    def test_class_attribute(self):
        self.cache.append(Entry(1))


class CaseLeak(unittest.TestCase):
    kept = []

    def setUp(self):
        self.obj = Listener()

    def test_unittest(self):
        CaseLeak.kept.append(Entry(2))
