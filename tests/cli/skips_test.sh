#!/usr/bin/env bash
# Tests that need the shared fixtures report Skipped, never Passed, when the
# fixtures are absent: runs those ctests (NAME_fixtures, see
# tests/support/needs.h, and eventlog_fixtures_cli_test) with
# TPMLAB_FIXTURES_DIR naming an empty folder, and checks ctest calls each one
# Skipped. With the real fixtures present, the same tests must pass instead.
#   skips_test.sh BUILD_DIR CTEST
set -uo pipefail
build=$1
ctest=$2
tmp=$(mktemp -d /tmp/tpmlab-skips-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
selection='_fixtures$|^eventlog_fixtures_cli_test$'

"$ctest" --test-dir "$build" -N -R "$selection" >"$tmp/list"
count=$(grep -c 'Test *#' "$tmp/list")
[[ $count -ge 5 ]] || fail "expected at least 5 fixture tests, ctest lists $count"

mkdir "$tmp/empty"
TPMLAB_FIXTURES_DIR="$tmp/empty" "$ctest" --test-dir "$build" -R "$selection" >"$tmp/absent" 2>&1
skipped=$(grep -c '\*\*\*Skipped' "$tmp/absent")
if [[ $skipped -eq $count ]] && ! grep -q ' Passed ' "$tmp/absent"; then
  echo "ok: without fixtures all $count fixture tests are Skipped"
else
  fail "without fixtures $skipped of $count tests are Skipped"; sed 's/^/  | /' "$tmp/absent"
fi

fixtures=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build/CMakeCache.txt")/../shared/fixtures
if [[ -f "$fixtures/eventlogs/expected.json" && -f "$fixtures/quotes/ibmsim_quote.attest" ]]; then
  env -u TPMLAB_FIXTURES_DIR "$ctest" --test-dir "$build" -R "$selection" >"$tmp/present" 2>&1
  passed=$(grep -c ' Passed ' "$tmp/present")
  if [[ $passed -eq $count ]]; then
    echo "ok: with the fixtures at $fixtures all $count pass"
  else
    fail "with the fixtures $passed of $count pass"; sed 's/^/  | /' "$tmp/present"
  fi
else
  echo "note: no fixtures at $fixtures; only the absent case is checked"
fi

if [[ $failures -ne 0 ]]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "all skip checks passed"
