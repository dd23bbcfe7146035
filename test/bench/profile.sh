#!/usr/bin/env bash
# Where sticky-proxy's time goes, measured three ways that hold up on a shared, noisy machine:
#   callgrind  instructions per request and the functions they are spent in (exact counts, not
#              disturbed by other load), plus malloc/free calls per request; HAProxy measured the
#              same way for comparison
#   strace -c  system calls per request, by call
#   perf       (software cpu-clock sampling; this VM has no hardware counters) user vs kernel
#              split and the hottest symbols, kernel included
# Each: nginx x4, the proxy with the run.sh config, a warm-up pass placing the 10k keys, then a
# measured pass of exactly one request per key (keys.lua ONE_PASS) over 16 connections.

set -euo pipefail
source "$(dirname "$0")/lib.sh"

usage() {
  cat <<'EOF'
usage: test/bench/profile.sh [--tools LIST] [--keys N] [--out DIR]
  --tools LIST   comma-separated subset of callgrind,strace,perf (default all)
  --keys N       keys in the warm-up and the measured pass (default 10000)
  --proxies LIST callgrind comparison: sticky,haproxy (default both; strace/perf: sticky only
                 unless haproxy is listed too)
  --out DIR      keep the raw profiles (callgrind.out.*, perf.data, strace text) in DIR
env: STICKY_PROXY_BIN (a build with symbols helps: -g), STICKY_WORKERS (default 2).
EOF
}

TOOLS="callgrind,strace,perf" KEYS=10000 OUT="" PROXIES="sticky,haproxy"
while (($#)); do
  case $1 in
    --tools) TOOLS=$2; shift 2 ;;
    --keys) KEYS=$2; shift 2 ;;
    --proxies) PROXIES=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; bench_die "unknown option '$1'." ;;
  esac
done
IFS=, read -ra PROXY_LIST <<<"$PROXIES"
CONNS=16
THREADS=2

bench_init
STICKY_BIN=$(find_sticky_proxy)
read -r NG0 NG1 NG2 NG3 PORT METRICS_PORT <<<"$(free_ports 6)"
start_nginx "$NG0" "$NG1" "$NG2" "$NG3"
write_sticky_config "$BENCH_DIR/sticky.yaml" "$PORT" bench/profile 1000000
URL="http://127.0.0.1:$PORT/"
OUT_DIR=${OUT:-$BENCH_DIR}
mkdir -p "$OUT_DIR"

# start_proxy PROXY [WRAPPER...]: the proxy, optionally under a wrapper (valgrind). Sets PID.
start_proxy() {
  local proxy=$1
  shift
  if [[ $proxy == sticky ]]; then
    STICKY_ADMIN="$BENCH_DIR/admin.sock"
    "$@" "$STICKY_BIN" --config "$BENCH_DIR/sticky.yaml" --admin-socket "$STICKY_ADMIN" \
      --metrics-listen "127.0.0.1:$METRICS_PORT" --workers "${STICKY_WORKERS:-2}" \
      --log-level warn >"$BENCH_DIR/proxy.log" 2>&1 &
  else
    local servers="" i=0 p
    for p in "${NGINX_PORTS[@]}"; do
      servers+="    server nginx-$i 127.0.0.1:$p"$'\n'
      i=$((i + 1))
    done
    awk -v port="$PORT" -v servers="$servers" -v sock="$BENCH_DIR/haproxy.sock" '
      { gsub(/@PORT@/, port); gsub(/@STATS_SOCKET@/, sock) }
      /@SERVERS@/ { printf "%s", servers; next }
      { print }' "$BENCH_SRC/haproxy.cfg.in" >"$BENCH_DIR/haproxy.cfg"
    "$@" /usr/sbin/haproxy -db -f "$BENCH_DIR/haproxy.cfg" >"$BENCH_DIR/proxy.log" 2>&1 &
  fi
  PID=$!
  BENCH_PIDS+=("$PID")
  wait_http "$URL" 120 || bench_die "$proxy did not start (see $BENCH_DIR/proxy.log)."
  check_forwarding "$URL" "$proxy"
}

# pass NAME: one request per key; prints the completed request count.
pass() {
  run_wrk_pass "$BENCH_DIR/$1.txt" "$THREADS" "$CONNS" 600 "$BENCH_SRC/keys.lua" "$URL" \
    "$KEYS" "$THREADS" 1
  bench_field "$BENCH_DIR/$1.txt" requests
}

has_tool() { [[ ",$TOOLS," == *",$1,"* ]]; }

SUMMARY="$OUT_DIR/profile-summary.txt"
: >"$SUMMARY"
say() { echo "$*" | tee -a "$SUMMARY"; }
say "# $(date -Iseconds) profile: $KEYS keys, $CONNS connections, sticky-proxy $STICKY_BIN"

if has_tool callgrind; then
  command -v valgrind >/dev/null || bench_die "valgrind is not installed."
  for proxy in "${PROXY_LIST[@]}"; do
    cg="$OUT_DIR/callgrind.out.$proxy"
    start_proxy "$proxy" valgrind --tool=callgrind --callgrind-out-file="$cg" \
      --instr-atstart=no
    pass "cg-warm-$proxy" >/dev/null
    callgrind_control -i on "$PID" >/dev/null
    n=$(pass "cg-$proxy")
    callgrind_control -i off "$PID" >/dev/null
    bench_stop_pid "$PID"
    ir=$(callgrind_annotate "$cg" 2>/dev/null | awk '/PROGRAM TOTALS/ && !seen {gsub(",", "", $1); print $1; seen = 1}')
    # Calls into the allocator (glibc malloc/free and C++ operator new/delete).
    declare -A CALLS=()
    while IFS=$'\t' read -r fn count; do CALLS[$fn]=$count; done < <("$BENCH_SRC/callgrind_calls.py" "$cg" \
      malloc free 'operator new(unsigned long)' 'operator delete(void*, unsigned long)' \
      'operator delete(void*)')
    mallocs=${CALLS[malloc]}
    news=${CALLS['operator new(unsigned long)']}
    frees=${CALLS[free]}
    say "callgrind $proxy: $n requests, $(awk -v a="$ir" -v n="$n" 'BEGIN {printf "%.0f", a / n}') instructions/request, malloc $(awk -v a="$mallocs" -v n="$n" 'BEGIN {printf "%.1f", a / n}')/request, operator new $(awk -v a="$news" -v n="$n" 'BEGIN {printf "%.1f", a / n}')/request, free $(awk -v a="$frees" -v n="$n" 'BEGIN {printf "%.1f", a / n}')/request"
    say "  own instructions per request by subsystem:"
    "$BENCH_SRC/callgrind_calls.py" --categories "$cg" "$n" | sed 's/^/    /' | tee -a "$SUMMARY"
    "$BENCH_SRC/callgrind_calls.py" --top "$cg" "$n" 40 >"$OUT_DIR/callgrind-top-$proxy.txt"
    say "  top functions by own instructions per request ($OUT_DIR/callgrind-top-$proxy.txt):"
    head -15 "$OUT_DIR/callgrind-top-$proxy.txt" | cut -c1-150 | sed 's/^/    /' | tee -a "$SUMMARY"
    say "  allocations per request by caller of operator new:"
    "$BENCH_SRC/callgrind_calls.py" --callers "$cg" 'operator new(unsigned long)' |
      awk -F'\t' -v n="$n" '$1 / n >= 0.05 {printf "    %5.2f  %s\n", $1 / n, substr($3, 1, 120)}' |
      tee -a "$SUMMARY"
    say "  mutex locks per request by caller:"
    "$BENCH_SRC/callgrind_calls.py" --callers "$cg" 'pthread_mutex_lock@@GLIBC_2.2.5' |
      awk -F'\t' -v n="$n" '$1 / n >= 0.05 {printf "    %5.2f  %s\n", $1 / n, substr($3, 1, 120)}' |
      tee -a "$SUMMARY"
  done
fi

if has_tool strace; then
  command -v strace >/dev/null || bench_die "strace is not installed."
  for proxy in "${PROXY_LIST[@]}"; do
    start_proxy "$proxy"
    pass "st-warm-$proxy" >/dev/null
    strace -c -f -q -o "$OUT_DIR/strace-$proxy.txt" -p "$PID" &
    spid=$!
    BENCH_PIDS+=("$spid")
    sleep 1  # strace attaches to every thread
    n=$(pass "st-$proxy")
    kill -INT "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    BENCH_PIDS=("${BENCH_PIDS[@]/$spid/}")
    bench_stop_pid "$PID"
    say "strace $proxy: $n requests; system calls per request:"
    awk -v n="$n" '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" {
        name = $NF; calls = $4; if ($5 ~ /^[0-9]+$/ && NF == 6) calls = $4
        printf "    %-16s %6.2f\n", name, calls / n; total += calls }
      END { printf "    %-16s %6.2f\n", "total", total / n }' "$OUT_DIR/strace-$proxy.txt" |
      sort -k2 -nr | head -12 | tee -a "$SUMMARY"
  done
fi

if has_tool perf; then
  command -v perf >/dev/null || bench_die "perf is not installed (apt-get install linux-perf)."
  for proxy in "${PROXY_LIST[@]}"; do
    start_proxy "$proxy"
    pass "perf-warm-$proxy" >/dev/null
    # A longer measured stretch than one pass: 5 passes, for enough samples at 2 kHz.
    perf record -e cpu-clock -F 2000 -g -o "$OUT_DIR/perf-$proxy.data" -p "$PID" >/dev/null 2>&1 &
    ppid=$!
    BENCH_PIDS+=("$ppid")
    sleep 1
    n=0
    for i in 1 2 3 4 5; do n=$((n + $(pass "perf-$proxy-$i"))); done
    kill -INT "$ppid" 2>/dev/null || true
    wait "$ppid" 2>/dev/null || true
    bench_stop_pid "$PID"
    samples=$(perf report -i "$OUT_DIR/perf-$proxy.data" --stdio -g none 2>/dev/null |
      awk '/^# Samples:/ {print $3; exit}' || true)
    say "perf $proxy (cpu-clock, $samples samples over $n requests): share by object (kernel = system calls, TCP stack, wakeups):"
    perf report -i "$OUT_DIR/perf-$proxy.data" --stdio --no-children --sort dso -g none 2>/dev/null |
      grep -E '^[[:space:]]+[0-9.]+%' | head -6 | sed 's/^/  /' | tee -a "$SUMMARY" || true
    say "  hottest symbols (self):"
    perf report -i "$OUT_DIR/perf-$proxy.data" --stdio --no-children --sort sym -g none 2>/dev/null |
      grep -E '^[[:space:]]+[0-9.]+%' | cut -c1-160 | head -20 | sed 's/^/  /' | tee -a "$SUMMARY" || true
  done
fi
if [[ -n $OUT ]]; then bench_log "summary and raw profiles in $OUT"; fi
