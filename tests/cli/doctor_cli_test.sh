#!/usr/bin/env bash
# `tpmlab doctor` as a user meets it: all clear on the embedded swtpm, the
# JSON form, a kept --state, an enrollment that matches and one that does
# not, a log that does not replay, and the exit codes for bad input and a
# missing emulator.
#   doctor_cli_test.sh TPMLAB_BINARY SOURCE_DIR
set -uo pipefail
tpmlab=$(realpath "$1")
src=$2
tmp=$(mktemp -d /tmp/tpmlab-doctor-cli-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
expect_stdout() {  # pattern, description
  grep -qE -- "$1" "$tmp/stdout" || { fail "$2: stdout lacks /$1/"; sed 's/^/  | /' "$tmp/stdout"; }
}

# 1. The embedded default, from a folder far from the sources: the baseline
# model is found beside the executable, so all nine items run and pass.
mkdir "$tmp/t"
expect_exit 0 "doctor on a new swtpm" env TMPDIR="$tmp/t" bash -c 'cd / && exec "$0" doctor' "$tpmlab"
[[ $(grep -c '^\[ OK \]' "$tmp/stdout") -eq 9 ]] || { fail "not nine [ OK ] lines"; sed 's/^/  | /' "$tmp/stdout"; }
expect_stdout '^\[ OK \] Event log replays to the PCRs: [0-9]+ events' "the log check ran"
expect_stdout '^9 ok, 0 warn, 0 fail, 0 skipped$' "summary line"
[[ -z $(ls -A "$tmp/t") ]] || fail "the temporary swtpm state was left behind: $(ls "$tmp/t")"

# 2. JSON: every item with its fields, status ok.
expect_exit 0 "doctor --json" "$tpmlab" doctor --json
/usr/bin/python3 - "$tmp/stdout" <<'PY' || fail "doctor --json is not the checklist"
import json, sys
out = json.load(open(sys.argv[1]))
assert out["status"] == "ok", out["status"]
ids = [i["id"] for i in out["items"]]
assert ids == ["tpm_present", "tpm_version", "hierarchies_enabled", "sha256_bank", "ek_present",
               "ek_certificate", "clock", "eventlog_replay", "attestation"], ids
for i in out["items"]:
    assert set(i) == {"id", "title", "status", "detail", "advice"}, i
    assert i["status"] == "ok" and i["detail"], i
assert out["tpm"].startswith("swtpm "), out["tpm"]
PY

# 3. A run's chip and its enrollment: the doctor on that state agrees with
# the enrollment; on a new chip the verifier sees another EK.
expect_exit 0 "a run to enroll from" "$tpmlab" run "$src/scenarios/power-cycle.yaml" --cycles 0 --out "$tmp/run" -q
expect_exit 0 "doctor --state on the enrolled chip" \
  "$tpmlab" doctor --state "$tmp/run/dut0" --enrollment "$tmp/run/enrollment.json"
expect_stdout '^\[ OK \] Attestation: .*against the enrollment of dut0' "judged against the enrollment"
[[ -f "$tmp/run/dut0/tpm2-00.permall" ]] || fail "--state was not kept"
expect_exit 1 "doctor on a new chip with another's enrollment" \
  "$tpmlab" doctor --enrollment "$tmp/run/enrollment.json"
expect_stdout '^\[FAIL\] Attestation: alarms .*EK_CHANGED' "EK_CHANGED named"
# Its AK is not the enrolled one either, and its quote fails against the enrolled AK.
expect_stdout '^\[FAIL\] Attestation: alarms .*AK_UNKNOWN.*QUOTE_SIGNATURE_INVALID' "the foreign AK named"
expect_stdout ', 1 fail, ' "one failure counted"

# 4. A log of another boot: the replay fails, and says which PCR.
/usr/bin/python3 - "$tmp/other.bin" <<'PY' || fail "writing the test log"
import hashlib, struct, sys
banks = [(0x0004, hashlib.sha1), (0x000B, hashlib.sha256)]
body = b"Spec ID Event03\0" + struct.pack("<IBBBBI", 0, 0, 2, 0, 2, len(banks))
body += b"".join(struct.pack("<HH", alg, h().digest_size) for alg, h in banks) + b"\0"
spec = struct.pack("<II", 0, 3) + bytes(20) + struct.pack("<I", len(body)) + body
data = b"grub_cmd: linux /vmlinuz\0"
ev = struct.pack("<III", 8, 0xD, len(banks)) + b"".join(struct.pack("<H", a) + h(data).digest() for a, h in banks)
open(sys.argv[1], "wb").write(spec + ev + struct.pack("<I", len(data)) + data)
PY
expect_exit 1 "doctor --eventlog of another boot" "$tpmlab" doctor --eventlog "$tmp/other.bin"
expect_stdout '^\[FAIL\] Event log replays to the PCRs: .*sha256 PCRs 8' "the replay names PCR 8"

# The attestation names each alarm code once, with the PCRs it concerns,
# not PCR_REPLAY_MISMATCH once per PCR per bank.
line=$(grep '^\[FAIL\] Attestation:' "$tmp/stdout")
[[ $(grep -o 'PCR_REPLAY_MISMATCH' <<<"$line" | wc -l) -eq 1 ]] || fail "attestation repeats PCR_REPLAY_MISMATCH: $line"
[[ $line == *"PCR_REPLAY_MISMATCH: PCR 8 (sha1, sha256)"* ]] || fail "attestation does not list the PCR and banks: $line"
[[ $(grep -c '^       PCR_REPLAY_MISMATCH: ' "$tmp/stdout") -eq 1 ]] || { fail "not one advice line for PCR_REPLAY_MISMATCH"; cat "$tmp/stdout"; }
grep -q '^firmware measured' "$tmp/stdout" && fail "a firmware is said to be measured with --eventlog"
# -q: only what to act on.
expect_exit 1 "doctor -q --eventlog of another boot" "$tpmlab" doctor -q --eventlog "$tmp/other.bin"
grep -q '^\[ OK \]' "$tmp/stdout" && fail "-q prints ok items"
expect_stdout '^\[FAIL\] Event log replays' "-q keeps the failing items"
expect_stdout ' fail, [0-9]+ skipped$' "-q keeps the count line"

# 5. A run on a firmware other than the baseline (a firmware_update before
# its enroll): the doctor on its kept chip measures the firmware the run
# ended with, read from the run's inputs, and agrees with its enrollment
# (measuring the baseline gave a false PCR_POLICY_MISMATCH); it says which.
mkdir -p "$tmp/own"
cp -r "$src/scenarios/firmware" "$tmp/own/firmware"
cat >"$tmp/own/updated.yaml" <<'YAML'
name: updated-firmware
firmware: firmware-blob
steps:
  - boot
  - firmware_update: {platform: boot-order}
  - power_cycle: reset
  - enroll
YAML
expect_exit 0 "a run that ends on boot-order firmware" "$tpmlab" run "$tmp/own/updated.yaml" --out "$tmp/updated" -q
rm -rf "$tmp/own"  # the doctor reads the run's own copy of its inputs
expect_exit 0 "doctor on that run's chip and enrollment" \
  "$tpmlab" doctor --state "$tmp/updated/dut0" --enrollment "$tmp/updated/enrollment.json"
expect_stdout '^firmware measured: boot-order .*from the run.s inputs' "names the run's firmware"
expect_stdout '^\[ OK \] Attestation: .*no alarm' "no false PCR_POLICY_MISMATCH"
expect_exit 0 "doctor --json on that run's chip" \
  "$tpmlab" doctor --json --state "$tmp/updated/dut0" --enrollment "$tmp/updated/enrollment.json"
/usr/bin/python3 - "$tmp/stdout" <<'PY' || fail "doctor --json does not name the measured firmware"
import json, sys
out = json.load(open(sys.argv[1]))
assert out["firmware"]["name"] == "boot-order", out["firmware"]
assert "run" in out["firmware"]["source"], out["firmware"]
assert out["status"] == "ok", [i for i in out["items"] if i["status"] != "ok"]
PY
# --firmware chooses, and a wrong one is judged as such.
expect_exit 1 "doctor --firmware baseline on that chip" \
  "$tpmlab" doctor --firmware baseline --state "$tmp/updated/dut0" --enrollment "$tmp/updated/enrollment.json"
expect_stdout '^firmware measured: baseline .*from --firmware' "names --firmware's model"
expect_stdout '^\[FAIL\] Attestation: alarms PCR_POLICY_MISMATCH: PCR [0-9]' "the baseline is not what was enrolled"
expect_exit 2 "doctor --firmware of no model" "$tpmlab" doctor --firmware no-such-model
expect_stderr 'no-such-model' "the unknown model is named"
expect_exit 2 "doctor --run of no run" "$tpmlab" doctor --run "$tmp/nothing-here"
expect_stderr 'nothing-here/run.json' "the missing run.json is named"

# 6. Bad input runs nothing (2); no emulator installed (4).
printf 'not a log' >"$tmp/garbage.bin"
expect_exit 2 "doctor --eventlog garbage" "$tpmlab" doctor --eventlog "$tmp/garbage.bin"
expect_stderr 'garbage.bin' "the bad log is named"
expect_exit 2 "doctor --enrollment missing" "$tpmlab" doctor --enrollment "$tmp/none.json"
echo '{' >"$tmp/bad.json"
expect_exit 2 "doctor --enrollment not JSON" "$tpmlab" doctor --enrollment "$tmp/bad.json"
expect_exit 4 "doctor without swtpm" env PATH=/nonexistent "$tpmlab" doctor
expect_stderr "swtpm" "the missing package is named"

# 7. --bench: the simulated SPI TPM's checklist; an absent /dev/tpmrm0 is
# "no TPM to examine" (3) naming the device; a broken bench file is 2.
expect_exit 0 "doctor on the simulated SPI TPM" "$tpmlab" doctor --bench "$src/hw/benches/simulated-spi.yaml"
expect_stdout 'bench simulated-spi' "the checklist names the bench"
if [[ ! -e /dev/tpmrm0 ]]; then
  expect_exit 3 "doctor on an absent /dev/tpmrm0" "$tpmlab" doctor --bench "$src/hw/benches/host-tpmrm0.yaml"
  expect_stderr 'no TPM to examine: .*/dev/tpmrm0' "names the device"
fi
printf 'name: x\ndut: {transport: modem}\n' >"$tmp/bench.yaml"
expect_exit 2 "doctor with a broken bench" "$tpmlab" doctor --bench "$tmp/bench.yaml"
expect_stderr 'bench.yaml:2:' "the bench error says where"

if [[ $failures -ne 0 ]]; then
  echo "doctor_cli_test: $failures failure(s)"
  exit 1
fi
echo "doctor_cli_test: all passed"
