#!/usr/bin/env bash
# Shared results in PostgreSQL: runs, a fleet and TPMLAB_DB write one
# database (a PostgreSQL 15 cluster of the test's own); tpmlab runs, export
# and a compact run.json read it back; the same runs in SQLite list the same;
# a password in the URL is never written or shown; a database that is not
# there is a clear error.
#   postgres_cli_test.sh TPMLAB_BINARY SOURCE_DIR   (exit 77: no PostgreSQL)
set -uo pipefail
tpmlab=$(realpath "$1")
src=$2
tmp=$(mktemp -d /tmp/tpmlab-pg-cli-XXXXXX)
failures=0
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap 'stop_postgres; rm -rf "$tmp"' EXIT
start_postgres || exit $?
url=$(pg_createdb lab) || exit 1
lite=$tmp/lab.db

for db in "$url" "$lite"; do
  expect_exit 0 "a soak into $db" \
    "$tpmlab" run "$src/scenarios/power-cycle.yaml" --cycles 3 --out "$tmp/soak-${db##*.}-$RANDOM" --db "$db" -q
done
# TPMLAB_DB is the default database; run.json (compact) points into it.
expect_exit 0 "a Secure Boot alarm into \$TPMLAB_DB" \
  env TPMLAB_DB="$url" "$tpmlab" run "$src/scenarios/alarm-secure-boot-disabled.yaml" --out "$tmp/sb" -q \
    --run-json compact
[[ -e $tmp/sb/tpmlab.db ]] && fail "a run with TPMLAB_DB made its own tpmlab.db as well"
expect_exit 0 "the same alarm into SQLite" \
  "$tpmlab" run "$src/scenarios/alarm-secure-boot-disabled.yaml" --out "$tmp/sb-lite" --db "$lite" -q

expect_exit 0 "runs --json from PostgreSQL" "$tpmlab" runs --db "$url" --json
cp "$tmp/stdout" "$tmp/runs-pg.json"
expect_exit 0 "runs --json from SQLite (TPMLAB_DB)" env TPMLAB_DB="$lite" "$tpmlab" runs --json
cp "$tmp/stdout" "$tmp/runs-lite.json"
check_py "both databases list the same runs, steps, firmware and alarms" '
import json, sys
pg, lite = (json.load(open(f)) for f in sys.argv[1:3])
keys = ["scenario", "status", "steps", "power_cycles", "alarms", "firmware", "dut", "seed"]
strip = lambda runs: [{k: r[k] for k in keys} for r in runs]
assert strip(pg) == strip(lite), (strip(pg), strip(lite))
assert pg[1]["alarms"].get("SECURE_BOOT_DISABLED") == 1, pg[1]
' "$tmp/runs-pg.json" "$tmp/runs-lite.json"
expect_exit 0 "runs show" "$tpmlab" runs show 2 --db "$url"
grep -q SECURE_BOOT_DISABLED "$tmp/stdout" || fail "runs show 2 lacks the alarm"

check_py "the compact run.json names the database by its URL" '
import json, sys
run = json.load(open(sys.argv[1]))
steps = [s for s in run["steps"] if "snapshot" in s]
assert steps and all(s["snapshot"]["stored"]["database"] == sys.argv[2] for s in steps), steps[0]
' "$tmp/sb/run.json" "$url"
step=$(/usr/bin/python3 -c 'import json,sys; print([s["index"] for s in json.load(open(sys.argv[1]))["steps"] if "snapshot" in s][-1])' "$tmp/sb/run.json")
expect_exit 0 "export URL:RUN --step reads a stored step" "$tpmlab" export "$url:2" --step "$step"
grep -q '"quote"' "$tmp/stdout" || fail "the exported step has no quote"
expect_exit 0 "export URL:RUN writes run.json and junit.xml" "$tpmlab" export "$url:2" -o "$tmp/exported"
[[ -s $tmp/exported/run.json && -s $tmp/exported/junit.xml ]] || fail "export wrote no run.json or junit.xml"
check_py "the exported run holds every step" '
import json, sys
assert len(json.load(open(sys.argv[1]))["steps"]) == json.load(open(sys.argv[2]))[1]["steps"]
' "$tmp/exported/run.json" "$tmp/runs-pg.json"

# A bundle carries the run's rows out of the shared database; it replays to
# the same alarms on a host without it.
expect_exit 0 "bundle of a run stored in PostgreSQL" "$tpmlab" bundle "$tmp/sb" -o "$tmp/sb.tar.gz"
expect_exit 0 "the bundle replays" "$tpmlab" replay "$tmp/sb.tar.gz"

expect_exit 0 "a fleet of 2 DUTs into PostgreSQL" \
  "$tpmlab" run "$src/scenarios/power-cycle.yaml" --duts 2 --cycles 2 --out "$tmp/fleet" --db "$url" -q
expect_exit 0 "runs after the fleet" "$tpmlab" runs --db "$url" --json
check_py "the fleet's runs are there, one per DUT" '
import json, sys
runs = json.load(open(sys.argv[1]))
assert len(runs) == 4, len(runs)
assert sorted(r["dut"].split()[0] for r in runs[2:]) == ["dut0", "dut1"], runs[2:]
assert all(r["status"] == "passed" for r in runs), [r["status"] for r in runs]
' "$tmp/stdout"

# libpq takes the password from the URL, PGPASSWORD or ~/.pgpass; tpmlab
# never writes it (trust authentication here ignores it).
secret_url="postgresql://postgres:s3cret-word@/lab?host=$PG_DIR&port=$PG_PORT"
expect_exit 0 "a run whose URL holds a password" \
  "$tpmlab" run "$src/scenarios/power-cycle.yaml" --cycles 1 --out "$tmp/secret" --db "$secret_url" --run-json compact
if grep -rq "s3cret-word" "$tmp/secret" "$tmp/stdout" "$tmp/stderr"; then
  fail "the password shows in the run's files or output"
else
  echo "ok: the password is in no file or output"
fi
grep -q "postgresql://postgres@/lab" "$tmp/secret/run.json" || fail "run.json does not name the database"
expect_exit 2 "export of a run not there, through a URL with a password" \
  "$tpmlab" export "$secret_url:99" -o "$tmp/none99"
expect_stderr "has no run 99" "export names the run"
grep -q "s3cret-word" "$tmp/stdout" "$tmp/stderr" && fail "export shows the password"

expect_exit 3 "a database that is not there" \
  "$tpmlab" run "$src/scenarios/power-cycle.yaml" --cycles 1 --out "$tmp/none" -q \
    --db "postgresql:///nosuch?host=$PG_DIR&port=$PG_PORT&user=postgres"
expect_stderr 'cannot open postgresql:///nosuch.*database "nosuch" does not exist' "the error names the database"
# A server that cannot be reached (or refuses) is the run's trouble, not a
# typo tpmlab can tell: exit 3, with libpq's reason.
expect_exit 3 "runs of a database that is not there" \
  "$tpmlab" runs --db "postgresql:///nosuch?host=$PG_DIR&port=$PG_PORT&user=postgres"
expect_stderr 'database "nosuch" does not exist' "runs says why"

[[ $failures -eq 0 ]] || { echo "$failures failure(s)"; exit 1; }
echo "all PostgreSQL CLI checks passed"
