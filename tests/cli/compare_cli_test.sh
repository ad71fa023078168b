#!/usr/bin/env bash
# tpmlab compare on real runs (auto-launched swtpm): a firmware update names
# the changed PCR and the events that changed it, within one run (two of its
# boots) and between two runs booting different firmware; two runs of one
# scenario and seed have the same PCRs and no alarm only in one; an injected
# latency fault is a latency REGRESSION; two DUTs of a fleet; run folders,
# run.json and DB:RUN name runs alike; the HTML opens offline; bad input
# is exit 2 naming what.
#   compare_cli_test.sh TPMLAB_BINARY SOURCE_DIR
set -uo pipefail
tpmlab=$(realpath "$1")
src=$2
tmp=$(mktemp -d /tmp/tpmlab-compare-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

expect_stdout() {  # pattern, description
  grep -qE -- "$1" "$tmp/stdout" && echo "ok: $2" || { fail "$2: stdout lacks /$1/"; sed 's/^/  | /' "$tmp/stdout"; }
}

mkdir -p "$tmp/firmware" && cp "$src"/scenarios/firmware/*.yaml "$tmp/firmware/"
scenario() {  # name, firmware, extra steps before the cycles
  cat >"$tmp/$1.yaml" <<YAML
name: $1
seed: 7
firmware: $2
steps:
  - boot
  - enroll
$3
  - repeat:
      count: 4
      steps:
        - power_cycle: reset
YAML
}
scenario base baseline ""
scenario blob firmware-blob ""
scenario slow baseline "  - fault: {kind: latency, latency_ms: 60, command: TPM2_Quote}"
for run in base blob slow; do
  expect_exit 0 "run $run" "$tpmlab" run "$tmp/$run.yaml" -q --out "$tmp/$run"
done
expect_exit 0 "run base again (same scenario, same seed)" "$tpmlab" run "$tmp/base.yaml" -q --out "$tmp/base2"

# 1. The firmware update scenario: one run boots firmware A then B; its
# first boot against the boot after the update names PCR 0 and the blob.
expect_exit 0 "run the firmware update scenario" "$tpmlab" run "$src/scenarios/alarm-platform-firmware-update.yaml" \
  -q --out "$tmp/fw"
expect_exit 1 "compare two boots of the update run" "$tpmlab" compare "$tmp/fw" "$tmp/fw" --a-step 0 --b-step 3
expect_stdout "^PCRs: 1 differs \(PCR0 sha1, sha256: platform firmware changed\)$" "the verdict names PCR 0 and why"
"$tpmlab" compare "$tmp/fw" "$tmp/fw" --a-step 0 --b-step 3 --json >"$tmp/fw.json"
check_py "JSON: PCR 0 of both banks, its firmware blob event and cause, golden values" '
import json, sys
c = json.load(open(sys.argv[1]))
d = c["pcrs"]["differences"]
assert [(x["bank"], x["pcr"]) for x in d] == [("sha1", 0), ("sha256", 0)], d
for x in d:
    assert x["a"] != x["b"] and x["b_golden"], x
    assert [e["type"] for e in x["events"]] == ["EV_EFI_PLATFORM_FIRMWARE_BLOB2"], x["events"]
    e = x["events"][0]
    assert e["change"] == "changed" and "DXE firmware volume" in e["after_summary"], e
    assert [k["code"] for k in x["causes"]] == ["FIRMWARE_BLOB"], x["causes"]
assert c["differs"] is True and c["verdicts"][0]["status"] == "differs"
' "$tmp/fw.json"

# 2. Two runs, firmware A (baseline) and B (firmware-blob): the same answer.
expect_exit 1 "compare firmware A and B" "$tpmlab" compare "$tmp/base" "$tmp/blob" --threshold 1000
expect_stdout "^PCRs: 1 differs \(PCR0 sha1, sha256: platform firmware changed\)" "A vs B names PCR 0"
expect_stdout "^alarms: same \(none in either\)$" "neither run alarmed"
expect_stdout "^B: .*firmware firmware-blob" "B's header names its firmware"

# 3. The same scenario and seed twice: the same PCRs, no alarm only in one.
expect_exit 0 "compare two runs of one scenario" "$tpmlab" compare "$tmp/base" "$tmp/base2/run.json" --threshold 1000
expect_stdout "^PCRs: same \(sha1, sha256; steps 5 and 5\); TPM: another TPM$" "same PCRs (two chips made by two runs)"
expect_stdout "^counters: same behaviour" "same counter behaviour"
expect_stdout "^expectations: A 0/0 passed, B 0/0 passed$" "no expectations in either"
"$tpmlab" compare "$tmp/base/tpmlab.db:1" "$tmp/base2/tpmlab.db" --json >"$tmp/same.json"
check_py "JSON: no PCR differs, no alarm only in one, counters by kind" '
import json, sys
c = json.load(open(sys.argv[1]))
assert c["pcrs"]["differences"] == [] and c["pcrs"]["compared"]
assert c["alarms"]["only_in_a"] == [] and c["alarms"]["only_in_b"] == []
for side in "ab":
    k = c["counters"][side]
    assert k["by_kind"]["reset"] == {"cycles": 4, "reset_count_up": 4, "restart_count_up": 0, "safe_no": 0}, k
    assert k["reset_count"]["monotonic"] and k["clock_ms"]["monotonic"], k
q = next(l for l in c["latency"] if l["command"] == "TPM2_Quote")
assert q["a"]["count"] >= 5 and q["b"]["count"] >= 5 and q["ratio"]["p50"] > 0, q
' "$tmp/same.json"

# 4. A latency fault on every TPM2_Quote: a latency regression, exit 1.
expect_exit 1 "compare against a run with slow quotes" "$tpmlab" compare "$tmp/base" "$tmp/slow"
expect_stdout "^latency: TPM2_Quote p[59]0 [0-9.]+x slower \(\+[0-9.]+ ms\).*: REGRESSION$" "the slow command is named first"
expect_stdout "^PCRs: same" "the latency fault leaves the PCRs alone"
"$tpmlab" compare "$tmp/base" "$tmp/slow" --json >"$tmp/slow.json"
check_py "JSON: TPM2_Quote regressed at p50 and p90, each quote 60 ms late" '
import json, sys
c = json.load(open(sys.argv[1]))
q = next(l for l in c["latency"] if l["command"] == "TPM2_Quote")
assert "p50" in q["regressed"] and "p90" in q["regressed"], q
assert q["b"]["p50_us"] >= 60000 * 0.99 and q["ratio"]["p50"] > 1.25, q  # the sketch is within 1%
assert next(v for v in c["verdicts"] if v["area"] == "latency")["status"] == "regression"
' "$tmp/slow.json"
expect_exit 0 "the other way round nothing regressed" "$tpmlab" compare "$tmp/slow" "$tmp/base" --threshold 3 --min-delta-ms 20

# 5. Two DUTs of a fleet: the same firmware, the same PCRs, two chips.
expect_exit 0 "a fleet of two" "$tpmlab" run "$tmp/base.yaml" -q --duts 2 --out "$tmp/fleet"
expect_exit 0 "compare the fleet's DUTs" "$tpmlab" compare "$tmp/fleet/dut0" "$tmp/fleet/dut1" --threshold 1000
expect_stdout "^PCRs: same .*another TPM" "DUTs: same PCRs, another TPM"
expect_exit 2 "a fleet's folder is not one run" "$tpmlab" compare "$tmp/fleet" "$tmp/fleet/dut1"
expect_stderr "a fleet's folder; name one DUT's run folder" "the fleet folder is named"

# 6. The HTML page: self-contained, no network, one latency chart when Chart.js is installed.
expect_exit 1 "compare -o" "$tpmlab" compare "$tmp/base" "$tmp/blob" --threshold 1000 -o "$tmp/compare.html"
check_py "the HTML page forbids the network and holds the tables" '
import re, sys, os
h = open(sys.argv[1]).read()
assert "Content-Security-Policy" in h and "default-src '"'"'none'"'"'" in h
assert not re.search(r"(src|href)=\"?(https?:)?//", h), "a remote reference"
for table in ("pcrs", "alarms", "counters", "latency", "expectations"):
    assert "<table id=" + table in h, table
assert "PCR0 sha1, sha256: platform firmware changed" in h
chart = os.path.exists("/usr/share/javascript/chart.js/chart.min.js")
assert ("<canvas id=latency-ratio>" in h) == chart and ("new Chart(" in h) == chart
' "$tmp/compare.html"
# tpmlab report --compare A B is the same page (with compare's default threshold).
expect_exit 1 "report --compare" "$tpmlab" report --compare "$tmp/base" "$tmp/blob" -o "$tmp/report-compare.html"
check_py "report --compare names the changed PCR and its cause" '
import sys
h = open(sys.argv[1]).read()
assert "<table id=pcrs" in h and "PCR0 sha1, sha256: platform firmware changed" in h
' "$tmp/report-compare.html"
expect_exit 2 "report with a run and --compare" "$tpmlab" report "$tmp/base" --compare "$tmp/base" "$tmp/blob"

# 7. Bad input: exit 2 naming what.
expect_exit 2 "no such run" "$tpmlab" compare "$tmp/nothing" "$tmp/base"
expect_stderr "$tmp/nothing: no such run folder, run.json or database" "the missing run is named"
expect_exit 2 "no such run id" "$tpmlab" compare "$tmp/base/tpmlab.db:9" "$tmp/base"
expect_stderr "has no run 9" "the missing run id is named"
echo "not a database" >"$tmp/junk.db"
expect_exit 2 "not a database" "$tpmlab" compare "$tmp/junk.db" "$tmp/base"
expect_stderr "junk.db: not a tpmlab database" "the bad database is named"
echo '{"steps": []}' >"$tmp/other.json"
expect_exit 2 "a JSON file of another shape" "$tpmlab" compare "$tmp/other.json" "$tmp/base"
expect_stderr "other.json: not a tpmlab run.json" "the bad run.json is named"
expect_exit 2 "a step without a snapshot" "$tpmlab" compare "$tmp/fw" "$tmp/fw" --a-step 1
expect_stderr "has no snapshot at step 1" "the step is named"
expect_exit 2 "a threshold below 1" "$tpmlab" compare "$tmp/base" "$tmp/blob" --threshold 0.5
[[ -e $tmp/nothing ]] && fail "compare created $tmp/nothing" || echo "ok: compare creates no database"

echo "$failures failure(s)"
[[ $failures -eq 0 ]]
