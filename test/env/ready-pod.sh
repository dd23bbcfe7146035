#!/usr/bin/env bash
# A Pod as a kubelet would run it, on the kube-apiserver of test/env/kube-apiserver.sh (which has
# no kubelet): creates the Pod, then writes the status a kubelet would (Running, Ready, podIP)
# through the status subresource. For the demo and the tests that need Ready pods.
#
#   ready-pod.sh ENV_FILE NAMESPACE NAME IP PORT LABEL=VALUE...
#
# ENV_FILE is the DIR/env `kube-apiserver.sh start DIR` wrote. The Pod's one container ("app")
# declares containerPort PORT named http, as a StickyRoute's `port: http` expects.
set -euo pipefail
[ $# -ge 6 ] || { echo "usage: ready-pod.sh ENV_FILE NAMESPACE NAME IP PORT LABEL=VALUE..." >&2; exit 2; }
env_file=$1 ns=$2 name=$3 ip=$4 port=$5
shift 5
# shellcheck disable=SC1090
. "$env_file" # KUBECONFIG, STICKY_APISERVER_URL, STICKY_APISERVER_TOKEN, STICKY_APISERVER_CA
labels=""
for label in "$@"; do labels+="${labels:+, }\"${label%%=*}\": \"${label#*=}\""; done
kubectl --kubeconfig "$KUBECONFIG" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $name, namespace: $ns, labels: {$labels}}
spec:
  nodeName: sticky-node
  containers: [{name: app, image: test/app, ports: [{name: http, containerPort: $port}]}]
YAML
now=$(date -u +%FT%TZ)
response=$(mktemp)
trap 'rm -f "$response"' EXIT
code=$(curl -s -o "$response" -w '%{http_code}' -X PATCH --cacert "$STICKY_APISERVER_CA" \
  -H "Authorization: Bearer $STICKY_APISERVER_TOKEN" -H 'Content-Type: application/merge-patch+json' \
  --data "{\"status\":{\"phase\":\"Running\",\"podIP\":\"$ip\",\"podIPs\":[{\"ip\":\"$ip\"}],
    \"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}],
    \"containerStatuses\":[{\"name\":\"app\",\"ready\":true,\"restartCount\":0,\"image\":\"test/app\",
      \"imageID\":\"\",\"started\":true,\"state\":{\"running\":{\"startedAt\":\"$now\"}}}]}}" \
  "$STICKY_APISERVER_URL/api/v1/namespaces/$ns/pods/$name/status")
if [ "$code" != 200 ]; then
  echo "ready-pod.sh: setting the status of pod $ns/$name failed (HTTP $code): $(cat "$response")" >&2
  exit 1
fi
