#!/usr/bin/env bash
# Config apply under load: a route with 1,000 endpoints (distinct names, addresses 127.0.0.1 ..
# 127.0.0.250 times the four nginx ports; nginx listens on 0.0.0.0, so each endpoint is a real
# reachable backend) pushed over the admin socket (PUT /v1/config) again and again while wrk
# drives 10,000 keys over 64 connections. Pushes alternate between two configs (all Active /
# the first 10 Draining and endpoint ep-0999 removed), each with a new version, so every push
# really changes the route.
#
# Reports: the client-side round trip of each PUT (curl's time_total; the admin API reports no
# server-side figure), next to GET /healthz's round trip as the floor of the transport, and the
# proxy's CPU time per apply (pushes without load), the figure the target is judged on because a
# loaded 2-core machine inflates every round trip (waiting for a CPU, not applying); whether
# every push answered 200 and the last version shows in GET /v1/stats; and what the load saw:
# wrk errors / HTTP status >= 400, p99 and max latency, compared with a baseline run of the same
# length without pushes.

set -euo pipefail
source "$(dirname "$0")/lib.sh"

usage() {
  cat <<'EOF'
usage: test/bench/config_push.sh [--endpoints N] [--pushes N] [--duration SECONDS] [--quick]
                                 [--out DIR]
  --endpoints N       endpoints in the pushed route (default 1000, at most 1000)
  --pushes N          PUTs during the loaded run (default 40; 10 with --quick)
  --duration SECONDS  length of the baseline and of the loaded run (default 20; 6 with --quick)
  --out DIR           also keep push.tsv and the wrk outputs in DIR
env: STICKY_PROXY_BIN, STICKY_WORKERS (default 2), BENCH_KEEP=1.
EOF
}

ENDPOINTS=1000 PUSHES="" DURATION="" QUICK=0 OUT=""
while (($#)); do
  case $1 in
    --endpoints) ENDPOINTS=$2; shift 2 ;;
    --pushes) PUSHES=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --out) OUT=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; bench_die "unknown option '$1'." ;;
  esac
done
if ((QUICK)); then PUSHES=${PUSHES:-10} DURATION=${DURATION:-6}; fi
PUSHES=${PUSHES:-40} DURATION=${DURATION:-20}
[[ $ENDPOINTS =~ ^[0-9]+$ ]] && ((ENDPOINTS >= 11 && ENDPOINTS <= 1000)) ||
  bench_die "--endpoints must be from 11 to 1000, got '$ENDPOINTS'."
[[ $PUSHES =~ ^[1-9][0-9]*$ ]] || bench_die "--pushes must be a positive integer, got '$PUSHES'."
[[ $DURATION =~ ^[1-9][0-9]*$ ]] && ((DURATION >= 4)) ||
  bench_die "--duration must be at least 4 seconds, got '$DURATION'."

bench_init
STICKY_BIN=$(find_sticky_proxy)
read -r NG0 NG1 NG2 NG3 PORT METRICS_PORT <<<"$(free_ports 6)"
start_nginx "$NG0" "$NG1" "$NG2" "$NG3"

# write_push_config FILE VERSION VARIANT: JSON for PUT /v1/config. Variant a: all endpoints
# Active; variant b: ep-0000..ep-0009 Draining and the last endpoint left out.
write_push_config() {
  $PY - "$1" "$2" "$3" "$ENDPOINTS" "$PORT" "${NGINX_PORTS[@]}" <<'EOF'
import json, sys
path, version, variant, n, port = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
ports = [int(p) for p in sys.argv[6:]]
eps = []
for i in range(n):
    if variant == "b" and i == n - 1:
        continue
    eps.append({"name": f"ep-{i:04d}", "address": f"127.0.0.{1 + (i // len(ports)) % 250}",
                "port": ports[i % len(ports)],
                "state": "Draining" if variant == "b" and i < 10 else "Active"})
config = {"version": version, "listen": f"127.0.0.1:{port}", "routes": [{
    "name": "bench/push", "header": "client-id", "ttl": "30m", "maxSessions": 1000000,
    "placement": "LeastSessions", "onMissingKey": "Balance", "onEndpointLost": "Reassign",
    "endpoints": eps}]}
json.dump(config, open(path, "w"))
EOF
}

# The proxy starts on the same route with the 4 plain backends; the first push switches it to
# the 1,000-endpoint route (timed like the rest, reported apart).
write_sticky_config "$BENCH_DIR/start.yaml" "$PORT" bench/push 1000000
start_sticky "$PORT" "$METRICS_PORT" "$BENCH_DIR/start.yaml"
URL="http://127.0.0.1:$PORT/"
check_forwarding "$URL" sticky-proxy
write_push_config "$BENCH_DIR/push-a.json" 0 a
write_push_config "$BENCH_DIR/push-b.json" 0 b
bench_log "config: $(stat -c %s "$BENCH_DIR/push-a.json") bytes of JSON, $ENDPOINTS endpoints"

RESULTS="$BENCH_DIR/push.tsv"
printf 'phase\tversion\thttp_code\ttime_total_s\n' >"$RESULTS"
# push VERSION VARIANT PHASE: one PUT, recorded.
push() {
  local file="$BENCH_DIR/push-$1.json"
  # Same config, new version: rewrite only the version field (cheap, no python per push).
  sed -E "s/^\\{\"version\": [0-9]+/{\"version\": $1/" "$BENCH_DIR/push-$2.json" >"$file"
  local res
  res=$(curl -s -o "$BENCH_DIR/push-$1.out" -w '%{http_code} %{time_total}' -X PUT \
    -H 'content-type: application/json' --data-binary @"$file" --unix-socket "$STICKY_ADMIN" \
    http://admin/v1/config) || res="000 0"
  printf '%s\t%s\t%s\t%s\n' "$3" "$1" "${res% *}" "${res#* }" >>"$RESULTS"
  rm -f "$file"
}

# Transport floor: GET /healthz round trips.
for i in $(seq 1 20); do
  t=$(curl -s -o /dev/null -w '%{time_total}' --unix-socket "$STICKY_ADMIN" http://admin/healthz)
  printf 'healthz\t0\t200\t%s\n' "$t" >>"$RESULTS"
done

# Pushes without load: the round trip with nothing competing, and the proxy's CPU time per apply
# (utime+stime of the whole process over the pushes / pushes; the workers are idle, so this is
# the apply: JSON parse, validation, router build, swap), which the machine's load cannot inflate.
push 1 a first
IDLE_PUSHES=20
c0=$(cpu_ticks "$STICKY_PID")
for ((i = 0; i < IDLE_PUSHES; i++)); do
  push $((1000 + i)) "$([[ $((i % 2)) == 0 ]] && echo b || echo a)" idle
done
c1=$(cpu_ticks "$STICKY_PID")
APPLY_CPU_MS=$(awk -v t="$((c1 - c0))" -v hz="$CLK_TCK" -v n="$IDLE_PUSHES" 'BEGIN {printf "%.2f", t * 1000 / hz / n}')

# Warm-up (places the 10k keys), then the baseline without pushes.
run_wrk_pass "$BENCH_DIR/warmup.txt" 2 64 120 "$BENCH_SRC/keys.lua" "$URL" 10000 2 1
run_wrk "$BENCH_DIR/baseline.txt" 2 64 "$DURATION" "$BENCH_SRC/keys.lua" "$URL" 10000 2 0

# Loaded run with pushes spread over its middle.
wrk -t 2 -c 64 -d "${DURATION}s" --timeout 10s -s "$BENCH_SRC/keys.lua" "$URL" -- 10000 2 0 \
  >"$BENCH_DIR/loaded.txt" 2>&1 &
WRK_PID=$!
BENCH_PIDS+=("$WRK_PID")
start=$(date +%s.%N)
interval=$(awk -v d="$DURATION" -v n="$PUSHES" 'BEGIN {printf "%.3f", (d - 3) / n}')
for ((i = 0; i < PUSHES; i++)); do
  # Pace by the clock: push i at 1.5 s + i * interval into the run.
  target=$(awk -v s="$start" -v i="$i" -v iv="$interval" 'BEGIN {printf "%.3f", s + 1.5 + i * iv}')
  now=$(date +%s.%N)
  wait_s=$(awk -v t="$target" -v n="$now" 'BEGIN {d = t - n; printf "%.3f", (d > 0 ? d : 0)}')
  sleep "$wait_s"
  push $((2000 + i)) "$([[ $((i % 2)) == 0 ]] && echo b || echo a)" loaded
done
wait "$WRK_PID" || true
bench_stop_pid "$WRK_PID" 2>/dev/null || true
grep -q '^BENCH ' "$BENCH_DIR/loaded.txt" || bench_die "wrk produced no result: $(tail -3 "$BENCH_DIR/loaded.txt")"
LAST_VERSION=$((2000 + PUSHES - 1))
SEEN_VERSION=$(curl -s --unix-socket "$STICKY_ADMIN" http://admin/v1/stats | jq .configVersion)
SEEN_ENDPOINTS=$(curl -s --unix-socket "$STICKY_ADMIN" http://admin/v1/stats | jq '.routes[0].endpoints | length')
kill -0 "$STICKY_PID" 2>/dev/null || bench_die "sticky-proxy exited during the run."

echo "# $(date -Iseconds) config push: $ENDPOINTS endpoints, $PUSHES pushes under wrk -t2 -c64 (10k keys), ${DURATION}s"
$PY - "$RESULTS" "$BENCH_DIR/baseline.txt" "$BENCH_DIR/loaded.txt" "$LAST_VERSION" \
  "$SEEN_VERSION" "$SEEN_ENDPOINTS" "$APPLY_CPU_MS" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
def bench(path):
    line = next(l for l in open(path) if l.startswith("BENCH "))
    return {k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
def ms(rs):
    return sorted(float(r["time_total_s"]) * 1000 for r in rs)
def pct(xs, p):
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]
health = ms([r for r in rows if r["phase"] == "healthz"])
first = [r for r in rows if r["phase"] == "first"]
loaded = [r for r in rows if r["phase"] == "loaded"]
lt = ms(loaded)
bad = [r for r in rows if r["phase"] != "healthz" and r["http_code"] != "200"]
print(f"GET /healthz round trip      median {statistics.median(health):6.2f} ms  max {max(health):6.2f} ms")
print(f"first PUT (4 -> N endpoints) {float(first[0]['time_total_s']) * 1000:6.2f} ms  HTTP {first[0]['http_code']}")
it = ms([r for r in rows if r["phase"] == "idle"])
print(f"PUT without load ({len(it)} pushes) median {statistics.median(it):6.2f} ms  max {max(it):6.2f} ms"
      f"  proxy CPU {sys.argv[7]} ms per apply")
print(f"PUT under load ({len(lt)} pushes)   median {statistics.median(lt):6.2f} ms  p90 {pct(lt, 90):6.2f} ms"
      f"  max {max(lt):6.2f} ms  non-200 answers {len(bad)}")
print(f"last version pushed {sys.argv[4]}, GET /v1/stats reports {sys.argv[5]} ({sys.argv[6]} endpoints)")
b, l = bench(sys.argv[2]), bench(sys.argv[3])
for name, r in (("baseline (no pushes)", b), ("with pushes", l)):
    errs = sum(int(r[k]) for k in ("connect", "read", "write", "status", "timeout"))
    print(f"wrk {name:<21} {r['requests'] * 1e6 / r['duration_us']:8.0f} req/s  p50 {r['p50_us'] / 1000:6.2f} ms"
          f"  p99 {r['p99_us'] / 1000:6.2f} ms  max {r['max_us'] / 1000:7.1f} ms  errors {errs}"
          + ("  << ERRORS" if errs else ""))
errs = sum(int(l[k]) for k in ("connect", "read", "write", "status", "timeout"))
cpu = float(sys.argv[7])
excess = statistics.median(it) - statistics.median(health)
ok = cpu <= 10 and errs == 0 and not bad and sys.argv[4] == sys.argv[5]
print(f"target: apply <= 10 ms with zero failed requests: {cpu:.2f} ms of proxy CPU per apply, "
      f"round trip {excess:.2f} ms above the /healthz floor (median, without load), {errs} failed "
      f"requests [{'MET' if ok else 'NOT MET'}]")
EOF
if [[ -n $OUT ]]; then
  mkdir -p "$OUT"
  cp "$RESULTS" "$BENCH_DIR/baseline.txt" "$BENCH_DIR/loaded.txt" "$OUT/"
fi
