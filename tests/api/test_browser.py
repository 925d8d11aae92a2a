"""The dashboard in Debian's headless Chromium (playwright-core from web/node_modules)."""
import os
import shutil
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
def test_dashboard_live_and_history(tmp_path, store, data, cql):
    api = start_api(tmp_path / "api", store, ["--web-dir", os.path.join(WEB, "dist")])
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
    shot = os.path.join(os.environ.get("SLUICE_ARTIFACTS", str(tmp_path)), "dashboard.png")
    try:
        r = subprocess.run(["node", os.path.join(os.path.dirname(__file__), "browser_test.mjs"),
                            "http://%s:%d" % (api.host, api.port), "vehicle-0002", shot, str(tmp_path / "chrome")],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert os.path.getsize(shot) > 10000
    finally:
        stop.set()
        t.join()
        api.stop()
