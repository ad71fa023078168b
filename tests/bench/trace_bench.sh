#!/usr/bin/env bash
# trace_bench.sh: how fast `tpmlab trace` writes a run's commands as pcapng
# against how fast the store reads the same steps back (ForEachStep alone,
# tests/bench/store_bench.cc --read): the export's cost over reading.
#
#   trace_bench.sh --build-dir DIR [--runs R] [--sizes "1000 10000"]
#
# Records a 20-cycle power-cycle run, writes its steps again into a 1k- and
# a 10k-step database (store_bench: power cycles with their snapshots and
# command traces), then per size and R times, alternating: ForEachStep over
# the run, and `tpmlab trace DB -o FILE`. Prints each run, the medians in
# commands per second and the export/read ratio, and the capture's size.
set -uo pipefail
export LC_ALL=C
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
build="" runs=5 sizes="1000 10000"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build-dir) build="${2:-}"; shift 2 ;;
    --runs) runs="${2:-}"; shift 2 ;;
    --sizes) sizes="${2:-}"; shift 2 ;;
    *) echo "usage: $0 --build-dir DIR [--runs R] [--sizes \"1000 10000\"]" >&2; exit 1 ;;
  esac
done
tpmlab="$build/harness/cli/tpmlab" bench="$build/tests/bench/store_bench"
[[ -x $tpmlab && -x $bench ]] || { echo "no tpmlab or store_bench in $build (--build-dir)" >&2; exit 1; }
tmp=$(mktemp -d /tmp/tpmlab-trace-bench-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
"$tpmlab" run "$src/scenarios/power-cycle.yaml" --cycles 20 --out "$tmp/source" -q >/dev/null ||
  { echo "the source run failed" >&2; exit 1; }

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
now_ms() { date +%s%N | awk '{printf "%.1f", $1 / 1e6}'; }
for steps in $sizes; do
  "$bench" "$tmp/source/tpmlab.db" 1 "$tmp/s$steps.db" "$steps" >/dev/null || { echo "store_bench failed" >&2; exit 1; }
  declare -a read_rate=() export_rate=()
  for ((r = 0; r < runs; r++)); do
    out=$("$bench" --read "$tmp/s$steps.db" 1) || { echo "store_bench --read failed" >&2; exit 1; }
    read_ms=$(sed -E 's/ForEachStep ([0-9.]+) ms.*/\1/' <<<"$out")
    commands=$(sed -E 's/.*steps, ([0-9]+) commands.*/\1/' <<<"$out")
    rm -f "$tmp/t.pcapng"
    t0=$(now_ms)
    "$tpmlab" trace "$tmp/s$steps.db:1" -o "$tmp/t.pcapng" >/dev/null || { echo "tpmlab trace failed" >&2; exit 1; }
    export_ms=$(awk -v a="$(now_ms)" -v b="$t0" 'BEGIN {print a - b}')
    read_rate+=("$(awk -v c="$commands" -v ms="$read_ms" 'BEGIN {printf "%.0f", c / (ms / 1000)}')")
    export_rate+=("$(awk -v c="$commands" -v ms="$export_ms" 'BEGIN {printf "%.0f", c / (ms / 1000)}')")
    printf "%6d steps, %7d commands: ForEachStep %8.1f ms (%s commands/s), trace %8.1f ms (%s commands/s)\n" \
      "$steps" "$commands" "$read_ms" "${read_rate[-1]}" "$export_ms" "${export_rate[-1]}"
  done
  rm_=$(median "${read_rate[@]}") em=$(median "${export_rate[@]}")
  printf "median over %d runs, %d steps: store read %s commands/s, pcapng export %s commands/s (export/read %.2f), capture %d bytes\n" \
    "$runs" "$steps" "$rm_" "$em" "$(awk -v a="$em" -v b="$rm_" 'BEGIN {print a / b}')" "$(stat -c %s "$tmp/t.pcapng")"
done
