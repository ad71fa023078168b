#!/usr/bin/env bash
# store_backends_bench.sh: what a step costs to commit and to read back in
# SQLite (a file, WAL) and in PostgreSQL 15 (a server on a unix socket, as a
# lab's shared database would be on its own host, minus the network).
#
#   store_backends_bench.sh --build-dir DIR [--steps N] [--runs R]
#
# Records a 20-cycle power-cycle run, then has store_bench write its steps
# N times over (one transaction per step, as a run commits them) into a
# fresh SQLite file and a fresh PostgreSQL database, R times each,
# alternating. Prints each run, the medians and the PostgreSQL/SQLite ratio,
# and each database's bytes per step (PostgreSQL: pg_database_size minus an
# empty database's).
set -uo pipefail
export LC_ALL=C
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
build="" steps=2000 runs=3
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build-dir) build="${2:-}"; shift 2 ;;
    --steps) steps="${2:-}"; shift 2 ;;
    --runs) runs="${2:-}"; shift 2 ;;
    *) echo "usage: $0 --build-dir DIR [--steps N] [--runs R]" >&2; exit 1 ;;
  esac
done
tpmlab="$build/harness/cli/tpmlab" bench="$build/tests/bench/store_bench"
[[ -x $tpmlab && -x $bench ]] || { echo "no tpmlab or store_bench in $build (--build-dir)" >&2; exit 1; }
tmp=$(mktemp -d /tmp/tpmlab-store-backends-XXXXXX)
failures=0
source "$src/tests/cli/lib.sh"
trap 'stop_postgres; rm -rf "$tmp"' EXIT
start_postgres || exit 1
"$tpmlab" run "$src/scenarios/power-cycle.yaml" --cycles 20 --out "$tmp/source" -q >/dev/null ||
  { echo "the source run failed" >&2; exit 1; }

psql_value() { "$PG_BIN/psql" -At "$1" -c "$2"; }
declare -a lite_ms pg_ms lite_walk pg_walk pg_bytes lite_bytes
for ((r = 0; r < runs; r++)); do
  out=$("$bench" "$tmp/source/tpmlab.db" 1 "$tmp/out.db" "$steps") || { echo "store_bench (SQLite) failed" >&2; exit 1; }
  echo "sqlite     $out"
  lite_ms+=("$(sed -E 's/.*RecordStep median ([0-9.]+) ms.*/\1/' <<<"$out")")
  lite_walk+=("$(sed -E 's/.*ForEachStep ([0-9]+) ms.*/\1/' <<<"$out")")
  lite_bytes+=("$(sed -E 's/.*db ([0-9]+) bytes\/step.*/\1/' <<<"$out")")
  url=$(pg_createdb "bench$r") || exit 1
  empty=$(psql_value "$url" "SELECT pg_database_size(current_database())")
  out=$("$bench" "$tmp/source/tpmlab.db" 1 "$url" "$steps") || { echo "store_bench (PostgreSQL) failed" >&2; exit 1; }
  echo "postgresql $out"
  pg_ms+=("$(sed -E 's/.*RecordStep median ([0-9.]+) ms.*/\1/' <<<"$out")")
  pg_walk+=("$(sed -E 's/.*ForEachStep ([0-9]+) ms.*/\1/' <<<"$out")")
  "$PG_BIN/psql" -q "$url" -c "CHECKPOINT" >/dev/null
  full=$(psql_value "$url" "SELECT pg_database_size(current_database())")
  pg_bytes+=("$(( (full - empty) / steps ))")
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
lm=$(median "${lite_ms[@]}") pm=$(median "${pg_ms[@]}")
lw=$(median "${lite_walk[@]}") pw=$(median "${pg_walk[@]}")
printf "median over %d runs of %d steps:\n" "$runs" "$steps"
printf "  commit per step: SQLite %.3f ms, PostgreSQL %.3f ms (%.2fx)\n" "$lm" "$pm" "$(awk -v a="$pm" -v b="$lm" 'BEGIN {print a / b}')"
printf "  ForEachStep over all: SQLite %d ms, PostgreSQL %d ms (%.2fx)\n" "$lw" "$pw" "$(awk -v a="$pw" -v b="$lw" 'BEGIN {print a / b}')"
printf "  bytes per step: SQLite %s, PostgreSQL %s\n" "$(median "${lite_bytes[@]}")" "$(median "${pg_bytes[@]}")"
