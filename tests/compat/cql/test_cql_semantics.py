"""Deletion semantics, statics and lightweight-transaction results with the DataStax Python driver."""
import pytest
from cassandra.query import SimpleStatement


@pytest.fixture(scope="module")
def sem(session):
    session.execute("CREATE KEYSPACE IF NOT EXISTS sem WITH replication = {'class': 'SimpleStrategy', "
                    "'replication_factor': 1}")
    return session


def fill(s, table, p, n):
    ins = s.prepare("INSERT INTO %s (p, c, v) VALUES (?, ?, ?)" % table)
    for i in range(n):
        s.execute(ins, (p, i, "v%d" % i))


@pytest.mark.parametrize("order", ["ASC", "DESC"])
def test_range_deletes(sem, order):
    s = sem
    t = "sem.rd_%s" % order.lower()
    s.execute("CREATE TABLE %s (p int, c int, v text, PRIMARY KEY (p, c)) WITH CLUSTERING ORDER BY (c %s)" % (t, order))
    fill(s, t, 1, 20)
    fill(s, t, 2, 5)
    s.execute("DELETE FROM %s WHERE p = 1 AND c >= 3 AND c < 7" % t)
    s.execute("DELETE FROM %s WHERE p = 1 AND c > 15" % t)
    s.execute(s.prepare("DELETE FROM %s WHERE p = ? AND c <= ?" % t), (1, 0))
    got = sorted(r.c for r in s.execute("SELECT c FROM %s WHERE p = 1" % t))
    assert got == [1, 2, 7, 8, 9, 10, 11, 12, 13, 14, 15]
    # a slice read that starts inside the deleted range still sees the tombstone
    got = sorted(r.c for r in s.execute("SELECT c FROM %s WHERE p = 1 AND c >= 4 AND c <= 8" % t))
    assert got == [7, 8]
    assert s.execute("SELECT count(*) FROM %s WHERE p = 2" % t).one().count == 5
    # writes newer than the range tombstone are visible again
    s.execute("INSERT INTO %s (p, c, v) VALUES (1, 5, 'back')" % t)
    assert s.execute("SELECT v FROM %s WHERE p = 1 AND c = 5" % t).one().v == "back"
    # an older write (explicit timestamp) stays shadowed
    s.execute("DELETE FROM %s USING TIMESTAMP 5000 WHERE p = 2 AND c < 100" % t)
    s.execute("INSERT INTO %s (p, c, v) VALUES (2, 9, 'old') USING TIMESTAMP 4000" % t)
    # rows 0..4 were written after that (current time) and survive; row 9 (ts 4000) is shadowed
    assert sorted(r.c for r in s.execute("SELECT c FROM %s WHERE p = 2" % t)) == [0, 1, 2, 3, 4]


def test_partition_and_row_tombstones_seen_by_slices(sem):
    s = sem
    s.execute("CREATE TABLE sem.pt (p int, c int, v text, PRIMARY KEY (p, c))")
    fill(s, "sem.pt", 1, 10)
    s.execute("DELETE FROM sem.pt WHERE p = 1")
    assert list(s.execute("SELECT c FROM sem.pt WHERE p = 1 AND c > 2")) == []
    assert s.execute("SELECT v FROM sem.pt WHERE p = 1 AND c = 4").one() is None


def test_statics_on_every_page(sem):
    s = sem
    s.execute("CREATE TABLE sem.st (p int, c int, v text, s text static, PRIMARY KEY (p, c))")
    fill(s, "sem.st", 1, 25)
    s.execute("UPDATE sem.st SET s = 'shared' WHERE p = 1")
    rows = list(s.execute(SimpleStatement("SELECT c, s FROM sem.st WHERE p = 1", fetch_size=7)))
    assert len(rows) == 25
    assert all(r.s == "shared" for r in rows)
    rows = list(s.execute("SELECT c, s FROM sem.st WHERE p = 1 AND c >= 20"))
    assert [(r.c, r.s) for r in rows] == [(i, "shared") for i in range(20, 25)]


def test_if_not_exists_returns_existing_row(sem):
    s = sem
    s.execute("CREATE TABLE sem.lwt (k text PRIMARY KEY, v int, w text)")
    r = s.execute("INSERT INTO sem.lwt (k, v, w) VALUES ('a', 1, 'x') IF NOT EXISTS").one()
    assert r.applied is True
    rs = s.execute("INSERT INTO sem.lwt (k, v, w) VALUES ('a', 2, 'y') IF NOT EXISTS")
    assert rs.was_applied is False
    row = rs.one()
    assert (row.k, row.v, row.w) == ("a", 1, "x")
    assert s.execute("SELECT v FROM sem.lwt WHERE k = 'a'").one().v == 1
