#!/usr/bin/env bash
# `tpmlab verify RUN.json:N --previous RUN.json:M` on runs made here: a NV
# state revert followed by an orderly reboot (a lower clock with safe = YES),
# a previous snapshot from another chip, a previous quote with a broken
# signature, run.json's wall times, and --ek-roots (a root, a wrong root,
# none, a bad path) for verify and doctor.
#   verify_clockek_cli_test.sh TPMLAB_BINARY SOURCE_DIR
set -uo pipefail
tpmlab=$1
src=$2
tmp=$(mktemp -d /tmp/tpmlab-clockek-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
mkdir -p "$tmp/firmware" && cp "$src"/scenarios/firmware/*.yaml "$tmp/firmware/"

# The step index of the Nth (from 1) step with this action: step RUN ACTION N.
step() {
  /usr/bin/python3 -c 'import json,sys
steps=[s["index"] for s in json.load(open(sys.argv[1]))["steps"] if s["action"]==sys.argv[2]]
print(steps[int(sys.argv[3])-1])' "$1" "$2" "$3"
}

# 1. A clock reverted with the NV state, made safe again, then an orderly
#    reboot: resetCount is higher than before the revert, the clock lower.
cat >"$tmp/revert.yaml" <<'YAML'
name: clock-revert-reboot
seed: 7
firmware: baseline
steps:
  - boot
  - enroll
  - power_cycle: reset
  - checkpoint: early
  - clock_skew: 600000
  - power_cycle: reset
  - rollback: early
  - clock_skew: 10000
  - power_cycle: reset
  - power_cycle: reset
  - wait: 1500
  - snapshot
YAML
expect_exit 0 "revert-and-reboot run" "$tpmlab" run "$tmp/revert.yaml" --out "$tmp/revert"
run="$tmp/revert/run.json"
before=$(step "$run" power_cycle 2)
after=$(step "$run" power_cycle 4)
/usr/bin/python3 - "$run" "$before" "$after" <<'PY' || fail "the revert run is not the case under test"
import json, sys
steps = {s["index"]: s for s in json.load(open(sys.argv[1]))["steps"]}
b, a = steps[int(sys.argv[2])]["snapshot"], steps[int(sys.argv[3])]["snapshot"]
assert a["clock"]["safe"] is True, a["clock"]
assert a["clock"]["reset_count"] > b["clock"]["reset_count"], (a["clock"], b["clock"])
assert a["clock"]["clock_ms"] < b["clock"]["clock_ms"], (a["clock"], b["clock"])
for s in (a, b):
    assert isinstance(s["taken_at_ms"], int) and s["taken_at_ms"] > 0
    assert isinstance(s["quote_round_trip_ms"], int) and s["quote_round_trip_ms"] >= 0
    assert s["quote"]["attempts"] == 1
    assert s["ek_certificate_index"] == "0x01c00002"
PY
expect_exit 1 "verify: lower clock with safe YES after a reboot" \
  "$tpmlab" verify "$run:$after" --previous "$run:$before" --json
/usr/bin/python3 - "$tmp/stdout" <<'PY' || fail "not exactly CLOCK_NOT_MONOTONIC"
import json, sys
v = json.load(open(sys.argv[1]))
codes = sorted({a["code"] for a in v["alarms"]})
assert codes == ["CLOCK_NOT_MONOTONIC"], codes
assert any(n.startswith("EK_CERT_INVALID: chain not checked") for n in v["not_run"]), v["not_run"]
PY

# 2. The same pair, the earlier quote's signature broken: its clock is no
#    baseline, so nothing is raised and the verdict says why.
/usr/bin/python3 - "$run" "$before" "$tmp/revert/forged.json" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))
for s in run["steps"]:
    if s["index"] == int(sys.argv[2]):
        sig = s["snapshot"]["quote"]["signature"]
        mid = len(sig) // 2
        s["snapshot"]["quote"]["signature"] = sig[:mid] + ("0" if sig[mid] != "0" else "1") + sig[mid + 1:]
json.dump(run, open(sys.argv[3], "w"))
PY
expect_exit 0 "verify against a previous quote with a bad signature" \
  "$tpmlab" verify "$run:$after" --previous "$tmp/revert/forged.json:$before"
grep -q "no alarm" "$tmp/stdout" || fail "a forged previous quote's clock was used"
grep -q "not run: CLOCK_NOT_MONOTONIC: the earlier quote's signature does not verify" "$tmp/stdout" \
  || fail "verify does not say the earlier quote was not a baseline"

# 3. run.json round trip: two quotes of one power session read back from the
#    file raise no CLOCK_SKEW.
later=$(step "$run" snapshot 1)
expect_exit 0 "verify two stored quotes of one session" \
  "$tpmlab" verify "$run:$later" --previous "$run:$after"
grep -q "CLOCK_SKEW" "$tmp/stdout" && fail "CLOCK_SKEW raised or not judged for two quotes of one session"

# 4. A previous snapshot from another chip (another run: another swtpm,
#    another EK) that booted more often: EK_CHANGED against its enrollment,
#    never COUNTER_ROLLBACK.
cat >"$tmp/fresh.yaml" <<'YAML'
name: fresh-chip
seed: 8
firmware: baseline
steps:
  - boot
YAML
expect_exit 0 "another chip's run" "$tpmlab" run "$tmp/fresh.yaml" --out "$tmp/fresh"
expect_exit 1 "verify a new chip against the old chip's snapshot and enrollment" \
  "$tpmlab" verify "$tmp/fresh/run.json:0" --previous "$run:$before" --enrollment "$tmp/revert/enrollment.json" --json
/usr/bin/python3 - "$tmp/stdout" <<'PY' || fail "swapped chip verdict"
import json, sys
v = json.load(open(sys.argv[1]))
codes = {a["code"] for a in v["alarms"]}
assert "EK_CHANGED" in codes, codes
assert not codes & {"COUNTER_ROLLBACK", "CLOCK_NOT_MONOTONIC", "CLOCK_SKEW"}, codes
# Not judged: the new chip's quote is not signed by the enrolled AK.
assert any(n.startswith("COUNTER_ROLLBACK: ") for n in v["not_run"]), v["not_run"]
PY
# Without the enrollment its quote verifies with its own AK, and the counters
# are still not compared: the previous snapshot is another TPM.
expect_exit 0 "verify a new chip against the old chip's snapshot, not enrolled" \
  "$tpmlab" verify "$tmp/fresh/run.json:0" --previous "$run:$before" --json
/usr/bin/python3 - "$tmp/stdout" <<'PY' || fail "swapped chip verdict without an enrollment"
import json, sys
v = json.load(open(sys.argv[1]))
codes = {a["code"] for a in v["alarms"]}
assert not codes & {"COUNTER_ROLLBACK", "CLOCK_NOT_MONOTONIC", "CLOCK_SKEW"}, codes
assert any(n.startswith("COUNTER_ROLLBACK: the previous snapshot is another TPM") for n in v["not_run"]), v["not_run"]
PY

# 5. --ek-roots. swtpm_localca's own CA signed these chips' EK certificates:
#    trusting an unrelated root is EK_CERT_INVALID; a bad path is bad input.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/wrong.key" -out "$tmp/wrong.pem" -days 30 \
  -subj "/CN=tpmlab unrelated root" >/dev/null 2>&1 || fail "openssl could not make a root"
expect_exit 1 "verify with a wrong EK root" "$tpmlab" verify "$tmp/fresh/run.json:0" --ek-roots "$tmp/wrong.pem"
grep -q "error EK_CERT_INVALID: The EK certificate is not issued by a trusted TPM manufacturer" "$tmp/stdout" \
  || fail "no EK_CERT_INVALID for a wrong root"
expect_exit 2 "verify --ek-roots missing" "$tpmlab" verify "$tmp/fresh/run.json:0" --ek-roots "$tmp/none.pem"
expect_stderr "none.pem" "a missing --ek-roots is named"
echo "not a certificate" >"$tmp/junk.pem"
expect_exit 2 "verify --ek-roots not a certificate" "$tpmlab" verify "$tmp/fresh/run.json:0" --ek-roots "$tmp/junk.pem"
expect_stderr "junk.pem" "a bad --ek-roots is named"
# swtpm_localca's root and issuing CA (what signed the chip's certificate),
# when this machine has them: as one PEM file, and as a folder (which also
# holds keys and a serial file that are not certificates).
localca=""
for d in /var/lib/swtpm-localca "$HOME/.config/var/lib/swtpm-localca"; do
  if [[ -r $d/issuercert.pem && -r $d/swtpm-localca-rootca-cert.pem ]]; then
    cat "$d/swtpm-localca-rootca-cert.pem" "$d/issuercert.pem" >"$tmp/vendor.pem"
    localca=$tmp/vendor.pem
    break
  fi
done
if [[ -n $localca ]]; then
  expect_exit 0 "verify with a folder of roots" "$tpmlab" verify "$tmp/fresh/run.json:0" --ek-roots "$d"
  expect_exit 0 "verify with the issuing CA as root" "$tpmlab" verify "$tmp/fresh/run.json:0" --ek-roots "$localca"
  grep -q "not run: EK_CERT_INVALID: chain not checked" "$tmp/stdout" && fail "chain listed as not checked with a root"
  expect_exit 0 "doctor with the issuing CA as root" "$tpmlab" doctor --state "$tmp/fresh/dut0" --ek-roots "$localca"
  grep -q "chains to a configured root" "$tmp/stdout" || fail "doctor does not say the chain was checked"
else
  echo "SKIPPED: no swtpm-localca issuer certificate on this machine to trust"
fi
expect_exit 1 "doctor with a wrong EK root" "$tpmlab" doctor --state "$tmp/fresh/dut0" --ek-roots "$tmp/wrong.pem"
grep -q "does not chain to a configured root" "$tmp/stdout" || fail "doctor does not fail the chain"
expect_exit 0 "doctor without roots" "$tpmlab" doctor --state "$tmp/fresh/dut0"
grep -q "chain not checked" "$tmp/stdout" || fail "doctor does not say the chain was not checked"
expect_exit 2 "doctor --ek-roots missing" "$tpmlab" doctor --ek-roots "$tmp/none.pem"

if [[ $failures -ne 0 ]]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "all verify clock/EK CLI checks passed"
