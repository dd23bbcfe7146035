# Sourced by the shell-driven tests (test/chart/chart_test.sh, test/monitoring/monitoring_test.sh):
# the step / fail / finish protocol they share. Set CHECKS_NAME (the test's name) before sourcing.
#   step TEXT     prints a step heading
#   fail TEXT     records a failed check (and prints it); the test goes on
#   finish        exits 1 listing the failed checks, or 0
# shellcheck shell=bash
failures=()

step() { echo "==> $*"; }
fail() {
  echo "FAIL: $*" >&2
  failures+=("$*")
}
finish() {
  if ((${#failures[@]})); then
    echo "$CHECKS_NAME: ${#failures[@]} check(s) failed:" >&2
    printf '  - %s\n' "${failures[@]}" >&2
    exit 1
  fi
  echo "$CHECKS_NAME: all checks passed"
  exit 0
}
