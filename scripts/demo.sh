#!/usr/bin/env bash
# `make demo`: the whole stack on this machine, narrated. `make demo-down` stops it.
#   real etcd + kube-apiserver (test/env/kube-apiserver.sh), the CRD, sticky-operator and
#   sticky-proxy sharing an admin socket (as in the pod), three sticky-test-backend processes on
#   127.0.0.11-13 registered as Ready pods, and a sample StickyRoute.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD_DIR:-build/dev}
DEMO=$ROOT/.demo
PROXY_PORT=${DEMO_PROXY_PORT:-18080}
METRICS_PORT=${DEMO_METRICS_PORT:-19090}
NS=demo

bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
say() { printf '   %s\n' "$*"; }
run() { printf '   $ %s\n' "$*"; "$@" 2>&1 | sed 's/^/     /'; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

down() {
  if [ -d "$DEMO/pids" ]; then
    for f in "$DEMO"/pids/*.pid; do
      [ -f "$f" ] || continue
      pid=$(cat "$f")
      kill "$pid" 2>/dev/null && say "stopped $(basename "$f" .pid) (pid $pid)" || true
      rm -f "$f"
    done
  fi
  if [ -f "$DEMO/kube/env" ]; then test/env/kube-apiserver.sh stop "$DEMO/kube" || true; fi
  rm -rf "$DEMO"
}

if [ "${1:-}" = down ]; then down; exit 0; fi

[ -x "$BUILD/proxy/sticky-proxy" ] || die "binaries missing in $BUILD: run 'make build' first"
[ -d "$DEMO" ] && { say "an earlier demo is still running; stopping it first"; down; }
mkdir -p "$DEMO/pids" "$DEMO/logs"

start_bg() {  # name, command...
  local name=$1; shift
  "$@" >"$DEMO/logs/$name.log" 2>&1 &
  echo $! >"$DEMO/pids/$name.pid"
}

wait_until() {  # seconds, description, command...
  local secs=$1 what=$2; shift 2
  for _ in $(seq $((secs * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  die "timed out after ${secs}s waiting for $what (logs in $DEMO/logs)"
}

bold "Starting a real etcd + kube-apiserver on loopback"
test/env/kube-apiserver.sh ensure >/dev/null
test/env/kube-apiserver.sh start "$DEMO/kube" >"$DEMO/logs/kube-env.log" 2>&1 ||
  die "the API server did not start; see $DEMO/logs/kube-env.log"
export KUBECONFIG=$DEMO/kube/kubeconfig
k() { kubectl --kubeconfig "$KUBECONFIG" "$@"; }
say "kubeconfig: $KUBECONFIG"

bold "Installing the StickyRoute CRD"
k apply -f crds/stickyroutes.kubesticky.io.yaml >/dev/null
wait_until 30 "the CRD to be established" \
  k wait --for condition=established --timeout=1s crd/stickyroutes.kubesticky.io
say "customresourcedefinition.apiextensions.k8s.io/stickyroutes.kubesticky.io established"

bold "Starting sticky-proxy and sticky-operator (sharing $DEMO/admin.sock, as in the pod)"
start_bg proxy "$BUILD/proxy/sticky-proxy" --listen 127.0.0.1:$PROXY_PORT \
  --admin-socket "$DEMO/admin.sock" --metrics-listen 127.0.0.1:$METRICS_PORT --workers 2
wait_until 10 "the proxy's admin socket" test -S "$DEMO/admin.sock"
start_bg operator "$BUILD/operator/sticky-operator" --kubeconfig "$KUBECONFIG" \
  --namespaces $NS --admin-socket "$DEMO/admin.sock"
say "proxy on http://127.0.0.1:$PROXY_PORT, metrics on http://127.0.0.1:$METRICS_PORT/metrics"

bold "Three backends on 127.0.0.11-13, registered as Ready pods chat-0..2"
k create namespace $NS >/dev/null
for i in 0 1 2; do
  ip=127.0.0.1$((i + 1))
  start_bg "chat-$i" "$BUILD/test/sticky-test-backend" --listen "$ip:8080" --name "chat-$i"
  k apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: chat-$i, namespace: $NS, labels: {app: chat}}
spec:
  nodeName: demo-node
  containers: [{name: chat, image: demo/chat, ports: [{name: http, containerPort: 8080}]}]
YAML
  k patch pod "chat-$i" -n $NS --subresource=status --type=merge -p \
    "{\"status\":{\"phase\":\"Running\",\"podIP\":\"$ip\",\"podIPs\":[{\"ip\":\"$ip\"}],\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}" >/dev/null
  say "pod chat-$i -> $ip:8080"
done

bold "Applying a StickyRoute"
cat <<YAML | tee "$DEMO/route.yaml" | sed 's/^/     /'
apiVersion: kubesticky.io/v1alpha1
kind: StickyRoute
metadata: {name: chat, namespace: $NS}
spec:
  selector: {matchLabels: {app: chat}}
  port: http
  header: client-id
  ttl: 30m
YAML
k apply -f "$DEMO/route.yaml" >/dev/null
wait_until 30 "the route to become Ready" \
  bash -c "kubectl --kubeconfig '$KUBECONFIG' get sr chat -n $NS -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"
run k get stickyroutes -n $NS

ask() {  # key -> backend name that answered, plus any moved header
  curl -s -D "$DEMO/last-headers" -H "client-id: $1" "http://127.0.0.1:$PROXY_PORT/hello" |
    sed -n 's/.*"backend":"\([^"]*\)".*/\1/p'
}
moved_header() { grep -i '^x-sticky-session-moved:' "$DEMO/last-headers" | tr -d '\r' || true; }

bold "Requests with a client-id header stick to one pod"
declare -A first
for key in alice bob carol dave erin frank; do
  first[$key]=$(ask $key)
  answers="${first[$key]}"
  for _ in 1 2 3; do answers+=" $(ask $key)"; done
  say "client-id: $key -> $answers"
done
say "a request without the header is balanced, unpinned: $(curl -s http://127.0.0.1:$PROXY_PORT/ | sed -n 's/.*"backend":"\([^"]*\)".*/\1/p')"

victim=${first[alice]}
bold "Deleting pod $victim (alice's pod): its sessions move, and both sides are told"
run k delete pod "$victim" -n $NS --grace-period=0 --force
wait_until 15 "the operator to remove $victim" \
  bash -c "! curl -s --unix-socket '$DEMO/admin.sock' http://admin/v1/config | grep -q '\"$victim\"'"
now=$(ask alice)
say "client-id: alice -> $now   ($(moved_header))"
say "the request to $now carried X-Sticky-Moved-From: $victim; the client got the header above"
say "client-id: alice -> $(ask alice)   (sticky again, no header)"

survivor=${first[bob]}
[ "$survivor" = "$victim" ] && survivor=$(ask bob)
bold "Pod $survivor starts terminating: it drains (old sessions stay, no new ones)"
run k delete pod "$survivor" -n $NS --wait=false
wait_until 15 "$survivor to be draining" \
  bash -c "curl -s --unix-socket '$DEMO/admin.sock' http://admin/v1/config | grep -q Draining"
for key in alice bob carol dave erin frank; do say "client-id: $key -> $(ask $key)"; done
new=""
for key in gina hank ivan judy; do new+=" $key->$(ask $key)"; done
say "new keys:$new  (none on $survivor)"
run k get stickyroutes -n $NS

bold "The stick table, from the admin socket"
run curl -s --unix-socket "$DEMO/admin.sock" "http://admin/v1/sessions?route=$NS/chat&limit=20"

bold "The stack is still running"
cat <<TXT
   export KUBECONFIG=$KUBECONFIG
   kubectl get stickyroutes -n $NS -o yaml
   curl -H 'client-id: 42' http://127.0.0.1:$PROXY_PORT/
   curl --unix-socket $DEMO/admin.sock http://admin/v1/stats
   curl http://127.0.0.1:$METRICS_PORT/metrics
   logs: $DEMO/logs/
   make demo-down    # stops exactly the processes this demo started
TXT
