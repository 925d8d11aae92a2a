#!/usr/bin/env bash
# The store benchmark, one command: bench/store.sh [devices] [rows_per_device]
# In one run, on this machine:
#   1. CQL ingest into `sluice store` (WAL on, not fsynced per write: store.sync_writes=false) by bench/store_load.c,
#      a C load generator speaking the v4 protocol: prepared INSERTs in UNLOGGED batches of 100 rows of one
#      partition, 4 connections, 8 batches in flight each;
#   2. RocksDB's own db_bench fillseq with the WAL on (sync off), same row count, key 24 B / value 80 B
#      (Debian rocksdb-tools; installed here if missing);
#   3. one device's last hour (3,600 rows) p50/p99 and a point read p50/p99, through the same prepared path;
#   4. PostgreSQL (Debian postgresql, initdb in a temp dir, a free port, run as user `postgres`): COPY of the same
#      rows, then the same two queries timed in one psql session (\timing).
# Prints a markdown table and writes it to bench/results/store.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
devices=${1:-40}
per=${2:-3600}
rows=$((devices * per))
queries=200
BIN=${SLUICE_BIN:-$root/build/sluice}
[[ -x $BIN ]] || { echo "build sluice first (make), or set SLUICE_BIN" >&2; exit 1; }
need=()
command -v db_bench >/dev/null || need+=(rocksdb-tools)
[[ -d /usr/lib/postgresql ]] || need+=(postgresql)
if ((${#need[@]})); then
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
work=$(mktemp -d /tmp/sluice-bench-store.XXXXXX)
chmod 755 "$work"
spid=""
cleanup() {
  [[ -n $spid ]] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null
  [[ -n ${pgdata-} && -f $pgdata/postmaster.pid ]] && runuser -u postgres -- "$pgbin/pg_ctl" -D "$pgdata" -m immediate stop >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
cc -O2 -std=c11 -Wall -Wextra -Werror -pthread bench/store_load.c -o "$work/store_load"

# --- sluice store over CQL
"$BIN" store --listen 127.0.0.1:0 --data-dir "$work/store" --ready-file "$work/ready" \
  --set store.sync_writes=false >"$work/store.log" 2>&1 &
spid=$!
for _ in $(seq 300); do [[ -s $work/ready ]] && break; sleep 0.1; done
port=$(cut -d: -f2 "$work/ready")
ingest=$("$work/store_load" 127.0.0.1 "$port" ingest "$devices" "$per" 4 100 8)
query=$("$work/store_load" 127.0.0.1 "$port" query "$devices" "$per" "$queries")
kill "$spid"; wait "$spid" || true; spid=""
kv() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }
cql_rps=$(kv rows_per_s "$ingest")

# --- db_bench fillseq, WAL on
dbb=$(db_bench --benchmarks=fillseq --num="$rows" --key_size=24 --value_size=80 --db="$work/dbbench" \
  --disable_wal=false --sync=false --compression_type=lz4 2>&1 | grep '^fillseq')
dbb_rps=$(sed -n 's/.* \([0-9]*\) ops\/sec.*/\1/p' <<<"$dbb")

# --- PostgreSQL
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
pgdata=$work/pg
mkdir -p "$pgdata" && chown postgres "$pgdata"
pgport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
runuser -u postgres -- "$pgbin/initdb" -D "$pgdata" -A trust >/dev/null
runuser -u postgres -- "$pgbin/pg_ctl" -D "$pgdata" -o "-p $pgport -k $pgdata -c listen_addresses=127.0.0.1" -w start >/dev/null
psql_() { runuser -u postgres -- psql -h 127.0.0.1 -p "$pgport" -X -q "$@"; }
psql_ -c "CREATE TABLE iot (id text, ts timestamptz, adresse text, mileage bigint, fuel_level real, speed real,
          longitude double precision, PRIMARY KEY (id, ts))"
python3 - "$devices" "$per" >"$work/rows.csv" <<'EOF'
import sys, datetime
devices, per = int(sys.argv[1]), int(sys.argv[2])
base = 1700000000
w = sys.stdout.write
for d in range(devices):
    dev = "vehicle-%06d" % d
    for i in range(per):
        ts = datetime.datetime.fromtimestamp(base + i, datetime.timezone.utc).isoformat()
        w("%s,%s,12 Rue de la Republique Lyon,%d,%r,%r,%r\n" % (dev, ts, 100000 + i, 50.0 - i % 50, float(i % 130), 4.83 + i * 1e-5))
EOF
chmod 644 "$work/rows.csv"
t0=$(date +%s.%N)
psql_ -c "\\copy iot FROM '$work/rows.csv' WITH (FORMAT csv)"
t1=$(date +%s.%N)
pg_rps=$(python3 -c "print(round($rows/($t1-$t0)))")
python3 - "$devices" "$per" "$queries" >"$work/q.sql" <<'EOF'
import sys, datetime
devices, per, n = map(int, sys.argv[1:])
base = 1700000000
last = base + per - 1
print("\\timing on")
for i in range(n):
    dev = "vehicle-%06d" % (i * 7919 % devices)
    since = datetime.datetime.fromtimestamp(last - 3600, datetime.timezone.utc).isoformat()
    print("SELECT * FROM iot WHERE id = '%s' AND ts > '%s';" % (dev, since))
    at = datetime.datetime.fromtimestamp(base + i % per, datetime.timezone.utc).isoformat()
    print("SELECT * FROM iot WHERE id = '%s' AND ts = '%s';" % (dev, at))
EOF
psql_ -o /dev/null -f "$work/q.sql" >"$work/q.out"
read -r pg_h50 pg_h99 pg_p50 pg_p99 < <(python3 - "$work/q.out" <<'EOF'
import sys
t = [float(l.split()[1]) for l in open(sys.argv[1]) if l.startswith("Time:")]
h, p = sorted(t[0::2]), sorted(t[1::2])
q = lambda v, f: v[int(len(v) * f)]
print("%.3f %.3f %.3f %.3f" % (q(h, .5), q(h, .99), q(p, .5), q(p, .99)))
EOF
)

ratio=$(python3 -c "print('%.2f' % ($cql_rps/$dbb_rps))")
out=$(cat <<EOF
| measure ($rows IoT rows, $devices devices × $per s) | sluice store (CQL) | RocksDB db_bench | PostgreSQL (COPY) |
|---|---|---|---|
| ingest rows/s | $cql_rps | $dbb_rps (fillseq, WAL on) | $pg_rps |
| ingest ratio sluice / db_bench (target ≥ 0.5) | $ratio | 1 | |
| last hour of one device (3,600 rows) p50 / p99 ms (target p99 ≤ 5) | $(kv hour_p50_ms "$query") / $(kv hour_p99_ms "$query") | | $pg_h50 / $pg_h99 |
| point read p50 / p99 ms | $(kv point_p50_ms "$query") / $(kv point_p99_ms "$query") | | $pg_p50 / $pg_p99 |

Command: \`bench/store.sh $devices $per\` on $(nproc) cores, $(date -u +%Y-%m-%d). WAL on, no fsync per write on every side
(store.sync_writes=false, db_bench --sync=false, PostgreSQL default synchronous_commit on one COPY). CQL load from a C
generator (bench/store_load.c), $queries queries each; PostgreSQL times are psql's \\timing in one session.
EOF
)
mkdir -p bench/results
echo "$out" | tee bench/results/store.md
