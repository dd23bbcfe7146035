#!/usr/bin/env bash
# Runs the libFuzzer targets of the fuzz preset (make fuzz, make fuzz-smoke; docs/fuzzing.md).
#   scripts/fuzz.sh [--seconds N] [--jobs N] [TARGET...]     (default: every target)
# Each target runs for N seconds under ASan + UBSan on a working corpus under build/fuzz/corpus
# (the repository's seeds copied in first, so fuzz/corpus stays as committed), with its own
# -max_len; a crash, leak, UB report, timeout or broken invariant fails the run and leaves the
# input in build/fuzz/artifacts/TARGET/. Prints executions per second and coverage per target.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH=300
JOBS=1
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_EACH=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done

# target -> -max_len: heads up to a few KiB, bodies and documents a little more.
declare -A MAX_LEN=(
  [request_head]=4096 [response_head]=4096 [chunked_body]=4096 [resp]=2048
  [config]=4096 [admin_request]=4096 [admin_api]=4096 [kubeconfig]=4096
  [selector]=2048 [watch_stream]=4096
)
[ ${#targets[@]} -eq 0 ] && targets=(request_head response_head chunked_body resp config
  admin_request admin_api kubeconfig selector watch_stream)

BUILD=build/fuzz
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run_one() {
  local t=$1 bin=$BUILD/fuzz/${1}_fuzz
  [ -x "$bin" ] || { echo "error: $bin is missing (make fuzz builds it)" >&2; return 1; }
  local corpus=$BUILD/corpus/$t artifacts=$BUILD/artifacts/$t log=$BUILD/logs/$t.log
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  cp -rn "fuzz/corpus/$t/." "$corpus/"
  local dict=()
  [ -f "fuzz/dict/$t.dict" ] && dict=(-dict="fuzz/dict/$t.dict")
  if "$bin" "$corpus" "${dict[@]}" -max_len="${MAX_LEN[$t]:-4096}" \
      -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$artifacts/" >"$log" 2>&1; then
    local cov execs rate
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
    execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$')
    rate=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$')
    printf '%-14s ok  %9s execs %7s exec/s  cov %s\n' "$t" "$execs" "$rate" "$cov"
  else
    printf '%-14s FAILED (log: %s, input in %s)\n' "$t" "$log" "$artifacts" >&2
    grep -E 'ERROR|invariant broken|SUMMARY|Test unit written' "$log" | head -5 >&2
    return 1
  fi
}
# Associative arrays do not cross into xargs' shells: pass the table as its declaration.
MAX_LEN_DECL=$(declare -p MAX_LEN)
export -f run_one
export BUILD SECONDS_EACH MAX_LEN_DECL

echo "==> fuzzing ${#targets[@]} targets for ${SECONDS_EACH}s each, $JOBS at a time (build/fuzz)"
printf '%s\n' "${targets[@]}" |
  xargs -P "$JOBS" -I{} bash -c 'eval "$MAX_LEN_DECL"; run_one "$1"' _ {}
