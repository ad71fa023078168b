#!/usr/bin/env bash
# What tpmlab run tells a user about each step: the progress line's step
# number is the index run.json, the database, RUN.json:STEP and junit.xml
# use; each step's alarms are on the terminal once per alarm (not per PCR per
# bank) and in the summary; --fail-on-alarm fails the run on an alarm no
# expect names.
#   run_output_cli_test.sh TPMLAB_BINARY SOURCE_DIR
set -uo pipefail
tpmlab=$1
src=$2
tmp=$(mktemp -d /tmp/tpmlab-run-output-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# A BIOS update that moves PXE first, then two cold boots: each boot drifts
# several PCRs in both banks from the golden reference.
mkdir -p "$tmp/firmware" && cp "$src"/scenarios/firmware/*.yaml "$tmp/firmware/"
cat >"$tmp/bios.yaml" <<'YAML'
name: bios
seed: 11
firmware: baseline
steps:
  - boot
  - enroll
  - firmware_update: {platform: boot-order}
  - power_cycle: reset
  - power_cycle: reset
YAML

# 1. Progress lines (forced with --progress: stderr is not a terminal here).
expect_exit 0 "run with --progress" "$tpmlab" run "$tmp/bios.yaml" --progress --out "$tmp/o"
cp "$tmp/stderr" "$tmp/progress"
cp "$tmp/stdout" "$tmp/summary"
/usr/bin/python3 - "$tmp/progress" "$tmp/o/run.json" "$tmp/o/tpmlab.db" <<'PY' || fail "progress numbers are not run.json's indices"
import json, re, sqlite3, sys
progress = open(sys.argv[1]).read().splitlines()
run = json.load(open(sys.argv[2]))
steps = run["steps"]
lines = [l for l in progress if l.startswith("[step")]
assert len(lines) == len(steps), (lines, len(steps))
db = {idx: action for idx, action in sqlite3.connect(sys.argv[3]).execute(
    "SELECT idx, action FROM steps WHERE run_id = ?", (run["run_id"],))}
for line, step in zip(lines, steps):
    m = re.match(r"\[step +(\d+) \| +(\d+)/(\d+)\] (\S+)", line)
    assert m, line
    number, done, total, action = int(m[1]), int(m[2]), int(m[3]), m[4]
    assert number == step["index"] and action == step["action"], (line, step["index"], step["action"])
    assert done == number + 1 and total == len(steps), line
    assert db[number] == action, (number, db)
# The second power cycle: the number the user reads is its index everywhere.
second = next(l for l in lines if "power_cycle #2" in l)
n = int(re.match(r"\[step +(\d+)", second)[1])
assert steps[n]["cycle"] == 2, steps[n]
# One alarm line per alarm: PCR_POLICY_MISMATCH once per drifted boot, with its PCRs and banks.
alarm_lines = [l.strip() for l in progress if l.strip().startswith("alarm ")]
policy = [l for l in alarm_lines if l.startswith("alarm PCR_POLICY_MISMATCH")]
assert len(policy) == 2, alarm_lines
assert re.match(r"alarm PCR_POLICY_MISMATCH: PCR [0-9,]+ \(sha1, sha256\)$", policy[0]), policy
per_step = [len([a for a in s["alarms"] if a["code"] == "PCR_POLICY_MISMATCH"]) for s in steps]
# The findings stay one per PCR per bank, with evidence (here PCR 1 of each
# bank on each drifted boot: the quote covers every bank).
assert per_step == [0, 0, 0, 2, 2], per_step
assert all(a["evidence"]["bank"] in ("sha1", "sha256") and a["evidence"]["pcr"] for s in steps for a in s["alarms"]
           if a["code"] == "PCR_POLICY_MISMATCH"), steps
# summary.alarms counts alarms: one per code per step.
assert run["summary"]["alarms"]["PCR_POLICY_MISMATCH"] == 2, run["summary"]["alarms"]
PY
printf '%s\n' "$(grep -m1 'power_cycle #2' "$tmp/progress")" >"$tmp/line"
n=$(sed -E 's/^\[step +([0-9]+) .*/\1/' "$tmp/line")
grep -qE "alarms: PCR_POLICY_MISMATCH x2 \(steps $((n - 1)), $n\)" "$tmp/summary" \
  || { fail "the summary does not list the alarms by code"; sed 's/^/  | /' "$tmp/summary"; }
# RUN.json:STEP with the number printed: that step's snapshot, drifted from golden.
expect_exit 1 "verify RUN.json:STEP with the printed number" \
  "$tpmlab" verify "$tmp/o/run.json:$n" --enrollment "$tmp/o/enrollment.json" --json
/usr/bin/python3 -c 'import json,sys; v=json.load(open(sys.argv[1])); assert any(a["code"] == "PCR_POLICY_MISMATCH" for a in v["alarms"]), v' \
  "$tmp/stdout" || fail "verify of the printed step has no PCR_POLICY_MISMATCH"
fw=$(grep -m1 'firmware_update' "$tmp/progress" | sed -E 's/^\[step +([0-9]+) .*/\1/')
expect_exit 2 "verify RUN.json:STEP of the firmware_update line (no snapshot)" "$tpmlab" verify "$tmp/o/run.json:$fw"
expect_stderr "that step took no snapshot" "the firmware_update's printed number is its own step"

# 2. --fail-on-alarm: the same scenario fails, exit 1, naming the alarm and step.
expect_exit 1 "run --fail-on-alarm" "$tpmlab" run "$tmp/bios.yaml" --fail-on-alarm -q --out "$tmp/strict"
expect_stderr "expectation not met: step $n \(power_cycle\) raises no alarm no expect step names: raised PCR_POLICY_MISMATCH: PCR" \
  "--fail-on-alarm names the step by its index and the alarm"
/usr/bin/python3 - "$tmp/strict/run.json" "$tmp/strict/junit.xml" "$n" <<'PY' || fail "--fail-on-alarm run.json/junit"
import json, sys
run = json.load(open(sys.argv[1]))
n = int(sys.argv[3])
assert run["status"] == "failed", run["status"]
assert [e["step"] for e in run["expectations"] if not e["passed"]] == [n - 1, n], run["expectations"]
assert f'name="step {n} (power_cycle) raises no alarm' in open(sys.argv[2]).read()
PY
# Without a terminal and without --progress, no progress lines.
expect_exit 0 "run without --progress" "$tpmlab" run "$tmp/bios.yaml" --out "$tmp/quiet"
! grep -q '^\[step' "$tmp/stderr" || fail "progress lines without a terminal or --progress"

# 3. A refusal: named with its hex code on the terminal, in run.json and in the database.
printf 'name: refused\nsteps:\n  - boot\n  - clock_set: 0\n' >"$tmp/refused.yaml"
expect_exit 1 "a refused step no expect names" "$tpmlab" run "$tmp/refused.yaml" --out "$tmp/r"
expect_stderr "expectation not met: step 1 \(clock_set\) is not refused: tpm: TPM2_ClockSet: TPM_RC_VALUE \(0x1c4, parameter 1\): " \
  "the refusal is named, with its hex code"
/usr/bin/python3 - "$tmp/r/run.json" "$tmp/r/tpmlab.db" <<'PY' || fail "the refusal's rc in run.json and the database"
import json, sqlite3, sys
step = json.load(open(sys.argv[1]))["steps"][1]
assert (step["rc"], step["rc_hex"], step["rc_name"]) == (0x1c4, "0x1c4", "TPM_RC_VALUE"), step
row = sqlite3.connect(sys.argv[2]).execute("SELECT rc, rc_name FROM steps WHERE idx = 1").fetchone()
assert row == (0x1c4, "TPM_RC_VALUE"), row
PY

if [[ $failures -ne 0 ]]; then
  echo "run_output_cli_test: $failures failure(s)"
  exit 1
fi
echo "run_output_cli_test: all passed"
