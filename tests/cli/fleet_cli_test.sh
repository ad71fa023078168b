#!/usr/bin/env bash
# Many DUTs at once: tpmlab run --duts N and several --bench. One folder per
# DUT with its run.json, one database with a run row each, OUT/fleet.json,
# exit status the worst DUT's; a DUT that cannot start does not stop the
# others; bad input runs nothing; Ctrl-C interrupts every DUT, each keeps
# its run.json and no swtpm outlives tpmlab; one DUT is today's tpmlab run.
#   fleet_cli_test.sh TPMLAB_BINARY SOURCE_DIR
set -uo pipefail
tpmlab=$(realpath "$1")
src=$2
tmp=$(mktemp -d /tmp/tpmlab-fleet-cli-XXXXXX)
background=
trap '[[ -n "$background" ]] && kill -9 "$background" 2>/dev/null; rm -rf "$tmp"' EXIT
failures=0

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
expect_stdout() {  # pattern, description
  grep -qE -- "$1" "$tmp/stdout" || { fail "$2: stdout lacks /$1/"; sed 's/^/  | /' "$tmp/stdout"; }
}
# swtpm processes started for this test's folders (their command lines name them).
our_swtpms() { pgrep -af swtpm | grep -F -- "$tmp" || true; }

# 1. Three emulated DUTs: three folders, three run rows in one database,
# fleet.json naming each folder, run id, status and exit code; exit 0.
expect_exit 0 "--duts 3" "$tpmlab" run "$src/scenarios/power-cycle.yaml" --duts 3 --cycles 4 --out "$tmp/three" -q
expect_stdout "^tpmlab run passed: power-cycle on 3 DUTs" "the fleet's verdict"
expect_stdout "^  dut2 +passed .* exit 0 " "a line per DUT"
check_py "three folders, three runs in one database, fleet.json" '
import json, sqlite3, sys, os
out = sys.argv[1]
fleet = json.load(open(out + "/fleet.json"))
assert fleet["exit_code"] == 0 and fleet["status"] == "passed", fleet
assert [d["name"] for d in fleet["duts"]] == ["dut0", "dut1", "dut2"], fleet["duts"]
rows = dict(sqlite3.connect(out + "/tpmlab.db").execute("select id, status from runs").fetchall())
assert len(rows) == 3 and set(rows.values()) == {"passed"}, rows
ids = set()
for d in fleet["duts"]:
    run = json.load(open(os.path.join(out, d["folder"], "run.json")))
    assert d["folder"] == d["name"] and d["status"] == "passed" and d["exit_code"] == 0, d
    assert run["run_id"] == d["run_id"] and run["status"] == "passed", (run["run_id"], d)
    assert run["database"] == fleet["database"], run["database"]
    assert d["verified_cycles"] == 4 and d["steps"] == 6, d
    assert os.path.exists(os.path.join(out, d["folder"], "junit.xml")), d
    assert run["dut"]["name"] == d["name"], run["dut"]
    ids.add(run["run_id"])
assert ids == set(rows), (ids, rows)
' "$tmp/three"
# --progress: every step, prefixed with its DUT.
expect_exit 0 "--duts 2 --progress" "$tpmlab" run "$src/scenarios/power-cycle.yaml" --duts 2 --cycles 2 \
  --out "$tmp/progress" --progress
for dut in dut0 dut1; do
  grep -qE "^$dut \[step +3 \| 4/4\] power_cycle #2" "$tmp/stderr" || fail "no prefixed progress line for $dut"
done

# 2. The worst exit status: one bench's chip cannot start (a TPM device that
# is not there), the other runs and passes; the fleet exits 3, the failed
# DUT's folder still has run.json saying why.
cat >"$tmp/look.yaml" <<'YAML'
name: look
platform: {firmware: baseline}
steps:
  - boot
  - snapshot
YAML
printf 'name: lab\ndut: {transport: device, path: %s/no-such-tpmrm9}\n' "$tmp" >"$tmp/lab.yaml"
expect_exit 3 "a bench whose chip cannot start" "$tpmlab" run "$tmp/look.yaml" --bench "$src/hw/benches/emulated.yaml" \
  --bench "$tmp/lab.yaml" --out "$tmp/worst" -q
expect_stdout "^tpmlab run error: look on 2 DUTs" "the fleet's verdict is the worst"
expect_stderr "lab: the run could not start: .*no-such-tpmrm9" "says which DUT did not start and why"
check_py "the others ran; each DUT has its status and exit code" '
import json, sys
out = sys.argv[1]
fleet = json.load(open(out + "/fleet.json"))
duts = {d["name"]: d for d in fleet["duts"]}
assert fleet["exit_code"] == 3 and fleet["status"] == "error", fleet
assert duts["emulated"]["status"] == "passed" and duts["emulated"]["exit_code"] == 0, duts
assert duts["emulated"]["steps"] == 2, duts["emulated"]
assert duts["lab"]["status"] == "error" and duts["lab"]["exit_code"] == 3, duts["lab"]
run = json.load(open(out + "/lab/run.json"))
assert run["status"] == "error" and "no-such-tpmrm9" in run["error"], run["error"]
assert duts["lab"]["run_id"] == run["run_id"], (duts["lab"], run["run_id"])
' "$tmp/worst"
# A failed expectation (exit 1) on the DUT that runs, the other not
# starting (3): the fleet exits 3, the worse; the DUT keeps its own 1.
cat >"$tmp/fails.yaml" <<'YAML'
name: fails
platform: {firmware: baseline}
steps:
  - boot
  - snapshot
  - expect: {alarms: [EK_CHANGED]}
YAML
expect_exit 3 "a failing DUT and one that cannot start" "$tpmlab" run "$tmp/fails.yaml" \
  --bench "$src/hw/benches/emulated.yaml" --bench "$tmp/lab.yaml" --out "$tmp/failed-error" -q
check_py "failed is less bad than error" '
import json, sys
fleet = json.load(open(sys.argv[1] + "/fleet.json"))
assert [(d["name"], d["status"], d["exit_code"]) for d in fleet["duts"]] == [
    ("emulated", "failed", 1), ("lab", "error", 3)], fleet["duts"]
' "$tmp/failed-error"
# Every DUT failing: exit 1; benches of one name get distinct folders.
expect_exit 1 "failing DUTs" "$tpmlab" run "$tmp/fails.yaml" \
  --bench "$src/hw/benches/emulated.yaml" --bench "$src/hw/benches/emulated.yaml" --out "$tmp/failed" -q
expect_stderr "emulated-2: expectation not met" "names the DUT of each expectation not met"
check_py "benches of one name get distinct folders" '
import json, sys
fleet = json.load(open(sys.argv[1] + "/fleet.json"))
assert [d["name"] for d in fleet["duts"]] == ["emulated", "emulated-2"], fleet["duts"]
assert {d["exit_code"] for d in fleet["duts"]} == {1} and fleet["exit_code"] == 1, fleet
' "$tmp/failed"

# 3. Bad input runs nothing (exit 2): --duts with --bench, --duts 0, a bench
# that cannot run a step of the scenario, a folder holding a single run, a
# fleet folder that already holds a fleet (unless --keep-state).
expect_exit 2 "--duts and --bench" "$tpmlab" run "$tmp/look.yaml" --duts 2 --bench "$tmp/lab.yaml" --out "$tmp/bad1"
expect_stderr "not both" "says to choose one"
expect_exit 2 "--duts 0" "$tpmlab" run "$tmp/look.yaml" --duts 0 --out "$tmp/bad2"
expect_exit 2 "a bench that cannot power-cycle" "$tpmlab" run "$src/scenarios/power-cycle.yaml" \
  --bench "$src/hw/benches/emulated.yaml" --bench "$tmp/lab.yaml" --out "$tmp/bad3"
expect_stderr "a power cycle needs a power switch" "names the step the bench refuses"
[[ -e "$tmp/bad3" ]] && fail "a refused fleet made its folder"
expect_exit 0 "a single run" "$tpmlab" run "$tmp/look.yaml" --out "$tmp/single" -q
expect_exit 2 "a fleet into a single run's folder" "$tpmlab" run "$tmp/look.yaml" --duts 2 --out "$tmp/single"
cp -r "$tmp/three" "$tmp/again"
expect_exit 2 "a fleet over an earlier fleet" "$tpmlab" run "$src/scenarios/power-cycle.yaml" --duts 3 --cycles 1 \
  --out "$tmp/again" -q
expect_stderr "already holds a run" "says why"
expect_exit 0 "--keep-state continues each DUT's chip" "$tpmlab" run "$src/scenarios/power-cycle.yaml" --duts 3 \
  --cycles 1 --out "$tmp/again" -q --keep-state
check_py "each DUT continued in its own sub-folder" '
import json, sys
fleet = json.load(open(sys.argv[1] + "/fleet.json"))
assert [d["folder"] for d in fleet["duts"]] == ["dut0/run-2", "dut1/run-2", "dut2/run-2"], fleet["duts"]
run = json.load(open(sys.argv[1] + "/dut1/run-2/run.json"))
assert run["dut"]["state"].startswith("kept"), run["dut"]["state"]
' "$tmp/again"

# 4. One DUT is today's tpmlab run: no per-DUT folder, no fleet.json.
expect_exit 0 "one --bench" "$tpmlab" run "$tmp/look.yaml" --bench "$src/hw/benches/emulated.yaml" --out "$tmp/one" -q
expect_stdout "^tpmlab run passed: look, seed 1, 2 steps" "the single run's summary"
[[ -f "$tmp/one/run.json" && ! -e "$tmp/one/fleet.json" ]] || fail "one bench did not run as a single run"

# 5. Ctrl-C: every DUT stops between steps, each run ends interrupted with
# its run.json, the fleet exits 130, and no swtpm is left.
"$tpmlab" run "$src/scenarios/power-cycle.yaml" --duts 2 --cycles 100000 --out "$tmp/stop" -q \
  >"$tmp/stop.out" 2>"$tmp/stop.err" &
background=$!
# Until both DUTs have stored a few power cycles (no fixed sleep: a loaded
# machine starts them later).
for _ in $(seq 1 600); do
  n=$(/usr/bin/python3 -c '
import sqlite3, sys
try:
    db = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
    print(db.execute("select count(distinct run_id) from steps where idx >= 4").fetchone()[0])
except Exception:
    print(0)
' "$tmp/stop/tpmlab.db")
  [[ "$n" == 2 ]] && break
  sleep 0.2
done
[[ "$n" == 2 ]] || fail "the two DUTs did not both get going"
kill -INT "$background"
rc=
for _ in $(seq 1 600); do
  kill -0 "$background" 2>/dev/null || { wait "$background"; rc=$?; break; }
  sleep 0.1
done
background=
if [[ "$rc" != 130 ]]; then
  fail "Ctrl-C: exit ${rc:-(still running after 60 s)}, expected 130"; sed 's/^/  | /' "$tmp/stop.err" | tail -20
else
  echo "ok: Ctrl-C stops the fleet (exit 130)"
fi
check_py "every DUT interrupted, with run.json and its row" '
import json, sqlite3, sys
out = sys.argv[1]
fleet = json.load(open(out + "/fleet.json"))
assert fleet["exit_code"] == 130 and fleet["status"] == "interrupted", fleet
rows = dict(sqlite3.connect(out + "/tpmlab.db").execute("select id, status from runs").fetchall())
assert set(rows.values()) == {"interrupted"} and len(rows) == 2, rows
for d in fleet["duts"]:
    run = json.load(open(out + "/" + d["folder"] + "/run.json"))
    assert run["status"] == "interrupted" and d["exit_code"] == 130, (d, run["status"])
    assert d["steps"] >= 5, d
' "$tmp/stop"
left=$(our_swtpms)
[[ -z "$left" ]] || fail "swtpm left running after Ctrl-C: $left"

echo "$failures failure(s)"
[[ $failures -eq 0 ]]
