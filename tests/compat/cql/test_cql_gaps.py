"""Issue gaps: token() against the reference Murmur3 vectors, UNPREPARED after a restart (raw frames and the
driver's transparent re-prepare), PER PARTITION LIMIT, DISTINCT paging by key, Overloaded on a full executor queue."""
import socket
import struct

from cassandra.query import SimpleStatement

from conftest import poll

KS = "CREATE KEYSPACE IF NOT EXISTS %s WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"


# ---- raw v4 frames ----

def frame(stream, opcode, body=b""):
    return struct.pack(">BBhBI", 4, 0, stream, opcode, len(body)) + body


def read_exact(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise AssertionError("connection closed after %d of %d bytes" % (len(out), n))
        out += chunk
    return out


def read_frame(sock):
    version, flags, stream, opcode, length = struct.unpack(">BBhBI", read_exact(sock, 9))
    assert version == 0x84, hex(version)
    return stream, opcode, read_exact(sock, length)


def string_map(d):
    b = struct.pack(">H", len(d))
    for k, v in d.items():
        b += struct.pack(">H", len(k)) + k.encode() + struct.pack(">H", len(v)) + v.encode()
    return b


def long_string(s):
    return struct.pack(">I", len(s)) + s.encode()


def raw_connect(store):
    s = socket.create_connection((store.host, store.port), timeout=10)
    s.sendall(frame(0, 0x01, string_map({"CQL_VERSION": "3.0.0"})))
    _, op, _ = read_frame(s)
    assert op == 0x02  # READY
    return s


def raw_prepare(sock, query):
    sock.sendall(frame(1, 0x09, long_string(query)))
    _, op, body = read_frame(sock)
    assert op == 0x08, body
    kind, idlen = struct.unpack(">iH", body[:6])
    assert kind == 4
    return body[6:6 + idlen]


def execute_body(qid, values):
    b = struct.pack(">H", len(qid)) + qid + struct.pack(">HBH", 1, 0x01, len(values))
    for v in values:
        b += struct.pack(">i", len(v)) + v
    return b


def error_of(body):
    code, mlen = struct.unpack(">iH", body[:6])
    return code, body[6:6 + mlen].decode(), body[6 + mlen:]


# ---- token() ----

def test_token_matches_reference_vectors(session):
    """Vectors from the shared reference (cql-drivers.md section 8), computed by the server's token()."""
    session.execute(KS % "tok")
    session.execute("CREATE TABLE IF NOT EXISTS tok.i (k int PRIMARY KEY)")
    session.execute("CREATE TABLE IF NOT EXISTS tok.b (k bigint PRIMARY KEY)")
    session.execute("CREATE TABLE IF NOT EXISTS tok.t (k text PRIMARY KEY)")
    session.execute("CREATE TABLE IF NOT EXISTS tok.bl (k blob PRIMARY KEY)")
    session.execute("CREATE TABLE IF NOT EXISTS tok.c (s text, d int, v int, PRIMARY KEY ((s, d)))")
    session.execute("INSERT INTO tok.i (k) VALUES (1)")
    session.execute("INSERT INTO tok.b (k) VALUES (1)")
    for t in ("a", "abc", "hello world"):
        session.execute("INSERT INTO tok.t (k) VALUES (%s)", (t,))
    session.execute("INSERT INTO tok.bl (k) VALUES (0x80ff01)")
    session.execute("INSERT INTO tok.bl (k) VALUES (0x000102030405060708090a0b0c0d0e0f)")
    session.execute("INSERT INTO tok.c (s, d, v) VALUES ('sensor-1', 20240101, 1)")

    def tok(table, where, *args):
        return session.execute("SELECT token(%s) AS t FROM tok.%s WHERE %s" % (
            "s, d" if table == "c" else "k", table, where), args).one().t

    assert tok("i", "k = 1") == -4069959284402364209
    assert tok("b", "k = 1") == 6292367497774912474
    assert tok("t", "k = %s", "a") == -8839064797231613815
    assert tok("t", "k = %s", "abc") == -5434086359492102041
    assert tok("t", "k = %s", "hello world") == 5998619086395760910
    assert tok("bl", "k = 0x80ff01") == -7090167600805946407
    assert tok("bl", "k = 0x000102030405060708090a0b0c0d0e0f") == 4920504430128807728
    assert tok("c", "s = 'sensor-1' AND d = 20240101") == 6511822321561555761
    # and token-restricted scans agree with the same function
    t = -5434086359492102041
    keys = {r.k for r in session.execute("SELECT k FROM tok.t WHERE token(k) >= %s", (t,))}
    assert keys == {"abc", "hello world"}


# ---- UNPREPARED after a restart ----

def test_unprepared_after_restart_raw_frame(make_store):
    st = make_store()
    c = st.cluster()
    s = c.connect()
    s.execute(KS % "up")
    s.execute("CREATE TABLE up.t (k int PRIMARY KEY, v text)")
    c.shutdown()
    sock = raw_connect(st)
    qid = raw_prepare(sock, "INSERT INTO up.t (k, v) VALUES (?, ?)")
    sock.sendall(frame(2, 0x0A, execute_body(qid, [struct.pack(">i", 1), b"one"])))
    _, op, body = read_frame(sock)
    assert op == 0x08 and struct.unpack(">i", body[:4])[0] == 1  # RESULT Void
    sock.close()
    st.restart()
    sock = raw_connect(st)
    sock.sendall(frame(3, 0x0A, execute_body(qid, [struct.pack(">i", 2), b"two"])))
    stream, op, body = read_frame(sock)
    assert (stream, op) == (3, 0x00)
    code, msg, extra = error_of(body)
    assert code == 0x2500, (hex(code), msg)
    (idlen,) = struct.unpack(">H", extra[:2])
    assert extra[2:2 + idlen] == qid  # the unknown id, so the driver knows what to re-prepare
    # re-preparing the same text in the same keyspace gives the same id, which then executes
    assert raw_prepare(sock, "INSERT INTO up.t (k, v) VALUES (?, ?)") == qid
    sock.sendall(frame(4, 0x0A, execute_body(qid, [struct.pack(">i", 2), b"two"])))
    _, op, body = read_frame(sock)
    assert op == 0x08, error_of(body)
    sock.close()
    c = st.cluster()
    s = c.connect()
    assert sorted((r.k, r.v) for r in s.execute("SELECT k, v FROM up.t")) == [(1, "one"), (2, "two")]
    c.shutdown()


def test_driver_reprepares_transparently_after_restart(make_store):
    st = make_store()
    # reprepare_on_up=False: the driver does not re-prepare when the host comes back, so the first execute after
    # the restart meets UNPREPARED and must re-prepare on that error
    c = st.cluster(reprepare_on_up=False)
    s = c.connect()
    s.execute(KS % "ur")
    s.execute("CREATE TABLE ur.t (k int PRIMARY KEY, v int)")
    ins = s.prepare("INSERT INTO ur.t (k, v) VALUES (?, ?)")
    sel = s.prepare("SELECT v FROM ur.t WHERE k = ?")
    s.execute(ins, (1, 10))
    st.restart()
    poll(lambda: s.execute(ins, (2, 20)) is not None, timeout=60, msg="insert after restart")
    assert s.execute(sel, (2,)).one().v == 20
    assert s.execute(sel, (1,)).one().v == 10
    c.shutdown()


# ---- PER PARTITION LIMIT, DISTINCT paging ----

def test_per_partition_limit(session):
    session.execute(KS % "ppl")
    session.execute("CREATE TABLE IF NOT EXISTS ppl.t (p int, c int, v int, PRIMARY KEY (p, c))")
    for p in range(6):
        for c in range(10):
            session.execute("INSERT INTO ppl.t (p, c, v) VALUES (%s, %s, %s)", (p, c, p * 100 + c))
    rows = list(session.execute("SELECT p, c FROM ppl.t PER PARTITION LIMIT 3"))
    assert len(rows) == 18
    by_p = {}
    for r in rows:
        by_p.setdefault(r.p, []).append(r.c)
    assert by_p == {p: [0, 1, 2] for p in range(6)}
    # across small pages the count per partition carries over
    paged = list(session.execute(SimpleStatement("SELECT p, c FROM ppl.t PER PARTITION LIMIT 3", fetch_size=2)))
    assert sorted((r.p, r.c) for r in paged) == sorted((r.p, r.c) for r in rows)
    # with LIMIT, and on one partition in reverse order
    assert len(list(session.execute("SELECT p, c FROM ppl.t PER PARTITION LIMIT 2 LIMIT 5"))) == 5
    rev = [r.c for r in session.execute("SELECT c FROM ppl.t WHERE p = 4 ORDER BY c DESC PER PARTITION LIMIT 4")]
    assert rev == [9, 8, 7, 6]
    assert session.execute("SELECT count(*) FROM ppl.t PER PARTITION LIMIT 1").one().count == 6
    from cassandra import InvalidRequest
    try:
        session.execute("SELECT p FROM ppl.t PER PARTITION LIMIT 0")
        raise AssertionError("PER PARTITION LIMIT 0 accepted")
    except InvalidRequest:
        pass


def test_distinct_pages_by_partition_key(session):
    session.execute(KS % "dis")
    session.execute("CREATE TABLE IF NOT EXISTS dis.t (p int, c int, s int static, PRIMARY KEY (p, c))")
    for p in range(25):
        for c in range(7):
            session.execute("INSERT INTO dis.t (p, c, s) VALUES (%s, %s, %s)", (p, c, p))
    keys = [r.p for r in session.execute(SimpleStatement("SELECT DISTINCT p, s FROM dis.t", fetch_size=4))]
    assert sorted(keys) == list(range(25))  # every partition once, none repeated across pages
    res = session.execute(SimpleStatement("SELECT DISTINCT p FROM dis.t", fetch_size=4))
    first = list(res.current_rows)
    assert len(first) == 4 and res.paging_state is not None
    # the paging state is a partition key position, not a row count: it names the last partition's key
    assert len(res.paging_state) > 9


# ---- Overloaded ----

def test_overloaded_when_executor_queue_is_full(make_store):
    st = make_store(**{"store.max_queued": 2})
    sock = raw_connect(st)
    n = 60
    q = long_string("SELECT release_version FROM system.local") + struct.pack(">HB", 1, 0)
    sock.sendall(b"".join(frame(10 + i, 0x07, q) for i in range(n)))  # one write: all parsed before any completes
    got = {}
    for _ in range(n):
        stream, op, body = read_frame(sock)
        got[stream] = (op, body)
    assert sorted(got) == [10 + i for i in range(n)]
    overloaded = [s for s, (op, body) in got.items() if op == 0x00 and error_of(body)[0] == 0x1001]
    ok = [s for s, (op, _) in got.items() if op == 0x08]
    assert overloaded and ok and len(overloaded) + len(ok) == n
    # the queue drained: the same connection is served again (a driver's schema load, which pipelines many
    # queries, would itself be shed at max_queued=2, so check with frames sent one at a time)
    for i in range(3):
        sock.sendall(frame(200 + i, 0x07, q))
        stream, op, body = read_frame(sock)
        assert (stream, op) == (200 + i, 0x08), error_of(body) if op == 0 else op
    sock.close()


# ---- conditional UPDATE / DELETE (IF col op value) ----

def test_conditional_update_and_delete(session):
    from cassandra import InvalidRequest
    session.execute(KS % "lwt")
    session.execute("CREATE TABLE IF NOT EXISTS lwt.t (k int, c int, v int, s text, PRIMARY KEY (k, c))")
    session.execute("INSERT INTO lwt.t (k, c, v, s) VALUES (1, 1, 10, 'on')")
    r = session.execute("UPDATE lwt.t SET v = 11 WHERE k = 1 AND c = 1 IF v = 10")
    assert r.was_applied and r.one()[0] is True
    r = session.execute("UPDATE lwt.t SET v = 99 WHERE k = 1 AND c = 1 IF v = 10")  # no longer true
    assert not r.was_applied
    row = r.one()
    assert list(row._fields) == ["applied", "v"] and row.v == 11  # the current value comes back
    assert session.execute("SELECT v FROM lwt.t WHERE k = 1 AND c = 1").one().v == 11
    # several conditions, ordering operators, IN, != and null as a value
    assert session.execute("UPDATE lwt.t SET v = 12 WHERE k = 1 AND c = 1 IF v > 10 AND s = 'on'").was_applied
    assert not session.execute("UPDATE lwt.t SET v = 13 WHERE k = 1 AND c = 1 IF v < 12").was_applied
    assert session.execute("UPDATE lwt.t SET v = 13 WHERE k = 1 AND c = 1 IF v IN (1, 12)").was_applied
    assert session.execute("UPDATE lwt.t SET s = null WHERE k = 1 AND c = 1 IF s != 'off'").was_applied
    assert session.execute("UPDATE lwt.t SET v = 14 WHERE k = 1 AND c = 1 IF s = null").was_applied
    assert not session.execute("UPDATE lwt.t SET v = 15 WHERE k = 1 AND c = 1 IF s > 'a'").was_applied  # null: false
    # no row: every column is null
    r = session.execute("UPDATE lwt.t SET v = 1 WHERE k = 2 AND c = 2 IF v = 1")
    assert not r.was_applied and r.one().v is None
    assert session.execute("SELECT * FROM lwt.t WHERE k = 2").one() is None
    # prepared, with the condition's value bound
    upd = session.prepare("UPDATE lwt.t SET v = ? WHERE k = ? AND c = ? IF v = ?")
    assert not session.execute(upd, (20, 1, 1, 999)).was_applied
    assert session.execute(upd, (20, 1, 1, 14)).was_applied
    # conditional delete
    assert not session.execute("DELETE FROM lwt.t WHERE k = 1 AND c = 1 IF v = 14").was_applied
    assert session.execute("DELETE FROM lwt.t WHERE k = 1 AND c = 1 IF v = 20").was_applied
    assert session.execute("SELECT * FROM lwt.t WHERE k = 1").one() is None
    # refused: a condition on a key column, and without the whole primary key
    for q in ("UPDATE lwt.t SET v = 1 WHERE k = 1 AND c = 1 IF c = 1",
              "UPDATE lwt.t SET v = 1 WHERE k = 1 IF v = 1"):
        try:
            session.execute(q)
            raise AssertionError("accepted: " + q)
        except InvalidRequest:
            pass


# ---- counters ----

def test_counters(session, make_store):
    from cassandra import InvalidRequest
    from cassandra.query import BatchStatement, BatchType
    session.execute(KS % "cnt")
    session.execute("CREATE TABLE IF NOT EXISTS cnt.page_views (page text, day date, views counter, clicks counter, "
                    "PRIMARY KEY (page, day))")
    for _ in range(5):
        session.execute("UPDATE cnt.page_views SET views = views + 1 WHERE page = 'home' AND day = '2024-05-01'")
    session.execute("UPDATE cnt.page_views SET views = views - 2, clicks = clicks + 7 WHERE page = 'home' "
                    "AND day = '2024-05-01'")
    inc = session.prepare("UPDATE cnt.page_views SET views = views + ? WHERE page = ? AND day = ?")
    import datetime
    for n in (10, 20, -5):
        session.execute(inc, (n, "home", datetime.date(2024, 5, 1)))
    row = session.execute("SELECT views, clicks FROM cnt.page_views WHERE page = 'home' AND day = '2024-05-01'").one()
    assert (row.views, row.clicks) == (5 - 2 + 25, 7)
    # a COUNTER batch; counters elsewhere are refused
    b = BatchStatement(batch_type=BatchType.COUNTER)
    b.add(inc, (100, "docs", datetime.date(2024, 5, 2)))
    b.add(inc, (1, "docs", datetime.date(2024, 5, 2)))
    session.execute(b)
    assert session.execute("SELECT views FROM cnt.page_views WHERE page = 'docs'").one().views == 101
    # deleting a counter removes every increment before it
    session.execute("DELETE views FROM cnt.page_views WHERE page = 'home' AND day = '2024-05-01'")
    row = session.execute("SELECT views, clicks FROM cnt.page_views WHERE page = 'home' AND day = '2024-05-01'").one()
    assert (row.views, row.clicks) == (None, 7)
    for bad in ("INSERT INTO cnt.page_views (page, day, views) VALUES ('x', '2024-05-01', 1)",
                "UPDATE cnt.page_views SET views = 3 WHERE page = 'x' AND day = '2024-05-01'",
                "UPDATE cnt.page_views USING TTL 10 SET views = views + 1 WHERE page = 'x' AND day = '2024-05-01'",
                "CREATE TABLE cnt.mixed (k int PRIMARY KEY, c counter, v text)",
                "BEGIN UNLOGGED BATCH UPDATE cnt.page_views SET views = views + 1 WHERE page = 'x' AND "
                "day = '2024-05-01'; APPLY BATCH"):
        try:
            session.execute(bad)
            raise AssertionError("accepted: " + bad)
        except InvalidRequest:
            pass
    # many increments (merged by RocksDB, flushed and compacted) still add up, and survive a restart
    st = make_store()
    c = st.cluster()
    s2 = c.connect()
    s2.execute(KS % "cnt2")
    s2.execute("CREATE TABLE cnt2.t (k int PRIMARY KEY, n counter)")
    up = s2.prepare("UPDATE cnt2.t SET n = n + ? WHERE k = ?")
    from cassandra.concurrent import execute_concurrent_with_args
    execute_concurrent_with_args(s2, up, [(i % 7 + 1, i % 3) for i in range(3000)], concurrency=32)
    expect = {k: sum(i % 7 + 1 for i in range(3000) if i % 3 == k) for k in range(3)}
    assert {r.k: r.n for r in s2.execute("SELECT k, n FROM cnt2.t")} == expect
    c.shutdown()
    st.stop()
    st.start()
    c = st.cluster()
    s2 = c.connect()
    assert {r.k: r.n for r in s2.execute("SELECT k, n FROM cnt2.t")} == expect
    c.shutdown()


def test_writetime_and_ttl_refused_where_cassandra_refuses_them(session):
    from cassandra import InvalidRequest
    session.execute(KS % "wtr")
    session.execute("CREATE TABLE IF NOT EXISTS wtr.t (k int PRIMARY KEY, tags set<text>, f frozen<list<int>>, v int)")
    session.execute("INSERT INTO wtr.t (k, tags, f, v) VALUES (1, {'a'}, [1, 2], 3)")
    assert session.execute("SELECT writetime(f), ttl(v) FROM wtr.t WHERE k = 1").one()[0] > 0  # frozen: one cell
    for q in ("SELECT writetime(tags) FROM wtr.t", "SELECT ttl(tags) FROM wtr.t"):
        try:
            session.execute(q)
            raise AssertionError("accepted: " + q)
        except InvalidRequest as e:
            assert "non-frozen collection" in str(e)


def test_tojson_and_fromjson(session):
    import json
    session.execute(KS % "fj")
    session.execute("CREATE TABLE IF NOT EXISTS fj.t (k int PRIMARY KEY, tags set<text>, m map<text, int>, "
                    "ts timestamp, v double, name text)")
    session.execute("INSERT INTO fj.t (k, tags, m, ts, v, name) VALUES (1, fromJson('[\"b\", \"a\"]'), "
                    "fromJson('{\"x\": 1, \"y\": 2}'), fromJson('\"2024-05-01 10:00:00.000Z\"'), "
                    "fromJson('2.5'), fromJson('\"hi\"'))")
    r = session.execute("SELECT tags, m, v, name FROM fj.t WHERE k = 1").one()
    assert r.tags == {"a", "b"} and r.m == {"x": 1, "y": 2} and r.v == 2.5 and r.name == "hi"
    session.execute("UPDATE fj.t SET v = fromJson('7') WHERE k = 1")
    r = session.execute("SELECT toJson(tags), toJson(m), toJson(v), toJson(name), toJson(k) FROM fj.t WHERE k = 1").one()
    assert json.loads(r[0]) == ["a", "b"] and json.loads(r[1]) == {"x": 1, "y": 2}
    assert json.loads(r[2]) == 7.0 and json.loads(r[3]) == "hi" and json.loads(r[4]) == 1
    assert list(r._fields)[0].startswith("system_tojson")  # the driver's name for system.tojson(tags)
    ins = session.prepare("INSERT INTO fj.t (k, m) VALUES (?, fromJson(?))")  # the marker is the JSON text
    session.execute(ins, (4, '{"z": 26}'))
    assert session.execute("SELECT m FROM fj.t WHERE k = 4").one().m == {"z": 26}
    session.execute("INSERT INTO fj.t (k) VALUES (2)")
    assert session.execute("SELECT toJson(v) FROM fj.t WHERE k = 2").one()[0] == "null"
    from cassandra import InvalidRequest
    try:
        session.execute("INSERT INTO fj.t (k, v) VALUES (3, fromJson('\"not a number\"'))")
        raise AssertionError("accepted a string as a double")
    except InvalidRequest:
        pass
