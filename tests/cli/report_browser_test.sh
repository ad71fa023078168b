#!/usr/bin/env bash
# The report in a real browser: headless Chromium opens the reports of the
# platform-firmware-update and clock runs from file:// and finds no console
# error, no network request, every chart drawn, and the alarm list and PCR
# grid exactly run.json's (tests/cli/report_browser.py). The screenshots are
# kept in ARTIFACT_DIR. Skipped (77) without chromium or Chart.js.
#   report_browser_test.sh TPMLAB_BINARY SOURCE_DIR ARTIFACT_DIR
set -uo pipefail
tpmlab=$(realpath "$1")
src=$2
artifacts=$3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
command -v "${TPMLAB_CHROMIUM:-chromium}" >/dev/null || { echo "SKIPPED: chromium is absent (Debian package chromium)"; exit 77; }
[[ -r ${TPMLAB_CHART_JS:-/usr/share/javascript/chart.js/chart.min.js} ]] ||
  { echo "SKIPPED: Chart.js is absent (Debian package libjs-chart.js)"; exit 77; }
tmp=$(mktemp -d /tmp/tpmlab-report-browser-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0
source "$here/lib.sh"
mkdir -p "$artifacts"

for scenario in alarm-platform-firmware-update alarm-clock; do
  expect_exit 0 "run $scenario" "$tpmlab" run "$src/scenarios/$scenario.yaml" -q --out "$tmp/$scenario"
  expect_exit 0 "report $scenario" "$tpmlab" report "$tmp/$scenario"
  if /usr/bin/python3 "$here/report_browser.py" check "$tmp/$scenario/report.html" "$tmp/$scenario/run.json" \
      "$artifacts/$scenario.png"; then
    echo "ok: $scenario: the report in Chromium"
  else
    fail "$scenario: the report in Chromium"
  fi
  cp "$tmp/$scenario/report.html" "$artifacts/$scenario.html"
done
echo "artifacts (screenshots, reports): $artifacts"
[[ $failures -eq 0 ]] && echo "report_browser_test: all passed" || echo "report_browser_test: $failures failed"
[[ $failures -eq 0 ]]
