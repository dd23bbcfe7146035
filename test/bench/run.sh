#!/usr/bin/env bash
# Throughput and latency: sticky-proxy against the HAProxy 2.6 stick-table anchor, same machine,
# same four nginx backends, same wrk load, run ALTERNATELY (the order flips every round) so that
# the noise of a shared machine hits both alike. Reports medians over rounds and, above all, the
# per-round ratio sticky-proxy / HAProxy.
#
# Scenarios (each proxy process is started fresh for each run, warmed by one pass over the keys,
# which places every session, then measured):
#   10k keys, 64 connections   wrk -t2 -c64, cycling 10,000 client-id values
#   100k keys, 64 connections  wrk -t2 -c64, cycling 100,000 client-id values
#   1 connection (latency)     wrk -t1 -c1, 10,000 keys
#
# Per run: req/s, p50/p99/max latency (wrk), the proxy's CPU time per request (utime+stime of the
# whole process from /proc/PID/stat over the measured run / requests), peak RSS (VmHWM), errors
# (wrk socket errors + HTTP status >= 400). A run with any error is flagged.
#
# CPU placement: nothing is pinned. The machine has 2 cores shared by 4 nginx, the proxy (2
# threads) and wrk (2 threads); pinning wrk to one core would halve what either proxy can use,
# pinning the proxy would hand its core's idle time to nobody. Unpinned, the scheduler treats
# both proxies alike, and alternation plus ratios absorbs the rest.

set -euo pipefail
source "$(dirname "$0")/lib.sh"

usage() {
  cat <<'EOF'
usage: test/bench/run.sh [--rounds N] [--duration SECONDS] [--quick] [--out DIR]
                         [--scenarios LIST] [--proxies LIST]
  --rounds N          alternating rounds (default 3; 1 with --quick)
  --duration SECONDS  measured seconds per run (default 20; 3 with --quick)
  --quick             short runs for a smoke test
  --out DIR           also keep results.tsv and summary.txt in DIR
  --scenarios LIST    comma-separated subset of k10k,k100k,lat1c (default all)
  --proxies LIST      comma-separated subset of haproxy,sticky (default both)
env: STICKY_PROXY_BIN (default build/release/proxy/sticky-proxy, else build/dev/...),
     STICKY_WORKERS (default 2), BENCH_KEEP=1 keeps the temp dir.
EOF
}

ROUNDS="" DURATION="" QUICK=0 OUT="" SCENARIOS="k10k,k100k,lat1c" PROXIES="haproxy,sticky"
while (($#)); do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --out) OUT=$2; shift 2 ;;
    --scenarios) SCENARIOS=$2; shift 2 ;;
    --proxies) PROXIES=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; bench_die "unknown option '$1'." ;;
  esac
done
if ((QUICK)); then
  ROUNDS=${ROUNDS:-1} DURATION=${DURATION:-3}
fi
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-20}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || bench_die "--rounds must be a positive integer, got '$ROUNDS'."
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || bench_die "--duration must be a positive integer, got '$DURATION'."

declare -A SCEN_KEYS=([k10k]=10000 [k100k]=100000 [lat1c]=10000)
declare -A SCEN_CONNS=([k10k]=64 [k100k]=64 [lat1c]=1)
declare -A SCEN_THREADS=([k10k]=2 [k100k]=2 [lat1c]=1)
IFS=, read -ra SCEN_LIST <<<"$SCENARIOS"
IFS=, read -ra PROXY_LIST <<<"$PROXIES"
for s in "${SCEN_LIST[@]}"; do
  [[ -n ${SCEN_KEYS[$s]:-} ]] || bench_die "unknown scenario '$s'; choose from k10k, k100k, lat1c."
done
for p in "${PROXY_LIST[@]}"; do
  [[ $p == haproxy || $p == sticky ]] || bench_die "unknown proxy '$p'; choose haproxy or sticky."
done

bench_init
if [[ " ${PROXY_LIST[*]} " == *" sticky "* ]]; then
  STICKY_BIN=$(find_sticky_proxy)
fi

read -r NG0 NG1 NG2 NG3 HAP_PORT STICKY_PORT METRICS_PORT <<<"$(free_ports 7)"
start_nginx "$NG0" "$NG1" "$NG2" "$NG3"
STICKY_CFG="$BENCH_DIR/sticky-proxy.yaml"
if [[ -n ${STICKY_BIN:-} ]]; then
  write_sticky_config "$STICKY_CFG" "$STICKY_PORT" bench/sticky 1000000
  bench_log "sticky-proxy: $STICKY_BIN"
fi
bench_log "$(/usr/sbin/haproxy -v | head -1)"
bench_log "rounds=$ROUNDS duration=${DURATION}s scenarios=$SCENARIOS proxies=$PROXIES dir=$BENCH_DIR"

RESULTS="$BENCH_DIR/results.tsv"
printf 'round\tscenario\tproxy\trequests\tduration_us\trps\tp50_us\tp99_us\tmax_us\tcpu_us_per_req\thwm_kb\terrors\twarmup_errors\n' >"$RESULTS"

# measure ROUND SCENARIO PROXY: fresh proxy, one warm-up pass over the keys, measured run.
measure() {
  local round=$1 scen=$2 proxy=$3 pid url
  local keys=${SCEN_KEYS[$scen]} conns=${SCEN_CONNS[$scen]} threads=${SCEN_THREADS[$scen]}
  if [[ $proxy == haproxy ]]; then
    start_haproxy "$HAP_PORT"
    pid=$HAPROXY_PID url="http://127.0.0.1:$HAP_PORT/"
  else
    start_sticky "$STICKY_PORT" "$METRICS_PORT" "$STICKY_CFG"
    pid=$STICKY_PID url="http://127.0.0.1:$STICKY_PORT/"
  fi
  check_forwarding "$url" "$proxy"
  local tag="r$round-$scen-$proxy"
  # Warm-up: every key once (places all sessions, fills the upstream pools); bounded by time too.
  run_wrk_pass "$BENCH_DIR/$tag-warmup.txt" "$threads" "$conns" 120 "$BENCH_SRC/keys.lua" "$url" \
    "$keys" "$threads" 1
  local warm_err
  warm_err=$(($(bench_field "$BENCH_DIR/$tag-warmup.txt" connect) + \
    $(bench_field "$BENCH_DIR/$tag-warmup.txt" read) + \
    $(bench_field "$BENCH_DIR/$tag-warmup.txt" write) + \
    $(bench_field "$BENCH_DIR/$tag-warmup.txt" status) + \
    $(bench_field "$BENCH_DIR/$tag-warmup.txt" timeout)))
  local t0 t1
  t0=$(cpu_ticks "$pid")
  run_wrk "$BENCH_DIR/$tag.txt" "$threads" "$conns" "$DURATION" "$BENCH_SRC/keys.lua" "$url" \
    "$keys" "$threads" 0
  t1=$(cpu_ticks "$pid")
  local hwm
  hwm=$(vm_kb "$pid" VmHWM)
  kill -0 "$pid" 2>/dev/null || bench_die "$proxy exited during the run."
  bench_stop_pid "$pid"
  local f="$BENCH_DIR/$tag.txt"
  local req dur errs
  req=$(bench_field "$f" requests)
  dur=$(bench_field "$f" duration_us)
  errs=$(($(bench_field "$f" connect) + $(bench_field "$f" read) + $(bench_field "$f" write) + \
    $(bench_field "$f" status) + $(bench_field "$f" timeout)))
  ((req > 0)) || bench_die "$proxy served no requests in $tag (see $f)."
  local rps cpu
  rps=$(awk -v r="$req" -v d="$dur" 'BEGIN {printf "%.0f", r * 1e6 / d}')
  cpu=$(awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" -v r="$req" 'BEGIN {printf "%.2f", t * 1e6 / hz / r}')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$scen" "$proxy" "$req" \
    "$dur" "$rps" "$(bench_field "$f" p50_us)" "$(bench_field "$f" p99_us)" \
    "$(bench_field "$f" max_us)" "$cpu" "$hwm" "$errs" "$warm_err" >>"$RESULTS"
  bench_log "$tag: $rps req/s, p50 $(bench_field "$f" p50_us) us, p99 $(bench_field "$f" p99_us) us, cpu $cpu us/req, hwm ${hwm} kB, errors $errs (warm-up $warm_err)"
}

for ((round = 1; round <= ROUNDS; round++)); do
  order=("${PROXY_LIST[@]}")
  if ((round % 2 == 0 && ${#order[@]} == 2)); then order=("${order[1]}" "${order[0]}"); fi
  for scen in "${SCEN_LIST[@]}"; do
    for proxy in "${order[@]}"; do measure "$round" "$scen" "$proxy"; done
  done
done

SUMMARY="$BENCH_DIR/summary.txt"
{
  echo "# $(date -Iseconds) $(uname -n), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# rounds=$ROUNDS duration=${DURATION}s; sticky-proxy=${STICKY_BIN:-none}"
  $PY "$BENCH_SRC/summarize.py" "$RESULTS"
} | tee "$SUMMARY"
if [[ -n $OUT ]]; then
  mkdir -p "$OUT"
  cp "$RESULTS" "$SUMMARY" "$OUT/"
  bench_log "results in $OUT"
fi
