"""PasswordAuthenticator and TLS on the store's CQL port, with the DataStax Python driver (default settings apart
from the auth provider / ssl_context) and raw frames.

    /usr/bin/python3 -m pytest tests/compat/cql/test_cql_auth_tls.py -q
"""
import socket
import ssl
import struct

import pytest
from cassandra import AuthenticationFailed
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import NoHostAvailable

from conftest import make_tls_cert

USERS = "alice:s3cret,bob:hunter2:with:colons"


@pytest.fixture(scope="module")
def auth_store(store_with):
    return store_with({"store.authenticator": "PasswordAuthenticator", "store.users": USERS})


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    return make_tls_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_store(store_with, tls_files):
    cert, key = tls_files
    return store_with({"store.tls_cert_file": cert, "store.tls_key_file": key})


@pytest.fixture(scope="module")
def tls_auth_store(store_with, tls_files):
    cert, key = tls_files
    return store_with({"store.tls_cert_file": cert, "store.tls_key_file": key,
                       "store.authenticator": "PasswordAuthenticator", "store.users": USERS})


def host_errors(exc):
    """The per-host exceptions of a NoHostAvailable."""
    assert isinstance(exc, NoHostAvailable), repr(exc)
    return list(exc.errors.values())


# ---------------------------------------------------------------- raw frames

def frame(opcode, body=b"", stream=0):
    return struct.pack(">BBhBi", 4, 0, stream, opcode, len(body)) + body


def string_map(d):
    out = struct.pack(">H", len(d))
    for k, v in d.items():
        out += struct.pack(">H", len(k)) + k.encode() + struct.pack(">H", len(v)) + v.encode()
    return out


def read_frame(sock):
    def exactly(n):
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            assert chunk, "server closed the connection"
            buf += chunk
        return buf
    version, flags, stream, opcode, length = struct.unpack(">BBhBi", exactly(9))
    assert version == 0x84 and flags == 0
    return stream, opcode, exactly(length)


def error_of(body):
    code, n = struct.unpack(">iH", body[:6])
    return code, body[6:6 + n].decode()


def query_body(q):
    return struct.pack(">i", len(q)) + q.encode() + struct.pack(">HB", 1, 0)


def plain_token(user, password, authzid=""):
    t = ("%s\0%s\0%s" % (authzid, user, password)).encode()
    return struct.pack(">i", len(t)) + t


def raw_conn(store):
    s = socket.create_connection((store.host, store.port), timeout=10)
    return s


def test_raw_handshake_errors_and_retry(auth_store):
    with raw_conn(auth_store) as s:
        # before STARTUP
        s.sendall(frame(0x07, query_body("SELECT key FROM system.local"), stream=1))
        stream, op, body = read_frame(s)
        assert (stream, op) == (1, 0x00)
        code, msg = error_of(body)
        assert code == 0x000A and "not authenticated" in msg
        s.sendall(frame(0x01, string_map({"CQL_VERSION": "3.0.0"}), stream=2))
        stream, op, body = read_frame(s)
        assert (stream, op) == (2, 0x03)
        n = struct.unpack(">H", body[:2])[0]
        assert body[2:2 + n] == b"org.apache.cassandra.auth.PasswordAuthenticator"
        # a query while authenticating: protocol error, connection stays usable
        s.sendall(frame(0x07, query_body("SELECT key FROM system.local"), stream=3))
        stream, op, body = read_frame(s)
        code, msg = error_of(body)
        assert (stream, op, code) == (3, 0x00, 0x000A) and "not authenticated" in msg
        # OPTIONS is fine at any time
        s.sendall(frame(0x05, stream=4))
        assert read_frame(s)[:2] == (4, 0x06)
        # wrong password, then a malformed token: Bad credentials, connection stays open
        s.sendall(frame(0x0F, plain_token("alice", "nope"), stream=5))
        stream, op, body = read_frame(s)
        assert (stream, op) == (5, 0x00)
        assert error_of(body) == (0x0100, "Provided username alice and/or password are incorrect")
        s.sendall(frame(0x0F, plain_token("mallory", "s3cret"), stream=6))
        assert error_of(read_frame(s)[2]) == (0x0100, "Provided username mallory and/or password are incorrect")
        s.sendall(frame(0x0F, struct.pack(">i", 5) + b"alice", stream=7))
        assert error_of(read_frame(s)[2])[0] == 0x0100
        # the right password (with an authzid, and a password containing ':') succeeds
        s.sendall(frame(0x0F, plain_token("bob", "hunter2:with:colons", authzid="bob"), stream=8))
        stream, op, body = read_frame(s)
        assert (stream, op, body) == (8, 0x10, struct.pack(">i", -1))
        s.sendall(frame(0x07, query_body("SELECT key FROM system.local"), stream=9))
        stream, op, body = read_frame(s)
        assert (stream, op) == (9, 0x08)
        # authenticating twice is a protocol error
        s.sendall(frame(0x0F, plain_token("alice", "s3cret"), stream=10))
        assert error_of(read_frame(s)[2])[0] == 0x000A


def test_auth_response_without_password_authenticator(store):
    with raw_conn(store) as s:
        s.sendall(frame(0x01, string_map({"CQL_VERSION": "3.0.0"}), stream=1))
        assert read_frame(s)[:2] == (1, 0x02)  # READY: AllowAllAuthenticator is the default
        s.sendall(frame(0x0F, plain_token("alice", "s3cret"), stream=2))
        assert error_of(read_frame(s)[2])[0] == 0x000A


# ---------------------------------------------------------------- the Python driver

def test_driver_logs_in_and_sees_metadata(auth_store):
    c = auth_store.cluster(auth_provider=PlainTextAuthProvider("alice", "s3cret"))
    try:
        s = c.connect()
        s.execute("CREATE KEYSPACE IF NOT EXISTS authks WITH replication = "
                  "{'class': 'SimpleStrategy', 'replication_factor': 1}")
        s.execute("CREATE TABLE IF NOT EXISTS authks.t (k int PRIMARY KEY, v text)")
        s.execute("INSERT INTO authks.t (k, v) VALUES (1, 'one')")
        assert s.execute("SELECT v FROM authks.t WHERE k = 1").one().v == "one"
        assert s.execute("SELECT key FROM system.local").one().key == "local"
        md = c.metadata
        assert md.cluster_name == "Sluice Cluster"
        hosts = md.all_hosts()
        assert len(hosts) == 1 and hosts[0].is_up and hosts[0].datacenter == "datacenter1"
        assert "authks" in md.keyspaces and "t" in md.keyspaces["authks"].tables
        assert [col for col in md.keyspaces["authks"].tables["t"].columns] == ["k", "v"]
    finally:
        c.shutdown()


def test_driver_wrong_password_is_authentication_failed(auth_store):
    c = auth_store.cluster(auth_provider=PlainTextAuthProvider("alice", "wrong"))
    try:
        with pytest.raises(NoHostAvailable) as ei:
            c.connect()
    finally:
        c.shutdown()
    errs = host_errors(ei.value)
    assert len(errs) == 1 and isinstance(errs[0], AuthenticationFailed), errs
    assert "Provided username alice and/or password are incorrect" in str(errs[0])
    # the store keeps serving
    c = auth_store.cluster(auth_provider=PlainTextAuthProvider("alice", "s3cret"))
    try:
        assert c.connect().execute("SELECT key FROM system.local").one().key == "local"
    finally:
        c.shutdown()


def test_driver_without_credentials_is_told_authentication_is_required(auth_store):
    c = auth_store.cluster()
    try:
        with pytest.raises(NoHostAvailable) as ei:
            c.connect()
    finally:
        c.shutdown()
    errs = host_errors(ei.value)
    assert len(errs) == 1 and isinstance(errs[0], AuthenticationFailed), errs
    assert str(errs[0]) == "Remote end requires authentication"


# ---------------------------------------------------------------- TLS

def client_ssl_context(cert, verify):
    ctx = ssl.create_default_context(cafile=cert)
    if not verify:
        ctx.check_hostname = False
    return ctx


@pytest.mark.parametrize("verify", [False, True], ids=["no-hostname-check", "verify-ip-san"])
def test_driver_over_tls(tls_store, tls_files, verify):
    c = tls_store.cluster(ssl_context=client_ssl_context(tls_files[0], verify))
    try:
        s = c.connect()
        assert s.execute("SELECT key FROM system.local").one().key == "local"
        s.execute("CREATE KEYSPACE IF NOT EXISTS tlsks WITH replication = "
                  "{'class': 'SimpleStrategy', 'replication_factor': 1}")
        s.execute("CREATE TABLE IF NOT EXISTS tlsks.big (k int PRIMARY KEY, v text)")
        big = "x" * 300000  # several TLS records each way
        s.execute("INSERT INTO tlsks.big (k, v) VALUES (1, %s)", (big,))
        assert s.execute("SELECT v FROM tlsks.big WHERE k = 1").one().v == big
        assert "tlsks" in c.metadata.keyspaces
    finally:
        c.shutdown()


def test_tls_and_password_authenticator(tls_auth_store, tls_files):
    c = tls_auth_store.cluster(ssl_context=client_ssl_context(tls_files[0], True),
                               auth_provider=PlainTextAuthProvider("alice", "s3cret"))
    try:
        assert c.connect().execute("SELECT key FROM system.local").one().key == "local"
    finally:
        c.shutdown()
    c = tls_auth_store.cluster(ssl_context=client_ssl_context(tls_files[0], True),
                               auth_provider=PlainTextAuthProvider("alice", "bad"))
    try:
        with pytest.raises(NoHostAvailable) as ei:
            c.connect()
    finally:
        c.shutdown()
    assert isinstance(host_errors(ei.value)[0], AuthenticationFailed)


def test_plaintext_client_on_tls_port_fails_cleanly(tls_store, tls_files):
    # a raw CQL frame in the clear: the server ends the session (alert or close) without answering in CQL
    with raw_conn(tls_store) as s:
        s.sendall(frame(0x05, stream=1))
        got = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        assert not got.startswith(b"\x84"), got
    # the driver without TLS cannot connect either, and says so
    c = tls_store.cluster(connect_timeout=5)
    try:
        with pytest.raises(NoHostAvailable):
            c.connect()
    finally:
        c.shutdown()
    # and the server keeps serving TLS clients
    c = tls_store.cluster(ssl_context=client_ssl_context(tls_files[0], True))
    try:
        assert c.connect().execute("SELECT key FROM system.local").one().key == "local"
    finally:
        c.shutdown()


def test_tls_needs_both_files(tmp_path, tls_files):
    import subprocess
    from conftest import SLUICE_BIN
    r = subprocess.run([SLUICE_BIN, "store", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "d"),
                        "--set", "store.tls_cert_file=%s" % tls_files[0]], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "TLS needs both store.tls_cert_file and store.tls_key_file" in r.stderr + r.stdout


def test_password_authenticator_needs_users(tmp_path):
    import subprocess
    from conftest import SLUICE_BIN
    r = subprocess.run([SLUICE_BIN, "store", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "d"),
                        "--set", "store.authenticator=PasswordAuthenticator"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode != 0 and "store.users is empty" in r.stderr + r.stdout
