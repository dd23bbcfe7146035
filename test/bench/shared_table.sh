#!/usr/bin/env bash
# What sharing the stick table costs: sticky-proxy with its table in Redis against sticky-proxy
# alone, and against HAProxy 2.6 sharing its stick table with a peer (`peers`, the way HAProxy
# users run two instances), all in the same run, alternating, on the same four nginx backends.
#
# Proxies (each started fresh per run):
#   haproxy        the anchor of run.sh: one HAProxy, local stick table
#   haproxy-peers  two HAProxy processes sharing their stick table (`peers`), the load split
#                  across both
#   sticky         sticky-proxy, local table
#   sticky-redis   two sticky-proxy replicas with --redis-address on one local redis-server 7 (no
#                  persistence), the load split across both
# The single proxies get wrk -t2 -c64; the pairs two wrk -t1 -c32, one on each instance, at once
# (the same load in all; --conns N: -cN, and -c(N/2) on each), their CPU summed, their latency
# percentiles the worse of the two.
# Scenarios:
#   hits   10,000 keys, 64 connections: every session placed in a warm-up pass, then measured
#          (a hit never asks Redis: this should cost nothing)
#   new    every request a key never seen, 64 connections: placements per second (each one is a
#          Redis round trip for sticky-redis, a peer update for haproxy-peers)
# Prints medians over rounds and the per-round ratios against haproxy-peers and against the same
# proxy without sharing, and for sticky-redis the Redis commands per request (INFO stats'
# total_commands_processed over the measured pass, both replicas') and redis-server's CPU per
# request, and for every proxy the whole machine's busy CPU per request (/proc/stat: proxies,
# backends, wrk, Redis and the kernel), which is what bounds the rate on a saturated machine.
# Figures only; nothing is asserted.

set -euo pipefail
source "$(dirname "$0")/lib.sh"

usage() {
  cat <<'USAGE'
usage: test/bench/shared_table.sh [--rounds N] [--duration SECONDS] [--new-keys N] [--quick]
                                  [--conns N] [--out DIR] [--proxies LIST] [--scenarios LIST]
  --rounds N          alternating rounds (default 3; 1 with --quick)
  --duration SECONDS  measured seconds of the hits scenario (default 15; 3 with --quick)
  --new-keys N        sessions placed in the new scenario (default 300000; 30000 with --quick)
  --conns N           measured connections, even (default 64; a pair gets N/2 on each instance)
  --proxies LIST      subset of haproxy,haproxy-peers,sticky,sticky-redis (default all)
  --scenarios LIST    subset of hits,new (default both)
  --out DIR           also keep results.tsv and summary.txt in DIR
env: STICKY_PROXY_BIN, STICKY_WORKERS (default 2), BENCH_KEEP=1 keeps the temp dir.
USAGE
}

ROUNDS="" DURATION="" NEW_KEYS="" QUICK=0 OUT="" CONNS=64
PROXIES="haproxy,haproxy-peers,sticky,sticky-redis" SCENARIOS="hits,new"
while (($#)); do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --new-keys) NEW_KEYS=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --out) OUT=$2; shift 2 ;;
    --proxies) PROXIES=$2; shift 2 ;;
    --scenarios) SCENARIOS=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; bench_die "unknown option '$1'." ;;
  esac
done
if ((QUICK)); then
  ROUNDS=${ROUNDS:-1} DURATION=${DURATION:-3} NEW_KEYS=${NEW_KEYS:-30000}
fi
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-15} NEW_KEYS=${NEW_KEYS:-300000}
for v in ROUNDS DURATION NEW_KEYS CONNS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || bench_die "--${v,,} must be a positive integer, got '${!v}'."
done
((CONNS % 2 == 0)) || bench_die "--conns must be even (a pair gets half on each instance), got $CONNS."
HALF_CONNS=$((CONNS / 2))
IFS=, read -ra PROXY_LIST <<<"$PROXIES"
IFS=, read -ra SCEN_LIST <<<"$SCENARIOS"
for p in "${PROXY_LIST[@]}"; do
  case $p in haproxy | haproxy-peers | sticky | sticky-redis) ;;
    *) bench_die "unknown proxy '$p'; choose from haproxy, haproxy-peers, sticky, sticky-redis." ;;
  esac
done
for s in "${SCEN_LIST[@]}"; do
  [[ $s == hits || $s == new ]] || bench_die "unknown scenario '$s'; choose hits or new."
done

bench_init
command -v redis-server >/dev/null || bench_die "redis-server is not installed (make deps installs it)."
STICKY_BIN=$(find_sticky_proxy)
read -r NG0 NG1 NG2 NG3 HAP_PORT HAP_PEER_PORT HAP_B_PORT HAP_B_PEER_PORT STICKY_PORT METRICS_PORT \
  STICKY_B_PORT METRICS_B_PORT REDIS_PORT <<<"$(free_ports 13)"
start_nginx "$NG0" "$NG1" "$NG2" "$NG3"
STICKY_CFG="$BENCH_DIR/sticky-proxy.yaml"
write_sticky_config "$STICKY_CFG" "$STICKY_PORT" bench/sticky 1000000
STICKY_B_CFG="$BENCH_DIR/sticky-proxy-b.yaml"
write_sticky_config "$STICKY_B_CFG" "$STICKY_B_PORT" bench/sticky 1000000
bench_log "sticky-proxy: $STICKY_BIN; $(/usr/sbin/haproxy -v | head -1); $(redis-server --version | cut -d' ' -f1-3)"
bench_log "rounds=$ROUNDS duration=${DURATION}s new-keys=$NEW_KEYS conns=$CONNS proxies=$PROXIES dir=$BENCH_DIR"

# start_redis: a fresh, empty redis-server without persistence. Sets REDIS_PID.
start_redis() {
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --set-proc-title no >"$BENCH_DIR/redis.log" 2>&1 &
  REDIS_PID=$!
  BENCH_PIDS+=("$REDIS_PID")
  local deadline=$((SECONDS + 10))
  until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do
    ((SECONDS < deadline)) || bench_die "redis-server did not start (see $BENCH_DIR/redis.log)."
    sleep 0.05
  done
}

# haproxy_peers_config NAME PORT: run.sh's HAProxy config, its stick table shared with the peer
# set {a, b} (a on HAP_PEER_PORT, b on HAP_B_PEER_PORT).
haproxy_peers_config() {
  local name=$1 port=$2 servers="" i=0 p
  for p in "${NGINX_PORTS[@]}"; do
    servers+="    server nginx-$i 127.0.0.1:$p"$'\n'
    i=$((i + 1))
  done
  local cfg="$BENCH_DIR/haproxy-$name.cfg"
  awk -v port="$port" -v servers="$servers" -v sock="$BENCH_DIR/haproxy-$name.sock" '
    { gsub(/@PORT@/, port); gsub(/@STATS_SOCKET@/, sock) }
    /@SERVERS@/ { printf "%s", servers; next }
    /stick-table/ { print $0 " peers bench"; next }
    { print }' "$BENCH_SRC/haproxy.cfg.in" >"$cfg"
  printf '\npeers bench\n    peer a 127.0.0.1:%s\n    peer b 127.0.0.1:%s\n' \
    "$HAP_PEER_PORT" "$HAP_B_PEER_PORT" >>"$cfg"
  /usr/sbin/haproxy -c -q -L "$name" -f "$cfg" || bench_die "HAProxy rejected $cfg."
  echo "$cfg"
}

# start_proxy PROXY: starts it (and its peer or Redis); sets PID and URL, and for the pairs PID2
# and URL2 (the second instance; empty for a single proxy).
start_proxy() {
  PID2="" URL2=""
  case $1 in
    haproxy)
      start_haproxy "$HAP_PORT"
      PID=$HAPROXY_PID
      URL="http://127.0.0.1:$HAP_PORT/"
      ;;
    haproxy-peers)
      local a b
      a=$(haproxy_peers_config a "$HAP_PORT")
      b=$(haproxy_peers_config b "$HAP_B_PORT")
      /usr/sbin/haproxy -db -L b -f "$b" >"$BENCH_DIR/haproxy-b.log" 2>&1 &
      PID2=$!
      URL2="http://127.0.0.1:$HAP_B_PORT/"
      BENCH_PIDS+=("$PID2")
      /usr/sbin/haproxy -db -L a -f "$a" >"$BENCH_DIR/haproxy-a.log" 2>&1 &
      PID=$!
      BENCH_PIDS+=("$PID")
      wait_http "http://127.0.0.1:$HAP_PORT/" 20 && wait_http "http://127.0.0.1:$HAP_B_PORT/" 20 ||
        bench_die "HAProxy with peers did not start (see $BENCH_DIR/haproxy-{a,b}.log)."
      URL="http://127.0.0.1:$HAP_PORT/"
      ;;
    sticky)
      start_sticky "$STICKY_PORT" "$METRICS_PORT" "$STICKY_CFG"
      PID=$STICKY_PID
      URL="http://127.0.0.1:$STICKY_PORT/"
      ;;
    sticky-redis)
      start_redis
      # The second replica first (its own admin socket), so the measured one is STICKY_PID.
      "$STICKY_BIN" --config "$STICKY_B_CFG" --metrics-listen "127.0.0.1:$METRICS_B_PORT" \
        --workers "${STICKY_WORKERS:-2}" --log-level warn --redis-address "127.0.0.1:$REDIS_PORT" \
        >"$BENCH_DIR/sticky-proxy-b.log" 2>&1 &
      PID2=$!
      URL2="http://127.0.0.1:$STICKY_B_PORT/"
      BENCH_PIDS+=("$PID2")
      start_sticky "$STICKY_PORT" "$METRICS_PORT" "$STICKY_CFG" \
        --redis-address "127.0.0.1:$REDIS_PORT"
      PID=$STICKY_PID
      URL="http://127.0.0.1:$STICKY_PORT/"
      wait_http "http://127.0.0.1:$STICKY_B_PORT/" 20 || bench_die "the second replica did not start."
      local deadline=$((SECONDS + 10))
      until curl -s "http://127.0.0.1:$METRICS_PORT/metrics" |
        grep -q '^sticky_shared_table_connected 1'; do
        ((SECONDS < deadline)) || bench_die "sticky-proxy did not connect to Redis."
        sleep 0.05
      done
      ;;
  esac
}

RESULTS="$BENCH_DIR/results.tsv"
printf 'round\tscenario\tproxy\trequests\tduration_us\trps\tp50_us\tp99_us\tmax_us\tcpu_us_per_req\thwm_kb\terrors\tredis_cmds_per_req\tredis_cpu_us_per_req\tmachine_cpu_us_per_req\n' >"$RESULTS"

# Commands and socket reads Redis has processed so far (both replicas', and this INFO itself),
# as "COMMANDS READS": commands per read is how well the replicas pipeline.
redis_commands() {
  redis-cli -p "$REDIS_PORT" INFO stats | tr -d '\r' |
    awk -F: '$1 == "total_commands_processed" {c = $2} $1 == "total_reads_processed" {r = $2}
             END {print c, r}'
}

errors_of() {
  echo $(($(bench_field "$1" connect) + $(bench_field "$1" read) + $(bench_field "$1" write) + \
    $(bench_field "$1" status) + $(bench_field "$1" timeout)))
}

# combine_bench A B OUT: one BENCH line for two wrk runs that ran at once: counts summed, the
# duration and latency percentiles the larger of the two.
combine_bench() {
  local line="BENCH" k x y
  for k in requests connect read write status timeout; do
    line+=" $k=$(($(bench_field "$1" "$k") + $(bench_field "$2" "$k")))"
  done
  for k in duration_us p50_us p90_us p99_us max_us; do
    x=$(bench_field "$1" "$k") y=$(bench_field "$2" "$k")
    line+=" $k=$((x > y ? x : y))"
  done
  echo "$line" >"$3"
}

# proxy_ticks: CPU ticks of the measured process(es): both instances of a pair.
proxy_ticks() {
  local t
  t=$(cpu_ticks "$PID")
  [[ -n $PID2 ]] && t=$((t + $(cpu_ticks "$PID2")))
  echo "$t"
}

# machine_ticks: busy CPU ticks of the whole machine (every process and the kernel).
machine_ticks() { awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8; exit}' /proc/stat; }

measure() {
  local round=$1 scen=$2 proxy=$3 tag="r$1-$2-$3"
  start_proxy "$proxy"
  check_forwarding "$URL" "$proxy"
  [[ -n $URL2 ]] && check_forwarding "$URL2" "$proxy (second instance)"
  local f="$BENCH_DIR/$tag.txt" t0 t1 m0 m1
  local c0=0 c1=0 r0=0 r1=0 rd0=0 rd1=0
  if [[ $scen == hits ]]; then
    # Every instance knows every key before the measured pass (a pair's second one adopts them).
    run_wrk_pass "$BENCH_DIR/$tag-warmup.txt" 2 64 120 "$BENCH_SRC/keys.lua" "$URL" 10000 2 1
    [[ -n $URL2 ]] &&
      run_wrk_pass "$BENCH_DIR/$tag-warmup-b.txt" 2 64 120 "$BENCH_SRC/keys.lua" "$URL2" 10000 2 1
    t0=$(proxy_ticks) m0=$(machine_ticks)
    [[ $proxy == sticky-redis ]] && read -r c0 rd0 <<<"$(redis_commands)" && r0=$(cpu_ticks "$REDIS_PID")
    if [[ -n $URL2 ]]; then
      run_wrk "$f.a" 1 "$HALF_CONNS" "$DURATION" "$BENCH_SRC/keys.lua" "$URL" 10000 1 0 &
      local wa=$!
      run_wrk "$f.b" 1 "$HALF_CONNS" "$DURATION" "$BENCH_SRC/keys.lua" "$URL2" 10000 1 0 &
      wait "$wa" $!
    else
      run_wrk "$f" 2 "$CONNS" "$DURATION" "$BENCH_SRC/keys.lua" "$URL" 10000 2 0
    fi
  else
    t0=$(proxy_ticks) m0=$(machine_ticks)
    [[ $proxy == sticky-redis ]] && read -r c0 rd0 <<<"$(redis_commands)" && r0=$(cpu_ticks "$REDIS_PID")
    if [[ -n $URL2 ]]; then
      local half=$(((NEW_KEYS + 1) / 2))
      run_wrk_pass "$f.a" 1 "$HALF_CONNS" 300 "$BENCH_SRC/unique_keys.lua" "$URL" "$half" 1 "$tag-a" &
      local wa=$!
      run_wrk_pass "$f.b" 1 "$HALF_CONNS" 300 "$BENCH_SRC/unique_keys.lua" "$URL2" "$half" 1 "$tag-b" &
      wait "$wa" $!
    else
      run_wrk_pass "$f" 2 "$CONNS" 300 "$BENCH_SRC/unique_keys.lua" "$URL" "$NEW_KEYS" 2 "$tag"
    fi
  fi
  t1=$(proxy_ticks) m1=$(machine_ticks)
  [[ $proxy == sticky-redis ]] && read -r c1 rd1 <<<"$(redis_commands)" && r1=$(cpu_ticks "$REDIS_PID")
  if [[ -n $URL2 ]]; then
    grep -q '^BENCH ' "$f.a" && grep -q '^BENCH ' "$f.b" ||
      bench_die "a wrk run of $tag produced no result (see $f.a, $f.b)."
    combine_bench "$f.a" "$f.b" "$f"
  fi
  local hwm req dur errs rps cpu
  hwm=$(vm_kb "$PID" VmHWM)
  kill -0 "$PID" 2>/dev/null || bench_die "$proxy exited during $tag."
  [[ -z $PID2 ]] || kill -0 "$PID2" 2>/dev/null || bench_die "$proxy's second instance exited during $tag."
  local p
  for p in "${BENCH_PIDS[@]}"; do
    # Stop everything this run started (the proxy, its peer or replica, Redis); keep nginx.
    [[ " ${NGINX_PIDS[*]} " == *" $p "* ]] || bench_stop_pid "$p"
  done
  req=$(bench_field "$f" requests)
  dur=$(bench_field "$f" duration_us)
  errs=$(errors_of "$f")
  ((req > 0)) || bench_die "$proxy served no requests in $tag (see $f)."
  rps=$(awk -v r="$req" -v d="$dur" 'BEGIN {printf "%.0f", r * 1e6 / d}')
  cpu=$(awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" -v r="$req" 'BEGIN {printf "%.2f", t * 1e6 / hz / r}')
  local machine cmds=- rcpu=- per_read=-
  machine=$(awk -v t="$((m1 - m0))" -v hz="$CLK_TCK" -v r="$req" 'BEGIN {printf "%.2f", t * 1e6 / hz / r}')
  if [[ $proxy == sticky-redis ]]; then
    cmds=$(awk -v c="$((c1 - c0))" -v r="$req" 'BEGIN {printf "%.5f", c / r}')
    per_read=$(awk -v c="$((c1 - c0))" -v r="$((rd1 - rd0))" 'BEGIN {printf "%.2f", r ? c / r : 0}')
    rcpu=$(awk -v t="$((r1 - r0))" -v hz="$CLK_TCK" -v r="$req" 'BEGIN {printf "%.2f", t * 1e6 / hz / r}')
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$scen" "$proxy" \
    "$req" "$dur" "$rps" "$(bench_field "$f" p50_us)" "$(bench_field "$f" p99_us)" \
    "$(bench_field "$f" max_us)" "$cpu" "$hwm" "$errs" "$cmds" "$rcpu" "$machine" >>"$RESULTS"
  bench_log "$tag: $rps req/s, p50 $(bench_field "$f" p50_us) us, p99 $(bench_field "$f" p99_us) us, cpu $cpu us/req (Redis $rcpu, machine $machine), errors $errs, Redis commands/req $cmds ($per_read per read)"
}

NGINX_PIDS=("${BENCH_PIDS[@]}")
for ((round = 1; round <= ROUNDS; round++)); do
  # Rotate the order every round so no proxy always runs first.
  order=()
  n=${#PROXY_LIST[@]}
  for ((i = 0; i < n; i++)); do order+=("${PROXY_LIST[$(((i + round - 1) % n))]}"); done
  for scen in "${SCEN_LIST[@]}"; do
    for proxy in "${order[@]}"; do measure "$round" "$scen" "$proxy"; done
  done
done

SUMMARY="$BENCH_DIR/summary.txt"
{
  echo "# $(date -Iseconds) $(uname -n), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# rounds=$ROUNDS duration=${DURATION}s new-keys=$NEW_KEYS conns=$CONNS; sticky-proxy=$STICKY_BIN"
  $PY - "$RESULTS" <<'PYEOF'
import csv, statistics, sys
from collections import defaultdict
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
by = defaultdict(dict)  # (scenario, proxy) -> round -> row
for r in rows:
    by[(r["scenario"], r["proxy"])][r["round"]] = r
med = lambda v: statistics.median(v) if v else float("nan")
def ratio(scen, a, b, field):
    out = [float(r[field]) / float(by[(scen, b)][k][field])
           for k, r in by[(scen, a)].items()
           if k in by[(scen, b)] and float(by[(scen, b)][k][field])]
    return med(out)
names = {"hits": "hits, 10k keys", "new": "new keys (placements)"}
print(f"{'scenario':<23} {'proxy':<14} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'CPU us/req':>10} {'errors':>6}")
for scen in dict.fromkeys(r["scenario"] for r in rows):
    for proxy in dict.fromkeys(r["proxy"] for r in rows):
        rs = list(by[(scen, proxy)].values())
        if not rs:
            continue
        print(f"{names[scen]:<23} {proxy:<14} {med([float(r['rps']) for r in rs]):>8.0f} "
              f"{med([float(r['p50_us']) for r in rs]) / 1000:>7.2f} "
              f"{med([float(r['p99_us']) for r in rs]) / 1000:>7.2f} "
              f"{med([float(r['cpu_us_per_req']) for r in rs]):>10.1f} "
              f"{sum(int(r['errors']) for r in rs):>6}")
    for a, b in (("sticky-redis", "haproxy-peers"), ("sticky-redis", "sticky"),
                 ("haproxy-peers", "haproxy"), ("sticky", "haproxy")):
        if by[(scen, a)] and by[(scen, b)]:
            print(f"  {a} / {b}: req/s {ratio(scen, a, b, 'rps'):.2f}x, "
                  f"p99 {ratio(scen, a, b, 'p99_us'):.2f}x, CPU/req {ratio(scen, a, b, 'cpu_us_per_req'):.2f}x")
    cmds = [float(r["redis_cmds_per_req"]) for r in by[(scen, "sticky-redis")].values()]
    if cmds:
        rcpu = [float(r["redis_cpu_us_per_req"]) for r in by[(scen, "sticky-redis")].values()]
        print(f"  sticky-redis: Redis commands per request {med(cmds):.5f} (both replicas'), "
              f"redis-server CPU {med(rcpu):.1f} us/req")
    for proxy in dict.fromkeys(r["proxy"] for r in rows):
        rs = list(by[(scen, proxy)].values())
        if rs:
            print(f"  {proxy}: whole machine CPU {med([float(r['machine_cpu_us_per_req']) for r in rs]):.1f} "
                  "us/req (proxies, backends, wrk, Redis, kernel)")
    print()
PYEOF
} | tee "$SUMMARY"
if [[ -n $OUT ]]; then
  mkdir -p "$OUT"
  cp "$RESULTS" "$SUMMARY" "$OUT/"
  bench_log "results in $OUT"
fi
