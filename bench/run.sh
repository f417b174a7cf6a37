#!/usr/bin/env bash
# bench/run.sh - tollgate's benchmark suite (`make bench`; `QUICK=1 make bench` for the short run).
#
# Runs the scenarios of docs/benchmarks.md in one go, every gateway beside the same load
# sent straight to the mock upstream ("direct"), and writes the raw results, a Markdown summary
# and SVG plots to bench/results/ (see docs/benchmarks.md for how to read them).
#
#   systems    direct, tollgate, nginx proxy_pass, h2o proxy.reverse.url, Portkey's gateway
#   load       wrk (HTTP/1.1), h2load (h2c), bench/tools/loadgen.c (streams; paced open loop)
#   pinning    the mocks and the system under test on $SYS_CPUS (default CPU 0), the load
#              generators on $LOAD_CPUS (default CPU 1)
#   settings   QUICK=1 (about 3 minutes) or the full run (about 10-15 minutes); SYSTEMS and SCENARIOS
#              select a subset, e.g. SYSTEMS="direct tollgate" SCENARIOS="S1 S2" (reported as
#              "-partial", latest.* untouched); BUILD=build;
#              KEEP=1 keeps the run directory (logs, configs, perf.data)
#
# Every process started here is stopped on exit, also on failure or Ctrl-C.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
BUILD=${BUILD:-$ROOT/build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
QUICK=${QUICK:-0}
ALL_SYSTEMS="direct tollgate nginx h2o portkey"
ALL_SCENARIOS="M S1 S6 S7 PROFILE S2 S3 S4 S5"
SYSTEMS=${SYSTEMS:-$ALL_SYSTEMS}
SCENARIOS=${SCENARIOS:-$ALL_SCENARIOS}
# a subset run is reported as <date>-<host>[-quick]-partial and leaves latest.* alone
PARTIAL=$([ "$SYSTEMS" = "$ALL_SYSTEMS" ] && [ "$SCENARIOS" = "$ALL_SCENARIOS" ] && echo 0 || echo 1)
NPROC=$(nproc)
CLK_TCK=$(getconf CLK_TCK)
SYS_CPUS=${SYS_CPUS:-0}
LOAD_CPUS=${LOAD_CPUS:-$([ "$NPROC" -ge 2 ] && echo 1 || echo 0)}
TG_WORKERS=${TG_WORKERS:-1}       # one worker: tollgate gets the same single core as every other system
TG_MAX_ACCOUNTS=${TG_MAX_ACCOUNTS:-100000}
GOV_DEPTH=3                       # sub-account levels below root once governance exists

if [ "$QUICK" = 1 ]; then
  WARMUP_SECONDS=1; S1_SECONDS=2; S1_CONCURRENCY="1 16 64 256"
  H2C_CONNS=4; H2C_STREAMS=16
  S2_STREAMS=10; S2_CHUNKS=50; S2_DELAY_MS=2
  S3_STREAMS=1000; S3_CHUNKS=15; S3_DELAY_MS=100; S3_STREAMS_PORTKEY=1000
  S6_INJECT=200000
  S7_CONNS=128; S7_STEP_MS=1000; S7_RATES="1000 5000 10000 15000 20000 25000 30000 40000"
  M_ACCOUNTS=1,100000,1000000; M_OPS=300000
  S4_ACCOUNTS="1 20000"; S4_INJECT=50000; S5_RPM=6000; S5_SECONDS=5
  PROFILE_SECONDS=3
else
  WARMUP_SECONDS=2; S1_SECONDS=8; S1_CONCURRENCY="1 16 64 256"
  H2C_CONNS=4; H2C_STREAMS=16
  S2_STREAMS=50; S2_CHUNKS=50; S2_DELAY_MS=2
  # 10,000 streams at an event every 100 ms would be 100,000 events/s from the one core that the
  # system shares with the mock: more than any system here can relay, so the streams would never
  # all be open at once. The full run spaces events 1 s apart (10,000 events/s) to weigh them.
  S3_STREAMS=10000; S3_CHUNKS=15; S3_DELAY_MS=1000; S3_STREAMS_PORTKEY=2000
  S6_INJECT=1000000
  S7_CONNS=128; S7_STEP_MS=3000
  S7_RATES="1000 4000 8000 10000 12000 14000 16000 20000 25000 30000 35000 40000 50000 60000 80000"
  M_ACCOUNTS=1,100000,1000000; M_OPS=4000000
  S4_ACCOUNTS="1 100000 1000000"; S4_INJECT=200000; S5_RPM=6000; S5_SECONDS=20
  PROFILE_SECONDS=5
fi

RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tollgate-bench.XXXXXX")
RESULTS=$RUN_DIR/results.jsonl
TOOLS=$RUN_DIR/tools
: >"$RESULTS"

source "$BENCH_DIR/lib/common.sh"
source "$BENCH_DIR/lib/systems.sh"
source "$BENCH_DIR/lib/scenarios.sh"

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_all
  if [ "${KEEP:-0}" = 1 ] || [ "$rc" != 0 ]; then log "run directory kept: $RUN_DIR"; else rm -rf "$RUN_DIR"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

want() { [[ " $SCENARIOS " == *" $1 "* ]]; }

# ---- prerequisites ----------------------------------------------------------------------------
TG_BIN=$BUILD/tollgate
TG_MOCK=$BUILD/tollgate-mock
[ -x "$TG_BIN" ] && [ -x "$TG_MOCK" ] || die "build tollgate first (make build): $TG_BIN, $TG_MOCK"
for tool in wrk h2load taskset curl node cc pkg-config gnuplot; do
  command -v "$tool" >/dev/null || die "$tool is missing (scripts/deps.sh bench installs the Debian packages)"
done
for sys in $SYSTEMS; do
  case $sys in
    nginx) command -v nginx >/dev/null || die "nginx is missing (Debian nginx-light)" ;;
    h2o) command -v h2o >/dev/null || die "h2o is missing (Debian h2o)" ;;
    portkey)
      if [ ! -d "$BENCH_DIR/portkey/node_modules/@portkey-ai/gateway" ]; then
        log "installing Portkey's gateway from bench/portkey/package-lock.json (npm ci)"
        (cd "$BENCH_DIR/portkey" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || die "npm ci failed in bench/portkey"
      fi ;;
    direct|tollgate) ;;
    *) die "unknown system $sys" ;;
  esac
done

# S3 opens two sockets per stream in the gateway: raise the descriptor limit (root can raise the
# hard one) and shrink S3 to what the limit allows.
ulimit -Hn 262144 2>/dev/null || true
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
FD_LIMIT=$(ulimit -n)
if [ $(( S3_STREAMS * 2 + 2000 )) -gt "$FD_LIMIT" ]; then
  S3_STREAMS=$(( (FD_LIMIT - 2000) / 2 ))
  log "S3 limited to $S3_STREAMS streams by the descriptor limit ($FD_LIMIT)"
fi

# the C tools: the streaming client, and two programs linked against tollgate's static library
mkdir -p "$TOOLS"
cc -O2 -Wall -o "$TOOLS/loadgen" "$BENCH_DIR/tools/loadgen.c"
TG_LIBS=$(pkg-config --libs libh2o-evloop libcurl yaml-0.1 jansson msgpack rocksdb openssl)
# headers from the source tree the build was made from, so the arena layout matches the library
TG_SRC=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$BUILD/CMakeCache.txt" 2>/dev/null)
TG_SRC=${TG_SRC:-$ROOT}
for prog in arena_micro ring_probe; do
  # shellcheck disable=SC2086
  cc -O2 -Wall -D_GNU_SOURCE -DH2O_USE_LIBUV=0 -I"$TG_SRC" -o "$TOOLS/$prog" "$BENCH_DIR/micro/$prog.c" \
    "$BUILD/libtgcore.a" $TG_LIBS -lpthread -lm
done

# CPU time of the whole machine, to tell afterwards how much other work ran beside the benchmark
read -r _ cu cn cs _ _ cirq csirq csteal _ </proc/stat
MACHINE_BUSY0=$(( cu + cn + cs + cirq + csirq )); MACHINE_STEAL0=$csteal

ROOT_KEY=sk-Xvs$(head -c 512 /dev/urandom | tr -dc 'A-Za-z0-9' | head -c 45)
[ ${#ROOT_KEY} = 51 ] || die "could not make a root key"

# ---- the run ----------------------------------------------------------------------------------
log "run directory $RUN_DIR; QUICK=$QUICK; systems: $SYSTEMS; scenarios: $SCENARIOS"
record meta run "" "{\"quick\":$([ "$QUICK" = 1 ] && echo true || echo false),\"sys_cpus\":$(json_str "$SYS_CPUS"),\"load_cpus\":$(json_str "$LOAD_CPUS"),\"tollgate_workers\":$TG_WORKERS,\"fd_limit\":$FD_LIMIT,\"s3_streams\":$S3_STREAMS,\"loadavg_start\":$(json_str "$(cat /proc/loadavg)"),\"systems\":$(json_str "$SYSTEMS"),\"scenarios\":$(json_str "$SCENARIOS"),\"s1_seconds\":$S1_SECONDS,\"s7_step_ms\":$S7_STEP_MS,\"s7_conns\":$S7_CONNS,\"s2_delay_ms\":$S2_DELAY_MS}"

if want M; then
  log "M: arena micro-benchmarks ($M_ACCOUNTS accounts, 1..$NPROC processes)"
  taskset -c "0-$(( NPROC - 1 ))" "$TOOLS/arena_micro" "$RUN_DIR" "$M_ACCOUNTS" "$NPROC" "$M_OPS" >"$RUN_DIR/micro.jsonl"
  while read -r line; do record M arena "" "$line"; done <"$RUN_DIR/micro.jsonl"
fi

# the mock upstreams, one per response shape (the knobs are per process)
start_mock mock-fast; MOCK_FAST=$MOCK_PORT; MOCK_FAST_PID=${PROC_PID[mock-fast]}
start_mock mock-s2 --chunks "$S2_CHUNKS" --chunk-delay-ms "$S2_DELAY_MS"; MOCK_S2=$MOCK_PORT
start_mock mock-s3 --chunks "$S3_CHUNKS" --chunk-delay-ms "$S3_DELAY_MS"; MOCK_S3=$MOCK_PORT

# S1 and S7 (and on tollgate S6 and the profile) share one start of each system
if want S1 || want S7; then
  for sys in $SYSTEMS; do
    start_system "$sys" "$MOCK_FAST"
    [ "$sys" = tollgate ] && record governance tollgate "" "{\"label\":$(json_str "$GOVERNANCE")}"
    want S1 && s1_run
    if [ "$sys" = tollgate ]; then
      want PROFILE && profile_tollgate
      want S6 && s6_inject
    fi
    want S7 && s7_run
    stop_system
    [ "$sys" = tollgate ] && want S6 && s6_disk
  done
fi

if want S2; then
  for sys in $SYSTEMS; do
    log "S2 $sys: $S2_STREAMS streams of $S2_CHUNKS chunks"
    start_system "$sys" "$MOCK_S2"; s2_run; stop_system
  done
fi

if want S3; then
  for sys in $SYSTEMS; do
    [ "$sys" = direct ] && continue # no gateway: nothing to weigh
    # one node process cannot open 10,000 streams within the time budget: Portkey gets fewer
    n=$S3_STREAMS; [ "$sys" = portkey ] && [ "$S3_STREAMS_PORTKEY" -lt "$n" ] && n=$S3_STREAMS_PORTKEY
    log "S3 $sys: $n concurrent streams, an event every $S3_DELAY_MS ms"
    start_system "$sys" "$MOCK_S3"; s3_run "$n"; stop_system
  done
fi

if [[ " $SYSTEMS " == *" tollgate "* ]]; then
  if [ -z "${ACCOUNTS_API:-}" ] && { want S4 || want S5; }; then # not probed yet: S1/S7 were not run
    start_system tollgate "$MOCK_FAST"; stop_system
  fi
  want S4 && s4_run
  want S5 && s5_run
fi

stop_all
# Other work on the machine = all CPU time used since the start minus what this run's processes
# (all waited for, so counted by `times`) used.
read -r _ cu cn cs _ _ cirq csirq csteal _ </proc/stat
times >"$RUN_DIR/times.txt" # not in a pipeline: a subshell would report its own (empty) children
bench_cpu=$(tail -n 1 "$RUN_DIR/times.txt" | awk '{ n = 0; for (i = 1; i <= 2; i++) { split($i, t, /[ms]/); n += t[1] * 60 + t[2] } printf "%.1f", n }')
record meta end "" "{\"loadavg_end\":$(json_str "$(cat /proc/loadavg)"),\"seconds\":$(( $(date +%s) - BENCH_T0 )),\"machine_cpu_s\":$(( (cu + cn + cs + cirq + csirq - MACHINE_BUSY0) / CLK_TCK )),\"bench_cpu_s\":$bench_cpu,\"steal_s\":$(( (csteal - MACHINE_STEAL0) / CLK_TCK ))}"

# ---- the report -------------------------------------------------------------------------------
export BENCH_TG_BIN=$TG_BIN BENCH_TG_SRC=$TG_SRC BENCH_ROOT=$ROOT BENCH_RUN_DIR=$RUN_DIR BENCH_PARTIAL=$PARTIAL
node "$BENCH_DIR/lib/report.mjs" "$RESULTS" "$BENCH_DIR/results"
log "done in $(( $(date +%s) - BENCH_T0 )) s"
