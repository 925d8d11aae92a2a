"""Shared harness (Broker class, waits, client helpers) for the Sluice Kafka compatibility suite.

Kept out of conftest.py so test modules can import it by a unique name (other suites under
tests/compat/ have their own conftest.py, and "from conftest import" would be ambiguous).

Run with Debian's interpreter (the Debian python3-* client modules live there):

    /usr/bin/python3 -m pytest tests/compat -q

Binary under test: $SLUICE_BIN (default <repo>/build/sluice).
"""
import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
SLUICE_BIN = os.environ.get("SLUICE_BIN", os.path.join(REPO, "build", "sluice"))
DEBIAN_PYTHON = "/usr/bin/python3"

# Sets every test broker gets (group joins must be fast in tests).
DEFAULT_SETS = {"broker.group_initial_rebalance_delay_ms": "0"}

READY_TIMEOUT = float(os.environ.get("SLUICE_READY_TIMEOUT", "20"))
STOP_TIMEOUT = float(os.environ.get("SLUICE_STOP_TIMEOUT", "30"))

_ALL_BROKERS = []  # every Broker created in this session (for failure logs)


# --------------------------------------------------------------------------- waits
def wait_until(cond, timeout=20.0, interval=0.02, msg="condition"):
    """Poll cond() until it returns a truthy value; return it. Fail after timeout."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = cond()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - reported on timeout
            last_exc = e
        if time.monotonic() >= deadline:
            extra = " (last error: %r)" % (last_exc,) if last_exc else ""
            m = msg() if callable(msg) else msg
            raise AssertionError("timed out after %.1fs waiting for %s%s" % (timeout, m, extra))
        time.sleep(interval)


def unique_topic(prefix="t"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:12])


def unique_group(prefix="g"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:12])


# --------------------------------------------------------------------------- broker
class Broker:
    """One sluice broker process on a private data dir."""

    def __init__(self, workdir, sets=None, name="broker"):
        self.workdir = str(workdir)
        self.name = name
        self.data_dir = os.path.join(self.workdir, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.sets = dict(DEFAULT_SETS)
        self.sets.update(sets or {})
        self.proc = None
        self.port = None
        self.host = "127.0.0.1"
        self.starts = 0
        self.exit_codes = []  # (how, returncode) for every stop/kill
        self.log_path = os.path.join(self.workdir, "%s.stderr.log" % name)
        _ALL_BROKERS.append(self)

    # -- lifecycle -------------------------------------------------------------
    @property
    def bootstrap(self):
        return "%s:%d" % (self.host, self.port)

    def _ready_path(self):
        return os.path.join(self.workdir, "%s.ready.%d" % (self.name, self.starts))

    def start(self, port=0):
        assert self.proc is None, "broker already running"
        if not os.path.exists(SLUICE_BIN):
            pytest.fail("sluice binary not found at %s (set SLUICE_BIN)" % SLUICE_BIN)
        self.starts += 1
        ready = self._ready_path()
        if os.path.exists(ready):
            os.unlink(ready)
        cmd = [SLUICE_BIN, "broker", "--listen", "127.0.0.1:%d" % port,
               "--data-dir", self.data_dir, "--ready-file", ready]
        for k, v in sorted(self.sets.items()):
            cmd += ["--set", "%s=%s" % (k, v)]
        logf = open(self.log_path, "ab")
        logf.write(("\n===== start #%d: %s\n" % (self.starts, " ".join(cmd))).encode())
        logf.flush()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                     cwd=self.workdir)
        logf.close()
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if os.path.exists(ready):
                with open(ready) as f:
                    content = f.read()
                if content.endswith("\n"):
                    break
            rc = self.proc.poll()
            if rc is not None:
                self.proc = None
                raise AssertionError("broker exited with %s before becoming ready\n%s"
                                     % (rc, self.log_tail()))
            if time.monotonic() >= deadline:
                raise AssertionError("broker not ready after %.0fs\n%s" % (READY_TIMEOUT, self.log_tail()))
            time.sleep(0.02)
        addr = content.strip()
        host, _, p = addr.rpartition(":")
        assert host == "127.0.0.1", "ready file must contain 127.0.0.1:PORT, got %r" % content
        self.port = int(p)
        assert 0 < self.port < 65536
        if port:
            assert self.port == port, "asked for port %d, ready file says %d" % (port, self.port)
        return self

    def start_same_port(self):
        """Restart on the previous port (clients may reconnect); fall back to port 0."""
        old = self.port
        try:
            return self.start(port=old)
        except AssertionError:
            if self.proc is not None:
                raise
            return self.start(port=0)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, expect_rc=0, timeout=STOP_TIMEOUT, sig=signal.SIGTERM):
        """Clean shutdown; asserts the exit code (0 by default)."""
        assert self.proc is not None, "broker not running"
        proc, self.proc = self.proc, None
        rc = proc.poll()
        if rc is not None:
            self.exit_codes.append(("died", rc))
            raise AssertionError("broker had already exited with %s (crash?)\n%s" % (rc, self.log_tail()))
        proc.send_signal(sig)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            self.exit_codes.append(("stop-timeout", None))
            raise AssertionError("broker did not exit within %.0fs of %s\n%s"
                                 % (timeout, signal.Signals(sig).name, self.log_tail()))
        self.exit_codes.append(("stop", rc))
        if expect_rc is not None:
            assert rc == expect_rc, "broker exit code %s after %s (expected %s)\n%s" % (
                rc, signal.Signals(sig).name, expect_rc, self.log_tail())
        return rc

    def kill9(self):
        assert self.proc is not None, "broker not running"
        proc, self.proc = self.proc, None
        rc = proc.poll()
        if rc is not None:
            raise AssertionError("broker had already exited with %s before kill -9\n%s" % (rc, self.log_tail()))
        proc.kill()
        proc.wait(timeout=10)
        self.exit_codes.append(("kill9", proc.returncode))

    def restart(self, same_port=True):
        if self.proc is not None:
            self.stop()
        return self.start_same_port() if same_port else self.start(0)

    def assert_alive(self):
        assert self.proc is not None and self.proc.poll() is None, \
            "broker died (rc=%s)\n%s" % (self.proc and self.proc.poll(), self.log_tail())

    def log_tail(self, lines=150):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return "(no broker log)"
        return "----- %s (last %d lines of %s) -----\n%s" % (
            self.name, min(lines, len(data)), self.log_path, "\n".join(data[-lines:]))


# --------------------------------------------------------------------------- client helpers
def confluent_admin(bootstrap, **extra):
    from confluent_kafka.admin import AdminClient
    conf = {"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000}
    conf.update(extra)
    return AdminClient(conf)


def topic_partitions(bootstrap, topic, timeout=10):
    """Partition ids of topic per Metadata (no auto-create), or None if absent."""
    a = confluent_admin(bootstrap)
    md = a.list_topics(topic=None, timeout=timeout)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        return None
    return sorted(t.partitions)


def create_topic(bootstrap, topic, partitions=1, timeout=20):
    """Create topic via CreateTopics (confluent AdminClient) and wait until visible with leaders."""
    from confluent_kafka.admin import NewTopic
    a = confluent_admin(bootstrap)
    fs = a.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)],
                         operation_timeout=timeout)
    fs[topic].result(timeout=timeout)

    def ready():
        md = a.list_topics(timeout=5)
        t = md.topics.get(topic)
        return (t is not None and t.error is None and len(t.partitions) == partitions
                and all(p.leader >= 0 for p in t.partitions.values()))
    wait_until(ready, timeout=timeout, interval=0.05, msg="topic %s with %d partitions" % (topic, partitions))
    return topic


def confluent_producer(bootstrap, **extra):
    from confluent_kafka import Producer
    conf = {"bootstrap.servers": bootstrap, "linger.ms": 5, "message.timeout.ms": 20000}
    conf.update(extra)
    return Producer(conf)


def confluent_produce(bootstrap, topic, records, partition=None, timeout=30, **extra):
    """records: list of (key, value, headers). Returns list of (partition, offset) in order."""
    p = confluent_producer(bootstrap, **extra)
    results = [None] * len(records)

    def cb_for(i):
        def cb(err, msg):
            results[i] = err if err is not None else (msg.partition(), msg.offset())
        return cb

    for i, (k, v, h) in enumerate(records):
        kw = {"key": k, "value": v, "on_delivery": cb_for(i)}
        if h:
            kw["headers"] = h
        if partition is not None:
            kw["partition"] = partition
        while True:
            try:
                p.produce(topic, **kw)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    remaining = p.flush(timeout)
    assert remaining == 0, "%d messages not delivered within %ss" % (remaining, timeout)
    errs = [r for r in results if not isinstance(r, tuple)]
    assert not errs, "delivery errors: %r" % errs[:5]
    return results


def confluent_consume_assign(bootstrap, topic, partition, offset, count, timeout=30, **extra):
    """Consume exactly `count` messages from (topic, partition) starting at `offset` via assign()."""
    from confluent_kafka import Consumer, TopicPartition
    conf = {"bootstrap.servers": bootstrap, "group.id": unique_group("assign"),
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "enable.partition.eof": False}
    conf.update(extra)
    c = Consumer(conf)
    try:
        c.assign([TopicPartition(topic, partition, offset)])
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < count and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is None:
                continue
            assert m.error() is None, "consume error: %s" % m.error()
            out.append(m)
        assert len(out) == count, "got %d/%d messages from %s[%d]@%d" % (len(out), count, topic, partition, offset)
        return out
    finally:
        c.close()


def kcat(args, input_bytes=None, timeout=60, check=True):
    cmd = ["kcat"] + list(args)
    r = subprocess.run(cmd, input=input_bytes, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError("%s exited %d\nstderr:\n%s" % (" ".join(cmd), r.returncode,
                                                            r.stderr.decode("utf-8", "replace")[-4000:]))
    return r


def kafka_python_admin(bootstrap, **extra):
    from kafka.admin import KafkaAdminClient
    conf = dict(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    conf.update(extra)
    return KafkaAdminClient(**conf)


def assert_broker_serves(broker, topic=None):
    """Check the broker is alive and a real client can produce + consume."""
    broker.assert_alive()
    topic = topic or unique_topic("health")
    vals = [b"health-%d" % i for i in range(3)]
    res = confluent_produce(broker.bootstrap, topic, [(None, v, None) for v in vals], partition=0)
    base = res[0][1]
    assert [r[1] for r in res] == [base, base + 1, base + 2]
    got = confluent_consume_assign(broker.bootstrap, topic, 0, base, 3)
    assert [m.value() for m in got] == vals
    broker.assert_alive()
