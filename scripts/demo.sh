#!/usr/bin/env bash
# `make demo`: the whole stack on this machine, narrated. `make demo-down` stops it.
#   real etcd + kube-apiserver (test/env/kube-apiserver.sh, as the operator's tests use), the CRD,
#   sticky-operator and sticky-proxy sharing an admin socket (as in the pod), three
#   sticky-test-backend processes on 127.0.0.11-13 registered as Ready pods, a sample StickyRoute.
#
#   scripts/demo.sh         start the demo (after `make build`; `make demo` does both)
#   scripts/demo.sh down    stop exactly the processes a demo started, remove .demo/
#
# Environment: BUILD_DIR (default build/dev), DEMO_PROXY_PORT (18080), DEMO_METRICS_PORT (19090),
# DEMO_REDIS_PORT (16379), DEMO_REPLICA_PORT (18081: the second proxy replica),
# DEMO_OPERATOR_METRICS_PORT (19091: the operator's /metrics, /healthz, /readyz).
# Everything the demo starts is recorded in .demo/ (pids, logs, kubeconfig, admin socket).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD_DIR:-build/dev}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
DEMO=$ROOT/.demo
SOCK=$DEMO/admin.sock
PROXY_PORT=${DEMO_PROXY_PORT:-18080}
METRICS_PORT=${DEMO_METRICS_PORT:-19090}
REDIS_PORT=${DEMO_REDIS_PORT:-16379}
REPLICA_PORT=${DEMO_REPLICA_PORT:-18081}
OPERATOR_METRICS_PORT=${DEMO_OPERATOR_METRICS_PORT:-19091}
PROXY=http://127.0.0.1:$PROXY_PORT
NS=demo
PODS=(chat-0 chat-1 chat-2)
KEYS=(alice bob carol dave erin frank)

if [ -t 1 ]; then B=$'\033[1m' N=$'\033[0m'; else B="" N=""; fi
step() { printf '\n%s== %s%s\n' "$B" "$*" "$N"; }
say() { printf '   %s\n' "$*"; }
indent() { sed 's/^/     /'; }
# Shows a command as you would type it (KUBECONFIG exported), runs it, indents its output.
show() { printf '   $ %s\n' "$1"; eval "$1" 2>&1 | indent; }
die() {
  printf '\ndemo: %s\n' "$*" >&2
  exit 1
}

# ---------------------------------------------------------------------------------------------
# Processes: every one is recorded as .demo/pids/NAME.pid = "PID BINARY"; `down` signals PID only
# while its command line still starts with BINARY, so a recycled PID is never touched.
# ---------------------------------------------------------------------------------------------

alive() { # pidfile
  local pid bin
  { read -r pid bin <"$1"; } 2>/dev/null || return 1
  [ -r "/proc/$pid/cmdline" ] || return 1
  [ "$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null)" != Z ] || return 1
  [ "$({ tr '\0' '\n' <"/proc/$pid/cmdline"; } 2>/dev/null | head -n1)" = "$bin" ]
}

start_bg() { # name binary args...
  local name=$1 bin=$2
  shift 2
  setsid "$bin" "$@" </dev/null >"$DEMO/logs/$name.log" 2>&1 &
  echo "$! $bin" >"$DEMO/pids/$name.pid"
}

stop_one() { # name
  local f=$DEMO/pids/$1.pid pid
  [ -f "$f" ] || return 0
  if alive "$f"; then
    read -r pid _ <"$f"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do alive "$f" || break; sleep 0.1; done
    if alive "$f"; then
      kill -KILL "$pid" 2>/dev/null || true
      say "stopped $1 (pid $pid, killed after 10 s)"
    else
      say "stopped $1 (pid $pid)"
    fi
  fi
  rm -f "$f"
}

stop_all() {
  local name
  stop_one operator # first, so it does not log the proxy going away
  stop_one proxy
  stop_one replica
  stop_one redis
  for name in "${PODS[@]}"; do stop_one "$name"; done
  if [ -d "$DEMO/kube" ]; then
    test/env/kube-apiserver.sh stop "$DEMO/kube" 2>&1 | sed 's/^\[kube-apiserver.sh\] stopping /   stopped /' || true
  fi
}

down() {
  if [ ! -d "$DEMO" ]; then
    say "no demo is running (no $DEMO)"
    return 0
  fi
  stop_all
  rm -rf "$DEMO"
  say "removed $DEMO"
}

if [ "${1:-}" = down ]; then
  step "Stopping the demo"
  down
  exit 0
fi
[ $# -eq 0 ] || die "usage: scripts/demo.sh [down]"

# On failure or Ctrl-C: say what broke, stop what was started, keep the logs.
DONE=""
on_exit() {
  local rc=$?
  [ -z "$DONE" ] && [ -d "$DEMO/pids" ] || return 0
  local f name
  for f in "$DEMO"/pids/*.pid; do
    [ -f "$f" ] || continue
    name=$(basename "$f" .pid)
    if ! alive "$f" && [ -s "$DEMO/logs/$name.log" ]; then
      printf '\nthe end of %s:\n' "$DEMO/logs/$name.log" >&2
      tail -n 8 "$DEMO/logs/$name.log" | indent >&2
    fi
  done
  printf '\ndemo: %s; stopping what it started (logs stay in %s)\n' \
    "$([ "$rc" -ge 128 ] && echo interrupted || echo "failed (exit $rc)")" "$DEMO/logs" >&2
  stop_all >&2
  rm -rf "$DEMO/pids" "$DEMO/kube/etcd-data"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_until() { # seconds, description, command...; gives up early if a started process died
  local secs=$1 what=$2 f
  shift 2
  for _ in $(seq $((secs * 10))); do
    "$@" >/dev/null 2>&1 && return 0
    for f in "$DEMO"/pids/*.pid; do
      [ -f "$f" ] && ! alive "$f" && die "$(basename "$f" .pid) exited while waiting for $what"
    done
    sleep 0.1
  done
  die "timed out after ${secs}s waiting for $what (logs in $DEMO/logs)"
}

port_taken() { (: <"/dev/tcp/$1/$2") 2>/dev/null; }

# ---------------------------------------------------------------------------------------------
step "Preparing"
for b in proxy/sticky-proxy operator/sticky-operator test/sticky-test-backend; do
  [ -x "$BUILD/$b" ] || die "$BUILD/$b is missing: run 'make demo' (it builds first) or 'make build'"
done
if [ -d "$DEMO/pids" ]; then
  say "a demo from an earlier run is still running; stopping it first"
  down
elif [ -d "$DEMO" ]; then
  rm -rf "$DEMO" # the logs of an earlier run that failed
fi
for addr in "127.0.0.1 $PROXY_PORT" "127.0.0.1 $METRICS_PORT" "127.0.0.11 8080" "127.0.0.12 8080" \
  "127.0.0.13 8080" "127.0.0.1 $REDIS_PORT" "127.0.0.1 $REPLICA_PORT" \
  "127.0.0.1 $OPERATOR_METRICS_PORT"; do
  # shellcheck disable=SC2086 # two words: host and port
  if port_taken $addr; then
    die "${addr/ /:} is already in use. Is a demo from another checkout running? Run 'make demo-down' there (or set DEMO_PROXY_PORT / DEMO_METRICS_PORT / DEMO_REDIS_PORT / DEMO_REPLICA_PORT / DEMO_OPERATOR_METRICS_PORT)."
  fi
done
mkdir -p "$DEMO/pids" "$DEMO/logs"

if ! command -v kubectl >/dev/null; then
  say "kubectl is missing; installing Debian's kubernetes-client (kubectl 1.20, the API server's version)"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "need root or sudo to install kubernetes-client (kubectl)"
    SUDO=sudo
  fi
  export DEBIAN_FRONTEND=noninteractive
  { $SUDO apt-get install -y -qq kubernetes-client >/dev/null 2>&1 ||
    { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq kubernetes-client >/dev/null; }; } ||
    die "installing kubernetes-client failed"
fi
say "binaries from $BUILD; kubectl $(kubectl version --client -o json 2>/dev/null |
  sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p' | head -n1)"

# kube-apiserver is built once from Debian's source package (~5 min cold on 2 cores) and cached in
# ~/.cache/kube-sticky; show that build's messages and a heartbeat while it runs.
ensure_log=$DEMO/logs/kube-apiserver-ensure.log
: >"$ensure_log"
test/env/kube-apiserver.sh ensure >"$DEMO/logs/kube-apiserver-path" 2>"$ensure_log" &
ensure_pid=$!
shown=0 start=$SECONDS next=60 ticking=""
while kill -0 "$ensure_pid" 2>/dev/null; do
  lines=$(wc -l <"$ensure_log")
  if [ "$lines" -gt "$shown" ]; then
    [ -z "$ticking" ] || printf '\n'
    ticking=""
    sed -n "$((shown + 1)),${lines}p" "$ensure_log" | sed 's/^\[kube-apiserver.sh\] /   /'
    shown=$lines
  fi
  elapsed=$((SECONDS - start))
  if [ -t 1 ] && [ $elapsed -ge 3 ]; then # one line, updated in place
    printf '\r   ... still working (%d s)' $elapsed
    ticking=1
  elif [ $elapsed -ge $next ]; then # a log or a pipe: a line a minute
    say "... still working ($elapsed s)"
    next=$((next + 60))
  fi
  sleep 0.2
done
[ -z "$ticking" ] || printf '\n'
sed -n "$((shown + 1)),\$p" "$ensure_log" | sed 's/^\[kube-apiserver.sh\] /   /'
wait "$ensure_pid" || die "could not build or find kube-apiserver (see above)"
say "kube-apiserver: $(cat "$DEMO/logs/kube-apiserver-path")"

# ---------------------------------------------------------------------------------------------
step "Starting a real etcd + kube-apiserver on loopback"
test/env/kube-apiserver.sh start "$DEMO/kube" >"$DEMO/logs/kube-env.log" 2>&1 || {
  tail -n 15 "$DEMO/logs/kube-env.log" | indent >&2
  die "the API server did not start; see $DEMO/logs/kube-env.log"
}
# shellcheck disable=SC1091
. "$DEMO/kube/env" # KUBECONFIG, STICKY_APISERVER_URL/_TOKEN/_CA, ETCD_PORT, pids
say "etcd on 127.0.0.1:$ETCD_PORT (pid $ETCD_PID), kube-apiserver on $STICKY_APISERVER_URL (pid $APISERVER_PID)"
say "export KUBECONFIG=$KUBECONFIG    # every kubectl below uses it"
kubectl create namespace $NS >/dev/null

step "Installing the StickyRoute CRD"
show "kubectl apply -f crds/stickyroutes.kubesticky.io.yaml"
wait_until 30 "the CRD to be established" \
  kubectl wait --for condition=established --timeout=1s crd/stickyroutes.kubesticky.io

step "Starting Redis, the stick table every proxy replica shares"
start_bg redis "$(command -v redis-server)" --port "$REDIS_PORT" --bind 127.0.0.1 --save "" \
  --appendonly no --dir "$DEMO" --set-proc-title no # keep argv[0]: `down` matches it
wait_until 10 "redis-server" bash -c "exec 3<>/dev/tcp/127.0.0.1/$REDIS_PORT"
say "redis-server on 127.0.0.1:$REDIS_PORT (no persistence: the proxies re-assert what they hold)"

step "Starting sticky-proxy and sticky-operator, sharing the admin socket .demo/admin.sock (as in the pod)"
start_bg proxy "$BUILD/proxy/sticky-proxy" --listen "127.0.0.1:$PROXY_PORT" \
  --admin-socket "$SOCK" --metrics-listen "127.0.0.1:$METRICS_PORT" --workers 2 \
  --redis-address "127.0.0.1:$REDIS_PORT"
wait_until 10 "the proxy's admin socket" curl -sf --unix-socket "$SOCK" http://admin/healthz
# --status-interval 1s: the SESSIONS column below follows the table closely (default 10s).
start_bg operator "$BUILD/operator/sticky-operator" --kubeconfig "$KUBECONFIG" \
  --namespaces $NS --admin-socket "$SOCK" --status-interval 1s \
  --metrics-listen "127.0.0.1:$OPERATOR_METRICS_PORT"
wait_until 30 "the operator to push its first config" \
  curl -sf --unix-socket "$SOCK" http://admin/readyz
say "sticky-proxy     $PROXY (clients), http://127.0.0.1:$METRICS_PORT/metrics"
say "sticky-operator  watches namespace $NS, pushes the proxy's config over the admin socket;"
say "                 http://127.0.0.1:$OPERATOR_METRICS_PORT/metrics (and /healthz, /readyz)"

step "Three backends on 127.0.0.11-13, registered as Ready pods ${PODS[0]}..${PODS[2]}"
say "(no kubelet here: the demo writes each pod's status, IP and Ready condition, as a kubelet would)"
for i in 0 1 2; do
  pod=${PODS[$i]} ip=127.0.0.1$((i + 1))
  start_bg "$pod" "$BUILD/test/sticky-test-backend" --listen "$ip:8080" --name "$pod"
  # The Pod, and its status as a kubelet would write it (test/env/ready-pod.sh).
  test/env/ready-pod.sh "$DEMO/kube/env" $NS "$pod" "$ip" 8080 app=chat 2>"$DEMO/logs/api-response" ||
    die "registering pod $pod failed: $(cat "$DEMO/logs/api-response")"
done
for i in 0 1 2; do
  wait_until 10 "backend ${PODS[$i]}" grep -q '^listening on' "$DEMO/logs/${PODS[$i]}.log"
done
show "kubectl get pods -n $NS -o wide"

step "Applying a StickyRoute"
cat >"$DEMO/route.yaml" <<YAML
apiVersion: kubesticky.io/v1alpha1
kind: StickyRoute
metadata: {name: chat, namespace: $NS}
spec:
  selector: {matchLabels: {app: chat}}
  port: http          # the pods' containerPort named http
  header: client-id   # the session key
  ttl: 30m
YAML
indent <"$DEMO/route.yaml"
show "kubectl apply -f .demo/route.yaml"
sr_field() { kubectl get stickyroute chat -n $NS -o jsonpath="{$1}" 2>/dev/null; }
ready_with() { # active endpoints
  [ "$(sr_field '.status.conditions[?(@.type=="Ready")].status')" = True ] &&
    [ "$(sr_field .status.readyEndpoints)" = "$1" ]
}
wait_until 30 "the route to become Ready" ready_with 3
show "kubectl get stickyroutes -n $NS"

# ---------------------------------------------------------------------------------------------
HDRS=$DEMO/last-headers BODY=$DEMO/last-body
ask() { # key -> the pod that answered; headers and body kept in $HDRS / $BODY
  curl -s -D "$HDRS" -o "$BODY" -H "client-id: $1" "$PROXY/hello"
  sed -n 's/.*"backend":"\([^"]*\)".*/\1/p' "$BODY"
}
moved_from() { # the x-sticky-session-moved value of the last response, if any
  grep -i '^x-sticky-session-moved:' "$HDRS" | tr -d '\r' | sed 's/^[^:]*: *//' || true
}
declare -A at # key -> pod it was last seen on

step "Requests with a client-id header stick to one pod (4 requests per key)"
for key in "${KEYS[@]}"; do
  at[$key]=$(ask "$key")
  answers=${at[$key]} verdict="sticky"
  for _ in 1 2 3; do
    a=$(ask "$key")
    answers+=" $a"
    [ "$a" = "${at[$key]}" ] || verdict="NOT STICKY"
  done
  printf '   client-id: %-6s -> %s   %s\n' "$key" "$answers" "$verdict"
done
say "(new sessions go to the pod with the fewest sessions: LeastSessions placement)"
say "no client-id header: balanced, not pinned -> $(curl -s "$PROXY/" | sed -n 's/.*"backend":"\([^"]*\)".*/\1/p')"

victim=${at[alice]}
step "Deleting pod $victim (alice's pod): its sessions move, and both sides are told"
say "\$ kubectl delete pod $victim -n $NS --grace-period=0 --force"
kubectl delete pod "$victim" -n $NS --grace-period=0 --force 2>/dev/null | indent # no "Immediate deletion" warning
wait_until 15 "the operator to remove $victim from the proxy's config" \
  bash -c "! curl -s --unix-socket '$SOCK' http://admin/v1/config | grep -q '\"$victim\"'"
stop_one "$victim" >/dev/null # its container would be gone too
say "(its backend process is stopped too, as the kubelet would)"
now=$(ask alice)
printf '   $ curl -si -H %s %s/hello\n' "'client-id: alice'" "$PROXY"
tr -d '\r' <"$HDRS" | sed '/^$/d' | indent
seen=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["headers"].get("x-sticky-moved-from","(none)"))' "$BODY")
[ "$(moved_from)" = "$victim" ] || say "!! expected x-sticky-session-moved: $victim in the response"
say "the client was told:  x-sticky-session-moved: $(moved_from)   (the response header above)"
say "$now was told:      x-sticky-moved-from: $seen      (a request header; the demo backend echoes it)"
again=$(ask alice) m=$(moved_from)
say "the next request: client-id: alice -> $again, ${m:+"x-sticky-session-moved: $m (UNEXPECTED)"}${m:-"no header: the session is pinned to $again now"}"
at[alice]=$now

drain=$now
step "Pod $drain (alice's new pod) starts terminating: it drains"
say "A pod being deleted keeps serving during its grace period: its sessions stay, new ones go elsewhere."
show "kubectl delete pod $drain -n $NS --wait=false"
wait_until 15 "$drain to be Draining in the proxy's config" \
  bash -c "curl -s --unix-socket '$SOCK' http://admin/v1/config | grep -q Draining"
show "kubectl get pods -n $NS"
say "(no kubelet here to finish the deletion, so $drain stays Terminating; in a cluster that lasts"
say " up to terminationGracePeriodSeconds)"
say "the proxy's endpoints now (GET /v1/config on the admin socket):"
curl -s --unix-socket "$SOCK" http://admin/v1/config | python3 -c '
import json, sys
for r in json.load(sys.stdin)["routes"]:
    for e in r["endpoints"]:
        print("     %-8s %s:%d  %s" % (e["name"], e["address"], e["port"], e["state"]))'
say "the six keys from before:"
kept=0 on_drain=0
for key in "${KEYS[@]}"; do
  a=$(ask "$key") m=$(moved_from) note=""
  if [ -n "$m" ]; then
    note="(moved: its pod $m was deleted)"
  elif [ "$a" = "$drain" ]; then
    note="(still on the draining pod)"
    kept=$((kept + 1))
  fi
  [ "${at[$key]}" = "$drain" ] && on_drain=$((on_drain + 1))
  printf '     client-id: %-6s -> %s%s\n' "$key" "$a" "${note:+  $note}"
  at[$key]=$a
done
new="" placed_on_drain=0
for key in gina hank ivan judy; do
  a=$(ask "$key")
  new+=" $key->$a"
  [ "$a" = "$drain" ] && placed_on_drain=$((placed_on_drain + 1))
done
say "new keys, never seen before:"
say "  ${new# }"
say "=> $kept of $on_drain sessions on $drain kept there; $placed_on_drain of 4 new sessions placed on it"
# Let the status catch up with the table before showing it.
total() { curl -s --unix-socket "$SOCK" "http://admin/v1/sessions?route=$NS/chat&limit=0" |
  sed -n 's/.*"total":\([0-9]*\).*/\1/p'; }
status_caught_up() { [ "$(sr_field .status.sessions)" = "$(total)" ] && [ "$(sr_field .status.drainingEndpoints)" = 1 ]; }
wait_until 20 "the route status to count every session" status_caught_up
show "kubectl get stickyroutes -n $NS"
say "ENDPOINTS counts the pods that take new sessions; per pod (status.endpoints in -o yaml):"
kubectl get stickyroute chat -n $NS \
  -o jsonpath='{range .status.endpoints[*]}{.pod}{" "}{.state}{" "}{.sessions}{"\n"}{end}' |
  while read -r pod state n; do printf '     %-8s %-9s %s sessions\n' "$pod" "$state" "$n"; done

step "The stick table, from the admin socket"
printf '   $ curl -s --unix-socket .demo/admin.sock %s\n' "'http://admin/v1/sessions?route=$NS/chat&limit=20'"
curl -s --unix-socket "$SOCK" "http://admin/v1/sessions?route=$NS/chat&limit=20" | python3 -c '
import collections, json, sys
d = json.load(sys.stdin)
print("{\"route\": %s, \"total\": %d, \"sessions\": [" % (json.dumps(d["route"]), d["total"]))
rows = [json.dumps({k: s[k] for k in ("key", "endpoint", "idleMs")}) for s in d["sessions"]]
print(",\n".join("  " + r for r in rows))
print("]}")
per = collections.Counter(s["endpoint"] for s in d["sessions"])
print("(per pod: %s)" % ", ".join("%s %d" % kv for kv in sorted(per.items())))' | indent

step "A second proxy replica, sharing the table through Redis, sends every key to the same pod"
REPLICA_SOCK=$DEMO/replica.sock
ask_replica() {
  curl -s -H "client-id: $1" "http://127.0.0.1:$REPLICA_PORT/hello" |
    sed -n 's/.*"backend":"\([^"]*\)".*/\1/p'
}
start_replica() {
  start_bg replica "$BUILD/proxy/sticky-proxy" --listen "127.0.0.1:$REPLICA_PORT" \
    --admin-socket "$REPLICA_SOCK" --workers 2 --redis-address "127.0.0.1:$REDIS_PORT"
  wait_until 10 "the replica's admin socket" curl -sf --unix-socket "$REPLICA_SOCK" http://admin/healthz
  # In the cluster each replica's own operator pushes it; here the first proxy's config is copied.
  curl -s --unix-socket "$SOCK" http://admin/v1/config |
    curl -sf --unix-socket "$REPLICA_SOCK" -X PUT --data-binary @- http://admin/v1/config >/dev/null ||
    die "could not push the config to the replica"
}
start_replica
say "replica on http://127.0.0.1:$REPLICA_PORT: an empty local table; Redis holds $(
  python3 - "$REDIS_PORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
# Session keys only, not the replicas' load hashes (sticky:load:<route>).
args = [b"EVAL", b"return #redis.call('KEYS', 'sticky:*') - #redis.call('KEYS', 'sticky:load:*')", b"0"]
s.sendall(b"*3\r\n" + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
print(s.recv(64).decode().strip().lstrip(":"), end="")
PY
) sessions"
declare -A ON_REPLICA=()
agree=0
for key in "${KEYS[@]}" gina hank ivan judy; do
  a=$(ask "$key")
  r=$(ask_replica "$key")
  ON_REPLICA[$key]=$r
  [ "$a" = "$r" ] && agree=$((agree + 1))
  printf '     client-id: %-6s -> first proxy: %-7s replica: %s\n' "$key" "$a" "$r"
done
say "=> $agree of 10 keys on the same pod through both replicas (docs/shared-table.md)"

step "The replica is killed (kill -9) and started again with an empty table: no session moves"
read -r replica_pid _ <"$DEMO/pids/replica.pid"
disown "$replica_pid" 2>/dev/null || true # no "Killed" job notice in the narration
kill -KILL "$replica_pid" 2>/dev/null || true
rm -f "$DEMO/pids/replica.pid"
for _ in $(seq 50); do [ -d "/proc/$replica_pid" ] && [ "$(cut -d' ' -f3 "/proc/$replica_pid/stat" 2>/dev/null)" != Z ] || break; sleep 0.1; done
say "killed the replica (pid $replica_pid)"
start_replica
say "started it again (pid $(cut -d' ' -f1 "$DEMO/pids/replica.pid")): its local table is empty"
kept=0
for key in "${!ON_REPLICA[@]}"; do
  r=$(ask_replica "$key")
  [ "$r" = "${ON_REPLICA[$key]}" ] && kept=$((kept + 1))
done
say "=> $kept of 10 keys still on the pod they were on before the restart (Redis remembered)"

# ---------------------------------------------------------------------------------------------
DONE=1
step "The stack is still running; try it"
cat <<TXT
   export KUBECONFIG=$KUBECONFIG
   kubectl get stickyroutes,pods -n $NS
   kubectl get stickyroute chat -n $NS -o yaml        # status: conditions, endpoints, sessions
   curl -si -H 'client-id: 42' $PROXY/
   curl -si -H 'client-id: 42' http://127.0.0.1:$REPLICA_PORT/   # the second replica agrees
   curl -s --unix-socket $SOCK http://admin/v1/stats
   curl -s http://127.0.0.1:$METRICS_PORT/metrics | grep ^sticky_
   kubectl delete pod $drain -n $NS --grace-period=0 --force   # finish $drain's termination
   logs: $DEMO/logs/

   make demo-down    # stops exactly the processes this demo started
TXT
