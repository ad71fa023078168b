#!/usr/bin/env bash
# The QEMU + OVMF board end to end (hw/benches/qemu-ovmf.yaml): a platform
# firmware update and Secure Boot off explained from OVMF's real events, a
# resume with the board's own Startup(STATE), a power loss with safe = NO,
# every quote verified and every captured log replayed; then a board's two
# logs reproduced on the embedded default by `tpmlab reproduce`; and the ways
# a board fails: QEMU missing (4), QEMU dying (its stderr), no agent hello.
# About eight real boots (~15-40 s each under TCG). Skipped (77) without
# QEMU, OVMF or a kernel.
set -u
tpmlab=$1; src=$2
bench=$src/hw/benches/qemu-ovmf.yaml
for need in qemu-system-x86_64:/usr/bin/qemu-system-x86_64 ovmf:/usr/share/OVMF/OVMF_CODE_4M.secboot.fd \
            sbsigntool:/usr/bin/sbsign; do
  [[ -e ${need#*:} ]] || { echo "skipped: ${need#*:} is absent (Debian package ${need%%:*})"; exit 77; }
done
ls /boot/vmlinuz-* >/dev/null 2>&1 || { echo "skipped: no kernel in /boot (linux-image-cloud-amd64)"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
failures=0
source "$src/tests/cli/lib.sh"

# Every snapshot's quote verified, every log replayed to the quoted PCRs.
all_verified='
import json, sys
run = json.load(open(sys.argv[1]))
snaps = [s for s in run["steps"] if s.get("snapshot")]
assert snaps, "no snapshot"
for s in snaps:
    checks = {c["name"]: c for c in s["checks"]}
    assert checks["quote_verified"]["passed"], (s["index"], checks["quote_verified"])
    assert checks["eventlog_replay"]["passed"], (s["index"], checks["eventlog_replay"])
    assert all(s["snapshot"]["eventlog"]["replay_matches"].values()), s["index"]
'

# 1. A platform firmware update: PCR 0 drifts with OVMF's own events.
expect_exit 0 "firmware update on the board" \
  "$tpmlab" run "$src/scenarios/alarm-platform-firmware-update.yaml" --bench "$bench" -o "$tmp/fw" --quiet
check_py "firmware update: quotes verified, logs replay" "$all_verified" "$tmp/fw/run.json"
check_py "firmware update: PCR 0 drift explained by a firmware event, accel said" '
import json, sys
run = json.load(open(sys.argv[1]))
step = next(s for s in run["steps"] if s.get("golden_drift") and 0 in s["golden_drift"]["pcrs"].get("sha256", []))
blobs = [e for e in step["golden_drift"]["events"] if e["pcr"] == 0 and e["type"] == "EV_EFI_PLATFORM_FIRMWARE_BLOB"]
assert blobs and all(e["change"] == "changed" for e in blobs), step["golden_drift"]["events"]
assert "FIRMWARE_BLOB" in [c["code"] for c in step["golden_drift"]["causes"]], step["golden_drift"]["causes"]
board = next(s for s in run["steps"] if "board" in s.get("detail", {}))["detail"]["board"]
assert board["accel"] in ("tcg", "kvm"), board
' "$tmp/fw/run.json"

# 2. Secure Boot off: PCR 7 with SECURE_BOOT_DISABLED from OVMF's variable events.
expect_exit 0 "Secure Boot off on the board" \
  "$tpmlab" run "$src/scenarios/alarm-secure-boot-disabled.yaml" --bench "$bench" -o "$tmp/sb" --quiet
check_py "Secure Boot off: quotes verified, logs replay" "$all_verified" "$tmp/sb/run.json"
check_py "Secure Boot off: PCR 7 drift from the SecureBoot variable event" '
import json, sys
run = json.load(open(sys.argv[1]))
step = next(s for s in run["steps"] if "SECURE_BOOT_DISABLED" in [a["code"] for a in s.get("alarms", [])])
events = [e for e in step["golden_drift"]["events"] if e["pcr"] == 7]
assert any(e.get("after_summary") == "SecureBoot = 0" and e.get("before_summary") == "SecureBoot = 1" for e in events), events
' "$tmp/sb/run.json"

# 3. Resume (the board's Shutdown(STATE) and Startup(STATE)) and a power loss.
cat >"$tmp/resume-loss.yaml" <<'YAML'
name: board-resume-loss
seed: 514
firmware: baseline
unexpected_alarms: fail
steps:
  - boot
  - enroll
  - power_cycle: resume
  - expect:
      counters: {restart_count: up, reset_count: same}
      pcrs: {steady: [0, 1, 2, 3, 4, 5, 6, 7]}
  - power_cycle: power-loss
  - expect:
      counters: {reset_count: up}
      allow_after_power_loss: [CLOCK_NOT_SAFE, CLOCK_NOT_MONOTONIC]
YAML
expect_exit 0 "resume and power loss on the board" \
  "$tpmlab" run "$tmp/resume-loss.yaml" --bench "$bench" -o "$tmp/rl" --quiet
check_py "resume: the board sent Shutdown(STATE) and Startup(STATE); all 16 PCRs kept" '
import json, sys
run = json.load(open(sys.argv[1]))
step = next(s for s in run["steps"] if s.get("kind") == "resume")
cmds = [(c["command"], c.get("type")) for c in step["detail"]["platform_commands"]]
assert ("TPM2_Shutdown", "STATE") in cmds and ("TPM2_Startup", "STATE") in cmds, cmds
checks = {c["name"]: c for c in step["checks"]}
assert checks["pcrs_after_startup"]["passed"], checks["pcrs_after_startup"]
' "$tmp/rl/run.json"
check_py "resume and power loss: quotes verified, logs replay" "$all_verified" "$tmp/rl/run.json"
# A board boots for longer than the chip's NV clock save interval (4096 ms),
# so its quote after a loss says safe = YES by the rule; the loss shows as
# no Shutdown before the board's _TPM_Init and the safe check saying why.
check_py "power loss: no Shutdown before _TPM_Init, Startup(CLEAR), safe judged by the board's boot" '
import json, sys
run = json.load(open(sys.argv[1]))
step = next(s for s in run["steps"] if s.get("kind") == "power-loss")
cmds = [(c["command"], c.get("type")) for c in step["detail"]["platform_commands"]]
init = cmds.index(("_TPM_Init", None))
assert all(c[0] != "TPM2_Shutdown" for c in cmds[:init]), cmds[:init]
assert ("TPM2_Startup", "CLEAR") in cmds[init:], cmds
safe = next(c for c in step["checks"] if c["name"] == "safe")
assert safe["passed"] and ("NO" in safe["detail"] or "ran" in safe["detail"]), safe
' "$tmp/rl/run.json"

# 4. The board's two logs (before and after the firmware update) reproduced
#    on the embedded default: the reproduced PCRs are the board's quoted ones.
logs=($(/usr/bin/python3 -c '
import json, sys
run = json.load(open(sys.argv[1]))
seen = []
for s in run["steps"]:
    f = ((s.get("snapshot") or {}).get("eventlog") or {}).get("file")
    if f and f not in seen: seen.append(f)
print(" ".join(sys.argv[2] + "/" + f for f in seen[:2]))' "$tmp/fw/run.json" "$tmp/fw"))
if [[ ${#logs[@]} -eq 2 ]]; then
  expect_exit 0 "tpmlab reproduce on the board's logs" "$tpmlab" reproduce "${logs[0]}" "${logs[1]}" -o "$tmp/repro"
  check_py "reproduced PCRs equal the board's quoted PCRs" '
import json, sys
board = json.load(open(sys.argv[1])); repro = json.load(open(sys.argv[2]))
def quoted(run):
    out = []
    for s in run["steps"]:
        snap = s.get("snapshot")
        if snap and snap["pcrs"] not in out: out.append(snap["pcrs"])
    return out
b, r = quoted(board), quoted(repro)
for want in b:
    for bank, pcrs in want.items():
        assert any(got.get(bank, {}) and all(got[bank][k] == v for k, v in pcrs.items() if int(k) <= 9) for got in r), bank
' "$tmp/fw/run.json" "$tmp/repro/run/run.json"
else
  fail "the firmware-update run kept ${#logs[@]} distinct event logs, expected 2"
fi

# 5. The doctor's checklist on the board as booted, with OVMF's log.
expect_exit 0 "doctor on the board" "$tpmlab" doctor --bench "$bench"
grep -q "^\[ OK \] Event log replays to the PCRs" "$tmp/stdout" || { fail "doctor: OVMF's log does not replay"; cat "$tmp/stdout"; }

# 6. How a board fails.
sed "s|^  machine: q35|  machine: q35\n  qemu: /nonexistent/qemu-system-x86_64|" "$bench" >"$tmp/noqemu.yaml"
expect_exit 4 "QEMU missing" "$tpmlab" run "$src/scenarios/attest.yaml" --bench "$tmp/noqemu.yaml" -o "$tmp/nq" --quiet
expect_stderr "qemu-system-x86" "QEMU missing names the Debian package"
sed "s|^  machine: q35|  machine: no-such-machine|" "$bench" >"$tmp/badmachine.yaml"
expect_exit 3 "QEMU dying at start" "$tpmlab" run "$src/scenarios/attest.yaml" --bench "$tmp/badmachine.yaml" -o "$tmp/bm" --quiet
expect_stderr "no-such-machine" "QEMU dying shows its stderr"
sed "s|^  boot_timeout_s: .*|  boot_timeout_s: 3|" "$bench" >"$tmp/slow.yaml"
expect_exit 3 "no agent hello in time" "$tpmlab" run "$src/scenarios/attest.yaml" --bench "$tmp/slow.yaml" -o "$tmp/sl" --quiet
expect_stderr "the boot stopped in the (firmware|kernel)" "no hello names where the boot stopped"

if pgrep -f "$tmp" >/dev/null; then fail "a QEMU or swtpm of this test outlived its run: $(pgrep -af "$tmp")"; fi
[[ $failures -eq 0 ]] && echo "board CLI tests passed" || { echo "$failures board CLI checks failed"; exit 1; }
