#!/usr/bin/env bash
# End-to-end benchmark: simulator -> broker -> stream processor -> store, on this machine, in one command.
# Prints a markdown table and writes it to bench/results/e2e.md.
#
#   bench/e2e.sh                 # N=500000 readings per stage (override: N=1000000 bench/e2e.sh)
#
# Stages measured alone in the same run: the simulator producing to the broker (acks=all), the broker serving a
# consumer (kcat), the processor writing a pre-filled topic to the store. End to end: the processor running while
# the simulator produces. Latency: records produced at 20k readings/s, Kafka CreateTime -> row acknowledged by the
# store (after which it is queryable), from the processor's histogram. RSS and cold start: `sluice up`.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SLUICE_BIN:-$PWD/build/sluice}
N=${N:-500000}
work=$(mktemp -d /tmp/sluice-e2e-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ -n ${KEEP:-} ]] && echo "kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT

now_ms() { date +%s%3N; }
wait_file() { # file, timeout_s
  local end=$(($(now_ms) + ${2:-30} * 1000))
  while [[ ! -s $1 ]]; do
    (($(now_ms) < end)) || { echo "timeout waiting for $1" >&2; exit 1; }
    sleep 0.002
  done
}
written() { # stream log -> last "written" count
  grep -o 'written [0-9]*' "$1" | tail -1 | awk '{print $2}'
}
wait_written() { # log, count, timeout_s
  local end=$(($(now_ms) + ${3:-300} * 1000))
  while [[ "$(written "$1")" != "$2" ]]; do
    (($(now_ms) < end)) || { echo "timeout: $1 wrote $(written "$1") of $2" >&2; tail -5 "$1" >&2; exit 1; }
    sleep 0.05
  done
}
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
pipeline() { # name topic -> yaml path (the vehicles example on another topic and table)
  sed -e "s/topics: \[vehicles\]/topics: [$2]/" -e "s/group: sluice-vehicles/group: bench-$1/" \
    -e "s/table: vehicle_readings/table: bench_$1/" -e "s/name: vehicles/name: $1/" examples/vehicles.yaml \
    >"$work/$1.yaml"
  echo "$work/$1.yaml"
}
stream() { # name topic -> starts a processor, sets spid and slog
  slog=$work/stream-$1.log
  "$BIN" stream --brokers "$K" --cql "$C" --pipelines "$(pipeline "$1" "$2")" --ready-file "$work/$1.ready" \
    --set stream.status_interval_ms=100 --set stream.batch_rows=${BATCH:-128} \
    --set stream.max_inflight_rows=${INFLIGHT:-32768} >"$slog" 2>&1 &
  spid=$!
  pids+=("$spid")
  wait_file "$work/$1.ready" 30
}
stop_stream() {
  kill -TERM "$spid"
  wait "$spid" || true
}
sim() { # topic count rate
  "$BIN" simulate --brokers "$K" --profile vehicles --devices 1000 --rate "$3" --count "$2" --topic "$1" \
    --set simulate.progress_ms=0 2>>"$work/sim.log"
}

"$BIN" broker --listen 127.0.0.1:0 --data-dir "$work/broker" --ready-file "$work/k.ready" \
  --set broker.num_partitions=4 --set broker.group_initial_rebalance_delay_ms=0 2>"$work/broker.log" &
pids+=($!)
"$BIN" store --listen 127.0.0.1:0 --data-dir "$work/store" --ready-file "$work/c.ready" 2>"$work/store.log" &
pids+=($!)
wait_file "$work/k.ready"
wait_file "$work/c.ready"
K=$(cat "$work/k.ready")
C=$(cat "$work/c.ready")

# 1. simulator -> broker alone
t0=$(now_ms); sim stage1 "$N" max; t1=$(now_ms)
produce_rate=$((N * 1000 / (t1 - t0)))
# 2. broker -> consumer alone
t0=$(now_ms)
got=$(kcat -b "$K" -C -t stage1 -o beginning -e -q -X fetch.message.max.bytes=4194304 2>/dev/null | wc -l)
t1=$(now_ms)
[[ $got == "$N" ]] || { echo "kcat read $got of $N" >&2; exit 1; }
fetch_rate=$((N * 1000 / (t1 - t0)))
# 3. processor -> store alone, from the pre-filled topic
t0=$(now_ms); stream s3 stage1; wait_written "$slog" "$N"; t1=$(now_ms); stop_stream
process_rate=$((N * 1000 / (t1 - t0)))
# 4. end to end: produce and process at once
stream e2e e2e
t0=$(now_ms); sim e2e "$N" max; wait_written "$slog" "$N"; t1=$(now_ms); stop_stream
e2e_rate=$((N * 1000 / (t1 - t0)))
# 5. latency at 20k readings/s for 10 s, after 100 warm-up readings (they count too): a consumer that was just
#    given its partitions starts fetching them only when its first (empty) long-poll returns
stream lat lat
sim lat 100 1000/s
wait_written "$slog" 100
sim lat 200000 20000/s
wait_written "$slog" 200100
stop_stream
lat=$(grep -o 'latency p50 [0-9.]* ms p99 [0-9.]* ms' "$slog" | tail -1)
p50=$(echo "$lat" | awk '{print $3}')
p99=$(echo "$lat" | awk '{print $6}')
# 6. sluice up: cold start, idle RSS, RSS under load (end to end inside one process)
t0=$(now_ms)
"$BIN" up --data-dir "$work/up" --kafka-listen 127.0.0.1:0 --cql-listen 127.0.0.1:0 --ready-file "$work/up.ready" \
  --set up.demo_profiles= --set up.pipelines=vehicles --set up.status_ms=100 >"$work/up.out" 2>"$work/up.log" &
upid=$!
pids+=("$upid")
wait_file "$work/up.ready"
t1=$(now_ms)
cold_ms=$((t1 - t0))
sleep 2
rss_idle=$(rss_kib "$upid")
K=$(awk '/^kafka/ {print $2}' "$work/up.ready")
peak=0
UPN=$((N / 2))
sim vehicles "$UPN" max &
simpid=$!
t0=$(now_ms)
while [[ "$(grep -o 'total written [0-9]*' "$work/up.out" | tail -1 | awk '{print $3}')" != "$UPN" ]]; do
  r=$(rss_kib "$upid"); ((r > peak)) && peak=$r
  (($(now_ms) - t0 < 300000)) || { echo "up did not write $UPN" >&2; exit 1; }
  sleep 0.1
done
t1=$(now_ms)
wait "$simpid"
up_rate=$((UPN * 1000 / (t1 - t0)))
kill -INT "$upid"; wait "$upid" || true

slowest=$produce_rate
((fetch_rate < slowest)) && slowest=$fetch_rate
((process_rate < slowest)) && slowest=$process_rate
half=$((slowest / 2))
ok() { [[ $1 == 1 ]] && echo "yes" || echo "**no**"; }
out=$(
  cat <<TABLE
## End to end on $(nproc) cores ($(date -u +%Y-%m-%d), N=$N readings, \`bench/e2e.sh\`)

| measure | value | target | met |
|---|---:|---:|:-:|
| simulator -> broker alone (acks=all) | $produce_rate readings/s | | |
| broker -> consumer alone (kcat) | $fetch_rate readings/s | | |
| processor -> store alone | $process_rate readings/s | | |
| **end to end** (simulate + broker + stream + store, separate processes) | **$e2e_rate readings/s** | >= 200000 and >= $half (half the slowest stage) | $(ok $((e2e_rate >= 200000 && e2e_rate >= half))) |
| end to end inside one \`sluice up\` process | $up_rate readings/s | | |
| latency produce -> queryable at 20k readings/s, p50 | $p50 ms | | |
| latency produce -> queryable at 20k readings/s, p99 | $p99 ms | <= 20 ms | $(ok $(awk "BEGIN{print ($p99 <= 20)}")) |
| \`sluice up\` RSS idle | $((rss_idle / 1024)) MiB | <= 32 MiB | $(ok $((rss_idle <= 32768))) |
| \`sluice up\` RSS under load (peak) | $((peak / 1024)) MiB | <= 256 MiB | $(ok $((peak <= 262144))) |
| \`sluice up\` cold start to all listeners ready | $cold_ms ms | <= 100 ms | $(ok $((cold_ms <= 100))) |
TABLE
)
echo "$out"
mkdir -p bench/results
echo "$out" >bench/results/e2e.md
