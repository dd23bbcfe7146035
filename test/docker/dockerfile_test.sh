#!/usr/bin/env bash
# Static checks of the Dockerfile (no Docker engine here, so the image is never built): see
# test/docker/check_dockerfile.py for the list. With STICKY_PROXY_BIN and STICKY_OPERATOR_BIN
# (ctest sets both) it also checks that the runtime stage installs every shared library the
# built binaries need.
set -euo pipefail
readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

for tool in python3 apt-cache dpkg readelf ldd; do
  command -v "$tool" >/dev/null ||
    { echo "dockerfile_test: $tool is missing; run scripts/install-deps.sh" >&2; exit 1; }
done
binaries=()
if [[ -n ${STICKY_PROXY_BIN:-} || -n ${STICKY_OPERATOR_BIN:-} ]]; then
  for bin in "${STICKY_PROXY_BIN:-}" "${STICKY_OPERATOR_BIN:-}"; do
    [[ -x $bin ]] || { echo "dockerfile_test: '$bin' is not a built binary" >&2; exit 1; }
  done
  binaries=("$STICKY_PROXY_BIN" "$STICKY_OPERATOR_BIN")
fi
if python3 "$ROOT/test/docker/check_dockerfile.py" "$ROOT" "${binaries[@]}"; then
  echo "dockerfile_test: all checks passed"
else
  echo "dockerfile_test: the Dockerfile has problems (listed above)" >&2
  exit 1
fi
