#!/usr/bin/env bash
# tpmlab export: run.json and junit.xml written from the database are the
# ones the run wrote at its end (one writer); a compact run.json's steps are
# read back from the database by verify, diff and export --step; a run
# killed with -9 exports as interrupted with the steps it stored; bad
# databases and run ids are exit 2 naming what the database holds.
#   export_cli_test.sh TPMLAB_BINARY SOURCE_DIR
set -uo pipefail
tpmlab=$(realpath "$1")
src=$2
tmp=$(mktemp -d /tmp/tpmlab-export-XXXXXX)
soak_pid=
cleanup() {
  [[ -n $soak_pid ]] && kill -9 "$soak_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
failures=0

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

mkdir -p "$tmp/firmware" && cp "$src"/scenarios/firmware/*.yaml "$tmp/firmware/"
cat >"$tmp/cycles.yaml" <<'YAML'
name: cycles
seed: 5
firmware: baseline
steps:
  - boot
  - enroll
  - repeat:
      count: 3
      steps:
        - power_cycle: reset
  - expect: {alarms: [PCR_POLICY_MISMATCH]}
YAML

# 1. The files a run wrote at its end, and the export of the same run: the same.
expect_exit 1 "a run with an unmet expectation" "$tpmlab" run "$tmp/cycles.yaml" -q --out "$tmp/r"
expect_exit 0 "export DB:RUN" "$tpmlab" export "$tmp/r/tpmlab.db:1" -o "$tmp/x"
cmp -s "$tmp/r/run.json" "$tmp/x/run.json" && echo "ok: the export's run.json is the run's own, byte for byte" ||
  fail "the export's run.json differs from the run's own"
check_py "the exported run is whole" '
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
assert a == b, [k for k in a if a[k] != b.get(k)]
assert a["status"] == "failed" and len(a["steps"]) == 6 and "pcrs" in a["steps"][2]["snapshot"], a["status"]
' "$tmp/r/run.json" "$tmp/x/run.json"
cmp -s "$tmp/r/junit.xml" "$tmp/x/junit.xml" && echo "ok: same junit.xml" || fail "junit.xml differs from the export's"
for f in "$tmp"/r/eventlogs/*.bin; do
  cmp -s "$f" "$tmp/x/eventlogs/$(basename "$f")" || fail "export lacks $(basename "$f")"
done
expect_exit 2 "export over a run.json already there" "$tpmlab" export "$tmp/r/tpmlab.db" -o "$tmp/x"
expect_stderr "does not overwrite" "export refuses to overwrite"

# 2. A compact run.json: snapshots stay in the database, readers follow the reference.
expect_exit 0 "run --run-json compact" "$tpmlab" run "$src/scenarios/power-cycle.yaml" --cycles 3 -q \
  --run-json compact --out "$tmp/c"
check_py "compact steps name where their snapshot is" '
import json, sys
run = json.load(open(sys.argv[1]))
assert run["step_snapshots"] == "stored", run.get("step_snapshots")
s = run["steps"][2]["snapshot"]
assert "pcrs" not in s and s["stored"] == {"database": run["database"], "run_id": run["run_id"], "step": 2}, s
' "$tmp/c/run.json"
expect_exit 0 "export the compact run in full" "$tpmlab" export "$tmp/c/tpmlab.db" --run-json full -o "$tmp/cf"
expect_exit 0 "diff a compact step against its full export" "$tpmlab" diff "$tmp/c/run.json:3" "$tmp/cf/run.json:3"
expect_exit 0 "verify a compact run.json's step" "$tpmlab" verify "$tmp/c/run.json:3"
expect_exit 0 "export --step prints one step whole" "$tpmlab" export "$tmp/c/tpmlab.db:1" --step 3
check_py "the step printed has its whole snapshot" '
import json, sys
s = json.load(open(sys.argv[1]))
assert s["index"] == 3 and s["snapshot"]["pcrs"] and s["snapshot"]["quote"]["verified"], s.keys()
' "$tmp/stdout"
# A bundle of it carries run.json with every snapshot inline, and replays the same.
expect_exit 0 "bundle a compact run" "$tpmlab" bundle "$tmp/c" -o "$tmp/c.tar.gz"
pushd "$tmp" >/dev/null  # the replay's run goes under ./tpmlab-runs
expect_exit 0 "replay the compact run's bundle: the same snapshots" "$tpmlab" replay "$tmp/c.tar.gz"
popd >/dev/null
# The run folder moved: the database beside run.json is used.
mv "$tmp/c" "$tmp/c-moved"
expect_exit 0 "verify a compact step after the folder moved" "$tpmlab" verify "$tmp/c-moved/run.json:3"

# 3. A run killed with -9 exports as interrupted, with the steps it stored.
"$tpmlab" run "$src/scenarios/power-cycle.yaml" --cycles 100000 -q --out "$tmp/k" >"$tmp/k.out" 2>&1 &
soak_pid=$!
stored=0
for _ in $(seq 1 600); do
  stored=$(/usr/bin/python3 -c '
import sqlite3, sys
try:
    print(sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True).execute("SELECT count(*) FROM steps").fetchone()[0])
except Exception:
    print(0)' "$tmp/k/tpmlab.db")
  (( stored >= 6 )) && break
  sleep 0.2
done
kill -9 "$soak_pid"; wait "$soak_pid" 2>/dev/null; soak_pid=
(( stored >= 6 )) || fail "the soak stored only $stored steps"
[[ -e $tmp/k/run.json ]] && fail "a killed run wrote run.json itself"
expect_exit 0 "export a killed run (the latest)" "$tpmlab" export "$tmp/k/tpmlab.db" -o "$tmp/kx"
check_py "a killed run exports as interrupted with its stored steps" '
import json, sys, sqlite3
run = json.load(open(sys.argv[1]))
n = sqlite3.connect(sys.argv[3]).execute("SELECT count(*) FROM steps").fetchone()[0]
assert run["status"] == "interrupted" and run["finished_at"] is None, run["status"]
assert len(run["steps"]) == n >= 6 and run["summary"]["steps"] == n, (len(run["steps"]), n)
assert "killed" in run["error"], run.get("error")
junit = open(sys.argv[2]).read()
assert "name=\"run completes\"" in junit and "killed: no finish recorded" in junit, junit
' "$tmp/kx/run.json" "$tmp/kx/junit.xml" "$tmp/k/tpmlab.db"
expect_exit 0 "verify a step of the killed run's export" "$tpmlab" verify "$tmp/kx/run.json:2"

# 4. Bad input: exit 2 naming the file and the runs it holds.
expect_exit 2 "export from no database" "$tpmlab" export "$tmp/none.db" -o "$tmp/n"
expect_stderr "none.db: no such database" "a missing database is named"
expect_exit 2 "export a run the database lacks" "$tpmlab" export "$tmp/r/tpmlab.db:7" -o "$tmp/n"
expect_stderr "tpmlab.db has no run 7; it holds run 1" "the runs held are named"
expect_exit 2 "export without -o" "$tpmlab" export "$tmp/r/tpmlab.db"
echo "not a database" >"$tmp/junk.db"
expect_exit 2 "export from a file that is not a database" "$tpmlab" export "$tmp/junk.db" -o "$tmp/n"
expect_stderr "junk.db" "the file that is not a database is named"

if (( failures > 0 )); then echo "$failures failure(s)"; exit 1; fi
echo "all export tests passed"
