#!/usr/bin/env bash
# The tpmlab command as a user meets it: the main job, its run.json, and the
# exit codes for bad input and a missing emulator.
#   cli_test.sh TPMLAB_BINARY SOURCE_DIR
set -uo pipefail
tpmlab=$1
src=$2
tmp=$(mktemp -d /tmp/tpmlab-cli-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# 1. The main job: 50 power cycles whose counters follow the TPM 2.0 table.
expect_exit 0 "power-cycle scenario, 50 cycles" \
  "$tpmlab" run "$src/scenarios/power-cycle.yaml" --cycles 50 --out "$tmp/o"
grep -q "results: $tmp/o/run.json" "$tmp/stdout" || fail "summary does not say where run.json is"
/usr/bin/python3 - "$tmp/o/run.json" <<'PY' || fail "run.json does not follow the table"
import json, sys
run = json.load(open(sys.argv[1]))
assert run["status"] == "passed", run["status"]
assert run["scenario"] == "power-cycle" and isinstance(run["seed"], int)
steps = run["steps"]
cycles = [s for s in steps if s["action"] == "power_cycle"]
assert len(cycles) == 50, len(cycles)
prev = steps[0]["snapshot"]
assert steps[1]["action"] == "enroll" and steps[1]["status"] == "passed"
alarms = {}
for s in steps:
    for a in s["alarms"]:
        alarms[a["code"]] = alarms.get(a["code"], 0) + 1
# Only CLOCK_NOT_SAFE, after power losses: nothing else alarms on a good platform.
assert set(alarms) <= {"CLOCK_NOT_SAFE"}, alarms
for s in steps[2:]:
    assert s["status"] == "passed", s
    assert s["index"] == steps.index(s) and s["cycle"] >= 1
    snap = s["snapshot"]
    a, b = prev["clock"], snap["clock"]
    if s["kind"] in ("restart", "resume"):
        assert b["reset_count"] == a["reset_count"] and b["restart_count"] == a["restart_count"] + 1, s["kind"]
    else:
        assert b["reset_count"] == a["reset_count"] + 1 and b["restart_count"] == 0, s["kind"]
    if s["kind"] in ("power-loss", "hard-loss"):
        # NO, unless the clock was saved to NV since the Startup (every 4096 ms
        # in libtpms); the runner's own "safe" check judges which.
        safe = [c for c in s["checks"] if c["name"] == "safe"]
        assert len(safe) == 1 and safe[0]["passed"], safe
        assert b["safe"] is False or "passed an NV save" in safe[0]["detail"], safe
    assert snap["quote"]["verified"] is True
    assert snap["ek_name"] == prev["ek_name"]
    assert set(snap["pcrs"]) == {"sha1", "sha256"} and len(snap["pcrs"]["sha256"]) == 24
    assert all(len(v) == 64 and v == v.lower() for v in snap["pcrs"]["sha256"].values())
    for key in ("firmware_version", "srk_name", "ak_name", "latency_us"):
        assert key in snap, key
    assert snap["eventlog"]["replay_matches"] == {"sha1": True, "sha256": True}
    prev = snap
assert len({s["kind"] for s in cycles}) == 5, "every kind drawn"
PY
[[ -s "$tmp/o/tpmlab.db" ]] || fail "no SQLite database"

# 1b. Judging and comparing stored snapshots after the run.
expect_exit 0 "verify a stored step against the enrollment" \
  "$tpmlab" verify "$tmp/o/run.json:3" --enrollment "$tmp/o/enrollment.json" --previous "$tmp/o/run.json:2" --json
/usr/bin/python3 -c 'import json,sys; v=json.load(open(sys.argv[1])); assert v["alarms"] == [], v' "$tmp/stdout" \
  || fail "verify --json of a clean step has alarms"
expect_exit 0 "diff of two boots of one model" "$tpmlab" diff "$tmp/o/run.json:0" "$tmp/o/run.json:2"
grep -q "^no drift" "$tmp/stdout" || fail "diff of two clean boots says they differ"
expect_exit 0 "enroll from a stored step" "$tpmlab" enroll "$tmp/o/tpmlab.db:1:0" --out "$tmp/enrollment.json"
[[ -s "$tmp/enrollment.json" ]] || fail "enroll wrote no file"
# A different chip with Secure Boot off: alarms, exit 1, and the drift says why.
sed 's/firmware: baseline /firmware: secure-boot-off /' "$src/scenarios/power-cycle.yaml" >"$tmp/sbo.yaml"
mkdir -p "$tmp/firmware" && cp "$src"/scenarios/firmware/*.yaml "$tmp/firmware/"
expect_exit 0 "secure-boot-off boot" "$tpmlab" run "$tmp/sbo.yaml" --cycles 0 --out "$tmp/sbo"
expect_exit 1 "verify a Secure Boot off boot" "$tpmlab" verify "$tmp/sbo/run.json:0"
grep -q "SECURE_BOOT_DISABLED: Host Secure Boot was disabled" "$tmp/stdout" || fail "no SECURE_BOOT_DISABLED"
# Against the first chip's enrollment its quote is not the enrolled AK's:
# nothing it reports is believed (Keylime), so Secure Boot is not judged.
expect_exit 1 "verify the other chip against the baseline enrollment" \
  "$tpmlab" verify "$tmp/sbo/run.json:0" --enrollment "$tmp/o/enrollment.json"
grep -q "QUOTE_SIGNATURE_INVALID" "$tmp/stdout" || fail "another chip's quote verified with the enrolled AK"
grep -q "not run: SECURE_BOOT_DISABLED" "$tmp/stdout" || fail "Secure Boot judged on an unverified quote"
expect_exit 1 "diff baseline vs secure-boot-off" "$tpmlab" diff --json "$tmp/o/run.json:0" "$tmp/sbo/run.json:0"
/usr/bin/python3 - "$tmp/stdout" <<'PY' || fail "diff does not name PCR7 and SECURE_BOOT_VARIABLE"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["pcrs"] == {"sha1": [7], "sha256": [7]}, d["pcrs"]
assert {"code": "SECURE_BOOT_VARIABLE", "pcr": 7, "detail": "SecureBoot"} in d["causes"], d["causes"]
# Two runs are two chips (each its own EK and certificate): not a clear of one.
codes = {c["code"] for c in d["causes"]}
assert "DIFFERENT_TPM" in codes and "OWNERSHIP_CLEAR" not in codes, d["causes"]
PY
expect_exit 2 "verify a step that does not exist" "$tpmlab" verify "$tmp/o/run.json:999"
expect_stderr "no step 999" "missing step message"

# 2. A malformed scenario: file:line:column, exit 2, nothing run.
cat >"$tmp/bad.yaml" <<'YAML'
name: bad
steps:
  - boot
  - power_cycle:
      kind: reboot
YAML
expect_exit 2 "unknown power_cycle kind" "$tpmlab" run "$tmp/bad.yaml" --out "$tmp/bad"
expect_stderr "bad.yaml:5:13: unknown power_cycle kind 'reboot'" "unknown kind message"
[[ ! -e "$tmp/bad" ]] || fail "a malformed scenario created its output folder"

printf 'name: typo\nstep:\n  - boot\n' >"$tmp/typo.yaml"
expect_exit 2 "unknown key" "$tpmlab" run "$tmp/typo.yaml" --out "$tmp/typo"
expect_stderr "typo.yaml:2:1: unknown key 'step'" "unknown key message"

printf 'name: x\nsteps: [boot, {power_cycle: reset}]\n' >"$tmp/norepeat.yaml"
expect_exit 2 "--cycles without a repeat" "$tpmlab" run "$tmp/norepeat.yaml" --cycles 3 --out "$tmp/nr"
expect_stderr "needs a top-level repeat" "--cycles message"

expect_exit 2 "missing scenario file" "$tpmlab" run "$tmp/nope.yaml"
expect_stderr "nope.yaml: cannot read the scenario file: No such file or directory" "missing file: the reason"
mkdir "$tmp/a-folder"
expect_exit 2 "a folder as the scenario" "$tpmlab" run "$tmp/a-folder"
expect_stderr "a-folder: is a folder, not a scenario file" "folder message"
printf 'name: tabs\nsteps:\n\t- boot\n' >"$tmp/tabs.yaml"
expect_exit 2 "a scenario indented with a tab" "$tpmlab" run "$tmp/tabs.yaml" --out "$tmp/tabs"
expect_stderr "tabs.yaml:3:1: not YAML text: a tab in the indentation" "tab message with line:column"
printf 'name: bin\nsteps: [boot]\n\x00\x01\x02' >"$tmp/binary.yaml"
expect_exit 2 "a binary file as the scenario" "$tpmlab" run "$tmp/binary.yaml" --out "$tmp/binary"
expect_stderr "binary.yaml:3:1 \(byte 24, 0x00\): not YAML text" "binary message with line:column and offset"
printf 'name: latin1\ndescription: caf\xe9\nsteps: [boot]\n' >"$tmp/latin1.yaml"
expect_exit 2 "a scenario that is not UTF-8" "$tpmlab" run "$tmp/latin1.yaml" --out "$tmp/latin1"
expect_stderr "latin1.yaml:2:17 \(byte 29, 0xe9\): not YAML text" "not UTF-8 message"

expect_exit 2 "no subcommand" "$tpmlab"
expect_exit 2 "unknown option" "$tpmlab" run "$src/scenarios/power-cycle.yaml" --cycels 3
expect_exit 2 "a mistyped subcommand" "$tpmlab" runn "$src/scenarios/power-cycle.yaml"
expect_stderr "unknown command 'runn'; did you mean 'run'\?" "unknown command and the nearest"
expect_exit 2 "a mistyped sub-subcommand" "$tpmlab" eventlog shwo x.bin
expect_stderr "tpmlab eventlog: unknown command 'shwo'; did you mean 'show'\?" "nested unknown command"
for bad in -3 abc 1e3 99999999999; do
  expect_exit 2 "--cycles $bad" "$tpmlab" run "$src/scenarios/power-cycle.yaml" --cycles "$bad" --out "$tmp/c"
  expect_stderr "--cycles: .*(whole number from 0 to 2147483647, not '$bad'|at most 2147483647)" "--cycles $bad message"
  grep -qE '[0-9]{30}' "$tmp/stderr" && fail "--cycles $bad: a range of many digits: $(cat "$tmp/stderr")"
done
expect_exit 2 "--seed -1" "$tpmlab" run "$src/scenarios/power-cycle.yaml" --seed -1 --out "$tmp/s"
expect_stderr "--seed: .*not '-1'" "--seed -1 refused"
[[ ! -e "$tmp/s" && ! -e "$tmp/c" ]] || fail "a refused option still ran"

# --version: tpmlab's and what it found of the software it drives.
expect_exit 0 "--version" "$tpmlab" --version
grep -qE '^tpmlab [0-9]+\.[0-9]+\.[0-9]+$' "$tmp/stdout" || fail "--version: no tpmlab line"
for part in swtpm libtpms tpm2-tss OpenSSL; do
  grep -qE "^  $part +[0-9]" "$tmp/stdout" || fail "--version: no $part version: $(cat "$tmp/stdout")"
done
expect_exit 0 "--version without swtpm on PATH" env PATH=/nonexistent "$tpmlab" --version
grep -qE '^  swtpm +not found$' "$tmp/stdout" || fail "--version: a missing swtpm is not 'not found'"

# The man page and bash completion the build wrote from the command tree:
# present beside the binary, naming every subcommand, and working.
build_dir=$(dirname "$tpmlab")
man_page="$build_dir/tpmlab.1" completion="$build_dir/tpmlab.bash-completion"
[[ -s $man_page && -s $completion ]] || fail "no man page or completion beside $tpmlab"
commands=$("$tpmlab" --help | sed -n '/^Subcommands:/,$s/^  \([a-z-]*\) .*/\1/p')
[[ $commands == *run* && $commands == *doctor* ]] || fail "could not list the subcommands from --help: $commands"
for c in $commands; do
  grep -q "^\.SS \"tpmlab $c" "$man_page" || fail "man page lacks a section for '$c'"
  grep -q "\"tpmlab $c\")" "$completion" || fail "completion lacks '$c'"
  for sub in $("$tpmlab" "$c" --help | sed -n '/^Subcommands:/,$s/^  \([a-z-]*\) .*/\1/p'); do
    grep -q "^\.SS \"tpmlab $c $sub" "$man_page" || fail "man page lacks '$c $sub'"
    grep -q "\"tpmlab/$c/$sub\")" "$completion" || fail "completion lacks '$c $sub'"
  done
done
if command -v groff >/dev/null; then
  groff -man -Tutf8 -z -ww "$man_page" 2>"$tmp/groff.err"
  [[ ! -s "$tmp/groff.err" ]] || fail "the man page has roff errors: $(head -3 "$tmp/groff.err")"
fi
complete_words() {  # the words typed after `tpmlab`; prints what completion offers
  bash -c 'source "$1"; shift; COMP_WORDS=(tpmlab "$@"); COMP_CWORD=$#; _tpmlab; printf "%s\n" "${COMPREPLY[@]}"' \
    _ "$completion" "$@"
}
[[ $(complete_words ev) == eventlog ]] || fail "completion of 'ev': $(complete_words ev)"
[[ $(complete_words eventlog d) == diff ]] || fail "completion of 'eventlog d': $(complete_words eventlog d)"
[[ $(complete_words run x.yaml --cy) == --cycles ]] || fail "completion of 'run --cy': $(complete_words run x.yaml --cy)"

# 3. swtpm not installed: exit 4 and the package to install.
expect_exit 4 "swtpm not on PATH" env PATH=/nonexistent "$tpmlab" run "$src/scenarios/power-cycle.yaml" --cycles 1 --out "$tmp/nopath"
expect_stderr "install the Debian package 'swtpm(-tools)?'" "missing package message"

if [[ $failures -ne 0 ]]; then
  echo "cli_test: $failures failure(s)"
  exit 1
fi
echo "cli_test: all passed"
