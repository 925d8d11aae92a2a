"""Bearer tokens (api.tokens, api.tokens_file) and TLS (api.tls_cert_file, api.tls_key_file) on `sluice api`.

The answers of an API with tokens are compared with those of the session's API without them (the `http` fixture):
a token changes who may ask, never what is answered. Certificates are made here with the openssl CLI."""
import http.client
import json
import os
import re
import socket
import ssl
import struct
import subprocess
import time

import pytest

from conftest import NOW_MS, REPO, SLUICE_BIN, Http, poll, start_api

TOKENS = ["alpha-1", "beta.2", "gamma_3+/=="]  # api.tokens holds the first two, api.tokens_file the third
CHALLENGE = 'Bearer realm="sluice"'
INVALID = 'Bearer realm="sluice", error="invalid_token"'
PROTECTED = ["/api/v1/devices", "/api/v1/devices/vehicle-0001/latest", "/api/v1/devices/vehicle-0001/readings",
             "/api/v1/devices/vehicle-0001/aggregate?interval=1h&agg=max", "/api/v1/tables",
             "/api/v1/tables/iot/vehicle_readings", "/api/v1/tables/iot/vehicle_readings/rows?limit=3",
             "/api/v1/pipelines", "/api/v1/pipelines/vehicles/dead-letters", "/metrics", "/openapi.json",
             "/api/v1/openapi.json",
             # unknown endpoints too: without a token nothing says which endpoints exist
             "/api/v1/nothing", "/api/v2/devices", "/metrics/x"]
LIVE = ["/api/v1/live/devices/vehicle-0001", "/api/v1/live/tables/iot/wearable_readings"]


def bearer(token):
    return {"Authorization": "Bearer " + token}


@pytest.fixture(scope="module")
def authed(tmp_path_factory, store, data):
    work = tmp_path_factory.mktemp("api-auth")
    tokens_file = work / "tokens"
    tokens_file.write_text("# the dashboard's token\n\n  %s  \n" % TOKENS[2])
    a = start_api(work, store, ["--set", "api.tokens=%s, %s," % (TOKENS[0], TOKENS[1]),
                                "--set", "api.tokens_file=%s" % tokens_file])
    yield a
    a.stop()


def rejected(a, path, headers=None):
    st, h, body = a.http.get(path, headers=headers)
    return st, h.get("www-authenticate"), body


# ---------------------------------------------------------------------------------------------------- tokens

@pytest.mark.parametrize("path", PROTECTED + LIVE)
def test_no_token_gets_401_with_a_challenge(authed, path):
    st, challenge, body = rejected(authed, path)
    assert st == 401, body
    assert challenge == CHALLENGE
    assert body["error"]["code"] == "unauthorized" and "Bearer" in body["error"]["message"]


@pytest.mark.parametrize("auth", ["Bearer wrong", "Bearer " + TOKENS[0][:-1], "Bearer " + TOKENS[0] + "x",
                                  "Bearer " + TOKENS[0].upper(), "Bearer " + TOKENS[0] + "," + TOKENS[1],
                                  "Bearer " + "a" * 5000, "Bearer ", "Bearer", "bearer \t"])
def test_wrong_token_gets_401_invalid_token(authed, auth):
    for path in ("/api/v1/devices", "/metrics", LIVE[0]):
        st, challenge, body = rejected(authed, path, {"Authorization": auth})
        assert st == 401, (path, body)
        assert challenge == INVALID
        assert body["error"]["code"] == "unauthorized"


def test_other_schemes_are_no_credentials(authed):
    for auth in ("Basic " + TOKENS[0], TOKENS[0], "Token " + TOKENS[0], "Bearer" + TOKENS[0]):
        st, challenge, _ = rejected(authed, "/api/v1/devices", {"Authorization": auth})
        assert (st, challenge) == (401, CHALLENGE), auth


def test_right_token_gets_the_same_answers_as_an_open_api(authed, http):
    t0, t1 = NOW_MS - 3 * 3600_000, NOW_MS
    paths = ["/api/v1/devices", "/api/v1/devices/vehicle-0001/latest",
             "/api/v1/devices/vehicle-0001/readings?from=%d&to=%d&limit=50&order=asc" % (t0, t1),
             "/api/v1/devices/vehicle-0001/aggregate?from=%d&to=%d&interval=1h&agg=avg" % (t0, t1),
             "/api/v1/tables", "/api/v1/tables/iot/wearable_readings/rows?limit=5",
             "/api/v1/pipelines/vehicles/dead-letters", "/openapi.json"]
    for token in TOKENS:
        for path in paths:
            st, _, body = authed.http.get(path, headers=bearer(token))
            assert st == 200, (token, path, body)
            assert body == http.json(path), path
    # the scheme is case-insensitive (RFC 7235), whitespace around the token is not part of it
    for auth in ("bearer " + TOKENS[1], "BEARER   %s  " % TOKENS[1]):
        assert authed.http.get("/api/v1/tables", headers={"Authorization": auth})[0] == 200, auth
    st, h, text = authed.http.get("/metrics", headers=bearer(TOKENS[0]))
    assert st == 200 and h["content-type"].startswith("text/plain") and "sluice_api_store_up 1" in text


def test_health_ready_and_dashboard_stay_open(authed):
    st, h, body = authed.http.get("/health")
    assert (st, body) == (200, {"status": "ok"}) and "www-authenticate" not in h
    assert authed.http.get("/health", headers=bearer("wrong"))[0] == 200  # a token is not looked at there
    st, _, body = authed.http.get("/ready")
    assert (st, body["status"]) == (200, "ready")
    if os.path.exists(os.path.join(REPO, "web", "dist", "index.html")):
        for path in ("/", "/index.html", "/app.js", "/app.css"):
            st, h, _ = authed.http.get(path)
            assert st == 200 and "www-authenticate" not in h, path


def test_a_token_in_the_query_is_refused_except_on_live_streams(authed):
    q = "access_token=" + TOKENS[0]
    for path in ("/api/v1/devices?" + q, "/api/v1/tables/iot/vehicle_readings/rows?limit=1&" + q,
                 "/metrics?" + q, "/openapi.json?" + q, "/api/v1/devices/vehicle-0001/latest?" + q):
        st, challenge, body = rejected(authed, path)
        assert (st, challenge) == (401, CHALLENGE), (path, body)
        assert "live streams" in body["error"]["message"]
    # the header and the query at once: RFC 6750 allows one method per request
    st, challenge, body = rejected(authed, LIVE[0] + "?" + q, bearer(TOKENS[0]))
    assert (st, body["error"]["code"]) == (400, "invalid_request")
    assert challenge == 'Bearer realm="sluice", error="invalid_request"'
    st, _, body = rejected(authed, "/api/v1/devices?" + q, bearer(TOKENS[0]))
    assert st == 400, body


def read_event(resp):
    """The JSON of the next `data:` line of an event stream."""
    while True:
        line = resp.readline()
        assert line, "the stream ended"
        if line.startswith(b"data: "):
            return json.loads(line[6:])


def open_stream(a, path, headers=None, context=None):
    if context:
        conn = http.client.HTTPSConnection(a.host, a.port, timeout=20, context=context)
    else:
        conn = http.client.HTTPConnection(a.host, a.port, timeout=20)
    conn.request("GET", path, headers=dict({"Accept": "text/event-stream"}, **(headers or {})))
    return conn, conn.getresponse()


@pytest.mark.parametrize("path,device", [(LIVE[0], "vehicle-0001"), (LIVE[1], None)])
def test_live_streams_take_access_token(authed, path, device):
    for token in (TOKENS[0], TOKENS[2]):  # '+', '/' and '=' percent-encoded, as browsers do
        conn, r = open_stream(authed, path + "?access_token=" + "".join(
            c if c.isalnum() or c in "-._~" else "%%%02X" % ord(c) for c in token))
        try:
            assert r.status == 200 and r.getheader("content-type") == "text/event-stream"
            ev = read_event(r)
            assert ev["device_id"] == device if device else ev["device_id"].startswith("watch-")
        finally:
            conn.close()
    conn, r = open_stream(authed, path, bearer(TOKENS[1]))  # the header works there too
    try:
        assert r.status == 200 and read_event(r)["reading"]
    finally:
        conn.close()
    for query, challenge in (("", CHALLENGE), ("?access_token=wrong", INVALID), ("?access_token=", INVALID),
                             ("?access_token=" + "a" * 5000, INVALID)):
        conn, r = open_stream(authed, path + query)
        try:
            body = json.loads(r.read())
            assert (r.status, r.getheader("www-authenticate")) == (401, challenge), query
            assert body["error"]["code"] == "unauthorized"
        finally:
            conn.close()


def metric(text, name):
    m = re.search(r"^%s (\d+)$" % re.escape(name), text, re.M)
    return int(m.group(1)) if m else None


def test_rejections_are_counted(authed, http):
    def counters():
        text = authed.http.get("/metrics", headers=bearer(TOKENS[0]))[2]
        return [metric(text, 'sluice_api_auth_rejected_total{reason="%s"}' % r)
                for r in ("missing", "invalid_token", "invalid_request")]

    before = counters()
    assert None not in before
    authed.http.get("/api/v1/pipelines")
    authed.http.get("/api/v1/pipelines", headers=bearer("wrong"))
    authed.http.get("/api/v1/pipelines", headers=bearer("wrong"))
    authed.http.get(LIVE[0] + "?access_token=x", headers=bearer(TOKENS[0]))
    assert counters() == [before[0] + 1, before[1] + 2, before[2] + 1]
    text = authed.http.get("/metrics", headers=bearer(TOKENS[0]))[2]
    assert metric(text, 'sluice_api_requests_total{endpoint="pipelines",code="4xx"}') >= 3
    # an API without tokens has nothing to count
    assert "sluice_api_auth_rejected_total" not in http.get("/metrics")[2]


def test_openapi_describes_the_security(http):
    doc = http.json("/openapi.json")
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": doc["components"]["securitySchemes"]["bearer"]["description"]}
    assert doc["security"] == [{"bearer": []}]
    assert doc["paths"]["/health"]["get"]["security"] == [] and doc["paths"]["/ready"]["get"]["security"] == []
    assert {"access_token": []} in doc["paths"]["/api/v1/live/devices/{id}"]["get"]["security"]
    assert "401" in doc["paths"]["/api/v1/devices"]["get"]["responses"]


# ------------------------------------------------------------------------------------------ bad configurations

def run_api(args, timeout=60):
    """Runs `sluice api` expected to refuse to start: (exit status, its output)."""
    r = subprocess.run([SLUICE_BIN, "api", "--listen", "127.0.0.1:0", "--cql", "127.0.0.1:1"] + args,
                       capture_output=True, text=True, timeout=timeout)
    out = r.stdout + r.stderr
    assert "Sanitizer" not in out, out  # a failed start frees what it made, like a stop
    return r.returncode, out


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, its key, and a key of another pair."""
    d = tmp_path_factory.mktemp("certs")
    cert, key, other = str(d / "cert.pem"), str(d / "key.pem"), str(d / "other.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"], check=True, capture_output=True)
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-out", other], check=True, capture_output=True)
    return {"cert": cert, "key": key, "other": other, "dir": str(d)}


def test_bad_security_settings_stop_the_start(tmp_path, certs):
    cases = [
        (["--set", "api.tls_cert_file=" + certs["cert"]], ["api.tls_key_file"]),
        (["--set", "api.tls_key_file=" + certs["key"]], ["api.tls_cert_file"]),
        (["--set", "api.tls_cert_file=" + str(tmp_path / "nope.pem"), "--set", "api.tls_key_file=" + certs["key"]],
         ["api.tls_cert_file", str(tmp_path / "nope.pem"), "No such file"]),
        (["--set", "api.tls_cert_file=" + certs["cert"], "--set", "api.tls_key_file=" + str(tmp_path / "nokey.pem")],
         ["api.tls_key_file", str(tmp_path / "nokey.pem")]),
        (["--set", "api.tls_cert_file=" + certs["key"], "--set", "api.tls_key_file=" + certs["key"]],
         ["api.tls_cert_file", certs["key"]]),  # not a certificate
        (["--set", "api.tls_cert_file=" + certs["cert"], "--set", "api.tls_key_file=" + certs["other"]],
         ["api.tls_key_file", certs["other"]]),  # the key of another certificate
        (["--set", "api.tokens= , ,"], ["api.tokens", "no token"]),  # asked for authentication, named no token
        (["--set", "api.tokens=good,has space"], ["api.tokens"]),
        (["--set", "api.tokens_file=" + str(tmp_path / "none")], ["api.tokens_file", str(tmp_path / "none")]),
    ]
    for args, words in cases:
        rc, out = run_api(args)
        assert rc != 0, (args, out)
        for w in words:
            assert w in out, (args, w, out)
        assert "listening" not in out, out


# ------------------------------------------------------------------------------------------------------- TLS

@pytest.fixture(scope="module")
def tls_api(tmp_path_factory, store, data, certs):
    ctx = ssl.create_default_context(cafile=certs["cert"])  # verifies the chain and that it names 127.0.0.1
    a = start_api(tmp_path_factory.mktemp("api-tls"), store,
                  ["--set", "api.tls_cert_file=" + certs["cert"], "--set", "api.tls_key_file=" + certs["key"],
                   "--set", "api.tokens=tls-token"], context=ctx)
    a.ctx = ctx
    yield a
    a.stop()


def test_https_serves_the_same_answers(tls_api, http, certs):
    assert tls_api.http.base.startswith("https://")
    assert tls_api.http.json("/health") == {"status": "ok"}
    for path in ("/api/v1/devices", "/api/v1/tables", "/api/v1/devices/vehicle-0002/latest"):
        st, _, body = tls_api.http.get(path, headers=bearer("tls-token"))
        assert st == 200 and body == http.json(path), path
    st, h, _ = tls_api.http.get("/api/v1/devices")
    assert (st, h.get("www-authenticate")) == (401, CHALLENGE)
    # the certificate presented is the configured one
    with socket.create_connection((tls_api.host, tls_api.port), timeout=10) as raw:
        with tls_api.ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            with open(certs["cert"]) as f:
                assert s.getpeercert(binary_form=True) == ssl.PEM_cert_to_DER_cert(f.read())
            assert s.version() in ("TLSv1.2", "TLSv1.3")


@pytest.mark.parametrize("offer,chosen", [(["h2", "http/1.1"], "h2"), (["http/1.1"], "http/1.1")])
def test_alpn_offers_http2(tls_api, certs, offer, chosen):
    c = ssl.create_default_context(cafile=certs["cert"])
    c.set_alpn_protocols(offer)
    raw = socket.create_connection((tls_api.host, tls_api.port), timeout=10)
    with c.wrap_socket(raw, server_hostname="127.0.0.1") as s:
        assert s.selected_alpn_protocol() == chosen
        if chosen == "http/1.1":
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            assert data.startswith(b"HTTP/1.1 200") and b'{"status":"ok"}' in data
        else:  # the HTTP/2 connection preface and an empty SETTINGS frame: the server answers with its SETTINGS
            s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
            head = b""
            while len(head) < 9:
                chunk = s.recv(9 - len(head))
                assert chunk, "the server closed the HTTP/2 connection"
                head += chunk
            assert head[3] == 4 and head[4] & 1 == 0  # type SETTINGS, not an ACK


def test_plain_http_to_the_tls_port_fails(tls_api):
    s = socket.create_connection((tls_api.host, tls_api.port), timeout=20)
    data = b""
    try:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        while True:  # the server ends the connection: not a TLS handshake
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    finally:
        s.close()
    assert not data.startswith(b"HTTP/"), data
    with pytest.raises(Exception):
        Http("http://%s:%d" % (tls_api.host, tls_api.port)).get("/health", timeout=20)
    assert tls_api.http.json("/health") == {"status": "ok"}  # and it still serves HTTPS


def test_live_stream_over_tls(tls_api):
    conn, r = open_stream(tls_api, LIVE[0] + "?access_token=tls-token", context=tls_api.ctx)
    try:
        assert r.status == 200 and read_event(r)["device_id"] == "vehicle-0001"
    finally:
        conn.close()


def test_connections_reset_by_clients_are_closed(tls_api, certs):
    """A client that resets the connection (RST) after the handshake, or after a request: the server's close writes
    a close_notify that libuv refuses at once, and libh2o 2.2 would wait for that write forever, keeping the
    descriptor (and never finishing a stop). The open connections must come back to what they were."""
    def open_connections():
        return metric(tls_api.http.get("/metrics", headers=bearer("tls-token"))[2], "sluice_api_connections")

    before = open_connections()  # this request's own, and live streams of earlier tests not yet written to
    ctx = ssl.create_default_context(cafile=certs["cert"])
    for i in range(20):
        s = ctx.wrap_socket(socket.create_connection((tls_api.host, tls_api.port), timeout=10),
                            server_hostname="127.0.0.1")
        if i % 2:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(65536).startswith(b"HTTP/1.1 200")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset
        s.close()
    poll(lambda: open_connections() <= before, 10, msg="the reset connections to be closed")


@pytest.mark.skipif(subprocess.run(["curl", "-V"], capture_output=True, text=True).stdout.find("HTTP2") < 0,
                    reason="curl without HTTP/2")
def test_stop_after_an_http2_live_client_went_away(tmp_path, store, data, certs):
    """Over HTTP/2 (what browsers speak over TLS) a client that goes away is seen at once, so its live stream ends
    before any stop; the stop must still finish."""
    ctx = ssl.create_default_context(cafile=certs["cert"])
    a = start_api(tmp_path / "api", store, ["--set", "api.tls_cert_file=" + certs["cert"],
                                            "--set", "api.tls_key_file=" + certs["key"]], context=ctx)
    try:
        c = subprocess.Popen(["curl", "-sN", "--http2", "--cacert", certs["cert"],
                              a.http.base + "/api/v1/live/devices/vehicle-0001"], stdout=subprocess.PIPE)
        try:
            assert c.stdout.readline().startswith(b"retry:")
            assert metric(a.http.get("/metrics")[2], "sluice_api_live_clients") == 1
        finally:
            c.kill()
            c.wait()
        poll(lambda: metric(a.http.get("/metrics")[2], "sluice_api_live_clients") == 0, 10, msg="the stream to end")
    finally:
        a.stop()  # exits 0 on SIGTERM, or fails the test


def test_stop_does_not_wait_for_an_idle_keep_alive_client(tmp_path, store, data, certs):
    """libh2o 2.2 asks only HTTP/2 connections to close on a stop; an idle HTTP/1.1 keep-alive client would hold it
    for h2o's 10 s timeout. After the 5 s grace the server shuts such sockets down itself."""
    ctx = ssl.create_default_context(cafile=certs["cert"])
    a = start_api(tmp_path / "api", store, ["--set", "api.tls_cert_file=" + certs["cert"],
                                            "--set", "api.tls_key_file=" + certs["key"]], context=ctx)
    s = ctx.wrap_socket(socket.create_connection((a.host, a.port), timeout=30), server_hostname="127.0.0.1")
    try:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(65536).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        a.stop()
        assert time.monotonic() - started < 9, "the stop waited for h2o's keep-alive timeout"
    finally:
        s.close()


def test_api_reads_a_store_that_requires_tls(tmp_path, certs):
    """api.cql_tls.*: the API reaches a TLS-only store, verifying its certificate; without the CA it stays unready
    and says why."""
    from conftest import Proc
    st = Proc(tmp_path / "tls-store", "store", ["--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data"),
                                                "--set", "store.tls_cert_file=" + certs["cert"],
                                                "--set", "store.tls_key_file=" + certs["key"]])
    st.start()
    try:
        a = start_api(tmp_path / "api-tls-cql", st, ["--set", "api.cql_tls.enabled=true",
                                                     "--set", "api.cql_tls.ca_file=" + certs["cert"]])
        status, _, body = a.http.get("/api/v1/tables")  # /ready (polled by start_api) needs the store; so does this
        assert status == 200 and body["count"] == 0, body
        a.stop()
        # TLS on but no CA that signs the store's certificate: never ready, and the log says the handshake failed
        b = Proc(tmp_path / "api-no-ca", "api", ["--listen", "127.0.0.1:0", "--cql", "%s:%d" % (st.host, st.port),
                                                 "--set", "api.cql_tls.enabled=true"])
        b.start()
        b.http = Http("http://%s:%d" % (b.host, b.port))
        poll(lambda: "certificate verify failed" in b.log_tail(400), 30, msg="the API explains the refused certificate")
        assert b.http.get("/ready")[0] == 503
        b.stop()
    finally:
        st.stop()
