#!/usr/bin/env bash
# Wall-clock time per phase of `make test`, so a slow CI run says where its time went.
#   phase-times.sh reset         start a new record (build/make-test-times)
#   phase-times.sh mark NAME     a phase called NAME starts now (no-op outside make test)
#   phase-times.sh report        print each phase's minutes and seconds, and the total
set -euo pipefail
cd "$(dirname "$0")/.."
readonly RECORD=build/make-test-times

case ${1:-} in
  reset)
    mkdir -p build
    echo "deps $(date +%s)" >"$RECORD"
    ;;
  mark)
    # Outside `make test` (no record started) there is nothing to time.
    [[ -f $RECORD ]] || exit 0
    echo "${2:?usage: phase-times.sh mark NAME} $(date +%s)" >>"$RECORD"
    ;;
  report)
    [[ -f $RECORD ]] || exit 0
    echo "end $(date +%s)" >>"$RECORD"
    trap 'rm -f "$RECORD"' EXIT
    awk '
      { name[NR] = $1; t[NR] = $2 }
      END {
        print "==> time per phase (wall clock)"
        for (i = 2; i <= NR; i++) {
          d = t[i] - t[i - 1]
          printf "    %-16s %3d min %02d s\n", name[i - 1], d / 60, d % 60
        }
        d = t[NR] - t[1]
        printf "    %-16s %3d min %02d s\n", "total", d / 60, d % 60
      }' "$RECORD"
    ;;
  *)
    echo "usage: $0 {reset | mark NAME | report}" >&2
    exit 2
    ;;
esac
