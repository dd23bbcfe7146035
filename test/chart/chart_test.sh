#!/usr/bin/env bash
# Checks the Helm chart charts/kube-sticky:
#   1. its CRD copy is exactly what scripts/sync-chart-crd.sh makes of crds/ (text and content);
#   2. `helm lint --strict` and `helm template` with the default values and with
#      test/chart/values-namespaced.yaml, and assertions on what they render (check_rendered.py);
#   3. values.schema.json and the template checks reject bad values;
#   4. the `helm test` hook's script, run with busybox against a stand-in server for every kind
#      of answer, and against a real sticky-proxy when STICKY_PROXY_BIN names one (which also
#      checks that the proxy's metrics port answers /healthz and /readyz, as the probes assume);
#   5. against a real kube-apiserver: `kubectl apply --dry-run=server` of both renderings, then
#      `helm install`/`helm uninstall` of both, checking crds.keep (kept, or deleted).
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
readonly CHART="$ROOT/charts/kube-sticky"
readonly NS_VALUES="$ROOT/test/chart/values-namespaced.yaml"
readonly CRD_SOURCE="$ROOT/crds/stickyroutes.kubesticky.io.yaml"
readonly CRD_NAME=stickyroutes.kubesticky.io
readonly CHECK="$ROOT/test/chart/check_rendered.py"
readonly RELEASE_NS=sticky-system

WORK=$(mktemp -d "${TMPDIR:-/tmp}/chart-test.XXXXXX")
STARTED_CLUSTER=""
SERVER_PIDS=()
PROXY_PID=""
failures=()

cleanup() {
  for pid in "${SERVER_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  [[ -n $PROXY_PID ]] && kill "$PROXY_PID" 2>/dev/null
  [[ -n $STARTED_CLUSTER ]] && "$ROOT/test/env/kube-apiserver.sh" stop "$STARTED_CLUSTER" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT

step() { echo "==> $*"; }
fail() {
  echo "FAIL: $*" >&2
  failures+=("$*")
}
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
finish() {
  if ((${#failures[@]})); then
    echo "chart_test: ${#failures[@]} check(s) failed:" >&2
    printf '  - %s\n' "${failures[@]}" >&2
    exit 1
  fi
  echo "chart_test: all checks passed"
  exit 0
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
step "2. helm lint and helm template, default values and values-namespaced.yaml"
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
  SERVICE_HOST=127.0.0.1 SERVICE_PORT=$port METRICS_PORT=$metrics REQUEST_PATH=$path \
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

for ns in "$RELEASE_NS" shop chat; do
  "${kc[@]}" get namespace "$ns" >/dev/null 2>&1 || run "creating namespace $ns" "${kc[@]}" create namespace "$ns"
done

# 5a. server-side dry-run of everything each values file renders (the CRD is created for real
#     first: nothing else can be checked against it before it exists).
# `helm template --validate` renders with the server's capabilities (1.20 serves no policy/v1).
for variant in default namespaced; do
  values=()
  [[ $variant == namespaced ]] && values=(-f "$NS_VALUES")
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

finish
