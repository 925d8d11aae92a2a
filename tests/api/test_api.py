"""HTTP tests of every endpoint of `sluice api` against a store holding simulated device data. Expected values come
from the DataStax Python driver reading the same store, or are computed here from its rows."""
import datetime
import json
import math
import socket
import threading
import time
import urllib.parse

import pytest

from conftest import NOW_MS, PROCESSORS, SPANS, WEARABLES, poll, day_of, ms_to_dt, start_api


def iso(dt):
    if isinstance(dt, datetime.datetime):
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)
    return str(dt)


def to_ms(dt):
    return int(dt.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000 + 0.5)


def driver_rows(cql, table, dev, frm, to):
    """Rows of one device in [frm, to) read by the Python driver, newest first."""
    out = []
    d = day_of(to - 1)
    while d >= day_of(frm):
        rs = cql.execute("SELECT * FROM iot.%s WHERE device_id=%%s AND day=%%s AND ts >= %%s AND ts < %%s" % table,
                         (dev, d, ms_to_dt(frm), ms_to_dt(to)))
        out.extend(rs)
        d -= datetime.timedelta(days=1)
    return out


def same_row(api_row, drv_row):
    for k, v in drv_row._asdict().items():
        got = api_row[k]
        if isinstance(v, datetime.datetime):
            assert got == iso(v), k
        elif v is not None and k == "day":
            assert got == str(v), k
        elif isinstance(v, float):
            assert isinstance(got, float) and got == v, (k, got, v)
        else:
            assert got == v, (k, got, v)


# ---------------------------------------------------------------------------------------------- operations

def test_health_ready_metrics_openapi(http):
    assert http.json("/health") == {"status": "ok"}
    assert http.json("/ready")["status"] == "ready"
    st, h, text = http.get("/metrics")
    assert st == 200 and h["content-type"].startswith("text/plain")
    assert "sluice_api_requests_total{endpoint=\"health\",code=\"2xx\"}" in text
    assert "sluice_api_store_up 1" in text
    doc = http.json("/openapi.json")
    assert doc["openapi"].startswith("3.")
    for p in ["/api/v1/devices", "/api/v1/devices/{id}/latest", "/api/v1/devices/{id}/readings",
              "/api/v1/devices/{id}/aggregate", "/api/v1/tables", "/api/v1/tables/{keyspace}/{table}",
              "/api/v1/tables/{keyspace}/{table}/rows", "/api/v1/pipelines", "/api/v1/pipelines/{name}/dead-letters",
              "/api/v1/live/devices/{id}", "/api/v1/live/tables/{keyspace}/{table}", "/metrics", "/health", "/ready"]:
        assert p in doc["paths"], p


# ------------------------------------------------------------------------------------------------- devices

def test_devices_list(http, cql):
    body = http.json("/api/v1/devices")
    ids = [d["device_id"] for d in body["devices"]]
    assert ids == sorted(list(SPANS) + list(WEARABLES))
    for d in body["devices"]:
        table = d["table"].split(".")[1]
        newest = driver_rows(cql, table, d["device_id"], NOW_MS - 3 * 86400_000, NOW_MS + 1)[0]
        assert d["last_seen"] == iso(newest.ts)
        same_row(d["latest"], newest)
    only = http.json("/api/v1/devices?table=wearable_readings")
    assert [d["device_id"] for d in only["devices"]] == sorted(WEARABLES)


def test_latest(http, cql):
    for dev, table in (("vehicle-0001", "vehicle_readings"), ("watch-0002", "wearable_readings")):
        body = http.json("/api/v1/devices/%s/latest" % dev)
        newest = driver_rows(cql, table, dev, NOW_MS - 3 * 86400_000, NOW_MS + 1)[0]
        assert body["table"] == "iot." + table and body["last_seen"] == iso(newest.ts)
        same_row(body["reading"], newest)
    body = http.json("/api/v1/devices/vehicle-0002?fields=speed")
    assert set(body["reading"]) == {"device_id", "day", "ts", "speed"}


def test_readings_page_through_every_row_once(http, cql):
    dev = "vehicle-0001"
    frm, to = NOW_MS - 28 * 3600_000, NOW_MS  # spans at least one day boundary
    expected = driver_rows(cql, "vehicle_readings", dev, frm, to)
    assert len(expected) > 1000
    seen, cursor, pages = [], None, 0
    while True:
        q = "from=%d&to=%d&limit=337" % (frm, to) + ("&cursor=" + urllib.parse.quote(cursor) if cursor else "")
        body = http.json("/api/v1/devices/%s/readings?%s" % (dev, q))
        assert body["count"] == len(body["readings"]) <= 337
        seen.extend(body["readings"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert body["count"] == 337
    assert pages == math.ceil(len(expected) / 337)
    assert [r["ts"] for r in seen] == [iso(r.ts) for r in expected]
    for a, b in zip(seen, expected):
        same_row(a, b)


def test_readings_ascending_and_fields(http, cql):
    dev = "vehicle-0003"
    frm = NOW_MS - 3600_000
    expected = list(reversed(driver_rows(cql, "vehicle_readings", dev, frm, NOW_MS)))
    seen, cursor = [], None
    while True:
        q = "from=%s&limit=50&order=asc&fields=speed,fuel_level" % urllib.parse.quote(iso(ms_to_dt(frm)))
        if cursor:
            q += "&to=%d&cursor=%s" % (NOW_MS, cursor)
        else:
            q += "&to=%d" % NOW_MS
        body = http.json("/api/v1/devices/%s/readings?%s" % (dev, q))
        seen.extend(body["readings"])
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert [r["ts"] for r in seen] == [iso(r.ts) for r in expected]
    assert all(set(r) == {"device_id", "day", "ts", "speed", "fuel_level"} for r in seen)
    assert [r["speed"] for r in seen] == [r.speed for r in expected]


@pytest.mark.parametrize("agg", ["avg", "min", "max", "sum", "count"])
@pytest.mark.parametrize("interval", ["1m", "1h", "1d"])
def test_aggregate_matches_independent_computation(http, cql, agg, interval):
    dev = "vehicle-0001"
    frm, to = NOW_MS - 26 * 3600_000, NOW_MS
    step = {"1m": 60_000, "1h": 3600_000, "1d": 86400_000}[interval]
    rows = driver_rows(cql, "vehicle_readings", dev, frm, to)
    buckets = {}
    for r in rows:
        b = to_ms(r.ts) // step * step
        buckets.setdefault(b, []).append(r)
    body = http.json("/api/v1/devices/%s/aggregate?from=%d&to=%d&interval=%s&agg=%s&fields=speed,mileage"
                     % (dev, frm, to, interval, agg))
    assert body["rows"] == len(rows)
    got = {b["ts"]: b for b in body["buckets"]}
    assert sorted(got) == [iso(ms_to_dt(b)) for b in sorted(buckets)]
    for b, rs in buckets.items():
        g = got[iso(ms_to_dt(b))]
        assert g["count"] == len(rs)
        for f in ("speed", "mileage"):
            vals = [getattr(r, f) for r in rs if getattr(r, f) is not None]
            want = {"avg": (sum(vals) / len(vals)) if vals else None, "min": min(vals) if vals else None,
                    "max": max(vals) if vals else None, "sum": sum(vals) if vals else None, "count": len(vals)}[agg]
            if want is None:
                assert g["values"][f] is None
            else:
                assert g["values"][f] == pytest.approx(want, rel=1e-9), (b, f)


def test_aggregate_default_fields_are_numeric(http):
    body = http.json("/api/v1/devices/watch-0001/aggregate?interval=1h&agg=max")
    assert "heart_rate" in body["fields"] and "model" not in body["fields"] and "ts" not in body["fields"]


# -------------------------------------------------------------------------------------------------- tables

def test_tables(http):
    body = http.json("/api/v1/tables")
    names = {"%s.%s" % (t["keyspace"], t["table"]) for t in body["tables"]}
    assert {"iot.vehicle_readings", "iot.wearable_readings"} <= names
    t = http.json("/api/v1/tables/iot/vehicle_readings")
    assert t["partition_key"] == ["device_id", "day"] and t["clustering"] == ["ts"] and t["device_table"]
    cols = {c["name"]: c["type"] for c in t["columns"]}
    assert cols["speed"] == "double" and cols["ts"] == "timestamp" and cols["day"] == "date"


def test_table_rows_by_partition_with_range_and_pages(http, cql):
    dev, day = "vehicle-0001", day_of(NOW_MS - 86400_000)
    frm, to = to_ms(datetime.datetime.combine(day, datetime.time())) + 3600_000, NOW_MS
    expected = list(cql.execute("SELECT * FROM iot.vehicle_readings WHERE device_id=%s AND day=%s AND ts >= %s "
                                "AND ts < %s", (dev, day, ms_to_dt(frm), ms_to_dt(to))))
    assert expected
    seen, cursor = [], None
    while True:
        q = "device_id=%s&day=%s&from=%d&to=%d&limit=100" % (dev, day, frm, to)
        if cursor:
            q += "&cursor=" + cursor
        body = http.json("/api/v1/tables/iot/vehicle_readings/rows?" + q)
        seen.extend(body["rows"])
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(expected)
    for a, b in zip(seen, expected):
        same_row(a, b)


def test_table_rows_whole_table_pages(http, cql):
    expected = {(r.device_id, iso(r.ts)) for r in cql.execute("SELECT device_id, ts FROM iot.wearable_readings")}
    seen, cursor = [], None
    while True:
        body = http.json("/api/v1/tables/iot/wearable_readings/rows?limit=77" + ("&cursor=" + cursor if cursor else ""))
        seen.extend((r["device_id"], r["ts"]) for r in body["rows"])
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == len(expected) and set(seen) == expected


def test_typed_json(http, cql):
    row = http.json("/api/v1/tables/iot/wearable_readings/rows?limit=1")["rows"][0]
    assert isinstance(row["heart_rate"], int) and isinstance(row["steps"], int)
    assert isinstance(row["temperature_c"], float) and row["charging"] is False and row["calories"] is None
    datetime.datetime.strptime(row["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")


# ----------------------------------------------------------------------------------------------- pipelines

def test_pipelines_and_dead_letters(http):
    body = http.json("/api/v1/pipelines")
    pipes = {p["name"]: p for p in body["pipelines"]}
    assert set(pipes) == {"vehicles", "wearables"}
    p = pipes["vehicles"]
    # the running processors' counters add up; the one that stopped refreshing its row is shown, not counted
    running = [c for pipe, _, _, c, age in PROCESSORS if pipe == "vehicles" and age < 90_000]
    assert len(running) == 2
    expect = [sum(c[i] for c in running) for i in range(6)]
    assert [p[k] for k in ("consumed", "written", "dead_lettered", "filtered", "inflight", "lag")] == expect
    assert p["consumed"] == p["written"] + p["dead_lettered"] + p["filtered"] + p["inflight"]
    assert p["state"] == "running" and p["processors_running"] == 2
    assert {x["processor"]: x["state"] for x in p["processors"]} == {
        "host-a:101": "running", "host-b:202": "running", "host-c:303": "unresponsive"}
    assert p["table_name"] == "vehicle_readings" and p["dead_letter_topic"] == "vehicles.dlq"
    assert [x["lag"] for x in p["partitions"]] == [5, 7]
    # no processor runs: the last one's state and counters
    w = pipes["wearables"]
    assert w["state"] == "stopped" and w["processors_running"] == 0
    assert (w["consumed"], w["written"], w["dead_lettered"]) == (50, 49, 1)
    dl = http.json("/api/v1/pipelines/vehicles/dead-letters?limit=5")
    assert dl["count"] == 5 and dl["dead_letters"][0]["reason"] == "expected a number"
    assert dl["dead_letters"][0]["ts"] > dl["dead_letters"][1]["ts"]
    assert http.json("/api/v1/pipelines/other/dead-letters")["count"] == 0


# ------------------------------------------------------------------------------------------------ bad input

BAD = [
    ("/api/v1/devices/vehicle-0001/readings?from=yesterday", 400, "bad_parameter"),
    ("/api/v1/devices/vehicle-0001/readings?to=12345678901234567", 400, "bad_parameter"),
    ("/api/v1/devices/vehicle-0001/readings?from=0", 400, "range_too_large"),
    ("/api/v1/devices/vehicle-0001/readings?to=0&from=10", 400, "bad_range"),
    ("/api/v1/devices/vehicle-0001/readings?limit=0", 400, "bad_parameter"),
    ("/api/v1/devices/vehicle-0001/readings?limit=1000000", 400, "bad_parameter"),
    ("/api/v1/devices/vehicle-0001/readings?limit=abc", 400, "bad_parameter"),
    ("/api/v1/devices/vehicle-0001/readings?cursor=zzz", 400, "bad_cursor"),
    ("/api/v1/devices/vehicle-0001/readings?cursor=a123", 400, "bad_cursor"),
    ("/api/v1/devices/vehicle-0001/readings?fields=nope", 400, "bad_parameter"),
    ("/api/v1/devices/vehicle-0001/readings?order=up", 400, "bad_parameter"),
    ("/api/v1/devices/vehicle-0001/readings?bogus=1", 400, "bad_parameter"),
    ("/api/v1/devices/vehicle-0001/aggregate?interval=5m", 400, "bad_parameter"),
    ("/api/v1/devices/vehicle-0001/aggregate?agg=median", 400, "bad_parameter"),
    ("/api/v1/devices/vehicle-0001/aggregate?fields=address", 400, "bad_parameter"),
    ("/api/v1/devices/vehicle-0001/aggregate?interval=1m&from=0&to=%d" % (30 * 86400_000), 400, "too_many_intervals"),
    ("/api/v1/devices/no-such-device/latest", 404, "unknown_device"),
    ("/api/v1/devices/no-such-device/readings", 404, "unknown_device"),
    ("/api/v1/devices/vehicle-0001/latest?table=nope", 404, "unknown_table"),
    ("/api/v1/tables/iot/nope", 404, "unknown_table"),
    ("/api/v1/tables/iot/vehicle_readings/rows?device_id=x", 400, "incomplete_key"),
    ("/api/v1/tables/iot/vehicle_readings/rows?device_id=x&day=notadate", 400, "bad_value"),
    ("/api/v1/tables/iot/vehicle_readings/rows?from=0", 400, "bad_parameter"),
    ("/api/v1/tables/iot/vehicle_readings/rows?cursor=!!", 400, "bad_cursor"),
    ("/api/v1/tables/iot/vehicle_readings/rows?speed=1", 400, "bad_parameter"),
    ("/api/v1/live/tables/sluice_meta/pipeline_processors", 400, "not_a_device_table"),
    ("/api/v1/nothing", 404, "not_found"),
    ("/api/v1/devices/%ZZ/latest", 400, "bad_path"),
    ("/api/v1/devices/vehicle-0001/readings?from=%ZZ", 400, None),
]


@pytest.mark.parametrize("path,status,code", BAD)
def test_bad_requests_get_a_json_4xx(http, path, status, code):
    st, _, body = http.get(path)
    assert st == status, body
    assert isinstance(body, dict) and body["error"]["message"]
    if code:
        assert body["error"]["code"] == code


def test_garbage_on_the_socket_keeps_the_server_serving(api, http):
    junk = [b"GARBAGE\r\n\r\n", b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /health HTTP/1.1\r\n" + b"X: y\r\n" * 5000 + b"\r\n", b"\x00\xff" * 1000,
            b"POST /api/v1/devices HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
            b"GET /api/v1/devices/vehicle-0001/readings?limit=1 HTTP/1.1\r\nHost: x\r\n\r\n"]
    for j in junk:
        s = socket.create_connection((api.host, api.port), timeout=5)
        try:
            s.sendall(j)
            s.shutdown(socket.SHUT_WR)
            while s.recv(65536):
                pass
        except OSError:
            pass
        finally:
            s.close()
    # a client that goes away while its answer is being computed
    for _ in range(20):
        s = socket.create_connection((api.host, api.port), timeout=5)
        s.sendall(b"GET /api/v1/devices/vehicle-0001/aggregate?interval=1m HTTP/1.1\r\nHost: x\r\n\r\n")
        s.close()
    assert http.json("/health") == {"status": "ok"}
    assert http.json("/api/v1/devices/vehicle-0002/latest")["device_id"] == "vehicle-0002"


def test_method_not_allowed(api):
    s = socket.create_connection((api.host, api.port), timeout=5)
    s.sendall(b"DELETE /api/v1/devices HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    assert data.startswith(b"HTTP/1.1 405")


# ------------------------------------------------------------------------------------------------------ live

class Sse:
    def __init__(self, api, path):
        self.sock = socket.create_connection((api.host, api.port), timeout=10)
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n" % path).encode())
        self.buf = b""
        self.events = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return
                with self.lock:
                    self.buf += chunk
                    while b"\n\n" in self.buf:
                        ev, self.buf = self.buf.split(b"\n\n", 1)
                        for line in ev.split(b"\n"):
                            if line.startswith(b"data: "):
                                self.events.append(json.loads(line[6:]))
        except OSError:
            return

    def close(self):
        self.sock.close()


def test_live_device_stream(api, cql):
    dev = "vehicle-0002"
    s = Sse(api, "/api/v1/live/devices/" + dev)
    try:
        poll(lambda: s.events, 10, msg="the first live event")
        first = s.events[0]
        assert first["device_id"] == dev and first["reading"]["ts"] == iso(
            driver_rows(cql, "vehicle_readings", dev, NOW_MS - 86400_000, NOW_MS + 1)[0].ts)
        new_ts = NOW_MS + 1000
        cql.execute("INSERT INTO iot.vehicle_readings (device_id, day, ts, speed) VALUES (%s, %s, %s, %s)",
                    (dev, day_of(new_ts), ms_to_dt(new_ts), 42.5))
        poll(lambda: any(e["reading"]["ts"] == iso(ms_to_dt(new_ts)) for e in s.events), 10, msg="the new reading")
        ev = [e for e in s.events if e["reading"]["ts"] == iso(ms_to_dt(new_ts))][0]
        assert ev["reading"]["speed"] == 42.5
    finally:
        s.close()


def test_live_table_stream(api):
    s = Sse(api, "/api/v1/live/tables/iot/wearable_readings")
    try:
        poll(lambda: {e["device_id"] for e in s.events} >= set(WEARABLES), 15, msg="a reading of every wearable")
    finally:
        s.close()
    assert api.http.json("/health")["status"] == "ok"


def test_slow_live_client_is_bounded(api, cql):
    """A client that never reads: the server coalesces instead of buffering every event."""
    dev = "vehicle-0003"
    s = socket.create_connection((api.host, api.port), timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(("GET /api/v1/live/devices/%s HTTP/1.1\r\nHost: x\r\n\r\n" % dev).encode())
    long_text = "x" * 2000
    ins = cql.prepare("INSERT INTO iot.vehicle_readings (device_id, day, ts, address) VALUES (?, ?, ?, ?)")
    base = NOW_MS + 2000
    for i in range(3000):
        ts = base + i
        cql.execute(ins, (dev, day_of(ts), ms_to_dt(ts), long_text))

    def dropped():
        st, _, text = api.http.get("/metrics")
        for line in text.splitlines():
            if line.startswith("sluice_api_live_dropped_total"):
                return int(line.split()[1]) > 0
        return False

    poll(dropped, 20, msg="events coalesced for the slow client")
    s.close()
    assert api.http.json("/health")["status"] == "ok"


# -------------------------------------------------------------------------------------------------- scale-out

def test_two_instances_answer_the_same(tmp_path, store, data, http):
    other = start_api(tmp_path / "api2", store)
    try:
        for p in ["/api/v1/devices/vehicle-0001/readings?from=%d&to=%d&limit=500" % (NOW_MS - 7200_000, NOW_MS),
                  "/api/v1/devices/watch-0001/aggregate?from=%d&to=%d&interval=1h&agg=avg" % (NOW_MS - 7200_000, NOW_MS),
                  "/api/v1/tables"]:
            assert other.http.json(p) == http.json(p)
        # a cursor from one instance continues on the other
        a = http.json("/api/v1/tables/iot/wearable_readings/rows?limit=10")
        b = other.http.json("/api/v1/tables/iot/wearable_readings/rows?limit=10&cursor=" + a["next_cursor"])
        c = http.json("/api/v1/tables/iot/wearable_readings/rows?limit=20")
        assert a["rows"] + b["rows"] == c["rows"]
    finally:
        other.stop()


def nginx_config(workdir, listen_port, backends):
    """deploy/nginx.conf with this run's ports."""
    import os
    import re

    with open(os.path.join(os.path.dirname(__file__), "..", "..", "deploy", "nginx.conf")) as f:
        text = f.read()
    text = text.replace("listen 127.0.0.1:8080;", "listen 127.0.0.1:%d;" % listen_port)
    text = text.replace("server 127.0.0.1:8081 ", "server %s " % backends[0])
    text = text.replace("server 127.0.0.1:8082 ", "server %s " % backends[1])
    text = re.sub(r"worker_processes auto;", "worker_processes 1;", text)
    for d in ("tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
        os.makedirs(os.path.join(str(workdir), d), exist_ok=True)
    path = os.path.join(str(workdir), "nginx.conf")
    with open(path, "w") as f:
        f.write(text)
    return path


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.skipif(not __import__("os").path.exists("/usr/sbin/nginx"), reason="Debian's nginx is not installed")
def test_two_instances_behind_nginx(tmp_path, store, data, api):
    import subprocess

    from conftest import Http

    other = start_api(tmp_path / "api2", store)
    nginx = None
    try:
        port = free_port()
        conf = nginx_config(tmp_path, port, ["%s:%d" % (api.host, api.port), "%s:%d" % (other.host, other.port)])
        nginx = subprocess.Popen(["/usr/sbin/nginx", "-p", str(tmp_path), "-c", conf, "-g", "daemon off;"],
                                 stderr=subprocess.PIPE)
        lb = Http("http://127.0.0.1:%d" % port)
        poll(lambda: lb.get("/health")[0] == 200, 10, msg="nginx")
        path = "/api/v1/devices/vehicle-0002/readings?from=%d&to=%d&limit=1000" % (NOW_MS - 3600_000, NOW_MS)
        want = api.http.json(path)
        assert other.http.json(path) == want
        for _ in range(6):  # least_conn spreads these over both instances
            assert lb.json(path) == want
        # pages fetched through the balancer, whichever instance serves each, visit every row once
        seen, cursor = [], None
        while True:
            body = lb.json("/api/v1/tables/iot/wearable_readings/rows?limit=50" + ("&cursor=" + cursor if cursor else ""))
            seen.extend((r["device_id"], r["ts"]) for r in body["rows"])
            cursor = body["next_cursor"]
            if not cursor:
                break
        assert len(seen) == len(set(seen)) == len(api.http.json("/api/v1/tables/iot/wearable_readings/rows?limit=5000")["rows"])
        metrics = [Http("http://%s:%d" % (a.host, a.port)).get("/metrics")[2] for a in (api, other)]
        assert all('endpoint="device_readings"' in m for m in metrics), "both instances served readings"
        # a live stream through nginx
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /api/v1/live/devices/vehicle-0001 HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        deadline = time.monotonic() + 10
        while b"event: reading" not in got and time.monotonic() < deadline:
            got += s.recv(65536)
        s.close()
        assert b"event: reading" in got
    finally:
        if nginx:
            nginx.terminate()
            nginx.wait(timeout=10)
        other.stop()
