# shellcheck shell=bash
# Shared helpers for the benchmark scripts (sourced, not run). Every process started here is
# recorded by PID and stopped by PID in bench_cleanup, which the scripts install as an EXIT trap.
#
# Conventions: BENCH_DIR is a fresh temp dir per script run (configs, logs, sockets); the nginx
# backends listen on 0.0.0.0 so any 127.0.0.N address reaches them (config_push.sh uses that).

BENCH_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$BENCH_SRC/../.." && pwd)"
PY=/usr/bin/python3  # Debian's python: starts in ~0.1 s (a pyenv shim may take a second)
[[ -x $PY ]] || PY=python3

BENCH_PIDS=()
BENCH_KEEP=${BENCH_KEEP:-0}  # 1: keep BENCH_DIR for inspection

bench_log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
bench_die() {
  printf 'bench: %s\n' "$*" >&2
  exit 1
}

bench_init() {
  BENCH_DIR=$(mktemp -d /tmp/sticky-bench.XXXXXX)
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  for tool in nginx wrk curl jq; do
    command -v "$tool" >/dev/null || bench_die "$tool is not installed (make deps installs it)."
  done
  [[ -x /usr/sbin/haproxy ]] || bench_die "/usr/sbin/haproxy is not installed (apt-get install haproxy)."
}

# Stops one PID: TERM, up to 5 s for it to exit, then KILL. Only PIDs this script started.
bench_stop_pid() {
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null
  local i
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    # wait reaps our own children; a short poll interval for the rest.
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || true
  local -a left=()
  local p
  for p in "${BENCH_PIDS[@]}"; do [[ $p == "$pid" ]] || left+=("$p"); done
  BENCH_PIDS=("${left[@]}")
}

bench_cleanup() {
  local rc=$?
  local p
  for p in "${BENCH_PIDS[@]}"; do bench_stop_pid "$p"; done
  if [[ -n ${BENCH_DIR:-} && -d $BENCH_DIR ]]; then
    if [[ $BENCH_KEEP == 1 || $rc != 0 ]]; then
      bench_log "logs and configs kept in $BENCH_DIR"
    else
      rm -rf "$BENCH_DIR"
    fi
  fi
  return $rc
}

# free_ports N: N distinct free TCP ports on 127.0.0.1 (bound together, then released).
free_ports() {
  $PY - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# wait_http URL [SECONDS]: poll until URL answers (any HTTP status), or fail.
wait_http() {
  local url=$1 deadline=$((SECONDS + ${2:-20}))
  while ((SECONDS < deadline)); do
    curl -s -o /dev/null --max-time 1 "$url" && return 0
    sleep 0.05
  done
  return 1
}

# wait_unix_http SOCKET URL [SECONDS]: poll until an HTTP request over a Unix socket returns 200.
wait_unix_http() {
  local sock=$1 url=$2 deadline=$((SECONDS + ${3:-20}))
  while ((SECONDS < deadline)); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 --unix-socket "$sock" "$url") == 200 ]] &&
      return 0
    sleep 0.05
  done
  return 1
}

# --- /proc readings --------------------------------------------------------------------------
# cpu_ticks PID: utime+stime of the whole process (all threads), in clock ticks.
cpu_ticks() {
  # Field 2 (comm) may contain spaces; strip through the last ')'.
  local stat
  stat=$(<"/proc/$1/stat") || return 1
  stat=${stat##*) }
  # After comm: state is field 3, so utime (14) and stime (15) are the 12th and 13th here.
  awk '{print $12 + $13}' <<<"$stat"
}
export CLK_TCK
CLK_TCK=$(getconf CLK_TCK)
# vm_kb PID FIELD: a VmXXX line of /proc/PID/status in kB (VmRSS, VmHWM).
vm_kb() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }

# --- nginx backends --------------------------------------------------------------------------
# start_nginx PORT...: one nginx per port (own prefix dir and config, single process, no master),
# `return 200` with a small body, keep-alive without a request cap. Sets NGINX_PORTS.
start_nginx() {
  NGINX_PORTS=("$@")
  local i=0 port dir
  for port in "$@"; do
    dir="$BENCH_DIR/nginx-$i"
    mkdir -p "$dir/logs"
    sed -e "s|@PORT@|$port|g" -e "s|@DIR@|$dir|g" -e "s|@NAME@|nginx-$i|g" \
      "$BENCH_SRC/nginx.conf.in" >"$dir/nginx.conf"
    nginx -p "$dir" -c "$dir/nginx.conf" >"$dir/stdout.log" 2>&1 &
    BENCH_PIDS+=("$!")
    i=$((i + 1))
  done
  for port in "$@"; do
    wait_http "http://127.0.0.1:$port/" 20 || bench_die "nginx on port $port did not start (see $BENCH_DIR/nginx-*/logs/error.log)."
  done
}

# --- HAProxy -----------------------------------------------------------------------------------
# start_haproxy PORT: the anchor config over NGINX_PORTS. Sets HAPROXY_PID.
start_haproxy() {
  local port=$1 servers="" i=0 p
  for p in "${NGINX_PORTS[@]}"; do
    servers+="    server nginx-$i 127.0.0.1:$p"$'\n'
    i=$((i + 1))
  done
  local cfg="$BENCH_DIR/haproxy.cfg"
  awk -v port="$port" -v servers="$servers" -v sock="$BENCH_DIR/haproxy.sock" '
    { gsub(/@PORT@/, port); gsub(/@STATS_SOCKET@/, sock) }
    /@SERVERS@/ { printf "%s", servers; next }
    { print }' "$BENCH_SRC/haproxy.cfg.in" >"$cfg"
  /usr/sbin/haproxy -c -q -f "$cfg" || bench_die "HAProxy rejected $cfg."
  /usr/sbin/haproxy -db -f "$cfg" >"$BENCH_DIR/haproxy.log" 2>&1 &
  HAPROXY_PID=$!
  BENCH_PIDS+=("$HAPROXY_PID")
  wait_http "http://127.0.0.1:$port/" 20 || bench_die "HAProxy did not start (see $BENCH_DIR/haproxy.log)."
}

# haproxy_table_used: entries in the backend's stick table (via the stats socket).
haproxy_table_used() {
  $PY - "$BENCH_DIR/haproxy.sock" <<'EOF'
import socket, sys, re
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"show table\n")
out = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    out += chunk
m = re.search(rb"used:(\d+)", out)
print(m.group(1).decode() if m else 0)
EOF
}

# --- sticky-proxy ------------------------------------------------------------------------------
find_sticky_proxy() {
  if [[ -n ${STICKY_PROXY_BIN:-} ]]; then
    [[ -x $STICKY_PROXY_BIN ]] || bench_die "STICKY_PROXY_BIN=$STICKY_PROXY_BIN is not an executable."
    echo "$STICKY_PROXY_BIN"
    return
  fi
  local b
  for b in "$REPO_ROOT/build/release/proxy/sticky-proxy" "$REPO_ROOT/build/dev/proxy/sticky-proxy"; do
    [[ -x $b ]] && {
      echo "$b"
      return
    }
  done
  bench_die "no sticky-proxy binary: build one (make bench, or cmake --preset release && cmake --build build/release --target sticky-proxy) or set STICKY_PROXY_BIN."
}

# write_sticky_config FILE PORT ROUTE_NAME MAX_SESSIONS: YAML with one route over NGINX_PORTS.
write_sticky_config() {
  local file=$1 port=$2 name=$3 max=$4 i=0 p
  {
    echo "version: 1"
    echo "listen: 127.0.0.1:$port"
    echo "routes:"
    echo "  - name: $name"
    echo "    header: client-id"
    echo "    ttl: 30m"
    echo "    maxSessions: $max"
    echo "    placement: LeastSessions"
    echo "    onMissingKey: Balance"
    echo "    onEndpointLost: Reassign"
    echo "    endpoints:"
    for p in "${NGINX_PORTS[@]}"; do
      echo "      - {name: nginx-$i, address: 127.0.0.1, port: $p}"
      i=$((i + 1))
    done
  } >"$file"
}

# start_sticky PORT METRICS_PORT CONFIG_FILE [ARGS...]: sticky-proxy with 2 workers, admin socket
# and metrics on, plus ARGS. Sets STICKY_PID and STICKY_ADMIN.
start_sticky() {
  local port=$1 metrics_port=$2 cfg=$3
  shift 3
  STICKY_ADMIN="$BENCH_DIR/admin.sock"
  "$STICKY_BIN" --config "$cfg" --admin-socket "$STICKY_ADMIN" \
    --metrics-listen "127.0.0.1:$metrics_port" --workers "${STICKY_WORKERS:-2}" --log-level warn \
    "$@" >"$BENCH_DIR/sticky-proxy.log" 2>&1 &
  STICKY_PID=$!
  BENCH_PIDS+=("$STICKY_PID")
  wait_unix_http "$STICKY_ADMIN" http://admin/readyz 20 &&
    wait_http "http://127.0.0.1:$port/" 20 ||
    bench_die "sticky-proxy did not start (see $BENCH_DIR/sticky-proxy.log)."
}

# sticky_sessions: live sessions summed over routes, from GET /v1/stats.
sticky_sessions() {
  curl -s --unix-socket "$STICKY_ADMIN" http://admin/v1/stats | jq '[.routes[].sessions] | add // 0'
}

# check_forwarding URL NAME: one request with a client-id must come back 200 from an nginx.
check_forwarding() {
  local out
  out=$(curl -s --max-time 5 -H 'client-id: smoke-test' -w ' %{http_code}' "$1") || true
  [[ $out == nginx-*" 200" ]] ||
    bench_die "$2 does not forward: GET $1 answered '$out' (expected an nginx backend's 200)."
}

# --- wrk -------------------------------------------------------------------------------------
# run_wrk OUT_FILE THREADS CONNS DURATION_S SCRIPT URL [SCRIPT_ARGS...]: runs wrk, keeps its
# output in OUT_FILE; the script's done() prints one "BENCH k=v ..." line.
run_wrk() {
  local out=$1 threads=$2 conns=$3 dur=$4 script=$5 url=$6
  shift 6
  wrk -t "$threads" -c "$conns" -d "${dur}s" --timeout 10s -s "$script" "$url" -- "$@" \
    >"$out" 2>&1 || true
  grep -q '^BENCH ' "$out" || bench_die "wrk produced no result (see $out): $(tail -3 "$out")"
}

# bench_field FILE KEY: a value from the BENCH line.
bench_field() { grep '^BENCH ' "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k {print $2}'; }

# run_wrk_pass OUT_FILE THREADS CONNS MAX_S SCRIPT URL SCRIPT_ARGS...: a wrk run whose script stops
# its threads after their share (keys.lua with ONE_PASS=1, unique_keys.lua). The marker directory
# is appended as the script's last argument; once every thread has dropped its marker (or MAX_S
# passed) wrk gets SIGINT and prints its results.
run_wrk_pass() {
  local out=$1 threads=$2 conns=$3 max=$4 script=$5 url=$6
  shift 6
  local marks
  marks=$(mktemp -d "$BENCH_DIR/marks.XXXXXX")
  wrk -t "$threads" -c "$conns" -d "${max}s" --timeout 10s -s "$script" "$url" -- "$@" "$marks" \
    >"$out" 2>&1 &
  local pid=$!
  BENCH_PIDS+=("$pid")
  # The wait runs on bash builtins only (a glob, and `read -t` on a FIFO nobody writes as the
  # clock): forking find, wc and sleep 20 times a second took a quarter of this 2-core machine's
  # CPU away from the proxies during the measured pass.
  local tick fd f n
  tick="$marks/.tick"
  mkfifo "$tick"
  exec {fd}<>"$tick"
  while kill -0 "$pid" 2>/dev/null; do
    n=0
    for f in "$marks"/thread-*; do [[ -e $f ]] && n=$((n + 1)); done
    ((n >= threads)) && break
    read -r -t 0.05 -u "$fd" _ || true
  done
  exec {fd}<&-
  kill -INT "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local -a left=()
  local p
  for p in "${BENCH_PIDS[@]}"; do [[ $p == "$pid" ]] || left+=("$p"); done
  BENCH_PIDS=("${left[@]}")
  rm -rf "$marks"
  grep -q '^BENCH ' "$out" || bench_die "wrk produced no result (see $out): $(tail -3 "$out")"
}
