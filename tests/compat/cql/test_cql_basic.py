"""The DataStax Python driver (Debian python3-cassandra 3.25) against `sluice store`, default settings."""
import datetime
import decimal
import os
import socket
import struct
import uuid

import pytest
from cassandra import AlreadyExists, InvalidRequest
from cassandra.protocol import SyntaxException
from cassandra.query import BatchStatement, SimpleStatement
from cassandra.util import Date, Time

from conftest import poll


def test_connect_with_default_settings(store):
    c = store.cluster()
    try:
        s = c.connect()
        assert c.protocol_version == 4
        local = s.execute("SELECT * FROM system.local WHERE key='local'").one()
        assert local.partitioner == "org.apache.cassandra.dht.Murmur3Partitioner"
        assert local.release_version.startswith("4.0")
        assert local.schema_version is not None
        assert "system" in c.metadata.keyspaces
        assert list(s.execute("SELECT * FROM system.peers_v2")) == []
        assert list(s.execute("SELECT * FROM system.peers")) == []
        assert len(c.metadata.all_hosts()) == 1
    finally:
        c.shutdown()


def _frame(version, stream, opcode, body=b""):
    return struct.pack(">BBhBi", version, 0, stream, opcode, len(body)) + body


def _read_frame(sock):
    hdr = b""
    while len(hdr) < 9:
        chunk = sock.recv(9 - len(hdr))
        assert chunk, "connection closed before a response"
        hdr += chunk
    version, flags, stream, opcode, length = struct.unpack(">BBhBi", hdr)
    body = b""
    while len(body) < length:
        chunk = sock.recv(length - len(body))
        assert chunk
        body += chunk
    return version, stream, opcode, body


@pytest.mark.parametrize("version", [5, 0x42, 6])
def test_newer_protocol_refused_with_downgrade_message(store, version):
    with socket.create_connection((store.host, store.port), timeout=10) as s:
        s.sendall(_frame(version, 7, 0x05))
        v, stream, opcode, body = _read_frame(s)
        assert (v, stream, opcode) == (0x84, 7, 0x00)
        code, n = struct.unpack(">ih", body[:6])
        assert code == 0x000A
        assert "Invalid or unsupported protocol version" in body[6:6 + n].decode()


def test_options_supported(store):
    with socket.create_connection((store.host, store.port), timeout=10) as s:
        s.sendall(_frame(4, 1, 0x05))
        v, stream, opcode, body = _read_frame(s)
        assert (v, stream, opcode) == (0x84, 1, 0x06)
        assert b"CQL_VERSION" in body and b"COMPRESSION" in body


def test_garbage_frame_gets_protocol_error_and_server_survives(store):
    with socket.create_connection((store.host, store.port), timeout=10) as s:
        s.sendall(_frame(4, 3, 0x01, b"\xff\xff"))  # STARTUP with a truncated map
        v, stream, opcode, body = _read_frame(s)
        assert opcode == 0 and struct.unpack(">i", body[:4])[0] == 0x000A
    with socket.create_connection((store.host, store.port), timeout=10) as s:
        s.sendall(_frame(4, 3, 0x07, b"\x00\x00\x00\x05abc"))  # QUERY before STARTUP
        v, stream, opcode, body = _read_frame(s)
        assert opcode == 0
    c = store.cluster()
    c.connect().execute("SELECT key FROM system.local")
    c.shutdown()


def test_seed_003_created_users(session, cluster):
    session.execute("CREATE KEYSPACE IF NOT EXISTS spark_streams WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': '1'};")
    session.execute("""
        CREATE TABLE IF NOT EXISTS spark_streams.created_users (
            id UUID PRIMARY KEY,
            first_name TEXT,
            last_name TEXT,
            gender TEXT,
            address TEXT,
            post_code TEXT,
            email TEXT,
            username TEXT,
            registered_date TEXT,
            phone TEXT,
            picture TEXT);
    """)
    # the seed runs the DDL on every start: IF NOT EXISTS must be a no-op
    session.execute("CREATE TABLE IF NOT EXISTS spark_streams.created_users (id UUID PRIMARY KEY, first_name TEXT)")
    assert "created_users" in cluster.metadata.keyspaces["spark_streams"].tables
    uid = uuid.uuid4()
    row = ("Ann", "O'Neil", "female", "1 Main St, Springfield", "12345", "ann@example.com", "ann",
           "2020-01-01T00:00:00.000Z", "555-1234", "https://example.com/p.jpg")
    session.execute("""
        INSERT INTO spark_streams.created_users(id, first_name, last_name, gender, address,
            post_code, email, username, registered_date, phone, picture)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
    """, (uid,) + row)
    got = session.execute("SELECT * FROM spark_streams.created_users WHERE id = %s", (uid,)).one()
    assert got.id == uid
    assert (got.first_name, got.last_name, got.gender, got.address, got.post_code, got.email, got.username,
            got.registered_date, got.phone, got.picture) == row
    assert session.execute("SELECT count(*) FROM spark_streams.created_users").one()[0] >= 1


def test_already_exists_and_errors(session):
    session.execute("CREATE KEYSPACE IF NOT EXISTS errs WITH replication = {'class': 'SimpleStrategy', "
                    "'replication_factor': 1}")
    with pytest.raises(AlreadyExists):
        session.execute("CREATE KEYSPACE errs WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
    session.execute("CREATE TABLE IF NOT EXISTS errs.t (k int PRIMARY KEY, v text)")
    with pytest.raises(AlreadyExists):
        session.execute("CREATE TABLE errs.t (k int PRIMARY KEY, v text)")
    with pytest.raises(SyntaxException):
        session.execute("SELEKT * FROM errs.t")
    with pytest.raises(InvalidRequest):
        session.execute("SELECT * FROM errs.nope")
    with pytest.raises(InvalidRequest):
        session.execute("SELECT * FROM errs.t WHERE v = 'x'")  # needs ALLOW FILTERING
    with pytest.raises(InvalidRequest):
        session.execute("INSERT INTO errs.t (v) VALUES ('no key')")
    with pytest.raises(InvalidRequest):
        session.execute("INSERT INTO errs.t (k, v) VALUES ('notanint', 'x')")
    session.execute("INSERT INTO errs.t (k, v) VALUES (1, 'x')")
    assert session.execute("SELECT v FROM errs.t WHERE v = 'x' ALLOW FILTERING").one().v == "x"


@pytest.fixture(scope="module")
def ks(session):
    session.execute("CREATE KEYSPACE IF NOT EXISTS iot WITH replication = {'class': 'SimpleStrategy', "
                    "'replication_factor': 1}")
    session.set_keyspace("iot")
    return "iot"


def test_clustering_range_and_order(session, ks):
    session.execute("CREATE TABLE readings (sensor text, ts timestamp, value double, "
                    "PRIMARY KEY ((sensor), ts)) WITH CLUSTERING ORDER BY (ts DESC)")
    base = datetime.datetime(2024, 1, 1)
    ins = session.prepare("INSERT INTO readings (sensor, ts, value) VALUES (?, ?, ?)")
    for i in range(10):
        session.execute(ins, ("s1", base + datetime.timedelta(minutes=i), float(i)))
        session.execute(ins, ("s2", base + datetime.timedelta(minutes=i), float(100 + i)))
    rows = list(session.execute("SELECT value FROM readings WHERE sensor = 's1'"))
    assert [r.value for r in rows] == [float(i) for i in range(9, -1, -1)]  # DESC clustering
    rows = list(session.execute("SELECT value FROM readings WHERE sensor = 's1' ORDER BY ts ASC"))
    assert [r.value for r in rows] == [float(i) for i in range(10)]
    sel = session.prepare("SELECT value FROM readings WHERE sensor = ? AND ts >= ? AND ts < ?")
    rows = list(session.execute(sel, ("s2", base + datetime.timedelta(minutes=3), base + datetime.timedelta(minutes=6))))
    assert [r.value for r in rows] == [105.0, 104.0, 103.0]
    rows = list(session.execute("SELECT value FROM readings WHERE sensor IN ('s1', 's2') AND ts > %s",
                                (base + datetime.timedelta(minutes=8),)))
    assert sorted(r.value for r in rows) == [9.0, 109.0]
    assert session.execute("SELECT count(*) FROM readings WHERE sensor = 's2'").one().count == 10
    rows = list(session.execute("SELECT value FROM readings WHERE sensor = 's1' LIMIT 3"))
    assert [r.value for r in rows] == [9.0, 8.0, 7.0]


def test_paging_across_pages(session, ks):
    session.execute("CREATE TABLE paged (p int, c int, v text, PRIMARY KEY (p, c))")
    ins = session.prepare("INSERT INTO paged (p, c, v) VALUES (?, ?, ?)")
    for p in range(3):
        for c in range(120):
            session.execute(ins, (p, c, "v%d" % c))
    st = SimpleStatement("SELECT p, c FROM paged WHERE p = 1", fetch_size=50)
    rs = session.execute(st)
    assert rs.has_more_pages
    got = [(r.p, r.c) for r in rs]
    assert got == [(1, c) for c in range(120)]
    # a full scan across partitions, in token order, pages of 70
    rs = session.execute(SimpleStatement("SELECT p, c FROM paged", fetch_size=70))
    got = [(r.p, r.c) for r in rs]
    assert len(got) == 360 and len(set(got)) == 360
    tokens = [r[0] for r in session.execute("SELECT token(p) FROM paged")]
    assert tokens == sorted(tokens)
    # LIMIT spanning pages
    rs = session.execute(SimpleStatement("SELECT c FROM paged WHERE p = 2 LIMIT 75", fetch_size=20))
    assert [r.c for r in rs] == list(range(75))


def test_prepared_bind_metadata_and_routing(session, ks, cluster):
    session.execute("CREATE TABLE kv (k text, n int, v text, PRIMARY KEY ((k, n)))")
    ps = session.prepare("INSERT INTO kv (k, n, v) VALUES (?, ?, ?)")
    assert [c.name for c in ps.column_metadata] == ["k", "n", "v"]
    assert ps.routing_key_indexes == [0, 1]
    session.execute(ps, ("sensor-1", 20240101, "x"))
    sel = session.prepare("SELECT v, token(k, n) AS t FROM kv WHERE k = ? AND n = ?")
    row = session.execute(sel, ("sensor-1", 20240101)).one()
    assert row.v == "x"
    assert row.t == 6511822321561555761  # Murmur3 of the composite routing key (reference vector)
    # named values
    session.execute(ps, {"k": "a", "n": 1, "v": "named"})
    assert session.execute(sel, {"k": "a", "n": 1}).one().v == "named"


def test_types_round_trip(session, ks):
    session.execute("""CREATE TABLE types (k int PRIMARY KEY, b bigint, bo boolean, d double, f float,
        ts timestamp, dt date, tm time, ip inet, bl blob, u uuid, tu timeuuid, l list<int>, s set<text>,
        m map<text, int>, si smallint, ti tinyint, de decimal, vi varint, a ascii, tx text, fl frozen<list<text>>)""")
    now = datetime.datetime(2024, 5, 6, 7, 8, 9, 123000)
    tu = uuid.uuid1()
    vals = (1, 2**40, True, 1.5, 2.5, now, Date(datetime.date(2024, 2, 29)), Time(datetime.time(12, 34, 56, 789)),
            "10.1.2.3", b"\x00\x01\xff", uuid.uuid4(), tu, [3, 1, 2], {"b", "a"}, {"x": 1, "y": 2}, -5, 7,
            decimal.Decimal("123.456"), 12345678901234, "ascii", "tëxt ✓", ["q", "r"])
    cols = "k, b, bo, d, f, ts, dt, tm, ip, bl, u, tu, l, s, m, si, ti, de, vi, a, tx, fl"
    ps = session.prepare("INSERT INTO types (%s) VALUES (%s)" % (cols, ", ".join("?" * len(vals))))
    session.execute(ps, vals)
    # the same through client-side interpolated literals
    session.execute("INSERT INTO types (%s) VALUES (%s)" % (cols, ", ".join(["%s"] * len(vals))), (2,) + vals[1:])
    for k in (1, 2):
        r = session.execute("SELECT * FROM types WHERE k = %s", (k,)).one()
        assert r.b == 2**40 and r.bo is True and r.d == 1.5 and r.f == 2.5
        assert r.ts == now
        assert r.dt == Date(datetime.date(2024, 2, 29)) and r.tm == Time(datetime.time(12, 34, 56, 789))
        assert r.ip == "10.1.2.3" and r.bl == b"\x00\x01\xff" and r.u == vals[10] and r.tu == tu
        assert r.l == [3, 1, 2] and r.s == {"a", "b"} and r.m == {"x": 1, "y": 2}
        assert r.si == -5 and r.ti == 7 and r.de == decimal.Decimal("123.456") and r.vi == 12345678901234
        assert r.a == "ascii" and r.tx == "tëxt ✓" and r.fl == ["q", "r"]
    session.execute("INSERT INTO types (k, tx) VALUES (3, null)")
    r = session.execute("SELECT k, tx, l FROM types WHERE k = 3").one()
    assert r.k == 3 and r.tx is None and r.l is None


def test_update_delete_ttl_writetime(session, ks):
    session.execute("CREATE TABLE ud (k int, c int, v text, w int, PRIMARY KEY (k, c))")
    session.execute("INSERT INTO ud (k, c, v, w) VALUES (1, 1, 'a', 10)")
    session.execute("UPDATE ud SET v = 'b' WHERE k = 1 AND c = 1")
    assert session.execute("SELECT v, w FROM ud WHERE k = 1 AND c = 1").one() == ("b", 10)
    session.execute("UPDATE ud SET v = 'c' WHERE k = 1 AND c = 2")  # upsert without a row marker
    assert session.execute("SELECT v FROM ud WHERE k = 1 AND c = 2").one().v == "c"
    session.execute("DELETE v FROM ud WHERE k = 1 AND c = 2")  # last cell gone: the row is gone
    assert session.execute("SELECT * FROM ud WHERE k = 1 AND c = 2").one() is None
    session.execute("DELETE FROM ud WHERE k = 1 AND c = 1")
    assert session.execute("SELECT * FROM ud WHERE k = 1").one() is None
    session.execute("INSERT INTO ud (k, c, v) VALUES (2, 1, 'ttl') USING TTL 1000 AND TIMESTAMP 1234567")
    r = session.execute("SELECT ttl(v), writetime(v) FROM ud WHERE k = 2 AND c = 1").one()
    assert 990 <= r[0] <= 1000 and r[1] == 1234567
    # an older write does not win over a newer one (last write wins per cell)
    session.execute("INSERT INTO ud (k, c, v) VALUES (2, 1, 'older') USING TIMESTAMP 1000")
    assert session.execute("SELECT v FROM ud WHERE k = 2 AND c = 1").one().v == "ttl"
    # a write older than a row tombstone stays deleted
    session.execute("DELETE FROM ud USING TIMESTAMP 5000000 WHERE k = 3 AND c = 1")
    session.execute("INSERT INTO ud (k, c, v) VALUES (3, 1, 'x') USING TIMESTAMP 4000000")
    assert session.execute("SELECT * FROM ud WHERE k = 3").one() is None
    # expiry
    session.execute("INSERT INTO ud (k, c, v) VALUES (4, 1, 'gone') USING TTL 1")
    poll(lambda: session.execute("SELECT * FROM ud WHERE k = 4").one() is None, 10, msg="TTL expiry")


def test_batch_and_lwt(session, ks):
    session.execute("CREATE TABLE bt (k int, c int, v text, PRIMARY KEY (k, c))")
    b = BatchStatement()
    ins = session.prepare("INSERT INTO bt (k, c, v) VALUES (?, ?, ?)")
    for i in range(5):
        b.add(ins, (1, i, "v%d" % i))
    b.add(SimpleStatement("UPDATE bt SET v = 'u' WHERE k = 1 AND c = 0"))
    session.execute(b)
    rows = list(session.execute("SELECT c, v FROM bt WHERE k = 1"))
    assert [r.c for r in rows] == list(range(5))
    session.execute("BEGIN BATCH INSERT INTO bt (k, c, v) VALUES (2, 1, 'x'); "
                    "INSERT INTO bt (k, c, v) VALUES (2, 2, 'y'); APPLY BATCH")
    assert session.execute("SELECT count(*) FROM bt WHERE k = 2").one().count == 2
    session.execute("BEGIN BATCH APPLY BATCH")
    r = session.execute("INSERT INTO bt (k, c, v) VALUES (9, 9, 'first') IF NOT EXISTS")
    assert r.was_applied
    r = session.execute("INSERT INTO bt (k, c, v) VALUES (9, 9, 'second') IF NOT EXISTS")
    assert not r.was_applied
    assert session.execute("SELECT v FROM bt WHERE k = 9 AND c = 9").one().v == "first"


def test_schema_is_persisted_and_data_survives_restart(make_store):
    st = make_store()
    c = st.cluster()
    s = c.connect()
    s.execute("CREATE KEYSPACE p WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
    s.execute("CREATE TABLE p.t (k int, c int, v text, PRIMARY KEY (k, c))")
    for i in range(20):
        s.execute("INSERT INTO p.t (k, c, v) VALUES (%s, %s, %s)", (i % 3, i, "v%d" % i))
    c.shutdown()
    st.restart()
    c = st.cluster()
    s = c.connect()
    assert "t" in c.metadata.keyspaces["p"].tables
    assert s.execute("SELECT count(*) FROM p.t").one().count == 20
    assert s.execute("SELECT v FROM p.t WHERE k = 1 AND c = 7").one().v == "v7"
    c.shutdown()


def test_kill9_keeps_acknowledged_writes(make_store):
    st = make_store()
    c = st.cluster()
    s = c.connect()
    s.execute("CREATE KEYSPACE d WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
    s.execute("CREATE TABLE d.t (k int PRIMARY KEY, v int)")
    ps = s.prepare("INSERT INTO d.t (k, v) VALUES (?, ?)")
    for i in range(100):
        s.execute(ps, (i, i * i))
    c.shutdown()
    st.kill9()
    st.start(st.port)
    c = st.cluster()
    s = c.connect()
    assert s.execute("SELECT count(*) FROM d.t").one().count == 100
    c.shutdown()


def test_lz4_and_snappy_compression(store, session):
    session.execute("CREATE KEYSPACE IF NOT EXISTS comp WITH replication = {'class': 'SimpleStrategy', "
                    "'replication_factor': 1}")
    session.execute("CREATE TABLE IF NOT EXISTS comp.t (k int PRIMARY KEY, v text)")
    for algo in ("lz4", "snappy"):
        c = store.cluster(compression=algo)
        s = c.connect()
        big = "z" * 50000
        s.execute("INSERT INTO comp.t (k, v) VALUES (%s, %s)", (1, big))
        assert s.execute("SELECT v FROM comp.t WHERE k = 1").one().v == big
        c.shutdown()


def test_schema_change_event_reaches_other_sessions(store):
    c1, c2 = store.cluster(), store.cluster()
    try:
        s1 = c1.connect()
        c2.connect()
        s1.execute("CREATE KEYSPACE ev WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
        poll(lambda: "ev" in c2.metadata.keyspaces, 15, msg="SCHEMA_CHANGE seen by the other cluster")
        s1.execute("CREATE TABLE ev.t (k int PRIMARY KEY)")
        poll(lambda: "t" in c2.metadata.keyspaces["ev"].tables, 15, msg="table in the other cluster's metadata")
        s1.execute("DROP TABLE ev.t")
        s1.execute("DROP KEYSPACE ev")
        poll(lambda: "ev" not in c2.metadata.keyspaces, 15, msg="keyspace drop seen")
    finally:
        c1.shutdown()
        c2.shutdown()


def test_cqlengine_sync_table_and_model(store):
    """cqlengine (the driver's object mapper, used by the IoT_instance seed) creates and uses a table."""
    os.environ.setdefault("CQLENG_ALLOW_SCHEMA_MANAGEMENT", "1")
    from cassandra.cqlengine import columns, connection, management
    from cassandra.cqlengine.models import Model

    class IoTInstance(Model):
        __keyspace__ = "cqle"
        __table_name__ = "iot_instance"
        id = columns.UUID(primary_key=True, default=uuid.uuid4)
        ts = columns.DateTime(primary_key=True, clustering_order="DESC")
        mileage = columns.Double()
        fuel_level = columns.Float()
        speed = columns.Integer()

    connection.setup([store.host], "cqle", port=store.port, protocol_version=4)
    try:
        management.create_keyspace_simple("cqle", 1)
        management.sync_table(IoTInstance)
        management.sync_table(IoTInstance)  # idempotent
        dev = uuid.uuid4()
        t0 = datetime.datetime(2024, 1, 1, 12, 0, 0)
        for i in range(3):
            IoTInstance.create(id=dev, ts=t0 + datetime.timedelta(seconds=i), mileage=1.5 * i, fuel_level=0.5,
                               speed=i)
        rows = list(IoTInstance.objects(id=dev))
        assert [r.speed for r in rows] == [2, 1, 0]
        assert IoTInstance.objects(id=dev).count() == 3
    finally:
        connection.unregister_connection("default")
