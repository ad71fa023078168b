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
# A PostgreSQL 15 cluster of the test's own (Debian's postgresql-15; the C++
# tests' twin is tests/support/postgres_cluster.h): initdb in a temporary
# folder, postgres on a unix socket there only (no TCP), as the postgres
# user when root. Call it from the test's main shell, not in $( ):
#   trap 'stop_postgres; rm -rf "$tmp"' EXIT
#   start_postgres || exit $?    # 77 (ctest SKIP_RETURN_CODE) without PostgreSQL, 1 if it failed
#   url=$(pg_createdb results)   # postgresql:///results?host=$PG_DIR&port=...&user=postgres
#   "$tpmlab" run ... --db "$url"
# It sets PG_DIR (the folder) and PG_URL (database "postgres"). postgres dies
# with the test shell (setpriv --pdeathsig, kept after the change of user),
# and stop_postgres (fast shutdown, then SIGKILL) removes the folder.
PG_BIN=${TPMLAB_POSTGRES_BIN_DIR:-/usr/lib/postgresql/15/bin}
start_postgres() {
  local program as_postgres=() i
  for program in initdb postgres pg_isready createdb; do
    [[ -x $PG_BIN/$program ]] || { echo "SKIPPED: $PG_BIN/$program is absent (Debian package postgresql-15)"; return 77; }
  done
  command -v setpriv >/dev/null || { echo "SKIPPED: setpriv is absent (Debian package util-linux)"; return 77; }
  if [[ $EUID -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || { echo "SKIPPED: the postgres user is absent (Debian package postgresql-15)"; return 77; }
    as_postgres=(--reuid=postgres --regid=postgres --init-groups)
  fi
  _pg_remove_orphaned_segments
  PG_DIR=$(mktemp -d /tmp/tpmlab-pg-XXXXXX) || return 1
  [[ $EUID -ne 0 ]] || chown postgres: "$PG_DIR"
  PG_PORT=$((20000 + ($$ * 8 + RANDOM % 8) % 40000))  # only names the socket file in PG_DIR
  PG_URL="postgresql:///postgres?host=$PG_DIR&port=$PG_PORT&user=postgres"
  if ! setpriv "${as_postgres[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 \
       --locale=C --no-sync >"$PG_DIR/initdb.log" 2>&1; then
    echo "FAIL: initdb in $PG_DIR:"; tail -n 10 "$PG_DIR/initdb.log"; stop_postgres; return 1
  fi
  # fsync and friends off: the tests do not test the durability of PostgreSQL itself.
  setpriv "${as_postgres[@]}" --pdeathsig KILL "$PG_BIN/postgres" -D "$PG_DIR/data" -k "$PG_DIR" -p "$PG_PORT" \
    -c listen_addresses= -c fsync=off -c full_page_writes=off -c synchronous_commit=off \
    -c dynamic_shared_memory_type=mmap >"$PG_DIR/postgres.log" 2>&1 &
  PG_PID=$!
  for ((i = 0; i < 300; i++)); do  # 30 s: CI machines are loaded
    if ! _pg_running; then
      echo "FAIL: postgres in $PG_DIR ended:"; tail -n 10 "$PG_DIR/postgres.log"; stop_postgres; return 1
    fi
    "$PG_BIN/pg_isready" -q -h "$PG_DIR" -p "$PG_PORT" -U postgres -d postgres && return 0
    sleep 0.1
  done
  echo "FAIL: postgres in $PG_DIR did not accept connections within 30 s:"; tail -n 10 "$PG_DIR/postgres.log"
  stop_postgres; return 1
}
_pg_running() { _pg_alive "${PG_PID:-}"; }
_pg_alive() {  # PID; a zombie is not alive
  [[ -n $1 && -r /proc/$1/stat ]] && [[ $(sed 's/.*) //' "/proc/$1/stat" | cut -c1) != Z ]]
}
# A SIGKILLed postgres leaves its 56-byte System V segment behind; as root,
# removes the postgres user's segments nobody is attached to whose creator is
# gone (never one of a running cluster). postgres_cluster.h does the same.
_pg_remove_orphaned_segments() {
  local id owner creator rest attached
  [[ $EUID -eq 0 ]] || return 0
  while read -r id owner creator rest; do
    [[ $id =~ ^[0-9]+$ && $owner == postgres ]] || continue
    attached=$(ipcs -m | awk -v id="$id" '$2 == id {print $6}')
    [[ $attached == 0 ]] && ! _pg_alive "$creator" && ipcrm -m "$id" 2>/dev/null
  done < <(ipcs -m -p)
  return 0
}
# Makes database NAME (letters, digits, '_', '-') on the cluster and prints its URL.
pg_createdb() {
  [[ $1 =~ ^[A-Za-z0-9_-]{1,63}$ ]] || { echo "pg_createdb: bad database name '$1'" >&2; return 1; }
  "$PG_BIN/createdb" -h "$PG_DIR" -p "$PG_PORT" -U postgres "$1" >&2 || return 1
  echo "postgresql:///$1?host=$PG_DIR&port=$PG_PORT&user=postgres"
}
stop_postgres() {
  local i
  if _pg_running; then
    kill -INT "$PG_PID" 2>/dev/null  # fast shutdown
    for ((i = 0; i < 150; i++)); do _pg_running || break; sleep 0.1; done
    _pg_running && kill -KILL "$PG_PID" 2>/dev/null
  fi
  [[ -n ${PG_PID:-} ]] && wait "$PG_PID" 2>/dev/null
  [[ -n ${PG_DIR:-} ]] && rm -rf "$PG_DIR"
  PG_PID= PG_DIR=
  return 0
}
