# bench/lib/scenarios.sh - the scenarios of docs/benchmarks.md as run by bench/run.sh:
# load generators (wrk, h2load, loadgen) pinned to $LOAD_CPUS against the running system
# (lib/systems.sh), each result appended to $RESULTS by record(). Sourced by run.sh.

# ---- load generators --------------------------------------------------------------------------
# The request body of wrk's script (non-streaming chat)
export BENCH_BODY=$BENCH_DIR/payloads/chat.json

# SYS_HEADERS as repeated -H arguments, into the array HDR_ARGS
header_args() {
  local h
  HDR_ARGS=()
  for h in "${SYS_HEADERS[@]}"; do HDR_ARGS+=(-H "$h"); done
}

# wrk_args C SECONDS: the command line of a closed-loop HTTP/1.1 run (one wrk thread, C
# connections) against the running system, into the array WRK_ARGS
wrk_args() {
  header_args
  WRK_ARGS=(wrk -t1 -c"$1" -d"$2"s --timeout 10s -s "$BENCH_DIR/lib/wrk-post.lua" "${HDR_ARGS[@]}"
            "http://127.0.0.1:$SYS_PORT$SYS_PATH")
}

# run_wrk C SECONDS: runs wrk_args' command on the load CPUs; prints wrk's JSON summary
run_wrk() {
  wrk_args "$1" "$2"
  taskset -c "$LOAD_CPUS" "${WRK_ARGS[@]}" >"$RUN_DIR/wrk.out" 2>&1 || true
  json_line "$RUN_DIR/wrk.out"
}

# run_h2load ARGS...: h2load with the body, headers and per-request log; prints the JSON summary
run_h2load() {
  header_args
  rm -f "$RUN_DIR/h2load.log"
  taskset -c "$LOAD_CPUS" h2load -t 1 -d "$BENCH_BODY" -H 'Content-Type: application/json' \
    "${HDR_ARGS[@]}" --log-file "$RUN_DIR/h2load.log" "$@" >"$RUN_DIR/h2load.out" 2>&1 || true
  node "$BENCH_DIR/lib/h2load-summary.mjs" "$RUN_DIR/h2load.out" "$RUN_DIR/h2load.log"
}

# sse_args PORT CONNS STREAMS TIMEOUT_S: loadgen's command line for streams, into SSE_ARGS
sse_args() {
  header_args
  SSE_ARGS=("$TOOLS/loadgen" --port "$1" --path "$SYS_PATH" --body "$BENCH_DIR/payloads/chat-stream.json"
            "${HDR_ARGS[@]}" --conns "$2" --streams "$3" --timeout-s "$4")
}

# run_sse PORT CONNS STREAMS TIMEOUT_S: runs loadgen's streams mode; prints its JSON
run_sse() {
  sse_args "$@"
  taskset -c "$LOAD_CPUS" "${SSE_ARGS[@]}" 2>>"$RUN_DIR/loadgen.err" || true
}

# run_paced RATE SECONDS: loadgen's paced (open-loop, wrk2-style) mode, non-streaming chat, after
# 0.3 s unmeasured; prints its JSON
run_paced() {
  header_args
  taskset -c "$LOAD_CPUS" "$TOOLS/loadgen" --port "$SYS_PORT" --path "$SYS_PATH" --body "$BENCH_BODY" \
    "${HDR_ARGS[@]}" --conns "$S7_CONNS" --rate "$1" --duration-s "$2" --warmup-s 0.3 2>>"$RUN_DIR/loadgen.err" || true
}

# ---- S1: non-streaming chat, closed loop, c = 1..256 (HTTP/1.1) and one HTTP/2 point --------
# On tollgate the usage ring is watched during each point: that is S6 "under S1 peak". The CPU
# time of the system's processes (for direct: the mock's) and of the mock is recorded per point:
# CPU per request gives requests per second per core for capacity planning.
s1_run() {
  local c data cpu0 cpu1 mock0 mock1 wk0 wk1
  log "S1 $SYS_NAME: warm-up ${WARMUP_SECONDS}s"
  run_wrk 16 "$WARMUP_SECONDS" >/dev/null
  for c in $S1_CONCURRENCY; do
    if [ "$SYS_NAME" = tollgate ]; then
      spawn ring-watch "$LOAD_CPUS" "$TOOLS/ring_probe" watch "$TG_ARENA" $(( S1_SECONDS * 1000 + 300 )) 20
    fi
    cpu0=$(tree_cpu_ticks "${SYS_ROOT_PID:-$MOCK_FAST_PID}"); mock0=$(cpu_ticks_of "$MOCK_FAST_PID")
    wk0=$(cpu_ticks_of ${TG_WORKER_PIDS:-})
    data=$(run_wrk "$c" "$S1_SECONDS")
    cpu1=$(tree_cpu_ticks "${SYS_ROOT_PID:-$MOCK_FAST_PID}"); mock1=$(cpu_ticks_of "$MOCK_FAST_PID")
    wk1=$(cpu_ticks_of ${TG_WORKER_PIDS:-})
    record S1 "$SYS_NAME" "\"proto\":\"h1\",\"c\":$c,\"cpu_ticks\":$(( cpu1 - cpu0 )),\"worker_cpu_ticks\":$(( wk1 - wk0 )),\"mock_cpu_ticks\":$(( mock1 - mock0 )),\"clk_tck\":$CLK_TCK" "$data"
    log "S1 $SYS_NAME c=$c: $(sed -n 's/.*"rps":\([0-9.]*\).*"p99":\([0-9.]*\).*/\1 rps, p99 \2 ms/p' <<<"$data")"
    if [ "$SYS_NAME" = tollgate ]; then
      wait "${PROC_PID[ring-watch]}" 2>/dev/null || true
      unset "PROC_PID[ring-watch]"
      record S6 tollgate "\"phase\":\"under_s1\",\"c\":$c" "$(json_line "$RUN_DIR/ring-watch.log")"
    fi
  done
  if [ -n "$SYS_H2C_PORT" ]; then
    data=$(run_h2load -c "$H2C_CONNS" -m "$H2C_STREAMS" -D "$S1_SECONDS" "http://127.0.0.1:$SYS_H2C_PORT$SYS_PATH")
    record S1 "$SYS_NAME" "\"proto\":\"h2c\",\"c\":$(( H2C_CONNS * H2C_STREAMS )),\"conns\":$H2C_CONNS,\"streams\":$H2C_STREAMS" "$data"
  fi
}

# ---- S7: throughput frontier -------------------------------------------------------------------
# A ladder of offered rates, each held for $S7_STEP_MS ms by loadgen's paced mode (an open loop:
# latency counts from when a request was due, so falling behind shows as latency, not as a lower
# rate). A system's ladder stops once it cannot keep up: p99 > 20 ms (past the 10 ms "added"
# threshold), failures, or < 90 % of the offered rate completed in the window. report.mjs
# subtracts direct's p99 at the same rate.
s7_run() {
  local rate data secs
  secs=$(awk -v ms="$S7_STEP_MS" 'BEGIN { printf "%.3f", ms / 1000 }')
  for rate in $S7_RATES; do
    data=$(run_paced "$rate" "$secs")
    record S7 "$SYS_NAME" "\"offered_rps\":$rate" "$data"
    if ! node -e '
      const d = JSON.parse(process.argv[1]), offered = Number(process.argv[2]);
      const ok = d.achieved_rps >= 0.9 * offered && d.latency_ms.p99 <= 20 && d.failed === 0 && d.unfinished === 0;
      process.exit(ok ? 0 : 1);' "$data" "$rate" 2>/dev/null; then
      log "S7 $SYS_NAME: could not keep up with $rate requests/s"
      break
    fi
  done
}

# ---- S2: streaming, 50 chunks: TTFB and inter-chunk gaps, one stream at a time --------------
s2_run() {
  run_sse "$SYS_STREAM_PORT" 1 2 30 >/dev/null # warm-up
  record S2 "$SYS_NAME" "\"chunks\":$S2_CHUNKS,\"chunk_delay_ms\":$S2_DELAY_MS" \
    "$(run_sse "$SYS_STREAM_PORT" 1 "$S2_STREAMS" 120)"
}

# ---- S3: many slow concurrent streams: memory per open stream, CPU per chunk ------------------
# s3_run STREAMS
# Memory (RSS and PSS summed over the system's processes) is sampled while the streams open; the
# sample with the most streams open is kept and compared with the idle baseline.
s3_run() {
  local streams=$1 status=$RUN_DIR/s3.status base peak=0 peak_mem="0 0" open mem cpu0 cpu1 secs
  run_sse "$SYS_STREAM_PORT" 10 10 60 >/dev/null # warm-up: first connections, buffers, pools
  sleep 0.5
  base=$(tree_mem_kb "$SYS_ROOT_PID")
  cpu0=$(tree_cpu_ticks "$SYS_ROOT_PID")
  rm -f "$status"
  secs=$(( S3_CHUNKS * S3_DELAY_MS / 1000 + 90 ))
  sse_args "$SYS_STREAM_PORT" "$streams" "$streams" "$secs"
  spawn sse-hold "$LOAD_CPUS" "${SSE_ARGS[@]}" --status "$status" --max-connecting 128
  while kill -0 "${PROC_PID[sse-hold]}" 2>/dev/null; do
    open=$(cut -d' ' -f1 "$status" 2>/dev/null || echo 0)
    if [ "${open:-0}" -gt "$peak" ]; then
      mem=$(tree_mem_kb "$SYS_ROOT_PID")
      peak=$open; peak_mem=$mem
    fi
    sleep 0.2
  done
  wait "${PROC_PID[sse-hold]}" 2>/dev/null || true
  unset "PROC_PID[sse-hold]"
  cpu1=$(tree_cpu_ticks "$SYS_ROOT_PID")
  record S3 "$SYS_NAME" "\"streams\":$streams,\"chunks\":$S3_CHUNKS,\"chunk_delay_ms\":$S3_DELAY_MS" \
    "{\"client\":$(json_line "$RUN_DIR/sse-hold.log"),\"sampled_open\":$peak,\"base_rss_kb\":${base% *},\"base_pss_kb\":${base#* },\"peak_rss_kb\":${peak_mem% *},\"peak_pss_kb\":${peak_mem#* },\"cpu_ticks\":$(( cpu1 - cpu0 )),\"clk_tck\":$CLK_TCK}"
  log "S3 $SYS_NAME: $peak streams open at the peak sample"
}

# ---- tollgate only: profile, persister alone, disk per record ---------------------------------
# perf on one worker while wrk holds S1's c=64 load; perf report's top lines go into the results.
profile_tollgate() {
  local worker=${TG_WORKER_PIDS%% *} data
  if ! command -v perf >/dev/null || [ -z "$worker" ]; then
    record PROFILE tollgate "" '{"skipped":"perf is not installed or no worker pid"}'
    return 0
  fi
  log "profile: perf record on worker $worker for ${PROFILE_SECONDS}s under c=64"
  wrk_args 64 $(( PROFILE_SECONDS + 2 ))
  spawn wrk-profile "$LOAD_CPUS" "${WRK_ARGS[@]}"
  sleep 1
  if taskset -c "$LOAD_CPUS" perf record -e cpu-clock -F 1999 -p "$worker" -o "$RUN_DIR/perf.data" -- sleep "$PROFILE_SECONDS" \
       >"$RUN_DIR/perf-record.log" 2>&1; then
    perf report -i "$RUN_DIR/perf.data" --stdio --no-children --sort dso,symbol --percent-limit 0.3 2>/dev/null \
      | grep -v '^#' | grep -v '^$' | head -n 50 >"$RUN_DIR/perf-top.txt" || true
    perf report -i "$RUN_DIR/perf.data" --stdio --no-children --sort dso 2>/dev/null \
      | grep -v '^#' | grep -v '^$' | head -n 20 >"$RUN_DIR/perf-dso.txt" || true
    data="{\"worker_pid\":$worker,\"seconds\":$PROFILE_SECONDS,\"event\":\"cpu-clock\",\"top\":$(json_str "$(cat "$RUN_DIR/perf-top.txt")"),\"by_dso\":$(json_str "$(cat "$RUN_DIR/perf-dso.txt")")}"
  else
    data="{\"skipped\":$(json_str "perf record failed: $(tail -n 3 "$RUN_DIR/perf-record.log")")}"
  fi
  wait "${PROC_PID[wrk-profile]}" 2>/dev/null || true
  unset "PROC_PID[wrk-profile]"
  record PROFILE tollgate "" "$data"
}

# S6 "persister alone": records pushed straight into the ring of the idle tollgate
s6_inject() {
  log "S6: injecting $S6_INJECT usage records into the ring"
  local data
  data=$(taskset -c "$LOAD_CPUS" "$TOOLS/ring_probe" inject "$TG_ARENA" "$S6_INJECT" 120 || true)
  record S6 tollgate '"phase":"persister_alone"' "$data"
  log "S6: $(sed -n 's/.*"records_per_s":\([0-9]*\).*/\1 records\/s/p' <<<"$data")"
}

# S6 disk: after tollgate stopped, the usage records stored and the size of data/db
s6_disk() {
  local n bytes
  n=$("$TG_BIN" admin usage -c "$TG_DIR/tollgate.yaml" 2>/dev/null | wc -l)
  bytes=$(du -sb "$TG_DIR/data/db" | cut -f1)
  record S6 tollgate '"phase":"disk"' "{\"records\":$n,\"db_bytes\":$bytes}"
}

# ---- S4 / S5: need the account API ------------------------------------------------------------
# S4: N accounts under one owner, wrk rotating through their keys (RPS against N = 1: the cost of
# the key index and the per-account state at scale). The accounts are created with the bulk path,
# `tollgate admin import` (tollgate stopped, the store written directly, then started again),
# because the API creates about a thousand a second.
s4_run() {
  if [ "${ACCOUNTS_API:-0}" != 1 ]; then
    record S4 tollgate "" '{"pending":"needs POST /x-users (account creation API)"}'
    return 0
  fi
  local n data keys=$RUN_DIR/s4-keys.txt t0 cpu0 cpu1 wk0 wk1
  for n in $S4_ACCOUNTS; do
    TG_MAX_ACCOUNTS=$(( n + 1000 )) start_system tollgate "$MOCK_FAST"
    log "S4: importing $n accounts"
    t0=$(date +%s)
    rm -f "$RUN_DIR/s4-import.jsonl" "$RUN_DIR/s4-keys.jsonl"
    if ! { node "$BENCH_DIR/lib/accounts.mjs" import-file --url "http://127.0.0.1:$SYS_PORT" --key "$BENCH_OWNER_KEY" \
             --n "$n" --out "$RUN_DIR/s4-import.jsonl" 2>>"$RUN_DIR/accounts.log" &&
           import_tollgate "$RUN_DIR/s4-import.jsonl" "$RUN_DIR/s4-keys.jsonl" &&
           node "$BENCH_DIR/lib/accounts.mjs" keys --in "$RUN_DIR/s4-keys.jsonl" --out "$keys" 2>>"$RUN_DIR/accounts.log"; }; then
      record S4 tollgate "\"accounts\":$n" '{"failed":"account import failed, see accounts.log"}'
      stop_system
      continue
    fi
    BENCH_KEYS_FILE=$keys run_wrk 64 "$WARMUP_SECONDS" >/dev/null
    cpu0=$(tree_cpu_ticks "$SYS_ROOT_PID"); wk0=$(cpu_ticks_of $TG_WORKER_PIDS)
    data=$(BENCH_KEYS_FILE=$keys run_wrk 64 "$S1_SECONDS")
    cpu1=$(tree_cpu_ticks "$SYS_ROOT_PID"); wk1=$(cpu_ticks_of $TG_WORKER_PIDS)
    record S4 tollgate "\"accounts\":$n,\"create_seconds\":$(( $(date +%s) - t0 )),\"arena_bytes\":$(stat -c %s "$TG_ARENA"),\"cpu_ticks\":$(( cpu1 - cpu0 )),\"worker_cpu_ticks\":$(( wk1 - wk0 )),\"clk_tck\":$CLK_TCK" "$data"
    log "S4 $n accounts: $(sed -n 's/.*"rps":\([0-9.]*\).*/\1 rps/p' <<<"$data")"
    # the persister alone with these accounts: records spread round-robin over all of them (S6's
    # injection, where every record of a batch is a distinct account to update)
    data=$(taskset -c "$LOAD_CPUS" "$TOOLS/ring_probe" inject "$TG_ARENA" "$S4_INJECT" 120 spread || true)
    record S6 tollgate "\"phase\":\"persister_spread\",\"accounts\":$n" "$data"
    log "S6 spread over $n accounts: $(sed -n 's/.*"records_per_s":\([0-9]*\).*/\1 records\/s/p' <<<"$data")"
    stop_system
  done
}

# S5: one account with an RPM limit hammered from every worker; admitted requests vs the limit
s5_run() {
  if [ "${ACCOUNTS_API:-0}" != 1 ]; then
    record S5 tollgate "" '{"pending":"needs POST /x-users with RPM limits (account and rate-limit APIs)"}'
    return 0
  fi
  local keys=$RUN_DIR/s5-key.txt data
  TG_WORKERS=$NPROC start_system tollgate "$MOCK_FAST"
  node "$BENCH_DIR/lib/accounts.mjs" bulk --url "http://127.0.0.1:$SYS_PORT" --key "$BENCH_OWNER_KEY" \
    --n 1 --rpm "$S5_RPM" --out "$keys" 2>>"$RUN_DIR/accounts.log"
  data=$(BENCH_KEYS_FILE=$keys run_wrk 64 "$S5_SECONDS")
  record S5 tollgate "\"rpm_limit\":$S5_RPM,\"seconds\":$S5_SECONDS,\"workers\":$NPROC" "$data"
  log "S5: $(sed -n 's/.*"requests":\([0-9]*\).*"status":\([0-9]*\).*/\1 requests, \2 refused/p' <<<"$data")"
  stop_system
}
