#!/usr/bin/env bash
# soak_bench.sh: what a long soak costs in memory and storage.
#
#   soak_bench.sh --build-dir DIR [--cycles "1000 10000 100000"] [--scenario FILE]
#
# One `tpmlab run SCENARIO --cycles N` per N (power-cycle.yaml: power cycles
# of every kind, each followed by a verified snapshot), each into a fresh
# folder. Prints per N: max RSS (/usr/bin/time), verified cycles/s, the
# database (with its WAL) and the run files (run.json, junit.xml, event logs,
# inputs, enrollment; not the emulator's own state) in bytes, and bytes per
# cycle. The steady-state figure is the marginal cost between the two largest
# runs, (bytes(N2) - bytes(N1)) / (N2 - N1), which leaves out what every run
# pays once (the first boot, the enrollment, the scenario's copy). The RSS
# ratio is against the smallest N (the goal: <= 1.2 at 100x the cycles).
# 100,000 cycles take about half an hour on a 2-core machine.
set -uo pipefail
export LC_ALL=C
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
build="" cycles="1000 10000" scenario="$src/scenarios/power-cycle.yaml"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build-dir) build="${2:-}"; shift 2 ;;
    --cycles) cycles="${2:-}"; shift 2 ;;
    --scenario) scenario="${2:-}"; shift 2 ;;
    *) echo "usage: $0 --build-dir DIR [--cycles \"1000 10000 100000\"] [--scenario FILE]" >&2; exit 1 ;;
  esac
done
tpmlab="$build/harness/cli/tpmlab"
[[ -x $tpmlab ]] || { echo "no tpmlab at $tpmlab (--build-dir)" >&2; exit 1; }
work=$(mktemp -d /tmp/tpmlab-soak-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT

bytes_of() { du -sb "$@" 2>/dev/null | awk '{s += $1} END {print s + 0}'; }

printf "%8s  %9s  %9s  %12s  %12s  %10s  %10s\n" cycles "maxRSS MB" "cycles/s" "db bytes" "files bytes" "db B/cyc" "files B/cyc"
declare -A rss db files
first=""
for n in $cycles; do
  out=$work/run$n
  start=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "$work/time$n" "$tpmlab" run "$scenario" --cycles "$n" --out "$out" -q >"$work/out$n" 2>&1 ||
    { echo "cycles $n: tpmlab run failed:"; tail -5 "$work/out$n"; exit 1; }
  end=$(date +%s.%N)
  rss[$n]=$(tail -1 "$work/time$n")
  db[$n]=$(bytes_of "$out"/tpmlab.db "$out"/tpmlab.db-wal)
  files[$n]=$(bytes_of "$out"/run.json "$out"/junit.xml "$out"/eventlogs "$out"/inputs "$out"/enrollment.json "$out"/steps*)
  rate=$(awk -v n="$n" -v a="$start" -v b="$end" 'BEGIN {printf "%.1f", n / (b - a)}')
  printf "%8d  %9.1f  %9s  %12d  %12d  %10.0f  %10.0f\n" "$n" "$(awk -v k="${rss[$n]}" 'BEGIN {print k / 1024}')" \
    "$rate" "${db[$n]}" "${files[$n]}" "$(awk -v b="${db[$n]}" -v n="$n" 'BEGIN {print b / n}')" \
    "$(awk -v b="${files[$n]}" -v n="$n" 'BEGIN {print b / n}')"
  [[ -z $first ]] && first=$n
  last_before=${last:-}
  last=$n
  rm -rf "$out"
done
for n in $cycles; do
  awk -v a="${rss[$n]}" -v b="${rss[$first]}" -v n="$n" -v f="$first" \
    'BEGIN {printf "max RSS at %d cycles / at %d: %.2f\n", n, f, a / b}'
done
if [[ -n ${last_before:-} ]]; then
  awk -v d2="${db[$last]}" -v d1="${db[$last_before]}" -v f2="${files[$last]}" -v f1="${files[$last_before]}" \
      -v n2="$last" -v n1="$last_before" \
    'BEGIN {printf "steady state, %d -> %d cycles: %.0f B/cycle of database + %.0f B/cycle of run files = %.0f B/cycle\n",
            n1, n2, (d2 - d1) / (n2 - n1), (f2 - f1) / (n2 - n1), (d2 - d1 + f2 - f1) / (n2 - n1)}'
fi
