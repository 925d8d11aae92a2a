"""Sluice's C CQL client (src/cql/client*.c) and `sluice cql`, against a real `sluice store`, cross-checked with the
DataStax Python driver (python3-cassandra).

The C side is driven through tests/compat/cql_client/probe.c (CMake target cql_client_probe, built next to the
sluice binary): one tab-separated command per line on stdin, one JSON line per command on stdout.

    /usr/bin/python3 -m pytest tests/compat/cql_client -q
"""
import datetime
import decimal
import importlib.util
import json
import os
import select
import signal
import struct
import subprocess
import time
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("cql_store_harness", os.path.join(HERE, "..", "cql", "conftest.py"))
harness = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(harness)
Store, poll, SLUICE_BIN = harness.Store, harness.poll, harness.SLUICE_BIN
PROBE = os.environ.get("CQL_CLIENT_PROBE", os.path.join(os.path.dirname(SLUICE_BIN), "cql_client_probe"))
STEP_TIMEOUT = 60.0


class Probe:
    def __init__(self):
        self.proc = subprocess.Popen([PROBE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, bufsize=1)

    def cmd(self, *fields, timeout=STEP_TIMEOUT):
        self.proc.stdin.write("\t".join(str(f) for f in fields) + "\n")
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, "probe gave no answer to %r within %ss" % (fields, timeout)
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if r:
                line = self.proc.stdout.readline()
                assert line, "probe exited: %s" % self.proc.stderr.read()
                return json.loads(line)

    def ok(self, *fields, **kw):
        r = self.cmd(*fields, **kw)
        assert r.get("ok"), "%r -> %r" % (fields, r)
        return r

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.write("close\n")
            self.proc.stdin.flush()
            out, err = self.proc.communicate(timeout=30)
            assert '"closed":true' in out, (out, err)
            assert self.proc.returncode == 0, err
            # ASan builds report leaks on stderr and exit non-zero; both are checked above


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = Store(tmp_path_factory.mktemp("store")).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def session(store):
    c = store.cluster()
    s = c.connect()
    s.execute("CREATE KEYSPACE IF NOT EXISTS cc WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
    s.set_keyspace("cc")
    yield s
    c.shutdown()


@pytest.fixture
def probe(store, session):
    p = Probe()
    r = p.ok("connect", "%s:%d" % (store.host, store.port), "keyspace=cc")
    assert r["hosts"] == 1
    yield p
    p.close()


# ---------------------------------------------------------------- encoders for raw binds

def be_int(v):
    return struct.pack(">i", v)


def coll(items):
    out = struct.pack(">i", len(items))
    for it in items:
        out += struct.pack(">i", len(it)) + it
    return out


TYPES_DDL = """CREATE TABLE IF NOT EXISTS types (k int PRIMARY KEY, b bigint, bo boolean, d double, f float,
    ts timestamp, dt date, tm time, ip inet, bl blob, u uuid, tu timeuuid, l list<int>, s set<text>,
    m map<text, int>, si smallint, ti tinyint, de decimal, vi varint, a ascii, tx text, fl frozen<list<text>>)"""
COLS = "k, b, bo, d, f, ts, dt, tm, ip, bl, u, tu, l, s, m, si, ti, de, vi, a, tx, fl"
NOW = datetime.datetime(2024, 5, 6, 7, 8, 9, 123000)
U4 = uuid.UUID("8f1c2a3e-4b5d-4c6e-9f70-8192a3b4c5d6")
TU = uuid.UUID("5b6e1c2a-0b8a-11ef-9a3f-0242ac120002")


def c_binds(k):
    ms = int((NOW - datetime.datetime(1970, 1, 1)).total_seconds() * 1000)
    days = (datetime.date(2024, 2, 29) - datetime.date(1970, 1, 1)).days + 2**31
    tm_ns = ((12 * 60 + 34) * 60 + 56) * 10**9 + 789 * 1000
    return ["i32:%d" % k, "i64:%d" % 2**40, "bool:true", "double:1.5", "float:2.5", "ts:%d" % ms,
            "raw:" + struct.pack(">I", days).hex(), "i64:%d" % tm_ns, "raw:0a010203", "blob:0001ff",
            "uuid:%s" % U4, "uuid:%s" % TU, "raw:" + coll([be_int(3), be_int(1), be_int(2)]).hex(),
            "raw:" + coll([b"a", b"b"]).hex(),
            "raw:" + (struct.pack(">i", 2) + struct.pack(">i", 1) + b"x" + struct.pack(">i", 4) + be_int(1) +
                      struct.pack(">i", 1) + b"y" + struct.pack(">i", 4) + be_int(2)).hex(),
            "i32:-5", "i32:7", "raw:" + (be_int(3) + (123456).to_bytes(3, "big", signed=True)).hex(),
            "i64:12345678901234", "text:ascii", "text:tëxt ✓", "raw:" + coll([b"q", b"r"]).hex()]


EXPECTED_JSON = {"b": 2**40, "bo": True, "d": 1.5, "f": 2.5, "ts": "2024-05-06 07:08:09.123000+0000",
                 "dt": "2024-02-29", "tm": "12:34:56.000789000", "ip": "10.1.2.3", "bl": "0x0001ff", "u": str(U4),
                 "tu": str(TU), "l": [3, 1, 2], "s": ["a", "b"], "m": {"x": 1, "y": 2}, "si": -5, "ti": 7,
                 "de": 123.456, "vi": 12345678901234, "a": "ascii", "tx": "tëxt ✓", "fl": ["q", "r"]}


def check_driver_row(r):
    from cassandra.util import Date, Time
    assert r.b == 2**40 and r.bo is True and r.d == 1.5 and r.f == 2.5
    assert r.ts == NOW
    assert r.dt == Date(datetime.date(2024, 2, 29)) and r.tm == Time(datetime.time(12, 34, 56, 789))
    assert r.ip == "10.1.2.3" and r.bl == b"\x00\x01\xff" and r.u == U4 and r.tu == TU
    assert r.l == [3, 1, 2] and r.s == {"a", "b"} and r.m == {"x": 1, "y": 2}
    assert r.si == -5 and r.ti == 7 and r.de == decimal.Decimal("123.456") and r.vi == 12345678901234
    assert r.a == "ascii" and r.tx == "tëxt ✓" and r.fl == ["q", "r"]


def test_every_type_round_trips_both_ways(probe, session):
    session.execute(TYPES_DDL)
    probe.ok("prepare", "INSERT INTO types (%s) VALUES (%s)" % (COLS, ", ".join("?" * 22)))
    probe.ok("exec", *c_binds(1))
    # the C client's row, read by the Python driver
    check_driver_row(session.execute("SELECT * FROM types WHERE k = 1").one())
    # the driver's row, read by the C client
    from cassandra.util import Date, Time
    ps = session.prepare("INSERT INTO types (%s) VALUES (%s)" % (COLS, ", ".join("?" * 22)))
    session.execute(ps, (2, 2**40, True, 1.5, 2.5, NOW, Date(datetime.date(2024, 2, 29)),
                         Time(datetime.time(12, 34, 56, 789)), "10.1.2.3", b"\x00\x01\xff", U4, TU, [3, 1, 2],
                         {"b", "a"}, {"x": 1, "y": 2}, -5, 7, decimal.Decimal("123.456"), 12345678901234, "ascii",
                         "tëxt ✓", ["q", "r"]))
    for k in (1, 2):
        rows = probe.ok("query", "SELECT * FROM types WHERE k = %d" % k)["rows"]
        assert len(rows) == 1
        row = rows[0]
        assert row.pop("k") == k
        assert sorted(row.pop("s")) == ["a", "b"]  # element order: see test_set_elements_come_back_sorted
        assert row == {c: v for c, v in EXPECTED_JSON.items() if c != "s"}
    # nulls and unset
    probe.ok("prepare", "INSERT INTO types (k, tx, l) VALUES (?, ?, ?)")
    probe.ok("exec", "i32:3", "null:", "unset:")
    assert probe.ok("query", "SELECT k, tx, l FROM types WHERE k = 3")["rows"] == [{"k": 3, "tx": None, "l": None}]


def test_set_elements_come_back_sorted(probe, session):
    session.execute("CREATE TABLE IF NOT EXISTS sets (k int PRIMARY KEY, s set<text>)")
    probe.ok("prepare", "INSERT INTO sets (k, s) VALUES (?, ?)")
    probe.ok("exec", "i32:1", "raw:" + coll([b"b", b"a"]).hex())  # valid on the wire, unsorted
    assert probe.ok("query", "SELECT s FROM sets WHERE k = 1")["rows"] == [{"s": ["a", "b"]}]


def test_bad_values_are_refused_client_side(probe, session):
    session.execute("CREATE TABLE IF NOT EXISTS bv (k int PRIMARY KEY, v text)")
    probe.ok("prepare", "INSERT INTO bv (k, v) VALUES (?, ?)")
    r = probe.cmd("exec", "double:1.5", "text:x")  # a double for an int column
    assert not r["ok"] and r["code"] == -5 and "k" in r["message"]
    r = probe.cmd("exec", "raw:0102", "text:x")  # 2 bytes for an int
    assert not r["ok"] and r["code"] == -5
    # a server-side error carries the server's code and message
    r = probe.cmd("query", "SELECT * FROM no_such_table")
    assert not r["ok"] and r["code"] == 0x2200 and "no_such_table" in r["message"]


def test_tokens_match_the_python_driver(probe, session):
    from cassandra.murmur3 import murmur3
    session.execute("CREATE TABLE IF NOT EXISTS tk1 (k text PRIMARY KEY, v int)")
    session.execute("CREATE TABLE IF NOT EXISTS tk2 (sensor text, day int, ts bigint, v int, "
                    "PRIMARY KEY ((sensor, day), ts))")
    # single-component key
    probe.ok("prepare", "INSERT INTO tk1 (v, k) VALUES (?, ?)")  # pk not first: uses pk_indexes
    ps1 = session.prepare("INSERT INTO tk1 (v, k) VALUES (?, ?)")
    for key in ["a", "abc", "hello world", "sensor-42", "ü"]:
        mine = probe.ok("token", "i32:1", "text:" + key)["token"]
        assert mine == murmur3(ps1.bind((1, key)).routing_key)
    # composite key, bound out of order
    probe.ok("prepare", "INSERT INTO tk2 (ts, day, v, sensor) VALUES (?, ?, ?, ?)")
    ps2 = session.prepare("INSERT INTO tk2 (ts, day, v, sensor) VALUES (?, ?, ?, ?)")
    for sensor, day in [("sensor-1", 20240101), ("x", -1), ("a" * 300, 0)]:
        mine = probe.ok("token", "i64:5", "i32:%d" % day, "i32:1", "text:" + sensor)["token"]
        assert mine == murmur3(ps2.bind((5, day, 1, sensor)).routing_key)
        probe.ok("exec", "i64:5", "i32:%d" % day, "i32:1", "text:" + sensor)
        srv = session.execute("SELECT token(sensor, day) AS t FROM tk2 WHERE sensor = %s AND day = %s",
                              (sensor, day)).one().t
        assert mine == srv
    # the reference vector from cql-drivers.md §8
    assert probe.ok("token", "i64:0", "i32:20240101", "i32:0", "text:sensor-1")["token"] == 6511822321561555761


def test_paging_returns_every_row_once(probe, session):
    session.execute("CREATE TABLE IF NOT EXISTS pg (k int, c int, v text, PRIMARY KEY (k, c))")
    probe.ok("prepare", "INSERT INTO pg (k, c, v) VALUES (?, ?, ?)")
    probe.ok("batchtype", "unlogged")
    for c in range(1234):
        probe.ok("batchadd", "i32:%d" % (c % 3), "i32:%d" % c, "text:v%d" % c)
        if c % 200 == 199 or c == 1233:
            probe.ok("batchrun")
    probe.ok("pagesize", 100)
    r = probe.ok("query", "SELECT k, c FROM pg")
    assert r["count"] == 1234 and r["pages"] >= 13
    assert sorted((x["k"], x["c"]) for x in r["rows"]) == sorted((c % 3, c) for c in range(1234))
    r = probe.ok("query", "SELECT c FROM pg WHERE k = 1")
    assert [x["c"] for x in r["rows"]] == [c for c in range(1234) if c % 3 == 1]
    probe.ok("pagesize", 5000)


def test_batches_logged_unlogged_and_text(probe, session):
    session.execute("CREATE TABLE IF NOT EXISTS bt (k int, c int, v text, PRIMARY KEY (k, c))")
    probe.ok("prepare", "INSERT INTO bt (k, c, v) VALUES (?, ?, ?)")
    probe.ok("batchtype", "logged")
    probe.ok("batchadd", "i32:1", "i32:1", "text:a")
    probe.ok("batchadd", "i32:1", "i32:2", "text:b")
    probe.ok("batchadd_text", "INSERT INTO bt (k, c, v) VALUES (2, 1, 'c')")
    probe.ok("batchadd_text", "UPDATE bt SET v = 'd' WHERE k = 1 AND c = 1")
    probe.ok("batchrun")
    rows = {(r.k, r.c): r.v for r in session.execute("SELECT * FROM bt")}
    assert rows == {(1, 1): "d", (1, 2): "b", (2, 1): "c"}
    probe.ok("batchtype", "unlogged")
    probe.ok("batchadd_text", "DELETE FROM bt WHERE k = 2")
    probe.ok("batchrun")
    assert session.execute("SELECT count(*) FROM bt WHERE k = 2").one()[0] == 0


def test_many_requests_in_flight_and_backpressure(store, session):
    session.execute("CREATE TABLE IF NOT EXISTS mf (k int PRIMARY KEY, v text)")
    p = Probe()
    try:
        p.ok("connect", "%s:%d" % (store.host, store.port), "keyspace=cc", "maxreq=64", "conns=2")
        r = p.ok("many", 20000, "INSERT INTO mf (k, v) VALUES (?, ?)")
        assert r["succeeded"] == 20000
        assert session.execute("SELECT count(*) FROM mf").one()[0] == 20000
        assert session.execute("SELECT v FROM mf WHERE k = 19999").one().v == "v19999"
    finally:
        p.close()
    # a tiny pending queue: the overflow is refused with OVERLOADED instead of growing without bound
    p = Probe()
    try:
        p.ok("connect", "%s:%d" % (store.host, store.port), "keyspace=cc", "maxreq=4", "max_pending=10")
        r = p.cmd("many", 500, "INSERT INTO mf (k, v) VALUES (?, ?)")
        assert r["succeeded"] >= 14 and r["failed"] > 0 and r["succeeded"] + r["failed"] == 500
        assert "max_pending" in r["first_error"]
    finally:
        p.close()


def test_request_timeout(store, session, probe):
    probe.ok("query", "SELECT key FROM system.local")
    store.proc.send_signal(signal.SIGSTOP)
    try:
        probe.ok("timeout", 300)
        t0 = time.monotonic()
        r = probe.cmd("query", "SELECT key FROM system.local")
        took = time.monotonic() - t0
        assert not r["ok"] and r["code"] == -1, r
        assert took < 5, took
    finally:
        store.proc.send_signal(signal.SIGCONT)
    probe.ok("timeout", 10000)
    probe.ok("wait_ok", 20, "SELECT key FROM system.local")
    assert probe.ok("stats")["timeouts"] >= 1


def test_reprepare_and_reconnect_after_restarts(tmp_path):
    s = Store(tmp_path / "s").start()
    p = Probe()
    try:
        hp = "%s:%d" % (s.host, s.port)
        p.ok("connect", hp)
        p.ok("query", "CREATE KEYSPACE rp WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
        p.ok("query", "CREATE TABLE rp.t (k int PRIMARY KEY, v text)")
        p.ok("prepare", "INSERT INTO rp.t (k, v) VALUES (?, ?)")
        p.ok("exec", "i32:1", "text:before")
        # clean restart on the same port: the server forgets prepared statements
        s.restart()
        p.ok("wait_ok", 30, "SELECT key FROM system.local")
        p.ok("exec", "i32:2", "text:after-restart")
        assert p.ok("stats")["reprepares"] >= 1
        # kill -9 and restart: the pool reconnects with backoff
        port = s.port
        s.kill9()
        r = p.cmd("query", "SELECT key FROM system.local")
        assert not r["ok"] and r["code"] in (-2, -3), r  # no host / connection closed: a client-side reason
        s.start(port)
        p.ok("wait_ok", 30, "SELECT key FROM system.local")
        p.ok("exec", "i32:3", "text:after-kill")
        rows = p.ok("query", "SELECT k, v FROM rp.t")["rows"]
        assert sorted((x["k"], x["v"]) for x in rows) == [(1, "before"), (2, "after-restart"), (3, "after-kill")]
        hosts = p.ok("hosts")["hosts"]
        assert len(hosts) == 1 and hosts[0]["up"] and hosts[0]["address"] == hp
        assert p.ok("stats")["reconnects"] >= 1
    finally:
        p.close()
        s.stop()


def test_lz4_compression(store, session):
    p = Probe()
    try:
        p.ok("connect", "%s:%d" % (store.host, store.port), "keyspace=cc", "lz4=1")
        session.execute("CREATE TABLE IF NOT EXISTS lz (k int PRIMARY KEY, v text)")
        p.ok("prepare", "INSERT INTO lz (k, v) VALUES (?, ?)")
        p.ok("exec", "i32:1", "text:" + "z" * 5000)
        assert p.ok("query", "SELECT v FROM lz WHERE k = 1")["rows"] == [{"v": "z" * 5000}]
    finally:
        p.close()


def test_ddl_waits_for_schema_agreement(probe, session):
    probe.ok("query", "CREATE TABLE IF NOT EXISTS sa (k int PRIMARY KEY)")
    probe.ok("query", "ALTER TABLE sa ADD v text")
    # usable at once, from another client, without polling
    session.execute("INSERT INTO sa (k, v) VALUES (1, 'x')")
    assert probe.ok("stats")["schema_waits"] >= 1


# ---------------------------------------------------------------- sluice cql

def shell(store, *args, stdin=None):
    r = subprocess.run([SLUICE_BIN, "cql", "--host", "%s:%d" % (store.host, store.port)] + list(args),
                       input=stdin, capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout, r.stderr


def test_shell_execute_prints_a_cqlsh_table(store, session):
    session.execute("CREATE TABLE IF NOT EXISTS sh (k int PRIMARY KEY, name text, score double)")
    session.execute("INSERT INTO sh (k, name, score) VALUES (1, 'alice', 1.5)")
    session.execute("INSERT INTO sh (k, name, score) VALUES (22, 'bob', null)")
    rc, out, err = shell(store, "-e", "SELECT k, name, score FROM cc.sh WHERE k IN (1, 22)")
    assert rc == 0, err
    assert out == ("\n"
                   " k  | name  | score\n"
                   "----+-------+-------\n"
                   "  1 | alice |   1.5\n"
                   " 22 |   bob |  null\n"
                   "\n"
                   "(2 rows)\n")
    rc, out, err = shell(store, "--json", "-e", "SELECT k, name FROM cc.sh WHERE k = 1")
    assert rc == 0 and [json.loads(x) for x in out.splitlines()] == [{"k": 1, "name": "alice"}]


def test_shell_errors_and_files(store, session, tmp_path):
    rc, out, err = shell(store, "-e", "SELECT * FROM cc.missing")
    assert rc == 2
    assert err.strip() == ('<stdin>:1:InvalidRequest: Error from server: code=2200 [Invalid query] '
                           'message="unconfigured table missing"')
    f = tmp_path / "s.cql"
    f.write_text("-- a comment\nUSE cc;\nCREATE TABLE IF NOT EXISTS fl (k int PRIMARY KEY, v text);\n"
                 "INSERT INTO fl (k, v) VALUES (1, 'semi;colon');\nSELECT v FROM fl;\n\nSELEC oops;\n")
    rc, out, err = shell(store, "-f", str(f))
    assert rc == 2
    assert "semi;colon" in out and "(1 rows)" in out
    assert err.startswith("%s:7:SyntaxException:" % f), err


def test_shell_describe(store, session):
    session.execute("CREATE TABLE IF NOT EXISTS dsc (sensor text, day int, ts timestamp, v double, "
                    "PRIMARY KEY ((sensor, day), ts)) WITH CLUSTERING ORDER BY (ts DESC)")
    rc, out, err = shell(store, "-e", "DESCRIBE KEYSPACES")
    assert rc == 0 and "cc" in out.split() and "system_schema" in out.split()
    rc, out, err = shell(store, "-k", "cc", "-e", "DESCRIBE TABLES")
    assert rc == 0 and "Keyspace cc" in out and "dsc" in out.split()
    rc, out, err = shell(store, "-e", "DESCRIBE TABLE cc.dsc")
    assert rc == 0, err
    assert ("CREATE TABLE cc.dsc (\n    sensor text,\n    day int,\n    ts timestamp,\n    v double,\n"
            "    PRIMARY KEY ((sensor, day), ts)\n) WITH CLUSTERING ORDER BY (ts DESC);") in out
    # what DESCRIBE prints is valid CQL
    ddl = out.strip().replace("cc.dsc", "cc.dsc_copy")
    session.execute(ddl)
    assert session.execute("SELECT count(*) FROM system_schema.columns WHERE keyspace_name = 'cc' "
                           "AND table_name = 'dsc_copy'").one()[0] == 4


def test_shell_reads_statements_from_a_pipe(store, session):
    rc, out, err = shell(store, stdin="SELECT key FROM system.local;\n")
    assert rc == 0 and "local" in out and "(1 rows)" in out


# ---------------------------------------------------------------- PasswordAuthenticator

@pytest.fixture(scope="module")
def auth_store(tmp_path_factory):
    s = Store(tmp_path_factory.mktemp("auth"), {"store.authenticator": "PasswordAuthenticator",
                                                "store.users": "alice:secret,bob:pw2"}).start()
    yield s
    s.stop()


def test_shell_logs_in_with_password_authenticator(auth_store):
    rc, out, err = shell(auth_store, "-u", "alice", "-p", "secret", "-e", "SELECT key FROM system.local")
    assert rc == 0, err
    assert "local" in out and "(1 rows)" in out


def test_shell_wrong_password_prints_the_error_as_cqlsh_does(auth_store):
    hp = "%s:%d" % (auth_store.host, auth_store.port)
    rc, out, err = shell(auth_store, "-u", "alice", "-p", "wrong", "-e", "SELECT key FROM system.local")
    assert rc != 0 and out == ""
    assert err.strip() == ("Connection error: ('Unable to connect to any servers', {'%s': AuthenticationFailed("
                           "'Failed to authenticate to %s: Error from server: code=0100 [Bad credentials] "
                           "message=\"Provided username alice and/or password are incorrect\"')})" % (hp, hp))
    rc, out, err = shell(auth_store, "-e", "SELECT key FROM system.local")
    assert rc != 0
    assert err.strip() == ("Connection error: ('Unable to connect to any servers', {'%s': AuthenticationFailed("
                           "'Remote end requires authentication')})" % hp)
    # the store still serves
    rc, out, err = shell(auth_store, "-u", "bob", "-p", "pw2", "-e", "SELECT key FROM system.local")
    assert rc == 0, err
