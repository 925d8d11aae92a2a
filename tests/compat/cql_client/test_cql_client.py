"""Sluice's C CQL client (src/cql/client*.c) and `sluice cql`, against a real `sluice store`, cross-checked with the
DataStax Python driver (python3-cassandra).

The C side is driven through tests/compat/cql_client/probe.c (CMake target cql_client_probe, built next to the
sluice binary): one tab-separated command per line on stdin, one JSON line per command on stdout.

    /usr/bin/python3 -m pytest tests/compat/cql_client -q
"""
import asyncio
import datetime
import decimal
import importlib.util
import json
import os
import select
import signal
import socket
import ssl
import struct
import subprocess
import threading
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


# ---------------------------------------------------------------- TLS
#
# A private CA issues the certificates (EC keys: quick to make). `sluice store` serves TLS with
# store.tls_cert_file/store.tls_key_file; it has no client-certificate setting, so mutual TLS is tested through
# MutualTlsFront, a TLS front (Python's ssl) that requires a client certificate from the CA and forwards to a plain
# store, as a Cassandra with require_client_auth would refuse clients without one.

def _openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=60)


class Pki:
    def __init__(self, d):
        self.d = str(d)
        self.ca, self.ca_key = self._ca("ca", "Sluice test CA")
        self.other_ca, _ = self._ca("other-ca", "Some other CA")
        self.ip = self._issue("ip", "127.0.0.1", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth")
        self.dns = self._issue("dns", "localhost", "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth")
        self.both = self._issue("both", "localhost",
                                "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth")
        self.client = self._issue("client", "sluice-client", "extendedKeyUsage=clientAuth")

    def _path(self, name):
        return os.path.join(self.d, name)

    def _ca(self, name, cn):
        pem, key = self._path(name + ".pem"), self._path(name + ".key")
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
                 "-out", pem, "-days", "2", "-subj", "/CN=" + cn, "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        return pem, key

    def _issue(self, name, cn, ext):
        """A certificate signed by the CA; returns (cert, key) paths."""
        pem, key, csr, extf = (self._path(name + x) for x in (".pem", ".key", ".csr", ".ext"))
        _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
                 "-out", csr, "-subj", "/CN=" + cn)
        with open(extf, "w") as f:
            f.write(ext + "\n")
        _openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key, "-CAcreateserial", "-out", pem,
                 "-days", "2", "-extfile", extf)
        return pem, key


class MutualTlsFront:
    """TLS on 127.0.0.1:<dynamic port> requiring a client certificate signed by ca, forwarding to a plain backend.
    Records the SNI and the client certificate's CN of each accepted connection."""

    def __init__(self, backend_port, cert, key, ca):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        ctx.load_verify_locations(ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
        self.sni, self.client_cns = [], []
        ctx.sni_callback = lambda sslobj, name, c: self.sni.append(name)
        self.backend_port = backend_port
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(lambda loop, context: None)  # refused handshakes are expected here
        started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ctx, started), daemon=True)
        self.thread.start()
        assert started.wait(30), "TLS front did not start"
        self.hp = "127.0.0.1:%d" % self.port

    def _run(self, ctx, started):
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=ctx))
        self.port = server.sockets[0].getsockname()[1]
        started.set()
        self.loop.run_forever()
        server.close()
        tasks = asyncio.all_tasks(self.loop)
        for t in tasks:
            t.cancel()
        self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        self.loop.close()

    async def _handle(self, reader, writer):
        cert = writer.get_extra_info("peercert") or {}
        self.client_cns.append(dict(x[0] for x in cert.get("subject", ())).get("commonName"))
        br, bw = await asyncio.open_connection("127.0.0.1", self.backend_port)

        async def pump(r, w):
            try:
                while True:
                    data = await r.read(65536)
                    if not data:
                        break
                    w.write(data)
                    await w.drain()
            except (ConnectionError, ssl.SSLError):
                pass
            finally:
                w.close()

        await asyncio.gather(pump(reader, bw), pump(br, writer))

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        assert not self.thread.is_alive()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_store(tmp_path_factory, pki):
    """A store whose certificate names 127.0.0.1 (IP SAN)."""
    s = Store(tmp_path_factory.mktemp("tls"), {"store.tls_cert_file": pki.ip[0], "store.tls_key_file": pki.ip[1]})
    yield s.start()
    s.stop()


@pytest.fixture(scope="module")
def localhost_store(tmp_path_factory, pki):
    """A store on 127.0.0.1 whose certificate names only "localhost" (DNS SAN)."""
    s = Store(tmp_path_factory.mktemp("tlsdns"), {"store.tls_cert_file": pki.dns[0], "store.tls_key_file": pki.dns[1]})
    yield s.start()
    s.stop()


def hostport(s):
    return "%s:%d" % (s.host, s.port)


def connect_fails(hp, *opts):
    """Connects a fresh probe that must fail (within a bounded connect timeout); returns the error, after checking
    that the probe still closes cleanly."""
    p = Probe()
    try:
        t0 = time.monotonic()
        r = p.cmd("connect", hp, "connect_timeout=3000", *opts)
        assert not r["ok"], r
        assert time.monotonic() - t0 < 20
    finally:
        p.close()
    return r


def tls_round_trip(hp, *opts, table="t"):
    """Connects over TLS with opts, writes and reads back a row through the pool; returns the probe's hosts."""
    p = Probe()
    try:
        p.ok("connect", hp, *opts)
        p.ok("query", "CREATE KEYSPACE IF NOT EXISTS tlsc WITH replication = "
                      "{'class': 'SimpleStrategy', 'replication_factor': 1}")
        p.ok("query", "CREATE TABLE IF NOT EXISTS tlsc.%s (k int PRIMARY KEY, v text)" % table)
        p.ok("prepare", "INSERT INTO tlsc.%s (k, v) VALUES (?, ?)" % table)
        p.ok("exec", "i32:1", "text:over tls")
        assert p.ok("query", "SELECT v FROM tlsc.%s WHERE k = 1" % table)["rows"] == [{"v": "over tls"}]
        return p.ok("hosts")["hosts"]
    finally:
        p.close()


def test_tls_round_trip_verified_with_the_ca(tls_store, pki):
    hp = hostport(tls_store)
    p = Probe()
    try:
        assert p.ok("connect", hp, "tls=1", "ca=" + pki.ca)["hosts"] == 1
        p.ok("query", "CREATE KEYSPACE IF NOT EXISTS tlsc WITH replication = "
                      "{'class': 'SimpleStrategy', 'replication_factor': 1}")
        p.ok("query", "CREATE TABLE IF NOT EXISTS tlsc.rt (k int PRIMARY KEY, v text)")
        p.ok("prepare", "INSERT INTO tlsc.rt (k, v) VALUES (?, ?)")
        big = os.urandom(50000).hex()  # 100 kB: a frame spread over several TLS records each way
        p.ok("exec", "i32:1", "text:" + big)
        p.ok("exec", "i32:2", "text:small")
        rows = p.ok("query", "SELECT k, v FROM tlsc.rt")["rows"]
        assert sorted((r["k"], r["v"]) for r in rows) == [(1, big), (2, "small")]
        # many requests pipelined on the encrypted connections
        p.ok("query", "CREATE TABLE IF NOT EXISTS tlsc.many (k int PRIMARY KEY, v text)")
        assert p.ok("many", 3000, "INSERT INTO tlsc.many (k, v) VALUES (?, ?)")["succeeded"] == 3000
        hosts = p.ok("hosts")["hosts"]
        assert len(hosts) == 1 and hosts[0]["up"] and hosts[0]["address"] == hp
    finally:
        p.close()
    # cross-check: the DataStax Python driver, over TLS with the same CA, reads what the C client wrote
    c = tls_store.cluster(ssl_context=ssl.create_default_context(cafile=pki.ca))
    try:
        s = c.connect()
        assert s.execute("SELECT v FROM tlsc.rt WHERE k = 1").one().v == big
        assert s.execute("SELECT count(*) FROM tlsc.many").one()[0] == 3000
    finally:
        c.shutdown()


def test_tls_name_check_on_a_certificate_for_another_name(localhost_store, pki):
    hp = hostport(localhost_store)
    # the certificate names "localhost", the client connected to 127.0.0.1: refused, and says why
    r = connect_fails(hp, "tls=1", "ca=" + pki.ca)
    assert r["code"] == -2, r
    assert ("TLS handshake with %s failed: certificate verify failed: IP address mismatch" % hp) in r["message"], r
    # name check off: accepted (the chain is still verified: see test_tls_refuses_a_certificate_from_an_unknown_ca)
    assert tls_round_trip(hp, "tls=1", "ca=" + pki.ca, "check_hostname=0", table="nocheck")[0]["up"]
    # the name given explicitly is checked on every connection (control and pool)
    assert tls_round_trip(hp, "tls=1", "ca=" + pki.ca, "server_name=localhost", table="named")[0]["up"]
    r = connect_fails(hp, "tls=1", "ca=" + pki.ca, "server_name=db.example.com")
    assert "certificate verify failed: hostname mismatch" in r["message"], r


def test_tls_contact_point_written_as_a_name_is_checked_by_that_name(localhost_store, pki):
    # The pool connects to the address system.local reports (127.0.0.1), yet must check the name the user wrote.
    addrs = socket.getaddrinfo("localhost", localhost_store.port, type=socket.SOCK_STREAM)
    if addrs[0][4][0] != "127.0.0.1":
        pytest.skip("localhost resolves first to %s here, not to the store's 127.0.0.1" % addrs[0][4][0])
    hosts = tls_round_trip("localhost:%d" % localhost_store.port, "tls=1", "ca=" + pki.ca, table="byname")
    assert len(hosts) == 1 and hosts[0]["up"] and hosts[0]["address"] == hostport(localhost_store)


def test_tls_refuses_a_certificate_from_an_unknown_ca(tls_store, pki):
    hp = hostport(tls_store)
    for opts in (["ca=" + pki.other_ca], ["ca=" + pki.other_ca, "check_hostname=0"],
                 [], ["check_hostname=0"]):  # no CA file: the system's trust store, which does not know this CA
        r = connect_fails(hp, "tls=1", *opts)
        assert r["code"] == -2, r
        assert ("TLS handshake with %s failed: certificate verify failed: " % hp) in r["message"], (opts, r)


def test_tls_bad_settings_are_refused_when_the_client_is_created(pki, tmp_path):
    missing = str(tmp_path / "missing.pem")
    for opts, code, words in [
        (["tls=1", "ca=" + missing], -2, "cannot read TLS CA file %s: No such file or directory" % missing),
        (["tls=1", "ca=" + pki.ca_key], -22, "cannot load TLS CA file %s" % pki.ca_key),
        (["tls=1", "cert=" + pki.client[0]], -22, "needs both a certificate file and a key file"),
        (["tls=1", "cert=" + pki.client[0], "key=" + pki.ip[1]], -22, "cannot load TLS client certificate"),
        (["ca=" + pki.ca], -22, "TLS is off"),  # a CA file without TLS would otherwise connect in clear
    ]:
        r = connect_fails("127.0.0.1:9", *opts)  # never dialled: the client is not even created
        assert r["code"] == code and words in r["message"], (opts, r)


def test_plain_client_on_a_tls_port_fails_cleanly(tls_store, pki):
    hp = hostport(tls_store)
    r = connect_fails(hp)
    assert r["code"] == -2, r
    assert "turn TLS on in the client" in r["message"], r
    # the store still serves TLS clients
    assert tls_round_trip(hp, "tls=1", "ca=" + pki.ca, table="after_plain")[0]["up"]


def test_tls_client_on_a_plain_store_fails_cleanly(store, pki):
    hp = hostport(store)
    r = connect_fails(hp, "tls=1", "ca=" + pki.ca)
    assert r["code"] == -2, r
    assert ("TLS handshake with %s failed: " % hp) in r["message"], r
    assert "does not seem to speak TLS" in r["message"], r
    # the store still serves plain clients
    p = Probe()
    try:
        p.ok("connect", hp)
        p.ok("query", "SELECT key FROM system.local")
    finally:
        p.close()


@pytest.fixture
def mtls_front(store, pki):
    f = MutualTlsFront(store.port, pki.both[0], pki.both[1], pki.ca)
    yield f
    f.stop()


def test_mutual_tls_client_certificate(mtls_front, pki):
    hp = mtls_front.hp
    hosts = tls_round_trip(hp, "tls=1", "ca=" + pki.ca, "cert=" + pki.client[0], "key=" + pki.client[1], table="mtls")
    assert len(hosts) == 1 and hosts[0]["up"] and hosts[0]["address"] == hp
    # every connection (control and pool) presented the client certificate; IP addresses are never sent as SNI
    assert len(mtls_front.client_cns) >= 2 and set(mtls_front.client_cns) == {"sluice-client"}, mtls_front.client_cns
    assert set(mtls_front.sni) == {None}, mtls_front.sni
    # without a client certificate the server refuses the session, and the client says so
    r = connect_fails(hp, "tls=1", "ca=" + pki.ca)
    assert r["code"] == -2 and ("TLS handshake with %s failed: " % hp) in r["message"], r
    # (an alert if the server sends one; Python's ssl server just closes, which TLS 1.3 lets happen after the
    # client has finished its side of the handshake)
    assert "alert certificate required" in r["message"] or "require a client certificate?" in r["message"], r
    # a DNS server name is sent as SNI on every connection
    del mtls_front.sni[:]
    tls_round_trip(hp, "tls=1", "ca=" + pki.ca, "cert=" + pki.client[0], "key=" + pki.client[1],
                   "server_name=localhost", table="mtls")
    assert len(mtls_front.sni) >= 2 and set(mtls_front.sni) == {"localhost"}, mtls_front.sni


def shell_at(hp, *args):
    r = subprocess.run([SLUICE_BIN, "cql", "--host", hp] + list(args), capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout, r.stderr


def test_shell_over_tls(tls_store, localhost_store, store, mtls_front, pki, tmp_path):
    q = ["-e", "SELECT key FROM system.local"]
    rc, out, err = shell_at(hostport(tls_store), "--ssl", "--cafile", pki.ca, *q)
    assert rc == 0 and "local" in out and "(1 rows)" in out, err
    # the certificate does not name the host: refused as cqlsh words a connection error, or accepted when told
    hp = hostport(localhost_store)
    rc, out, err = shell_at(hp, "--ssl", "--cafile", pki.ca, *q)
    assert rc == 1 and out == ""
    assert err.startswith("Connection error: ('Unable to connect to any servers', {'%s': " % hp), err
    assert "TLS handshake with %s failed: certificate verify failed: IP address mismatch" % hp in err, err
    rc, out, err = shell_at(hp, "--ssl", "--cafile", pki.ca, "--no-check-hostname", *q)
    assert rc == 0 and "(1 rows)" in out, err
    rc, out, err = shell_at(hp, "--cafile", pki.ca, "--server-name", "localhost", *q)  # implies --ssl
    assert rc == 0 and "(1 rows)" in out, err
    # client certificate
    rc, out, err = shell_at(mtls_front.hp, "--ssl", "--cafile", pki.ca, "--certfile", pki.client[0],
                            "--keyfile", pki.client[1], *q)
    assert rc == 0 and "(1 rows)" in out, err
    # TLS mismatches either way fail with a message, not a hang
    rc, out, err = shell_at(hostport(tls_store), *q)
    assert rc == 1 and "turn TLS on in the client" in err, err
    rc, out, err = shell_at(hostport(store), "--ssl", "--cafile", pki.ca, *q)
    assert rc == 1 and "TLS handshake with %s failed" % hostport(store) in err, err
    missing = str(tmp_path / "nope.pem")
    rc, out, err = shell_at(hostport(tls_store), "--ssl", "--cafile", missing, *q)
    assert rc == 1
    assert err.strip() == "Connection error: cannot read TLS CA file %s: No such file or directory" % missing
