#!/usr/bin/env bash
# A real Kubernetes control plane for tests: etcd + kube-apiserver 1.20.2, built from Debian's own
# `kubernetes` source package (see /work/shared/notes/ENVIRONMENT.md). No scheduler, no
# controller-manager, no kubelet: pods are stored, never run; tests set pod status themselves.
#
#   kube-apiserver.sh ensure                  build (once) and print the kube-apiserver path
#   kube-apiserver.sh start DIR               start etcd + kube-apiserver; write DIR/kubeconfig,
#                                             DIR/env (shell-sourceable), DIR/*.pid, DIR/*.log
#   kube-apiserver.sh restart-apiserver DIR   stop only kube-apiserver, start it again on the same
#                                             port against the same etcd
#   kube-apiserver.sh stop DIR                stop exactly the processes `start` started
#   kube-apiserver.sh ctest-fixture DIR       for ctest's shared-cluster fixture: stop whatever an
#                                             interrupted run left in DIR, start a fresh cluster
#                                             owned by ctest (the parent process), install the
#                                             StickyRoute CRD and wait until it is served
#
# Environment:
#   STICKY_CACHE_DIR        where the binary, the Go build cache and the source tarball are kept
#                           (default ~/.cache/kube-sticky)
#   STICKY_KUBE_OWNER_PID   if set at `start`, a watchdog stops the cluster when that process exits
#                           (so a crashed test binary does not leak etcd and kube-apiserver)
#   STICKY_KUBE_READY_TIMEOUT  seconds to wait for /readyz (default 180)
set -euo pipefail

readonly KUBE_VERSION=1.20.2
readonly CACHE_DIR="${STICKY_CACHE_DIR:-$HOME/.cache/kube-sticky}"
readonly BIN_DIR="$CACHE_DIR/kube-apiserver-$KUBE_VERSION"
readonly BIN="$BIN_DIR/kube-apiserver"
readonly GO_BIN_DIR=/usr/lib/go-1.19/bin
readonly REFLECT2_SRC=/usr/share/gocode/src/github.com/modern-go/reflect2
readonly READY_TIMEOUT="${STICKY_KUBE_READY_TIMEOUT:-180}"
readonly NODE_NAME=sticky-node

log() { echo "[kube-apiserver.sh] $*" >&2; }
die() {
  echo "[kube-apiserver.sh] ERROR: $*" >&2
  exit 1
}

# ---------------------------------------------------------------------------------------------
# ensure: build kube-apiserver once and cache it
# ---------------------------------------------------------------------------------------------

install_build_deps() {
  local missing=()
  [[ -x $GO_BIN_DIR/go ]] || missing+=(golang-1.19-go)
  command -v rsync >/dev/null || missing+=(rsync)
  [[ -d $REFLECT2_SRC ]] || missing+=(golang-github-modern-go-reflect2-dev)
  command -v etcd >/dev/null || missing+=(etcd-server)
  command -v make >/dev/null || missing+=(make)
  ((${#missing[@]} == 0)) && return 0
  [[ $(id -u) == 0 ]] || die "missing build dependencies (${missing[*]}); install them as root"
  log "installing build dependencies: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
}

ensure_deb_src() {
  if grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ ||
    grep -qs '^deb-src ' /etc/apt/sources.list; then
    return 0
  fi
  [[ $(id -u) == 0 ]] || die "no deb-src entry in apt sources; add one as root (see ENVIRONMENT.md)"
  log "adding a deb-src entry for bookworm (/etc/apt/sources.list.d/sticky-deb-src.sources)"
  cat >/etc/apt/sources.list.d/sticky-deb-src.sources <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  apt-get update -q >&2
}

# Downloads the orig tarball into $CACHE_DIR/src (kept: 34 MB, saves a download on rebuilds).
fetch_source() {
  local src_dir="$CACHE_DIR/src"
  mkdir -p "$src_dir"
  local tarball
  tarball=$(find "$src_dir" -maxdepth 1 -name "kubernetes_*really${KUBE_VERSION}.orig.tar.gz" | head -n1)
  if [[ -z $tarball ]]; then
    ensure_deb_src
    log "downloading Debian's kubernetes source package"
    local dl
    dl=$(mktemp -d "$src_dir/download.XXXXXX")
    (cd "$dl" && apt-get source --download-only kubernetes >&2) ||
      { apt-get update -q >&2 && (cd "$dl" && apt-get source --download-only kubernetes >&2); } ||
      die "apt-get source --download-only kubernetes failed"
    tarball=$(find "$dl" -maxdepth 1 -name "kubernetes_*really${KUBE_VERSION}.orig.tar.gz" | head -n1)
    [[ -n $tarball ]] || die "the kubernetes source package has no ${KUBE_VERSION} orig tarball"
    mv "$tarball" "$src_dir/"
    tarball="$src_dir/$(basename "$tarball")"
    rm -rf "$dl"
  fi
  echo "$tarball"
}

build_apiserver() {
  install_build_deps
  local tarball
  tarball=$(fetch_source)
  # A fixed work path (rather than mktemp) keeps the Go build cache valid between builds: Go keys
  # cached packages on their directory. The lock in `ensure` makes the fixed path safe.
  local work="$CACHE_DIR/build"
  local tree="$work/gopath/src/k8s.io/kubernetes"
  rm -rf "$work"
  mkdir -p "$work/gopath/src/k8s.io" "$CACHE_DIR/gocache"
  log "unpacking $(basename "$tarball")"
  tar xzf "$tarball" -C "$work/gopath/src/k8s.io"
  mv "$work/gopath/src/k8s.io/kubernetes-$KUBE_VERSION" "$tree"
  log "replacing vendored github.com/modern-go/reflect2 (v1.0.1 panics under Go >= 1.18) with 1.0.2"
  rm -rf "$tree/vendor/github.com/modern-go/reflect2"
  cp -r "$REFLECT2_SRC" "$tree/vendor/github.com/modern-go/reflect2"
  # hack/lib/golang.sh forces GOCACHE=_output/local/go/cache; point that into the cache dir.
  mkdir -p "$tree/_output/local/go"
  ln -s "$CACHE_DIR/gocache" "$tree/_output/local/go/cache"
  log "building cmd/kube-apiserver (~5 min cold on 2 cores, ~1.5 min with a warm Go cache);" \
    "log: $work/make.log"
  local start=$SECONDS
  if ! (cd "$tree" && GOPATH="$work/gopath" PATH="$GO_BIN_DIR:$PATH" CGO_ENABLED=0 \
    make WHAT=cmd/kube-apiserver >"$work/make.log" 2>&1); then
    tail -n 40 "$work/make.log" >&2
    die "building kube-apiserver failed (full log: $work/make.log)"
  fi
  log "built in $((SECONDS - start)) s"
  mkdir -p "$BIN_DIR"
  local tmp="$BIN_DIR/.kube-apiserver.tmp.$$"
  cp "$tree/_output/bin/kube-apiserver" "$tmp"
  chmod 755 "$tmp"
  mv -f "$tmp" "$BIN"  # atomic: a reader sees no binary or the whole binary
  log "removing the source tree"
  rm -rf "$work"
}

cmd_ensure() {
  if [[ ! -x $BIN ]]; then
    mkdir -p "$CACHE_DIR"
    exec 9>"$CACHE_DIR/kube-apiserver-$KUBE_VERSION.lock"
    if ! flock -n 9; then
      log "another process is building kube-apiserver; waiting for it"
      flock 9
    fi
    [[ -x $BIN ]] || build_apiserver
    exec 9>&-
  fi
  echo "$BIN"
}

# ---------------------------------------------------------------------------------------------
# start / restart-apiserver / stop
# ---------------------------------------------------------------------------------------------

# A loopback TCP port nobody listens on, from below Linux's ephemeral range (so outgoing
# connections don't take it meanwhile). Callers retry if they lose the race.
free_port() {
  local port hex taken
  for _ in $(seq 1 200); do
    port=$((20000 + RANDOM % 12000))
    printf -v hex '%04X' "$port"
    taken=$(awk -v h=":$hex" 'NR > 1 && $4 == "0A" && substr($2, length($2) - 4) == h' \
      /proc/net/tcp /proc/net/tcp6 2>/dev/null)
    if [[ -z $taken ]] && ! (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  die "found no free loopback port"
}

# Command-line fragments that identify the processes of the cluster in DIR, so a recycled PID
# is never signalled.
etcd_marker() { echo "--data-dir $1/etcd-data"; }
apiserver_marker() { echo "--tls-cert-file=$1/pki/apiserver.crt"; }
watchdog_marker() { echo "sticky-kube-watchdog $1 "; }

# Is PID alive (not a zombie) and is its command line containing MARKER?
pid_is() {
  local pid=$1 marker=$2
  [[ -n $pid && -r /proc/$pid/cmdline ]] || return 1
  [[ $(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null) != Z ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$marker"
}

stop_pid() { # pid name marker
  local pid=$1 name=$2 marker=$3
  pid_is "$pid" "$marker" || return 0
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || return 0
  local deadline=$((SECONDS + 20))
  while pid_is "$pid" "$marker" && ((SECONDS < deadline)); do sleep 0.1; done
  if pid_is "$pid" "$marker"; then
    log "$name (pid $pid) ignored SIGTERM for 20 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    while pid_is "$pid" "$marker"; do sleep 0.05; done
  fi
}

make_pki() {
  local dir=$1 pki="$1/pki"
  mkdir -p "$pki"
  (
    cd "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=kube-sticky-test-ca" \
      -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
      -keyout apiserver.key -out apiserver.csr 2>/dev/null
    printf '%s\n' \
      "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local" \
      "extendedKeyUsage=serverAuth" "keyUsage=critical,digitalSignature,keyEncipherment" \
      >apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile apiserver.ext -out apiserver.crt 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    local token
    token=$(openssl rand -hex 24)
    echo "$token" >admin.token
    echo "$token,sticky-admin,sticky-admin-uid,\"system:masters\"" >tokens.csv
    chmod 600 ./*.key admin.token tokens.csv
  ) || die "creating certificates with openssl failed"
}

http_ok() { # url [curl args...]
  local url=$1
  shift
  [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" "$url" 2>/dev/null) == 200 ]]
}

start_etcd() {
  local dir=$1 attempt
  mkdir -p "$dir/etcd-data"
  for attempt in 1 2 3; do
    ETCD_PORT=$(free_port)
    ETCD_PEER_PORT=$(free_port)
    [[ $ETCD_PORT != "$ETCD_PEER_PORT" ]] || continue
    log "starting etcd on 127.0.0.1:$ETCD_PORT (log: $dir/etcd.log)"
    setsid etcd --name sticky-etcd --data-dir "$dir/etcd-data" \
      --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
      --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
      --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
      --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
      --initial-cluster "sticky-etcd=http://127.0.0.1:$ETCD_PEER_PORT" \
      --listen-metrics-urls "" --log-level warn \
      </dev/null >>"$dir/etcd.log" 2>&1 &
    ETCD_PID=$!
    echo "$ETCD_PID" >"$dir/etcd.pid"
    local deadline=$((SECONDS + 60))
    while ((SECONDS < deadline)); do
      if ! kill -0 "$ETCD_PID" 2>/dev/null; then break; fi
      if http_ok "http://127.0.0.1:$ETCD_PORT/health"; then return 0; fi
      sleep 0.1
    done
    stop_pid "$ETCD_PID" etcd "$(etcd_marker "$dir")"
    if grep -q "address already in use" "$dir/etcd.log"; then
      log "etcd lost a port race (attempt $attempt); retrying on other ports"
      rm -rf "$dir/etcd-data"
      mkdir -p "$dir/etcd-data"
      continue
    fi
    tail -n 30 "$dir/etcd.log" >&2
    die "etcd did not become healthy (log: $dir/etcd.log)"
  done
  die "etcd could not bind free ports after 3 attempts (log: $dir/etcd.log)"
}

# Starts kube-apiserver on $APISERVER_PORT; waits for /readyz. Returns 2 if the port was taken.
launch_apiserver() {
  local dir=$1 pki="$1/pki"
  log "starting kube-apiserver on https://127.0.0.1:$APISERVER_PORT (log: $dir/kube-apiserver.log)"
  echo "--- kube-apiserver start $(date -u +%FT%TZ) port $APISERVER_PORT" >>"$dir/kube-apiserver.log"
  setsid "$BIN" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
    --secure-port="$APISERVER_PORT" --insecure-port=0 \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" \
    --token-auth-file="$pki/tokens.csv" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/sa.pub" \
    --service-account-signing-key-file="$pki/sa.key" \
    --authorization-mode=RBAC \
    --service-cluster-ip-range=10.96.0.0/16 \
    --disable-admission-plugins=ServiceAccount \
    --endpoint-reconciler-type=none \
    --allow-privileged=true --profiling=false --v=1 \
    </dev/null >>"$dir/kube-apiserver.log" 2>&1 &
  APISERVER_PID=$!
  echo "$APISERVER_PID" >"$dir/kube-apiserver.pid"
  local token deadline=$((SECONDS + READY_TIMEOUT))
  token=$(cat "$pki/admin.token")
  while ((SECONDS < deadline)); do
    if ! kill -0 "$APISERVER_PID" 2>/dev/null; then
      if tail -n 20 "$dir/kube-apiserver.log" | grep -q "address already in use"; then return 2; fi
      tail -n 40 "$dir/kube-apiserver.log" >&2
      die "kube-apiserver exited during startup (log: $dir/kube-apiserver.log)"
    fi
    if http_ok "https://127.0.0.1:$APISERVER_PORT/readyz" --cacert "$pki/ca.crt" \
      -H "Authorization: Bearer $token"; then
      log "kube-apiserver ready (pid $APISERVER_PID)"
      return 0
    fi
    sleep 0.2
  done
  tail -n 40 "$dir/kube-apiserver.log" >&2
  stop_pid "$APISERVER_PID" kube-apiserver "$(apiserver_marker "$dir")"
  die "kube-apiserver not ready within ${READY_TIMEOUT}s (log: $dir/kube-apiserver.log)"
}

write_env() {
  local dir=$1
  {
    printf 'export KUBECONFIG=%q\n' "$dir/kubeconfig"
    printf 'export STICKY_APISERVER_URL=%q\n' "https://127.0.0.1:$APISERVER_PORT"
    printf 'export STICKY_APISERVER_PORT=%q\n' "$APISERVER_PORT"
    printf 'export STICKY_APISERVER_TOKEN=%q\n' "$(cat "$dir/pki/admin.token")"
    printf 'export STICKY_APISERVER_CA=%q\n' "$dir/pki/ca.crt"
    printf 'export ETCD_PORT=%q\n' "$ETCD_PORT"
    printf 'export ETCD_PID=%q\n' "$ETCD_PID"
    printf 'export APISERVER_PID=%q\n' "$APISERVER_PID"
    printf 'export WATCHDOG_PID=%q\n' "${WATCHDOG_PID:-}"
  } >"$dir/env.tmp"
  mv -f "$dir/env.tmp" "$dir/env"
}

write_kubeconfig() {
  local dir=$1
  cat >"$dir/kubeconfig.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kube-sticky-test
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 "$dir/pki/ca.crt")
users:
- name: sticky-admin
  user:
    token: $(cat "$dir/pki/admin.token")
contexts:
- name: kube-sticky-test
  context:
    cluster: kube-sticky-test
    user: sticky-admin
    namespace: default
current-context: kube-sticky-test
EOF
  chmod 600 "$dir/kubeconfig.tmp"
  mv -f "$dir/kubeconfig.tmp" "$dir/kubeconfig"
}

# What a pod-less, kubelet-less cluster still needs so tests can create pods: the default
# ServiceAccount (no controller-manager creates it) and a Node object that pods name in
# spec.nodeName.
bootstrap_objects() {
  local dir=$1 deadline=$((SECONDS + 60))
  local -a kc=(kubectl --kubeconfig "$dir/kubeconfig" --request-timeout=10s)
  until "${kc[@]}" get namespace default >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "namespace default did not appear (log: $dir/kube-apiserver.log)"
    sleep 0.2
  done
  "${kc[@]}" apply -f - >/dev/null <<EOF || die "creating the bootstrap objects failed"
apiVersion: v1
kind: ServiceAccount
metadata: {name: default, namespace: default}
---
apiVersion: v1
kind: Node
metadata:
  name: $NODE_NAME
  labels: {kubernetes.io/hostname: $NODE_NAME, kubernetes.io/os: linux}
EOF
}

# Stops the cluster when $STICKY_KUBE_OWNER_PID exits.
start_watchdog() {
  local dir=$1 owner=$2 self
  self=$(readlink -f "${BASH_SOURCE[0]}")
  # shellcheck disable=SC2016 # expanded by the inner bash
  setsid bash -c '
    dir=$1; owner=$2; script=$3
    while kill -0 "$owner" 2>/dev/null; do sleep 1; done
    WATCHDOG_SELF=1 "$script" stop "$dir"
  ' sticky-kube-watchdog "$dir" "$owner" "$self" </dev/null >>"$dir/watchdog.log" 2>&1 &
  WATCHDOG_PID=$!
  echo "$WATCHDOG_PID" >"$dir/watchdog.pid"
}

cmd_start() {
  local dir=${1:?usage: kube-apiserver.sh start DIR}
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [[ -f $dir/kube-apiserver.pid ]] && pid_is "$(cat "$dir/kube-apiserver.pid")" "$(apiserver_marker "$dir")"; then
    die "a cluster is already running in $dir; stop it first"
  fi
  cmd_ensure >/dev/null
  command -v etcd >/dev/null || install_build_deps
  rm -rf "$dir/etcd-data" # `start` means a fresh cluster
  # If anything below fails, stop what was started so far: a failed start leaks no process.
  START_DIR=$dir
  trap 'rc=$?; if ((rc != 0)); then log "start failed; stopping what was started"; cmd_stop "$START_DIR"; fi' EXIT
  log "creating certificates, tokens and service-account keys in $dir/pki"
  make_pki "$dir"
  start_etcd "$dir"
  local attempt rc
  for attempt in 1 2 3; do
    APISERVER_PORT=$(free_port)
    rc=0
    launch_apiserver "$dir" || rc=$?
    ((rc == 0)) && break
    log "kube-apiserver lost a port race (attempt $attempt); retrying on another port"
  done
  ((rc == 0)) || die "kube-apiserver could not bind a free port after 3 attempts"
  echo "$APISERVER_PORT" >"$dir/apiserver.port"
  echo "$ETCD_PORT" >"$dir/etcd.port"
  write_kubeconfig "$dir"
  WATCHDOG_PID=""
  if [[ -n ${STICKY_KUBE_OWNER_PID:-} ]]; then start_watchdog "$dir" "$STICKY_KUBE_OWNER_PID"; fi
  write_env "$dir"
  bootstrap_objects "$dir"
  trap - EXIT
  log "cluster up: KUBECONFIG=$dir/kubeconfig (source $dir/env)"
  echo "$dir/env"
}

load_state() {
  local dir=$1
  [[ -f $dir/apiserver.port && -f $dir/etcd.port ]] || die "no cluster state in $dir (run start)"
  APISERVER_PORT=$(cat "$dir/apiserver.port")
  ETCD_PORT=$(cat "$dir/etcd.port")
  APISERVER_PID=$(cat "$dir/kube-apiserver.pid" 2>/dev/null || true)
  ETCD_PID=$(cat "$dir/etcd.pid" 2>/dev/null || true)
  WATCHDOG_PID=$(cat "$dir/watchdog.pid" 2>/dev/null || true)
}

cmd_restart_apiserver() {
  local dir=${1:?usage: kube-apiserver.sh restart-apiserver DIR}
  dir=$(cd "$dir" && pwd)
  load_state "$dir"
  pid_is "$ETCD_PID" "$(etcd_marker "$dir")" || die "etcd of $dir is not running"
  cmd_ensure >/dev/null
  stop_pid "$APISERVER_PID" kube-apiserver "$(apiserver_marker "$dir")"
  local rc=0
  launch_apiserver "$dir" || rc=$?
  ((rc == 0)) || die "port $APISERVER_PORT was taken while kube-apiserver restarted"
  write_env "$dir"
}

cmd_stop() {
  local dir=${1:?usage: kube-apiserver.sh stop DIR}
  [[ -d $dir ]] || return 0
  dir=$(cd "$dir" && pwd)
  local pid
  pid=$(cat "$dir/kube-apiserver.pid" 2>/dev/null || true)
  stop_pid "$pid" kube-apiserver "$(apiserver_marker "$dir")"
  pid=$(cat "$dir/etcd.pid" 2>/dev/null || true)
  stop_pid "$pid" etcd "$(etcd_marker "$dir")"
  pid=$(cat "$dir/watchdog.pid" 2>/dev/null || true)
  if [[ -z ${WATCHDOG_SELF:-} ]]; then stop_pid "$pid" watchdog "$(watchdog_marker "$dir")"; fi
  rm -f "$dir/kube-apiserver.pid" "$dir/etcd.pid" "$dir/watchdog.pid"
}

# One cluster for a whole ctest run (test/CMakeLists.txt): the operator's integration tests reach
# it through STICKY_KUBE_ENV_DIR, each in namespaces of its own. The CRD goes in here, once, so
# that tests applying the same manifest concurrently never race to create it.
cmd_ctest_fixture() {
  local dir=${1:?usage: kube-apiserver.sh ctest-fixture DIR}
  cmd_stop "$dir"
  rm -rf "$dir"
  STICKY_KUBE_OWNER_PID=${STICKY_KUBE_OWNER_PID:-$PPID} cmd_start "$dir" >/dev/null
  local crd
  crd="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/crds/stickyroutes.kubesticky.io.yaml"
  local kubectl=(kubectl --kubeconfig "$dir/kubeconfig" --cache-dir "$dir/kubectl-cache")
  "${kubectl[@]}" apply -f "$crd" >&2 || die "could not install $crd"
  "${kubectl[@]}" wait --for condition=established --timeout=60s \
    crd/stickyroutes.kubesticky.io >&2 || die "the StickyRoute CRD was not established"
  local i
  for i in $(seq 1 120); do
    "${kubectl[@]}" get stickyroutes -A >/dev/null 2>&1 && break
    sleep 0.5
  done
  "${kubectl[@]}" get stickyroutes -A >/dev/null || die "StickyRoutes are not served"
  log "shared cluster for this ctest run: STICKY_KUBE_ENV_DIR=$dir"
}

main() {
  local cmd=${1:-}
  shift || true
  case $cmd in
    ensure) cmd_ensure ;;
    start) cmd_start "$@" ;;
    restart-apiserver) cmd_restart_apiserver "$@" ;;
    stop) cmd_stop "$@" ;;
    ctest-fixture) cmd_ctest_fixture "$@" ;;
    *)
      echo "usage: $0 {ensure | start DIR | restart-apiserver DIR | stop DIR | ctest-fixture DIR}" >&2
      exit 2
      ;;
  esac
}

main "$@"
exit  # never read past this line: the script may be edited while it runs
