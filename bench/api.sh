#!/usr/bin/env bash
# Benchmark of `sluice api` (issue 6): wrk against the latest-reading and one-hour-history endpoints with data
# loaded, beside Debian's nginx serving a static file of the same size as the latest answer, in the same run.
# Targets: latest >= 0.3x nginx static requests/s; one-hour history p99 <= 10 ms.
#   bench/api.sh [seconds per run, default 10]     (SLUICE_BIN overrides build/sluice; CONNS, THREADS override 32, 2)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
BIN=${SLUICE_BIN:-$root/build/sluice}
DUR=${1:-10}
THREADS=${THREADS:-2}
CONNS=${CONNS:-32}   # CONNS=4 gives an unsaturated latency figure; the target is read at 32
work=$(mktemp -d /tmp/sluice-api-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

wait_file() { for _ in $(seq 1 300); do [[ -s $1 ]] && return 0; sleep 0.1; done; echo "timed out waiting for $1" >&2; exit 1; }

"$BIN" store --listen 127.0.0.1:0 --data-dir "$work/store" --ready-file "$work/store.ready" --log-level warn &
pids+=($!)
wait_file "$work/store.ready"
store=$(cat "$work/store.ready")

# 50 vehicles, one reading every 10 s for the last 2 hours (36,000 rows), as the vehicles pipeline writes them
/usr/bin/python3 - "$store" <<'PY'
import datetime, random, sys, time
sys.path.insert(0, "tests/api")
from cassandra.cluster import Cluster
from cassandra.concurrent import execute_concurrent_with_args
from conftest import VEHICLE_DDL, day_of, ms_to_dt
host, port = sys.argv[1].rsplit(":", 1)
s = Cluster([host], port=int(port), protocol_version=4).connect()
s.execute("CREATE KEYSPACE IF NOT EXISTS iot WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
s.execute(VEHICLE_DDL)
ins = s.prepare("INSERT INTO iot.vehicle_readings (device_id, day, ts, address, mileage, fuel_level, speed, longitude, latitude) VALUES (?,?,?,?,?,?,?,?,?)")
now = int(time.time() * 1000)
rnd = random.Random(1)
rows = [("vehicle-%04d" % d, day_of(t), ms_to_dt(t), "12 rue de Rivoli, 75001 Paris", rnd.uniform(1e3, 9e4), rnd.uniform(5, 60), rnd.uniform(0, 130), 2.3, 48.85)
        for d in range(50) for t in range(now - 7200_000, now, 10_000)]
execute_concurrent_with_args(s, ins, rows, concurrency=128, raise_on_first_error=True)
print("loaded %d rows" % len(rows), file=sys.stderr)
PY

"$BIN" api --listen 127.0.0.1:0 --cql "$store" --ready-file "$work/api.ready" --log-level warn &
pids+=($!)
wait_file "$work/api.ready"
api=$(cat "$work/api.ready")
for _ in $(seq 1 100); do curl -sf "http://$api/ready" >/dev/null && break; sleep 0.1; done

now_ms=$(($(date +%s%N) / 1000000))
latest="http://$api/api/v1/devices/vehicle-0007/latest"
history="http://$api/api/v1/devices/vehicle-0007/readings?from=$((now_ms - 3600000))&to=$now_ms&limit=1000"
curl -sf "$latest" >"$work/static.json"
size=$(stat -c %s "$work/static.json")
hist_rows=$(curl -sf "$history" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')

mkdir -p "$work/nginx/tmp" "$work/www"
cp "$work/static.json" "$work/www/latest.json"
nport=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/nginx/nginx.conf" <<NGX
worker_processes 1;
pid nginx.pid;
error_log error.log warn;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path tmp; proxy_temp_path tmp; fastcgi_temp_path tmp; uwsgi_temp_path tmp; scgi_temp_path tmp;
  server { listen 127.0.0.1:$nport; root $work/www; location / { default_type application/json; } } }
NGX
/usr/sbin/nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' &
pids+=($!)
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$nport/latest.json" >/dev/null && break; sleep 0.1; done

run_wrk() { # url -> "rps p99_ms"
  wrk -t$THREADS -c$CONNS -d${DUR}s --latency "$1" >"$work/wrk.out"
  local rps p99
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.out")
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}' "$work/wrk.out")
  echo "$rps $p99"
}
read -r n_rps n_p99 < <(run_wrk "http://127.0.0.1:$nport/latest.json")
read -r l_rps l_p99 < <(run_wrk "$latest")
read -r h_rps h_p99 < <(run_wrk "$history")

printf '\n%-44s %12s %10s\n' "wrk -t$THREADS -c$CONNS -d${DUR}s" "requests/s" "p99 ms"
printf '%-44s %12s %10s\n' "nginx static file ($size bytes)" "$n_rps" "$n_p99"
printf '%-44s %12s %10s\n' "api latest reading ($size bytes)" "$l_rps" "$l_p99"
printf '%-44s %12s %10s\n' "api one-hour history ($hist_rows rows)" "$h_rps" "$h_p99"
ratio=$(awk -v a="$l_rps" -v b="$n_rps" 'BEGIN {printf "%.2f", a / b}')
echo
echo "latest / nginx static: ${ratio}x (target >= 0.3x)"
echo "one-hour history p99: ${h_p99} ms (target <= 10 ms)"
awk -v r="$ratio" -v p="$h_p99" 'BEGIN {exit !(r >= 0.3 && p <= 10)}' && echo "targets: met" || echo "targets: MISSED"
