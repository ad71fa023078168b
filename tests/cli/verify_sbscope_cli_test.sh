#!/usr/bin/env bash
# Secure Boot from verified events only, and one replay scope, as a user meets
# them: runs on auto-launched swtpms, then `tpmlab verify` (stored steps and
# loose files), `tpmlab diff`, and the run's doctor step.
#   verify_sbscope_cli_test.sh TPMLAB_BINARY SOURCE_DIR
set -uo pipefail
tpmlab=$1
src=$2
tmp=$(mktemp -d /tmp/tpmlab-sbscope-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

models="$src/scenarios/firmware"

# The codes of a verdict (`verify --json` output) as one sorted line, and a
# check that they are exactly the expected ones.
codes() { /usr/bin/python3 -c 'import json,sys; print(" ".join(sorted(a["code"] for a in json.load(open(sys.argv[1]))["alarms"])))' "$1"; }
expect_codes() {  # expected codes (sorted, space separated), description
  local got; got=$(codes "$tmp/stdout")
  [[ "$got" == "$1" ]] || { fail "$2: alarms '$got', expected '$1'"; head -c 2000 "$tmp/stdout"; }
}
# The index of the Nth step (0-based) with this action.
step_of() {  # run.json action n
  /usr/bin/python3 -c 'import json,sys; s=[x["index"] for x in json.load(open(sys.argv[1]))["steps"] if x["action"]==sys.argv[2]]; print(s[int(sys.argv[3])])' "$1" "$2" "$3"
}

# 1. The replay scope: IMA extends PCR 10 after boot (nothing to replay it
#    against in the firmware log: no alarm, doctor ok, no unexplained drift);
#    an unlogged extend of PCR 11 (a measured-boot PCR) is a replay mismatch.
#    No enroll: golden PCR values (which include PCR 10) are not this test's.
cat >"$tmp/scope.yaml" <<YAML
name: sbscope-scope
seed: 1207
firmware: $models/baseline.yaml
steps:
  - boot
  - extend: {pcr: 10, data: "ima: boot_aggregate"}
  - doctor
  - verify
  - extend: {pcr: 11, data: "systemd-pcrphase: enter-initrd"}
  - verify
YAML
expect_exit 0 "run: IMA extends PCR 10, then an unlogged PCR 11 extend" \
  "$tpmlab" run "$tmp/scope.yaml" --out "$tmp/scope"
run="$tmp/scope/run.json"
ima=$(step_of "$run" verify 0)
pcr11=$(step_of "$run" verify 1)
/usr/bin/python3 - "$run" "$ima" "$pcr11" <<'PY' || fail "the run's replay and doctor do not follow the scope"
import json, sys
run = json.load(open(sys.argv[1]))
steps = {s["index"]: s for s in run["steps"]}
ima, pcr11 = steps[int(sys.argv[2])], steps[int(sys.argv[3])]
assert ima["alarms"] == [], ima["alarms"]
assert ima["snapshot"]["eventlog"]["replay_matches"] == {"sha1": True, "sha256": True}, ima["snapshot"]["eventlog"]
doctor = [s for s in run["steps"] if s["action"] == "doctor"][0]
replay = [c for c in doctor["checks"] if c["name"] == "doctor eventlog_replay"]
assert len(replay) == 1 and replay[0]["passed"] and replay[0]["detail"].startswith("ok"), replay
replayed = [a for a in pcr11["alarms"] if a["code"] == "PCR_REPLAY_MISMATCH"]
assert sorted((a["evidence"]["bank"], a["evidence"]["pcr"]) for a in replayed) == [("sha1", "11"), ("sha256", "11")], replayed
assert pcr11["snapshot"]["eventlog"]["replay_matches"] == {"sha1": [11], "sha256": [11]}, pcr11["snapshot"]["eventlog"]
PY

expect_exit 0 "verify the IMA-extended step" "$tpmlab" verify "$run:$ima" --json
expect_codes "" "IMA-extended PCR 10"
expect_exit 1 "diff the boot and the IMA-extended step" "$tpmlab" diff --json "$run:0" "$run:$ima"
/usr/bin/python3 - "$tmp/stdout" <<'PY' || fail "PCR 10 drift is listed, never unexplained"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["pcrs"] == {"sha1": [10], "sha256": [10]}, d["pcrs"]
assert not [c for c in d["causes"] if c["code"] == "UNEXPLAINED_PCR_CHANGE"], d["causes"]
PY
expect_exit 1 "verify the step after an unlogged PCR 11 extend" "$tpmlab" verify "$run:$pcr11" --json
expect_codes "PCR_REPLAY_MISMATCH PCR_REPLAY_MISMATCH" "unlogged PCR 11"
expect_exit 1 "diff across the unlogged PCR 11 extend" "$tpmlab" diff --json "$run:$ima" "$run:$pcr11"
/usr/bin/python3 - "$tmp/stdout" <<'PY' || fail "PCR 11 drift is not unexplained"
import json, sys
d = json.load(open(sys.argv[1]))
assert {"code": "UNEXPLAINED_PCR_CHANGE", "pcr": 11} in [{"code": c["code"], "pcr": c["pcr"]} for c in d["causes"]], d
PY

# 2. Secure Boot off on the TPM, a log edited to say on: the SecureBoot
#    variable's data is 01, its digests are of 00 (what was extended). The
#    log still replays; the variable is not trusted.
cat >"$tmp/sboff.yaml" <<YAML
name: sbscope-sboff
seed: 1208
firmware: $models/secure-boot-off.yaml
steps:
  - boot
  - extend: {pcr: 0, data: "an unlogged firmware measurement"}
  - verify
YAML
expect_exit 0 "run: Secure Boot off, then an unlogged PCR 0 extend" "$tpmlab" run "$tmp/sboff.yaml" --out "$tmp/sboff"
expect_exit 1 "verify the Secure Boot off boot" "$tpmlab" verify "$tmp/sboff/run.json:0" --json
expect_codes "SECURE_BOOT_DISABLED" "Secure Boot off, log as measured"

# 2b. A log that does not replay is not read: Secure Boot (off in that log) is
#    not judged, the replay alarm says why.
after=$(step_of "$tmp/sboff/run.json" verify 0)
expect_exit 1 "verify the step after the unlogged PCR 0 extend" "$tpmlab" verify "$tmp/sboff/run.json:$after" --json
expect_codes "PCR_REPLAY_MISMATCH PCR_REPLAY_MISMATCH" "log that does not replay"
/usr/bin/python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))
assert [n for n in v["not_run"] if n.startswith("SECURE_BOOT_DISABLED: ") and "does not replay" in n], v["not_run"]
' "$tmp/stdout" || fail "SECURE_BOOT_DISABLED is not listed as not run for a log that does not replay"

# 2c. The log of the boot edited in place (after 2b: that step shares the file).
log=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["steps"][0]["snapshot"]["eventlog"]["file"])' "$tmp/sboff/run.json")
/usr/bin/python3 - "$tmp/sboff/$log" "$tmp/lie.bin" <<'PY' || fail "could not edit the SecureBoot variable"
import sys
data = bytearray(open(sys.argv[1], "rb").read())
guid = bytes.fromhex("61dfe48bca93d211aa0d00e098032b8c")
head = guid + (10).to_bytes(8, "little") + (1).to_bytes(8, "little") + "SecureBoot".encode("utf-16-le")
at = data.find(head)
assert at >= 0 and data.find(head, at + 1) < 0, "one SecureBoot variable expected"
value = at + len(head)
assert data[value] == 0, data[value]
data[value] = 1  # the data now says enabled; the digests still say 00
open(sys.argv[2], "wb").write(data)
PY
cp "$tmp/lie.bin" "$tmp/sboff/$log"
expect_exit 1 "verify the step whose log lies about Secure Boot" "$tpmlab" verify "$tmp/sboff/run.json:0" --json
expect_codes "EVENT_DIGEST_MISMATCH SECURE_BOOT_DISABLED" "SecureBoot variable with a bad digest"
grep -q "Host Secure Boot cannot be established from the event log" "$tmp/stdout" \
  || fail "the bad-digest SECURE_BOOT_DISABLED does not say the state cannot be established"

# The same evidence as loose files (what tpm2_quote writes), with the edited log.
write_loose_files "$tmp/sboff/run.json" 0 "$tmp/q" || fail "could not write the loose files"
loose=(--quote "$tmp/q.attest" --signature "$tmp/q.sig" --ak "$tmp/q.ak.der" --pcrs "$tmp/q.pcrs.json"
       --nonce "$(cat "$tmp/q.nonce")")
expect_exit 1 "verify loose files with the lying log" "$tpmlab" verify "${loose[@]}" --log "$tmp/lie.bin" --json
expect_codes "EVENT_DIGEST_MISMATCH SECURE_BOOT_DISABLED" "loose files: SecureBoot variable with a bad digest"

echo "$failures failure(s)"
[[ $failures -eq 0 ]]
