#!/usr/bin/env bash
# tpmlab trace: real runs (power cycles; transport faults) exported as pcapng
# and read by tshark's TPM 2.0 dissector: every decoded command and response
# code is the stored one, in order; one TCP stream per boot; no malformed
# packet, no bad checksum, no TCP sequence complaint; packets at the times
# the commands were sent; boots, faults, unanswered commands and the DUT in
# comments. Bad input is exit 2 naming it. SKIPPED (77) without tshark.
#   trace_cli_test.sh TPMLAB_BINARY SOURCE_DIR
set -uo pipefail
tpmlab=$(realpath "$1")
src=$2
command -v tshark >/dev/null || { echo "SKIPPED: tshark is absent (Debian package tshark)"; exit 77; }
tmp=$(mktemp -d /tmp/tpmlab-trace-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# tshark as root warns and reads the user's profile: a home of its own, checksums checked.
export HOME=$tmp/home XDG_CONFIG_HOME=$tmp/home/.config
mkdir -p "$HOME"
shark() { tshark -n -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE -o tcp.analyze_sequence_numbers:TRUE "$@" 2>"$tmp/tshark.err"; }

# Compares what tshark decodes of FILE with what the store holds (tpmlab trace --list).
check_trace() {  # description, capture, source for --list
  local what=$1 pcap=$2 source=$3
  "$tpmlab" trace "$source" --list >"$tmp/list.tsv" || { fail "$what: trace --list"; return; }
  shark -r "$pcap" -Y tpm -T fields -E separator=/t -e tpm.req.cc -e tpm.resp.rc >"$tmp/decoded.tsv" ||
    { fail "$what: tshark"; cat "$tmp/tshark.err"; return; }
  check_py "$what: every command and response code tshark decodes is the stored one, in order" '
import sys
want = []
for line in open(sys.argv[1]).read().splitlines()[1:]:
    step, seq, cc, rc = line.split("\t")
    want.append(("C", int(cc, 16)))
    if rc != "none":
        want.append(("R", int(rc, 16)))
got = []
for line in open(sys.argv[2]).read().splitlines():
    cc, rc = (line.split("\t") + [""])[:2]
    if cc: got.append(("C", int(cc, 16)))
    if rc: got.append(("R", int(rc, 16)))
assert len(want) > 20, f"only {len(want)} codes stored"
for i, (w, g) in enumerate(zip(want, got)):
    assert w == g, f"code {i}: stored {w[0]} {w[1]:#x}, decoded {g[0]} {g[1]:#x}"
assert len(want) == len(got), f"{len(want)} codes stored, {len(got)} decoded"
print(len(want), "codes")' "$tmp/list.tsv" "$tmp/decoded.tsv"
  # tshark 4.0's table gives TPM2_NV_Read (0x14e) one handle where TPM 2.0 Part 3 gives it
  # two (authHandle, nvIndex), so it reads the auth area from nvIndex and throws: a
  # dissector bug, the only malformed packets allowed (the same bytes as the TPM got).
  local nv_read flagged
  nv_read=$(shark -r "$pcap" -Y '_ws.malformed && tpm.req.cc == 0x14e' | wc -l)
  flagged=$(shark -r "$pcap" -Y '(_ws.malformed || _ws.expert.severity >= 6291456 || ip.checksum.status == 0 || tcp.checksum.status == 0 || tcp.analysis.flags) && !(tpm.req.cc == 0x14e)' | wc -l)
  [[ $flagged -eq 0 ]] && echo "ok: $what: no malformed packet, bad checksum or TCP complaint ($nv_read NV_Read commands tshark 4.0 mis-dissects)" ||
    { fail "$what: $flagged packets flagged"; shark -r "$pcap" -Y '(_ws.malformed || _ws.expert.severity >= 6291456 || tcp.analysis.flags) && !(tpm.req.cc == 0x14e)' | head; }
  local all good
  all=$(shark -r "$pcap" | wc -l)
  good=$(shark -r "$pcap" -Y 'ip.checksum.status == 1 && tcp.checksum.status == 1' | wc -l)
  [[ $good -eq $all && $all -gt 0 ]] && echo "ok: $what: tshark verified every IPv4 and TCP checksum ($all packets)" ||
    fail "$what: $good of $all packets with verified checksums"
  shark -r "$pcap" -q -z expert >"$tmp/expert.txt"
  if grep -q "^Warns" "$tmp/expert.txt" || [[ $(awk '/^Errors/,/^Notes|^Chats|^Comments/' "$tmp/expert.txt" | grep -c "Malformed") -gt 1 ]] ||
     [[ $(awk '/Malformed/ {print $1}' "$tmp/expert.txt") -gt $nv_read ]]; then
    fail "$what: tshark's expert info has more than the NV_Read dissector errors"; sed 's/^/  | /' "$tmp/expert.txt" | head -20
  else
    echo "ok: $what: tshark's expert info has no warning and no error beyond those"
  fi
}

mkdir -p "$tmp/firmware" && cp "$src"/scenarios/firmware/*.yaml "$tmp/firmware/"

# 1. Power cycles of every kind: one connection per boot, at the times sent.
"$tpmlab" run "$src/scenarios/power-cycle.yaml" --cycles 4 -q --out "$tmp/pc" >"$tmp/run.out" 2>&1
[[ -f $tmp/pc/tpmlab.db ]] || { fail "power-cycle run stored nothing"; cat "$tmp/run.out"; exit 1; }
expect_exit 0 "trace a run folder" "$tpmlab" trace "$tmp/pc" -o "$tmp/pc.pcapng"
grep -q "connections\? *,\|connection" "$tmp/stdout" && sed 's/^/  /' "$tmp/stdout"
check_trace "power-cycle" "$tmp/pc.pcapng" "$tmp/pc"
shark -r "$tmp/pc.pcapng" -T fields -e tcp.stream | sort -un >"$tmp/streams"
check_py "one TCP stream per boot, to port 2321" '
import json, sys
run = json.load(open(sys.argv[1]))
boots = sum(1 for s in run["steps"] if s["action"] in ("boot", "power_cycle") or "cycle" in s)
streams = open(sys.argv[2]).read().split()
assert boots == 5, boots
assert len(streams) == boots, f"{len(streams)} streams for {boots} boots"' "$tmp/pc/run.json" "$tmp/streams"
[[ $(shark -r "$tmp/pc.pcapng" -Y 'tcp.flags.syn == 1 && tcp.flags.ack == 0 && tcp.dstport == 2321' | wc -l) -eq 5 ]] &&
  echo "ok: each connection opens with a SYN to 2321" || fail "SYNs to 2321"
shark -r "$tmp/pc.pcapng" -Y 'tpm.req.cc || frame.comment' -T fields -E separator=/t -e frame.time_epoch -e tpm.req.cc \
  -e frame.comment >"$tmp/times.tsv"
check_py "packets are at the wall-clock times the commands were sent, inside their steps" '
import json, re, sys, datetime
run = json.load(open(sys.argv[1]))
steps = {s["index"]: s for s in run["steps"]}
def epoch(t): return datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()
step, checked, last = None, 0, 0.0
for line in open(sys.argv[2]).read().splitlines():
    t, cc, comment = (line.split("\t") + ["", ""])[:3]
    found = re.findall(r"step (\d+):", comment.replace("\\n", "\n"))
    if found: step = int(found[-1])
    if not cc: continue
    s = steps[step]
    start = epoch(s["started_at"])
    assert start - 0.002 <= float(t) <= start + s["duration_ms"] / 1000 + 0.002, (step, t, s["started_at"], s["duration_ms"])
    assert float(t) >= last
    last = float(t); checked += 1
assert checked > 50, checked
print(checked, "commands in their steps")' "$tmp/pc/run.json" "$tmp/times.tsv"
shark -r "$tmp/pc.pcapng" -Y frame.comment -T fields -e frame.comment >"$tmp/comments"
grep -q "boot 2 of the DUT, in step 2: power_cycle" "$tmp/comments" && echo "ok: a power cycle is a packet comment" ||
  { fail "power cycle comment"; head "$tmp/comments"; }
capinfos "$tmp/pc.pcapng" >"$tmp/capinfos" 2>&1
grep -q "Capture comment: *tpmlab run 1 of" "$tmp/capinfos" && grep -q "DUT " "$tmp/capinfos" &&
  grep -q "Capture application: *tpmlab" "$tmp/capinfos" && grep -qi "Capture hardware: *DUT" "$tmp/capinfos" &&
  echo "ok: the section header names the run, the DUT and tpmlab" || { fail "section header"; cat "$tmp/capinfos"; }
grep -q "nanoseconds\|Time precision: *nanoseconds" "$tmp/capinfos" && echo "ok: nanosecond timestamps" ||
  { fail "timestamp resolution"; grep -i precision "$tmp/capinfos"; }

# One step: DB:RUN:STEP and RUN_DIR:STEP are the same capture, one connection.
expect_exit 0 "trace DB:RUN:STEP" "$tpmlab" trace "$tmp/pc/tpmlab.db:1:3" -o "$tmp/step.pcapng"
expect_exit 0 "trace RUN_DIR:STEP" "$tpmlab" trace "$tmp/pc:3" -o "$tmp/step2.pcapng"
cmp -s "$tmp/step.pcapng" "$tmp/step2.pcapng" && echo "ok: the same step either way" || fail "DB:RUN:STEP and RUN_DIR:STEP differ"
check_trace "one step" "$tmp/step.pcapng" "$tmp/pc/tpmlab.db:1:3"

# 2. Transport faults: retries, a dropped response, a disconnect, failure mode, corruption.
"$tpmlab" run "$src/scenarios/alarm-transport-faults.yaml" -q --out "$tmp/tf" >"$tmp/run.out" 2>&1
[[ -f $tmp/tf/tpmlab.db ]] || { fail "transport-faults run stored nothing"; cat "$tmp/run.out"; exit 1; }
expect_exit 0 "trace DB" "$tpmlab" trace "$tmp/tf/tpmlab.db" -o "$tmp/tf.pcapng"
check_trace "transport faults" "$tmp/tf.pcapng" "$tmp/tf/tpmlab.db"
shark -r "$tmp/tf.pcapng" -Y frame.comment -T fields -e frame.comment >"$tmp/comments"
for fault in "fault injected: response_code (TPM2_Quote)" "fault injected: drop (TPM2_Quote)" \
             "fault injected: corrupt (TPM2_Quote)" "no response: the transport gave none"; do
  grep -qF "$fault" "$tmp/comments" && echo "ok: comment '$fault'" || fail "no comment '$fault'"
done
unanswered=$(awk -F'\t' '$4 == "none"' <("$tpmlab" trace "$tmp/tf/tpmlab.db" --list) | wc -l)
[[ $unanswered -gt 0 ]] && echo "ok: $unanswered unanswered commands stored and written without a response" ||
  fail "the faults left no unanswered command"

# 3. Bad input: exit 2 naming what and where.
expect_exit 2 "no such run folder or database" "$tpmlab" trace "$tmp/nothing" -o "$tmp/x.pcapng"
expect_stderr "$tmp/nothing: no such run folder" "the message names it"
expect_exit 2 "a run the database lacks" "$tpmlab" trace "$tmp/pc/tpmlab.db:9" -o "$tmp/x.pcapng"
expect_stderr "has no run 9" "the message names the run"
expect_exit 2 "a step the run lacks" "$tpmlab" trace "$tmp/pc:999" -o "$tmp/x.pcapng"
expect_stderr "has no step 999" "the message names the step"
[[ ! -e $tmp/x.pcapng && ! -e $tmp/x.pcapng.partial ]] && echo "ok: nothing written" || fail "a failed trace left a file"
echo "not json" >"$tmp/run.json"
expect_exit 2 "a run.json that is not one" "$tpmlab" trace "$tmp/run.json" -o "$tmp/x.pcapng"
expect_stderr "run.json: not a tpmlab run.json" "the message names the file"
echo "not sqlite" >"$tmp/junk.db"
expect_exit 2 "a file that is no database" "$tpmlab" trace "$tmp/junk.db" -o "$tmp/x.pcapng"
expect_stderr "junk.db: not a tpmlab database" "the message names the file"
expect_exit 2 "no -o" "$tpmlab" trace "$tmp/pc"
expect_exit 2 "an existing capture is kept" "$tpmlab" trace "$tmp/pc" -o "$tmp/pc.pcapng"
expect_stderr "exists" "the message says so"

[[ $failures -eq 0 ]] && echo "trace_cli_test: all passed" || echo "trace_cli_test: $failures failed"
exit $((failures > 0))
