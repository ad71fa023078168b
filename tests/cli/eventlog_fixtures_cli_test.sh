#!/usr/bin/env bash
# `tpmlab eventlog replay | show | diff` on the public fixture logs
# (../shared/fixtures/eventlogs, or $TPMLAB_FIXTURES_DIR/eventlogs): every log
# replays to expected.json, show gives valid JSON for each, malformed ones
# exit 2. Exit 77 (ctest: Skipped) when the fixtures are absent.
#   eventlog_fixtures_cli_test.sh TPMLAB_BINARY SOURCE_DIR
set -uo pipefail
tpmlab=$1
src=$2
fixtures="${TPMLAB_FIXTURES_DIR:-$src/../shared/fixtures}/eventlogs"
if [[ ! -f "$fixtures/expected.json" ]]; then
  echo "skipped: $fixtures/expected.json is absent"
  exit 77
fi
tmp=$(mktemp -d /tmp/tpmlab-eventlog-fixtures-cli-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

check_py "every fixture through replay --json and show --json" '
import json, subprocess, sys
tpmlab, folder = sys.argv[1], sys.argv[2]
expected = json.load(open(folder + "/expected.json"))
for name, want in expected.items():
    path = folder + "/" + name
    for cmd in ("replay", "show"):
        r = subprocess.run([tpmlab, "eventlog", cmd, "--json", path], capture_output=True)
        if want["expect"] == "malformed":
            assert r.returncode == 2 and b"at byte" in r.stderr, (name, cmd, r.returncode, r.stderr)
            continue
        if want["expect"] == "either":
            assert r.returncode in (0, 2), (name, cmd, r.returncode)
            continue
        assert r.returncode == 0, (name, cmd, r.stderr)
        out = json.loads(r.stdout.decode("utf-8"))  # strict UTF-8
        if cmd == "replay":
            assert out["pcrs"] == want["pcrs"], name
            assert out["events"] == want["events"] and out["format"] == want["format"], name
        else:
            assert len(out["events"]) == want["events"], name
' "$tpmlab" "$fixtures"
expect_exit 1 "diff of the two arch-linux copies" "$tpmlab" eventlog diff --json \
  "$fixtures/arch-linux-workstation.bin" "$fixtures/tpm2tools-event-arch-linux.bin"
check_py "the arch-linux copies differ in two PCR4 events only" '
import json, sys
out = json.load(open(sys.argv[1]))
assert list(out["pcrs"]) == ["4"], list(out["pcrs"])
assert [c["differs"] for c in out["pcrs"]["4"]["changed"]] == [["data"], ["digest", "data"]]
assert {b: sorted(v) for b, v in out["pcr_values"].items()} == {"sha1": ["4"], "sha256": ["4"]}
' "$tmp/stdout"
expect_exit 0 "tpm2-tools flags event 24 of its arch-linux log" "$tpmlab" eventlog replay \
  "$fixtures/tpm2tools-event-arch-linux.bin"
grep -q "EVENT_DIGEST_MISMATCH: event 23 (PCR8 EV_IPL)" "$tmp/stdout" || fail "arch-linux: no digest finding on event 23"

if [[ $failures -ne 0 ]]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "all eventlog fixture CLI checks passed"
