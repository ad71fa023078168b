#!/usr/bin/env bash
# tpmlab serve: the embedded default and the simulated SPI TPM bench served
# on a free port pair, driven by real tpm2-tools through both TCTIs (swtpm:
# data + control channel; mssim: data + platform port): tpm2_getrandom,
# tpm2_pcrread, tpm2_createek + tpm2_createak + tpm2_quote (checked by
# tpm2_checkquote). The store holds every relayed command with the codes
# the tools sent; swtpm_ioctl -i delivers _TPM_Init through the control port;
# an injected response code reaches tpm2-tools as its error; bytes that are
# not a simulator frame close the connection naming the byte offset; bad
# input exits 2, a port in use 3; SIGINT ends the run in order (exit 130).
#   serve_cli_test.sh TPMLAB_BINARY SOURCE_DIR
set -uo pipefail
tpmlab=$(realpath "$1")
src=$2
for tool in tpm2_getrandom tpm2_pcrread tpm2_createek tpm2_createak tpm2_quote tpm2_checkquote tpm2_startup tpm2_flushcontext; do
  command -v $tool >/dev/null || { echo "SKIPPED: $tool is absent (Debian package tpm2-tools)"; exit 77; }
done
command -v swtpm >/dev/null || { echo "SKIPPED: swtpm is absent (Debian package swtpm)"; exit 77; }
for lib in libtss2-tcti-swtpm.so.0 libtss2-tcti-mssim.so.0; do
  ldconfig -p | grep -q "$lib" || { echo "SKIPPED: $lib is absent (Debian package ${lib%.so.0}0)"; exit 77; }
done
tmp=$(mktemp -d /tmp/tpmlab-serve-XXXXXX)
servers=()
cleanup() {
  local pid
  for pid in "${servers[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
failures=0
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export TSS2_LOG=all+none  # tpm2-tools' own error lines only

# Starts `tpmlab serve --port 0 --out $tmp/NAME ARGS...` in the background
# and waits (60 s: a loaded machine) for the TCTI line; sets port and pid.
start_serve() {  # name, args...
  local name=$1; shift
  "$tpmlab" serve --port 0 --out "$tmp/$name" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  pid=$!
  servers+=("$pid")
  local i
  for ((i = 0; i < 600; i++)); do
    if grep -q '^export TPM2TOOLS_TCTI=' "$tmp/$name.out" 2>/dev/null; then
      port=$(sed -n 's/^export TPM2TOOLS_TCTI=.*port=\([0-9]*\)$/\1/p' "$tmp/$name.out")
      echo "ok: $name: serving on 127.0.0.1:$port"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  fail "$name: tpmlab serve did not start"; sed 's/^/  | /' "$tmp/$name.out" "$tmp/$name.err" | tail -20
  return 1
}

# SIGINT, then the exit code (130) and the summary.
stop_serve() {  # name
  local name=$1 rc
  kill -INT "$pid"
  wait "$pid"; rc=$?
  [[ $rc -eq 130 ]] && echo "ok: $name: SIGINT stops it (exit 130)" ||
    { fail "$name: exit $rc after SIGINT, expected 130"; sed 's/^/  | /' "$tmp/$name.err" | tail -20; }
  grep -q '^tpmlab serve: stopped: ' "$tmp/$name.out" || fail "$name: no summary line"
  [[ -f $tmp/$name/run.json ]] || fail "$name: no run.json in the out folder"
}

# The tools a lab would point at a TPM, through TCTI $1; counts what it sent.
drive() {  # what, tcti
  local what=$1 tcti=$2 out
  export TPM2TOOLS_TCTI=$tcti
  local dir=$tmp/work-$RANDOM
  mkdir -p "$dir"
  sent_getrandom=0
  for i in 1 2 3; do
    out=$(tpm2_getrandom 16 --hex 2>"$tmp/tool.err")
    if [[ $out =~ ^[0-9a-f]{32}$ ]]; then sent_getrandom=$((sent_getrandom + 1)); else
      fail "$what: tpm2_getrandom 16 gave '$out'"; sed 's/^/  | /' "$tmp/tool.err"; fi
  done
  [[ $sent_getrandom -eq 3 ]] && echo "ok: $what: tpm2_getrandom 16 x3"
  if tpm2_pcrread sha256:0,1,2 >"$dir/pcrs.txt" 2>"$tmp/tool.err" && grep -qE '^\s+2 : 0x[0-9A-F]{64}' "$dir/pcrs.txt"; then
    echo "ok: $what: tpm2_pcrread sha256:0,1,2"
  else
    fail "$what: tpm2_pcrread"; sed 's/^/  | /' "$dir/pcrs.txt" "$tmp/tool.err"
  fi
  # Straight to a TPM (no resource manager between), the tools leave their
  # objects loaded: flush them between tools, as one does against swtpm.
  if (cd "$dir" &&
      tpm2_createek -c ek.ctx -G rsa -u ek.pub && tpm2_flushcontext -t &&
      tpm2_createak -C ek.ctx -c ak.ctx -G rsa -g sha256 -s rsassa -u ak.pub -n ak.name -f pem &&
      tpm2_flushcontext -t && tpm2_flushcontext -s &&
      tpm2_quote -c ak.ctx -l sha256:0,1,2 -q 0badc0de -m quote.msg -s quote.sig -o quote.pcrs -g sha256 &&
      tpm2_checkquote -u ak.pub -m quote.msg -s quote.sig -f quote.pcrs -g sha256 -q 0badc0de) \
      >"$tmp/tool.out" 2>"$tmp/tool.err"; then
    echo "ok: $what: tpm2_createek, tpm2_createak, tpm2_quote; tpm2_checkquote verifies the quote"
  else
    fail "$what: the quote"; sed 's/^/  | /' "$tmp/tool.out" "$tmp/tool.err" | tail -20
  fi
}

# The store's trace of run folder $2 holds what drive() sent: 3 GetRandom,
# 1 Quote, PCR_Read, CreatePrimary (the EK), Create and Load (the AK), all
# answered with success, in the order sent, after the boot step's Startup.
check_store() {  # what, folder
  local what=$1 folder=$2
  "$tpmlab" trace "$folder" --list >"$tmp/list.tsv" 2>"$tmp/trace.err" || { fail "$what: tpmlab trace --list"; cat "$tmp/trace.err"; return; }
  check_py "$what: the store's trace holds the commands tpm2-tools sent, in order, answered" '
import sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()[1:]]
served = [(int(cc, 16), rc) for step, seq, cc, rc in rows if step != "0"]
boot = [int(cc, 16) for step, seq, cc, rc in rows if step == "0"]
assert 0x144 in boot or boot == [], f"boot step: {boot}"
codes = [cc for cc, rc in served]
assert 0x158 in codes, "no Quote stored"
last_quote = len(codes) - 1 - codes[::-1].index(0x158)
drive = served[:last_quote + 1]  # what drive() sent; later tests send more
codes = [cc for cc, rc in drive]
assert codes.count(0x17B) == 3, f"{codes.count(0x17B)} GetRandom"
order = [0x17B, 0x17E, 0x131, 0x153, 0x157, 0x158]  # GetRandom, PCR_Read, CreatePrimary, Create, Load, Quote
at = 0
for want in order:
    at = codes.index(want, at)
# A busy chip may answer TPM_RC_RETRY (0x922) or YIELDED (0x908) and the
# tools send the command again: the last answer to each is success.
for want in order:
    answers = [rc for cc, rc in drive if cc == want]
    assert answers[-1] == "0x00000000", f"command {want:#x} answered {answers}"
    assert all(rc in ("0x00000000", "0x00000922", "0x00000908") for rc in answers), f"command {want:#x} answered {answers}"
print(len(served), "commands served")' "$tmp/list.tsv"
  "$tpmlab" runs --db "$folder" >"$tmp/runs.txt" 2>&1 && grep -q serve "$tmp/runs.txt" &&
    echo "ok: $what: tpmlab runs lists the serve run" || { fail "$what: tpmlab runs"; cat "$tmp/runs.txt"; }
}

# --- the embedded default (an auto-launched swtpm), both TCTIs -------------
start_serve default || exit 1
drive "default, swtpm TCTI" "swtpm:host=127.0.0.1,port=$port"
default_port=$port default_pid=$pid
# The port pair in use: a second serve on it is a run error (3) naming it.
expect_exit 3 "a port in use" "$tpmlab" serve --port "$default_port" --out "$tmp/busy"
expect_stderr "127\.0\.0\.1:$default_port" "a port in use names it"
# _TPM_Init through the control port (swtpm's own client): the chip then
# wants Startup, as a freshly powered swtpm does.
if command -v swtpm_ioctl >/dev/null; then
  if swtpm_ioctl --tcp "127.0.0.1:$((port + 1))" -i >"$tmp/ioctl.out" 2>&1; then
    if tpm2_getrandom 8 --hex >/dev/null 2>"$tmp/tool.err"; then fail "getrandom right after CMD_INIT worked (no Startup needed?)"
    else grep -qi 'initialize\|0x100' "$tmp/tool.err" && echo "ok: swtpm_ioctl -i: _TPM_Init; the next command gets TPM_RC_INITIALIZE" ||
      { fail "after CMD_INIT: unexpected error"; sed 's/^/  | /' "$tmp/tool.err"; }; fi
    tpm2_startup -c 2>"$tmp/tool.err" && tpm2_getrandom 8 --hex >/dev/null 2>>"$tmp/tool.err" &&
      echo "ok: tpm2_startup -c after _TPM_Init, then tpm2_getrandom" || { fail "tpm2_startup -c after CMD_INIT"; sed 's/^/  | /' "$tmp/tool.err"; }
  else
    fail "swtpm_ioctl -i on the control port"; sed 's/^/  | /' "$tmp/ioctl.out"
  fi
fi
# Bytes that are no frame: the connection is closed, naming the byte offset; serving goes on.
if exec 3<>"/dev/tcp/127.0.0.1/$port"; then
  printf '\x00\x00\x00\x63' >&3; exec 3<&- 3>&-
fi
sleep 0.5
grep -q "byte offset 0: data port code 0x63" "$tmp/default.err" && echo "ok: a frame that is no frame closes its connection, naming byte offset 0" ||
  { fail "bad bytes: no message naming the offset"; sed 's/^/  | /' "$tmp/default.err"; }
tpm2_getrandom 8 --hex >/dev/null 2>&1 && echo "ok: serving goes on after bad bytes" || fail "serving stopped after bad bytes"
stop_serve default
check_store "default, swtpm TCTI" "$tmp/default"
grep -q ' 1 _TPM_Init' "$tmp/default.out" && echo "ok: the summary counts the _TPM_Init" || fail "summary: $(grep stopped "$tmp/default.out")"

start_serve default-mssim --protocol mssim || exit 1
drive "default, mssim TCTI" "mssim:host=127.0.0.1,port=$port"
stop_serve default-mssim
check_store "default, mssim TCTI" "$tmp/default-mssim"
grep -q ' 0 _TPM_Init' "$tmp/default-mssim.out" && echo "ok: mssim: TPM_SIGNAL_POWER_ON at each connect does not reset a powered chip" ||
  fail "mssim summary: $(grep stopped "$tmp/default-mssim.out")"

# --- the simulated SPI TPM bench, both TCTIs --------------------------------
start_serve spi --bench "$src/hw/benches/simulated-spi.yaml" || exit 1
drive "simulated-spi, swtpm TCTI" "swtpm:host=127.0.0.1,port=$port"
stop_serve spi
check_store "simulated-spi, swtpm TCTI" "$tmp/spi"
grep -q 'simulated' "$tmp/spi.out" && echo "ok: simulated-spi: the banner names the bench" || fail "spi banner: $(head -1 "$tmp/spi.out")"

start_serve spi-mssim --bench "$src/hw/benches/simulated-spi.yaml" --protocol mssim --no-startup || exit 1
export TPM2TOOLS_TCTI="mssim:host=127.0.0.1,port=$port"
tpm2_startup -c 2>"$tmp/tool.err" && echo "ok: --no-startup: tpm2_startup -c through the mssim TCTI" ||
  { fail "tpm2_startup -c"; sed 's/^/  | /' "$tmp/tool.err"; }
drive "simulated-spi, mssim TCTI" "mssim:host=127.0.0.1,port=$port"
stop_serve spi-mssim
check_store "simulated-spi, mssim TCTI" "$tmp/spi-mssim"

# --- a fault: TPM_RC_FAILURE injected into the first GetRandom ---------------
start_serve fault --fault rc=0x101,cc=0x17b,count=1 || exit 1
export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$port"
if tpm2_getrandom 16 --hex >/dev/null 2>"$tmp/tool.err"; then
  fail "fault: tpm2_getrandom succeeded through an injected TPM_RC_FAILURE"
else
  grep -qiE '0x101|failure' "$tmp/tool.err" && echo "ok: fault: tpm2_getrandom reports the injected TPM_RC_FAILURE (0x101)" ||
    { fail "fault: tpm2_getrandom's error does not name 0x101"; sed 's/^/  | /' "$tmp/tool.err"; }
fi
tpm2_getrandom 16 --hex >/dev/null 2>"$tmp/tool.err" && echo "ok: fault: count=1, so the next GetRandom is answered" ||
  { fail "fault: second GetRandom"; sed 's/^/  | /' "$tmp/tool.err"; }
stop_serve fault
"$tpmlab" trace "$tmp/fault" --list >"$tmp/list.tsv" 2>&1
check_py "fault: the trace holds GetRandom answered 0x101, then answered 0" '
import sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()[1:]]
got = [rc for step, seq, cc, rc in rows if int(cc, 16) == 0x17B]
assert got == ["0x00000101", "0x00000000"], got' "$tmp/list.tsv"

# --- bad input: exit 2 before anything starts --------------------------------
expect_exit 2 "--protocol foo" "$tpmlab" serve --protocol foo --out "$tmp/bad1"
expect_exit 2 "--fault slow" "$tpmlab" serve --fault slow --out "$tmp/bad2"
expect_stderr "--fault slow: unknown fault 'slow'" "--fault slow names the spec"
expect_exit 2 "--fault rc=x" "$tpmlab" serve --fault rc=x --out "$tmp/bad3"
expect_exit 2 "--port 70000" "$tpmlab" serve --port 70000 --out "$tmp/bad4"
expect_exit 2 "--bench missing" "$tpmlab" serve --bench "$tmp/none.yaml" --out "$tmp/bad5"
expect_exit 2 "an out folder holding a run" "$tpmlab" serve --out "$tmp/default"
expect_stderr "already holds a run" "an out folder holding a run says so"

if [[ $failures -eq 0 ]]; then echo "PASS"; else echo "FAILED: $failures"; exit 1; fi
