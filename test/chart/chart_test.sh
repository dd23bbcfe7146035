#!/usr/bin/env bash
# Checks the Helm chart charts/kube-sticky:
#   1. its CRD copy is exactly what scripts/sync-chart-crd.sh makes of crds/ (text and content);
#   2. `helm lint --strict` and `helm template` with the default values and with each
#      test/chart/values-*.yaml (namespaced, shared-redis, bundled-redis, parity, monitoring,
#      podmonitor), and assertions on what they render (check_rendered.py), including the CRD's
#      category and -o wide columns, the metrics Service, ServiceMonitor, PodMonitor,
#      PrometheusRule and dashboard ConfigMap;
#   3. values.schema.json and the template checks reject bad values;
#   4. the `helm test` hook's script, run with busybox against a stand-in server for every kind
#      of answer, and against a real sticky-proxy when STICKY_PROXY_BIN names one (which also
#      checks that the proxy's metrics port answers /healthz and /readyz, as the probes assume);
#      the bundled Redis's start script and readiness probe, run against the local redis-server;
#   5. against a real kube-apiserver: `kubectl apply --dry-run=server` of every rendering (the
#      ServiceMonitor, PodMonitor and PrometheusRule against minimal copies of the Prometheus
#      Operator's CRDs, test/chart/prometheus-operator-crds.yaml, installed for the test), the
#      NOTES of each (`helm install --dry-run`), `helm install`/`helm uninstall` of the default
#      and namespaced values, checking crds.keep (kept, or deleted) and what `kubectl get` shows
#      of a StickyRoute (category, -o wide columns), and of the bundled Redis, checking that
#      `helm upgrade` keeps its generated password.
#
# Environment:
#   HELM                 helm binary (default: test/env/helm.sh ensure)
#   STICKY_PROXY_BIN     a built sticky-proxy for step 4 (ctest sets it); skipped when unset
#   STICKY_KUBE_ENV_DIR  a running cluster's dir (with kubeconfig) for step 5; the test creates
#                        and deletes namespaces, releases and the StickyRoute CRD there. Unset:
#                        the test starts its own with test/env/kube-apiserver.sh and stops it.
#   STICKY_CHART_SKIP_CLUSTER=1  skip step 5 (says so in the output)
# Exits non-zero with the failed checks listed.
set -uo pipefail

readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly CHECKS_NAME=chart_test
# shellcheck source=test/env/checks.sh
. "$ROOT/test/env/checks.sh" # step, fail, finish
readonly CHART="$ROOT/charts/kube-sticky"
readonly NS_VALUES="$ROOT/test/chart/values-namespaced.yaml"
readonly SHARED_VALUES="$ROOT/test/chart/values-shared-redis.yaml"
readonly BUNDLED_VALUES="$ROOT/test/chart/values-bundled-redis.yaml"
readonly PARITY_VALUES="$ROOT/test/chart/values-parity.yaml"
readonly MONITORING_CRDS="$ROOT/test/chart/prometheus-operator-crds.yaml"
readonly CRD_SOURCE="$ROOT/crds/stickyroutes.kubesticky.io.yaml"
readonly CRD_NAME=stickyroutes.kubesticky.io
readonly CHECK="$ROOT/test/chart/check_rendered.py"
readonly RELEASE_NS=sticky-system

WORK=$(mktemp -d "${TMPDIR:-/tmp}/chart-test.XXXXXX")
STARTED_CLUSTER=""
SERVER_PIDS=()
PROXY_PID=""
REDIS_PID=""
MONITORING_CRDS_INSTALLED=""

cleanup() {
  for pid in "${SERVER_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  [[ -n $PROXY_PID ]] && kill "$PROXY_PID" 2>/dev/null
  [[ -n $REDIS_PID ]] && kill "$REDIS_PID" 2>/dev/null
  # A cluster the test did not start is left as it was.
  [[ -n $MONITORING_CRDS_INSTALLED && -z $STARTED_CLUSTER ]] &&
    kubectl --request-timeout=30s delete --ignore-not-found -f "$MONITORING_CRDS" >/dev/null 2>&1
  [[ -n $STARTED_CLUSTER ]] && "$ROOT/test/env/kube-apiserver.sh" stop "$STARTED_CLUSTER" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT

# run DESCRIPTION CMD...: runs CMD with its output in $WORK/out; records a failure if it fails.
run() {
  local what=$1
  shift
  if ! "$@" >"$WORK/out" 2>&1; then
    sed 's/^/    /' "$WORK/out" >&2
    fail "$what"
    return 1
  fi
  echo "  ok: $what"
}

for tool in python3 kubectl busybox; do
  command -v "$tool" >/dev/null ||
    { echo "chart_test: $tool is missing; run scripts/install-deps.sh" >&2; exit 1; }
done
python3 -c 'import yaml' 2>/dev/null ||
  { echo "chart_test: python3-yaml is missing; run scripts/install-deps.sh" >&2; exit 1; }
if [[ -z ${HELM:-} ]]; then
  HELM=$("$ROOT/test/env/helm.sh" ensure) ||
    { echo "chart_test: cannot get helm (test/env/helm.sh ensure failed)" >&2; exit 1; }
fi
export HELM

# ----------------------------------------------------------------------------------------------
step "1. the chart's CRD is the copy of crds/ that scripts/sync-chart-crd.sh makes"
run "chart CRD copy is up to date (scripts/sync-chart-crd.sh --check)" "$ROOT/scripts/sync-chart-crd.sh" --check
for keep in true false; do
  if run "helm template of the CRD (crds.keep=$keep)" "$HELM" template t "$CHART" \
    --set crds.keep=$keep --show-only templates/crds/stickyroutes.yaml; then
    cp "$WORK/out" "$WORK/crd-$keep.yaml"
    run "rendered CRD (crds.keep=$keep) has the content of crds/$(basename "$CRD_SOURCE")" \
      "$CHECK" crd-copy "$WORK/crd-$keep.yaml" "$CRD_SOURCE" "$([[ $keep == true ]] && echo keep || echo nokeep)"
  fi
done
if "$HELM" template t "$CHART" --set crds.install=false | grep -q '^kind: CustomResourceDefinition'; then
  fail "crds.install=false still renders the CRD"
else
  echo "  ok: crds.install=false renders no CRD"
fi

# ----------------------------------------------------------------------------------------------
step "2. helm lint and helm template, default values and test/chart/values-*.yaml"
run "helm lint --strict (default values)" "$HELM" lint --strict "$CHART"
run "helm lint --strict (values-namespaced.yaml)" "$HELM" lint --strict "$CHART" -f "$NS_VALUES"
if run "helm template (default values)" "$HELM" template sticky "$CHART" -n "$RELEASE_NS"; then
  cp "$WORK/out" "$WORK/default.yaml"
  run "rendered manifests (default values)" "$CHECK" default "$WORK/default.yaml" "$RELEASE_NS"
fi
if run "helm template (values-namespaced.yaml)" "$HELM" template sticky "$CHART" -n "$RELEASE_NS" \
  -f "$NS_VALUES"; then
  cp "$WORK/out" "$WORK/namespaced.yaml"
  run "rendered manifests (values-namespaced.yaml)" "$CHECK" namespaced "$WORK/namespaced.yaml" \
    "$RELEASE_NS"
fi
for variant in shared-redis bundled-redis parity monitoring podmonitor; do
  values="$ROOT/test/chart/values-$variant.yaml"
  run "helm lint --strict (values-$variant.yaml)" "$HELM" lint --strict "$CHART" -f "$values"
  if run "helm template (values-$variant.yaml)" "$HELM" template sticky "$CHART" -n "$RELEASE_NS" \
    -f "$values"; then
    cp "$WORK/out" "$WORK/$variant.yaml"
    run "rendered manifests (values-$variant.yaml)" "$CHECK" "$variant" "$WORK/$variant.yaml" \
      "$RELEASE_NS"
  fi
done

# ----------------------------------------------------------------------------------------------
step "3. bad values are rejected with a message naming the value"
# Each case: the --set arguments, then a piece of the expected error message.
bad_values=(
  "service.type=Ingress|service.type"
  "replicaCount=0|replicaCount"
  "operator.logLevel=verbose|operator.logLevel"
  "operator.namespaces[0]=Not_A_Namespace|operator.namespaces"
  "image.pullPolicy=Sometimes|image.pullPolicy"
  "proxy.port=70000|proxy.port"
  "podDisruptionBudget.minAvailable=half|minAvailable"
  "unknownValue=1|unknownValue"
  "proxy.metrics.port=8080|must differ from proxy.port"
  "service.nodePort=30080|service.type is ClusterIP"
  "serviceAccount.create=false|serviceAccount.name must name"
  "proxy.shutdownDelay=soon|proxy.shutdownDelay"
  "proxy.shutdownDelay=15s|set it to at least 46"
  "proxy.shutdownDelay=1m30s,terminationGracePeriodSeconds=120|set it to at least 121"
  "sharedTable.redis.address=redis|sharedTable.redis.address"
  "sharedTable.redis.address=redis:6379:1|sharedTable.redis.address"
  "sharedTable.redis.sentinels[0]=sentinel-0|sharedTable.redis.sentinels"
  "sharedTable.redis.address=r:6379,sharedTable.redis.sentinels[0]=s:26379|address and sharedTable.redis.sentinels are both set"
  "sharedTable.redis.sentinels[0]=s:26379|without sharedTable.redis.masterName"
  "sharedTable.redis.masterName=mymaster|without sharedTable.redis.sentinels"
  "sharedTable.bundledRedis.enabled=true,sharedTable.redis.address=r:6379|bundledRedis.enabled points the proxies at the chart's own Redis"
  "sharedTable.bundledRedis.enabled=true,sharedTable.redis.sentinels[0]=s:26379,sharedTable.redis.masterName=m|bundledRedis.enabled points the proxies at the chart's own Redis"
  "sharedTable.bundledRedis.enabled=true,sharedTable.redis.existingSecret=s|existingSecret and username must be empty"
  "sharedTable.redis.existingSecret=s|but no Redis is"
  "sharedTable.redis.commandTimeout=fast|sharedTable.redis.commandTimeout"
  "sharedTable.redis.address=r:6380,sharedTable.redis.tls.enabled=yes|sharedTable.redis.tls.enabled"
  "sharedTable.redis.address=r:6380,sharedTable.redis.tls.enabled=true,sharedTable.redis.tls.existingSecret=Bad_Name|sharedTable.redis.tls.existingSecret"
  "sharedTable.redis.address=r:6380,sharedTable.redis.tls.enabled=true,sharedTable.redis.tls.serverName=a b|sharedTable.redis.tls.serverName"
  "sharedTable.redis.address=r:6380,sharedTable.redis.tls.enabled=true,sharedTable.redis.tls.caFile=/ca.crt|Additional property caFile is not allowed"
  "sharedTable.redis.address=r:6380,sharedTable.redis.tls.existingSecret=rtls|but sharedTable.redis.tls.enabled is false"
  "sharedTable.redis.address=r:6380,sharedTable.redis.tls.insecureSkipVerify=true|but sharedTable.redis.tls.enabled is false"
  "sharedTable.bundledRedis.enabled=true,sharedTable.redis.tls.enabled=true|the bundled Redis serves plain TCP only"
  "sharedTable.redis.tls.enabled=true|sharedTable.redis.tls.enabled is set but no Redis is"
  "sharedTable.redis.address=r:6380,sharedTable.redis.tls.enabled=true,sharedTable.redis.tls.existingSecret=rtls,sharedTable.redis.tls.certKey=tls.crt|certKey is set without keyKey"
  "sharedTable.redis.address=r:6380,sharedTable.redis.tls.enabled=true,sharedTable.redis.tls.existingSecret=rtls,sharedTable.redis.tls.keyKey=tls.key|keyKey is set without certKey"
  "sharedTable.redis.address=r:6380,sharedTable.redis.tls.enabled=true,sharedTable.redis.tls.certKey=tls.crt,sharedTable.redis.tls.keyKey=tls.key|existingSecret, which is empty"
  "sharedTable.redis.address=r:6380,sharedTable.redis.tls.enabled=true,sharedTable.redis.tls.existingSecret=rtls,sharedTable.redis.tls.caKey=|nothing of it would be used"
  "sharedTable.redis.address=r:6380,sharedTable.redis.tls.enabled=true,sharedTable.redis.tls.existingSecret=rtls,sharedTable.redis.tls.insecureSkipVerify=true|the CA in sharedTable.redis.tls.caKey would be ignored"
  "extraVolumes[0].name=redis-tls,extraVolumes[0].emptyDir.medium=Memory|a name the chart uses for its own volumes"
  "sharedTable.redis.keyPrefix=|sharedTable.redis.keyPrefix"
  "sharedTable.bundledRedis.maxMemory=lots|sharedTable.bundledRedis.maxMemory"
  "proxy.extraArgs=--log-format=json|proxy.extraArgs: Invalid type. Expected: array"
  "operator.extraArgs=--log-format=json|operator.extraArgs: Invalid type. Expected: array"
  "operator.metrics.port=0|operator.metrics.port"
  "operator.metrics.enabled=yes|operator.metrics.enabled"
  "proxy.extraEnv[0].name=TZ,proxy.extraEnv[0].val=UTC|Additional property val is not allowed"
  "proxy.extraEnv[0].name=PORT,proxy.extraEnv[0].value=80|proxy.extraEnv.0.value: Invalid type. Expected: string"
  "operator.extraEnv[0].value=x|operator.extraEnv.0: name is required"
  "proxy.extraEnv[0].name=A,proxy.extraEnv[0].value=b,proxy.extraEnv[0].valueFrom.fieldRef.fieldPath=x|proxy.extraEnv sets A with both value and valueFrom"
  "operator.extraEnv[0].name=POD_NAME,operator.extraEnv[0].value=x|operator.extraEnv sets POD_NAME"
  "proxy.extraVolumeMounts[0].name=ca|proxy.extraVolumeMounts.0: mountPath is required"
  "proxy.extraVolumeMounts[0].name=ca,proxy.extraVolumeMounts[0].mountPath=/ca|proxy.extraVolumeMounts mounts the volume \"ca\", which extraVolumes does not define"
  "extraVolumes[0].name=admin-socket,extraVolumes[0].emptyDir.medium=Memory|a name the chart uses for its own volumes"
  "extraVolumes[0].name=Not_A_Name|extraVolumes.0.name"
  "extraVolumes=x|extraVolumes: Invalid type. Expected: array"
  "topologySpreadConstraints[0].maxSkew=1,topologySpreadConstraints[0].whenUnsatisfiable=ScheduleAnyway|topologySpreadConstraints.0: topologyKey is required"
  "topologySpreadConstraints[0].maxSkew=0,topologySpreadConstraints[0].topologyKey=zone,topologySpreadConstraints[0].whenUnsatisfiable=ScheduleAnyway|topologySpreadConstraints.0.maxSkew"
  "priorityClassName=High_Priority|priorityClassName"
  "strategy.type=BlueGreen|strategy.type"
  "strategy.type=Recreate,strategy.rollingUpdate.maxSurge=1|strategy.rollingUpdate is set but strategy.type is Recreate"
  "strategy.rollingUpdate.maxSurge=lots|strategy.rollingUpdate.maxSurge"
  "revisionHistoryLimit=-1|revisionHistoryLimit"
  "revisionHistoryLimit=ten|revisionHistoryLimit"
  "networkPolicy.enabled=yes|networkPolicy.enabled"
  "networkPolicy.ingressFrom[0].podSelectr.matchLabels.app=x|Additional property podSelectr is not allowed"
  "networkPolicy.metricsFrom=everyone|networkPolicy.metricsFrom"
  "networkPolicy.egress[0].ports[0].protocol=ICMP|networkPolicy.egress.0.ports.0.protocol"
  "service.externalTrafficPolicy=Nearest|service.externalTrafficPolicy"
  "service.externalTrafficPolicy=Local|service.externalTrafficPolicy is set but service.type is ClusterIP"
  "service.type=NodePort,service.loadBalancerSourceRanges[0]=10.0.0.0/8|service.loadBalancerSourceRanges is set but service.type is NodePort"
  "service.type=LoadBalancer,service.loadBalancerSourceRanges[0]=everyone|service.loadBalancerSourceRanges.0"
  "podDisruptionBudget.maxUnavailable=-1|podDisruptionBudget.maxUnavailable"
  "podDisruptionBudget.minAvailable=1,podDisruptionBudget.maxUnavailable=1|podDisruptionBudget.minAvailable (1) and maxUnavailable (1) are both set, but a PodDisruptionBudget takes one of them: set the other to null."
  "metrics.serviceMonitor.enabled=yes|metrics.serviceMonitor.enabled"
  "metrics.serviceMonitor.interval=often|metrics.serviceMonitor.interval"
  "metrics.podMonitor.scrapeTimeout=5|metrics.podMonitor.scrapeTimeout"
  "metrics.serviceMonitor.namespace=Monitoring|metrics.serviceMonitor.namespace"
  "metrics.serviceMonitor.additionalLabels.release=1|metrics.serviceMonitor.additionalLabels.release"
  "metrics.podMonitor.relabelings=x|metrics.podMonitor.relabelings: Invalid type. Expected: array"
  "metrics.serviceMonitor.enabled=true,metrics.podMonitor.enabled=true|Prometheus would scrape every pod twice"
  "metrics.podMonitor.enabled=true,proxy.metrics.enabled=false,operator.metrics.enabled=false|there is nothing to scrape"
  "metrics.prometheusRule.enabled=true,operator.metrics.enabled=false|metrics.prometheusRule.enabled needs proxy.metrics.enabled and operator.metrics.enabled"
  "metrics.prometheusRule.enabled=true,proxy.metrics.enabled=false|metrics.prometheusRule.enabled needs proxy.metrics.enabled and operator.metrics.enabled"
  "metrics.prometheusRule.thresholds.sessionImbalanceRatio=1|metrics.prometheusRule.thresholds.sessionImbalanceRatio"
  "metrics.prometheusRule.thresholds.reconcileErrorRatio=2|metrics.prometheusRule.thresholds.reconcileErrorRatio"
  "metrics.prometheusRule.thresholds.sessionMovesPerSecond=-1|metrics.prometheusRule.thresholds.sessionMovesPerSecond"
  "metrics.prometheusRule.thresholds.sessionImbalanceMinSessions=many|metrics.prometheusRule.thresholds.sessionImbalanceMinSessions"
  "metrics.prometheusRule.severity=page|Additional property severity is not allowed"
  "metrics.dashboard.label=Not A Label|metrics.dashboard.label"
  "metrics.dashboard.labelValue=no way|metrics.dashboard.labelValue"
  "metrics.dashboard.enable=true|Additional property enable is not allowed"
  "metrics.service.type=LoadBalancer|Additional property type is not allowed"
)
for case in "${bad_values[@]}"; do
  set_arg=${case%%|*}
  expected=${case#*|}
  if "$HELM" template t "$CHART" --set "$set_arg" >"$WORK/out" 2>&1; then
    fail "helm template accepted --set $set_arg"
  elif ! grep -qF -- "$expected" "$WORK/out"; then
    sed 's/^/    /' "$WORK/out" >&2
    fail "helm template rejected --set $set_arg without naming '$expected'"
  else
    echo "  ok: --set $set_arg rejected"
  fi
done

# ----------------------------------------------------------------------------------------------
step "4. the helm test hook's script"
# hook_command VALUES_ARGS...: writes the test Pod's command (sh -c SCRIPT sh HEADER_LINES...) one
# argument per NUL-terminated record to $WORK/hook.cmd.
hook_command() {
  "$HELM" template t "$CHART" --show-only templates/tests/test-request.yaml "$@" >"$WORK/hook.yaml" &&
    python3 - "$WORK/hook.yaml" >"$WORK/hook.cmd" <<'EOF'
import sys, yaml
pod = next(d for d in yaml.safe_load_all(open(sys.argv[1])) if d)
command = pod["spec"]["containers"][0]["command"]
assert command[:2] == ["sh", "-c"], command
sys.stdout.write("".join(arg + "\0" for arg in command[1:]))
EOF
}
# run_hook EXPECTED_RC PORT PATH METRICS_PORT REQUIRE_ROUTE HOST EXPECTED_OUTPUT: runs the
# extracted script with busybox's sh, nc and friends as the test Pod does, against 127.0.0.1;
# records a failure unless it exits with EXPECTED_RC and prints EXPECTED_OUTPUT (fixed string).
run_hook() {
  local expected=$1 port=$2 path=$3 metrics=$4 require=$5 host=$6 output=$7 rc=0 args=()
  mapfile -d '' args <"$WORK/hook.cmd"
  SERVICE_HOST=127.0.0.1 METRICS_HOST=127.0.0.1 SERVICE_PORT=$port METRICS_PORT=$metrics REQUEST_PATH=$path \
    HOST_HEADER=$host REQUIRE_ROUTE=$require DEADLINE_SECONDS=3 \
    PATH="$WORK/busybox-bin:$PATH" busybox sh "${args[@]}" >"$WORK/hook.out" 2>&1 || rc=$?
  local what="port $port path $path metrics '$metrics' requireRoute $require host $host"
  if [[ $rc != "$expected" ]]; then
    sed 's/^/    /' "$WORK/hook.out" >&2
    fail "hook script exited $rc, expected $expected ($what)"
  elif ! grep -qF -- "$output" "$WORK/hook.out"; then
    sed 's/^/    /' "$WORK/hook.out" >&2
    fail "hook script did not say '$output' ($what)"
  else
    echo "  ok: hook script exits $expected: $output"
  fi
}
# start_server VAR READYZ_STATUS: starts status_server.py and stores its port in VAR.
start_server() {
  local file="$WORK/server-$2.port"
  python3 "$ROOT/test/chart/status_server.py" "$2" >"$file" &
  SERVER_PIDS+=($!)
  for _ in $(seq 50); do [[ -s $file ]] && break; sleep 0.1; done
  printf -v "$1" '%s' "$(cat "$file")"
}
# The script runs busybox applets as the busybox image provides them.
mkdir -p "$WORK/busybox-bin"
for applet in nc sed tr grep date sleep timeout; do
  ln -s "$(command -v busybox)" "$WORK/busybox-bin/$applet"
done

start_server port 200
start_server unready_port 503
if [[ -z $port || -z $unready_port ]]; then
  fail "the stand-in servers did not start"
elif ! hook_command; then
  fail "cannot extract the hook script"
else
  # 2xx passes; the proxy's 404 "no route" passes by default, but not with requireRoute; a 404
  # that is not the proxy's fails.
  run_hook 0 "$port" /ok "$port" false h "PASS: http://127.0.0.1:$port/ok (Host: h) answered 200"
  run_hook 0 "$port" /no-route "" false h "answered the proxy's 404"
  run_hook 1 "$port" /no-route "" true h "did not answer 2xx (test.requireRoute) within 3s; last status '404'"
  run_hook 1 "$port" /other-404 "" false h "within 3s; last status '404'"
  # 503 (no config yet) and no listener fail at the deadline; /readyz must be 200 first.
  run_hook 1 "$port" /not-ready "" false h "within 3s; last status '503'"
  run_hook 1 1 / "" false h "within 3s; last status ''"
  run_hook 1 "$unready_port" /ok "$unready_port" false h \
    "FAIL: http://127.0.0.1:$unready_port/readyz did not answer 200"
  # Without the headers the route does not match.
  run_hook 1 "$port" /need-headers "" true chat.example.com "last status '404'"
  if hook_command --set test.request.headers.client-id=42; then
    run_hook 0 "$port" /need-headers "" true chat.example.com "answered 200"
  else
    fail "cannot extract the hook script (with request headers)"
  fi
fi

# Against a real sticky-proxy: before a config /readyz is not 200 and the hook fails; once a
# config without routes is pushed over the admin socket, /readyz is 200 on the METRICS port (the
# chart's readiness probe) and a request gets the proxy's 404 "no route", which the hook accepts.
if [[ -z ${STICKY_PROXY_BIN:-} ]]; then
  echo "SKIP: the real-proxy part of step 4 (set STICKY_PROXY_BIN to a built sticky-proxy)"
elif [[ ! -x $STICKY_PROXY_BIN ]]; then
  fail "STICKY_PROXY_BIN=$STICKY_PROXY_BIN is not an executable"
elif hook_command; then
  # Every flag the chart passes to sticky-proxy, in any of the renderings, is one it knows.
  "$STICKY_PROXY_BIN" --help >"$WORK/proxy-help.txt" 2>&1
  python3 - "$WORK"/{default,namespaced,shared-redis,bundled-redis,parity,monitoring,podmonitor}.yaml \
    >"$WORK/proxy-flags.txt" <<'EOF'
import sys, yaml
flags = set()
for path in sys.argv[1:]:
    for d in yaml.safe_load_all(open(path)):
        if d and d["kind"] == "Deployment":
            for c in d["spec"]["template"]["spec"]["containers"]:
                if c["name"] == "sticky-proxy":
                    flags.update(a for a in c.get("args", []) if a.startswith("--"))
print("\n".join(sorted(flags)))
EOF
  while read -r flag; do
    if grep -qE -- "(^|[ ,])$flag( |$)" "$WORK/proxy-help.txt"; then
      echo "  ok: sticky-proxy knows $flag"
    else
      fail "the chart passes $flag, which $STICKY_PROXY_BIN --help does not list"
    fi
  done <"$WORK/proxy-flags.txt"
  # Port 0 for both: the proxy picks free ports and names them in its start line (a port picked
  # here and bound later can be taken in between by any of the tests running alongside).
  socket_path="$WORK/admin.sock"
  "$STICKY_PROXY_BIN" --listen "127.0.0.1:0" --admin-socket "$socket_path" \
    --metrics-listen "127.0.0.1:0" --workers 1 >"$WORK/proxy.log" 2>&1 &
  PROXY_PID=$!
  listen_port="" metrics_port="" healthz=""
  for _ in $(seq 100); do
    start_line=$(grep -m1 'listening on' "$WORK/proxy.log" || true)
    if [[ $start_line =~ listening\ on\ 127\.0\.0\.1:([0-9]+).*metrics\ on\ 127\.0\.0\.1:([0-9]+) ]]; then
      listen_port=${BASH_REMATCH[1]} metrics_port=${BASH_REMATCH[2]}
      healthz=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$metrics_port/healthz")
      [[ $healthz == 200 ]] && break
    fi
    kill -0 "$PROXY_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [[ $healthz != 200 ]]; then
    sed 's/^/    /' "$WORK/proxy.log" >&2
    fail "sticky-proxy's metrics listener does not answer GET /healthz with 200 (got '$healthz'); the chart's liveness probe needs it"
  else
    echo "  ok: sticky-proxy answers GET /healthz on the metrics port"
    run_hook 1 "$listen_port" / "$metrics_port" false localhost \
      "FAIL: http://127.0.0.1:$metrics_port/readyz did not answer 200"
    if run "pushing a config without routes over the admin socket" \
      curl -sf --unix-socket "$socket_path" -X PUT -H 'Content-Type: application/json' \
      --data '{"version": 1, "routes": []}' http://admin/v1/config; then
      run_hook 0 "$listen_port" / "$metrics_port" false localhost "answered the proxy's 404"
    fi
  fi
  kill "$PROXY_PID" 2>/dev/null
  wait "$PROXY_PID" 2>/dev/null
  PROXY_PID=""
else
  fail "cannot extract the hook script"
fi

# The bundled Redis's start script (password into a config file, then exec redis-server with the
# chart's options) and its readiness probe, run with busybox sh against the local redis-server.
# Differences from the pod: /data is a directory of $WORK, and a Unix socket replaces port 6379
# (other tests may be using it).
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  fail "redis-server or redis-cli is missing; run scripts/install-deps.sh"
elif [[ ! -s $WORK/bundled-redis.yaml ]]; then
  fail "no rendering of values-bundled-redis.yaml to take the Redis command from"
else
  redis_data="$WORK/redis-data" redis_sock="$WORK/redis.sock"
  mkdir -p "$redis_data"
  python3 - "$WORK/bundled-redis.yaml" "$redis_data" "$redis_sock" "$WORK/redis" <<'EOF'
import sys, yaml
rendered, data, sock, out = sys.argv[1:]
deployment = next(d for d in yaml.safe_load_all(open(rendered))
                  if d and d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-redis"))
c = deployment["spec"]["template"]["spec"]["containers"][0]
command, args = c["command"], c["args"]
assert command[:2] == ["sh", "-c"], command
assert any(m["mountPath"] == "/data" for m in c["volumeMounts"]), c["volumeMounts"]
command[2] = command[2].replace("/data", data)
args = [data if a == "/data" else a for a in args] + ["--port", "0", "--unixsocket", sock]
open(out + ".cmd", "w").write("".join(a + "\0" for a in command[1:] + args))
probe = c["readinessProbe"]["exec"]["command"]
assert probe[:2] == ["sh", "-c"] and "-p 6379" in probe[2], probe
open(out + ".probe", "w").write(probe[2].replace("-p 6379", "-s " + sock))
EOF
  mapfile -d '' redis_cmd <"$WORK/redis.cmd"
  REDIS_PASSWORD=s3cret PATH="$WORK/busybox-bin:$PATH" busybox sh "${redis_cmd[@]}" \
    >"$WORK/redis.log" 2>&1 &
  REDIS_PID=$!
  redis_up=""
  for _ in $(seq 50); do
    [[ $(REDISCLI_AUTH=s3cret redis-cli -s "$redis_sock" ping 2>/dev/null) == PONG ]] &&
      { redis_up=1; break; }
    kill -0 "$REDIS_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -z $redis_up ]]; then
    sed 's/^/    /' "$WORK/redis.log" >&2
    fail "the bundled Redis's start script did not start redis-server"
  else
    echo "  ok: the bundled Redis's start script starts redis-server"
    rcli() { REDISCLI_AUTH=s3cret redis-cli -s "$redis_sock" --raw "$@" 2>&1 | tr '\n' ' '; }
    comm=$(cat "/proc/$REDIS_PID/comm" 2>/dev/null)
    [[ $comm == redis-server ]] && echo "  ok: redis-server replaces the shell (gets SIGTERM)" ||
      fail "the start script's process is '$comm', not redis-server (exec missing?)"
    noauth=$(redis-cli -s "$redis_sock" ping 2>&1)
    [[ $noauth == *NOAUTH* ]] && echo "  ok: Redis refuses commands without the password" ||
      fail "Redis answered '$noauth' without the password"
    for expected in "save  " "appendonly no " "maxmemory 104857600 " \
      "maxmemory-policy allkeys-lru "; do
      got=$(rcli config get "${expected%% *}")
      [[ $got == "$expected" ]] && echo "  ok: Redis config: $expected" ||
        fail "Redis config get ${expected%% *}: '$got', expected '$expected'"
    done
    mode=$(stat -c %a "$redis_data/redis.conf")
    [[ $mode == 600 ]] && echo "  ok: redis.conf (the password) is mode 600" ||
      fail "redis.conf is mode $mode, not 600"
    probe=$(cat "$WORK/redis.probe")
    REDISCLI_AUTH=s3cret busybox sh -c "$probe" &&
      echo "  ok: the readiness probe passes with the password" ||
      fail "the readiness probe fails against a running Redis with the password"
    REDISCLI_AUTH=wrong busybox sh -c "$probe" 2>/dev/null &&
      fail "the readiness probe passes with a wrong password" ||
      echo "  ok: the readiness probe fails with a wrong password"
  fi
  kill "$REDIS_PID" 2>/dev/null
  wait "$REDIS_PID" 2>/dev/null
  REDIS_PID=""
fi

# ----------------------------------------------------------------------------------------------
step "5. against a real kube-apiserver"
if [[ ${STICKY_CHART_SKIP_CLUSTER:-} == 1 ]]; then
  echo "SKIP: step 5 (STICKY_CHART_SKIP_CLUSTER=1)"
  finish
fi
if [[ -n ${STICKY_KUBE_ENV_DIR:-} ]]; then
  kube_dir=$STICKY_KUBE_ENV_DIR
  [[ -f $kube_dir/kubeconfig ]] || { fail "STICKY_KUBE_ENV_DIR=$kube_dir has no kubeconfig"; finish; }
else
  kube_dir="$WORK/kube"
  if ! STICKY_KUBE_OWNER_PID=$$ "$ROOT/test/env/kube-apiserver.sh" start "$kube_dir" >"$WORK/out" 2>&1; then
    sed 's/^/    /' "$WORK/out" >&2
    fail "could not start a kube-apiserver with test/env/kube-apiserver.sh"
    finish
  fi
  STARTED_CLUSTER=$kube_dir
fi
export KUBECONFIG="$kube_dir/kubeconfig"
kc=(kubectl --request-timeout=30s)

for ns in "$RELEASE_NS" shop chat monitoring; do
  "${kc[@]}" get namespace "$ns" >/dev/null 2>&1 || run "creating namespace $ns" "${kc[@]}" create namespace "$ns"
done

# values_of VARIANT: sets `values` to the helm arguments of a rendering variant.
values_of() {
  values=()
  case $1 in
    namespaced) values=(-f "$NS_VALUES") ;;
    shared-redis) values=(-f "$SHARED_VALUES") ;;
    bundled-redis) values=(-f "$BUNDLED_VALUES") ;;
    parity) values=(-f "$PARITY_VALUES") ;;
    monitoring | podmonitor) values=(-f "$ROOT/test/chart/values-$1.yaml") ;;
  esac
}

# 5a. server-side dry-run of everything each values file renders (the CRD is created for real
#     first: nothing else can be checked against it before it exists).
# `helm template --validate` renders with the server's capabilities (1.20 serves no policy/v1).
# The Prometheus Operator's kinds are checked against minimal copies of its CRDs (no operator
# here), removed again at the end.
if run "installing minimal Prometheus Operator CRDs (test/chart/prometheus-operator-crds.yaml)" \
  "${kc[@]}" apply -f "$MONITORING_CRDS"; then
  MONITORING_CRDS_INSTALLED=1
  run "Prometheus Operator CRDs established" "${kc[@]}" wait --for condition=established \
    --timeout=60s crd/servicemonitors.monitoring.coreos.com crd/podmonitors.monitoring.coreos.com \
    crd/prometheusrules.monitoring.coreos.com
  # They do check what they keep: a ServiceMonitor with a bad interval, a rule without expr.
  for bad in 'ServiceMonitor|{selector: {}, endpoints: [{port: metrics, interval: often}]}|interval' \
    'PrometheusRule|{groups: [{name: g, rules: [{alert: A}]}]}|expr'; do
    IFS='|' read -r kind spec field <<<"$bad"
    if printf 'apiVersion: monitoring.coreos.com/v1\nkind: %s\nmetadata: {name: bad, namespace: %s}\nspec: %s\n' \
      "$kind" "$RELEASE_NS" "$spec" | "${kc[@]}" apply --dry-run=server -f - >"$WORK/out" 2>&1; then
      fail "the minimal $kind CRD accepts a bad $field"
    elif ! grep -q "$field" "$WORK/out"; then
      sed 's/^/    /' "$WORK/out" >&2
      fail "the minimal $kind CRD refuses a bad $field without naming it"
    else
      echo "  ok: the minimal $kind CRD refuses a bad $field"
    fi
  done
fi
for variant in default namespaced shared-redis bundled-redis parity monitoring podmonitor; do
  values_of "$variant"
  if ! run "helm template --validate ($variant) against the server" \
    "$HELM" template sticky "$CHART" -n "$RELEASE_NS" --validate "${values[@]}"; then
    continue
  fi
  cp "$WORK/out" "$WORK/server-$variant.yaml"
  python3 - "$WORK/server-$variant.yaml" "$WORK/server-$variant" <<'EOF'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
crds = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
rest = [d for d in docs if d["kind"] != "CustomResourceDefinition"]
yaml.safe_dump_all(crds, open(sys.argv[2] + "-crds.yaml", "w"))
yaml.safe_dump_all(rest, open(sys.argv[2] + "-rest.yaml", "w"))
EOF
  if [[ -s $WORK/server-$variant-crds.yaml ]]; then
    run "kubectl apply --dry-run=server of the CRD ($variant)" \
      "${kc[@]}" apply --dry-run=server -f "$WORK/server-$variant-crds.yaml"
  fi
  run "kubectl apply --dry-run=server of the rendered chart ($variant)" \
    "${kc[@]}" apply --dry-run=server -f "$WORK/server-$variant-rest.yaml"
done
if ! "${kc[@]}" api-versions | grep -qx policy/v1 &&
  ! grep -q '^apiVersion: policy/v1beta1' "$WORK/server-namespaced.yaml" 2>/dev/null; then
  fail "the PodDisruptionBudget is not rendered as policy/v1beta1 for a server without policy/v1"
else
  echo "  ok: PodDisruptionBudget rendered in an API version the server serves"
fi

# NOTES (helm renders them only on install; a client-side dry run needs the server's version):
# each case is a variant, then fixed strings the NOTES must (+) or must not (-) contain.
notes_cases=(
  "default|-WARNING|-stick table in Redis|-NOT highly available|+service/sticky-kube-sticky-metrics (ClusterIP)|-Scraped by"
  "monitoring|+ports \"metrics\" (the proxy, 9090) and \"op-metrics\" (the operator, 9191)|+Scraped by the ServiceMonitor sticky-kube-sticky as job \"sticky-kube-sticky-metrics\""
  "namespaced|+WARNING: 3 proxy replicas and no shared stick table|+placement: ConsistentHash|+sharedTable.redis.address"
  "shared-redis|+The 3 proxy replica(s) share one stick table in Redis (primary \"mymaster\" through Sentinel)|-WARNING|-NOT highly available"
  "bundled-redis|+share one stick table in Redis (sticky-kube-sticky-redis:6379, the chart's own)|+it is NOT highly available|-WARNING"
)
for case in "${notes_cases[@]}"; do
  IFS='|' read -r -a parts <<<"$case"
  variant=${parts[0]}
  values_of "$variant"
  if ! run "helm install --dry-run ($variant), for the NOTES" \
    "$HELM" install sticky "$CHART" -n "$RELEASE_NS" --dry-run "${values[@]}"; then
    continue
  fi
  sed -n '/^NOTES:/,$p' "$WORK/out" >"$WORK/notes-$variant.txt"
  for expectation in "${parts[@]:1}"; do
    text=${expectation:1}
    if [[ ${expectation:0:1} == + ]] && ! grep -qF -- "$text" "$WORK/notes-$variant.txt"; then
      sed 's/^/    /' "$WORK/notes-$variant.txt" >&2
      fail "NOTES ($variant) do not say '$text'"
    elif [[ ${expectation:0:1} == - ]] && grep -qF -- "$text" "$WORK/notes-$variant.txt"; then
      sed 's/^/    /' "$WORK/notes-$variant.txt" >&2
      fail "NOTES ($variant) say '$text'"
    else
      echo "  ok: NOTES ($variant) $([[ ${expectation:0:1} == + ]] && echo say || echo "do not say") '$text'"
    fi
  done
done

if "${kc[@]}" get crd "$CRD_NAME" >/dev/null 2>&1; then
  fail "CRD $CRD_NAME exists before the chart installed it; use a cluster the test may modify"
  finish
fi

# 5b. install/uninstall with crds.keep=false: the CRD goes with the release.
# (Later checks need the release: stop at the first install failure.)
run "helm install (values-namespaced.yaml)" \
  "$HELM" install sticky-ns "$CHART" -n "$RELEASE_NS" -f "$NS_VALUES" || finish
run "CRD established after helm install" \
  "${kc[@]}" wait --for condition=established "crd/$CRD_NAME" --timeout=60s
for ns in shop chat; do
  run "Role sticky-ns-kube-sticky-operator in $ns" "${kc[@]}" -n "$ns" get role sticky-ns-kube-sticky-operator
done
run "PodDisruptionBudget installed" "${kc[@]}" -n "$RELEASE_NS" get pdb sticky-ns-kube-sticky
run "helm uninstall (values-namespaced.yaml)" "$HELM" uninstall sticky-ns -n "$RELEASE_NS" || finish
run "CRD deleted by helm uninstall with crds.keep=false" \
  "${kc[@]}" wait --for=delete "crd/$CRD_NAME" --timeout=60s

# 5c. install/uninstall with the defaults (crds.keep=true): the CRD stays.
run "helm install (default values)" "$HELM" install sticky "$CHART" -n "$RELEASE_NS" || finish
run "CRD established after helm install" \
  "${kc[@]}" wait --for condition=established "crd/$CRD_NAME" --timeout=60s
run "ClusterRole installed" "${kc[@]}" get clusterrole sticky-kube-sticky-operator
run "Deployment installed" "${kc[@]}" -n "$RELEASE_NS" get deployment sticky-kube-sticky
for sample in "$ROOT"/crds/samples/*.yaml; do
  run "sample $(basename "$sample") accepted by the installed CRD" \
    "${kc[@]}" -n shop apply --dry-run=server -f "$sample"
done
# What `kubectl get` shows of a StickyRoute: the category kube-sticky (not all) and the -o wide
# columns, read from the server's table of a route whose status the test writes (no operator).
wide_route="$WORK/wide-route.yaml"
cat >"$wide_route" <<'YAML'
apiVersion: kubesticky.io/v1alpha1
kind: StickyRoute
metadata:
  name: wide
spec:
  selector: {matchLabels: {app: chat}}
  port: http
  header: client-id
  ttl: 90s
  match: {hosts: [chat.example.com], pathPrefix: /chat}
  placement: ConsistentHash
YAML
wide_status='{"status": {"observedGeneration": 1, "readyEndpoints": 2, "drainingEndpoints": 1,
  "sessions": 7, "conditions": [
  {"type": "Accepted", "status": "True", "reason": "Valid", "message": "ok",
   "lastTransitionTime": "2026-01-01T00:00:00Z"},
  {"type": "Ready", "status": "False", "reason": "NoActiveEndpoints", "message": "none",
   "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}'
if run "StickyRoute shop/wide created" "${kc[@]}" -n shop apply -f "$wide_route" &&
  run "status of shop/wide written" bash -c '. "$1/env" && curl -sf --cacert "$STICKY_APISERVER_CA" \
    -H "Authorization: Bearer $STICKY_APISERVER_TOKEN" -X PATCH \
    -H "Content-Type: application/merge-patch+json" --data "$2" \
    "$STICKY_APISERVER_URL/apis/kubesticky.io/v1alpha1/namespaces/shop/stickyroutes/wide/status"' \
    sh "$kube_dir" "$wide_status" &&
  run "kubectl get kube-sticky -o wide" "${kc[@]}" -n shop get kube-sticky -o wide; then
  # Columns are separated by at least two spaces; AGE varies and is left out.
  got=$(sed -E 's/ {2,}/|/g' "$WORK/out" | cut -d'|' -f1-6,8-)
  expected="NAME|HEADER|TTL|ENDPOINTS|SESSIONS|READY|PORT|HOSTS|PATH|PLACEMENT|DRAINING|ACCEPTED
wide|client-id|90s|2|7|False|http|[\"chat.example.com\"]|/chat|ConsistentHash|1|True"
  if [[ $got == "$expected" ]]; then
    echo "  ok: kubectl get kube-sticky -o wide shows the route with every column"
  else
    sed 's/^/    /' "$WORK/out" >&2
    fail "kubectl get kube-sticky -o wide: got
$got
expected
$expected"
  fi
  if "${kc[@]}" -n shop get all -o name 2>&1 | grep -q stickyroute; then
    fail "kubectl get all lists StickyRoutes (the CRD is not meant to be in the category all)"
  else
    echo "  ok: kubectl get all does not list StickyRoutes"
  fi
fi
"${kc[@]}" -n shop delete stickyroute wide --ignore-not-found >/dev/null 2>&1
run "helm uninstall (default values)" "$HELM" uninstall sticky -n "$RELEASE_NS" || finish
run "Deployment removed by helm uninstall" \
  "${kc[@]}" -n "$RELEASE_NS" wait --for=delete deployment/sticky-kube-sticky --timeout=60s
if ! "${kc[@]}" get crd "$CRD_NAME" >/dev/null 2>&1; then
  fail "CRD deleted on uninstall although crds.keep=true"
else
  echo "  ok: CRD kept by helm uninstall with crds.keep=true"
  # Leave the cluster as it was.
  "${kc[@]}" delete crd "$CRD_NAME" --wait=true >/dev/null 2>&1
fi

# 5d. the bundled Redis: installed with a generated password that `helm upgrade` keeps (lookup),
#     so neither Redis nor the proxies restart on an upgrade. (No CRD: 5c covered it.)
redis_password() {
  "${kc[@]}" -n "$RELEASE_NS" get secret sticky-redis-kube-sticky-redis -o jsonpath='{.data.password}'
}
proxy_checksum() {
  "${kc[@]}" -n "$RELEASE_NS" get deployment sticky-redis-kube-sticky \
    -o jsonpath='{.spec.template.metadata.annotations.kubesticky\.io/redis-password-checksum}'
}
run "helm install (values-bundled-redis.yaml)" "$HELM" install sticky-redis "$CHART" \
  -n "$RELEASE_NS" -f "$BUNDLED_VALUES" --set crds.install=false || finish
for object in deployment/sticky-redis-kube-sticky-redis service/sticky-redis-kube-sticky-redis \
  networkpolicy/sticky-redis-kube-sticky-redis secret/sticky-redis-kube-sticky-redis; do
  run "$object installed" "${kc[@]}" -n "$RELEASE_NS" get "$object"
done
password_before=$(redis_password) checksum_before=$(proxy_checksum)
run "helm upgrade (values-bundled-redis.yaml)" "$HELM" upgrade sticky-redis "$CHART" \
  -n "$RELEASE_NS" -f "$BUNDLED_VALUES" --set crds.install=false
password_after=$(redis_password) checksum_after=$(proxy_checksum)
if [[ -z $password_before || $password_before != "$password_after" ]]; then
  fail "helm upgrade changed the bundled Redis's password (or there was none)"
elif [[ -z $checksum_before || $checksum_before != "$checksum_after" ]]; then
  fail "helm upgrade changed the proxy pods' password checksum (they would restart)"
elif [[ $checksum_after != "$(printf '%s' "$password_after" | base64 -d | sha256sum | cut -d' ' -f1)" ]]; then
  fail "the proxy pods' password checksum is not the installed password's sha256"
else
  echo "  ok: helm upgrade keeps the bundled Redis's password and the pods' checksum"
fi
run "helm uninstall (values-bundled-redis.yaml)" "$HELM" uninstall sticky-redis -n "$RELEASE_NS"
run "bundled Redis's Secret removed by helm uninstall" \
  "${kc[@]}" -n "$RELEASE_NS" wait --for=delete secret/sticky-redis-kube-sticky-redis --timeout=60s

finish
