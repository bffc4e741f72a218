#!/usr/bin/env bash
# Installs what Cairn needs on a Debian machine, only if it is missing.
#   tools/ensure-deps.sh build   librocksdb-dev (to build and run)
#   tools/ensure-deps.sh test    + redis-tools, redis-server, prometheus (promtool), Python test packages
#   tools/ensure-deps.sh bench   + redis-tools, redis-server
#   tools/ensure-deps.sh profile + redis-tools, redis-server, linux-perf (tools/node-cost.sh)
set -euo pipefail
mode="${1:-build}"
packages=(librocksdb-dev)
case "$mode" in
  test) packages+=(redis-tools redis-server prometheus) ;;
  bench) packages+=(redis-tools redis-server) ;;
  profile) packages+=(redis-tools redis-server linux-perf) ;;
esac

missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "ensure-deps: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v swift >/dev/null 2>&1; then
  echo "ensure-deps: the Swift 6 toolchain is not on PATH (expected /opt/swift/usr/bin)" >&2
  exit 1
fi

if [ "$mode" = test ]; then
  if ! python3 -c 'import redis, pytest' >/dev/null 2>&1; then
    echo "ensure-deps: installing Python test packages"
    python3 -m pip install -q -r tests/integration/requirements.txt
  fi
fi
