#!/usr/bin/env bash
# Repeats the crash tests ROUNDS times (default 200), each with KILLS kill -9 per test (default 5). Not part of
# the default run:  tests/e2e/crash_loop.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-200}
export SLUICE_CRASH_KILLS=${SLUICE_CRASH_KILLS:-5}
export SLUICE_BIN=${SLUICE_BIN:-$PWD/build/sluice}
for i in $(seq 1 "$rounds"); do
  echo "=== crash round $i/$rounds"
  /usr/bin/python3 -m pytest tests/e2e/test_crash.py -q -x -p no:cacheprovider
done
echo "crash loop: $rounds rounds passed"
