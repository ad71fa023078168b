#!/usr/bin/env bash
# Inside a LAVA test job (LAVA_RESULT_DIR set, LAVA's lava-test-case on PATH),
# a run reports each expectation as a LAVA test case and its verified cycles
# per second as a measurement, through the real helper from Debian's
# lava-dispatcher (tools/setup fetches it); outside LAVA it says nothing.
#   lava_cli_test.sh TPMLAB_BINARY SOURCE_DIR
set -uo pipefail
tpmlab=$(realpath "$1")
src=$2
helpers=${TPMLAB_LAVA_HELPERS:-/var/cache/tpmlab/lava-test-shell}
if [[ ! -x $helpers/lava-test-case ]]; then
  echo "SKIPPED: no lava-test-case in $helpers (tools/setup fetches it from lava-dispatcher)"
  exit 77
fi
tmp=$(mktemp -d /tmp/tpmlab-lava-cli-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
in_lava() { env PATH="$helpers:$PATH" LAVA_RESULT_DIR="$tmp/lava" "$@"; }
# The test cases LAVA would record from stdout, parsed as LAVA's test shell
# action does: <LAVA_SIGNAL_(\S+) ([^>]+)>, KEY=VALUE pairs split on blanks.
lava_cases() {
  /usr/bin/python3 - "$tmp/stdout" <<'PY'
import re, sys
for name, params in re.findall(r"<LAVA_SIGNAL_(\S+) ([^>]+)>", open(sys.argv[1]).read()):
    assert name == "TESTCASE", name
    data = dict(p.split("=") for p in params.split())
    print(data["TEST_CASE_ID"], data["RESULT"], data.get("MEASUREMENT", ""), data.get("UNITS", ""))
PY
}

expect_exit 0 "a passing run in a LAVA job" \
  in_lava "$tpmlab" run "$src/scenarios/alarm-secure-boot-disabled.yaml" --out "$tmp/pass" -q
lava_cases >"$tmp/cases"
grep -qx "alarm-secure-boot-disabled.run-completes pass  " "$tmp/cases" || fail "no run-completes case"
grep -qx "alarm-secure-boot-disabled.step-3.SECURE_BOOT_DISABLED_PCR_POLICY_MISMATCH pass  " "$tmp/cases" ||
  fail "the expectation is not a passing case"
grep -qE "^alarm-secure-boot-disabled.cycles-per-second pass [0-9]+\.[0-9]+ cycles/s$" "$tmp/cases" ||
  fail "no cycles/s measurement"
[[ $(wc -l <"$tmp/cases") -eq 3 ]] || fail "expected 3 cases, got: $(cat "$tmp/cases")"
[[ $(cat "$tmp/lava/results/alarm-secure-boot-disabled.step-3.SECURE_BOOT_DISABLED_PCR_POLICY_MISMATCH/result") == pass ]] ||
  fail "lava-test-case did not record the result in LAVA_RESULT_DIR"
[[ $(cat "$tmp/lava/results/alarm-secure-boot-disabled.cycles-per-second/units") == cycles/s ]] ||
  fail "lava-test-case did not record the units"
echo "ok: $(wc -l <"$tmp/cases") LAVA test cases"

printf 'name: wrong-guess\nseed: 3\nsteps:\n  - boot\n  - power_cycle: reset\n  - expect:\n      alarms: [SECURE_BOOT_DISABLED]\n' \
  >"$tmp/wrong.yaml"
expect_exit 1 "a run whose expectation fails" in_lava "$tpmlab" run "$tmp/wrong.yaml" --out "$tmp/fail" -q
lava_cases >"$tmp/cases"
grep -qx "wrong-guess.step-1.SECURE_BOOT_DISABLED fail  " "$tmp/cases" || fail "the failed expectation: $(cat "$tmp/cases")"
grep -qx "wrong-guess.run-completes pass  " "$tmp/cases" || fail "the run still completed: $(cat "$tmp/cases")"

expect_exit 0 "outside LAVA" env PATH="$helpers:$PATH" "$tpmlab" run "$src/scenarios/attest.yaml" --out "$tmp/plain" -q
grep -q LAVA_SIGNAL "$tmp/stdout" && fail "signals outside a LAVA job"
expect_exit 0 "TPMLAB_LAVA=0 in a LAVA job" \
  in_lava env TPMLAB_LAVA=0 "$tpmlab" run "$src/scenarios/attest.yaml" --out "$tmp/off" -q
grep -q LAVA_SIGNAL "$tmp/stdout" && fail "signals with TPMLAB_LAVA=0"

echo "$failures failure(s)"
exit $((failures > 0))
