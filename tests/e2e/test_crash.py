"""Crash: kill -9 the processor (and `sluice up`) at random instants while records flow; after a restart the
tables equal the no-crash result exactly: no row missing, none doubled.

SLUICE_CRASH_KILLS sets the kills per test (default 3); tests/e2e/crash_loop.sh repeats the suite many times."""
import os
import random
import time

from conftest import (EXAMPLES, TIMEOUT, Proc, count_rows, read_topic, session_for, simulate, stream_proc,
                      wait_until)
from helpers import expected_vehicles, stored_vehicles

KILLS = int(os.environ.get("SLUICE_CRASH_KILLS", "3"))

# A pipeline whose key the processor must generate: a uuid derived from (topic, partition, offset). A replay that
# derived another key would double the row, so the row count proves exactly-once.
EVENTS_YAML = """
pipelines:
  - name: events
    topics: [vehicles]
    group: crash-events
    keyspace: e2e
    table: events
    columns:
      - {name: id, type: uuid, derive: record_uuid}
      - {name: device, type: text, path: id, required: true}
      - {name: ts, type: timestamp, path: Timestamp}
      - {name: speed, type: double, path: Speed}
    primary_key: [id]
"""


def stored_events(session):
    rows = {}
    for r in session.execute("SELECT id, device, ts, speed FROM e2e.events"):
        assert r.id not in rows
        rows[r.id] = (r.device, r.ts, r.speed)
    return rows


def test_processor_kill9_exactly_once(tmp_path, broker, store, session):
    n = 60000
    rnd = random.Random()
    seed = rnd.randrange(1 << 30)
    rnd.seed(seed)
    events = tmp_path / "events.yaml"
    events.write_text(EVENTS_YAML)
    pipes = [os.path.join(EXAMPLES, "vehicles.yaml"), str(events)]
    simulate(tmp_path, broker.bootstrap, "vehicles", n, devices=50)
    # small batches and few in flight: the run lasts long enough to be killed mid-way
    sets = {"stream.batch_rows": "16", "stream.max_inflight_rows": "128", "stream.session_timeout_ms": "6000"}
    sp = stream_proc(tmp_path, broker.bootstrap, store, pipes, sets=sets)
    mid_flow = 0
    for i in range(KILLS):
        sp.start()
        # records flow once the (restarted) member has its partitions: kill at a random instant after that
        wait_until(lambda: sp.last_counts()["consumed"] > 0 if "consumed" in sp.text().rsplit("===== start", 1)[-1]
                   else False, TIMEOUT, msg="records flowing")
        time.sleep(rnd.uniform(0.0, 0.1))
        assert sp.alive(), sp.tail()
        sp.kill9()
        mid_flow += count_rows(session, "iot.vehicle_readings") < n
    sp.start()
    wait_until(lambda: count_rows(session, "iot.vehicle_readings") == n and count_rows(session, "e2e.events") == n,
               TIMEOUT, msg=lambda: "all rows after %d kills (seed %d)" % (KILLS, seed))
    sp.stop()
    assert stored_vehicles(session) == expected_vehicles(read_topic(broker.bootstrap, "vehicles", n))
    assert len(stored_events(session)) == n
    assert mid_flow > 0 or KILLS == 0, "every kill came after the last row (seed %d)" % seed


def test_up_kill9_resumes_exactly(tmp_path):
    n = 20000
    rnd = random.Random()
    seed = rnd.randrange(1 << 30)
    rnd.seed(seed)
    data = tmp_path / "data"
    ready = str(tmp_path / "up.ready")
    up = Proc(tmp_path, "up", ["up", "--data-dir", str(data), "--kafka-listen", "127.0.0.1:0", "--cql-listen",
                               "127.0.0.1:0", "--ready-file", ready, "--set", "up.demo_profiles=",
                               "--set", "up.pipelines=vehicles", "--set", "stream.batch_rows=16",
                               "--set", "stream.max_inflight_rows=256", "--set", "broker.num_partitions=3"],
              ready=ready)

    def addrs():
        d = dict(line.split() for line in open(ready).read().splitlines())
        return d["kafka"], d["cql"]
    up.start()
    kafka, _ = addrs()
    simulate(tmp_path, kafka, "vehicles", n, devices=30)
    for i in range(KILLS):
        time.sleep(rnd.uniform(0.05, 0.6))
        assert up.alive(), up.tail()
        up.kill9()
        up.start()
    kafka, cql = addrs()
    host, port = cql.split(":")

    class S:  # the Store interface session_for needs
        def cluster(self):
            from cassandra.cluster import Cluster
            return Cluster([host], port=int(port))
    cluster, session = session_for(S())
    try:
        wait_until(lambda: count_rows(session, "iot.vehicle_readings") == n, TIMEOUT,
                   msg=lambda: "all rows after %d kills of sluice up (seed %d)" % (KILLS, seed))
        assert stored_vehicles(session) == expected_vehicles(read_topic(kafka, "vehicles", n))
    finally:
        cluster.shutdown()
    up.stop()
