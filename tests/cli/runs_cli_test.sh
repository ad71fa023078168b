#!/usr/bin/env bash
# tpmlab runs: the runs of one database across scenarios, DUTs and firmware,
# filtered the ways a lab asks (--since, --dut, --alarm, --firmware), as a
# table or JSON; runs show RUN step by step; a run killed with -9 listed as
# interrupted, its emulator gone with it.
#   runs_cli_test.sh TPMLAB_BINARY SOURCE_DIR
set -uo pipefail
tpmlab=$(realpath "$1")
src=$2
tmp=$(mktemp -d /tmp/tpmlab-runs-cli-XXXXXX)
background=
trap '[[ -n "$background" ]] && kill -9 "$background" 2>/dev/null; rm -rf "$tmp"' EXIT
failures=0
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
expect_stdout() {  # pattern, description
  grep -qE -- "$1" "$tmp/stdout" || { fail "$2: stdout lacks /$1/"; sed 's/^/  | /' "$tmp/stdout" | head -20; }
}
db=$tmp/lab.db

expect_exit 0 "a soak into the lab database" \
  "$tpmlab" run "$src/scenarios/power-cycle.yaml" --cycles 3 --out "$tmp/soak" --db "$db" -q
expect_exit 0 "a Secure Boot alarm into the same database" \
  "$tpmlab" run "$src/scenarios/alarm-secure-boot-disabled.yaml" --out "$tmp/sb" --db "$db" -q

expect_exit 0 "runs --json" "$tpmlab" runs --db "$db" --json
check_py "both runs listed with their steps, firmware and alarms" '
import json, sys
runs = json.load(open(sys.argv[1]))
assert [r["scenario"] for r in runs] == ["power-cycle", "alarm-secure-boot-disabled"], runs
soak, sb = runs
assert soak["status"] == "passed" and soak["power_cycles"] == 3 and soak["alarms"] == {}, soak
assert sb["status"] == "passed", sb
assert sb["alarms"].get("SECURE_BOOT_DISABLED") == 1, sb["alarms"]
assert "secure-boot-off" in sb["firmware"] and "baseline" in sb["firmware"], sb["firmware"]
assert soak["dut"].startswith("dut0") and soak["finished_at"], soak
' "$tmp/stdout"

expect_exit 0 "the table" "$tpmlab" runs --db "$db"
expect_stdout "^ +1 .*power-cycle .*passed .* 3 +-$" "the soak's row: 3 cycles, no alarm"
expect_stdout "^ +2 .*alarm-secure-boot-disabled.*SECURE_BOOT_DISABLEDx1" "the alarm's row"

filtered() {  # description, expected run ids (space separated), runs options...
  local what=$1 want=$2; shift 2
  "$tpmlab" runs --db "$db" --json "$@" >"$tmp/stdout" 2>"$tmp/stderr" || { fail "$what: exit $?"; return; }
  local got
  got=$(/usr/bin/python3 -c 'import json,sys; print(" ".join(str(r["run_id"]) for r in json.load(open(sys.argv[1]))))' "$tmp/stdout")
  [[ "$got" == "$want" ]] && echo "ok: $what" || fail "$what: runs [$got], expected [$want]"
}
filtered "--alarm" "2" --alarm SECURE_BOOT_DISABLED
filtered "--firmware" "2" --firmware secure-boot-off
filtered "--dut" "1 2" --dut dut0
filtered "--dut that no run has" "" --dut bench-7
filtered "--since later than every run" "" --since 2999-01-01
filtered "--since earlier" "1 2" --since 2000-01-01

expect_exit 0 "TPMLAB_DB names the database" env TPMLAB_DB="$db" "$tpmlab" runs
expect_stdout "power-cycle" "lists from TPMLAB_DB"
expect_exit 2 "no database named" env -u TPMLAB_DB "$tpmlab" runs
expect_stderr "--db FILE\|URL \(or set TPMLAB_DB\)" "says how to name one"
expect_exit 2 "a database that is not there" "$tpmlab" runs --db "$tmp/nothing.db"
expect_stderr "nothing.db: no such results database" "names the file"

expect_exit 0 "runs show" "$tpmlab" runs show 2 --db "$db"
expect_stdout "^run 2: alarm-secure-boot-disabled \(seed 505\)" "the header"
expect_stdout "^ +3 +power_cycle +1 +reset +passed .*SECURE_BOOT_DISABLED" "the alarmed step"
expect_exit 2 "runs show of a run not there" "$tpmlab" runs show 9 --db "$db"
expect_stderr "no run 9 \(its runs: 1 to 2\)" "names the runs it holds"

# A soak killed with -9: listed as interrupted, its swtpm gone with it.
"$tpmlab" run "$src/scenarios/power-cycle.yaml" --cycles 100000 --out "$tmp/killed" --db "$db" -q \
  >/dev/null 2>&1 &
background=$!
stored() {
  "$tpmlab" runs --db "$db" --json 2>/dev/null | /usr/bin/python3 -c '
import json, sys
runs = json.load(sys.stdin)
sys.exit(0 if len(runs) == 3 and runs[2]["steps"] >= 5 else 1)'
}
for _ in $(seq 300); do stored && break; sleep 0.2; done
stored || fail "the soak stored no steps"
kill -9 "$background"
wait "$background" 2>/dev/null
background=
for _ in $(seq 50); do pgrep -f "swtpm.*$tmp/killed" >/dev/null || break; sleep 0.1; done
pgrep -af "swtpm.*$tmp/killed" && fail "the killed run's swtpm outlived it"
expect_exit 0 "runs after the kill" "$tpmlab" runs --db "$db" --json
check_py "the killed run reads as interrupted" '
import json, sys
run = json.load(open(sys.argv[1]))[2]
assert run["status"] == "interrupted" and run["finished_at"] is None and run["steps"] >= 5, run
' "$tmp/stdout"
filtered "--dut still lists it" "1 2 3" --dut dut0

echo "$failures failure(s)"
exit $((failures > 0))
