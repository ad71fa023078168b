#!/usr/bin/env bash
# Platform firmware written with flashrom on the QEMU board
# (hw/benches/qemu-ovmf-flash.yaml): the board boots its flash chip (a
# flashrom dummy chip's file, copied into the run), a firmware_update
# {platform: firmware-blob} writes the other OVMF build into it with the board
# off, and the next boot's PCR 0 drift is explained by OVMF's firmware blob
# events; each flash keeps the chip's previous contents in RUN/firmware with
# its SHA-256. Then the ways a flash stops a run before any boot: a write
# flashrom fails (the chip refuses write-enable), a chip file of the wrong
# size, allow.flash: false. Two real boots (~20-60 s each under TCG).
# Skipped (77) without QEMU, OVMF, flashrom or a kernel.
set -u
tpmlab=$1; src=$2
bench=$src/hw/benches/qemu-ovmf-flash.yaml
for need in qemu-system-x86_64:/usr/bin/qemu-system-x86_64 ovmf:/usr/share/OVMF/OVMF_CODE_4M.secboot.fd \
            flashrom:/usr/sbin/flashrom; do
  [[ -e ${need#*:} ]] || { echo "SKIPPED: ${need#*:} is absent (Debian package ${need%%:*})"; exit 77; }
done
ls /boot/vmlinuz-* >/dev/null 2>&1 || { echo "SKIPPED: no kernel in /boot (linux-image-cloud-amd64)"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
failures=0
source "$src/tests/cli/lib.sh"

# 0. The bench as this machine has it: flashrom, the chip, each image 4 MiB.
expect_exit 0 "bench check of the flash bench" "$tpmlab" bench check "$bench"
grep -q "flash.images.firmware-blob" "$tmp/stdout" || { fail "bench check lists no flash image"; cat "$tmp/stdout"; }

# 1. A platform firmware update written with flashrom: PCR 0 drifts with OVMF's own events.
cat >"$tmp/flash-update.yaml" <<'YAML'
name: board-flash-update
seed: 517
firmware: baseline
unexpected_alarms: fail
steps:
  - boot
  - enroll
  - firmware_update: {platform: firmware-blob}
  - power_cycle: reset
  - expect:
      alarms: [PCR_POLICY_MISMATCH]
      pcrs: {drift: [0], steady: [2, 4, 7], against: golden}
YAML
expect_exit 0 "flashrom firmware update on the board" \
  "$tpmlab" run "$tmp/flash-update.yaml" --bench "$bench" -o "$tmp/fw" --quiet
check_py "PCR 0 drift explained by a firmware event after the flash" '
import json, sys
run = json.load(open(sys.argv[1]))
step = next(s for s in run["steps"] if s.get("golden_drift") and 0 in s["golden_drift"]["pcrs"].get("sha256", []))
blobs = [e for e in step["golden_drift"]["events"] if e["pcr"] == 0 and e["type"] == "EV_EFI_PLATFORM_FIRMWARE_BLOB"]
assert blobs and all(e["change"] == "changed" for e in blobs), step["golden_drift"]["events"]
assert "FIRMWARE_BLOB" in [c["code"] for c in step["golden_drift"]["causes"]], step["golden_drift"]["causes"]
' "$tmp/fw/run.json"
check_py "each flash recorded: previous contents kept with their SHA-256, image verified" '
import hashlib, json, os, sys
run_dir = os.path.dirname(sys.argv[1]); run = json.load(open(sys.argv[1]))
def sha(path): return hashlib.sha256(open(path, "rb").read()).hexdigest()
flashes = [s["detail"]["board"]["flashes"] for s in run["steps"] if "flashes" in ((s.get("detail") or {}).get("board") or {})][-1]
assert [f["image"] for f in flashes] == ["baseline", "firmware-blob"], flashes
ovmf = "/usr/share/OVMF/"
baseline = open(ovmf + "OVMF_VARS_4M.snakeoil.fd", "rb").read() + open(ovmf + "OVMF_CODE_4M.secboot.fd", "rb").read()
blob = open(ovmf + "OVMF_VARS_4M.snakeoil.fd", "rb").read() + open(ovmf + "OVMF_CODE_4M.fd", "rb").read()
for f in flashes:
    assert f["verified"] and f["size"] == 4194304 and "SST25VF032B" in f["chip"], f
    assert f["before_file"].startswith("firmware/flash-"), f
    assert sha(os.path.join(run_dir, f["before_file"])) == f["before_sha256"], f
assert flashes[0]["image_sha256"] == hashlib.sha256(baseline).hexdigest()
assert flashes[1]["image_sha256"] == hashlib.sha256(blob).hexdigest()
# What the chip held before the update is the baseline written before the first boot
# (OVMF may have written its variable store since, so compare the code part).
before = open(os.path.join(run_dir, flashes[1]["before_file"]), "rb").read()
assert before[540672:] == baseline[540672:], "the kept image is not the baseline code"
chip = open(os.path.join(run_dir, "board", "flash-chip.bin"), "rb").read()
assert chip[540672:] == blob[540672:], "the chip does not hold the new code"
fw = next(s for s in run["steps"] if s.get("action") == "firmware_update" or "platform" in (s.get("detail") or {}))
assert any("flashrom" in c["detail"] for c in fw["checks"]), fw["checks"]
print("write+verify ms:", [f["write_verify_ms"] for f in flashes], "read ms:", [f["read_ms"] for f in flashes])
' "$tmp/fw/run.json"
cat "$tmp/py.out"
[[ -e $src/hw/benches/qemu-ovmf-flash-chip.bin ]] && fail "the run wrote the bench folder's chip file"

# 2. A write flashrom fails stops the run before the board boots, naming image and programmer.
sed 's|image=qemu-ovmf-flash-chip.bin|image=chip.bin,spi_blacklist=0x06|' "$bench" >"$tmp/failing.yaml"
expect_exit 3 "a failed flash stops the run" \
  "$tpmlab" run "$tmp/flash-update.yaml" --bench "$tmp/failing.yaml" -o "$tmp/failed" --quiet
expect_stderr "flash image 'baseline'" "the failed flash names the image"
expect_stderr "spi_blacklist=0x06" "the failed flash names the programmer"
expect_stderr "didn't do anything|FAILED" "the failed flash quotes flashrom"

# 3. A chip file of the wrong size (flashrom would silently start an erased chip).
head -c 1000 /dev/zero >"$tmp/chip.bin"
sed 's|image=qemu-ovmf-flash-chip.bin|image=chip.bin|' "$bench" >"$tmp/badchip.yaml"
expect_exit 2 "a wrong-size chip file is refused" \
  "$tpmlab" run "$tmp/flash-update.yaml" --bench "$tmp/badchip.yaml" -o "$tmp/badchip" --quiet
expect_stderr "1000 bytes" "the wrong-size chip file is named with its size"

# 4. allow.flash: false refuses the scenario's flash before the run starts.
{ cat "$bench"; echo "allow: {flash: false}"; } >"$tmp/noflash.yaml"
expect_exit 2 "allow.flash: false refuses firmware_update" \
  "$tpmlab" run "$tmp/flash-update.yaml" --bench "$tmp/noflash.yaml" -o "$tmp/noflash" --quiet
expect_stderr "needs allow.flash" "the refusal names allow.flash"

if pgrep -f "$tmp" >/dev/null; then fail "a QEMU, swtpm or flashrom of this test outlived its run: $(pgrep -af "$tmp")"; fi
[[ $failures -eq 0 ]] && echo "board flash CLI tests passed" || { echo "$failures board flash CLI checks failed"; exit 1; }
