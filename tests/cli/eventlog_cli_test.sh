#!/usr/bin/env bash
# `tpmlab eventlog show | replay | diff` as a user meets them: exit codes,
# JSON shape, PCR values checked against an independent replay in Python, on
# logs this script writes (the public fixture logs: eventlog_fixtures_cli_test.sh).
#   eventlog_cli_test.sh TPMLAB_BINARY SOURCE_DIR
set -uo pipefail
tpmlab=$1
src=$2
tmp=$(mktemp -d /tmp/tpmlab-eventlog-cli-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# 1. Logs written here with the struct module: a short UEFI boot (a), the
# same boot with PCR4 changed, a PCR8 event added and a PCR5 one removed
# (b), and a with a separator whose digest does not match its data (bad).
/usr/bin/python3 - "$tmp" <<'PY' || fail "writing the test logs"
import hashlib, struct, sys
out = sys.argv[1]
BANKS = [(0x0004, hashlib.sha1), (0x000B, hashlib.sha256)]

def spec_id():
    body = b"Spec ID Event03\0" + struct.pack("<IBBBBI", 0, 0, 2, 0, 2, len(BANKS))
    body += b"".join(struct.pack("<HH", alg, h().digest_size) for alg, h in BANKS) + b"\0"
    return struct.pack("<II", 0, 3) + bytes(20) + struct.pack("<I", len(body)) + body

def event(pcr, etype, data, hashed=None):
    hashed = data if hashed is None else hashed
    digests = b"".join(struct.pack("<H", alg) + h(hashed).digest() for alg, h in BANKS)
    return struct.pack("<III", pcr, etype, len(BANKS)) + digests + struct.pack("<I", len(data)) + data

EV_SEPARATOR, EV_IPL, EFI_ACTION, BSA, S_CRTM_VERSION = 4, 0xD, 0x80000007, 0x80000003, 8
def boot(kernel=b"kernel v1", extra_ipl=False, ebs=True, bad_separator=False):
    ev = [event(0, S_CRTM_VERSION, "1.0\0".encode("utf-16-le"))]
    ev.append(event(4, EFI_ACTION, b"Calling EFI Application from Boot Option"))
    for pcr in range(8):
        ev.append(event(pcr, EV_SEPARATOR, bytes(4), b"oops" if bad_separator and pcr == 7 else None))
    image = struct.pack("<QQQQ", 0x7E000000, 4096, 0, 4) + bytes([0x7F, 0xFF, 4, 0])
    ev.append(event(4, BSA, image, kernel))
    ev.append(event(8, EV_IPL, b"grub_cmd: linux /vmlinuz\0", b"linux /vmlinuz"))
    if extra_ipl:
        ev.append(event(8, EV_IPL, b"grub_cmd: initrd /initrd\0", b"initrd /initrd"))
    if ebs:
        ev.append(event(5, EFI_ACTION, b"Exit Boot Services Invocation"))
    ev.append(event(5, EFI_ACTION, b"Exit Boot Services Returned with Success"))
    return spec_id() + b"".join(ev)

open(f"{out}/a.bin", "wb").write(boot())
open(f"{out}/b.bin", "wb").write(boot(kernel=b"kernel v2", extra_ipl=True, ebs=False))
open(f"{out}/bad.bin", "wb").write(boot(bad_separator=True))
# OS measurements on PCR 11 and 13 (as ESXi logs its boot modules).
open(f"{out}/high.bin", "wb").write(boot() + event(11, EV_IPL, b"module a\0") + event(13, EV_IPL, b"module b\0"))
a = boot()
open(f"{out}/truncated.bin", "wb").write(a[:len(a) - 10])
PY

# The same replay, written independently: H(PCR || digest), PCRs 0-16 and 23
# start at zero, nothing here uses StartupLocality.
replay_py='
import hashlib, json, struct, sys
def replay(path):
    b = open(path, "rb").read()
    size = struct.unpack_from("<I", b, 28)[0]
    n = struct.unpack_from("<I", b, 32 + 24)[0]
    algs = dict(struct.unpack_from("<HH", b, 32 + 28 + 4 * i) for i in range(n))
    names = {4: "sha1", 11: "sha256"}
    off, pcrs, count = 32 + size, {}, 0
    while off < len(b):
        pcr, etype, k = struct.unpack_from("<III", b, off); off += 12
        for _ in range(k):
            alg = struct.unpack_from("<H", b, off)[0]; off += 2
            d = b[off:off + algs[alg]]; off += algs[alg]
            bank = pcrs.setdefault(names[alg], {})
            old = bytes.fromhex(bank.get(str(pcr), "00" * len(d)))
            bank[str(pcr)] = hashlib.new(names[alg], old + d).hexdigest()
        off += 4 + struct.unpack_from("<I", b, off)[0]
        count += 1
    return pcrs, count
'

expect_exit 0 "replay of a written log" "$tpmlab" eventlog replay --json "$tmp/a.bin"
cp "$tmp/stdout" "$tmp/a.replay.json"
check_py "replay JSON has the documented shape and the independent PCR values" "$replay_py"'
out = json.load(open(sys.argv[1]))
assert list(out) == ["events", "file", "findings", "format", "pcrs"], list(out)
assert out["format"] == "crypto-agile" and out["file"] == sys.argv[2]
pcrs, count = replay(sys.argv[2])
assert out["events"] == count, (out["events"], count)
assert out["pcrs"] == pcrs, (out["pcrs"], pcrs)
assert set(out["pcrs"]["sha256"]) == {"0", "1", "2", "3", "4", "5", "6", "7", "8"}
assert out["findings"] == [], out["findings"]
' "$tmp/a.replay.json" "$tmp/a.bin"

expect_exit 0 "replay of a log with a bad separator digest" "$tpmlab" eventlog replay --json "$tmp/bad.bin"
check_py "the bad separator is a finding with code, message, event, pcr and offset" '
import json, sys
f = json.load(open(sys.argv[1]))["findings"]
assert len(f) == 1, f
f = f[0]
assert sorted(f) == ["code", "event", "message", "offset", "pcr"], f
assert f["code"] == "EVENT_DIGEST_MISMATCH" and f["pcr"] == 7 and f["event"] == 9, f
assert "sha1, sha256" in f["message"] and isinstance(f["offset"], int), f
' "$tmp/stdout"
expect_exit 0 "text replay" "$tpmlab" eventlog replay "$tmp/bad.bin"
grep -q "EVENT_DIGEST_MISMATCH" "$tmp/stdout" || fail "text replay does not list the finding"

# PCRs in the order a reader counts them: 0 1 2 ... 8 11 13, not 0 1 11 13 2.
expect_exit 0 "text replay of a log with PCRs 11 and 13" "$tpmlab" eventlog replay "$tmp/high.bin"
order=$(sed -n 's/^  sha256:\([0-9]*\) .*/\1/p' "$tmp/stdout" | tr '\n' ' ')
[[ $order == "0 1 2 3 4 5 6 7 8 11 13 " ]] || fail "text replay PCR order: '$order'"
expect_exit 0 "JSON replay of a log with PCRs 11 and 13" "$tpmlab" eventlog replay --json "$tmp/high.bin"
check_py "JSON replay lists PCRs in numeric order" '
import json, sys
pcrs = json.load(open(sys.argv[1]))["pcrs"]["sha256"]
assert list(pcrs) == ["0", "1", "2", "3", "4", "5", "6", "7", "8", "11", "13"], list(pcrs)
' "$tmp/stdout"

expect_exit 0 "show of a written log" "$tpmlab" eventlog show "$tmp/a.bin"
grep -q "^#0 @[0-9]* PCR0 EV_S_CRTM_VERSION" "$tmp/stdout" || fail "show: no line for event 0"
grep -q "Calling EFI Application from Boot Option" "$tmp/stdout" || fail "show: action text not decoded"
expect_exit 0 "show --json" "$tpmlab" eventlog show --json "$tmp/a.bin"
check_py "show JSON: every event with index, offset, PCR, type, digests per bank, data" '
import json, re, sys
out = json.load(open(sys.argv[1]))
ev = out["events"]
assert out["spec_id"]["algorithms"][1]["alg"] == "sha256"
assert [e["index"] for e in ev] == list(range(len(ev)))
assert all(a["offset"] < b["offset"] for a, b in zip(ev, ev[1:]))
for e in ev:
    assert set(e) >= {"index", "offset", "pcr", "type", "digests", "data", "summary", "data_size"}, e
    assert set(e["digests"]) == {"sha1", "sha256"}
    assert all(re.fullmatch("[0-9a-f]+", d) for d in e["digests"].values())
assert ev[0]["type"] == "EV_S_CRTM_VERSION" and ev[0]["data"]["version"] == "1.0"
assert ev[2]["data"]["value"] == "0x00000000"
assert ev[10]["type"] == "EV_EFI_BOOT_SERVICES_APPLICATION" and ev[10]["data"]["image_length"] == 4096
assert out["findings"] == []
' "$tmp/stdout"

# Logs that differ exit 1, as `tpmlab diff` does; the same log twice exits 0.
expect_exit 1 "diff of two written logs" "$tpmlab" eventlog diff --json "$tmp/a.bin" "$tmp/b.bin"
check_py "diff: PCR4 changed, PCR8 added, PCR5 removed, values of 4, 5, 8 differ" '
import json, sys
out = json.load(open(sys.argv[1]))
p = out["pcrs"]
assert sorted(p) == ["4", "5", "8"], sorted(p)
assert [c["differs"] for c in p["4"]["changed"]] == [["digest"]], p["4"]
assert p["4"]["added"] == [] and p["4"]["removed"] == []
assert [e["summary"] for e in p["8"]["added"]] == ["grub_cmd: initrd /initrd"], p["8"]
assert [e["summary"] for e in p["5"]["removed"]] == ["Exit Boot Services Invocation"], p["5"]
for bank in ("sha1", "sha256"):
    assert sorted(out["pcr_values"][bank]) == ["4", "5", "8"], out["pcr_values"]
assert out["events"] == {"a": 14, "b": 14} and out["banks"]["a"] == ["sha1", "sha256"]
' "$tmp/stdout"
expect_exit 1 "text diff" "$tpmlab" eventlog diff "$tmp/a.bin" "$tmp/b.bin"
grep -q "^PCR8: 1 added, 0 removed, 0 changed" "$tmp/stdout" || fail "text diff: no PCR8 summary"
# What changed in words, not JSON fragments.
grep -q '^  ~ changed: the digest differs$' "$tmp/stdout" || { fail "text diff: no plain 'changed' line"; cat "$tmp/stdout"; }
grep -q '\["' "$tmp/stdout" && fail "text diff prints raw JSON: $(grep '\["' "$tmp/stdout")"
expect_exit 0 "text diff of a log with itself" "$tpmlab" eventlog diff "$tmp/a.bin" "$tmp/a.bin"
grep -q "the same events and PCR values" "$tmp/stdout" || fail "text diff of the same log: no 'the same' line"
expect_exit 0 "diff of a log with itself" "$tpmlab" eventlog diff --json "$tmp/a.bin" "$tmp/a.bin"
check_py "a log does not differ from itself" '
import json, sys
out = json.load(open(sys.argv[1]))
assert out["pcrs"] == {} and out["pcr_values"] == {}, out
' "$tmp/stdout"

# 2. Bad input: exit 2, the message names the file and the byte offset.
for cmd in show replay; do
  expect_exit 2 "$cmd of a truncated log" "$tpmlab" eventlog $cmd "$tmp/truncated.bin"
  expect_stderr "truncated.bin: malformed event log at byte [0-9]+" "$cmd: truncated message"
done
expect_exit 2 "diff with a truncated log" "$tpmlab" eventlog diff "$tmp/a.bin" "$tmp/truncated.bin"
expect_stderr "truncated.bin: malformed event log at byte [0-9]+" "diff: truncated message"
expect_exit 2 "a missing file" "$tpmlab" eventlog show "$tmp/nope.bin"
expect_stderr "nope.bin" "missing file message"
: >"$tmp/empty.bin"
expect_exit 2 "an empty file" "$tpmlab" eventlog replay "$tmp/empty.bin"
expect_exit 2 "diff without its second log" "$tpmlab" eventlog diff "$tmp/a.bin"
expect_exit 2 "eventlog without a subcommand" "$tpmlab" eventlog

# The public fixtures: eventlog_fixtures_cli_test.sh (a ctest of its own,
# Skipped without them).

if [[ $failures -ne 0 ]]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "all eventlog CLI checks passed"
