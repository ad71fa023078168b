#!/usr/bin/env bash
# tpmlab compare on runs of scenarios/power-cycle.yaml of growing length:
# time and peak memory (max RSS) of comparing a run with itself, the median
# of --runs per length. Memory must level off as runs grow (each run is
# read a step at a time; latency quantiles come from a bounded sketch).
#
#   tests/bench/compare_bench.sh [--build-dir out/build/default] [--cycles "20 400 1600"] [--runs 3]
set -euo pipefail
build=out/build/default
cycles="20 400 1600"
runs=3
while [[ $# -gt 0 ]]; do
  case $1 in
    --build-dir) build=$2; shift 2 ;;
    --cycles) cycles=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    *) echo "usage: $0 [--build-dir DIR] [--cycles \"20 400 1600\"] [--runs R]" >&2; exit 2 ;;
  esac
done
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tpmlab=$(realpath "$build/harness/cli/tpmlab")
tmp=$(mktemp -d /tmp/tpmlab-compare-bench-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
printf "%8s %8s %10s %12s\n" cycles steps seconds maxrss_kb
for n in $cycles; do
  "$tpmlab" run "$src/scenarios/power-cycle.yaml" --cycles "$n" -q --out "$tmp/r$n" >/dev/null
  : >"$tmp/t" && : >"$tmp/m"
  for ((i = 0; i < runs; i++)); do
    /usr/bin/time -f "%e %M" -o "$tmp/one" "$tpmlab" compare "$tmp/r$n" "$tmp/r$n" --threshold 1000 >/dev/null || true
    read -r seconds rss <"$tmp/one"
    echo "$seconds" >>"$tmp/t" && echo "$rss" >>"$tmp/m"
  done
  printf "%8s %8s %10s %12s\n" "$n" $((n + 2)) "$(median <"$tmp/t")" "$(median <"$tmp/m")"
done
