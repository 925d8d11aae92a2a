#!/usr/bin/env bash
# Installs everything Sluice needs to build and test on Debian 12: Debian packages via apt-get (only those
# missing), and the node test clients via npm. Safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  # build
  build-essential cmake pkg-config clang libclang-rt-14-dev libreadline-dev
  libuv1-dev libyaml-dev zlib1g-dev liblz4-dev libzstd-dev libsnappy-dev libcmocka-dev librocksdb-dev
  librdkafka-dev libjansson-dev libssl-dev
  # the REST API: h2o (HTTP on libuv); its tests and benchmark: nginx, headless chromium, wrk
  libh2o-dev nginx chromium wrk
  # real clients for the compatibility tests
  librdkafka-dev kcat python3 python3-pytest python3-confluent-kafka python3-kafka
  python3-snappy python3-lz4 python3-zstandard python3-cassandra nodejs npm
  # benchmark peers
  redis-server
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then missing+=("$p"); fi
done
# node and npm may come from elsewhere than Debian (e.g. a newer node already on PATH): accept those.
if command -v node >/dev/null && command -v npm >/dev/null; then
  tmp=()
  for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || tmp+=("$p"); done
  missing=("${tmp[@]+"${tmp[@]}"}")
fi
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [[ ! -d tests/compat/node/node_modules/kafkajs ]]; then
  echo "deps: installing node test clients (npm ci)"
  (cd tests/compat/node && npm ci --no-audit --no-fund --loglevel=error)
fi
if [[ ! -d tests/compat/cql/node/node_modules/cassandra-driver ]]; then
  echo "deps: installing the CQL node test client (npm ci)"
  (cd tests/compat/cql/node && npm ci --no-audit --no-fund --loglevel=error)
fi
if [[ ! -d web/node_modules/uplot || ! -d web/node_modules/playwright-core ]]; then
  echo "deps: installing the dashboard's npm packages (npm ci)"
  (cd web && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "deps: building the dashboard (web/dist)"
(cd web && npm run --silent build >/dev/null)
