#!/usr/bin/env bash
# make lint: the habits CI checks (docs/ARCHITECTURE.md, "Habits checked by CI").
#   1. clang-format: every tracked .cc/.h is in .clang-format's style (fix: make format)
#   2. layers: every include respects the library layers (scripts/check-layers.py)
#   3. clang-tidy: the bug-finding checks of .clang-tidy over lib/, proxy/src, operator/src
#      (skipped with --no-tidy, as `make test` runs it: 1 and 2 take seconds, 3 is ~15 min cold)
# clang-tidy is the slow part (Beast and the static analyzer): a file's clean result is cached
# under $STICKY_CACHE_DIR/clang-tidy, keyed by the file, every project header, .clang-tidy, the
# build files and the clang-tidy version, so an unchanged tree (or a clone of it) re-checks nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
CACHE=${STICKY_CACHE_DIR:-$HOME/.cache/kube-sticky}/clang-tidy
TIDY=${CLANG_TIDY:-clang-tidy-14}
FORMAT=${CLANG_FORMAT:-clang-format}
status=0

echo "==> lint: clang-format"
bad=$(git ls-files '*.cc' '*.h' | xargs -r -n 20 -P "$JOBS" "$FORMAT" --dry-run -Werror 2>&1 |
  grep -oE '^[^: ]+\.(cc|h):[0-9]+:' | cut -d: -f1 | sort -u || true)
if [ -n "$bad" ]; then
  echo "error: not in .clang-format style (run 'make format'):" >&2
  sed 's/^/  /' <<<"$bad" >&2
  status=1
fi

echo "==> lint: layers"
python3 scripts/check-layers.py || status=1

if [ "${1:-}" = "--no-tidy" ]; then
  [ "$status" -eq 0 ] && echo "==> lint: format and layers clean (clang-tidy: make lint)"
  exit "$status"
fi

echo "==> lint: clang-tidy"
# A compilation database without precompiled headers (clang cannot read GCC's), configured only.
cmake -S . -B build/lint -G Ninja -DSTICKY_PCH=OFF -DSTICKY_BUILD_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=Debug >/dev/null
mkdir -p "$CACHE"
# Boost 1.74 enables co_await for clang only with libc++; ours is libstdc++'s <coroutine>.
extra=(--extra-arg=-DBOOST_ASIO_HAS_CO_AWAIT --extra-arg=-DBOOST_ASIO_HAS_STD_COROUTINE --quiet)
# Everything but the file itself that decides a file's findings: the checks, the tool, every
# project header, and the build files (compile flags).
headers_sum=$( (cat .clang-tidy; "$TIDY" --version; git ls-files 'lib/*.h' 'proxy/src/*.h' \
  'operator/src/*.h' '*CMakeLists.txt' CMakePresets.json | sort | xargs cat) |
  sha256sum | cut -c1-64)
export TIDY CACHE headers_sum
tidy_one() {
  local f=$1 key
  key=$( (echo "$headers_sum"; echo "$f"; cat "$f") | sha256sum | cut -c1-64)
  [ -f "$CACHE/$key" ] && return 0
  local out
  if out=$("$TIDY" -p build/lint "${@:2}" "$f" 2>&1); then
    touch "$CACHE/$key"
  else
    printf '%s\n' "$out" | grep -vE '^[0-9]+ warnings? (and [0-9]+ errors? )?generated' >&2
    return 1
  fi
}
export -f tidy_one
git ls-files 'lib/*.cc' 'proxy/src/*.cc' 'operator/src/*.cc' |
  xargs -r -P "$JOBS" -I{} bash -c 'tidy_one "$@"' _ {} "${extra[@]}" || status=1

if [ $status -ne 0 ]; then
  echo "==> lint failed" >&2
else
  echo "==> lint passed"
fi
exit $status
