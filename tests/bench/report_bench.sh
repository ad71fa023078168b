#!/usr/bin/env bash
# report_bench.sh: tpmlab report's generation time and file size, and the
# time headless Chromium takes to open the report (navigation to the load
# event), for runs of 1,000 and 10,000 steps (and 100,000 with --big).
#
#   report_bench.sh --build-dir DIR [--repeats R] [--big] [--keep DIR]
#
# Each run is made once with `tpmlab run scenarios/power-cycle.yaml --cycles N`
# (a power-cycle run stores about one step per cycle), then reported R times
# and opened R times; the medians (min-max) are printed per size. --keep DIR
# keeps the runs (they take minutes to make) and reuses them next time.
# Exit: 0 ok; 1 a run, report or browser failed.
set -uo pipefail
export LC_ALL=C
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
usage() { echo "usage: $0 --build-dir DIR [--repeats R] [--big] [--keep DIR]" >&2; exit 1; }

build="" repeats=3 sizes=(1000 10000) keep=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build-dir) build="${2:-}"; shift 2 ;;
    --repeats) repeats="${2:-}"; shift 2 ;;
    --big) sizes+=(100000); shift ;;
    --keep) keep="${2:-}"; shift 2 ;;
    -h|--help) usage ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
done
[[ -n $build ]] || usage
tpmlab=$(realpath "$build/harness/cli/tpmlab")
work=${keep:-$(mktemp -d /tmp/tpmlab-report-bench-XXXXXX)}
mkdir -p "$work"
[[ -n $keep ]] || trap 'rm -rf "$work"' EXIT

median() { sort -g | awk '{v[NR]=$1} END {printf "%s (%s-%s)", v[int((NR+1)/2)], v[1], v[NR]}'; }

printf "%-8s %-8s %-26s %-12s %-12s %-26s\n" steps commands "generate s median (min-max)" "size KiB" "run.json MiB" "open s median (min-max)"
for cycles in "${sizes[@]}"; do
  run="$work/power-cycle-$cycles"
  if [[ ! -s $run/run.json ]]; then
    rm -rf "$run"
    [[ -t 2 ]] && echo "making a $cycles-cycle run in $run ..." >&2
    "$tpmlab" run "$src/scenarios/power-cycle.yaml" --cycles "$cycles" -q --out "$run" >"$work/run-$cycles.log" 2>&1
    [[ -s $run/run.json ]] || { echo "the $cycles-cycle run failed: $work/run-$cycles.log" >&2; exit 1; }
  fi
  gen=() opens=()
  for ((i = 0; i < repeats; i++)); do
    start=$(date +%s.%N)
    "$tpmlab" report "$run" -o "$run/report.html" >/dev/null || { echo "tpmlab report failed on $run" >&2; exit 1; }
    gen+=("$(echo "$(date +%s.%N) - $start" | bc)")
    t=$(/usr/bin/python3 "$src/tests/cli/report_browser.py" time "$run/report.html")
    case $? in 0) opens+=("$t") ;; 77) opens+=("skipped") ;; *) echo "Chromium failed on $run/report.html" >&2; exit 1 ;; esac
  done
  steps=$(/usr/bin/python3 -c 'import json,re,sys; h=open(sys.argv[1]).read(); m=json.loads(re.search(r"id=\"report-data\">(.*?)</script>",h,re.S).group(1)); print(m["steps"]["total"], sum(r["count"] for r in m["latency"]))' "$run/report.html")
  printf "%-8s %-8s %-26s %-12s %-12s %-26s\n" ${steps% *} ${steps#* } "$(printf '%s\n' "${gen[@]}" | median)" \
    $(( $(stat -c %s "$run/report.html") / 1024 )) $(( $(stat -c %s "$run/run.json") / 1048576 )) \
    "$(printf '%s\n' "${opens[@]}" | median)"
done
