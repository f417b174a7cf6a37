#!/usr/bin/env bash
# `make run`: starts the mock upstream on 127.0.0.1:9000 (the example config's provider) and
# tollgate with conf/tollgate.yaml in the foreground. Ctrl-C stops both.
set -euo pipefail
build=${1:-build}
config=${TOLLGATE_CONFIG:-conf/tollgate.yaml}
"$build/tollgate" --check -c "$config"
mock_pid=""
if ! curl -s -o /dev/null http://127.0.0.1:9000/_mock/stats 2>/dev/null; then
  "$build/tollgate-mock" --port 9000 --quiet > /dev/null &
  mock_pid=$!
fi
cleanup() { [ -n "$mock_pid" ] && kill "$mock_pid" 2>/dev/null || true; }
trap cleanup EXIT
echo "mock upstream on 127.0.0.1:9000; starting tollgate (Ctrl-C to stop)"
"$build/tollgate" -c "$config" &
tg_pid=$!
trap 'kill -TERM $tg_pid 2>/dev/null' INT TERM
wait $tg_pid || true
wait $tg_pid 2>/dev/null || true
