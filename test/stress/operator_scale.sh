#!/usr/bin/env bash
# The operator under absurd input (docs/security.md): builds sticky-operator-scale and runs it
# against a fresh etcd + kube-apiserver. Figures only (MEASURE lines); takes a few minutes.
# usage: test/stress/operator_scale.sh [--pods 10000] [--routes 1000] [--expressions 10000]
#                                      [--annotated 10]
set -euo pipefail
cd "$(dirname "$0")/../.."
PRESET=${PRESET:-dev}
cmake --preset "$PRESET" -G Ninja >/dev/null
cmake --build "build/$PRESET" -j "$(nproc)" --target sticky-operator-scale
test/env/kube-apiserver.sh ensure >/dev/null
exec "build/$PRESET/test/sticky-operator-scale" "$@"
