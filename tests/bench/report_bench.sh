#!/usr/bin/env bash
# report_bench.sh: tpmlab report's generation time and file size, and the
# time headless Chromium takes to open the report (navigation to the load
# event), for runs of 1,000 and 10,000 steps (and 100,000 with --big).
#
#   report_bench.sh --build-dir DIR [--repeats R] [--big] [--keep DIR]
#
# The 1k and 10k runs are made once with `tpmlab run scenarios/power-cycle.yaml
# --cycles N` (one step per cycle, ~50 s per 1,000 cycles here); the 100k one
# (--big) is the 1k run's real steps written 100 times over into a database
# by store_bench (a real 100,000-cycle run takes over an hour), reported as
# DB:RUN. Each is reported R times and opened R times; the medians (min-max)
# are printed per size. --keep DIR keeps the runs and reuses them next time.
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
make_run() {  # cycles, folder
  local cycles=$1 run=$2
  if [[ ! -s $run/run.json ]]; then
    rm -rf "$run"
    [[ -t 2 ]] && echo "making a $cycles-cycle run in $run ..." >&2
    "$tpmlab" run "$src/scenarios/power-cycle.yaml" --cycles "$cycles" -q --out "$run" >"$work/run-$cycles.log" 2>&1
    [[ -s $run/run.json ]] || { echo "the $cycles-cycle run failed: $work/run-$cycles.log" >&2; exit 1; }
  fi
}
for cycles in "${sizes[@]}"; do
  run="$work/power-cycle-$cycles" source="$work/power-cycle-$cycles"
  if [[ $cycles -gt 10000 ]]; then
    make_run 1000 "$work/power-cycle-1000"
    run="$work/replicated-$cycles" source="$work/replicated-$cycles.db:1"
    mkdir -p "$run"
    if [[ ! -s $run/done ]]; then
      [[ -t 2 ]] && echo "writing $cycles steps into $run.db ..." >&2
      "$build/tests/bench/store_bench" "$work/power-cycle-1000/tpmlab.db" 1 "$run.db" "$cycles" >"$run/done" ||
        { echo "store_bench failed" >&2; exit 1; }
    fi
  else
    make_run "$cycles" "$run"
  fi
  gen=() opens=()
  for ((i = 0; i < repeats; i++)); do
    start=$(date +%s.%N)
    "$tpmlab" report "$source" -o "$run/report.html" >/dev/null || { echo "tpmlab report failed on $source" >&2; exit 1; }
    gen+=("$(echo "$(date +%s.%N) - $start" | bc)")
    t=$(/usr/bin/python3 "$src/tests/cli/report_browser.py" time "$run/report.html")
    case $? in 0) opens+=("$t") ;; 77) opens+=("skipped") ;; *) echo "Chromium failed on $run/report.html" >&2; exit 1 ;; esac
  done
  steps=$(/usr/bin/python3 -c 'import json,re,sys; h=open(sys.argv[1]).read(); m=json.loads(re.search(r"id=\"report-data\">(.*?)</script>",h,re.S).group(1)); print(m["steps"]["total"], sum(r["count"] for r in m["latency"]))' "$run/report.html")
  printf "%-8s %-8s %-26s %-12s %-12s %-26s\n" ${steps% *} ${steps#* } "$(printf '%s\n' "${gen[@]}" | median)" \
    $(( $(stat -c %s "$run/report.html") / 1024 )) "$([[ -s $run/run.json ]] && echo $(( $(stat -c %s "$run/run.json") / 1048576 )) || echo -)" \
    "$(printf '%s\n' "${opens[@]}" | median)"
done
