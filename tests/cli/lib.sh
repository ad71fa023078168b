# Shared by the CLI tests: run a command, check its exit code and stderr,
# count failures. The sourcing script sets $tmp and failures=0 first.
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
expect_exit() {  # expected, description, command...
  local want=$1 what=$2; shift 2
  "$@" >"$tmp/stdout" 2>"$tmp/stderr"
  local got=$?
  if [[ $got -ne $want ]]; then
    fail "$what: exit $got, expected $want"; sed 's/^/  | /' "$tmp/stderr" | head -20
  else
    echo "ok: $what (exit $got)"
  fi
}
# A run.json step's quote as the loose files tpm2_quote writes:
# PREFIX.attest, PREFIX.sig, PREFIX.ak.der, PREFIX.pcrs.json, PREFIX.nonce (hex).
write_loose_files() {  # run.json, step index, prefix
  /usr/bin/python3 - "$@" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))
snap = next(s for s in run["steps"] if s["index"] == int(sys.argv[2]))["snapshot"]
out = sys.argv[3]
open(out + ".attest", "wb").write(bytes.fromhex(snap["quote"]["attest"]))
open(out + ".sig", "wb").write(bytes.fromhex(snap["quote"]["signature"]))
open(out + ".ak.der", "wb").write(bytes.fromhex(snap["ak_public_der"]))
json.dump({"pcrs": snap["pcrs"]}, open(out + ".pcrs.json", "w"))
open(out + ".nonce", "w").write(snap["quote"]["nonce"])
PY
}
expect_stderr() {  # pattern, description
  grep -qE -- "$1" "$tmp/stderr" || { fail "$2: stderr lacks /$1/"; sed 's/^/  | /' "$tmp/stderr"; }
}
check_py() {  # description, python code reading sys.argv[1:]; more args follow (uses $tmp)
  local what=$1 code=$2; shift 2
  if /usr/bin/python3 -c "$code" "$@" >"$tmp/py.out" 2>&1; then
    echo "ok: $what"
  else
    fail "$what"; sed 's/^/  | /' "$tmp/py.out" | tail -15
  fi
}
