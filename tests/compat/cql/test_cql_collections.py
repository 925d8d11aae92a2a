"""Store issue, part 3: non-frozen collections with element cells (list/set/map element updates, per-element
timestamps and TTLs, collection tombstones on overwrite), table WITH options echoed in system_schema, ALTER TABLE
ADD/DROP with dropped_columns, varint/decimal clustering order, and the duration type."""
import collections
import decimal

import pytest
from cassandra import InvalidRequest
from cassandra.util import Duration

from conftest import poll

KS = "CREATE KEYSPACE IF NOT EXISTS %s WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"


@pytest.fixture(scope="module")
def cks(session):
    session.execute(KS % "colls")
    session.set_keyspace("colls")
    return "colls"


def one(session, q, *args):
    return session.execute(q, args or None).one()


def test_list_append_prepend_remove_and_index(session, cks):
    session.execute("CREATE TABLE li (k int PRIMARY KEY, l list<int>, t text)")
    session.execute("INSERT INTO li (k, l) VALUES (1, [1, 2])")
    session.execute("UPDATE li SET l = l + [3, 4] WHERE k = 1")
    session.execute("UPDATE li SET l = [0, -1] + l WHERE k = 1")
    assert one(session, "SELECT l FROM li WHERE k = 1").l == [0, -1, 1, 2, 3, 4]
    session.execute("UPDATE li SET l = [-2] + l WHERE k = 1")  # a later prepend goes first
    session.execute("UPDATE li SET l = l - [2, 4, 99] WHERE k = 1")
    assert one(session, "SELECT l FROM li WHERE k = 1").l == [-2, 0, -1, 1, 3]
    session.execute("UPDATE li SET l[1] = 10 WHERE k = 1")
    session.execute("DELETE l[0] FROM li WHERE k = 1")
    assert one(session, "SELECT l FROM li WHERE k = 1").l == [10, -1, 1, 3]
    with pytest.raises(InvalidRequest, match="out of bound"):
        session.execute("UPDATE li SET l[7] = 1 WHERE k = 1")
    # prepared, with bound lists
    app = session.prepare("UPDATE li SET l = l + ? WHERE k = ?")
    pre = session.prepare("UPDATE li SET l = ? + l WHERE k = ?")
    session.execute(app, ([5, 6], 1))
    session.execute(pre, ([7], 1))
    assert one(session, "SELECT l FROM li WHERE k = 1").l == [7, 10, -1, 1, 3, 5, 6]
    # an overwrite shadows every older element; appending to a missing row creates it
    session.execute("UPDATE li SET l = [42] WHERE k = 1")
    assert one(session, "SELECT l FROM li WHERE k = 1").l == [42]
    session.execute("UPDATE li SET l = l + [1] WHERE k = 2")
    assert one(session, "SELECT k, l FROM li WHERE k = 2").l == [1]
    # removing every element reads as null
    session.execute("UPDATE li SET l = l - [1] WHERE k = 2")
    assert one(session, "SELECT l FROM li WHERE k = 2") is None  # no row marker (UPDATE), no cells: no row
    session.execute("UPDATE li SET l = [] WHERE k = 1")
    r = one(session, "SELECT k, l FROM li WHERE k = 1")
    assert r.k == 1 and r.l is None


def test_set_add_remove_sorted(session, cks):
    session.execute("CREATE TABLE se (k int PRIMARY KEY, s set<text>, n set<int>)")
    session.execute("INSERT INTO se (k, s, n) VALUES (1, {'m', 'b'}, {5, -3})")
    session.execute("UPDATE se SET s = s + {'a', 'z', 'b'}, n = n + {-100, 0, 100000} WHERE k = 1")
    r = one(session, "SELECT s, n FROM se WHERE k = 1")
    assert list(r.s) == ["a", "b", "m", "z"]
    assert list(r.n) == [-100, -3, 0, 5, 100000]  # int comparator order, not byte order
    session.execute("UPDATE se SET s = s - {'b', 'nope'} WHERE k = 1")
    assert list(one(session, "SELECT s FROM se WHERE k = 1").s) == ["a", "m", "z"]
    session.execute(session.prepare("UPDATE se SET s = s + ? WHERE k = ?"), ({"c"}, 1))
    assert list(one(session, "SELECT s FROM se WHERE k = 1").s) == ["a", "c", "m", "z"]
    session.execute("DELETE s FROM se WHERE k = 1")
    r = one(session, "SELECT s, n FROM se WHERE k = 1")
    assert r.s is None and list(r.n) == [-100, -3, 0, 5, 100000]
    session.execute("UPDATE se SET s = {'only'} WHERE k = 1")
    assert list(one(session, "SELECT s FROM se WHERE k = 1").s) == ["only"]


def test_map_put_element_delete(session, cks):
    session.execute("CREATE TABLE ma (k int, c int, m map<text, int>, PRIMARY KEY (k, c))")
    session.execute("INSERT INTO ma (k, c, m) VALUES (1, 1, {'b': 2, 'a': 1})")
    session.execute("UPDATE ma SET m = m + {'c': 3, 'a': 10} WHERE k = 1 AND c = 1")
    session.execute("UPDATE ma SET m['d'] = 4 WHERE k = 1 AND c = 1")
    session.execute(session.prepare("UPDATE ma SET m[?] = ? WHERE k = ? AND c = ?"), ("e", 5, 1, 1))
    assert dict(one(session, "SELECT m FROM ma WHERE k = 1 AND c = 1").m) == {"a": 10, "b": 2, "c": 3, "d": 4, "e": 5}
    session.execute("DELETE m['b'] FROM ma WHERE k = 1 AND c = 1")
    session.execute(session.prepare("DELETE m[?] FROM ma WHERE k = ? AND c = ?"), ("e", 1, 1))
    session.execute("UPDATE ma SET m = m - {'c'} WHERE k = 1 AND c = 1")
    session.execute("UPDATE ma SET m['d'] = null WHERE k = 1 AND c = 1")
    r = one(session, "SELECT m FROM ma WHERE k = 1 AND c = 1")
    assert list(r.m.items()) == [("a", 10)]
    session.execute("INSERT INTO ma (k, c, m) VALUES (1, 1, {'z': 26})")  # INSERT replaces the collection
    assert dict(one(session, "SELECT m FROM ma WHERE k = 1 AND c = 1").m) == {"z": 26}
    session.execute("DELETE m FROM ma WHERE k = 1 AND c = 1")
    r = one(session, "SELECT k, m FROM ma WHERE k = 1 AND c = 1")
    assert r.k == 1 and r.m is None  # the row marker of the INSERT keeps the row


def test_elements_have_their_own_timestamps_and_ttls(session, cks):
    session.execute("CREATE TABLE el (k int PRIMARY KEY, m map<int, text>, s set<int>)")
    session.execute("UPDATE el USING TIMESTAMP 1000 SET m[1] = 'old' WHERE k = 1")
    session.execute("UPDATE el USING TIMESTAMP 3000 SET m[2] = 'new' WHERE k = 1")
    session.execute("UPDATE el USING TIMESTAMP 2000 SET m[1] = 'mid', m[2] = 'lost' WHERE k = 1")
    assert dict(one(session, "SELECT m FROM el WHERE k = 1").m) == {1: "mid", 2: "new"}
    # an overwrite at 2500 writes its tombstone at 2499: older elements die, the element at 3000 survives
    session.execute("UPDATE el USING TIMESTAMP 2500 SET m = {5: 'five'} WHERE k = 1")
    assert dict(one(session, "SELECT m FROM el WHERE k = 1").m) == {2: "new", 5: "five"}
    # a delete with an older timestamp does not remove a newer element
    session.execute("DELETE m[2] FROM el USING TIMESTAMP 2999 WHERE k = 1")
    assert 2 in one(session, "SELECT m FROM el WHERE k = 1").m
    # per-element TTL: the element expires, the others stay
    session.execute("UPDATE el SET s = s + {1} WHERE k = 2")
    session.execute("UPDATE el USING TTL 1 SET s = s + {2} WHERE k = 2")
    assert set(one(session, "SELECT s FROM el WHERE k = 2").s) == {1, 2}
    poll(lambda: set(one(session, "SELECT s FROM el WHERE k = 2").s) == {1}, timeout=10, msg="element TTL")
    # a row delete shadows elements written before it
    session.execute("DELETE FROM el WHERE k = 2")
    assert one(session, "SELECT s FROM el WHERE k = 2") is None
    session.execute("UPDATE el SET s = s + {3} WHERE k = 2")
    assert set(one(session, "SELECT s FROM el WHERE k = 2").s) == {3}


def test_static_collection_and_batch(session, cks):
    session.execute("CREATE TABLE st (k int, c int, tags set<text> static, v int, PRIMARY KEY (k, c))")
    session.execute("BEGIN BATCH UPDATE st SET tags = tags + {'x'} WHERE k = 1; "
                    "UPDATE st SET tags = tags + {'a'} WHERE k = 1; "
                    "INSERT INTO st (k, c, v) VALUES (1, 1, 1); INSERT INTO st (k, c, v) VALUES (1, 2, 2); APPLY BATCH")
    rows = list(session.execute("SELECT c, tags FROM st WHERE k = 1"))
    assert [r.c for r in rows] == [1, 2] and all(list(r.tags) == ["a", "x"] for r in rows)


def test_bound_sets_and_maps_are_sorted(session, cks):
    """Sets and maps bound unsorted (the driver serializes a list as given) read back in comparator order, for
    frozen and non-frozen columns alike, duplicates dropped."""
    session.execute("CREATE TABLE bs (k int PRIMARY KEY, s set<int>, fs frozen<set<int>>, fm frozen<map<text, int>>)")
    ins = session.prepare("INSERT INTO bs (k, s, fs, fm) VALUES (?, ?, ?, ?)")
    session.execute(ins, (1, [300, -2, 7, 7], [300, -2, 7, 7], collections.OrderedDict([("z", 1), ("a", 2), ("m", 3)])))
    r = one(session, "SELECT s, fs, fm FROM bs WHERE k = 1")
    assert list(r.s) == [-2, 7, 300] and list(r.fs) == [-2, 7, 300]
    assert list(r.fm.keys()) == ["a", "m", "z"]
    assert one(session, "SELECT k FROM bs WHERE k = 1 AND fs = {-2, 7, 300} ALLOW FILTERING").k == 1


def test_frozen_and_errors(session, cks):
    session.execute("CREATE TABLE fz (k int PRIMARY KEY, f frozen<list<int>>, s set<int>)")
    with pytest.raises(InvalidRequest):
        session.execute("UPDATE fz SET f = f + [1] WHERE k = 1")
    with pytest.raises(InvalidRequest):
        session.execute("UPDATE fz SET s = [1] + s WHERE k = 1")
    with pytest.raises(InvalidRequest):
        session.execute("DELETE s[1] FROM fz WHERE k = 1")
    session.execute("INSERT INTO fz (k, f) VALUES (1, [3, 1])")
    assert one(session, "SELECT f FROM fz WHERE k = 1").f == [3, 1]


def test_table_options_echoed_and_altered(cluster, session, cks):
    session.execute("""CREATE TABLE opts (k int PRIMARY KEY, v text) WITH comment = 'sensor data'
        AND default_time_to_live = 86400 AND gc_grace_seconds = 3600 AND bloom_filter_fp_chance = 0.05
        AND caching = {'keys': 'NONE', 'rows_per_partition': '10'}
        AND compaction = {'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'HOURS',
                          'compaction_window_size': 1}
        AND compression = {'class': 'ZstdCompressor', 'chunk_length_in_kb': 64}
        AND crc_check_chance = 0.5 AND speculative_retry = '95p' AND memtable_flush_period_in_ms = 60000""")
    r = one(session, "SELECT * FROM system_schema.tables WHERE keyspace_name = 'colls' AND table_name = 'opts'")
    assert r.comment == "sensor data" and r.default_time_to_live == 86400 and r.gc_grace_seconds == 3600
    assert r.bloom_filter_fp_chance == 0.05 and r.crc_check_chance == 0.5 and r.speculative_retry == "95p"
    assert r.memtable_flush_period_in_ms == 60000
    assert dict(r.caching) == {"keys": "NONE", "rows_per_partition": "10"}
    assert dict(r.compaction) == {"class": "org.apache.cassandra.db.compaction.TimeWindowCompactionStrategy",
                                  "compaction_window_unit": "HOURS", "compaction_window_size": "1",
                                  "max_threshold": "32", "min_threshold": "4"}
    assert dict(r.compression) == {"class": "org.apache.cassandra.io.compress.ZstdCompressor",
                                   "chunk_length_in_kb": "64"}
    cluster.refresh_table_metadata("colls", "opts")
    t = cluster.metadata.keyspaces["colls"].tables["opts"]
    assert t.options["comment"] == "sensor data" and t.options["bloom_filter_fp_chance"] == 0.05
    assert t.options["compaction"]["compaction_window_unit"] == "HOURS"
    cql = t.export_as_string()
    assert "comment = 'sensor data'" in cql and "speculative_retry = '95p'" in cql
    assert "'class': 'org.apache.cassandra.io.compress.ZstdCompressor'" in cql
    # ALTER TABLE ... WITH changes what is shown; the rest stays
    session.execute("ALTER TABLE opts WITH comment = 'changed' AND gc_grace_seconds = 10 "
                    "AND compaction = {'class': 'LeveledCompactionStrategy', 'sstable_size_in_mb': 160}")
    r = one(session, "SELECT * FROM system_schema.tables WHERE keyspace_name = 'colls' AND table_name = 'opts'")
    assert r.comment == "changed" and r.gc_grace_seconds == 10 and r.default_time_to_live == 86400
    assert r.compaction["class"] == "org.apache.cassandra.db.compaction.LeveledCompactionStrategy"
    assert r.compaction["sstable_size_in_mb"] == "160" and r.speculative_retry == "95p"
    cluster.refresh_table_metadata("colls", "opts")
    assert cluster.metadata.keyspaces["colls"].tables["opts"].options["comment"] == "changed"
    # unknown and invalid options are refused
    from cassandra.protocol import SyntaxException, ConfigurationException
    with pytest.raises(SyntaxException):
        session.execute("CREATE TABLE bad1 (k int PRIMARY KEY) WITH no_such_option = 1")
    with pytest.raises(ConfigurationException):
        session.execute("CREATE TABLE bad2 (k int PRIMARY KEY) WITH bloom_filter_fp_chance = 2.5")


def test_alter_keyspace_and_table_add_drop(cluster, session, cks):
    session.execute(KS % "altks")
    session.execute("ALTER KEYSPACE altks WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 3} "
                    "AND durable_writes = false")
    r = one(session, "SELECT * FROM system_schema.keyspaces WHERE keyspace_name = 'altks'")
    assert r.replication == {"class": "org.apache.cassandra.locator.NetworkTopologyStrategy", "dc1": "3"}
    assert r.durable_writes is False
    cluster.refresh_keyspace_metadata("altks")
    assert "'dc1': '3'" in cluster.metadata.keyspaces["altks"].export_as_string()
    session.execute("CREATE TABLE ad (k int PRIMARY KEY, v int)")
    session.execute("INSERT INTO ad (k, v) VALUES (1, 1)")
    session.execute("ALTER TABLE ad ADD extra text")
    session.execute("INSERT INTO ad (k, extra) VALUES (1, 'more')")
    assert one(session, "SELECT extra FROM ad WHERE k = 1").extra == "more"
    session.execute("ALTER TABLE ad DROP extra")
    r = one(session, "SELECT * FROM ad WHERE k = 1")
    assert r._fields == ("k", "v") and r.v == 1
    with pytest.raises(InvalidRequest):
        session.execute("SELECT extra FROM ad")
    d = one(session, "SELECT * FROM system_schema.dropped_columns WHERE keyspace_name = 'colls' "
                     "AND table_name = 'ad' AND column_name = 'extra'")
    assert d is not None and d.type == "text" and d.kind == "regular" and d.dropped_time is not None
    # re-added, the column does not bring the dropped data back
    session.execute("ALTER TABLE ad ADD extra text")
    assert one(session, "SELECT extra FROM ad WHERE k = 1").extra is None
    cluster.refresh_table_metadata("colls", "ad")
    assert "extra" in cluster.metadata.keyspaces["colls"].tables["ad"].columns


@pytest.mark.parametrize("order", ["ASC", "DESC"])
def test_varint_and_decimal_clustering_by_value(session, cks, order):
    session.execute("CREATE TABLE vd_%s (k int, v varint, d decimal, PRIMARY KEY (k, v, d)) "
                    "WITH CLUSTERING ORDER BY (v %s, d %s)" % (order, order, order))
    ins = session.prepare("INSERT INTO vd_%s (k, v, d) VALUES (?, ?, ?)" % order)
    ints = [0, 1, -1, 127, 128, -128, -129, 255, 256, 2**70, -2**70, 10**30, -(10**30), 65535, -65536]
    for i in ints:
        session.execute(ins, (1, i, decimal.Decimal(0)))
    decs = ["0", "1", "-1", "0.5", "-0.5", "12.345", "-12.345", "1E+10", "-1E+10", "0.000001", "-0.000001",
            "123456789012345678901234567890.5", "99.99", "100", "1.5"]
    for d in decs:
        session.execute(ins, (2, 0, decimal.Decimal(d)))
    rev = order == "DESC"
    got = [r.v for r in session.execute("SELECT v FROM vd_%s WHERE k = 1" % order)]
    assert got == sorted(ints, reverse=rev)
    got = [r.d for r in session.execute("SELECT d FROM vd_%s WHERE k = 2" % order)]
    assert got == sorted((decimal.Decimal(d) for d in decs), reverse=rev)
    # slices by value
    got = [r.v for r in session.execute("SELECT v FROM vd_%s WHERE k = 1 AND v > -129 AND v <= 256" % order)]
    assert sorted(got) == [-128, -1, 0, 1, 127, 128, 255, 256]
    got = [r.d for r in session.execute(
        "SELECT d FROM vd_%s WHERE k = 2 AND v = 0 AND d >= -0.5 AND d < 12.345" % order)]
    assert sorted(got) == [decimal.Decimal(x) for x in ("-0.5", "-0.000001", "0", "0.000001", "0.5", "1", "1.5")]
    # a point read with another scale finds the same row (1.50 == 1.5)
    assert one(session, "SELECT d FROM vd_%s WHERE k = 2 AND v = 0 AND d = 1.50" % order).d == decimal.Decimal("1.5")


def test_duration_literals_and_round_trip(cluster, session, cks):
    session.execute("CREATE TABLE du (k int PRIMARY KEY, d duration, l list<duration>)")
    cases = {
        1: ("1h30m", Duration(0, 0, 90 * 60 * 10**9)),
        2: ("2d", Duration(0, 2, 0)),
        3: ("P1DT2H", Duration(0, 1, 2 * 3600 * 10**9)),
        4: ("-5s", Duration(0, 0, -5 * 10**9)),
        5: ("1y2mo3w4d5h6m7s8ms9us10ns", Duration(14, 25, ((5 * 60 + 6) * 60 + 7) * 10**9 + 8 * 10**6 + 9000 + 10)),
        6: ("P2W", Duration(0, 14, 0)),
        7: ("PT0.5S".replace("0.5", "1"), Duration(0, 0, 10**9)),
        8: ("-P1Y2M", Duration(-14, 0, 0)),
    }
    for k, (lit, want) in cases.items():
        session.execute("INSERT INTO du (k, d) VALUES (%d, %s)" % (k, lit))
        assert one(session, "SELECT d FROM du WHERE k = %d" % k).d == want, lit
    # bound values through the driver's DurationType codec, also large ones
    ins = session.prepare("INSERT INTO du (k, d, l) VALUES (?, ?, ?)")
    big = Duration(2**31 - 1, -0, 0)
    vals = [Duration(1, 2, 3), Duration(-1, -2, -3 * 10**12), Duration(0, 0, 2**62), big]
    session.execute(ins, (10, vals[0], vals))
    r = one(session, "SELECT d, l FROM du WHERE k = 10")
    assert r.d == vals[0] and r.l == vals
    cluster.refresh_table_metadata("colls", "du")
    assert cluster.metadata.keyspaces["colls"].tables["du"].columns["d"].cql_type == "duration"
    for bad in ("1x", "P1H", "5", "1h1"):
        with pytest.raises(InvalidRequest):
            session.execute("INSERT INTO du (k, d) VALUES (99, %s)" % bad)
    with pytest.raises(InvalidRequest):  # not allowed as a key
        session.execute("CREATE TABLE du_bad (k duration PRIMARY KEY)")


def test_options_dropped_columns_and_collections_survive_restart(make_store):
    s = make_store()
    c = s.cluster()
    sess = c.connect()
    sess.execute(KS % "rs")
    sess.execute("CREATE TABLE rs.t (k int PRIMARY KEY, m map<text, int>, gone int) WITH comment = 'kept' "
                 "AND caching = {'keys': 'ALL', 'rows_per_partition': 'ALL'} AND crc_check_chance = 0.25")
    sess.execute("UPDATE rs.t SET m['a'] = 1, m['b'] = 2 WHERE k = 1")
    sess.execute("DELETE m['a'] FROM rs.t WHERE k = 1")
    sess.execute("ALTER TABLE rs.t DROP gone")
    c.shutdown()
    s.restart()
    c = s.cluster()
    sess = c.connect()
    r = sess.execute("SELECT * FROM system_schema.tables WHERE keyspace_name = 'rs' AND table_name = 't'").one()
    assert r.comment == "kept" and r.crc_check_chance == 0.25 and r.caching["rows_per_partition"] == "ALL"
    d = sess.execute("SELECT column_name FROM system_schema.dropped_columns WHERE keyspace_name = 'rs'").one()
    assert d.column_name == "gone"
    assert dict(sess.execute("SELECT m FROM rs.t WHERE k = 1").one().m) == {"b": 2}
    c.shutdown()


def test_select_json_and_insert_json(session, cks):
    import datetime
    import json
    import uuid
    session.execute("""CREATE TABLE js (k int, c text, "Mixed" int, b bigint, d double, de decimal, vi varint,
        ts timestamp, u uuid, bl blob, ok boolean, l list<int>, s set<text>, m map<int, text>, du duration,
        tu frozen<tuple<int, text>>, PRIMARY KEY (k, c))""")
    u = uuid.uuid4()
    session.execute("INSERT INTO js (k, c, \"Mixed\", b, d, de, vi, ts, u, bl, ok, l, s, m, du, tu) VALUES "
                    "(1, 'a\"q', 7, 9000000000, 1.5, -12.50, 123456789012345678901234567890, "
                    "'2024-05-06 07:08:09.123Z', %s, 0x00ff, true, [3, 1], {'y', 'x'}, {2: 'two', 1: 'one'}, 1h30m, "
                    "(5, 'five'))" % u)
    rs = session.execute("SELECT JSON * FROM js WHERE k = 1")
    assert rs.column_names == ["[json]"]
    row = rs.one()
    got = json.loads(row[0], parse_float=decimal.Decimal)
    assert got == {"k": 1, "c": 'a"q', '"Mixed"': 7, "b": 9000000000, "d": decimal.Decimal("1.5"),
                   "de": decimal.Decimal("-12.50"), "vi": 123456789012345678901234567890,
                   "ts": "2024-05-06 07:08:09.123Z", "u": str(u), "bl": "0x00ff", "ok": True, "l": [3, 1],
                   "s": ["x", "y"], "m": {"1": "one", "2": "two"}, "du": "1h30m", "tu": [5, "five"]}
    got = json.loads(one(session, "SELECT JSON k, ok, s FROM js WHERE k = 1")[0])
    assert got == {"k": 1, "ok": True, "s": ["x", "y"]}
    assert json.loads(one(session, "SELECT JSON count(*) FROM js")[0]) == {"count": 1}
    # INSERT JSON: the same object back under another key gives the same row
    obj = dict(json.loads(row[0]), k=2)
    session.execute("INSERT INTO js JSON %s", (json.dumps(obj),))
    r1, r2 = one(session, "SELECT * FROM js WHERE k = 1"), one(session, "SELECT * FROM js WHERE k = 2")
    assert r1[1:] == r2[1:]
    assert r2.ts == datetime.datetime(2024, 5, 6, 7, 8, 9, 123000) and r2.Mixed == 7 and r2.du == Duration(0, 0, 90 * 60 * 10**9)
    # prepared, with omitted columns set to null (DEFAULT NULL) or kept (DEFAULT UNSET)
    ps = session.prepare("INSERT INTO js JSON ?")
    session.execute(ps, ('{"k": 2, "c": "a\\"q", "b": 5}',))
    r = one(session, "SELECT b, d, l FROM js WHERE k = 2")
    assert r.b == 5 and r.d is None and r.l is None
    session.execute("INSERT INTO js JSON '{\"k\": 1, \"c\": \"a\\\"q\", \"b\": 6}' DEFAULT UNSET")
    r = one(session, "SELECT b, d, l FROM js WHERE k = 1")
    assert r.b == 6 and r.d == 1.5 and r.l == [3, 1]
    for bad in ('{"k": 3, "c": "x", "nope": 1}', '{"k": 3, "c": "x", "b": "abc"}', '[1]', '{"k": 3,'):
        with pytest.raises(InvalidRequest):
            session.execute(ps, (bad,))
