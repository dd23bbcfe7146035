#!/usr/bin/env bash
# Installs the Debian packages kube-sticky needs to build, test and run the demo, if missing.
# Idempotent: does nothing when everything is present. Needs root (or sudo) to install.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git curl ca-certificates openssl python3
  libboost-dev libcpprest-dev libyaml-cpp-dev nlohmann-json3-dev libssl-dev doctest-dev
  libfmt-dev libcli11-dev
  etcd-server golang-1.19-go rsync golang-github-modern-go-reflect2-dev
  clang-14 libclang-rt-14-dev libfuzzer-14-dev clang-format clang-tidy
  haproxy nginx-light wrk unzip busybox python3-yaml ccache
  redis-server redis-sentinel
  prometheus
)
# npm fetches helm (test/env/helm.sh); a machine may already have it from nodejs.org's packages,
# which conflict with Debian's npm, so only ask for Debian's when there is no npm at all.
command -v npm >/dev/null || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if [ ${#missing[@]} -ne 0 ] && ! command -v sudo >/dev/null; then
    echo "error: need root or sudo to install: ${missing[*]}" >&2
    exit 1
  fi
  SUDO=sudo
fi
if [ ${#missing[@]} -ne 0 ]; then
  echo "==> installing missing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # nginx-light's package starts a system nginx on :80; the project starts its own nginx.
  if command -v systemctl >/dev/null && systemctl is-active --quiet nginx 2>/dev/null; then
    $SUDO systemctl stop nginx || true
  fi
  # prometheus is there for `promtool check metrics` and `check rules` in the tests, and for
  # test/monitoring/monitoring_test.sh, which starts its own server on loopback; the packaged
  # service stays off.
  if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
    $SUDO systemctl stop prometheus || true
  fi
fi

# kubectl >= 1.24 (the tests and the demo use `kubectl patch --subresource`). Debian's
# kubernetes-client is 1.20, so when the machine has none recent enough, link the v1.32 client
# that ships in the same npm package as helm (test/env/helm.sh).
kubectl_minor() {
  kubectl version --client -o json 2>/dev/null |
    python3 -c 'import json,re,sys; print(re.sub(r"\D.*", "", json.load(sys.stdin)["clientVersion"]["minor"]))' 2>/dev/null
}
minor=$(kubectl_minor || true)
if [ -z "$minor" ] || [ "$minor" -lt 24 ]; then
  echo "==> kubectl >= 1.24 missing (found: ${minor:+1.}${minor:-none}); linking the one bundled with helm"
  kubectl_bin=$("$(dirname "$0")/../test/env/helm.sh" ensure-kubectl)
  $SUDO ln -sf "$kubectl_bin" /usr/local/bin/kubectl
  hash -r
  [ "$(kubectl_minor)" -ge 24 ] || { echo "error: kubectl at /usr/local/bin/kubectl does not run" >&2; exit 1; }
fi
