#!/usr/bin/env bash
# A run's folder over its life: one run at a time (a second one into a busy
# folder says so at once), never over an earlier run (refused, or with
# --keep-state continued in a sub-folder), --keep-state on an empty folder
# said, every enrollment kept with its step and verify choosing the one in
# force, a database reference to a run that is not there, enroll -o.
#   run_lifecycle_cli_test.sh TPMLAB_BINARY SOURCE_DIR
set -uo pipefail
tpmlab=$(realpath "$1")
src=$2
tmp=$(mktemp -d /tmp/tpmlab-lifecycle-cli-XXXXXX)
background=
trap '[[ -n "$background" ]] && kill "$background" 2>/dev/null; rm -rf "$tmp"' EXIT
failures=0

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
expect_stdout() {  # pattern, description
  grep -qE -- "$1" "$tmp/stdout" || { fail "$2: stdout lacks /$1/"; sed 's/^/  | /' "$tmp/stdout"; }
}
py() { /usr/bin/python3 - "$@"; }

# 1. Every enrollment kept with its step: the cleared TPM's step raised
# AK_UNKNOWN against the first enrollment; verifying it after the run, with
# the run's enrollment.json, judges it against that one, not the second.
expect_exit 0 "clear and re-enroll" "$tpmlab" run "$src/scenarios/alarm-tpm-cleared.yaml" --out "$tmp/cleared" -q
py "$tmp/cleared" >"$tmp/steps" <<'PY' || fail "enrollment.json does not keep both enrollments with their steps"
import json, sys
d = sys.argv[1]
run = json.load(open(d + "/run.json"))
e = json.load(open(d + "/enrollment.json"))
enrolls = [s["index"] for s in run["steps"] if s["action"] == "enroll"]
assert [x["step"] for x in e["enrollments"]] == enrolls and len(enrolls) == 2, (e.get("enrollments"), enrolls)
# The latest is also at top level, for readers of one enrollment.
assert e["ak_name"] == e["enrollments"][-1]["ak_name"] and e["step"] == enrolls[-1], e
assert e["enrollments"][0]["ak_name"] != e["enrollments"][1]["ak_name"], "the clear made a new AK"
cleared = [s["index"] for s in run["steps"] if any(a["code"] == "AK_UNKNOWN" for a in s["alarms"])]
last = [s["index"] for s in run["steps"] if s.get("snapshot")][-1]
assert len(cleared) == 1 and cleared[0] < enrolls[1] < last, (cleared, enrolls, last)
print(cleared[0], last)
PY
read -r cleared_step last_step <"$tmp/steps"
expect_exit 1 "verify the cleared step with the run's enrollment.json" \
  "$tpmlab" verify "$tmp/cleared/run.json:$cleared_step" --enrollment "$tmp/cleared/enrollment.json"
expect_stdout "AK_UNKNOWN" "the step's alarm, judged against the enrollment in force then"
expect_stdout "^enrollment: .*made at step [0-9]+ \(in force at step $cleared_step\)" "says which enrollment"
expect_exit 1 "the same from the database" \
  "$tpmlab" verify "$tmp/cleared/tpmlab.db:1:$cleared_step" --enrollment "$tmp/cleared/enrollment.json" --json
py "$tmp/stdout" <<'PY' || fail "verify --json does not name the enrollment it used"
import json, sys
v = json.load(open(sys.argv[1]))
assert "AK_UNKNOWN" in [a["code"] for a in v["alarms"]], v["alarms"]
assert v["enrollment"]["enrollments"] == 2 and v["enrollment"]["step"] >= 0, v["enrollment"]
PY
expect_exit 0 "verify the last step: the re-enrollment is in force" \
  "$tpmlab" verify "$tmp/cleared/run.json:$last_step" --enrollment "$tmp/cleared/enrollment.json"
expect_stdout "^no alarm" "no alarm after re-enrollment"
# A file of one enrollment (tpmlab enroll -o, or an older tpmlab's run) still reads.
expect_exit 0 "enroll -o" "$tpmlab" enroll "$tmp/cleared/run.json:0" -o "$tmp/single.json"
py "$tmp/single.json" <<'PY' || fail "enroll -o did not write one enrollment"
import json, sys
e = json.load(open(sys.argv[1]))
assert "enrollments" not in e and e["ak_name"], e
PY
expect_exit 0 "verify against a single enrollment" \
  "$tpmlab" verify "$tmp/cleared/run.json:0" --enrollment "$tmp/single.json"

# 2. A database reference to a run or step that is not there says which.
expect_exit 2 "a run the database does not hold" "$tpmlab" verify "$tmp/cleared/tpmlab.db:9:2"
expect_stderr "there is no run 9 in this database \(its runs: 1\)" "names the missing run and the runs there"
expect_exit 2 "a step the run does not have" "$tpmlab" verify "$tmp/cleared/tpmlab.db:1:999"
expect_stderr "run 1 has no step 999 \(its steps: " "names the missing step"

# 3. Never over an earlier run: refused (exit 2), run.json untouched.
before=$(sha256sum <"$tmp/cleared/run.json")
expect_exit 2 "a second run into a folder holding a run" \
  "$tpmlab" run "$src/scenarios/attest.yaml" --out "$tmp/cleared" -q
expect_stderr "already holds a run .*--keep-state" "says why and what to do"
[[ "$(sha256sum <"$tmp/cleared/run.json")" == "$before" ]] || fail "the earlier run.json was overwritten"

# ... or, with --keep-state, the chip continued and the run in a sub-folder.
expect_exit 0 "--keep-state into a folder holding a run" \
  "$tpmlab" run "$src/scenarios/attest.yaml" --out "$tmp/cleared" --keep-state -q
expect_stderr "continues its chip \(.*/cleared/dut0\) and writes this run to .*/cleared/run-2" "says where it went"
expect_stdout "results: .*/cleared/run-2/run.json" "the summary points at the sub-folder"
[[ "$(sha256sum <"$tmp/cleared/run.json")" == "$before" ]] || fail "--keep-state overwrote the earlier run.json"
py "$tmp/cleared" <<'PY' || fail "the continued run is not on the same chip"
import json, sys
d = sys.argv[1]
first = json.load(open(d + "/run.json"))
second = json.load(open(d + "/run-2/run.json"))
assert second["provenance"]["dut_state"].startswith("kept"), second["provenance"]
ek = lambda run: [s["snapshot"]["ek_name"] for s in run["steps"] if s.get("snapshot")][0]
assert ek(first) == ek(second), "the EK changed: a new chip"
assert second["run_id"] == 2, second["run_id"]  # the folder's database, shared
PY

# 4. --keep-state on an empty folder: said on stderr and in the provenance.
expect_exit 0 "--keep-state with no chip to keep" \
  "$tpmlab" run "$src/scenarios/attest.yaml" --out "$tmp/empty" --keep-state -q
expect_stderr "warning: --keep-state: no chip state in .*empty/dut0" "the warning"
py "$tmp/empty/run.json" <<'PY' || fail "the provenance does not say a new chip was made"
import json, sys
p = json.load(open(sys.argv[1]))["provenance"]
assert p["dut_state"].startswith("new: --keep-state found no chip state"), p
PY

# 5. A run that could not start (here: swtpm not installed) still leaves
# run.json and junit.xml saying why, for CI.
expect_exit 4 "a run whose emulator is not installed" \
  env PATH=/nonexistent "$tpmlab" run "$src/scenarios/attest.yaml" --out "$tmp/nostart" -q
expect_stderr "results: .*nostart/run.json \(status error\)" "says where the record is"
py "$tmp/nostart" <<'PY' || fail "a run that could not start left no run.json / junit.xml saying why"
import json, sqlite3, sys
d = sys.argv[1]
run = json.load(open(d + "/run.json"))
assert run["status"] == "error" and "swtpm" in run["error"] and run["steps"] == [], run
junit = open(d + "/junit.xml").read()
assert 'errors="1"' in junit and "could not start" in junit, junit
rows = sqlite3.connect(d + "/tpmlab.db").execute("SELECT id, status FROM runs").fetchall()
assert rows == [(run["run_id"], "error")], rows
PY

# 6. Two runs into one folder at once: the second says the folder is in use
# (exit 3) at once, and the first is not disturbed.
printf 'name: long\nsteps:\n  - boot\n  - wait: 300000\n' >"$tmp/long.yaml"
"$tpmlab" run "$tmp/long.yaml" --out "$tmp/busy" -q >"$tmp/bg.out" 2>"$tmp/bg.err" &
background=$!
booted() {  # the first run's boot step is stored: its chip is up
  py "$tmp/busy/tpmlab.db" <<'PY' 2>/dev/null
import sqlite3, sys
sys.exit(0 if sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM steps").fetchone()[0] > 0 else 1)
PY
}
for _ in $(seq 600); do booted && break; sleep 0.2; done
booted || fail "the first run did not boot"
start=$SECONDS
expect_exit 3 "a second run into a folder in use" timeout 100 "$tpmlab" run "$tmp/long.yaml" --out "$tmp/busy" -q
expect_stderr "busy is in use by another tpmlab run \(pid $background, since " "names the run holding it"
(( SECONDS - start < 60 )) || fail "the second run took $((SECONDS - start)) s to say the folder is in use"
kill -TERM "$background"
wait "$background"
rc=$?
background=
[[ $rc -eq 130 ]] || { fail "the first run ended with $rc, expected 130 (interrupted)"; sed 's/^/  | /' "$tmp/bg.err"; }
py "$tmp/busy/run.json" <<'PY' || fail "the first run was disturbed by the second"
import json, sys
run = json.load(open(sys.argv[1]))
assert run["status"] == "interrupted" and run["steps"][0]["status"] == "passed", (run["status"], run["steps"][:1])
PY

# A run killed with SIGKILL takes its emulator along: no swtpm of it is left.
"$tpmlab" run "$src/scenarios/power-cycle.yaml" --cycles 100000 --out "$tmp/killed" -q >/dev/null 2>&1 &
killed=$!
for _ in $(seq 1 100); do
  pgrep -f -- "--tpmstate dir=$tmp/killed" >/dev/null && break
  sleep 0.1
done
if pgrep -f -- "--tpmstate dir=$tmp/killed" >/dev/null; then
  kill -9 "$killed"; wait "$killed" 2>/dev/null
  for _ in $(seq 1 50); do pgrep -f -- "--tpmstate dir=$tmp/killed" >/dev/null || break; sleep 0.1; done
  if pgrep -f -- "--tpmstate dir=$tmp/killed" >/dev/null; then
    fail "kill -9 of tpmlab left its swtpm running: $(pgrep -af -- "--tpmstate dir=$tmp/killed")"
    pkill -9 -f -- "--tpmstate dir=$tmp/killed"
  else
    echo "ok: kill -9 of a run takes its swtpm along"
  fi
else
  fail "the run to kill never launched its swtpm"; kill -9 "$killed" 2>/dev/null
fi

if [[ $failures -ne 0 ]]; then
  echo "run_lifecycle_cli_test: $failures failure(s)"
  exit 1
fi
echo "run_lifecycle_cli_test: all passed"
