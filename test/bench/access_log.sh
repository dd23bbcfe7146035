#!/usr/bin/env bash
# What the access log costs: sticky-proxy without it (off, the default) against sticky-proxy with
# `--access-log FILE` (JSON lines to a file in the temp dir), same nginx backends, same wrk load
# as run.sh's k10k scenario (wrk -t2 -c64, 10,000 client-id values), run ALTERNATELY (the order
# flips every round). Reports per run req/s, p50/p99 latency, the proxy's CPU time per request,
# and for "file" the lines written and sticky_access_log_dropped_total; then the medians and the
# median per-round ratio file / off.

set -euo pipefail
source "$(dirname "$0")/lib.sh"

usage() {
  cat <<'EOF'
usage: test/bench/access_log.sh [--rounds N] [--duration SECONDS] [--quick] [--out DIR]
  --rounds N          alternating rounds (default 3; 1 with --quick)
  --duration SECONDS  measured seconds per run (default 20; 3 with --quick)
  --quick             short runs for a smoke test
  --out DIR           also keep access_log.tsv in DIR
env: STICKY_PROXY_BIN, STICKY_WORKERS (default 2), BENCH_KEEP=1.
EOF
}

ROUNDS="" DURATION="" QUICK=0 OUT=""
while (($#)); do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --out) OUT=$2; shift 2 ;;
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

bench_init
STICKY_BIN=$(find_sticky_proxy)
KEYS=10000 CONNS=64 THREADS=2
read -r NG0 NG1 NG2 NG3 PORT METRICS_PORT <<<"$(free_ports 6)"
start_nginx "$NG0" "$NG1" "$NG2" "$NG3"
CFG="$BENCH_DIR/sticky-proxy.yaml"
write_sticky_config "$CFG" "$PORT" bench/sticky 1000000
bench_log "sticky-proxy: $STICKY_BIN; rounds=$ROUNDS duration=${DURATION}s dir=$BENCH_DIR"

RESULTS="$BENCH_DIR/access_log.tsv"
printf 'round\tmode\trequests\trps\tp50_us\tp99_us\tcpu_us_per_req\terrors\tlines\tdropped\n' >"$RESULTS"

# measure ROUND MODE: fresh proxy (MODE off or file), one warm-up pass, measured run.
measure() {
  local round=$1 mode=$2 url="http://127.0.0.1:$PORT/" tag="r$1-$2"
  local log="$BENCH_DIR/$tag-access.log"
  local -a args=()
  [[ $mode == file ]] && args=(--access-log "$log")
  start_sticky "$PORT" "$METRICS_PORT" "$CFG" "${args[@]}"
  local pid=$STICKY_PID
  check_forwarding "$url" sticky
  run_wrk_pass "$BENCH_DIR/$tag-warmup.txt" "$THREADS" "$CONNS" 120 "$BENCH_SRC/keys.lua" "$url" \
    "$KEYS" "$THREADS" 1
  local t0 t1 f="$BENCH_DIR/$tag.txt"
  t0=$(cpu_ticks "$pid")
  run_wrk "$f" "$THREADS" "$CONNS" "$DURATION" "$BENCH_SRC/keys.lua" "$url" "$KEYS" "$THREADS" 0
  t1=$(cpu_ticks "$pid")
  local dropped=0
  if [[ $mode == file ]]; then
    dropped=$(curl -s "http://127.0.0.1:$METRICS_PORT/metrics" |
      awk '$1 == "sticky_access_log_dropped_total" {print $2}')
  fi
  kill -0 "$pid" 2>/dev/null || bench_die "sticky-proxy exited during $tag."
  bench_stop_pid "$pid"  # SIGTERM: the proxy writes every buffered line before it exits
  local lines=0
  [[ $mode == file ]] && lines=$(wc -l <"$log")
  local req dur errs rps cpu
  req=$(bench_field "$f" requests)
  dur=$(bench_field "$f" duration_us)
  errs=$(($(bench_field "$f" connect) + $(bench_field "$f" read) + $(bench_field "$f" write) + \
    $(bench_field "$f" status) + $(bench_field "$f" timeout)))
  ((req > 0)) || bench_die "no requests served in $tag (see $f)."
  rps=$(awk -v r="$req" -v d="$dur" 'BEGIN {printf "%.0f", r * 1e6 / d}')
  cpu=$(awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" -v r="$req" 'BEGIN {printf "%.2f", t * 1e6 / hz / r}')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$mode" "$req" "$rps" \
    "$(bench_field "$f" p50_us)" "$(bench_field "$f" p99_us)" "$cpu" "$errs" "$lines" \
    "${dropped:-?}" >>"$RESULTS"
  bench_log "$tag: $rps req/s, p50 $(bench_field "$f" p50_us) us, p99 $(bench_field "$f" p99_us) us, cpu $cpu us/req, errors $errs, lines $lines (warm-up included), dropped ${dropped:-?}"
}

for ((round = 1; round <= ROUNDS; round++)); do
  order=(off file)
  ((round % 2 == 0)) && order=(file off)
  for mode in "${order[@]}"; do measure "$round" "$mode"; done
done

{
  echo "# $(date -Iseconds) $(uname -n), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# rounds=$ROUNDS duration=${DURATION}s; k10k load (wrk -t2 -c64, 10,000 keys)"
  $PY - "$RESULTS" <<'PYEOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
def med(mode, field):
    return statistics.median(float(r[field]) for r in rows if r["mode"] == mode)
print(f"{'access log':<12}{'req/s':>10}{'p50 us':>9}{'p99 us':>9}{'cpu us/req':>12}")
for mode in ("off", "file"):
    print(f"{mode:<12}{med(mode, 'rps'):>10.0f}{med(mode, 'p50_us'):>9.0f}"
          f"{med(mode, 'p99_us'):>9.0f}{med(mode, 'cpu_us_per_req'):>12.2f}")
by_round = {}
for r in rows:
    by_round.setdefault(r["round"], {})[r["mode"]] = r
ratios = {f: [float(v["file"][f]) / float(v["off"][f]) for v in by_round.values()
              if "file" in v and "off" in v and float(v["off"][f]) > 0]
          for f in ("rps", "p99_us", "cpu_us_per_req")}
print("file/off (median of per-round ratios): " +
      ", ".join(f"{f} {statistics.median(v):.3f}" for f, v in ratios.items() if v))
PYEOF
} | tee "$BENCH_DIR/summary.txt"
if [[ -n $OUT ]]; then
  mkdir -p "$OUT"
  cp "$RESULTS" "$BENCH_DIR/summary.txt" "$OUT/"
  mv "$OUT/summary.txt" "$OUT/access_log_summary.txt"
  bench_log "results in $OUT"
fi
