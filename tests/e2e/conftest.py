"""End-to-end harness: broker, store, `sluice stream`, `sluice simulate` and `sluice up` as processes on dynamic
ports, data read back with the DataStax Python driver and confluent-kafka.

Run with Debian's interpreter:  /usr/bin/python3 -m pytest tests/e2e -q
Binary under test: $SLUICE_BIN (default <repo>/build/sluice).
"""
import calendar
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "compat"))
from kafka_harness import Broker, SLUICE_BIN, create_topic, wait_until  # noqa: E402

_spec = importlib.util.spec_from_file_location("cql_harness", os.path.join(REPO, "tests", "compat", "cql", "conftest.py"))
cql_harness = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cql_harness)
Store = cql_harness.Store

EXAMPLES = os.path.join(REPO, "examples")
START_TIME = "2024-05-01T10:40:00Z"
TIMEOUT = float(os.environ.get("SLUICE_E2E_TIMEOUT", "90"))


def ts_ms(dt):
    return calendar.timegm(dt.utctimetuple()) * 1000 + dt.microsecond // 1000


class Proc:
    """A sluice process with a log file and a ready file."""

    def __init__(self, workdir, name, args, ready=None):
        self.workdir = str(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.name = name
        self.args = args
        self.ready = ready
        self.log_path = os.path.join(self.workdir, "%s.log" % name)
        self.proc = None
        self.starts = 0

    def start(self, wait_ready=True):
        self.starts += 1
        if self.ready and os.path.exists(self.ready):
            os.unlink(self.ready)
        log = open(self.log_path, "ab")
        log.write(("\n===== start %d: %s\n" % (self.starts, " ".join(self.args))).encode())
        log.flush()
        self.proc = subprocess.Popen([SLUICE_BIN] + self.args, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        if self.ready and wait_ready:
            def ready():
                if self.proc.poll() is not None:
                    raise AssertionError("%s exited with %s:\n%s" % (self.name, self.proc.returncode, self.tail()))
                return os.path.exists(self.ready) and open(self.ready).read().endswith("\n")
            wait_until(ready, TIMEOUT, msg="%s ready" % self.name)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def wait(self, timeout=TIMEOUT):
        return self.proc.wait(timeout=timeout)

    def stop(self, expect_rc=0, timeout=60):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("%s did not stop:\n%s" % (self.name, self.tail()))
        self.proc = None
        if expect_rc is not None:
            assert rc == expect_rc, "%s exit code %s:\n%s" % (self.name, rc, self.tail())
        return rc

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.proc = None

    def text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def tail(self, n=60):
        return "\n".join(self.text().splitlines()[-n:])

    def last_counts(self):
        """The last status line's counters of the current run."""
        run = self.text().rsplit("===== start", 1)[-1]
        m = re.findall(r"consumed (\d+), written (\d+) \([^)]*\), dead-lettered (\d+), filtered (\d+), in flight (\d+)",
                       run)
        assert m, "no status line in:\n" + self.tail()
        return dict(zip(("consumed", "written", "dead_lettered", "filtered", "inflight"), map(int, m[-1])))


def simulate(workdir, bootstrap, profile, count, seed=7, devices=10, rate="max", topic=None, extra=()):
    args = ["simulate", "--brokers", bootstrap, "--profile", profile, "--count", str(count), "--seed", str(seed),
            "--devices", str(devices), "--rate", rate, "--start-time", START_TIME] + list(extra)
    if topic:
        args += ["--topic", topic]
    p = Proc(workdir, "simulate-%s" % profile, args).start()
    rc = p.wait(TIMEOUT)
    assert rc == 0, p.tail()
    assert "delivered %d, failed 0" % count in p.text(), p.tail()
    return p


def stream_proc(workdir, broker_addr, store, pipelines, name="stream", sets=None):
    ready = os.path.join(str(workdir), "%s.ready" % name)
    args = ["stream", "--brokers", broker_addr, "--cql", "%s:%d" % (store.host, store.port), "--pipelines",
            ",".join(pipelines), "--ready-file", ready, "--set", "stream.status_interval_ms=200"]
    for k, v in (sets or {}).items():
        args += ["--set", "%s=%s" % (k, v)]
    return Proc(workdir, name, args, ready=ready)


def read_topic(bootstrap, topic, expect, timeout=TIMEOUT):
    """Every record of a topic (all partitions) as confluent-kafka messages."""
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "e2e-reader-%d" % time.monotonic_ns(),
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    out = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < expect and time.monotonic() < deadline:
            for m in c.consume(1000, 0.5):
                if m.error() is None:
                    out.append(m)
    finally:
        c.close()
    assert len(out) == expect, "read %d of %d records from %s" % (len(out), expect, topic)
    return out


def session_for(store):
    cluster = store.cluster()
    return cluster, cluster.connect()


def count_rows(session, table):
    return session.execute("SELECT count(*) FROM %s" % table).one()[0]


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path / "broker", sets={"broker.num_partitions": "4"})
    b.start()
    yield b
    if b.proc is not None:
        b.stop()


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "store").start()
    yield s
    s.stop()


@pytest.fixture
def session(store):
    cluster, s = session_for(store)
    yield s
    cluster.shutdown()
