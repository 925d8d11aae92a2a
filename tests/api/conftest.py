"""Harness for the API suite: a `sluice store` with simulated device data written by the DataStax Python driver
(the exact tables the example pipelines create), and `sluice api` instances on dynamic ports.

Run with Debian's interpreter (python3-cassandra lives there):  /usr/bin/python3 -m pytest tests/api -q
Binary under test: $SLUICE_BIN (default <repo>/build/sluice).
"""
import datetime
import json
import math
import os
import random
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
SLUICE_BIN = os.environ.get("SLUICE_BIN", os.path.join(REPO, "build", "sluice"))
SANITIZED = os.environ.get("SLUICE_SANITIZED") == "1"
READY_TIMEOUT = 60.0 if SANITIZED else 30.0


def poll(cond, timeout=20.0, interval=0.02, msg="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            v = cond()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - reported on timeout
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s%s" % (timeout, msg, " (%r)" % last if last else ""))
        time.sleep(interval)


class Proc:
    """One sluice role process with a ready file."""

    def __init__(self, workdir, role, args):
        self.workdir = str(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.role = role
        self.ready = os.path.join(self.workdir, "ready")
        self.log_path = os.path.join(self.workdir, role + ".log")
        self.args = args
        self.proc = None

    def start(self):
        if os.path.exists(self.ready):
            os.unlink(self.ready)
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([SLUICE_BIN, self.role] + self.args + ["--ready-file", self.ready],
                                     stdout=self.log, stderr=self.log)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("%s exited with %s:\n%s" % (self.role, self.proc.returncode, self.log_tail()))
            if os.path.exists(self.ready):
                with open(self.ready) as f:
                    line = f.read().strip()
                return line or None
            return None

        line = poll(ready, READY_TIMEOUT, msg=self.role + " ready file")
        self.host, port = line.rsplit(":", 1)
        self.port = int(port)
        return self

    def log_tail(self, n=60):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""

    def stop(self, expect_rc=0):
        if not self.proc or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=60 if SANITIZED else 20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("%s did not stop on SIGTERM:\n%s" % (self.role, self.log_tail()))
        self.log.close()
        if expect_rc is not None and rc != expect_rc:
            raise AssertionError("%s exited %s on SIGTERM:\n%s" % (self.role, rc, self.log_tail()))


class Http:
    def __init__(self, base, context=None, headers=None):
        self.base = base
        self.context = context  # an ssl.SSLContext for https
        self.headers = dict(headers or {})  # sent with every request (e.g. Authorization)

    def get(self, path, timeout=20, headers=None):
        """(status, headers, parsed JSON or text)"""
        req = urllib.request.Request(self.base + path, headers=dict(self.headers, **(headers or {})))
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self.context) as r:
                body = r.read()
                status, headers = r.status, {k.lower(): v for k, v in r.headers.items()}
        except urllib.error.HTTPError as e:
            try:
                body, status, headers = e.read(), e.code, {k.lower(): v for k, v in e.headers.items()}
            finally:  # a TLS server closing the connection waits for our close_notify (or our close)
                e.close()
        ctype = headers.get("content-type", "")
        if "json" in ctype:
            return status, headers, json.loads(body)
        return status, headers, body.decode(errors="replace")

    def json(self, path, expect=200):
        status, _, body = self.get(path)
        assert status == expect, "%s -> %s %s" % (path, status, body)
        return body


# ------------------------------------------------------------------------------------------------- the data

VEHICLE_DDL = """CREATE TABLE IF NOT EXISTS iot.vehicle_readings (device_id text, day date, ts timestamp, address text,
  mileage double, fuel_level double, speed double, longitude double, latitude double,
  PRIMARY KEY ((device_id, day), ts)) WITH CLUSTERING ORDER BY (ts DESC)"""
WEARABLE_DDL = """CREATE TABLE IF NOT EXISTS iot.wearable_readings (device_id text, day date, ts timestamp, model text,
  firmware text, battery_level int, heart_rate int, stress_level int, spo2 int, steps bigint, distance_m double,
  calories double, temperature_c double, humidity double, latitude double, longitude double, notification text,
  status text, charging boolean, error text, PRIMARY KEY ((device_id, day), ts)) WITH CLUSTERING ORDER BY (ts DESC)"""
META_DDL = [
    "CREATE KEYSPACE IF NOT EXISTS sluice_meta WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
    """CREATE TABLE IF NOT EXISTS sluice_meta.pipeline_processors (pipeline text, processor text, topics text,
       keyspace_name text, table_name text, dead_letter_topic text, state text, consumed bigint, written bigint,
       dead_lettered bigint, filtered bigint, inflight bigint, lag bigint, updated timestamp,
       PRIMARY KEY ((pipeline), processor))""",
    """CREATE TABLE IF NOT EXISTS sluice_meta.pipeline_lag (pipeline text, topic text, partition int,
       committed bigint, high_watermark bigint, lag bigint, updated timestamp,
       PRIMARY KEY ((pipeline), topic, partition))""",
    """CREATE TABLE IF NOT EXISTS sluice_meta.dead_letters (pipeline text, ts timestamp, topic text, partition int,
       offset bigint, field text, value text, reason text, payload text,
       PRIMARY KEY ((pipeline), ts, topic, partition, offset))
       WITH CLUSTERING ORDER BY (ts DESC, topic ASC, partition ASC, offset ASC)""",
]

NOW_MS = int(time.time() * 1000)
# sluice_meta.pipeline_processors rows: (pipeline, processor, state, (consumed, written, dead_lettered, filtered,
# inflight, lag), age in ms). Two processors share vehicles; a third was killed 10 minutes ago (its row still says
# running); wearables' only processor has stopped.
PROCESSORS = [
    ("vehicles", "host-a:101", "running", (1000, 990, 7, 3, 0, 12), 0),
    ("vehicles", "host-b:202", "running", (500, 495, 2, 1, 2, 4), 1000),
    ("vehicles", "host-c:303", "running", (9000, 9000, 0, 0, 0, 0), 600_000),
    ("wearables", "host-a:101", "stopped", (50, 49, 1, 0, 0, 0), 60_000),
]
STEP_MS = 20_000
# vehicle-0001 spans 30 hours (always two or three day partitions); the others the last 2 hours
SPANS = {"vehicle-0001": 30 * 3600_000, "vehicle-0002": 2 * 3600_000, "vehicle-0003": 2 * 3600_000}
WEARABLES = {"watch-0001": 2 * 3600_000, "watch-0002": 2 * 3600_000}


def ms_to_dt(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc).replace(tzinfo=None)


def day_of(ms):
    return datetime.date(1970, 1, 1) + datetime.timedelta(days=ms // 86_400_000)


def load_data(session):
    from cassandra.concurrent import execute_concurrent_with_args

    session.execute("CREATE KEYSPACE IF NOT EXISTS iot WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    session.execute(VEHICLE_DDL)
    session.execute(WEARABLE_DDL)
    for q in META_DDL:
        session.execute(q)
    rnd = random.Random(7)
    ins = session.prepare("INSERT INTO iot.vehicle_readings (device_id, day, ts, address, mileage, fuel_level, speed, "
                          "longitude, latitude) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
    rows = []
    end = NOW_MS - NOW_MS % 1000 - 60_000
    for dev, span in SPANS.items():
        mileage = rnd.uniform(1000, 90000)
        for ts in range(end - span, end + 1, STEP_MS):
            mileage += rnd.uniform(0, 0.5)
            speed = None if rnd.random() < 0.02 else round(rnd.uniform(0, 130), 2)
            rows.append((dev, day_of(ts), ms_to_dt(ts), "%d rue de Rivoli, 75001 Paris" % rnd.randint(1, 200),
                         round(mileage, 1), round(rnd.uniform(5, 60), 2), speed, 2.2 + rnd.uniform(0, 0.2),
                         48.8 + rnd.uniform(0, 0.1)))
    execute_concurrent_with_args(session, ins, rows, concurrency=64, raise_on_first_error=True)
    wins = session.prepare("INSERT INTO iot.wearable_readings (device_id, day, ts, model, battery_level, heart_rate, "
                           "stress_level, steps, distance_m, temperature_c, status, charging) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
    wrows = []
    for dev, span in WEARABLES.items():
        steps = 0
        for ts in range(end - span, end + 1, STEP_MS * 3):
            steps += rnd.randint(0, 40)
            wrows.append((dev, day_of(ts), ms_to_dt(ts), "Watch S9", rnd.randint(5, 100), rnd.randint(55, 150),
                          rnd.randint(0, 100), steps, steps * 0.7, round(rnd.uniform(35.5, 37.9), 1), "ok", False))
    execute_concurrent_with_args(session, wins, wrows, concurrency=64, raise_on_first_error=True)
    now = ms_to_dt(NOW_MS)
    ins_proc = session.prepare(
        "INSERT INTO sluice_meta.pipeline_processors (pipeline, processor, topics, keyspace_name, table_name, "
        "dead_letter_topic, state, consumed, written, dead_lettered, filtered, inflight, lag, updated) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
    for pipeline, proc, state, counts, age_ms in PROCESSORS:
        topic, ks, table = ("vehicles", "iot", "vehicle_readings") if pipeline == "vehicles" else \
            ("wearables", "iot", "wearable_readings")
        session.execute(ins_proc, (pipeline, proc, topic, ks, table, topic + ".dlq", state) + counts +
                        (ms_to_dt(NOW_MS - age_ms),))
    for p, lag in ((0, 5), (1, 7)):
        session.execute("INSERT INTO sluice_meta.pipeline_lag (pipeline, topic, partition, committed, high_watermark, "
                        "lag, updated) VALUES ('vehicles', 'vehicles', %s, %s, %s, %s, %s)",
                        (p, 500 - lag, 500, lag, now))
    for i in range(7):
        session.execute("INSERT INTO sluice_meta.dead_letters (pipeline, ts, topic, partition, offset, field, value, "
                        "reason, payload) VALUES ('vehicles', %s, 'vehicles', 0, %s, 'Speed', 'fast', "
                        "'expected a number', '{\"Speed\":\"fast\"}')", (ms_to_dt(NOW_MS - i * 1000), 100 + i))
    return len(rows), len(wrows)


@pytest.fixture(scope="session")
def store(tmp_path_factory):
    s = Proc(tmp_path_factory.mktemp("store"), "store",
             ["--listen", "127.0.0.1:0", "--data-dir", str(tmp_path_factory.mktemp("storedata"))])
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def cql(store):
    from cassandra.cluster import Cluster

    cluster = Cluster([store.host], port=store.port, protocol_version=4)
    session = cluster.connect()
    yield session
    cluster.shutdown()


@pytest.fixture(scope="session")
def data(cql):
    return load_data(cql)


def start_api(workdir, store, extra=(), context=None):
    """context: an ssl.SSLContext trusting the certificate of an API started with api.tls_* (https)."""
    a = Proc(workdir, "api", ["--listen", "127.0.0.1:0", "--cql", "%s:%d" % (store.host, store.port)] + list(extra))
    a.start()
    a.http = Http("%s://%s:%d" % ("https" if context else "http", a.host, a.port), context)
    poll(lambda: a.http.get("/ready")[0] == 200, READY_TIMEOUT, msg="api /ready")
    return a


@pytest.fixture(scope="session")
def api(tmp_path_factory, store, data):
    a = start_api(tmp_path_factory.mktemp("api"), store)
    yield a
    a.stop()


@pytest.fixture(scope="session")
def http(api):
    return api.http
