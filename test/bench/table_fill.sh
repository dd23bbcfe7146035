#!/usr/bin/env bash
# Memory per session: place N distinct keys (default 1,000,000) through a running proxy with wrk
# (unique_keys.lua: every request a new client-id, each thread stops after its share), then
#   extra bytes per session = (RSS after - RSS before) / (sessions after - sessions before)
# with the session count from the proxy itself: sticky-proxy's GET /v1/stats over the admin
# socket, HAProxy's `show table` over its stats socket (the anchor, same method).
# "Before" is after a warm-up of 1,000 keys over the same connections, so pools, buffers and
# per-thread arenas already exist. Keys are 13 bytes ("f-T-NNNNNNNNN").

set -euo pipefail
source "$(dirname "$0")/lib.sh"

usage() {
  cat <<'EOF'
usage: test/bench/table_fill.sh [--sessions N] [--conns N] [--proxies LIST] [--quick] [--out DIR]
  --sessions N     distinct keys to place (default 1000000; 100000 with --quick)
  --conns N        wrk connections (default 64)
  --proxies LIST   comma-separated subset of sticky,haproxy (default both)
  --out DIR        also keep fill.tsv in DIR
env: STICKY_PROXY_BIN, STICKY_WORKERS (default 2), BENCH_KEEP=1.
EOF
}

SESSIONS="" CONNS=64 PROXIES="sticky,haproxy" OUT="" QUICK=0
while (($#)); do
  case $1 in
    --sessions) SESSIONS=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --proxies) PROXIES=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --out) OUT=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; bench_die "unknown option '$1'." ;;
  esac
done
((QUICK)) && SESSIONS=${SESSIONS:-100000}
SESSIONS=${SESSIONS:-1000000}
[[ $SESSIONS =~ ^[1-9][0-9]*$ ]] || bench_die "--sessions must be a positive integer, got '$SESSIONS'."
IFS=, read -ra PROXY_LIST <<<"$PROXIES"

bench_init
read -r NG0 NG1 NG2 NG3 PORT METRICS_PORT <<<"$(free_ports 6)"
start_nginx "$NG0" "$NG1" "$NG2" "$NG3"
THREADS=2
KEY_BYTES=13
RESULTS="$BENCH_DIR/fill.tsv"
printf 'proxy\tsessions\trss_before_kb\trss_after_kb\thwm_kb\tbytes_per_session\tfill_s\tplacements_per_s\terrors\n' >"$RESULTS"

# count_sessions PROXY: entries in the proxy's table, as the proxy reports them.
count_sessions() {
  if [[ $1 == sticky ]]; then sticky_sessions; else haproxy_table_used; fi
}

fill() {
  local proxy=$1 pid url
  case $proxy in
    sticky)
      STICKY_BIN=$(find_sticky_proxy)
      # The cap is the target size: the fill must not evict (maxSessions as in run.sh's config).
      local max=$((SESSIONS + 100000 > 1000000 ? SESSIONS + 100000 : 1000000))
      write_sticky_config "$BENCH_DIR/fill.yaml" "$PORT" bench/fill "$max"
      start_sticky "$PORT" "$METRICS_PORT" "$BENCH_DIR/fill.yaml"
      pid=$STICKY_PID
      ;;
    haproxy)
      start_haproxy "$PORT"
      pid=$HAPROXY_PID
      ;;
    *) bench_die "unknown proxy '$proxy'; choose sticky or haproxy." ;;
  esac
  url="http://127.0.0.1:$PORT/"
  check_forwarding "$url" "$proxy"
  run_wrk_pass "$BENCH_DIR/$proxy-warm.txt" "$THREADS" "$CONNS" 60 "$BENCH_SRC/unique_keys.lua" \
    "$url" 1000 "$THREADS" w
  local s0 r0 s1 r1 hwm t0 t1
  s0=$(count_sessions "$proxy")
  r0=$(vm_kb "$pid" VmRSS)
  t0=$(date +%s.%N)
  run_wrk_pass "$BENCH_DIR/$proxy-fill.txt" "$THREADS" "$CONNS" 3600 \
    "$BENCH_SRC/unique_keys.lua" "$url" "$SESSIONS" "$THREADS" f
  t1=$(date +%s.%N)
  s1=$(count_sessions "$proxy")
  r1=$(vm_kb "$pid" VmRSS)
  hwm=$(vm_kb "$pid" VmHWM)
  local f="$BENCH_DIR/$proxy-fill.txt" errs
  errs=$(($(bench_field "$f" connect) + $(bench_field "$f" read) + $(bench_field "$f" write) + \
    $(bench_field "$f" status) + $(bench_field "$f" timeout)))
  bench_stop_pid "$pid"
  local placed=$((s1 - s0))
  ((placed > 0)) || bench_die "$proxy placed no sessions (before $s0, after $s1)."
  local per rate secs
  per=$(awk -v a="$r1" -v b="$r0" -v n="$placed" 'BEGIN {printf "%.1f", (a - b) * 1024 / n}')
  secs=$(awk -v a="$t1" -v b="$t0" 'BEGIN {printf "%.1f", a - b}')
  rate=$(awk -v n="$placed" -v s="$secs" 'BEGIN {printf "%.0f", n / s}')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$proxy" "$placed" "$r0" "$r1" "$hwm" "$per" \
    "$secs" "$rate" "$errs" >>"$RESULTS"
  bench_log "$proxy: $placed sessions placed ($s0 -> $s1) in ${secs}s; RSS $r0 -> $r1 kB; $per B/session; errors $errs"
}

for p in "${PROXY_LIST[@]}"; do fill "$p"; done

echo "# $(date -Iseconds) table fill: $SESSIONS distinct keys of $KEY_BYTES bytes, $CONNS connections"
awk -F'\t' -v kb="$KEY_BYTES" 'NR == 1 {next} {
  name = $1 == "sticky" ? "sticky-proxy" : "HAProxy 2.6"
  printf "%-13s sessions %8d  RSS %7.1f -> %7.1f MB  extra %6.1f B/session (key %d B incl.)  fill %6.0f new keys/s  errors %d%s\n",
    name, $2, $3 / 1024, $4 / 1024, $6, kb, $8, $9, ($9 > 0 ? "  << ERRORS" : "")
  if ($1 == "sticky") { sticky = $6; n = $2 }
}
END {
  if (sticky != "") {
    ok = sticky + 0 <= 100 + kb
    printf "target: <= 100 B/session plus key bytes (%d B) at 1M sessions; here %d: sticky-proxy %.1f B [%s]\n",
      kb, n, sticky, ok ? "MET" : "NOT MET"
  }
}' "$RESULTS"
if [[ -n $OUT ]]; then
  mkdir -p "$OUT"
  cp "$RESULTS" "$OUT/"
fi
