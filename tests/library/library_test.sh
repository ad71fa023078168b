#!/usr/bin/env bash
# One library scenario, as CI and a vendor would use it:
#   1. `tpmlab run` passes (exit 0): the stated alarms appeared where stated
#      and no other did; junit.xml parses and reports no failure;
#   2. a copy that expects the wrong alarm fails (exit 1) and its junit.xml
#      names the unmet expectation;
#   3. `tpmlab bundle` + `tpmlab replay` reproduce the same alarms (exit 0);
#   4. `tpmlab report` of the run opens offline in headless Chromium with no
#      console error or network request, every chart drawn, and its alarm
#      list and PCR x boot grid exactly run.json's (tests/cli/report_browser.py;
#      the screenshot and report go to ARTIFACT_DIR). Without Chromium or
#      Chart.js this part says so and the rest still counts.
#   library_test.sh TPMLAB_BINARY SCENARIO.yaml [ARTIFACT_DIR]
set -uo pipefail
tpmlab=$1
scenario=$2
artifacts=${3:-}
tmp=$(mktemp -d /tmp/tpmlab-library-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0
source "$(dirname "${BASH_SOURCE[0]}")/../cli/lib.sh"
name=$(basename "$scenario" .yaml)

# 1. The scenario as shipped.
expect_exit 0 "$name passes" "$tpmlab" run "$scenario" --out "$tmp/run" --quiet
/usr/bin/python3 - "$tmp/run" <<'PY' || fail "$name: run.json / junit.xml"
import json, sys, xml.etree.ElementTree as ET
out = sys.argv[1]
run = json.load(open(out + "/run.json"))
assert run["status"] == "passed", run["status"]
assert run["expectations"], "a library scenario states its expectations"
assert all(e["passed"] for e in run["expectations"]), run["expectations"]
suite = ET.parse(out + "/junit.xml").getroot().find("testsuite")
assert suite is not None
assert int(suite.get("failures")) == 0 and int(suite.get("errors")) == 0, ET.tostring(suite)[:2000]
cases = suite.findall("testcase")
assert len(cases) == len(run["expectations"]) + 1, (len(cases), len(run["expectations"]))
props = {p.get("name"): p.get("value") for p in suite.find("properties")}
for key in ("scenario", "seed", "tpmlab_version", "tpm_firmware_versions", "platform_firmware"):
    assert props.get(key), key
assert props["scenario"] == run["scenario"]
PY

# 2. The same scenario expecting the wrong alarm must fail.
cp -r "$(dirname "$scenario")/firmware" "$tmp/firmware"
/usr/bin/python3 - "$scenario" "$tmp/mutated.yaml" <<'PY' || fail "$name: could not mutate"
import re, sys
text = open(sys.argv[1]).read()
# The first alarm the scenario requires (or allows, for a soak) becomes another.
m = re.search(r"(alarms|one_of|allow_after_power_loss): \[([A-Z0-9_]+)", text)
assert m, "no alarm list to mutate"
wrong = next(c for c in ("EK_CHANGED", "SECURE_BOOT_DISABLED", "CLOCK_SKEW") if c not in text)
text = text[:m.start(2)] + wrong + text[m.end(2):]
open(sys.argv[2], "w").write(text)
PY
expect_exit 1 "$name expecting the wrong alarm fails" "$tpmlab" run "$tmp/mutated.yaml" --out "$tmp/mutated" --quiet
expect_stderr "expectation not met" "$name mutated: says which expectation"
/usr/bin/python3 - "$tmp/mutated/junit.xml" <<'PY' || fail "$name mutated: junit.xml should report the failure"
import sys, xml.etree.ElementTree as ET
suite = ET.parse(sys.argv[1]).getroot().find("testsuite")
assert int(suite.get("failures")) >= 1, ET.tostring(suite)[:2000]
PY

# 3. Its repro bundle replays to the same alarms at the same steps.
expect_exit 0 "$name bundles" "$tpmlab" bundle "$tmp/run" -o "$tmp/repro.tar.gz"
expect_exit 0 "$name replays from its bundle" "$tpmlab" replay "$tmp/repro.tar.gz" -o "$tmp/replayed"

# 4. Its HTML report, as a lab engineer opens it.
expect_exit 0 "$name reports" "$tpmlab" report "$tmp/run" -o "$tmp/report.html"
if ! command -v "${TPMLAB_CHROMIUM:-chromium}" >/dev/null; then
  echo "note: the report's browser check did not run: chromium is absent (Debian package chromium)"
elif [[ ! -r ${TPMLAB_CHART_JS:-/usr/share/javascript/chart.js/chart.min.js} ]]; then
  echo "note: the report's browser check did not run: Chart.js is absent (Debian package libjs-chart.js)"
else
  shot=$tmp/report.png
  if [[ -n $artifacts ]]; then
    mkdir -p "$artifacts"
    shot=$artifacts/$name.png
    cp "$tmp/report.html" "$artifacts/$name.html"
  fi
  /usr/bin/python3 "$(dirname "${BASH_SOURCE[0]}")/../cli/report_browser.py" check \
      "$tmp/report.html" "$tmp/run/run.json" "$shot" || fail "$name: its report in Chromium"
fi

if [[ $failures -ne 0 ]]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "all library checks passed for $name"
