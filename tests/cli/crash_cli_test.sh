#!/usr/bin/env bash
# Crash-safe results. A soak killed with -9 at seeded random moments, again
# and again into one database: after each kill the database passes SQLite's
# integrity check, no swtpm of the run is left, the stored steps are whole
# and without gaps (at most the step in flight is lost), the run reads as
# interrupted, and `tpmlab export DB:RUN` writes run.json and junit.xml for
# it, whose steps verify. Then a disk that fills up mid-run: exit 3 naming
# the database, everything committed before intact.
#   crash_cli_test.sh TPMLAB_BINARY SOURCE_DIR [KILLS] [SEED]
set -uo pipefail
tpmlab=$(realpath "$1")
src=$2
kills=${3:-8}
seed=${4:-${TPMLAB_CRASH_SEED:-1206}}
tmp=$(mktemp -d /tmp/tpmlab-crash-cli-XXXXXX)
background=
trap '[[ -n "$background" ]] && kill -9 "$background" 2>/dev/null; rm -rf "$tmp"' EXIT
failures=0
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
db=$tmp/lab.db
RANDOM=$seed
echo "seed $seed, $kills kills (TPMLAB_CRASH_SEED=$seed reproduces them)"

no_swtpm_of() {  # folder: no emulator of that run is left
  for _ in $(seq 50); do pgrep -f "swtpm.*$1" >/dev/null || return 0; sleep 0.1; done
  pgrep -af "swtpm.*$1"
  return 1
}

rows=0  # runs in the database so far
for k in $(seq "$kills"); do
  # 0.1 s to 2.5 s: some kills land while swtpm is manufactured or the run
  # row is written, most between and inside steps.
  delay_ms=$((100 + RANDOM % 2400))
  out=$tmp/kill$k
  "$tpmlab" run "$src/scenarios/power-cycle.yaml" --cycles 100000 --out "$out" --db "$db" -q \
    >"$tmp/bg.out" 2>"$tmp/bg.err" &
  background=$!
  sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
  kill -9 "$background"
  wait "$background" 2>/dev/null
  background=
  no_swtpm_of "$out" || fail "kill $k at ${delay_ms} ms: the run's swtpm outlived it"
  check_py "kill $k at ${delay_ms} ms: the database is consistent, its steps whole and without gaps" '
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
for run, in db.execute("SELECT id FROM runs"):
    idx = [i for i, in db.execute("SELECT idx FROM steps WHERE run_id = ? ORDER BY idx", (run,))]
    assert idx == list(range(len(idx))), (run, idx)
' "$db"
  # The run this kill interrupted, if it got as far as its row.
  "$tpmlab" runs --db "$db" --json >"$tmp/runs.json" 2>/dev/null || echo "[]" >"$tmp/runs.json"
  read -r seen run_id status < <(/usr/bin/python3 -c '
import json, sys
runs = json.load(open(sys.argv[1]))
print(len(runs), runs[-1]["run_id"] if runs else 0, runs[-1]["status"] if runs else "-")' "$tmp/runs.json")
  if [[ $seen -eq $rows ]]; then
    echo "ok: kill $k at ${delay_ms} ms came before the run's row: nothing to export"
    continue
  fi
  rows=$seen
  [[ $status == interrupted ]] || fail "kill $k: run $run_id reads as $status, not interrupted"
  expect_exit 0 "kill $k: export of run $run_id" "$tpmlab" export "$db:$run_id" -o "$tmp/export$k"
  check_py "kill $k: the export says interrupted and holds every stored step" '
import json, sqlite3, sys
run = json.load(open(sys.argv[1] + "/run.json"))
stored = sqlite3.connect(sys.argv[2]).execute("SELECT COUNT(*) FROM steps WHERE run_id = ?", (int(sys.argv[3]),)).fetchone()[0]
assert run["status"] == "interrupted", run["status"]
assert run["summary"]["steps"] == stored, (run["summary"]["steps"], stored)
junit = open(sys.argv[1] + "/junit.xml").read()
assert "run completes" in junit and ("<error" in junit or "<failure" in junit), junit[:400]
' "$tmp/export$k" "$db" "$run_id"
  # The last stored step, read whole from the database: its quote verifies
  # again from the stored bytes (an alarm such as CLOCK_NOT_SAFE after a
  # power loss is the chip's state, not a broken record).
  steps=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["summary"]["steps"])' "$tmp/export$k/run.json")
  if [[ $steps -ge 3 ]]; then
    expect_exit 0 "kill $k: the last stored step read whole" "$tpmlab" export "$db:$run_id" --step $((steps - 1))
    check_py "kill $k: its quote verifies again from the stored bytes" '
import json, sys
step = json.load(open(sys.argv[1]))
assert step["snapshot"]["quote"]["verified"] is True, step["snapshot"]["quote"]
' "$tmp/stdout"
  fi
done

# Kills inside chip manufacture, where random moments rarely land:
# swtpm_setup runs a swtpm of its own, which no death signal of tpmlab's
# reaches by itself. Killed as each of the two appears, neither is left.
for stage in "swtpm_setup" "swtpm socket --flags not-need-init"; do
  out=$tmp/manufacture-${stage%% *}
  "$tpmlab" run "$src/scenarios/power-cycle.yaml" --cycles 100000 --out "$out" --db "$tmp/manufacture.db" -q \
    >"$tmp/bg.out" 2>"$tmp/bg.err" &
  background=$!
  seen=
  for _ in $(seq 3000); do pgrep -f "$stage.*$out" >/dev/null && { seen=1; break; }; sleep 0.01; done
  kill -9 "$background"
  wait "$background" 2>/dev/null
  background=
  if [[ -z $seen ]]; then
    fail "manufacture: '$stage' never ran within 30 s"
    continue
  fi
  no_swtpm_of "$out" || fail "a kill while '$stage' ran: swtpm_setup or its swtpm outlived tpmlab"
done

# A disk that fills up mid-run: only root can make a tiny filesystem; the
# mount lives in a private namespace and goes away with it.
if [[ $(id -u) -ne 0 ]] || ! unshare -m true 2>/dev/null; then
  echo "SKIPPED: the full-disk case needs root and mount namespaces"
else
  mkdir -p "$tmp/tiny"
  unshare -m --propagation private bash -c '
    mount -t tmpfs -o size=1m tmpfs "$1" || exit 99
    "$2" run "$3/scenarios/power-cycle.yaml" --cycles 100000 --out "$4" --db "$1/full.db" -q >"$5/full.out" 2>"$5/full.err"
    echo $? >"$5/full.rc"
    cp "$1"/full.db* "$5/" 2>/dev/null
    exit 0' _ "$tmp/tiny" "$tpmlab" "$src" "$tmp/full" "$tmp"
  rc=$(cat "$tmp/full.rc" 2>/dev/null || echo none)
  [[ $rc == 3 ]] || fail "a full disk: exit $rc, expected 3"
  grep -qE "full\.db.*(full|space)|(full|space).*full\.db" "$tmp/full.err" ||
    { fail "a full disk: stderr does not name the database and the full disk"; sed 's/^/  | /' "$tmp/full.err" | tail -5; }
  check_py "a full disk: the database copied off it is consistent and its steps read back" '
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
n = db.execute("SELECT COUNT(*) FROM steps").fetchone()[0]
assert n >= 3, n
print(n, "steps kept")
' "$tmp/full.db"
  no_swtpm_of "$tmp/full" || fail "a full disk: the run's swtpm outlived it"
fi

echo "$failures failure(s)"
exit $((failures > 0))
