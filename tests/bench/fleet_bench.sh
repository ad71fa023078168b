#!/usr/bin/env bash
# Aggregate verified power cycles per second of tpmlab run --duts N on
# scenarios/power-cycle.yaml, for N = 1, 2, 4 and 8 emulated DUTs: the median
# of --runs runs per point (runs interleaved, so a load that comes and goes
# hits every point alike), its ratio to one DUT, and its ratio to the goal of
# issue 15 (0.85 x min(N, cores) x one DUT's rate: two DUTs on two cores must
# reach 1.7x; past the core count the rate must not collapse).
#
#   tests/bench/fleet_bench.sh [--build-dir out/build/default] [--seconds 20] [--runs 3] [--duts "1 2 4 8"]
#
# Each point runs about --seconds: the cycles per DUT are sized from a short
# calibration run of one DUT (at least 100 each, so that starting N chips
# does not dominate a point). The aggregate rate is fleet.json's: all DUTs'
# verified cycles over the fleet's wall time (swtpm start-up included).
set -euo pipefail
build=out/build/default
seconds=20
runs=3
duts="1 2 4 8"
while [[ $# -gt 0 ]]; do
  case $1 in
    --build-dir) build=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --duts) duts=$2; shift 2 ;;
    *) echo "usage: $0 [--build-dir DIR] [--seconds S] [--runs R] [--duts \"1 2 4 8\"]" >&2; exit 2 ;;
  esac
done
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tpmlab=$(realpath "$build/harness/cli/tpmlab")
scenario=$src/scenarios/power-cycle.yaml
cores=$(nproc)
tmp=$(mktemp -d /tmp/tpmlab-fleet-bench-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

rate_of() {  # fleet.json -> aggregate verified cycles/s
  /usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["verified_cycles_per_second"])' "$1"
}
run_point() {  # duts cycles label -> prints the aggregate rate
  local out="$tmp/$3"
  "$tpmlab" run "$scenario" --duts "$1" --cycles "$2" --out "$out" -q >"$tmp/last.out" 2>&1 ||
    { echo "tpmlab run --duts $1 failed:" >&2; cat "$tmp/last.out" >&2; exit 1; }
  rate_of "$out/fleet.json"
  rm -rf "$out"
}

echo "load before: $(uptime)"
calibration=$(run_point 1 100 calibrate)
declare -A cycles
for n in $duts; do
  busy=$(( n < cores ? n : cores ))
  cycles[$n]=$(/usr/bin/python3 -c "import sys; r, s, b, n = map(float, sys.argv[1:]); print(max(100, int(r * s * b / n)))" \
                 "$calibration" "$seconds" "$busy" "$n")
done
echo "one DUT calibrates at $calibration cycles/s; $cores cores; cycles per DUT: $(for n in $duts; do printf '%s:%s ' "$n" "${cycles[$n]}"; done)"

declare -A rates
for ((r = 1; r <= runs; r++)); do
  for n in $duts; do
    rate=$(run_point "$n" "${cycles[$n]}" "n$n-r$r")
    rates[$n]+="$rate "
    echo "run $r/$runs: $n DUT(s) x ${cycles[$n]} cycles: $rate cycles/s" >&2
  done
done

/usr/bin/python3 - "$cores" "$duts" "$(for n in $duts; do printf '%s=%s;' "$n" "${rates[$n]}"; done)" <<'PY'
import statistics, sys
cores = int(sys.argv[1])
points = [int(n) for n in sys.argv[2].split()]
rates = {int(k): [float(x) for x in v.split()] for k, v in (p.split("=") for p in sys.argv[3].split(";") if p)}
one = statistics.median(rates[points[0]]) if points[0] == 1 else None
print(f"{'DUTs':>4}  {'cycles/s (median)':>17}  {'min-max':>13}  {'x one DUT':>9}  {'x goal (0.85 x min(N,cores) x one)':>34}")
for n in points:
    med = statistics.median(rates[n])
    lo, hi = min(rates[n]), max(rates[n])
    ratio = f"{med / one:9.2f}" if one else f"{'-':>9}"
    goal = f"{med / (0.85 * min(n, cores) * one):34.2f}" if one else f"{'-':>34}"
    print(f"{n:>4}  {med:>17.1f}  {lo:>6.1f}-{hi:<6.1f}  {ratio}  {goal}")
PY
echo "load after: $(uptime)"
