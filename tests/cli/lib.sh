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
expect_stderr() {  # pattern, description
  grep -qE -- "$1" "$tmp/stderr" || { fail "$2: stderr lacks /$1/"; sed 's/^/  | /' "$tmp/stderr"; }
}
