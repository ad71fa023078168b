#!/usr/bin/env bash
# run_board_bench.sh: the QEMU + OVMF board's figures.
#
#   run_board_bench.sh --build-dir DIR [--runs R] [--bench FILE]
#
# Each run is one `tpmlab run` of a scenario that boots the board, snapshots
# three times and does every power cycle the board can (reset, resume,
# power-loss, hard-loss), each followed by a snapshot; the same scenario runs
# on the embedded default (swtpm over its socket) right after, so both see
# the same machine noise. Prints, as medians over the runs (min-max):
#   - seconds per boot, split firmware / kernel / agent (from the console and
#     the agent's hello), and per power-cycle kind (the step's wall time);
#   - seconds per snapshot on the board and on swtpm;
#   - per-command latency through the agent vs swtpm's socket (µs, medians
#     of every command of that code in the run's snapshots) and the ratio.
# Accel (kvm or tcg) is printed: KVM figures come from a machine where it works.
set -uo pipefail
export LC_ALL=C
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
build="" runs=3 bench="$src/hw/benches/qemu-ovmf.yaml"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build-dir) build="${2:-}"; shift 2 ;;
    --runs) runs="${2:-}"; shift 2 ;;
    --bench) bench="${2:-}"; shift 2 ;;
    *) echo "usage: $0 --build-dir DIR [--runs R] [--bench FILE]" >&2; exit 1 ;;
  esac
done
tpmlab="$build/harness/cli/tpmlab"
[[ -x "$tpmlab" ]] || { echo "no tpmlab under $build/harness/cli" >&2; exit 1; }
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "--runs must be a positive number" >&2; exit 1; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cat >"$work/board-bench.yaml" <<'YAML'
name: board-bench
seed: 1
firmware: baseline
steps:
  - boot
  - snapshot
  - snapshot
  - snapshot
  - power_cycle: reset
  - power_cycle: resume
  - power_cycle: power-loss
  - power_cycle: hard-loss
YAML
for r in $(seq 1 "$runs"); do
  [[ -t 1 ]] && echo "run $r/$runs: board" >&2
  "$tpmlab" run "$work/board-bench.yaml" --bench "$bench" -o "$work/board-$r" --quiet >/dev/null 2>"$work/board-$r.err" ||
    { echo "board run $r failed:" >&2; tail -5 "$work/board-$r.err" >&2; exit 1; }
  [[ -t 1 ]] && echo "run $r/$runs: swtpm" >&2
  "$tpmlab" run "$work/board-bench.yaml" -o "$work/swtpm-$r" --quiet >/dev/null 2>"$work/swtpm-$r.err" ||
    { echo "swtpm run $r failed:" >&2; tail -5 "$work/swtpm-$r.err" >&2; exit 1; }
done
/usr/bin/python3 - "$work" "$runs" <<'PY'
import json, statistics, sys
work, runs = sys.argv[1], int(sys.argv[2])
def med(xs):
    return "%.2f (%.2f-%.2f)" % (statistics.median(xs), min(xs), max(xs)) if xs else "-"
split = {k: [] for k in ("firmware", "kernel", "agent", "total")}
cycle = {}
snap = {"board": [], "swtpm": []}
lat = {"board": {}, "swtpm": {}}
accel = set()
for r in range(1, runs + 1):
    for who in ("board", "swtpm"):
        run = json.load(open(f"{work}/{who}-{r}/run.json"))
        for s in run["steps"]:
            d = s.get("detail", {}).get("board")
            if who == "board" and d:
                accel.add(d.get("accel", "?"))
                if s["action"] == "boot":
                    for k in split:
                        split[k].append(d["boot_ms"][k] / 1000)
            if who == "board" and s["action"] == "power_cycle":
                cycle.setdefault(s["kind"], []).append(s["duration_ms"] / 1000)
            if s["action"] == "snapshot":
                snap[who].append(s["duration_ms"] / 1000)
            for cmd, us in ((s.get("snapshot") or {}).get("latency_us") or {}).items():
                lat[who].setdefault(cmd, []).append(us)
print(f"board accel: {', '.join(sorted(accel))}; {runs} runs; medians (min-max)")
print("boot, seconds: " + ", ".join(f"{k} {med(v)}" for k, v in split.items()))
for kind, v in sorted(cycle.items()):
    print(f"power cycle {kind}: {med(v)} s (to the agent's hello and a snapshot)")
print(f"snapshot: board {med(snap['board'])} s, swtpm {med(snap['swtpm'])} s")
print("per-command latency, µs: command  board(agent)  swtpm(socket)  ratio")
for cmd in sorted(set(lat["board"]) & set(lat["swtpm"])):
    b, w = statistics.median(lat["board"][cmd]), statistics.median(lat["swtpm"][cmd])
    print(f"  {cmd:28s} {b:10.0f} {w:10.0f} {b / w if w else float('nan'):8.1f}x")
PY
