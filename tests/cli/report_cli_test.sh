#!/usr/bin/env bash
# tpmlab report: the model a report embeds holds exactly the alarms and the
# PCR changes run.json holds (platform-firmware-update and clock runs, made
# here with tpmlab run), for a run folder and for DB:RUN alike; the page is
# self-contained (CSP, Chart.js inlined, no http(s) reference); bad inputs
# are exit 2 naming what; a missing Chart.js is exit 4 naming the package.
#   report_cli_test.sh TPMLAB_BINARY SOURCE_DIR
set -uo pipefail
tpmlab=$(realpath "$1")
src=$2
tmp=$(mktemp -d /tmp/tpmlab-report-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ -r ${TPMLAB_CHART_JS:-/usr/share/javascript/chart.js/chart.min.js} ]] ||
  { echo "SKIPPED: Chart.js is absent (Debian package libjs-chart.js)"; exit 77; }

# The embedded model against run.json: every alarm (step, code, message) and
# every moved PCR (step, bank, pcr, against previous/golden/both).
model_matches_run_json='
import json, re, sys
html = open(sys.argv[1]).read()
run = json.load(open(sys.argv[2]))
m = re.search(r"<script type=\"application/json\" id=\"report-data\">(.*?)</script>", html, re.S)
model = json.loads(m.group(1))
want_alarms = sorted([s["index"], a["code"], a["message"]] for s in run["steps"] for a in s["alarms"])
got_alarms = sorted([a["step"], g["code"], a["message"]] for g in model["alarms"]["groups"] for a in g["list"])
assert got_alarms == want_alarms, (got_alarms, want_alarms)
assert model["alarms"]["total"] == len(want_alarms)
def cells(rows_of):
    out = []
    for step, prev, golden in rows_of:
        for bank in set(prev) | set(golden):
            for p in set(prev.get(bank, [])) | set(golden.get(bank, [])):
                a, b = p in prev.get(bank, []), p in golden.get(bank, [])
                out.append([step, bank, p, "both" if a and b else "prev" if a else "golden"])
    return sorted(out)
want = cells((s["index"], (s.get("drift") or {}).get("pcrs") or {}, (s.get("golden_drift") or {}).get("pcrs") or {})
             for s in run["steps"])
got = cells((r["step"], r["prev"], r["golden"]) for r in model["grid"]["rows"])
assert got == want, (got, want)
assert model["run"]["status"] == run["status"] and model["run"]["scenario"] == run["scenario"]
assert model["steps"]["total"] == len(run["steps"])
assert [e["name"] for e in model["expectations"]] == [e["name"] for e in run["expectations"]]
for row in model["grid"]["rows"]:
    for key in ("drift", "golden_drift"):
        if row[key] is not None:
            d = model["grid"]["drifts"][row[key]]
            src = next(s for s in run["steps"] if s["index"] == row["step"])[key]
            assert d["events"] == src["events"], ("event-level drift differs at step", row["step"])
print(len(got_alarms), "alarms,", len(got), "grid cells")
'
self_contained='
import re, sys
html = open(sys.argv[1]).read()
assert "Content-Security-Policy" in html and "default-src '"'"'none'"'"'" in html
assert "Chart.js v3" in html, "Chart.js is not inlined"
assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", html), "the page loads something"
assert "<script src" not in html
'

for scenario in alarm-platform-firmware-update alarm-clock; do
  expect_exit 0 "run $scenario" "$tpmlab" run "$src/scenarios/$scenario.yaml" -q --out "$tmp/$scenario"
  expect_exit 0 "report $scenario (run folder, default output)" "$tpmlab" report "$tmp/$scenario"
  [[ -s $tmp/$scenario/report.html ]] && echo "ok: RUN_DIR/report.html written" || fail "no $tmp/$scenario/report.html"
  check_py "$scenario: the report's alarms and PCR grid are run.json's" "$model_matches_run_json" \
    "$tmp/$scenario/report.html" "$tmp/$scenario/run.json"
  check_py "$scenario: the report is self-contained" "$self_contained" "$tmp/$scenario/report.html"
  expect_exit 0 "report $scenario from DB:RUN" "$tpmlab" report "$tmp/$scenario/tpmlab.db:1" -o "$tmp/$scenario-db.html"
  check_py "$scenario: DB:RUN gives the same model" "$model_matches_run_json" "$tmp/$scenario-db.html" \
    "$tmp/$scenario/run.json"
done
grep -q 'href":"run.json"' "$tmp/alarm-clock/report.html" && echo "ok: the run folder's files are linked" ||
  fail "run.json is not linked from the report"
grep -q '"PCR_POLICY_MISMATCH"' "$tmp/alarm-platform-firmware-update/report.html" &&
  grep -q 'FIRMWARE_BLOB\|S_CRTM_VERSION' "$tmp/alarm-platform-firmware-update/report.html" &&
  echo "ok: the firmware update's alarm and cause are in the report" || fail "the firmware update's drift is missing"

# A run with more alarms than a list keeps: each code lists its first 50 with
# their evidence and counts the rest; the totals are still run.json's.
expect_exit 0 "run 80 power cycles" "$tpmlab" run "$src/scenarios/power-cycle.yaml" --cycles 80 -q --out "$tmp/soak"
expect_exit 0 "report the soak" "$tpmlab" report "$tmp/soak"
check_py "alarm lists are capped, totals kept" '
import json, re, sys
html = open(sys.argv[1]).read()
run = json.load(open(sys.argv[2]))
model = json.loads(re.search(r"id=\"report-data\">(.*?)</script>", html, re.S).group(1))
counts = {}
for s in run["steps"]:
    for a in s["alarms"]:
        counts[a["code"]] = counts.get(a["code"], 0) + 1
assert max(counts.values()) > 50, counts
for g in model["alarms"]["groups"]:
    assert g["count"] == counts[g["code"]], g["code"]
    assert len(g["list"]) == min(50, g["count"]) and g["left_out"] == g["count"] - len(g["list"])
assert sum(model["steps"]["kinds"].values()) == run["summary"]["power_cycles"]
assert sum(model["series"]["steps"]) == len(run["steps"])
' "$tmp/soak/report.html" "$tmp/soak/run.json"

# Bad inputs: exit 2 naming what.
expect_exit 2 "a folder without run.json" "$tpmlab" report "$tmp/alarm-clock/inputs"
expect_stderr "run.json" "the missing run.json is named"
expect_exit 2 "a file that is not a database" "$tpmlab" report "$tmp/alarm-clock/run.json:1" -o "$tmp/x.html"
expect_stderr "not a tpmlab database|no such run folder" "the bad database is named"
expect_exit 2 "a run the database lacks" "$tpmlab" report "$tmp/alarm-clock/tpmlab.db:9" -o "$tmp/x.html"
expect_stderr "has no run 9" "the missing run is named"
expect_exit 2 "a database without -o" "$tpmlab" report "$tmp/alarm-clock/tpmlab.db"
expect_stderr "-o" "the message says to give -o"
mkdir -p "$tmp/broken" && echo '{"run_id": 1, "steps": [' >"$tmp/broken/run.json"
expect_exit 2 "a run.json that is not JSON" "$tpmlab" report "$tmp/broken"
expect_stderr "broken/run.json: not JSON at byte" "the broken run.json and where"
TPMLAB_CHART_JS=$tmp/nowhere.js expect_exit 4 "Chart.js missing" "$tpmlab" report "$tmp/alarm-clock" -o "$tmp/x.html"
expect_stderr "libjs-chart.js" "the missing package is named"

[[ $failures -eq 0 ]] && echo "report_cli_test: all passed" || echo "report_cli_test: $failures failed"
[[ $failures -eq 0 ]]
