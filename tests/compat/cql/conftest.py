"""Harness for the CQL store suite: runs `sluice store` on a private data dir and a dynamic port.

Run with Debian's interpreter (python3-cassandra lives there):

    /usr/bin/python3 -m pytest tests/compat/cql -q

Binary under test: $SLUICE_BIN (default <repo>/build/sluice).
"""
import os
import signal
import subprocess
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
SLUICE_BIN = os.environ.get("SLUICE_BIN", os.path.join(REPO, "build", "sluice"))
READY_TIMEOUT = float(os.environ.get("SLUICE_READY_TIMEOUT", "30"))
STOP_TIMEOUT = float(os.environ.get("SLUICE_STOP_TIMEOUT", "30"))


def poll(cond, timeout=20.0, interval=0.02, msg="condition"):
    """Poll cond() until truthy; return its value, or fail after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            v = cond()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - reported on timeout
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s%s" % (timeout, msg, " (%r)" % last if last else ""))
        time.sleep(interval)


class Store:
    """One `sluice store` process."""

    def __init__(self, workdir, sets=None):
        self.workdir = str(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.data_dir = os.path.join(self.workdir, "data")
        self.ready = os.path.join(self.workdir, "ready")
        self.log_path = os.path.join(self.workdir, "store.stderr.log")
        self.sets = dict(sets or {})
        self.proc = None
        self.port = None
        self.host = "127.0.0.1"

    def start(self, port=0):
        if os.path.exists(self.ready):
            os.unlink(self.ready)
        args = [SLUICE_BIN, "store", "--listen", "127.0.0.1:%d" % port, "--data-dir", self.data_dir,
                "--ready-file", self.ready]
        for k, v in self.sets.items():
            args += ["--set", "%s=%s" % (k, v)]
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("store exited with %s:\n%s" % (self.proc.returncode, self.log_tail()))
            if os.path.exists(self.ready):
                with open(self.ready) as f:
                    line = f.read().strip()
                if line:
                    return line
            return None

        line = poll(ready, READY_TIMEOUT, msg="store ready file")
        self.host, port = line.rsplit(":", 1)
        self.port = int(port)
        return self

    def stop(self, sig=signal.SIGTERM, expect_rc=0):
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("store did not stop within %ss:\n%s" % (STOP_TIMEOUT, self.log_tail()))
        self.log.close()
        if expect_rc is not None:
            assert rc == expect_rc, "store exit code %s:\n%s" % (rc, self.log_tail())
        return rc

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()

    def restart(self):
        port = self.port
        self.stop()
        return self.start(port)

    def log_tail(self, n=80):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return ""

    def cluster(self, **kw):
        from cassandra.cluster import Cluster
        return Cluster([self.host], port=self.port, **kw)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = Store(tmp_path_factory.mktemp("store")).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def cluster(store):
    c = store.cluster()
    yield c
    c.shutdown()


@pytest.fixture(scope="module")
def session(cluster):
    return cluster.connect()


@pytest.fixture
def make_store(tmp_path):
    made = []

    def _make(**sets):
        s = Store(tmp_path / ("s%d" % len(made)), sets).start()
        made.append(s)
        return s

    yield _make
    for s in made:
        if s.proc and s.proc.poll() is None:
            s.stop()


def make_tls_cert(directory):
    """A self-signed certificate for 127.0.0.1 (SAN IP:127.0.0.1) and its key; returns (cert, key) paths."""
    cert, key = os.path.join(str(directory), "cert.pem"), os.path.join(str(directory), "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture(scope="module")
def store_with(tmp_path_factory):
    """Starts stores with extra --set settings for the module: store_with({"store.authenticator": ...})."""
    made = []

    def _make(sets):
        s = Store(tmp_path_factory.mktemp("store"), sets).start()
        made.append(s)
        return s

    yield _make
    for s in made:
        if s.proc and s.proc.poll() is None:
            s.stop()
