#!/usr/bin/env bash
# tpmlab bundle / replay as a user meets them: a short run is bundled and
# replayed to the same alarms (exit 0); a bundle whose recorded alarms were
# edited replays to different ones (exit 1); damaged, hostile and truncated
# files are refused, naming the member or byte (exit 2). A bundle carries its
# own inputs: a model named by an absolute host path replays from the
# bundle's copy when the host's file changes or goes, and a changed bundled
# model is reported as the PCR that moved. A run stopped early (Ctrl-C on
# --cycles 1000000) replays exactly its recorded steps and stops. A stock
# model name works from a scenario outside the repository.
#   bundle_cli_test.sh TPMLAB_BINARY SOURCE_DIR
set -uo pipefail
tpmlab=$1
src=$2
tmp=$(mktemp -d /tmp/tpmlab-bundle-cli-XXXXXX)
soak=""
# A run this test started in the background never outlives it (tpmlab stops its swtpm on SIGTERM).
trap '[[ -n "$soak" ]] && kill "$soak" 2>/dev/null && wait "$soak" 2>/dev/null; rm -rf "$tmp"' EXIT
failures=0

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# repack DIR MEMBER OUT: an unpacked bundle whose MEMBER was edited, with its
# manifest entry re-hashed so only the content differs, packed into OUT.
repack() {
  /usr/bin/python3 - "$1" "$2" <<'PY' || fail "could not re-hash $2 in the manifest"
import hashlib, json, os, sys
d, member = sys.argv[1], sys.argv[2]
data = open(os.path.join(d, member), "rb").read()
manifest = json.load(open(os.path.join(d, "bundle.json")))
for f in manifest["files"]:
    if f["path"] == member:
        f["size"], f["sha256"] = len(data), hashlib.sha256(data).hexdigest()
json.dump(manifest, open(os.path.join(d, "bundle.json"), "w"), indent=2)
PY
  tar czf "$3" -C "$1" .
}

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
open(os.path.join(d, "run.json"), "w").write(json.dumps(run, indent=2) + "\n")
PY
repack "$tmp/t" run.json "$tmp/edited.tar.gz"
expect_exit 1 "replay of a bundle whose alarms were edited" "$tpmlab" replay "$tmp/edited.tar.gz" -o "$tmp/r3"
# CLOCK_NOT_SAFE after a power loss is a matter of timing: said, not counted.
grep -qE "^ +2 +power_cycle power-loss +- +CLOCK_NOT_SAFE +same \(timing: alarms: \+CLOCK_NOT_SAFE\)$" "$tmp/stdout" ||
  { fail "step 2 not shown as a timing difference"; cat "$tmp/stdout"; }
grep -qE "^ +3 +snapshot .*EK_CHANGED.* DIFFERENT: alarms: -EK_CHANGED$" "$tmp/stdout" || fail "step 3 not shown as different"
grep -q "replay differs at 1 of 4 steps" "$tmp/stdout" || fail "no summary of the differences"

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

# 5. A stock model name from a scenario outside the repository, with no
#    firmware/ beside it: found among the installed models. A miss names
#    every place looked.
mkdir -p "$tmp/elsewhere"
cat >"$tmp/elsewhere/stock.yaml" <<'YAML'
name: stock-name
platform: {firmware: baseline}
steps: [boot]
YAML
expect_exit 0 "a stock model name outside the repository" "$tpmlab" run "$tmp/elsewhere/stock.yaml" --out "$tmp/stock" -q
sed 's/firmware: baseline/firmware: no-such-model/' "$tmp/elsewhere/stock.yaml" >"$tmp/elsewhere/missing.yaml"
expect_exit 2 "a model that is nowhere" "$tpmlab" run "$tmp/elsewhere/missing.yaml" --out "$tmp/missing" -q
expect_stderr "firmware model 'no-such-model' not found; looked for $tmp/elsewhere/firmware/no-such-model.yaml, $tmp/elsewhere/no-such-model.yaml, .*/no-such-model.yaml" "the places looked"

# 6. A model named by an absolute host path (inheriting by another): the
#    bundle carries both, and replay uses its copies, not the host's files.
mkdir -p "$tmp/models" "$tmp/abs"
cat >"$tmp/models/custom.yaml" <<YAML
name: custom
inherits: $src/scenarios/firmware/baseline.yaml
s_crtm_version: custom 1.0
YAML
cat >"$tmp/abs/abs.yaml" <<YAML
name: bundle-abs
seed: 77
platform: {firmware: $tmp/models/custom.yaml}
steps:
  - boot
  - enroll
  - power_cycle: reset
  - snapshot
YAML
expect_exit 0 "run a scenario naming its model by absolute path" "$tpmlab" run "$tmp/abs/abs.yaml" --out "$tmp/absrun" -q
expect_exit 0 "bundle it" "$tpmlab" bundle "$tmp/absrun" -o "$tmp/abs.tar.gz"
sed -i 's/custom 1.0/EDITED ON THE HOST/' "$tmp/models/custom.yaml"
expect_exit 0 "replay after the host's model was edited" "$tpmlab" replay "$tmp/abs.tar.gz" -o "$tmp/ra1"
grep -q "replay matches" "$tmp/stdout" || { fail "an edited host model changed the replay"; cat "$tmp/stdout"; }
rm "$tmp/models/custom.yaml"
expect_exit 0 "replay after the host's model was removed" "$tpmlab" replay "$tmp/abs.tar.gz" -o "$tmp/ra2"
grep -q "replay matches" "$tmp/stdout" || { fail "a removed host model changed the replay"; cat "$tmp/stdout"; }

# The bundled copy itself changed (manifest kept consistent): PCR 0 moves at
# every boot, the alarms do not; the replay says which PCR differs.
mkdir -p "$tmp/ta"
tar xzf "$tmp/abs.tar.gz" -C "$tmp/ta"
edited_model=$(/usr/bin/python3 - "$tmp/ta" <<'PY' || fail "could not edit the bundled model"
import hashlib, json, os, sys
d = sys.argv[1]
run = json.load(open(os.path.join(d, "run.json")))
model = next(m["file"] for m in run["inputs"]["models"] if m["name"].endswith("/custom.yaml"))
path = os.path.join(d, model)
data = open(path).read().replace("custom 1.0", "custom 1.1").encode()
open(path, "wb").write(data)
print(model)
PY
)
repack "$tmp/ta" "$edited_model" "$tmp/abs-edited.tar.gz"
expect_exit 1 "replay of a bundle whose model was changed" "$tpmlab" replay "$tmp/abs-edited.tar.gz" -o "$tmp/ra3"
grep -qE "^ +0 +boot .*DIFFERENT: PCR0 differs \(sha1, sha256\); event log differs" "$tmp/stdout" ||
  { fail "the table does not say PCR0 differs"; cat "$tmp/stdout"; }
grep -q "replay matches" "$tmp/stdout" && fail "a changed PCR0 was called a match"
expect_exit 1 "the same, as JSON" "$tpmlab" replay "$tmp/abs-edited.tar.gz" -o "$tmp/ra4" --json
/usr/bin/python3 - "$tmp/stdout" <<'PY' || fail "replay --json does not say PCR0 differs"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["matches"] is False, r
snapshots = [s for s in r["steps"] if s["action"] in ("boot", "power_cycle", "snapshot")]
for s in snapshots:
    assert "PCR0 differs (sha1, sha256)" in s["differs"], s
    assert s["recorded"] == s["replayed"], s
PY

# 7. A run stopped early (Ctrl-C during --cycles 1000000): the replay runs
#    exactly the recorded steps and stops, and says so.
cat >"$tmp/s/soak.yaml" <<'YAML'
name: bundle-soak
seed: 99
platform: {firmware: baseline}
steps:
  - boot
  - repeat:
      count: 3
      steps:
        - power_cycle: reset
YAML
"$tpmlab" run "$tmp/s/soak.yaml" --cycles 1000000 --out "$tmp/soak" -q >"$tmp/soak.out" 2>&1 &
soak=$!
/usr/bin/python3 - "$tmp/soak/tpmlab.db" <<'PY' || fail "the long run never got going"
import os, sqlite3, sys, time
deadline = time.time() + 240
while time.time() < deadline:
    try:
        db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=5)
        if db.execute("SELECT COUNT(*) FROM steps").fetchone()[0] >= 5:
            sys.exit(0)
    except sqlite3.Error:
        pass
    time.sleep(0.2)
sys.exit(1)
PY
kill -INT "$soak"
wait "$soak"
rc=$?
soak=""
[[ $rc -eq 130 ]] || { fail "the interrupted run exited $rc, expected 130"; cat "$tmp/soak.out"; }
recorded=$(/usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(len(r["steps"]), r["status"])' "$tmp/soak/run.json")
echo "interrupted run: $recorded"
n=${recorded%% *}
[[ "$recorded" == *" interrupted" && $n -ge 5 ]] || fail "the run was not recorded as interrupted after 5+ steps: $recorded"
expect_exit 0 "bundle the interrupted run" "$tpmlab" bundle "$tmp/soak" -o "$tmp/soak.tar.gz"
start=$EPOCHREALTIME
expect_exit 0 "replay the interrupted run" timeout 300 "$tpmlab" replay "$tmp/soak.tar.gz" -o "$tmp/rs1"
echo "replay of $n recorded steps: $(awk "BEGIN {printf \"%.2f\", $EPOCHREALTIME - $start}") s"
grep -q "^tpmlab replay: bundle-soak, seed 99: $n steps recorded, $n replayed" "$tmp/stdout" || { fail "replayed another step count"; cat "$tmp/stdout"; }
grep -q "stopped at the recorded $n steps" "$tmp/stdout" || fail "the replay does not say it stopped at the recorded steps"
grep -q "replay matches" "$tmp/stdout" || { fail "the stopped replay does not match"; cat "$tmp/stdout"; }
/usr/bin/python3 - "$tmp/rs1/run/run.json" "$n" <<'PY' || fail "the replay's own run.json is wrong"
import json, sys
r = json.load(open(sys.argv[1]))
assert len(r["steps"]) == int(sys.argv[2]), len(r["steps"])
assert r["status"] != "interrupted", r["status"]   # it stopped where the recording did: not a Ctrl-C
PY
expect_exit 0 "replay the interrupted run, as JSON" timeout 300 "$tpmlab" replay "$tmp/soak.tar.gz" -o "$tmp/rs2" --json
/usr/bin/python3 - "$tmp/stdout" "$n" <<'PY' || fail "replay --json of the interrupted run"
import json, sys
r = json.load(open(sys.argv[1]))
n = int(sys.argv[2])
assert r["recorded_steps"] == n and r["replayed_steps"] == n, r
assert r["stopped_at_recorded_steps"] is True and r["matches"] is True, r
assert r["replay_status"] != "interrupted", r["replay_status"]
PY

if [[ $failures -ne 0 ]]; then
  echo "$failures failed"
  exit 1
fi
echo "bundle CLI: all passed"
