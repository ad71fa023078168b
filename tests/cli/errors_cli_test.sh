#!/usr/bin/env bash
# Hand-edited files whose fields have another type than tpmlab writes are bad
# input (exit 2) naming the file, never an escaped exception and an abort:
# a run.json read by `tpmlab verify RUN.json:STEP` and `tpmlab diff`, an
# enrollment.json given to `verify --enrollment`, a scenario, firmware model
# and bench whose YAML has a list where a name goes. An exception nothing
# below catches is "tpmlab: internal error: ..." and exit 3.
#   errors_cli_test.sh TPMLAB_BINARY SOURCE_DIR
set -uo pipefail
tpmlab=$(realpath "$1")
src=$2
tmp=$(mktemp -d /tmp/tpmlab-errors-cli-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# Sets one field of a JSON file: FILE, a Python expression over `j` to assign to, the new value as JSON.
edit_json() {
  /usr/bin/python3 - "$@" <<'PY'
import json, sys
path, target, value = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
j = json.load(open(path))
exec(f"{target} = value")
json.dump(j, open(path, "w"), indent=1)
PY
}
# A step's place in run.json's list, by its "index".
step_at() { /usr/bin/python3 -c 'import json,sys; print([s["index"] for s in json.load(open(sys.argv[1]))["steps"]].index(int(sys.argv[2])))' "$@"; }
# Not an abort: the shell reports 134 for SIGABRT, and a core would be written.
expect_no_abort() { grep -q "terminate called" "$tmp/stderr" && fail "$1: std::terminate reached"; true; }

# A real run to edit: boot, enroll, snapshot (step 2 holds the snapshot).
expect_exit 0 "attest run" "$tpmlab" run "$src/scenarios/attest.yaml" --out "$tmp/run"
[[ -f $tmp/run/run.json && -f $tmp/run/enrollment.json ]] || { echo "FAIL: the run wrote no run.json/enrollment.json"; exit 1; }
expect_exit 0 "verify the untouched step" "$tpmlab" verify "$tmp/run/run.json:2"
at=$(step_at "$tmp/run/run.json" 2)

# 1. A number where run.json has a string, inside a snapshot.
mkdir -p "$tmp/typed"
cp -r "$tmp/run/." "$tmp/typed/"
edit_json "$tmp/typed/run.json" "j['steps'][$at]['snapshot']['taken_at']" 12345
expect_exit 2 "verify: snapshot field of another type" "$tpmlab" verify "$tmp/typed/run.json:2"
expect_stderr "typed/run\.json:2: not the shape tpmlab writes: .*type must be string, but is number" \
  "verify names the run.json and what nlohmann found"
expect_no_abort "verify"
expect_exit 2 "diff: one side's snapshot field of another type" "$tpmlab" diff "$tmp/run/run.json:2" "$tmp/typed/run.json:2"
expect_stderr "typed/run\.json:2: not the shape tpmlab writes" "diff names the edited run.json"
expect_no_abort "diff"

# 2. A step's index as a string: the step list itself is not what tpmlab writes.
mkdir -p "$tmp/index"
cp -r "$tmp/run/." "$tmp/index/"
edit_json "$tmp/index/run.json" "j['steps'][0]['index']" '"zero"'
expect_exit 2 "verify: a step index of another type" "$tpmlab" verify "$tmp/index/run.json:2"
expect_stderr "index/run\.json /steps/0: not the shape tpmlab writes" "names the run.json and the step's JSON pointer"
expect_no_abort "verify (index)"

# 3. An enrollment.json whose dut is a number.
cp "$tmp/run/enrollment.json" "$tmp/enrollment-typed.json"
edit_json "$tmp/enrollment-typed.json" "j['enrollments'][0]['dut']" 7
expect_exit 2 "verify --enrollment with a field of another type" \
  "$tpmlab" verify "$tmp/run/run.json:2" --enrollment "$tmp/enrollment-typed.json"
expect_stderr "enrollment-typed\.json: enrollments\[0\]: not the shape tpmlab writes: .*type must be string" \
  "names the enrollment file and the record"
expect_no_abort "verify --enrollment"

# 4. YAML with a list where a name goes (yaml-cpp throws reading it as text).
cat >"$tmp/list-key.yaml" <<'EOF'
name: list-key
steps:
  - boot
  - hierarchy: {[owner]: disable}
EOF
expect_exit 2 "run: a scenario with a list as a hierarchy name" "$tpmlab" run "$tmp/list-key.yaml" --out "$tmp/list-key"
expect_stderr "list-key\.yaml:4:17: a value of the wrong shape here" "names file:line:column of the list"
expect_no_abort "run (scenario)"
[[ -e $tmp/list-key/run.json ]] && fail "a scenario that does not load still wrote a run.json"

cat >"$tmp/bench.yaml" <<'EOF'
name: odd
dut: {transport: emulated}
allow: {[extend]: true}
EOF
expect_exit 2 "bench check: a list as an allow key" "$tpmlab" bench check "$tmp/bench.yaml"
expect_stderr "bench\.yaml:3:9: a value of the wrong shape here" "names file:line:column of the list"
expect_no_abort "bench check"

mkdir -p "$tmp/models"
cat >"$tmp/models/odd.yaml" <<'EOF'
name: odd
{[banks]: 1}: 2
EOF
cat >"$tmp/odd-model.yaml" <<EOF
name: odd-model
firmware: $tmp/models/odd.yaml
steps: [boot]
EOF
expect_exit 2 "run: a firmware model with a list as a key" "$tpmlab" run "$tmp/odd-model.yaml" --out "$tmp/odd-model"
expect_stderr "models/odd\.yaml:2:1: a value of the wrong shape here" "names the model file, line and column"
expect_no_abort "run (firmware model)"

# 5. The last resort: a path too long for the system makes std::filesystem
# throw where nothing below expects it; main reports it and exits 3.
long=$tmp/$(printf 'x%.0s' $(seq 1 5000))
expect_exit 3 "bundle of a path longer than the system allows" "$tpmlab" bundle "$long"
expect_stderr "^tpmlab: internal error: .*File name too long" "says internal error and what was thrown"
expect_no_abort "bundle"

if [[ $failures -ne 0 ]]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "all errors CLI checks passed"
