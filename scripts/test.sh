#!/usr/bin/env bash
# Runs every test suite: C unit tests, then the real-client compatibility suites (pytest with Debian's python3,
# node's test runner for kafkajs), first on the release build, then again on an ASan+UBSan build. A clang build
# checks that the code also compiles warning-free there. Prints one summary line at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=$(nproc)
PY=/usr/bin/python3 # Debian's interpreter sees the python3-* client packages; a pyenv python3 would not

failures=()
passed=0
run() { # name, command...
  local name=$1
  shift
  echo
  echo "=== $name"
  if "$@"; then
    passed=$((passed + 1))
  else
    failures+=("$name")
  fi
}

build() { # dir, extra cmake args...
  local dir=$1
  shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null && cmake --build "$dir" -j "$jobs"
}

suites() { # build dir
  local dir=$1
  run "unit ($dir)" bash -c "cd '$dir' && ctest --output-on-failure"
  run "compat python ($dir)" env SLUICE_BIN="$root/$dir/sluice" SLUICE_SKIP_NODE=1 "$PY" -m pytest tests/compat -q -p no:cacheprovider
  run "compat node ($dir)" env SLUICE_BIN="$root/$dir/sluice" node --test tests/compat/node/
  run "e2e ($dir)" env SLUICE_BIN="$root/$dir/sluice" "$PY" -m pytest tests/e2e -q -p no:cacheprovider
  run "api ($dir)" env SLUICE_BIN="$root/$dir/sluice" "$PY" -m pytest tests/api -q -p no:cacheprovider
  run "compat cql node ($dir)" env SLUICE_BIN="$root/$dir/sluice" node --test tests/compat/cql/node/
}

run "build gcc" build build
run "build clang" env CC=clang bash -c "$(declare -f build); build build-clang"
if [[ " ${failures[*]-} " != *" build gcc "* ]]; then suites build; fi

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export SLUICE_SANITIZED=1
if run "build asan" env CC=clang bash -c "$(declare -f build); build build-asan -DSLUICE_SANITIZE=ON"; then
  suites build-asan
fi

echo
echo "=== summary"
for f in "${failures[@]+"${failures[@]}"}"; do echo "FAILED: $f"; done
echo "suites: ${passed} passed, ${#failures[@]} failed"
[[ ${#failures[@]} -eq 0 ]]
