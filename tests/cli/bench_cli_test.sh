#!/usr/bin/env bash
# `tpmlab bench check` and `tpmlab hw list` with no hardware attached: the
# emulated example is complete, the host example lacks /dev/tpmrm0 (unless
# this machine has one), the USB examples' bridges are not plugged in (or USB
# cannot be enumerated at all, as in a container), a broken
# file names file:line:column, tpmlab run --bench runs attest.yaml on the
# simulated SPI TPM and refuses what a real chip does not allow, and hw list
# says what it found.
#   bench_cli_test.sh TPMLAB_BINARY SOURCE_DIR
set -uo pipefail
tpmlab=$(realpath "$1")
src=$2
tmp=$(mktemp -d /tmp/tpmlab-bench-cli-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
expect_stdout() {  # pattern, description
  grep -qE -- "$1" "$tmp/stdout" || { fail "$2: stdout lacks /$1/"; sed 's/^/  | /' "$tmp/stdout"; }
}

benches=$src/hw/benches

# 1. The emulated default: swtpm and the firmware model are there.
expect_exit 0 "bench check emulated" "$tpmlab" bench check "$benches/emulated.yaml"
expect_stdout '^\[ OK \] dut: swtpm at ' "swtpm found"
expect_stdout '^\[ OK \] firmware_control: model .*baseline.yaml' "firmware model found"
expect_stdout '^every part is present$' "summary"

# 2. The host's TPM: missing here, and the message names the device.
if [[ -e /dev/tpmrm0 ]]; then
  echo "note: this machine has /dev/tpmrm0; the missing-device case is not exercised"
  "$tpmlab" bench check "$benches/host-tpmrm0.yaml" >"$tmp/stdout" 2>"$tmp/stderr"
  expect_stdout '/dev/tpmrm0' "host bench names the device"
else
  expect_exit 1 "bench check host-tpmrm0 without a TPM" "$tpmlab" bench check "$benches/host-tpmrm0.yaml"
  expect_stdout '^\[MISS\] dut: /dev/tpmrm0.*no TPM device' "the dut line says missing, and why"
  # Each missing part once (stdout), not again on stderr; stderr has the verdict.
  [[ $(cat "$tmp/stdout" "$tmp/stderr" | grep -c '/dev/tpmrm0') -eq 1 ]] || fail "the missing device is reported more than once"
  expect_stderr 'host-tpmrm0\.yaml: [0-9]+ of [0-9]+ parts? missing or not checkable' "stderr says how many parts are missing"
fi

# 3. The USB benches: valid files whose bridges are not here. Whether libusb
# starts and sees nothing or cannot start, the line names what was looked for.
usb_reason='(among [0-9]+ enumerated|USB cannot be enumerated)'
# The QEMU board: present when QEMU, OVMF, a kernel and sbsign are (tools/setup installs them).
if [[ -x /usr/bin/qemu-system-x86_64 && -e /usr/share/OVMF/OVMF_CODE_4M.secboot.fd && -x /usr/bin/sbsign ]] &&
   ls /boot/vmlinuz-* >/dev/null 2>&1; then
  expect_exit 0 "bench check qemu-ovmf" "$tpmlab" bench check "$benches/qemu-ovmf.yaml"
else
  expect_exit 1 "bench check qemu-ovmf without QEMU, OVMF or a kernel" "$tpmlab" bench check "$benches/qemu-ovmf.yaml"
fi
expect_exit 1 "bench check ftdi-relay" "$tpmlab" bench check "$benches/ftdi-relay.yaml"
expect_stdout '^\[MISS\] dut: FTDI bridge.* 0403:6014 serial FT6XYZ01' "the FTDI bridge is missing, named by VID:PID and serial"
expect_stdout '^\[MISS\] power: dcttech relay.* 16c0:05df' "the relay is missing, named by VID:PID"
expect_stdout "^\[MISS\] dut: .*$usb_reason" "says why the bridge is missing"
expect_exit 1 "bench check tpm2go-hub-port" "$tpmlab" bench check "$benches/tpm2go-hub-port.yaml"
expect_stdout '^\[MISS\] dut: TPM2Go.* 365d:1337 serial \^LTT2GO' "the TPM2Go is missing, named by VID:PID and pattern"
expect_stdout "^\[MISS\] dut: .*$usb_reason" "says why the TPM2Go is missing"
# A machine may well have a hub at 1-1; only that the line is about it is sure.
expect_stdout '^\[(MISS| OK )\] power: (hub 1-1 port 2|port 2 of hub .* at 1-1)' "the hub port is looked for"

# 4. Broken files: exit 2 with file:line:column, nothing probed.
printf 'name: broken\ndut:\n  transport: device\n  speed: fast\n' >"$tmp/unknown-key.yaml"
expect_exit 2 "bench check with an unknown key" "$tpmlab" bench check "$tmp/unknown-key.yaml"
expect_stderr 'unknown-key\.yaml:4:3: unknown key .speed. in dut' "unknown key at file:line:col"
printf 'name: broken\ndut: {transport: device\n' >"$tmp/syntax.yaml"
expect_exit 2 "bench check with a syntax error" "$tpmlab" bench check "$tmp/syntax.yaml"
expect_stderr 'syntax\.yaml:[0-9]+:[0-9]+: ' "syntax error at file:line:col"
printf 'name: x\ndut: {transport: tis-spi-ftdi}\nfirmware_control: {model: m.yaml}\n' >"$tmp/fw.yaml"
expect_exit 2 "firmware_control on a real chip" "$tpmlab" bench check "$tmp/fw.yaml"
expect_stderr 'fw\.yaml:3:19: firmware_control is only for an emulated DUT' "firmware_control refused"
expect_exit 2 "bench check on a missing file" "$tpmlab" bench check "$tmp/none.yaml"
expect_exit 2 "bench without a subcommand" "$tpmlab" bench

# 5. tpmlab run --bench: the same scenario on the simulated SPI TPM; a real
# chip refuses a clearing scenario before anything runs (exit 2, each step
# and the allow key); an absent device cannot be reached (exit 3).
expect_exit 0 "attest on the simulated SPI TPM" "$tpmlab" run "$src/scenarios/attest.yaml" \
  --bench "$benches/simulated-spi.yaml" -o "$tmp/attest-spi" -q
grep -q '"bus": "tis-spi"' "$tmp/attest-spi/run.json" || fail "the attest run went over TIS"
expect_exit 2 "a clearing scenario on the host's TPM" "$tpmlab" run "$src/scenarios/alarm-tpm-cleared.yaml" \
  --bench "$benches/host-tpmrm0.yaml" -o "$tmp/refused" -q
expect_stderr 'alarm-tpm-cleared\.yaml:[0-9]+:[0-9]+: clear needs allow\.clear' "names the step and the key"
[[ -e "$tmp/refused/run.json" ]] && fail "a refused scenario must not start a run"
if [[ ! -e /dev/tpmrm0 ]]; then
  expect_exit 3 "attest on an absent /dev/tpmrm0" "$tpmlab" run "$src/scenarios/attest.yaml" \
    --bench "$benches/host-tpmrm0.yaml" -o "$tmp/absent" -q
  expect_stderr '/dev/tpmrm0: No such file or directory: no TPM device' "names the device"
  # CI reads run.json and junit.xml: a run that could not start leaves both.
  /usr/bin/python3 - "$tmp/absent" <<'PY' || fail "a run that could not start left no run.json / junit.xml saying why"
import json, sys
d = sys.argv[1]
run = json.load(open(d + "/run.json"))
assert run["status"] == "error" and "/dev/tpmrm0" in run["error"], run
assert run["steps"] == [] and run["dut"]["bench"] == "host-tpmrm0", run["dut"]
junit = open(d + "/junit.xml").read()
assert 'errors="1"' in junit and "/dev/tpmrm0" in junit, junit
PY
  expect_stderr 'results: .*absent/run.json \(status error\)' "says where the record is"
fi
expect_exit 2 "run with a broken bench" "$tpmlab" run "$src/scenarios/attest.yaml" --bench "$tmp/unknown-key.yaml" -q
expect_stderr 'unknown-key\.yaml:4:3: ' "bench error at file:line:col"

# 6. hw list: TPM devices, or a plain "none", and the USB parts it recognises.
expect_exit 0 "hw list" "$tpmlab" hw list
if compgen -G '/dev/tpm*' >/dev/null; then
  expect_stdout '^/dev/tpm' "lists the TPM devices"
else
  expect_stdout '^no TPM devices found' "says it found none"
fi
# USB: what it recognised, that it found none, or why it cannot look.
expect_stdout '(bench: |^no supported USB devices found|^USB: cannot enumerate)' "says what it found on USB"

if [[ $failures -ne 0 ]]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "all bench CLI checks passed"
