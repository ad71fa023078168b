#!/usr/bin/env bash
# A whole machine (dut: {transport: machine}) reached through tpmlab-agent:
# over SSH with a real sshd of the test's own on a loopback port (a temporary
# host key, a temporary client key, nothing of the user's), and over a TCP
# console (a small Python server handing each connection to the agent), the
# agent's TPM a swtpm on loopback (--tpm-fd 3, a TCP connection to swtpm's
# raw data port), its event log a file. Then the ways a machine fails: no
# sshd, a wrong key, no agent installed, a silent console, a console without
# an agent, a reboot that never happens; and what a machine refuses before a
# run starts. Everything started here dies with the test (trap on EXIT).
#   machine_cli_test.sh TPMLAB_BINARY SOURCE_DIR
set -uo pipefail
tpmlab=$(realpath "$1"); src=$2
agent=$(dirname "$tpmlab")/tpmlab-agent
for need in /usr/sbin/sshd:openssh-server /usr/bin/ssh:openssh-client /usr/bin/ssh-keygen:openssh-client \
            /usr/bin/swtpm:swtpm /usr/bin/python3:python3; do
  [[ -x ${need%%:*} ]] || { echo "SKIPPED: ${need%%:*} is absent (Debian package ${need#*:})"; exit 77; }
done
[[ -x $agent ]] || { echo "FAIL: $agent is not built"; exit 1; }
tmp=$(mktemp -d /tmp/tpmlab-machine-cli-XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
failures=0
source "$src/tests/cli/lib.sh"

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {  # port, what: up to 30 s
  local i
  for ((i = 0; i < 300; i++)); do
    /usr/bin/python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),1).close()' "$1" \
      2>/dev/null && return 0
    sleep 0.1
  done
  echo "FAIL: $2 did not listen on 127.0.0.1:$1 within 30 s"; return 1
}

# The machine's TPM: a swtpm on loopback, started (startup-clear) as a
# platform's firmware would have started it.
sw=$(free_port); swc=$(free_port)
mkdir "$tmp/tpm"
swtpm socket --tpm2 --tpmstate dir="$tmp/tpm" --server type=tcp,port="$sw",bindaddr=127.0.0.1 \
  --ctrl type=tcp,port="$swc",bindaddr=127.0.0.1 --flags not-need-init,startup-clear \
  --log file="$tmp/swtpm.log" >"$tmp/swtpm.out" 2>&1 &
pids+=($!)
wait_port "$sw" swtpm || exit 1

# Its firmware's event log: only the Spec ID header (EV_NO_ACTION extends
# nothing), which replays to the zero PCRs a freshly started swtpm has.
/usr/bin/python3 - "$tmp/binary_bios_measurements" <<'PY'
import struct, sys
spec = b"Spec ID Event03\0" + struct.pack("<IBBBBI", 0, 0, 2, 0, 2, 2) + struct.pack("<HHHH", 4, 20, 11, 32) + b"\0"
open(sys.argv[1], "wb").write(struct.pack("<II", 0, 3) + bytes(20) + struct.pack("<I", len(spec)) + spec)
PY

# The machine's sshd: the test's own config, keys and port; root logs in
# with the temporary key only.
mkdir -p /run/sshd
ssh-keygen -q -t ed25519 -N '' -f "$tmp/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$tmp/client_key"
ssh-keygen -q -t ed25519 -N '' -f "$tmp/other_key"
cp "$tmp/client_key.pub" "$tmp/authorized_keys"
sshp=$(free_port)
cat >"$tmp/sshd_config" <<EOF
Port $sshp
ListenAddress 127.0.0.1
HostKey $tmp/host_key
AuthorizedKeysFile $tmp/authorized_keys
PermitRootLogin prohibit-password
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PidFile $tmp/sshd.pid
EOF
/usr/sbin/sshd -D -e -f "$tmp/sshd_config" >"$tmp/sshd.log" 2>&1 &
pids+=($!)
wait_port "$sshp" sshd || { cat "$tmp/sshd.log"; exit 1; }

user=$(id -un)
agent_cmd="bash -c 'exec 3<>/dev/tcp/127.0.0.1/$sw; exec $agent --stdio --tpm-fd 3 --event-log $tmp/binary_bios_measurements --power-dry-run'"
write_bench() {  # file, port, key, command, boot_timeout_s, power
  cat >"$1" <<EOF
name: machine-ssh-test
dut: {transport: machine}
machine:
  agent:
    ssh:
      host: 127.0.0.1
      user: $user
      port: $2
      options: ["-F", "/dev/null", "-i", "$3", "-o", "IdentitiesOnly=yes", "-o", "UserKnownHostsFile=$tmp/known_hosts", "-o", "StrictHostKeyChecking=accept-new"]
      command: "$(printf '%s' "$4" | sed 's/"/\\"/g')"
  boot_timeout_s: $5
  firmware: {default: baseline}
power: $6
EOF
}
bench=$tmp/machine.yaml
write_bench "$bench" "$sshp" "$tmp/client_key" "$agent_cmd" 60 "{kind: none}"

# 1. bench check: ssh on PATH, the host resolves; nothing sent.
expect_exit 0 "bench check on the ssh machine" "$tpmlab" bench check "$bench"
grep -q 'host 127.0.0.1 resolves' "$tmp/stdout" || fail "bench check does not say the host resolves"

# 2. attest.yaml over SSH: booted (already up: power none), enrolled, quoted,
# verified. The chip is a bare swtpm (no EK certificate) and its log has no
# Secure Boot events, so a verifier rightly says EK_CERT_MISSING and
# SECURE_BOOT_DISABLED: the copy reports alarms rather than failing on them,
# and the check below names exactly those two.
cat > "$tmp/attest.yaml" <<'YAML'
name: machine-attest
description: attest.yaml's steps, its alarms reported rather than failed on.
seed: 1
firmware: baseline
steps:
  - boot
  - enroll
  - snapshot
YAML
start=$(date +%s%N)
expect_exit 0 "attest.yaml on the ssh machine" "$tpmlab" run "$tmp/attest.yaml" --bench "$bench" -o "$tmp/attest" --quiet
echo "figure: attest.yaml over ssh took $((($(date +%s%N) - start) / 1000000)) ms"
check_py "attest over ssh: the machine described, quote verified, log from the agent" '
import json, sys
run = json.load(open(sys.argv[1]))
boot = run["steps"][0]
board = boot["detail"]["board"]
assert board["machine"].startswith("ssh "), board
assert board["already_up"] is True and board["agent"]["tpm"] == "fd 3", board
assert "not observed" in board["bus_trace"] and boot["detail"]["platform_commands"] == [], boot["detail"]
print("figure: ssh connect to hello", board["boot_ms"]["agent"], "ms")
alarms = {a["code"] for s in run["steps"] for a in s.get("alarms", [])}
assert alarms == {"EK_CERT_MISSING", "SECURE_BOOT_DISABLED"}, alarms
snaps = [s for s in run["steps"] if s.get("snapshot")]
assert snaps
for s in snaps:
    checks = {c["name"]: c for c in s["checks"]}
    assert checks["quote_verified"]["passed"], checks["quote_verified"]
' "$tmp/attest/run.json"
cat "$tmp/py.out" 2>/dev/null | grep '^figure' || true

# 3. doctor through OpenDut on the same machine: it examines the chip and
# fails it for the same two reasons (exit 1), and for nothing else.
expect_exit 1 "doctor on the ssh machine" "$tpmlab" doctor --bench "$bench"
grep -q 'machine-ssh-test' "$tmp/stdout" || fail "doctor does not name the machine"

# 4. What a machine with power: none refuses before anything runs, at file:line:column.
cat >"$tmp/loss.yaml" <<'EOF'
name: loss
firmware: baseline
steps:
  - boot
  - power_cycle: power-loss
  - power_cycle: resume
  - power_cycle: restart
EOF
expect_exit 2 "power-loss, resume, restart refused on a machine with power none" \
  "$tpmlab" run "$tmp/loss.yaml" --bench "$bench" -o "$tmp/loss" --quiet
expect_stderr 'loss.yaml:5:[0-9]+: power_cycle: .*power: none' "power-loss refused at its place"
expect_stderr 'loss.yaml:6:[0-9]+: power_cycle: .*machine.suspend' "resume refused without machine.suspend"
expect_stderr 'loss.yaml:7:[0-9]+: power_cycle: .*restart' "restart refused"
[[ -e $tmp/loss/run.json ]] && fail "a refused scenario left a run behind"

# 5. A reset is an OS reboot through the agent; this agent only acknowledges
# (--power-dry-run), so the boot from before keeps answering: said as such.
cat >"$tmp/reset.yaml" <<'EOF'
name: reset
firmware: baseline
steps:
  - boot
  - power_cycle: reset
EOF
write_bench "$tmp/reset-bench.yaml" "$sshp" "$tmp/client_key" "$agent_cmd" 8 "{kind: none}"
expect_exit 3 "a reboot that never happens" "$tpmlab" run "$tmp/reset.yaml" --bench "$tmp/reset-bench.yaml" -o "$tmp/reset" --quiet
grep -rqs 'only the boot from before answered' "$tmp/reset" "$tmp/stderr" || \
  { fail "the unrebooted machine is not named"; sed 's/^/  | /' "$tmp/stderr"; }

# 6. No sshd listening: "no agent ... Connection refused" within the budget.
dead=$(free_port)
write_bench "$tmp/dead.yaml" "$dead" "$tmp/client_key" "$agent_cmd" 6 "{kind: none}"
start=$(date +%s)
expect_exit 3 "no sshd" "$tpmlab" doctor --bench "$tmp/dead.yaml"
took=$(($(date +%s) - start))
expect_stderr "no agent: ssh $user@127.0.0.1:$dead .*Connection refused" "no sshd: refused, quoted"
((took <= 40)) || fail "no sshd: took $took s for a 6 s budget"
echo "figure: no sshd reported after $took s (budget 6 s)"

# 7. A key sshd does not know: authentication failed, at once.
write_bench "$tmp/key.yaml" "$sshp" "$tmp/other_key" "$agent_cmd" 60 "{kind: none}"
start=$(date +%s)
expect_exit 3 "wrong key" "$tpmlab" doctor --bench "$tmp/key.yaml"
expect_stderr "no agent: .*authentication failed: .*Permission denied \(publickey" "wrong key named"
(($(date +%s) - start <= 30)) || fail "wrong key: not reported at once"

# 8. No agent on the machine: the remote shell's line quoted.
write_bench "$tmp/noagent.yaml" "$sshp" "$tmp/client_key" "tpmlab-agent-not-installed --stdio" 60 "{kind: none}"
expect_exit 3 "agent not installed" "$tpmlab" doctor --bench "$tmp/noagent.yaml"
expect_stderr "no agent: .*tpmlab-agent did not start on the machine: .*tpmlab-agent-not-installed: command not found" \
  "missing agent named with the shell's line"

# 9. A TCP console (a QEMU chardev socket or ser2net would be the same): a
# small server hands each connection to an agent as its stdin/stdout. Its
# machine has a fresh swtpm of its own: the agent above reached the first
# one's raw port, with no resource manager to flush what earlier runs loaded.
sw=$(free_port); swc=$(free_port)
mkdir "$tmp/tpm2"
swtpm socket --tpm2 --tpmstate dir="$tmp/tpm2" --server type=tcp,port="$sw",bindaddr=127.0.0.1 \
  --ctrl type=tcp,port="$swc",bindaddr=127.0.0.1 --flags not-need-init,startup-clear \
  --log file="$tmp/swtpm2.log" >"$tmp/swtpm2.out" 2>&1 &
pids+=($!)
wait_port "$sw" swtpm || exit 1
cons=$(free_port)
cat >"$tmp/console.py" <<'PY'
import os, socket, subprocess, sys
port, mode, agent, sw, log = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port)); srv.listen(4)
kept = []
while True:
    conn, _ = srv.accept()
    if mode == "silent":
        kept.append(conn)  # kept open, never a byte
        continue
    if mode == "noise":
        conn.sendall(b"[    0.000000] Linux version 6.1.0\r\nlogin: ")
        kept.append(conn)
        continue
    tpm = socket.create_connection(("127.0.0.1", sw))
    subprocess.Popen([agent, "--stdio", "--tpm-fd", str(tpm.fileno()), "--event-log", log, "--power-dry-run"],
                     stdin=conn.fileno(), stdout=conn.fileno(), stderr=subprocess.DEVNULL, pass_fds=(tpm.fileno(),))
    tpm.close(); conn.close()
PY
/usr/bin/python3 "$tmp/console.py" "$cons" agent "$agent" "$sw" "$tmp/binary_bios_measurements" &
pids+=($!)
wait_port "$cons" "the console server" || exit 1
console_bench() {  # file, port, boot_timeout_s
  cat >"$1" <<EOF
name: machine-console-test
dut: {transport: machine}
machine:
  agent: {console: "tcp:127.0.0.1:$2"}
  boot_timeout_s: $3
EOF
}
console_bench "$tmp/console.yaml" "$cons" 60
expect_exit 0 "bench check on the TCP console" "$tpmlab" bench check "$tmp/console.yaml"
expect_exit 0 "attest.yaml over a TCP console" "$tpmlab" run "$tmp/attest.yaml" --bench "$tmp/console.yaml" \
  -o "$tmp/console-run" --quiet
check_py "attest over the console: described" '
import json, sys
run = json.load(open(sys.argv[1]))
board = run["steps"][0]["detail"]["board"]
assert board["machine"].startswith("tcp console 127.0.0.1:"), board
' "$tmp/console-run/run.json"

# 10. A console that stays silent, and one that prints but has no agent.
silent=$(free_port); noise=$(free_port)
/usr/bin/python3 "$tmp/console.py" "$silent" silent "$agent" "$sw" x & pids+=($!)
/usr/bin/python3 "$tmp/console.py" "$noise" noise "$agent" "$sw" x & pids+=($!)
wait_port "$silent" "the silent console" && wait_port "$noise" "the noisy console" || exit 1
console_bench "$tmp/silent.yaml" "$silent" 4
expect_exit 3 "a silent console" "$tpmlab" doctor --bench "$tmp/silent.yaml"
expect_stderr "no console output: nothing came over tcp console 127.0.0.1:$silent" "silence named"
console_bench "$tmp/noise.yaml" "$noise" 4
expect_exit 3 "a console without an agent" "$tpmlab" doctor --bench "$tmp/noise.yaml"
expect_stderr "no agent: tcp console 127.0.0.1:$noise printed [0-9]+ bytes" "console without agent named"
expect_stderr "Linux version 6.1.0" "the console's last lines quoted"

# 11. A console port nothing listens on: bench check says so.
console_bench "$tmp/nocons.yaml" "$dead" 4
expect_exit 1 "bench check: console port closed" "$tpmlab" bench check "$tmp/nocons.yaml"

# 12. The example bench: a host this machine does not know, a PDU command it lacks.
expect_exit 1 "bench check on hw/benches/machine-ssh.yaml" "$tpmlab" bench check "$src/hw/benches/machine-ssh.yaml"
grep -q '^\[MISS\] machine.agent.ssh: host lab-board-7 does not resolve' "$tmp/stdout" || \
  { fail "the unresolved example host is not named"; sed 's/^/  | /' "$tmp/stdout"; }

((failures == 0)) && echo "all machine CLI checks passed"
exit $((failures > 0))
