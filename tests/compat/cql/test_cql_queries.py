"""Query forms the issue lists that other files do not cover: aliases and projections, aggregates (count, min,
max, sum, avg) checked against values computed here, token() ranges that together visit every partition once,
ALLOW FILTERING scans across many pages, TRUNCATE, DROP TABLE and DROP KEYSPACE."""
from cassandra.query import SimpleStatement

KS = "CREATE KEYSPACE IF NOT EXISTS q WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"


def _load(session):
    session.execute(KS)
    session.execute("CREATE TABLE IF NOT EXISTS q.readings (device text, ts int, speed double, fuel int, "
                    "PRIMARY KEY ((device), ts))")
    ins = session.prepare("INSERT INTO q.readings (device, ts, speed, fuel) VALUES (?, ?, ?, ?)")
    rows = []
    for d in range(20):
        for t in range(30):
            r = ("dev-%02d" % d, t, (d * 7 + t * 3) % 50 + 0.5, 100 - t - d)
            session.execute(ins, r)
            rows.append(r)
    return rows


def test_aliases_and_aggregates(session):
    rows = _load(session)
    mine = [r for r in rows if r[0] == "dev-03"]
    r = session.execute("SELECT count(*) AS n, min(speed) AS lo, max(speed) AS hi, sum(fuel) AS total, "
                        "avg(speed) AS mean FROM q.readings WHERE device = 'dev-03'").one()
    assert r.n == len(mine)
    assert r.lo == min(x[2] for x in mine) and r.hi == max(x[2] for x in mine)
    assert r.total == sum(x[3] for x in mine)
    assert abs(r.mean - sum(x[2] for x in mine) / len(mine)) < 1e-9
    # a projection with aliases on a clustering slice
    got = list(session.execute("SELECT ts AS t, fuel AS f FROM q.readings WHERE device = 'dev-03' AND ts >= 10 "
                               "AND ts < 13"))
    assert [(g.t, g.f) for g in got] == [(x[1], x[3]) for x in mine if 10 <= x[1] < 13]


def test_token_ranges_cover_every_partition_once(session):
    rows = _load(session)
    devices = sorted({r[0] for r in rows})
    bounds = [-2**63, -2**62, 0, 2**62, 2**63 - 1]
    seen = []
    for lo, hi in zip(bounds, bounds[1:]):
        q = "SELECT device, token(device) AS t FROM q.readings WHERE token(device) > %d AND token(device) <= %d"
        part = list(session.execute(SimpleStatement(q % (lo, hi), fetch_size=50)))
        assert all(lo < p.t <= hi for p in part)
        assert [p.t for p in part] == sorted(p.t for p in part), "partitions must come in token order"
        seen += sorted({p.device for p in part})
    # the first bound is exclusive; Long.MIN_VALUE is never a real token
    assert sorted(seen) == devices


def test_allow_filtering_scan_pages(session):
    rows = _load(session)
    want = sorted((r[0], r[1]) for r in rows if r[3] > 80)
    st = SimpleStatement("SELECT device, ts FROM q.readings WHERE fuel > 80 ALLOW FILTERING", fetch_size=17)
    res = session.execute(st)
    got, pages = [], 0
    while True:
        got += [(r.device, r.ts) for r in res.current_rows]
        pages += 1
        if not res.has_more_pages:
            break
        res.fetch_next_page()
    assert sorted(got) == want
    assert len(got) == len(set(got)), "a row was returned twice across pages"
    assert pages > 2


def test_truncate_drop_table_and_keyspace(session, cluster):
    session.execute(KS.replace(" q ", " q2 "))
    session.execute("CREATE TABLE q2.t (k int PRIMARY KEY, v text)")
    for i in range(10):
        session.execute("INSERT INTO q2.t (k, v) VALUES (%s, 'x')", (i,))
    session.execute("TRUNCATE q2.t")
    assert session.execute("SELECT count(*) FROM q2.t").one()[0] == 0
    session.execute("INSERT INTO q2.t (k, v) VALUES (1, 'after')")
    assert session.execute("SELECT v FROM q2.t WHERE k = 1").one().v == "after"
    session.execute("DROP TABLE q2.t")
    cluster.refresh_schema_metadata()
    assert "t" not in cluster.metadata.keyspaces["q2"].tables
    session.execute("DROP KEYSPACE q2")
    cluster.refresh_schema_metadata()
    assert "q2" not in cluster.metadata.keyspaces
