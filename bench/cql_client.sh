#!/usr/bin/env bash
# Insert throughput into `sluice store`: Sluice's C CQL client (prepared, pipelined, UNLOGGED batches per
# partition; bench/cql_client_bench.c) vs the DataStax Python driver's execute_concurrent (prepared, concurrency
# 100) for the same rows, in the same run, against the same fresh store. Prints a table and the ratio.
#
#   bench/cql_client.sh [ROWS] [BUILD_DIR]        (default 200000 rows, build/)
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-200000}
build=${2:-build}
PY=/usr/bin/python3
work=$(mktemp -d)
trap 'kill $(cat "$work/pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT

"$build/sluice" store --listen 127.0.0.1:0 --data-dir "$work/data" --ready-file "$work/ready" \
  >"$work/store.log" 2>&1 &
echo $! >"$work/pid"
for _ in $(seq 300); do [[ -s $work/ready ]] && break; sleep 0.1; done
[[ -s $work/ready ]] || { echo "store did not start"; cat "$work/store.log"; exit 1; }
hp=$(cat "$work/ready")

c_json=$("$build/cql_client_bench" "$hp" "$rows" 100 50 64 bench.readings_c)
py_json=$("$PY" - "$hp" "$rows" <<'PYEOF'
import json, sys, time
from cassandra.cluster import Cluster
from cassandra.concurrent import execute_concurrent_with_args
host, port = sys.argv[1].rsplit(":", 1)
rows = int(sys.argv[2])
c = Cluster([host], port=int(port))
s = c.connect()
s.execute("CREATE KEYSPACE IF NOT EXISTS bench WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
s.execute("CREATE TABLE IF NOT EXISTS bench.readings_py (sensor text, ts bigint, value double, PRIMARY KEY (sensor, ts))")
ps = s.prepare("INSERT INTO bench.readings_py (sensor, ts, value) VALUES (?, ?, ?)")
args = [("sensor-%d" % ((i // 50) % 100), i, i * 0.5) for i in range(rows)]
t0 = time.monotonic()
res = execute_concurrent_with_args(s, ps, args, concurrency=100, raise_on_first_error=True)
secs = time.monotonic() - t0
ok = sum(1 for r in res if r.success)
print(json.dumps({"client": "python-driver", "rows": ok, "seconds": round(secs, 3), "rows_per_sec": round(ok / secs)}))
c.shutdown()
PYEOF
)
"$PY" - "$c_json" "$py_json" <<'PYEOF'
import json, sys
c, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print("%-34s %10s %9s %12s" % ("client", "rows", "seconds", "rows/s"))
print("%-34s %10d %9.3f %12d" % ("sluice C client (batched, pipelined)", c["rows"], c["seconds"], c["rows_per_sec"]))
print("%-34s %10d %9.3f %12d" % ("python-driver execute_concurrent", p["rows"], p["seconds"], p["rows_per_sec"]))
print("ratio C / python: %.1fx (target >= 5x)" % (c["rows_per_sec"] / p["rows_per_sec"]))
PYEOF
