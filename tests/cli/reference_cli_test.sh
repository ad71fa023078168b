#!/usr/bin/env bash
# `tpmlab reference SOURCE -o DIR`: golden PCRs and Keylime's mb_refstate and
# tpm_policy from runs made here (swtpm auto-launched), from an enrollment,
# and from the public fixture logs when present, each checked against the
# event log it came from by reference_check.py (its own parser); bad input
# exits 2 naming what.
#   reference_cli_test.sh TPMLAB_BINARY SOURCE_DIR
set -uo pipefail
tpmlab=$1
src=$2
here=$(dirname "${BASH_SOURCE[0]}")
tmp=$(mktemp -d /tmp/tpmlab-reference-cli-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0
source "$here/lib.sh"
check=(/usr/bin/python3 "$here/reference_check.py")

# A healthy boot: every field Keylime documents, from the run's one log.
expect_exit 0 "attest run" "$tpmlab" run "$src/scenarios/attest.yaml" --out "$tmp/attest" -q
expect_exit 0 "reference from a run folder" "$tpmlab" reference "$tmp/attest" -o "$tmp/ref-attest"
expect_exit 0 "its fields against the run's log" "${check[@]}" "$tmp/ref-attest" "$tmp"/attest/eventlogs/*.bin
grep -q "kernel_authcode_sha256" "$tmp/ref-attest/keylime/mb_refstate.json" || fail "attest: no kernels entry"
expect_exit 0 "reference from DB:RUN" "$tpmlab" reference "$tmp/attest/tpmlab.db:1" -o "$tmp/ref-db"
cmp -s "$tmp/ref-attest/keylime/mb_refstate.json" "$tmp/ref-db/keylime/mb_refstate.json" || fail "DB:RUN and the folder differ"

# A BIOS update, then re-enrollment: the run's last snapshot and its latest
# enrollment are firmware B, whose PCR 0 is not the first enrollment's.
expect_exit 0 "firmware update run" "$tpmlab" run "$src/scenarios/alarm-platform-firmware-update.yaml" --out "$tmp/fwup" -q
/usr/bin/python3 - "$tmp/fwup/enrollment.json" "$tmp" <<'PY'
import json, sys
e = json.load(open(sys.argv[1]))
open(sys.argv[2] + "/fwup-b.log", "wb").write(bytes.fromhex(e["golden_eventlog"]))
json.dump(e["golden_pcrs"], open(sys.argv[2] + "/fwup-b.pcrs.json", "w"))
json.dump(e["enrollments"][0]["golden_pcrs"], open(sys.argv[2] + "/fwup-a.pcrs.json", "w"))
PY
for how in "" --enrolled; do
  expect_exit 0 "reference ${how:-(last snapshot)} after the update" "$tpmlab" reference "$tmp/fwup/run.json" $how -o "$tmp/ref-fwup$how"
  expect_exit 0 "  against firmware B's log and PCRs" "${check[@]}" "$tmp/ref-fwup$how" "$tmp/fwup-b.log" "$tmp/fwup-b.pcrs.json"
  check_py "  PCR 0 is firmware B's, not A's" '
import json, sys
g = json.load(open(sys.argv[1]))["pcrs"]["sha256"]["0"]
assert g != json.load(open(sys.argv[2]))["sha256"]["0"] and g == json.load(open(sys.argv[3]))["sha256"]["0"]
' "$tmp/ref-fwup$how/golden-pcrs.json" "$tmp/fwup-a.pcrs.json" "$tmp/fwup-b.pcrs.json"
done
expect_exit 0 "reference from the boot before the update (--step 0)" "$tpmlab" reference "$tmp/fwup" --step 0 -o "$tmp/ref-fwup-a"
check_py "  step 0 PCR 0 is firmware A's" '
import json, sys
assert json.load(open(sys.argv[1]))["pcrs"]["sha256"]["0"] == json.load(open(sys.argv[2]))["sha256"]["0"]
' "$tmp/ref-fwup-a/golden-pcrs.json" "$tmp/fwup-a.pcrs.json"
expect_exit 0 "reference from enrollment.json" "$tpmlab" reference "$tmp/fwup/enrollment.json" -o "$tmp/ref-enr"
expect_exit 0 "  against its own log" "${check[@]}" "$tmp/ref-enr" "$tmp/fwup-b.log" "$tmp/fwup-b.pcrs.json"

# Bad input: exit 2 naming what, nothing written.
expect_exit 2 "no such source" "$tpmlab" reference "$tmp/nothing" -o "$tmp/bad1"
expect_stderr "nothing: no such run folder" "no such source"
expect_exit 2 "PCR 10 in --pcrs" "$tpmlab" reference "$tmp/attest" --pcrs 0-10 -o "$tmp/bad2"
expect_stderr "PCR 10 \(IMA\)" "PCR 10 in --pcrs"
expect_exit 2 "--step on an enrollment" "$tpmlab" reference "$tmp/fwup/enrollment.json" --step 1 -o "$tmp/bad3"
expect_exit 2 "a step past the run" "$tpmlab" reference "$tmp/fwup" --step 99 -o "$tmp/bad4"
expect_stderr "step 99" "a step past the run"
expect_exit 2 "an existing output" "$tpmlab" reference "$tmp/attest" -o "$tmp/ref-attest"
expect_stderr "exists" "an existing output"
/usr/bin/python3 - "$tmp/fwup/enrollment.json" "$tmp/edited.json" <<'PY'
import json, sys
e = json.load(open(sys.argv[1]))
for record in [e] + e["enrollments"]:
    record["golden_pcrs"]["sha256"]["4"] = "00" * 32
json.dump(e, open(sys.argv[2], "w"))
PY
expect_exit 2 "PCRs the log does not explain" "$tpmlab" reference "$tmp/edited.json" -o "$tmp/bad5"
expect_stderr "does not replay to the sha256 PCRs 4" "PCRs the log does not explain"
[[ ! -e $tmp/bad5/golden-pcrs.json ]] || fail "a refused source wrote golden-pcrs.json"

# The public fixture logs: golden PCRs equal their independent replay
# (expected.json); every Keylime field against the log; malformed ones exit 2.
fixtures="${TPMLAB_FIXTURES_DIR:-$src/../shared/fixtures}/eventlogs"
if [[ -f "$fixtures/expected.json" ]]; then
  check_py "every fixture log through tpmlab reference" '
import json, subprocess, sys
tpmlab, folder, check, tmp = sys.argv[1:5]
expected = json.load(open(folder + "/expected.json"))
checked = 0
for name, want in expected.items():
    out = tmp + "/fx-" + name
    r = subprocess.run([tpmlab, "reference", folder + "/" + name, "-o", out], capture_output=True)
    if want["expect"] == "malformed":
        assert r.returncode == 2 and b"malformed" in r.stderr, (name, r.returncode, r.stderr)
        continue
    if want["expect"] != "replays":
        continue
    assert r.returncode == 0, (name, r.stderr)
    if want["format"] != "crypto-agile":
        assert b"no sha256" in r.stderr, name
        continue
    json.dump(want["pcrs"], open(out + ".pcrs.json", "w"))
    c = subprocess.run(["/usr/bin/python3", check, out, folder + "/" + name, out + ".pcrs.json"], capture_output=True)
    assert c.returncode == 0, (name, c.stdout, c.stderr)
    checked += 1
assert checked >= 20, checked
print("checked", checked)
' "$tpmlab" "$fixtures" "$here/reference_check.py" "$tmp"
else
  echo "skipped: the fixture logs ($fixtures) are absent"
fi

[[ $failures -eq 0 ]] && echo "all passed" || echo "$failures failed"
exit $((failures > 0))
