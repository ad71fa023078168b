#!/usr/bin/env bash
# `tpmlab reproduce GOOD_LOG BAD_LOG` end to end: two logs written by a run of
# tpmlab's own firmware models (baseline, then secure-boot-off) become a
# reproduction that exits 0, raises SECURE_BOOT_DISABLED and
# PCR_POLICY_MISMATCH, and whose snapshots hold exactly the PCRs each log
# replays to (`tpmlab eventlog replay`); then the errors a user meets.
#   reproduce_cli_test.sh TPMLAB_BINARY SOURCE_DIR
set -uo pipefail
tpmlab=$1
src=$2
tmp=$(mktemp -d /tmp/tpmlab-reproduce-cli-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# 1. The field evidence: the event logs of the boot and of the reboot after
# Secure Boot went off, as the run kept them (eventlogs/, named in run.json).
expect_exit 0 "a Secure Boot run writes the two logs" \
  "$tpmlab" run "$src/scenarios/alarm-secure-boot-disabled.yaml" -o "$tmp/field" -q
check_py "the run's first and last logs copied as good.bin and bad.bin" '
import json, shutil, sys
run = json.load(open(sys.argv[1] + "/run.json"))
files = [s["snapshot"]["eventlog"]["file"] for s in run["steps"] if (s.get("snapshot") or {}).get("eventlog")]
assert len(files) == 2, files
shutil.copy(sys.argv[1] + "/" + files[0], sys.argv[2] + "/good.bin")
shutil.copy(sys.argv[1] + "/" + files[1], sys.argv[2] + "/bad.bin")
' "$tmp/field" "$tmp"
"$tpmlab" eventlog replay "$tmp/good.bin" --json >"$tmp/good.json" || fail "replaying good.bin"
"$tpmlab" eventlog replay "$tmp/bad.bin" --json >"$tmp/bad.json" || fail "replaying bad.bin"

# 2. The reproduction, run on the embedded swtpm.
expect_exit 0 "reproduce good.bin bad.bin" "$tpmlab" reproduce "$tmp/good.bin" "$tmp/bad.bin" -o "$tmp/rep" -q
cp "$tmp/stdout" "$tmp/reproduce.out"
for f in good.yaml good.bin bad.yaml bad.bin reproduce.yaml run/run.json; do
  [[ -f $tmp/rep/$f ]] || fail "reproduce wrote no $f"
done
grep -q "recorded: good.bin" "$tmp/rep/good.yaml" || fail "good.yaml is not a recorded model of good.bin"
grep -qE "alarms: \[SECURE_BOOT_DISABLED, PCR_POLICY_MISMATCH\]" "$tmp/rep/reproduce.yaml" ||
  fail "reproduce.yaml does not expect the field's alarms"
grep -qE "pcrs: \{drift: \[7\]" "$tmp/rep/reproduce.yaml" || fail "reproduce.yaml does not expect PCR 7 to drift"
grep -q "PCRs of the good boot equal the replay" "$tmp/reproduce.out" || fail "no good-boot PCR comparison printed"
grep -q "PCRs of the bad boot equal the replay" "$tmp/reproduce.out" || fail "no bad-boot PCR comparison printed"
grep -qE "PCR 7 changed EV_EFI_VARIABLE_DRIVER_CONFIG" "$tmp/reproduce.out" || fail "the drift is not explained event by event"
grep -qE "after: +SecureBoot = 0" "$tmp/reproduce.out" || fail "the drift does not show SecureBoot = 0"
check_py "the reproduced run raised SECURE_BOOT_DISABLED and PCR_POLICY_MISMATCH, its PCRs the logs' replays" '
import json, sys
run = json.load(open(sys.argv[1]))
good, bad = (json.load(open(f))["pcrs"] for f in sys.argv[2:4])
snaps = [s for s in run["steps"] if s.get("snapshot")]
assert run["status"] == "passed", run["status"]
codes = {a["code"] for s in run["steps"] for a in s.get("alarms", [])}
assert {"SECURE_BOOT_DISABLED", "PCR_POLICY_MISMATCH"} <= codes, codes
for snap, replay in ((snaps[0], good), (snaps[-1], bad)):
    pcrs = snap["snapshot"]["pcrs"]
    assert set(pcrs) == {"sha1", "sha256"}, pcrs.keys()
    for bank, values in pcrs.items():
        # The PCRs the log extends (eventlog replay lists those): all of 0-7 here.
        assert {str(i) for i in range(8)} <= set(replay[bank]), replay[bank].keys()
        for i, value in replay[bank].items():
            assert values[i] == value, (snap["index"], bank, i)
' "$tmp/rep/run/run.json" "$tmp/good.json" "$tmp/bad.json"

# 3. --no-run writes the same files and runs nothing; a second time over the
# same folder is refused.
expect_exit 0 "reproduce --no-run" "$tpmlab" reproduce "$tmp/good.bin" "$tmp/bad.bin" -o "$tmp/norun" --no-run
[[ -f $tmp/norun/reproduce.yaml && ! -e $tmp/norun/run ]] || fail "--no-run: a scenario and no run expected"
expect_exit 2 "reproduce over an earlier reproduction" "$tpmlab" reproduce "$tmp/good.bin" "$tmp/bad.bin" -o "$tmp/norun"
expect_stderr "already holds a reproduction" "reproduce over an earlier reproduction"
# The scenario written runs as any other.
expect_exit 0 "tpmlab run on the written reproduce.yaml" "$tpmlab" run "$tmp/norun/reproduce.yaml" -o "$tmp/norun/again" -q

# 4. Bad evidence: exit 2 with the file and the event named.
expect_exit 2 "a missing log" "$tpmlab" reproduce "$tmp/nothing.bin" "$tmp/bad.bin" -o "$tmp/x1"
expect_stderr "GOOD_LOG .*nothing.bin" "a missing log"
printf 'garbage, not a log\0\0\0' >"$tmp/garbage.bin"
expect_exit 2 "a log that does not parse" "$tpmlab" reproduce "$tmp/good.bin" "$tmp/garbage.bin" -o "$tmp/x2"
expect_stderr "BAD_LOG .*garbage.bin" "a log that does not parse"
/usr/bin/python3 - "$tmp/partial.bin" <<'PY' || fail "writing a log missing a bank"
import hashlib, struct, sys
BANKS = [(0x0004, hashlib.sha1), (0x000B, hashlib.sha256)]
body = b"Spec ID Event03\0" + struct.pack("<IBBBBI", 0, 0, 2, 0, 2, len(BANKS))
body += b"".join(struct.pack("<HH", a, h().digest_size) for a, h in BANKS) + b"\0"
log = struct.pack("<II", 0, 3) + bytes(20) + struct.pack("<I", len(body)) + body
def event(pcr, etype, data, banks):
    d = b"".join(struct.pack("<H", a) + h(data).digest() for a, h in banks)
    return struct.pack("<III", pcr, etype, len(banks)) + d + struct.pack("<I", len(data)) + data
log += event(0, 0x8, b"v\0", BANKS) + event(4, 0x80000007, b"only sha1", BANKS[:1])
open(sys.argv[1], "wb").write(log)
PY
expect_exit 2 "a log with an event missing a bank" "$tpmlab" reproduce "$tmp/good.bin" "$tmp/partial.bin" -o "$tmp/x3"
expect_stderr "event 1 \(PCR 4, EV_EFI_ACTION\) carries no sha256 digest" "a log with an event missing a bank"
[[ ! -e $tmp/x1 && ! -e $tmp/x2 && ! -e $tmp/x3 ]] || fail "a refused reproduction left a folder"

if [[ $failures -ne 0 ]]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "all reproduce CLI checks passed"
