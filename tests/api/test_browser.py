"""The dashboard in Debian's headless Chromium (playwright-core from web/node_modules)."""
import os
import shutil
import ssl
import subprocess
import threading
import time

import pytest

from conftest import NOW_MS, REPO, day_of, ms_to_dt, start_api

WEB = os.path.join(REPO, "web")


@pytest.mark.skipif(not os.path.exists("/usr/bin/chromium") or not shutil.which("node")
                    or not os.path.isdir(os.path.join(WEB, "node_modules", "playwright-core"))
                    or not os.path.exists(os.path.join(WEB, "dist", "index.html")),
                    reason="chromium, node, web/node_modules or web/dist missing (scripts/deps.sh installs them)")
@pytest.mark.parametrize("mode", ["open", "token", "token+tls"])
def test_dashboard_live_and_history(tmp_path, store, data, cql, mode):
    """open: no authentication. token: the dashboard asks for the token (a wrong one is refused and it asks again),
    then works, its live stream included. token+tls: the same over HTTPS (HTTP/2), with a self-signed certificate."""
    extra, token, ctx = ["--web-dir", os.path.join(WEB, "dist")], None, None
    if "token" in mode:
        token = "dash-Token_1"
        extra += ["--set", "api.tokens=" + token]
    if "tls" in mode:
        cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
        extra += ["--set", "api.tls_cert_file=" + cert, "--set", "api.tls_key_file=" + key]
        ctx = ssl.create_default_context(cafile=cert)
    api = start_api(tmp_path / "api", store, extra, context=ctx)
    stop = threading.Event()

    def feed():  # new readings for vehicle-0002 while the browser watches
        i = 0
        while not stop.is_set() and i < 200:
            ts = int(time.time() * 1000) + 5000 + i * 1000
            cql.execute("INSERT INTO iot.vehicle_readings (device_id, day, ts, speed, longitude, latitude) "
                        "VALUES (%s, %s, %s, %s, %s, %s)", ("vehicle-0002", day_of(ts), ms_to_dt(ts), 50.0 + i, 2.3, 48.85))
            i += 1
            stop.wait(0.3)

    t = threading.Thread(target=feed, daemon=True)
    t.start()
    shot = os.path.join(os.environ.get("SLUICE_ARTIFACTS", str(tmp_path)),
                        "dashboard.png" if mode == "open" else "dashboard-%s.png" % mode.replace("+", "-"))
    try:
        r = subprocess.run(["node", os.path.join(os.path.dirname(__file__), "browser_test.mjs"), api.http.base,
                            "vehicle-0002", shot, str(tmp_path / "chrome")] + ([token] if token else []),
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert os.path.getsize(shot) > 10000
    finally:
        stop.set()
        t.join()
        api.stop()
