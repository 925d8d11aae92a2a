"""pytest fixtures and hooks for the Sluice Kafka compatibility suite (helpers live in kafka_harness.py).

Run with Debian's interpreter:  /usr/bin/python3 -m pytest tests/compat -q
"""
import os
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kafka_harness import _ALL_BROKERS, Broker  # noqa: E402


def _teardown(b):
    if b.proc is not None:
        b.stop()


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    """A broker shared by the simple tests of one module (unique topics per test)."""
    b = Broker(tmp_path_factory.mktemp("broker"), sets={"broker.auto_create_topics": "true"})
    b.start()
    yield b
    _teardown(b)


@pytest.fixture
def make_broker(tmp_path):
    """Factory for function-scoped brokers (restart/crash tests)."""
    made = []

    def _make(name="broker", **sets):
        s = {k.replace("__", "."): str(v) for k, v in sets.items()}
        b = Broker(tmp_path / name, sets=s, name=name)
        made.append(b)
        b.start()
        return b

    yield _make
    errs = []
    for b in made:
        try:
            _teardown(b)
        except AssertionError as e:
            errs.append(str(e))
    if errs:
        pytest.fail("\n".join(errs))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    item._sluice_t0 = time.time() - 1
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        t0 = getattr(item, "_sluice_t0", 0)
        for b in _ALL_BROKERS:
            if os.path.exists(b.log_path) and (b.proc is not None or os.path.getmtime(b.log_path) >= t0):
                rep.sections.append(("sluice log: %s" % b.log_path, b.log_tail(80)))


