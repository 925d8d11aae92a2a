"""End to end: simulator -> broker -> `sluice stream` -> store, read back with real clients."""
import json
import os
import re
import signal
import uuid

from confluent_kafka import Producer

from conftest import (EXAMPLES, SLUICE_BIN, TIMEOUT, Proc, count_rows, read_topic, simulate, stream_proc,
                      wait_until)
from helpers import expected_vehicles, stored_vehicles


def test_vehicles_exact_rows(tmp_path, broker, store, session):
    n = 3000
    simulate(tmp_path, broker.bootstrap, "vehicles", n, devices=17)
    sp = stream_proc(tmp_path, broker.bootstrap, store, [os.path.join(EXAMPLES, "vehicles.yaml")]).start()
    wait_until(lambda: count_rows(session, "iot.vehicle_readings") == n, TIMEOUT, msg="all rows written")
    expected = expected_vehicles(read_topic(broker.bootstrap, "vehicles", n))
    assert stored_vehicles(session) == expected
    # the time-series layout of the design: ((device_id, day), ts) newest first
    session.cluster.refresh_schema_metadata()
    t = session.cluster.metadata.keyspaces["iot"].tables["vehicle_readings"]
    assert [c.name for c in t.partition_key] == ["device_id", "day"]
    assert [c.name for c in t.clustering_key] == ["ts"]
    rows = list(session.execute("SELECT ts FROM iot.vehicle_readings WHERE device_id='vehicle-0003' AND day='2024-05-01'"))
    assert len(rows) > 10 and [r.ts for r in rows] == sorted([r.ts for r in rows], reverse=True)
    wait_until(lambda: sp.last_counts()["written"] == n, 10, msg="counters")
    sp.stop()
    c = sp.last_counts()
    assert c == {"consumed": n, "written": n, "dead_lettered": 0, "filtered": 0, "inflight": 0}


def test_random_user_lands_in_created_users(tmp_path, broker, store, session):
    n = 25
    simulate(tmp_path, broker.bootstrap, "users", n, devices=1)
    sp = stream_proc(tmp_path, broker.bootstrap, store, [os.path.join(EXAMPLES, "users.yaml")]).start()
    wait_until(lambda: count_rows(session, "spark_streams.created_users") == n, TIMEOUT, msg="users written")
    msgs = read_topic(broker.bootstrap, "users_created", n)
    rows = {r.id: r for r in session.execute("SELECT * FROM spark_streams.created_users")}
    # the exact table of seeds 002/003
    session.cluster.refresh_schema_metadata()
    t = session.cluster.metadata.keyspaces["spark_streams"].tables["created_users"]
    assert {c: t.columns[c].cql_type for c in t.columns} == {
        "id": "uuid", "first_name": "text", "last_name": "text", "gender": "text", "address": "text",
        "post_code": "text", "email": "text", "username": "text", "registered_date": "text", "phone": "text",
        "picture": "text"}
    for m in msgs:
        u = json.loads(m.value())["results"][0]
        r = rows[uuid.UUID(u["login"]["uuid"])]
        loc = u["location"]
        assert r.first_name == u["name"]["first"] and r.last_name == u["name"]["last"]
        assert r.gender == u["gender"]
        assert r.address == "%s %s, %s, %s, %s" % (loc["street"]["number"], loc["street"]["name"], loc["city"],
                                                 loc["state"], loc["country"])
        assert r.post_code == str(loc["postcode"])
        assert r.email == u["email"] and r.username == u["login"]["username"]
        assert r.registered_date == u["registered"]["date"]
        assert r.phone == u["phone"] and r.picture == u["picture"]["medium"]
    sp.stop()


def test_bad_records_reach_dead_letter_topic(tmp_path, broker, store, session):
    good = {"id": "vehicle-0001", "Adresse": "1 Rue de Rivoli, 75001 Paris", "Mileage": 10.5, "Fuel_level": 50,
            "Speed": 30, "Longitude": 2.35, "Latitude": 48.85, "Timestamp": "2024-05-01T10:40:00.000Z"}
    cases = [
        (b'{"id": "vehicle-1", "Speed": 3', "", "invalid JSON"),
        (json.dumps({k: v for k, v in good.items() if k != "id"}).encode(), "device_id", "missing required field"),
        (json.dumps(dict(good, Speed="fast")).encode(), "speed", "cannot convert to double"),
        (json.dumps(dict(good, Timestamp="yesterday")).encode(), "ts", "cannot convert to timestamp"),
        (b"[1, 2, 3]", "", "expected a JSON object"),
    ]
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})
    ok = 0
    for i in range(40):
        if i % 8 == 0 and i // 8 < len(cases):
            p.produce("vehicles", cases[i // 8][0], key=b"bad")
        elif i % 8 == 1:  # a negative speed: filtered by the pipeline, not an error
            p.produce("vehicles", json.dumps(dict(good, Speed=-1, Timestamp="2024-05-01T11:00:%02d.000Z" % i)))
        else:
            p.produce("vehicles", json.dumps(dict(good, Speed="42.5", Timestamp="2024-05-01T10:40:%02d.000Z" % i)))
            ok += 1
    assert p.flush(30) == 0
    filtered = 40 - ok - len(cases)
    sp = stream_proc(tmp_path, broker.bootstrap, store, [os.path.join(EXAMPLES, "vehicles.yaml")]).start()
    dlq = read_topic(broker.bootstrap, "vehicles.dlq", len(cases))
    wait_until(lambda: count_rows(session, "iot.vehicle_readings") == ok, TIMEOUT, msg="good rows written")
    by_value = {m.value(): dict((k, v.decode()) for k, v in m.headers()) for m in dlq}
    for payload, field, reason in cases:
        h = by_value[payload]
        assert h["pipeline"] == "vehicles" and h["field"] == field and reason in h["reason"], h
        assert h["topic"] == "vehicles" and int(h["offset"]) >= 0
    assert by_value[cases[2][0]]["value"] == "fast"
    # a string number was coerced
    assert session.execute("SELECT speed FROM iot.vehicle_readings WHERE device_id='vehicle-0001' AND day='2024-05-01' "
                           "LIMIT 1").one().speed == 42.5
    wait_until(lambda: sp.last_counts()["inflight"] == 0 and sp.last_counts()["consumed"] == 40, 10, msg="counts")
    sp.stop()
    c = sp.last_counts()
    assert c["consumed"] == c["written"] + c["dead_lettered"] + c["filtered"] == 40
    assert (c["written"], c["dead_lettered"], c["filtered"]) == (ok, len(cases), filtered)


def test_two_processors_share_partitions(tmp_path, broker, store, session):
    n = 4000
    from conftest import create_topic
    create_topic(broker.bootstrap, "vehicles", partitions=4)
    pipes = [os.path.join(EXAMPLES, "vehicles.yaml")]
    a = stream_proc(tmp_path, broker.bootstrap, store, pipes, name="a").start()
    b = stream_proc(tmp_path, broker.bootstrap, store, pipes, name="b").start()

    def balanced():
        ta, tb = a.text(), b.text()
        return "assigned 2 partition(s)" in ta.rsplit("revoked", 1)[-1] and \
            "assigned 2 partition(s)" in tb.rsplit("revoked", 1)[-1]
    wait_until(balanced, 60, msg="both processors assigned two partitions")
    simulate(tmp_path, broker.bootstrap, "vehicles", n, devices=40)
    wait_until(lambda: count_rows(session, "iot.vehicle_readings") == n, TIMEOUT, msg="all rows written")
    wait_until(lambda: a.last_counts()["written"] + b.last_counts()["written"] == n, 20,
               msg=lambda: "counters %r %r" % (a.last_counts(), b.last_counts()))

    # each processor publishes its own status row (they refresh every second): together they account for every row
    def status_rows():
        return list(session.execute("SELECT processor, state, written FROM sluice_meta.pipeline_processors "
                                    "WHERE pipeline = 'vehicles'"))
    wait_until(lambda: len(status_rows()) == 2 and sum(r.written for r in status_rows()) == n, 20,
               msg=lambda: "status rows %r" % status_rows())
    assert {r.state for r in status_rows()} == {"running"}
    assert len({r.processor for r in status_rows()}) == 2
    a.stop()
    b.stop()
    ca, cb = a.last_counts(), b.last_counts()
    assert ca["written"] > 0 and cb["written"] > 0
    assert ca["written"] + cb["written"] == n  # together, each row once
    assert stored_vehicles(session) == expected_vehicles(read_topic(broker.bootstrap, "vehicles", n))


def test_pipelines_declared_in_the_config_file(tmp_path, broker, store, session):
    """`sluice stream --config FILE` runs the `pipelines:` list of that file, beside the processor's settings."""
    n = 500
    simulate(tmp_path, broker.bootstrap, "vehicles", n, devices=5, topic="cfg_vehicles")
    example = open(os.path.join(EXAMPLES, "vehicles.yaml")).read()
    pipeline = (example.replace("topics: [vehicles]", "topics: [cfg_vehicles]")
                .replace("table: vehicle_readings", "table: from_config").replace("name: vehicles", "name: cfgv")
                .replace("group: sluice-vehicles", "group: cfg-vehicles")
                .replace("    keyspace: iot\n", "    keyspace: cfgks\n    replication: {class: SimpleStrategy, "
                         "replication_factor: 1}\n    table_options: \"default_time_to_live = 2592000 AND "
                         "compaction = {'class': 'TimeWindowCompactionStrategy'}\"\n"))
    assert "from_config" in pipeline and "cfg_vehicles" in pipeline and "table_options" in pipeline
    cfg = tmp_path / "sluice.yaml"
    ready = tmp_path / "cfg.ready"
    cfg.write_text("stream:\n  brokers: %s\n  cql: %s:%d\n  status_interval_ms: 200\n  ready_file: %s\n%s"
                   % (broker.bootstrap, store.host, store.port, ready, pipeline))
    sp = Proc(tmp_path, "stream-config", ["stream", "--config", str(cfg)], ready=str(ready)).start()
    wait_until(lambda: count_rows(session, "cfgks.from_config") == n, TIMEOUT, msg="rows from the config's pipeline")
    # the table was created with the pipeline's options
    session.cluster.refresh_schema_metadata()
    opts = session.cluster.metadata.keyspaces["cfgks"].tables["from_config"].options
    assert opts["default_time_to_live"] == 2592000 and "TimeWindowCompactionStrategy" in opts["compaction"]["class"]
    sp.stop()
    assert sp.last_counts() == {"consumed": n, "written": n, "dead_lettered": 0, "filtered": 0, "inflight": 0}
    # a setting the file does not know is still an error, pipelines or not
    cfg.write_text(cfg.read_text() + "stream_typo: {x: 1}\n")
    bad = Proc(tmp_path, "stream-config-bad", ["stream", "--config", str(cfg)])
    bad.start(wait_ready=False)
    assert bad.wait(TIMEOUT) != 0
    assert "unknown setting 'stream_typo.x'" in bad.text()


def test_rows_the_store_refuses_are_dead_lettered_with_their_record(tmp_path, broker, store, session):
    """A row the store refuses for good fails its whole batch: the processor writes that batch's rows one by one,
    so the good ones land and only the refused ones reach the dead-letter topic, with their original key and value."""
    # the table exists already with `address ascii`: the store refuses non-ASCII addresses the pipeline maps as text
    session.execute("CREATE KEYSPACE IF NOT EXISTS iot WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    session.execute("CREATE TABLE iot.vehicle_readings (device_id text, day date, ts timestamp, address ascii, "
                    "mileage double, fuel_level double, speed double, longitude double, latitude double, "
                    "PRIMARY KEY ((device_id, day), ts)) WITH CLUSTERING ORDER BY (ts DESC)")
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})
    refused = {}
    n = 30
    for i in range(n):
        addr = "%d Place de l'H\u00f4tel de Ville" % i if i % 7 == 3 else "%d Rue de Rivoli" % i
        value = json.dumps({"id": "vehicle-0001", "Adresse": addr, "Speed": 10 + i,
                            "Timestamp": "2024-05-01T10:41:%02d.000Z" % i}).encode()
        key = b"key-%d" % i
        if i % 7 == 3:
            refused[key] = value
        p.produce("vehicles", value, key=key, partition=0)
    assert p.flush(30) == 0
    # one batch holds all the records: the refused ones must not take the others with them
    sp = stream_proc(tmp_path, broker.bootstrap, store, [os.path.join(EXAMPLES, "vehicles.yaml")],
                     sets={"stream.batch_rows": 64}).start()
    dlq = read_topic(broker.bootstrap, "vehicles.dlq", len(refused))
    assert {m.key(): m.value() for m in dlq} == refused
    for m in dlq:
        h = dict((k, v.decode()) for k, v in m.headers())
        assert "store rejected the row" in h["reason"] and "ASCII" in h["reason"], h
        assert h["pipeline"] == "vehicles" and h["topic"] == "vehicles" and int(h["offset"]) % 7 == 3
    wait_until(lambda: count_rows(session, "iot.vehicle_readings") == n - len(refused), TIMEOUT, msg="good rows")
    wait_until(lambda: sp.last_counts()["inflight"] == 0 and sp.last_counts()["consumed"] == n, 10, msg="counts")
    sp.stop()
    c = sp.last_counts()
    assert (c["written"], c["dead_lettered"], c["filtered"]) == (n - len(refused), len(refused), 0)
    assert "writing them one by one" in sp.text()


def _rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def test_backpressure_when_the_store_stalls(tmp_path, broker, store, session):
    """While the store does not answer, the processor stops consuming at stream.max_inflight_rows and its memory
    stays bounded; once the store answers again every row lands, once."""
    n, limit = 60_000, 2000
    sp = stream_proc(tmp_path, broker.bootstrap, store, [os.path.join(EXAMPLES, "vehicles.yaml")],
                     sets={"stream.max_inflight_rows": limit, "stream.fetch_max_kbytes": 1024,
                           "stream.status_interval_ms": 100}).start()
    rss_before = _rss_kib(sp.proc.pid)
    status = re.compile(r"consumed (\d+), written (\d+) \([^)]*\), dead-lettered \d+, filtered \d+, in flight (\d+)")
    store.proc.send_signal(signal.SIGSTOP)
    try:
        simulate(tmp_path, broker.bootstrap, "vehicles", n, devices=50)  # ~15 MB of JSON waiting in the topic
        wait_until(lambda: sp.last_counts()["inflight"] >= limit - 64, TIMEOUT, msg="the window filled")
        seen = len(status.findall(sp.text()))
        peak = 0

        def twenty_more_status_lines():  # two seconds of the stall, observed through the status lines
            nonlocal peak
            peak = max(peak, _rss_kib(sp.proc.pid))
            return len(status.findall(sp.text())) >= seen + 20
        wait_until(twenty_more_status_lines, TIMEOUT, msg="status lines during the stall")
        lines = [tuple(map(int, m)) for m in status.findall(sp.text().rsplit("===== start", 1)[-1])]
        assert all(inflight <= limit for _, _, inflight in lines), lines
        consumed, written, _ = lines[-1]
        assert consumed - written <= limit and consumed < n // 10, lines[-1]
        # 15 MB of records wait in the topic; the processor holds its window and librdkafka's 1 MiB prefetch
        # (not under ASan, whose quarantine keeps freed memory resident)
        if not os.environ.get("SLUICE_SANITIZED") and "asan" not in os.path.basename(os.path.dirname(SLUICE_BIN)):
            assert peak - rss_before < 12 * 1024, (rss_before, peak)
    finally:
        store.proc.send_signal(signal.SIGCONT)
    wait_until(lambda: count_rows(session, "iot.vehicle_readings") == n, TIMEOUT, msg="all rows after the stall")
    wait_until(lambda: sp.last_counts()["written"] == n, 20, msg="counters")
    sp.stop()
    assert sp.last_counts() == {"consumed": n, "written": n, "dead_lettered": 0, "filtered": 0, "inflight": 0}


def test_pipeline_through_a_broker_with_tls_and_scram(tmp_path, store, session):
    """The simulator and the processor reach a broker that requires SASL_SSL (SCRAM-SHA-256 over TLS) by settings
    alone: `<role>.kafka.*` in the config file or on the command line."""
    import subprocess
    from conftest import Broker
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=60)
    b = Broker(tmp_path / "secure-broker", name="secure", sets={
        "broker.num_partitions": "2", "broker.tls_cert_file": cert, "broker.tls_key_file": key,
        "broker.sasl_mechanisms": "SCRAM-SHA-256", "broker.sasl_users": "pipeline:pw-1,other:pw-2"})
    b.start()
    try:
        n = 400
        secure = {"security_protocol": "sasl_ssl", "sasl_mechanism": "SCRAM-SHA-256", "sasl_username": "pipeline",
                  "sasl_password": "pw-1", "ssl_ca_file": cert}
        simulate(tmp_path, b.bootstrap, "vehicles", n, devices=4,
                 extra=[a for k, v in secure.items() for a in ("--set", "simulate.kafka.%s=%s" % (k, v))])
        sp = stream_proc(tmp_path, b.bootstrap, store, [os.path.join(EXAMPLES, "vehicles.yaml")],
                         sets=dict(("stream.kafka." + k, v) for k, v in secure.items())).start()
        wait_until(lambda: count_rows(session, "iot.vehicle_readings") == n, TIMEOUT, msg="rows via SASL_SSL")
        sp.stop()
        assert sp.last_counts() == {"consumed": n, "written": n, "dead_lettered": 0, "filtered": 0, "inflight": 0}
        # a property librdkafka does not know is a clear startup error, naming it
        bad = stream_proc(tmp_path, b.bootstrap, store, [os.path.join(EXAMPLES, "vehicles.yaml")], name="bad",
                          sets={"stream.kafka.properties": "no.such.property=1"})
        bad.start(wait_ready=False)
        assert bad.wait(TIMEOUT) != 0
        assert "no.such.property" in bad.text()
    finally:
        b.stop()


def test_pipeline_into_a_store_that_requires_tls(tmp_path, broker):
    """The processor reaches a CQL store that only speaks TLS by settings alone (stream.cql_tls.*), verifying its
    certificate; read back with the DataStax driver over TLS."""
    import ssl
    from conftest import Store, cql_harness
    cert, key = cql_harness.make_tls_cert(tmp_path)
    st = Store(tmp_path / "tls-store", {"store.tls_cert_file": cert, "store.tls_key_file": key}).start()
    try:
        n = 300
        simulate(tmp_path, broker.bootstrap, "vehicles", n, devices=3)
        sp = stream_proc(tmp_path, broker.bootstrap, st, [os.path.join(EXAMPLES, "vehicles.yaml")],
                         sets={"stream.cql_tls.enabled": "true", "stream.cql_tls.ca_file": cert}).start()
        ctx = ssl.create_default_context(cafile=cert)
        cluster = st.cluster(ssl_context=ctx)
        session = cluster.connect()
        try:
            wait_until(lambda: count_rows(session, "iot.vehicle_readings") == n, TIMEOUT, msg="rows over TLS")
        finally:
            cluster.shutdown()
        sp.stop()
        assert sp.last_counts()["written"] == n
        # without TLS the same processor cannot get in: it keeps saying why instead of becoming ready
        plain = stream_proc(tmp_path, broker.bootstrap, st, [os.path.join(EXAMPLES, "vehicles.yaml")], name="plain")
        plain.start(wait_ready=False)
        wait_until(lambda: "TLS" in plain.text() or "closed by the server" in plain.text(), TIMEOUT,
                   msg=lambda: "the plain processor explains:\n" + plain.tail())
        plain.stop()
    finally:
        st.stop()


def test_small_batch_byte_cap_keeps_every_row(tmp_path, broker, store, session):
    """stream.batch_max_bytes closes batches by size (for Cassandra's batch size limits): with a 1 KiB cap the rows
    go in many small batches and land exactly once."""
    n = 2000
    simulate(tmp_path, broker.bootstrap, "vehicles", n, devices=9)
    sp = stream_proc(tmp_path, broker.bootstrap, store, [os.path.join(EXAMPLES, "vehicles.yaml")],
                     sets={"stream.batch_max_bytes": "1KiB", "stream.batch_rows": 1000}).start()
    wait_until(lambda: count_rows(session, "iot.vehicle_readings") == n, TIMEOUT, msg="all rows written")
    assert stored_vehicles(session) == expected_vehicles(read_topic(broker.bootstrap, "vehicles", n))
    sp.stop()
    assert sp.last_counts()["written"] == n
    # ~110 bytes a row: at most 10 rows a request under a 1 KiB cap (64 rows and more without it)
    requests = int(re.findall(r"(\d+) write requests", sp.text())[-1])
    assert requests >= n // 10, requests


def test_batches_by_table_partition(tmp_path, broker, store, session):
    """stream.batch_by_table_partition: every batch holds one (device_id, day) partition, as Cassandra prefers;
    the rows land exactly once and the processor sends about one request per device per batch."""
    n = 2000
    simulate(tmp_path, broker.bootstrap, "vehicles", n, devices=40)
    sp = stream_proc(tmp_path, broker.bootstrap, store, [os.path.join(EXAMPLES, "vehicles.yaml")],
                     sets={"stream.batch_by_table_partition": "true", "stream.batch_rows": 64}).start()
    wait_until(lambda: count_rows(session, "iot.vehicle_readings") == n, TIMEOUT, msg="all rows written")
    assert stored_vehicles(session) == expected_vehicles(read_topic(broker.bootstrap, "vehicles", n))
    sp.stop()
    assert sp.last_counts()["written"] == n
    # a 64-row batch of one Kafka partition spans about 10 of the 40 devices: split by device it is about 10
    # requests (a whole batch per request would be about n/64 requests in all)
    requests = int(re.findall(r"(\d+) write requests", sp.text())[-1])
    assert requests >= n // 10, requests
