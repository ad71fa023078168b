#!/usr/bin/env bash
# tpmlab bundle / replay as a user meets them: a short run is bundled and
# replayed to the same alarms (exit 0); a bundle whose recorded alarms were
# edited replays to different ones (exit 1); damaged, hostile and truncated
# files are refused, naming the member or byte (exit 2).
#   bundle_cli_test.sh TPMLAB_BINARY SOURCE_DIR
set -uo pipefail
tpmlab=$1
src=$2
tmp=$(mktemp -d /tmp/tpmlab-bundle-cli-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# A scenario outside the source tree, with its firmware model beside it, so
# the bundle must carry both.
mkdir -p "$tmp/s/firmware"
cp "$src/scenarios/firmware/baseline.yaml" "$tmp/s/firmware/"
cat >"$tmp/s/short.yaml" <<'YAML'
name: bundle-short
seed: 424242
platform:
  firmware: baseline
steps:
  - boot
  - enroll
  - power_cycle: power-loss
  - snapshot
YAML

expect_exit 0 "run the short scenario" "$tpmlab" run "$tmp/s/short.yaml" --out "$tmp/run" -q

# 1. Bundle: from the folder and from its run.json.
expect_exit 0 "bundle a run folder" "$tpmlab" bundle "$tmp/run" -o "$tmp/b.tar.gz"
grep -q "tpmlab bundle: $tmp/b.tar.gz" "$tmp/stdout" || fail "bundle does not say where it wrote"
expect_exit 0 "bundle a run.json" "$tpmlab" bundle "$tmp/run/run.json" -o "$tmp/b2.tar.gz"
tar tzf "$tmp/b.tar.gz" >"$tmp/members" || fail "the bundle is not a tar.gz tar can list"
for m in bundle.json run.json trace.json inputs/short.yaml inputs/firmware/baseline.yaml dut0/swtpm.log; do
  grep -qx "$m" "$tmp/members" || fail "bundle lacks $m"
done
grep -q "^initial-state/" "$tmp/members" || fail "bundle lacks initial-state/"
grep -q "^eventlogs/.*\.bin$" "$tmp/members" || fail "bundle lacks the event logs"
echo "bundle size: $(stat -c %s "$tmp/b.tar.gz") bytes, $(wc -l <"$tmp/members") members"

# 2. Replay: the same alarms at the same steps.
start=$EPOCHREALTIME
expect_exit 0 "replay the bundle" "$tpmlab" replay "$tmp/b.tar.gz" -o "$tmp/r1" --json
echo "replay time: $(awk "BEGIN {printf \"%.2f\", $EPOCHREALTIME - $start}") s (the whole command)"
/usr/bin/python3 - "$tmp/stdout" <<'PY' || fail "replay --json does not match the recorded run"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["matches"] is True and r["differences"] == 0, r
assert r["seed"] == 424242, r["seed"]
steps = {s["index"]: s for s in r["steps"]}
assert [steps[i]["action"] for i in sorted(steps)] == ["boot", "enroll", "power_cycle", "snapshot"], steps
assert "CLOCK_NOT_SAFE" in steps[2]["recorded"] and steps[2]["recorded"] == steps[2]["replayed"], steps[2]
print(f"replay took {r['replay_seconds']:.2f} s inside tpmlab")
PY
[[ -s "$tmp/r1/run/run.json" ]] || fail "replay left no run.json of its own"
/usr/bin/python3 - "$tmp/run/run.json" "$tmp/r1/run/run.json" <<'PY' || fail "the replay did not start from the recorded chip"
import json, sys
a, b = (json.load(open(f))["steps"][0]["snapshot"] for f in sys.argv[1:])
# EK and SRK derive from the chip's seeds; the AK is made fresh at each creation.
assert a["ek_name"] == b["ek_name"] and a["srk_name"] == b["srk_name"], "a new chip, not the bundled one"
PY
expect_exit 0 "replay, as a table" "$tpmlab" replay "$tmp/b.tar.gz" -o "$tmp/r2"
grep -q "replay matches" "$tmp/stdout" || fail "the table does not say it matches"
grep -qE "^ +2 +power_cycle power-loss +CLOCK_NOT_SAFE" "$tmp/stdout" || { fail "the table lacks step 2"; cat "$tmp/stdout"; }
expect_exit 2 "replay into a folder that is not empty" "$tpmlab" replay "$tmp/b.tar.gz" -o "$tmp/r2"

# 3. Recorded alarms edited (manifest kept consistent): the replay differs.
mkdir -p "$tmp/t"
tar xzf "$tmp/b.tar.gz" -C "$tmp/t"
/usr/bin/python3 - "$tmp/t" <<'PY' || fail "could not edit the bundle"
import hashlib, json, os, sys
d = sys.argv[1]
run = json.load(open(os.path.join(d, "run.json")))
run["steps"][2]["alarms"] = []                                     # CLOCK_NOT_SAFE gone
run["steps"][3]["alarms"].append({"code": "EK_CHANGED", "severity": "error", "message": "edited"})
data = (json.dumps(run, indent=2) + "\n").encode()
open(os.path.join(d, "run.json"), "wb").write(data)
manifest = json.load(open(os.path.join(d, "bundle.json")))
for f in manifest["files"]:
    if f["path"] == "run.json":
        f["size"], f["sha256"] = len(data), hashlib.sha256(data).hexdigest()
json.dump(manifest, open(os.path.join(d, "bundle.json"), "w"), indent=2)
PY
tar czf "$tmp/edited.tar.gz" -C "$tmp/t" .
expect_exit 1 "replay of a bundle whose alarms were edited" "$tpmlab" replay "$tmp/edited.tar.gz" -o "$tmp/r3"
grep -qE "^ +2 +power_cycle power-loss +- +CLOCK_NOT_SAFE +DIFFERENT" "$tmp/stdout" || { fail "step 2 not shown as different"; cat "$tmp/stdout"; }
grep -qE "^ +3 +snapshot .*EK_CHANGED.* DIFFERENT$" "$tmp/stdout" || fail "step 3 not shown as different"
grep -q "replay differs at 2 of 4 steps" "$tmp/stdout" || fail "no summary of the differences"

# 4. Damaged bundles: exit 2, and the message says which member or byte.
/usr/bin/python3 - "$tmp/t/run.json" <<'PY'
import sys
p = sys.argv[1]
open(p, "a").write(" ")   # one byte more than bundle.json says
PY
tar czf "$tmp/tampered.tar.gz" -C "$tmp/t" .
expect_exit 2 "a member that does not match the manifest" "$tpmlab" replay "$tmp/tampered.tar.gz" -o "$tmp/r4"
expect_stderr "member 'run.json' is damaged" "tampered member"

size=$(stat -c %s "$tmp/b.tar.gz")
head -c $((size / 2)) "$tmp/b.tar.gz" >"$tmp/cut.tar.gz"
expect_exit 2 "a truncated bundle" "$tpmlab" replay "$tmp/cut.tar.gz" -o "$tmp/r5"
expect_stderr "cut.tar.gz: .*(truncated|Truncated|Damaged).*at byte [0-9]+" "truncated bundle"
[[ ! -e "$tmp/r5/bundle" || -z "$(ls -A "$tmp/r5/bundle")" ]] || fail "a refused bundle left files behind"

head -c 4096 /dev/urandom >"$tmp/noise.tar.gz"
expect_exit 2 "a file that is no archive" "$tpmlab" replay "$tmp/noise.tar.gz" -o "$tmp/r6"
expect_stderr "not a readable tar.gz" "noise"

/usr/bin/python3 - "$tmp/hostile.tar.gz" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w:gz") as t:
    data = b'{"format":"tpmlab-bundle","version":1,"files":[]}'
    info = tarfile.TarInfo("bundle.json"); info.size = len(data); t.addfile(info, io.BytesIO(data))
    info = tarfile.TarInfo("../escaped"); info.size = 1; t.addfile(info, io.BytesIO(b"x"))
PY
expect_exit 2 "a member outside the bundle" "$tpmlab" replay "$tmp/hostile.tar.gz" -o "$tmp/r7/x"
expect_stderr "member '../escaped' has an absolute path or '..'" "hostile member"
[[ ! -e "$tmp/r7/x/escaped" ]] || fail "a hostile member was written outside the target"

expect_exit 2 "bundle a folder that is no run" "$tpmlab" bundle "$tmp/s" -o "$tmp/x.tar.gz"
expect_stderr "no run.json" "not a run"

if [[ $failures -ne 0 ]]; then
  echo "$failures failed"
  exit 1
fi
echo "bundle CLI: all passed"
