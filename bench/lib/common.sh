# bench/lib/common.sh - shared helpers of bench/run.sh: logging, starting and always stopping the
# processes of a run (each in its own process group, pinned with taskset), waiting for ports,
# free ports, process-tree memory and CPU, and appending result records to the run's JSON lines.
# Sourced by run.sh; expects RUN_DIR and RESULTS to be set.

BENCH_T0=$(date +%s)

log() { printf '[bench %4ds] %s\n' $(( $(date +%s) - BENCH_T0 )) "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---- processes --------------------------------------------------------------------------------
# Every process a run starts is recorded here by pid; cleanup() stops them all on any exit.
declare -A PROC_PID=()

# spawn NAME CPULIST CMD...: starts CMD pinned to CPULIST in its own process group (setsid), output
# to $RUN_DIR/NAME.log. The pid (= process group id) is in PROC_PID[NAME].
spawn() {
  local name=$1 cpus=$2; shift 2
  setsid taskset -c "$cpus" "$@" >"$RUN_DIR/$name.log" 2>&1 </dev/null &
  PROC_PID[$name]=$!
}

# stop_proc NAME: SIGTERM to the process group, SIGKILL after 10 s; forgets the process.
stop_proc() {
  local name=$1 pid=${PROC_PID[$1]:-}
  [ -n "$pid" ] || return 0
  unset "PROC_PID[$name]"
  kill -TERM -- "-$pid" 2>/dev/null || return 0
  local i
  for i in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

stop_all() {
  local name
  for name in "${!PROC_PID[@]}"; do stop_proc "$name"; done
}

# pids of ROOT and all its descendants
tree_pids() {
  ps -e -o pid=,ppid= | awk -v root="$1" '
    { parent[$1] = $2; pids[NR] = $1 }
    END {
      keep[root] = 1; changed = 1
      while (changed) { changed = 0
        for (i in pids) { p = pids[i]; if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; changed = 1 } } }
      for (p in keep) print p
    }'
}

# "RSS_KB PSS_KB" summed over the process tree of ROOT
tree_mem_kb() {
  local p r=0 s=0 line
  for p in $(tree_pids "$1"); do
    line=$(awk '/^Rss:/ {r=$2} /^Pss:/ {s=$2} END {print r+0, s+0}' "/proc/$p/smaps_rollup" 2>/dev/null) || continue
    r=$(( r + ${line% *} )); s=$(( s + ${line#* } ))
  done
  echo "$r $s"
}

# CPU time (user + system, in clock ticks) used so far by the processes PID...
cpu_ticks_of() {
  local p t=0 v
  for p in "$@"; do
    v=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null) || continue
    t=$(( t + ${v:-0} ))
  done
  echo "$t"
}

# the same for the process tree of ROOT
tree_cpu_ticks() {
  # shellcheck disable=SC2046
  cpu_ticks_of $(tree_pids "$1")
}

# ---- network ----------------------------------------------------------------------------------
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port VAR: sets VAR to a loopback TCP port nobody listens on, from 20000-29999: below the
# kernel's ephemeral range (32768+ by default), which the load's outgoing connections use.
# Not a command substitution, so that the next call moves on.
NEXT_PORT=$(( 20000 + RANDOM % 9000 ))
free_port() {
  while port_open "$NEXT_PORT"; do NEXT_PORT=$(( NEXT_PORT + 1 )); done
  printf -v "$1" '%s' "$NEXT_PORT"
  NEXT_PORT=$(( NEXT_PORT + 1 ))
}

# wait_port PORT SECONDS NAME: until something accepts on 127.0.0.1:PORT
wait_port() {
  local i
  for i in $(seq $(( $2 * 20 ))); do
    port_open "$1" && return 0
    sleep 0.05
  done
  die "$3 did not listen on 127.0.0.1:$1 within $2 s (log: $RUN_DIR/$3.log)"
}

# ---- results ----------------------------------------------------------------------------------
# json_str STRING: STRING as a JSON string literal
json_str() {
  local s=$1
  s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/\\n}; s=${s//$'\t'/\\t}; s=${s//$'\r'/}
  printf '"%s"' "$s"
}

# record SCENARIO SYSTEM EXTRA_JSON_MEMBERS DATA_JSON: appends one result line to $RESULTS.
# EXTRA_JSON_MEMBERS is a (possibly empty) list of members such as '"c":16,"proto":"h1"'.
record() {
  local extra=${3:+,$3} data=${4:-null}
  [ -n "$data" ] || data=null
  printf '{"scenario":%s,"system":%s%s,"data":%s}\n' "$(json_str "$1")" "$(json_str "$2")" "$extra" "$data" >>"$RESULTS"
}

# last line of FILE that starts with '{' (the JSON summary a tool printed), or null
json_line() { grep '^{' "$1" 2>/dev/null | tail -n 1 || true; }
