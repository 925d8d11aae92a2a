#!/usr/bin/env bash
# Sluice benchmark: one command, prints a markdown table (also written to bench/results/latest.md).
#
#   bench/run.sh
#
# Measures with librdkafka (bench/kafka_bench.c): produce throughput at 200 B and 1 KiB records with acks=1 and
# acks=all, consume throughput of the same data (each topic is deleted once measured), and produce->consume latency
# at half the 200 B acks=1 peak rate (and, for context, at a quarter).
# In the same run it measures the peers: Redis Streams XADD (redis-server on a free port in a private temp dir),
# pipelined with persistence off and with appendonly + appendfsync everysec, and a dd disk-bandwidth reference.
# Then it prints the ratios against the targets.
#
# Environment overrides (defaults in brackets):
#   BENCH_RECORDS [14000000]       200 B records per produce phase (also the Redis XADD count)
#   BENCH_RECORDS_1K [3000000]     1 KiB records per produce phase
#   BENCH_PARTITIONS [4]           partitions per topic (broker.num_partitions, topics are auto-created)
#   BENCH_LINGER_MS [5]            producer linger.ms for the throughput phases
#   BENCH_LAT_SECONDS [10]         duration of the latency phase (the first 2 s are warm-up, not counted)
#   BENCH_LAT_LINGER_MS [1]        producer linger.ms for the latency phase
#   BENCH_LAT_RATE [peak/2]        fixed produce rate of the latency phase (records/s)
#   BENCH_REDIS_CLIENTS [50]       redis-benchmark -c
#   BENCH_REDIS_PIPELINE [64]      redis-benchmark -P
#   BENCH_TIMEOUT [180]            per-phase timeout in seconds
#   BENCH_TMPDIR [$TMPDIR or /tmp] where the temporary data directories go (should be on the disk under test)
#   BENCH_KEEP [0]                 1: keep the temporary directory
#   SLUICE_BIN [build/sluice]      broker binary (built with make if missing)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

BENCH_RECORDS=${BENCH_RECORDS:-14000000}
BENCH_RECORDS_1K=${BENCH_RECORDS_1K:-3000000}
BENCH_PARTITIONS=${BENCH_PARTITIONS:-4}
BENCH_LINGER_MS=${BENCH_LINGER_MS:-5}
BENCH_LAT_SECONDS=${BENCH_LAT_SECONDS:-10}
BENCH_LAT_LINGER_MS=${BENCH_LAT_LINGER_MS:-1}
BENCH_LAT_RATE=${BENCH_LAT_RATE:-}
BENCH_REDIS_CLIENTS=${BENCH_REDIS_CLIENTS:-50}
BENCH_REDIS_PIPELINE=${BENCH_REDIS_PIPELINE:-64}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-180}
BENCH_TMPDIR=${BENCH_TMPDIR:-${TMPDIR:-/tmp}}
BENCH_KEEP=${BENCH_KEEP:-0}
SLUICE_BIN=${SLUICE_BIN:-$root/build/sluice}

# The exact command, with every override that was set.
cmd="bench/run.sh"
for v in BENCH_RECORDS BENCH_RECORDS_1K BENCH_PARTITIONS BENCH_LINGER_MS BENCH_LAT_SECONDS BENCH_LAT_LINGER_MS \
  BENCH_LAT_RATE BENCH_REDIS_CLIENTS BENCH_REDIS_PIPELINE BENCH_TIMEOUT; do
  if [[ -n "$(printenv "$v" || true)" ]]; then cmd="$v=$(printenv "$v") $cmd"; fi
done

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

for tool in cc pkg-config redis-server redis-cli redis-benchmark timeout python3; do
  command -v "$tool" >/dev/null || die "$tool not found (Debian: build-essential pkg-config redis-server redis-tools)"
done
pkg-config --exists rdkafka || die "librdkafka not found (Debian: librdkafka-dev)"

tmp=$(mktemp -d "$BENCH_TMPDIR/sluice-bench.XXXXXX")
broker_pid=
redis_pid=
failures=()

cleanup() {
  local rc=$?
  if [[ -n "$broker_pid" ]] && kill -0 "$broker_pid" 2>/dev/null; then
    kill -TERM "$broker_pid" 2>/dev/null || true
    wait "$broker_pid" 2>/dev/null || true
  fi
  if [[ -n "$redis_pid" ]] && kill -0 "$redis_pid" 2>/dev/null; then
    kill -TERM "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
  if [[ "$BENCH_KEEP" == 1 ]]; then log "kept $tmp"; else rm -rf "$tmp"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { # a port the kernel considers free right now (bound to port 0, then released)
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for() { # seconds, command...: polls the command every 0.1 s
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

cpu_secs() { # user+system CPU seconds of a process so far
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0
}

cores() { # cpu0 cpu1 wall0 wall1 -> average cores used
  awk -v c0="$1" -v c1="$2" -v t0="$3" -v t1="$4" 'BEGIN { printf "%.2f", (t1 > t0 ? (c1 - c0) / (t1 - t0) : 0) }'
}

# ---------- build ----------

if [[ ! -x "$SLUICE_BIN" ]]; then
  log "building sluice (make -C $root)"
  make -C "$root" >&2
fi
[[ -x "$SLUICE_BIN" ]] || die "no broker binary at $SLUICE_BIN"
mkdir -p "$root/build-bench"
kafka_bench="$root/build-bench/kafka_bench"
# shellcheck disable=SC2046 # pkg-config output is a list of flags
cc -O2 -Wall -Wextra -Werror -std=c11 "$root/bench/kafka_bench.c" -o "$kafka_bench" $(pkg-config --cflags --libs rdkafka) \
  -lpthread || die "could not compile bench/kafka_bench.c"

# ---------- Sluice ----------

declare -A R # results: R[phase.key]=value

broker_log="$tmp/broker.log"
start_broker() {
  mkdir -p "$tmp/sluice"
  "$SLUICE_BIN" broker --listen 127.0.0.1:0 --data-dir "$tmp/sluice/data" --ready-file "$tmp/sluice/ready" \
    --set "broker.num_partitions=$BENCH_PARTITIONS" 2>"$broker_log" &
  broker_pid=$!
  wait_for 20 test -s "$tmp/sluice/ready" || {
    tail -n 30 "$broker_log" >&2
    die "broker did not write its ready file within 20 s"
  }
  brokers=$(cat "$tmp/sluice/ready")
  log "broker pid $broker_pid listening on $brokers, data in $tmp/sluice/data"
}

stop_broker() {
  kill -TERM "$broker_pid" 2>/dev/null || true
  local i
  for ((i = 0; i < 300; i++)); do kill -0 "$broker_pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$broker_pid" 2>/dev/null; then
    log "broker did not exit within 30 s of SIGTERM; killing it"
    failures+=("broker shutdown")
    kill -KILL "$broker_pid" 2>/dev/null || true
  fi
  wait "$broker_pid" 2>/dev/null || true
  broker_pid=
}

# kafka_phase NAME ARGS...: runs kafka_bench, stores its RESULT fields as R[NAME.key], plus broker CPU use.
kafka_phase() {
  local name=$1
  shift
  log "$name: kafka_bench $*"
  local out="$tmp/$name.out" err="$tmp/$name.err" c0 c1 t0 t1 rc=0
  c0=$(cpu_secs "$broker_pid")
  t0=$(date +%s.%N)
  # kafka_bench gives up (and says why) 10 s before timeout(1) would kill it.
  timeout -k 5 "$BENCH_TIMEOUT" "$kafka_bench" "$@" --brokers "$brokers" --timeout $((BENCH_TIMEOUT > 20 ? BENCH_TIMEOUT - 10 : 10)) \
    >"$out" 2>"$err" || rc=$?
  t1=$(date +%s.%N)
  c1=$(cpu_secs "$broker_pid")
  if [[ -s "$err" ]]; then sed 's/^/    /' "$err" | tail -n 20 >&2; fi
  local line
  line=$(grep '^RESULT ' "$out" || true)
  if ((rc != 0)) || [[ -z "$line" ]]; then
    log "$name FAILED (exit $rc); last broker log lines:"
    tail -n 30 "$broker_log" | sed 's/^/    /' >&2
    failures+=("$name")
  fi
  if ! kill -0 "$broker_pid" 2>/dev/null; then
    log "broker process is gone after $name; broker log:"
    tail -n 50 "$broker_log" | sed 's/^/    /' >&2
    failures+=("broker died during $name")
    die "broker died"
  fi
  [[ -n "$line" ]] || return 0
  log "  ${line#RESULT }"
  local kv
  for kv in ${line#RESULT }; do R[$name.${kv%%=*}]=${kv#*=}; done
  R[$name.broker_cores]=$(cores "$c0" "$c1" "$t0" "$t1")
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
start_broker
# Deletes a topic once measured so the data directory stays small (the size is noted first).
disk_max=0
drop_topic() {
  local used
  used=$(du -sk "$tmp/sluice/data" | cut -f1)
  if ((used > disk_max)); then disk_max=$used; fi
  kafka_phase "delete-$1" delete --topic "$1"
  log "  data directory: $((used / 1024)) MiB before deleting $1, $(($(du -sk "$tmp/sluice/data" | cut -f1) / 1024)) MiB after"
}

throughput() { # produce-phase consume-phase topic records size acks
  kafka_phase "$1" produce --topic "$3" --records "$4" --size "$5" --acks "$6" --linger-ms "$BENCH_LINGER_MS"
  kafka_phase "$2" consume --topic "$3" --records "$4"
  drop_topic "$3"
}
throughput p200a1 c200a1 b200-acks1 "$BENCH_RECORDS" 200 1
throughput p200aall c200aall b200-acksall "$BENCH_RECORDS" 200 -1
throughput p1ka1 c1ka1 b1k-acks1 "$BENCH_RECORDS_1K" 1024 1
throughput p1kaall c1kaall b1k-acksall "$BENCH_RECORDS_1K" 1024 -1

peak=${R[p200a1.rps]:-}
lat_rate=${BENCH_LAT_RATE:-}
if [[ -z "$lat_rate" && -n "$peak" ]]; then lat_rate=$((peak / 2)); fi
if [[ -n "$lat_rate" ]]; then
  kafka_phase lat latency --topic lat-200 --rate "$lat_rate" --seconds "$BENCH_LAT_SECONDS" --warmup 2 --size 200 \
    --acks 1 --linger-ms "$BENCH_LAT_LINGER_MS"
  drop_topic lat-200
  # For context (not a target): the same at half that rate.
  kafka_phase lat2 latency --topic lat-200-low --rate $((lat_rate / 2)) --seconds "$BENCH_LAT_SECONDS" --warmup 2 \
    --size 200 --acks 1 --linger-ms "$BENCH_LAT_LINGER_MS"
  drop_topic lat-200-low
else
  log "latency phase skipped: no peak rate measured"
  failures+=("lat (no peak)")
fi
sluice_disk=$(awk -v k="$disk_max" 'BEGIN { printf "%.1f GB", k * 1024 / 1e9 }')
stop_broker
if grep -E ' (ERROR|WARN) ' "$broker_log" >/dev/null; then
  log "broker logged warnings/errors:"
  grep -E ' (ERROR|WARN) ' "$broker_log" | head -n 20 | sed 's/^/    /' >&2
fi
rm -rf "$tmp/sluice/data" # free the disk before the Redis runs

# ---------- Redis Streams ----------

# redis_phase NAME REDIS-SERVER-ARGS...: XADD of 200 B values with redis-benchmark against a fresh server.
redis_phase() {
  local name=$1
  shift
  local dir="$tmp/$name" port
  mkdir -p "$dir"
  port=$(free_port)
  redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --daemonize no --logfile "$dir/redis.log" \
    --protected-mode no "$@" &
  redis_pid=$!
  if ! wait_for 20 bash -c "[[ \$(redis-cli -p $port ping) == PONG ]]"; then
    tail -n 20 "$dir/redis.log" >&2
    failures+=("$name (redis did not start)")
    kill -TERM "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
    redis_pid=
    return 0
  fi
  local value c0 c1 t0 t1 out rc=0
  value=$(head -c 200 /dev/zero | tr '\0' v)
  log "$name: redis-benchmark -P $BENCH_REDIS_PIPELINE -c $BENCH_REDIS_CLIENTS -n $BENCH_RECORDS XADD bench '*' f <200 B> (server $*)"
  c0=$(cpu_secs "$redis_pid")
  t0=$(date +%s.%N)
  out=$(timeout -k 5 "$BENCH_TIMEOUT" redis-benchmark -h 127.0.0.1 -p "$port" -P "$BENCH_REDIS_PIPELINE" \
    -c "$BENCH_REDIS_CLIENTS" -n "$BENCH_RECORDS" --csv XADD bench '*' f "$value" 2>"$dir/benchmark.err") || rc=$?
  t1=$(date +%s.%N)
  c1=$(cpu_secs "$redis_pid")
  local rps len
  rps=$(printf '%s\n' "$out" | awk -F'","' 'NR == 2 { printf "%.0f", $2 }')
  len=$(redis-cli -p "$port" xlen bench 2>/dev/null || echo "?")
  if ((rc != 0)) || [[ -z "$rps" ]]; then
    log "$name FAILED (exit $rc): $(tail -n 5 "$dir/benchmark.err")"
    failures+=("$name")
  else
    R[$name.rps]=$rps
    R[$name.broker_cores]=$(cores "$c0" "$c1" "$t0" "$t1")
    log "  $rps XADD/s, stream length $len"
  fi
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || kill -TERM "$redis_pid" 2>/dev/null || true
  local i
  for ((i = 0; i < 300; i++)); do kill -0 "$redis_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$redis_pid" 2>/dev/null || true
  wait "$redis_pid" 2>/dev/null || true
  redis_pid=
  rm -rf "$dir"
}

redis_phase redis_nopersist --appendonly no --save ''
redis_phase redis_everysec --appendonly yes --appendfsync everysec --save ''

# ---------- disk reference ----------

disk_bw=
disk_dsync=
if command -v dd >/dev/null; then
  out=$(timeout 60 dd if=/dev/zero of="$tmp/dd.bin" bs=1M count=1024 oflag=direct 2>&1 | tail -n 1) || true
  disk_bw=$(awk '{ for (i = 1; i <= NF; i++) if ($i == "copied,") { printf "%.0f", $1 / $(i + 1) / 1e6 } }' <<<"$out")
  out=$(timeout 60 dd if=/dev/zero of="$tmp/dd.bin" bs=4k count=2000 oflag=dsync 2>&1 | tail -n 1) || true
  disk_dsync=$(awk '{ for (i = 1; i <= NF; i++) if ($i == "copied,") { printf "%.0f", 2000 / $(i + 1) } }' <<<"$out")
  rm -f "$tmp/dd.bin"
fi

# ---------- report ----------

fmt() { # integer with thousands separators, or n/a
  if [[ -z "${1:-}" ]]; then echo "n/a"; else sed -e ':a' -e 's/\B[0-9]\{3\}\>/,&/' -e 'ta' <<<"$1"; fi
}
mb() { # records/s and size -> MB/s
  if [[ -z "${1:-}" ]]; then echo "n/a"; else awk -v r="$1" -v s="$2" 'BEGIN { printf "%.0f", r * s / 1e6 }'; fi
}
ratio() { # a / b, or n/a
  if [[ -z "${1:-}" || -z "${2:-}" ]]; then echo "n/a"; else awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; fi
}
verdict() { # value op goal
  if [[ "$1" == n/a ]]; then echo "n/a"; else awk -v v="$1" -v g="$3" -v op="$2" \
    'BEGIN { ok = (op == ">=" ? v >= g : v <= g); print (ok ? "PASS" : "FAIL") }'; fi
}
v() { echo "${R[$1]:-}"; }
na() { if [[ -z "${1:-}" ]]; then echo "n/a"; else echo "$1"; fi; }

cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
rdkafka_version=$(pkg-config --modversion rdkafka)
redis_version=$(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

r_xadd=$(ratio "$(v p200a1.rps)" "$(v redis_nopersist.rps)")
r_fsync=$(ratio "$(v p200aall.rps)" "$(v redis_everysec.rps)")
p99=$(v lat.p99_ms)

row() { # label records size produce-phase consume-phase
  local p=$2 s=$3
  printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$(fmt "$p")" "$(fmt "$(v "$4.rps")")" \
    "$(mb "$(v "$4.rps")" "$s")" "$(fmt "$(v "$5.rps")")" "$(mb "$(v "$5.rps")" "$s")" \
    "$(na "$(v "$4.broker_cores")") / $(na "$(v "$5.broker_cores")")"
}

latrow() { # label phase
  printf '| %s s at %s, first 2 s not counted | %s rec/s | %s rec/s | %s ms | %s ms | %s ms | %s ms |\n' \
    "$BENCH_LAT_SECONDS" "$1" "$(fmt "$(v "$2.rate")")" "$(fmt "$(v "$2.achieved_rate")")" "$(na "$(v "$2.p50_ms")")" \
    "$(na "$(v "$2.p99_ms")")" "$(na "$(v "$2.p999_ms")")" "$(na "$(v "$2.max_ms")")"
}

report=$(
  cat <<EOF
### Sluice benchmark ($(date -u +%Y-%m-%d))

Broker: $("$SLUICE_BIN" version 2>/dev/null | head -n 1) ($SLUICE_BIN). Host: $(nproc) CPU ($cpu_model), Linux $(uname -r); load average at start ${load_start}, at end ${load_end}.
Clients: librdkafka $rdkafka_version (bench/kafka_bench.c), one producer or consumer process on the same host, no compression.
Topics: $BENCH_PARTITIONS partitions each (auto-created, broker.num_partitions=$BENCH_PARTITIONS), broker defaults otherwise (acks=all waits for fsync).

| Workload | Records | Produce rec/s | Produce MB/s | Consume rec/s | Consume MB/s | Server CPU cores (produce / consume) |
|---|--:|--:|--:|--:|--:|--:|
$(row "Sluice 200 B, acks=1" "$BENCH_RECORDS" 200 p200a1 c200a1)
$(row "Sluice 200 B, acks=all" "$BENCH_RECORDS" 200 p200aall c200aall)
$(row "Sluice 1 KiB, acks=1" "$BENCH_RECORDS_1K" 1024 p1ka1 c1ka1)
$(row "Sluice 1 KiB, acks=all" "$BENCH_RECORDS_1K" 1024 p1kaall c1kaall)
| Redis $redis_version XADD 200 B, pipelined (-P $BENCH_REDIS_PIPELINE, -c $BENCH_REDIS_CLIENTS), no persistence | $(fmt "$BENCH_RECORDS") | $(fmt "$(v redis_nopersist.rps)") | $(mb "$(v redis_nopersist.rps)" 200) | | | $(na "$(v redis_nopersist.broker_cores)") |
| Redis $redis_version XADD 200 B, pipelined, appendonly yes + appendfsync everysec | $(fmt "$BENCH_RECORDS") | $(fmt "$(v redis_everysec.rps)") | $(mb "$(v redis_everysec.rps)" 200) | | | $(na "$(v redis_everysec.broker_cores)") |

| Sluice produce→consume latency (200 B, acks=1, linger.ms=$BENCH_LAT_LINGER_MS) | Target rate | Achieved rate | p50 | p99 | p99.9 | max |
|---|--:|--:|--:|--:|--:|--:|
$(latrow "half the 200 B acks=1 peak (target)" lat)
$(latrow "a quarter of the peak (context)" lat2)

| Target | Measured | Goal | Result |
|---|--:|--:|:-:|
| 200 B acks=1 rec/s vs pipelined XADD (no persistence) | ${r_xadd}x | ≥ 2x | $(verdict "$r_xadd" ">=" 2) |
| 200 B acks=all rec/s vs XADD with appendfsync everysec | ${r_fsync}x | ≥ 1.5x | $(verdict "$r_fsync" ">=" 1.5) |
| p99 produce→consume latency at half peak | $(na "$p99") ms | ≤ 5 ms | $(verdict "$(na "$p99")" "<=" 5) |

Throughput phases: linger.ms=$BENCH_LINGER_MS, batch.size=1000000, time from the first send to the last delivery report (produce) or from assignment to the last record (consume); MB/s counts record values only. Largest Sluice data directory (measured before each topic is deleted): ${sluice_disk}.
Disk reference ($BENCH_TMPDIR): $(na "$disk_bw") MB/s sequential 1 MiB O_DIRECT writes, $(na "$disk_dsync") 4 KiB O_DSYNC writes/s (dd).

Command: \`$cmd\`
EOF
)

printf '%s\n' "$report"
mkdir -p "$root/bench/results"
printf '%s\n' "$report" >"$root/bench/results/latest.md"
log "table written to bench/results/latest.md"
if ((${#failures[@]})); then
  log "FAILED phases: ${failures[*]}"
  exit 1
fi
