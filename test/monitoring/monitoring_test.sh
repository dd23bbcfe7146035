#!/usr/bin/env bash
# The chart's monitoring bundle against the real thing: Debian's prometheus scraping a running
# sticky-proxy and sticky-operator.
#   1. renders the chart with its ServiceMonitor, PrometheusRule and dashboard (helm template, so
#      what ships is what is checked) and extracts the rules into a plain rules file:
#      `promtool check rules` must pass;
#   2. starts the stack on loopback as the operator tests and the demo do: etcd + kube-apiserver
#      (test/env/kube-apiserver.sh), the StickyRoute CRD, redis-server (the shared table),
#      sticky-proxy with its admin socket and metrics port, sticky-operator (leader election,
#      metrics port) sharing the socket, two sticky-test-backend processes registered as Ready
#      pods, and StickyRoutes: one with both pods, one with a short ttl, one with no pod;
#   3. sends traffic that makes every family count something: sessions placed, evicted (by
#      capacity and by the admin API), expired and moved (a pod deleted), 503s with no endpoint,
#      404s with no route, a config the proxy refuses;
#   4. starts prometheus on 127.0.0.1 (own port and data dir) scraping both at 1s with the labels
#      Prometheus Operator gives the rendered ServiceMonitor's targets (job, namespace, pod,
#      endpoint; honorLabels as rendered), waits for the scrapes, and queries every alert
#      expression (as is, without its thresholds, and each metric selector in it) and every
#      dashboard panel target and variable through the HTTP API (check_queries.py): each must
#      parse and return series.
#
# Environment (ctest sets the binaries):
#   HELM                 helm binary (default: test/env/helm.sh ensure)
#   STICKY_PROXY_BIN, STICKY_OPERATOR_BIN, STICKY_BACKEND_BIN   the built binaries
#   STICKY_MONITORING_KEEP=1   keep the work directory (logs, prometheus.yml, data) on exit
# Exits non-zero with the failed checks listed.
set -uo pipefail

readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly CHECKS_NAME=monitoring_test
# shellcheck source=test/env/checks.sh
. "$ROOT/test/env/checks.sh" # step, fail, finish
readonly CHART="$ROOT/charts/kube-sticky"
readonly CHECK="$ROOT/test/monitoring/check_queries.py"
readonly RELEASE=sticky RELEASE_NS=sticky-system ROUTE_NS=demo
# The pod name the scraped proxy and operator stand for (the `pod` target label).
readonly POD=sticky-kube-sticky-0

WORK=$(mktemp -d "${TMPDIR:-/tmp}/monitoring-test.XXXXXX")
PIDS=()
KUBE_STARTED=""

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  [[ -n $KUBE_STARTED ]] && "$ROOT/test/env/kube-apiserver.sh" stop "$WORK/kube" >/dev/null 2>&1
  if [[ ${STICKY_MONITORING_KEEP:-} == 1 ]]; then
    echo "kept $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

# abort MESSAGE [LOG]: a step the rest depends on failed; shows the end of LOG.
abort() {
  fail "$1"
  [[ -n ${2:-} && -f $2 ]] && tail -n 20 "$2" | sed 's/^/    /' >&2
  finish
}
# wait_for SECONDS DESCRIPTION COMMAND...: retries COMMAND every 0.2s.
wait_for() {
  local secs=$1 what=$2
  shift 2
  for _ in $(seq $((secs * 5))); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  fail "timed out after ${secs}s waiting for $what"
  return 1
}
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# start NAME BINARY ARGS...: runs BINARY in the background, its output in $WORK/NAME.log.
start() {
  local name=$1
  shift
  "$@" >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
}
# log_match FILE REGEX: the first capture group of the first line of FILE matching REGEX.
log_match() {
  local line
  line=$(grep -m1 -E "$2" "$1" 2>/dev/null) || return 1
  [[ $line =~ $2 ]] && echo "${BASH_REMATCH[1]}"
}

for tool in python3 kubectl prometheus promtool redis-server curl; do
  command -v "$tool" >/dev/null ||
    { echo "monitoring_test: $tool is missing; run scripts/install-deps.sh" >&2; exit 1; }
done
for bin in STICKY_PROXY_BIN STICKY_OPERATOR_BIN STICKY_BACKEND_BIN; do
  [[ -x ${!bin:-} ]] || { echo "monitoring_test: set $bin to a built binary (ctest does)" >&2; exit 1; }
done
if [[ -z ${HELM:-} ]]; then
  HELM=$("$ROOT/test/env/helm.sh" ensure) ||
    { echo "monitoring_test: cannot get helm (test/env/helm.sh ensure failed)" >&2; exit 1; }
fi

# ----------------------------------------------------------------------------------------------
step "1. the chart's PrometheusRule, dashboard and ServiceMonitor, rendered; promtool check rules"
# A shared table, so that its alert is rendered too.
"$HELM" template "$RELEASE" "$CHART" -n "$RELEASE_NS" --set metrics.serviceMonitor.enabled=true \
  --set metrics.prometheusRule.enabled=true --set metrics.dashboard.enabled=true \
  --set sharedTable.redis.address=redis:6379 >"$WORK/rendered.yaml" 2>"$WORK/helm.log" ||
  abort "helm template with the monitoring bundle" "$WORK/helm.log"
"$CHECK" extract "$WORK/rendered.yaml" "$WORK" 2>"$WORK/extract.log" ||
  abort "extracting the rules, dashboard and ServiceMonitor from the rendering" "$WORK/extract.log"
if promtool check rules "$WORK/rules.yaml" >"$WORK/promtool.log" 2>&1; then
  echo "  ok: promtool check rules: $(grep -o '[0-9]* rules found' "$WORK/promtool.log")"
else
  sed 's/^/    /' "$WORK/promtool.log" >&2
  fail "promtool check rules of the chart's PrometheusRule"
fi
JOB=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["service"])' "$WORK/scrape.json")

# ----------------------------------------------------------------------------------------------
step "2. the stack: kube-apiserver, Redis, sticky-proxy, sticky-operator, two Ready pods"
STICKY_KUBE_OWNER_PID=$$ "$ROOT/test/env/kube-apiserver.sh" start "$WORK/kube" >"$WORK/kube.log" 2>&1 ||
  abort "starting etcd + kube-apiserver (test/env/kube-apiserver.sh start)" "$WORK/kube.log"
KUBE_STARTED=1
export KUBECONFIG="$WORK/kube/kubeconfig"
kc=(kubectl --request-timeout=30s)
"${kc[@]}" apply -f "$ROOT/crds/stickyroutes.kubesticky.io.yaml" >/dev/null &&
  "${kc[@]}" wait --for condition=established --timeout=60s crd/stickyroutes.kubesticky.io >/dev/null ||
  abort "installing the StickyRoute CRD"
"${kc[@]}" create namespace "$ROUTE_NS" >/dev/null && "${kc[@]}" create namespace "$RELEASE_NS" >/dev/null ||
  abort "creating namespaces"

redis_port=$(free_port)
start redis redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$WORK"
wait_for 10 "redis-server" redis-cli -p "$redis_port" ping || abort "redis-server" "$WORK/redis.log"

sock="$WORK/admin.sock"
start proxy "$STICKY_PROXY_BIN" --listen 127.0.0.1:0 --admin-socket "$sock" \
  --metrics-listen 127.0.0.1:0 --workers 1 --redis-address "127.0.0.1:$redis_port"
wait_for 10 "sticky-proxy's start line" grep -q 'metrics on 127.0.0.1:' "$WORK/proxy.log" ||
  abort "sticky-proxy did not start" "$WORK/proxy.log"
proxy_port=$(log_match "$WORK/proxy.log" 'listening on 127\.0\.0\.1:([0-9]+)')
proxy_metrics=$(log_match "$WORK/proxy.log" 'metrics on 127\.0\.0\.1:([0-9]+)')

start operator "$STICKY_OPERATOR_BIN" --kubeconfig "$KUBECONFIG" --namespaces "$ROUTE_NS" \
  --admin-socket "$sock" --status-interval 1s --metrics-listen 127.0.0.1:0 --leader-elect \
  --lease-namespace "$RELEASE_NS" --lease-name sticky-kube-sticky-operator --identity "$POD"
wait_for 30 "the operator's first config push" curl -sf --unix-socket "$sock" http://admin/readyz ||
  abort "sticky-operator did not push a config" "$WORK/operator.log"
operator_metrics=$(log_match "$WORK/operator.log" 'metrics_port[=":]+([0-9]+)')
[[ -n $proxy_port && -n $proxy_metrics && -n $operator_metrics ]] ||
  abort "ports not found in the logs (proxy $proxy_port, metrics $proxy_metrics, operator $operator_metrics)" "$WORK/operator.log"
echo "  ok: proxy on 127.0.0.1:$proxy_port (metrics $proxy_metrics), operator metrics $operator_metrics, redis $redis_port"

for pod in chat-0 chat-1; do
  start "$pod" "$STICKY_BACKEND_BIN" --listen 127.0.0.1:0 --name "$pod"
  wait_for 10 "backend $pod" grep -q '^listening on' "$WORK/$pod.log" || abort "backend $pod" "$WORK/$pod.log"
  port=$(log_match "$WORK/$pod.log" '^listening on 127\.0\.0\.1:([0-9]+)')
  "$ROOT/test/env/ready-pod.sh" "$WORK/kube/env" "$ROUTE_NS" "$pod" 127.0.0.1 "$port" app=chat ||
    abort "registering pod $pod"
done
# chat: both pods, room for 20 sessions; short: the same pods, sessions expire after 1s; empty:
# no pod (503).
"${kc[@]}" -n "$ROUTE_NS" apply -f - >/dev/null <<'YAML' || abort "applying the StickyRoutes"
apiVersion: kubesticky.io/v1alpha1
kind: StickyRoute
metadata: {name: chat}
spec: {selector: {matchLabels: {app: chat}}, port: http, header: client-id, ttl: 30m,
       maxSessions: 20, match: {hosts: [chat.test]}}
---
apiVersion: kubesticky.io/v1alpha1
kind: StickyRoute
metadata: {name: short}
spec: {selector: {matchLabels: {app: chat}}, port: http, header: client-id, ttl: 1s,
       match: {hosts: [short.test]}}
---
apiVersion: kubesticky.io/v1alpha1
kind: StickyRoute
metadata: {name: empty}
spec: {selector: {matchLabels: {app: none}}, port: http, header: client-id, ttl: 30m,
       match: {hosts: [empty.test]}}
YAML
config_has() { curl -s --unix-socket "$sock" http://admin/v1/config | python3 -c '
import json, sys
routes = {r["name"]: r for r in json.load(sys.stdin)["routes"]}
want = sys.argv[1:]
sys.exit(0 if all(len(routes.get(w.split("=")[0], {}).get("endpoints", [])) == int(w.split("=")[1])
                  for w in want) else 1)' "$@"; }
wait_for 30 "the routes in the proxy's config" config_has "$ROUTE_NS/chat=2" "$ROUTE_NS/short=2" \
  "$ROUTE_NS/empty=0" || {
  curl -s --unix-socket "$sock" http://admin/v1/config >&2
  abort "the operator did not configure the routes" "$WORK/operator.log"
}
echo "  ok: routes chat and short with 2 pods, empty with none"

# ----------------------------------------------------------------------------------------------
step "3. prometheus on loopback, scraping both at 1s as the ServiceMonitor says"
prom_port=$(free_port)
"$CHECK" prometheus-config "$WORK/scrape.json" "127.0.0.1:$proxy_metrics" "127.0.0.1:$operator_metrics" \
  "$RELEASE_NS" "$POD" "$WORK/prometheus.yml" || abort "writing prometheus.yml"
promtool check config "$WORK/prometheus.yml" >"$WORK/promtool-config.log" 2>&1 ||
  abort "promtool check config" "$WORK/promtool-config.log"
start prometheus prometheus --config.file "$WORK/prometheus.yml" --storage.tsdb.path "$WORK/prom-data" \
  --web.listen-address "127.0.0.1:$prom_port" --storage.tsdb.retention.time 1h
PROM=http://127.0.0.1:$prom_port
targets_up() {
  curl -sf "$PROM/api/v1/query" --data-urlencode "query=sum(up{job=\"$JOB\"})" |
    grep -q '"value":\[[0-9.]*,"2"\]'
}
wait_for 60 "prometheus to scrape both targets" targets_up ||
  abort "prometheus does not scrape both targets" "$WORK/prometheus.log"
echo "  ok: prometheus on $PROM scrapes the proxy and the operator (job $JOB)"

# ----------------------------------------------------------------------------------------------
step "4. traffic"
request() { # host key -> status
  curl -s -o /dev/null -w '%{http_code}' -H "Host: $1" ${2:+-H "client-id: $2"} \
    "http://127.0.0.1:$proxy_port/hello"
}
statuses=""
for _ in 1 2; do
  for i in $(seq 1 25); do statuses+=" $(request chat.test "key-$i")"; done
done
for i in 1 2 3; do statuses+=" $(request short.test "s-$i")"; done
for i in 1 2 3; do statuses+=" $(request empty.test "e-$i")"; done
for i in 1 2; do statuses+=" $(request nothing.test)"; done
for code in 200 503 404; do
  [[ $statuses == *" $code"* ]] && echo "  ok: some requests answered $code" ||
    fail "no request answered $code (statuses:$statuses)"
done
# An eviction through the admin API, and a config the proxy refuses.
curl -s --unix-socket "$sock" -X DELETE "http://admin/v1/sessions?route=$ROUTE_NS/chat&key=key-25" \
  >"$WORK/evict.out"
grep -q '"evicted":1' "$WORK/evict.out" && echo "  ok: one session evicted through the admin API" ||
  fail "admin eviction: $(cat "$WORK/evict.out")"
code=$(curl -s -o "$WORK/reject.out" -w '%{http_code}' --unix-socket "$sock" -X PUT \
  -H 'Content-Type: application/json' --data '{"version": 1, "routes": [{"name": "bad"}]}' \
  http://admin/v1/config)
[[ $code == 4* ]] && echo "  ok: a bad config refused ($code)" || fail "a bad config answered $code"
# A pod goes away: its sessions move to the other on their next request.
"${kc[@]}" -n "$ROUTE_NS" delete pod chat-1 --grace-period=0 --force >/dev/null 2>&1
wait_for 30 "chat-1 to leave the proxy's config" config_has "$ROUTE_NS/chat=1" ||
  abort "the operator did not remove chat-1" "$WORK/operator.log"
moved=0
for i in $(seq 1 24); do
  curl -s -D "$WORK/headers" -o /dev/null -H "Host: chat.test" -H "client-id: key-$i" \
    "http://127.0.0.1:$proxy_port/hello"
  grep -qi '^x-sticky-session-moved:' "$WORK/headers" && moved=$((moved + 1))
done
((moved > 0)) && echo "  ok: $moved sessions moved off chat-1" || fail "no session moved off chat-1"

# ----------------------------------------------------------------------------------------------
step "5. every alert and dashboard expression parses and returns series"
# Scrapes after the traffic: rate() and increase() need two samples of each counter.
sleep 4
"$CHECK" query "$PROM" "$WORK/rules.yaml" "$WORK/dashboard.json" "$JOB" >"$WORK/queries.log" 2>&1
rc=$?
sed 's/^/  /' "$WORK/queries.log"
((rc == 0)) || fail "some alert or dashboard expressions do not parse or return no series (above)"
finish
