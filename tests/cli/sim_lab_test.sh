#!/usr/bin/env bash
# The simulated lab (hw/sim/up): an ipmi_sim BMC whose chassis is the QEMU +
# OVMF board, its firmware in a flashrom dummy chip, reached as a whole
# machine over a TCP console. Checks, on real processes:
#   1. bench check finds every part;
#   2. alarm-platform-firmware-update passes there: IPMI power, a flashrom
#      update between power off and on, PCR 0 drift explained from OVMF's
#      own logs, the chip's previous contents kept;
#   3. an IPMI power-loss (the BMC resets the board in place) and an
#      attestation across it: reset_count up, the quote verifies; and
#      tpmlab doctor on it;
#   4. a BMC that does not answer stops the run naming host:port (exit 3);
#   5. a flash that fails stops the run naming the image and the programmer;
#   6. hw/sim/down leaves nothing running.
# Skipped (77) without ipmi_sim, ipmitool, QEMU, OVMF, flashrom or a kernel.
#   sim_lab_test.sh TPMLAB_BINARY SOURCE_DIR
set -uo pipefail
tpmlab=$(realpath "$1")
src=$(realpath "$2")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for p in ipmi_sim ipmitool qemu-system-x86_64 flashrom swtpm; do
  command -v "$p" >/dev/null || { echo "SKIPPED: $p is absent (tools/setup installs it)"; exit 77; }
done
[[ -r /usr/share/OVMF/OVMF_CODE_4M.secboot.fd ]] || { echo "SKIPPED: OVMF is absent (Debian package ovmf)"; exit 77; }
compgen -G "/boot/vmlinuz-*" >/dev/null || { echo "SKIPPED: no kernel in /boot (linux-image-cloud-amd64)"; exit 77; }
failures=0
source "$here/lib.sh"
tmp=$(mktemp -d /tmp/tpmlab-sim-lab-test-XXXXXX)
lab=$tmp/lab
cleanup() { "$src/hw/sim/down" "$lab" >/dev/null 2>&1; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 1' TERM INT

export TPMLAB=$tpmlab
started=$SECONDS
if ! bench=$("$src/hw/sim/up" --dir "$lab" --die-with $$ 2>"$tmp/up.log"); then
  cat "$tmp/up.log"
  fail "hw/sim/up started the lab"
  exit 1
fi
echo "ok: hw/sim/up in $((SECONDS - started)) s: $bench"

# 1. Every part is there.
expect_exit 0 "bench check on the simulated lab" "$tpmlab" bench check "$bench"

# 2. The firmware update, as a vendor reproduces it.
started=$SECONDS
expect_exit 0 "alarm-platform-firmware-update on the simulated lab" \
  "$tpmlab" run "$src/scenarios/alarm-platform-firmware-update.yaml" --bench "$bench" -q --out "$tmp/update"
echo "   ($((SECONDS - started)) s)"
/usr/bin/python3 - "$tmp/update" <<'PY' || fail "firmware update: run.json says what happened"
import hashlib, json, os, sys
out = sys.argv[1]
run = json.load(open(out + "/run.json"))
assert run["status"] == "passed", run["status"]
assert "ipmi" in json.dumps(run["dut"]), run["dut"]
flashes = [f for s in run["steps"] for f in ((s.get("detail") or {}).get("board") or {}).get("flashes", [])]
names = [f["image"] for f in flashes]
assert "firmware-blob" in names, names
for f in flashes:
    before = os.path.join(out, f["before_file"])
    assert hashlib.sha256(open(before, "rb").read()).hexdigest() == f["before_sha256"], f
drifted = [s for s in run["steps"] if (s.get("golden_drift") or {}).get("pcrs")]
assert drifted, "no step drifted from golden"
pcrs = drifted[0]["golden_drift"]["pcrs"]
moved = {int(p) for v in pcrs.values() for p in v}
assert 0 in moved, pcrs
text = json.dumps(drifted[0]["golden_drift"])
assert "FIRMWARE" in text.upper(), text[:2000]
alarms = [a["code"] for s in run["steps"] for a in s.get("alarms", [])]
assert "PCR_POLICY_MISMATCH" in alarms, alarms
print("flashes:", names, "alarms:", alarms)
PY

# 3. A BMC reset (power-loss) and an attestation across it.
cat > "$tmp/power-loss.yaml" <<'YAML'
name: sim-lab-power-loss
description: The BMC resets the board in place; the chip counts a reset and still attests.
seed: 1
firmware: baseline
steps:
  - boot
  - enroll
  - power_cycle: power-loss
  - expect: {counters: {reset_count: up}}
  - snapshot
YAML
started=$SECONDS
expect_exit 0 "an IPMI power-loss and an attestation across it" \
  "$tpmlab" run "$tmp/power-loss.yaml" --bench "$bench" -q --out "$tmp/loss"
echo "   ($((SECONDS - started)) s)"

# 3b. tpmlab doctor boots it and examines its TPM with OVMF's log.
expect_exit 0 "tpmlab doctor on the simulated lab" "$tpmlab" doctor --bench "$bench" -q

# 4. A BMC that does not answer.
closed=$(/usr/bin/python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed "s/^  port: .*/  port: $closed/" "$bench" > "$tmp/no-bmc.yaml"
started=$SECONDS
expect_exit 3 "a BMC that does not answer" "$tpmlab" run "$src/scenarios/attest.yaml" --bench "$tmp/no-bmc.yaml" -q --out "$tmp/no-bmc"
expect_stderr "127.0.0.1:$closed" "the silent BMC is named"
echo "   ($((SECONDS - started)) s)"

# 5. A flash that fails: flashrom's dummy chip refusing write-enable (0x06).
sed 's/^\(  programmer: "dummy:[^"]*\)"/\1,spi_blacklist=0x06"/' "$bench" > "$tmp/bad-flash.yaml"
cat > "$tmp/blob.yaml" <<'YAML'
name: sim-lab-blob
seed: 1
firmware: firmware-blob
steps:
  - boot
YAML
expect_exit 3 "a flash that fails" "$tpmlab" run "$tmp/blob.yaml" --bench "$tmp/bad-flash.yaml" -q --out "$tmp/bad-flash"
expect_stderr "firmware-blob" "the failed flash names its image"
expect_stderr "spi_blacklist=0x06" "the failed flash names its programmer"

# 6. Down leaves nothing of the lab running.
"$src/hw/sim/down" "$lab" >/dev/null
sleep 1
if left=$(pgrep -af -- "$lab"); then fail "processes of the lab survived hw/sim/down: $left"; else echo "ok: nothing of the lab is left running"; fi

[[ $failures -eq 0 ]] && echo "sim_lab_test: all passed" || echo "sim_lab_test: $failures failed"
[[ $failures -eq 0 ]]
