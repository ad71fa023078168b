#!/usr/bin/env bash
# run_ab_bench.sh: two tpmlab binaries, the same scenario, side by side.
#
#   run_ab_bench.sh --a BIN --b BIN [--scenario FILE] [--cycles N] [--runs R]
#
# Runs `BIN run SCENARIO --cycles N` with each binary, interleaved a b within
# every run so machine noise hits both, and prints the median wall time of
# each, the ratio b/a, and run.json's size. Used to show what a change costs
# a whole run (snapshot, quote, verify, drift, store), e.g. a build of the
# previous commit against this one:
#   git worktree add /tmp/old HEAD~1 && cmake --preset default -S /tmp/old && \
#   cmake --build /tmp/old/out/build/default --target tpmlab
#   tests/bench/run_ab_bench.sh --a /tmp/old/out/build/default/harness/cli/tpmlab \
#     --b out/build/default/harness/cli/tpmlab
# Exit: 0 ok; 1 a run failed; 2 bad arguments.
set -uo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
usage() {
    echo "usage: $0 --a BIN --b BIN [--scenario FILE] [--cycles N] [--runs R]" >&2
    exit 2
}

a="" b="" scenario="$here/../../scenarios/power-cycle.yaml" cycles=100 runs=5
while [[ $# -gt 0 ]]; do
    case "$1" in
        --a) a="${2:-}"; shift 2 ;;
        --b) b="${2:-}"; shift 2 ;;
        --scenario) scenario="${2:-}"; shift 2 ;;
        --cycles) cycles="${2:-}"; shift 2 ;;
        --runs) runs="${2:-}"; shift 2 ;;
        -h|--help) usage ;;
        *) echo "unknown argument: $1" >&2; usage ;;
    esac
done
[[ -x "$a" && -x "$b" ]] || { echo "--a and --b must name tpmlab binaries" >&2; usage; }
[[ -f "$scenario" ]] || { echo "no scenario file: $scenario" >&2; exit 2; }

tmp=$(mktemp -d /tmp/tpmlab-ab-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
for ((i = 1; i <= runs; i++)); do
    for side in a b; do
        bin=${!side}
        start=$(date +%s.%N)
        if ! "$bin" run "$scenario" --cycles "$cycles" --out "$tmp/$side-$i" >"$tmp/out" 2>&1; then
            echo "run $i of $side failed:" >&2; sed 's/^/  | /' "$tmp/out" >&2; exit 1
        fi
        end=$(date +%s.%N)
        echo "$side $(echo "$end - $start" | bc) $(stat -c %s "$tmp/$side-$i/run.json")" >>"$tmp/times"
        [[ -t 1 ]] && echo "run $i/$runs $side done"
    done
done
/usr/bin/python3 - "$tmp/times" "$cycles" <<'PY'
import statistics, sys
times, sizes = {}, {}
for line in open(sys.argv[1]):
    side, t, size = line.split()
    times.setdefault(side, []).append(float(t))
    sizes[side] = int(size)
cycles = int(sys.argv[2])
for side in ("a", "b"):
    m = statistics.median(times[side])
    print(f"{side}: median {m:.3f} s ({min(times[side]):.3f}-{max(times[side]):.3f}), "
          f"{cycles / m:.1f} cycles/s, run.json {sizes[side]} bytes")
print(f"b/a wall time: {statistics.median(times['b']) / statistics.median(times['a']):.3f}")
PY
