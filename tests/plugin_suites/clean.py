"""Tests that do not leak (copied as test_clean.py by tests/test_pytest_plugin.py), though
pytest or their function-scoped fixtures keep what they make for the test's duration: the
plugin must pass them all."""

import logging
import warnings

import leak_patterns as lp
import pytest


class Thing:
    def __init__(self, n):
        self.n = n


@pytest.fixture(params=sorted(lp.CLEAN))
def clean(request):
    return lp.CLEAN[request.param]()


def test_clean_pattern(clean):
    clean()


def test_monkeypatch(monkeypatch):
    monkeypatch.setattr(Thing, "flag", Thing(1), raising=False)
    monkeypatch.setenv("REFGRAPH_PLUGIN_TEST", "1")


def test_logging_is_captured():
    logging.getLogger("refgraph_plugin_test").warning("one %s", Thing(1).n)


def test_caplog(caplog):
    logging.getLogger("refgraph_plugin_test").error("two")
    assert "two" in caplog.text


def test_deprecation_warning():
    warnings.warn("old", DeprecationWarning, stacklevel=1)


def test_recwarn(recwarn):
    warnings.warn("again", UserWarning, stacklevel=1)


@pytest.fixture
def bag():
    return []


def test_function_fixture_grows(bag):
    bag.append(Thing(len(bag)))


def test_capsys(capsys):
    print("hello" * 10)
    assert "hello" in capsys.readouterr().out


def test_tmp_path(tmp_path):
    (tmp_path / "f.txt").write_text("x")


class TestInClass:
    def test_method(self):
        assert [Thing(i) for i in range(10)]


def test_defines_a_class():
    # Each call's class is cyclic garbage; object's table of subclasses gains an entry per
    # call until the collector frees the class (the rounds count lengths without collecting).
    class Local:
        pass

    with pytest.raises(ValueError):
        raise ValueError(Local())
