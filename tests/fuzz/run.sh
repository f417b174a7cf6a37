#!/usr/bin/env bash
# Runs every libFuzzer target of tests/fuzz: first replays the committed regression inputs
# (tests/fuzz/regressions/<target>/), then fuzzes for SECONDS from the seed corpus
# (tests/fuzz/corpus/<target>/, copied to a scratch dir so the committed corpus stays small).
# Usage: tests/fuzz/run.sh BUILD_DIR SECONDS     Prints one stats line per target; exits 1 on any crash.
set -uo pipefail
build=${1:?build dir}
secs=${2:-10}
here=$(cd "$(dirname "$0")" && pwd)
work=${TG_FUZZ_WORK:-$build/fuzz-work}
mkdir -p "$work"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fail=0
for src in "$here"/fuzz_*.c; do
  t=$(basename "$src" .c)
  bin="$build/$t"
  [ -x "$bin" ] || { echo "$t: not built"; fail=1; continue; }
  if [ -d "$here/regressions/$t" ] && [ -n "$(ls -A "$here/regressions/$t")" ]; then
    if ! "$bin" -rss_limit_mb=2048 "$here/regressions/$t"/* >"$work/$t.replay.log" 2>&1; then
      echo "$t: REGRESSION input crashes again (see $work/$t.replay.log)"; fail=1; continue
    fi
  fi
  mkdir -p "$work/corpus-$t" "$work/crash-$t"
  cp -n "$here/corpus/$t"/* "$work/corpus-$t"/ 2>/dev/null
  "$bin" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="$work/crash-$t/" "$work/corpus-$t" "$here/corpus/$t" >"$work/$t.log" 2>&1
  rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$t.log" | grep -o '[0-9]*$')
  cov=$(grep -o 'cov: [0-9]*' "$work/$t.log" | tail -1 | grep -o '[0-9]*')
  ft=$(grep -o 'ft: [0-9]*' "$work/$t.log" | tail -1 | grep -o '[0-9]*')
  corp=$(ls "$work/corpus-$t" | wc -l)
  if [ $rc -ne 0 ]; then
    echo "$t: CRASH rc=$rc execs=${execs:-?} (log $work/$t.log, input in $work/crash-$t/)"; fail=1
    grep -m5 -E 'ERROR|runtime error|SUMMARY' "$work/$t.log" | sed 's/^/    /'
  else
    echo "$t: ok ${secs}s execs=${execs:-?} cov=${cov:-?} ft=${ft:-?} corpus=$corp"
  fi
done
exit $fail
