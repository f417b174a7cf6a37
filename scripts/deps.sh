#!/usr/bin/env bash
# Installs the Debian packages tollgate needs to build, run and test, when they are missing.
# Usage: scripts/deps.sh [run|test|bench|browser|fuzz]
set -euo pipefail
what=${1:-run}
pkgs=(build-essential cmake pkg-config libh2o-evloop-dev libcurl4-openssl-dev librocksdb-dev libmsgpack-dev
      libyaml-dev libssl-dev libjansson-dev curl ca-certificates)
case "$what" in
  test) pkgs+=(libcmocka-dev nodejs npm openssl procps) ;;
  bench) pkgs+=(wrk nghttp2-client nginx-light gnuplot-nox h2o nodejs npm linux-perf) ;;
  browser) pkgs+=(chromium nodejs npm) ;;
  fuzz) pkgs+=(clang-14 libclang-rt-14-dev clang) ;;   # clang + libFuzzer (-fsanitize=fuzzer)
esac
missing=()
for p in "${pkgs[@]}"; do
  # node and npm may come from elsewhere than Debian; accept any working install
  if [ "$p" = nodejs ] && command -v node >/dev/null 2>&1; then continue; fi
  if [ "$p" = npm ] && command -v npm >/dev/null 2>&1; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
