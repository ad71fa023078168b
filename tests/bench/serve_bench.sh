#!/usr/bin/env bash
# serve_bench.sh: what `tpmlab serve` adds to a tool's command. tpm2_getrandom
# 16 and tpm2_pcrread sha256:0,1,2, each run N times (one process per call,
# as labs script them) through the swtpm TCTI against a swtpm started here
# (`swtpm socket`, startup-clear) and against `tpmlab serve` on the embedded
# default (its own swtpm behind the trace and fault decorators, every
# command stored). Calls alternate between the two so load hits both alike.
#
#   serve_bench.sh --build-dir DIR [--n N]
#
# Prints per tool the median wall time of one call (ms) on each path and
# the ratio serve/direct; then tpmlab serve's own summary (commands relayed
# and stored, connections).
set -uo pipefail
export LC_ALL=C
build="" n=100
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build-dir) build="${2:-}"; shift 2 ;;
    --n) n="${2:-}"; shift 2 ;;
    *) echo "usage: $0 --build-dir DIR [--n N]" >&2; exit 1 ;;
  esac
done
tpmlab="$build/harness/cli/tpmlab"
[[ -x $tpmlab ]] || { echo "no tpmlab in $build (--build-dir)" >&2; exit 1; }
[[ $n =~ ^[0-9]+$ && $n -gt 0 ]] || { echo "--n: a whole number above 0" >&2; exit 1; }
for tool in swtpm tpm2_getrandom tpm2_pcrread; do
  command -v $tool >/dev/null || { echo "SKIPPED: $tool is absent"; exit 77; }
done
tmp=$(mktemp -d /tmp/tpmlab-serve-bench-XXXXXX)
swtpm_pid="" serve_pid=""
cleanup() {
  [[ -n $serve_pid ]] && kill -KILL "$serve_pid" 2>/dev/null
  [[ -n $swtpm_pid ]] && kill -KILL "$swtpm_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

# The direct path: swtpm on a free pair of ports (tcti-swtpm needs P and P+1).
mkdir -p "$tmp/swtpm"
for ((try = 0; try < 20; try++)); do
  direct=$((20000 + RANDOM % 20000))
  swtpm socket --tpm2 --tpmstate dir="$tmp/swtpm" --server type=tcp,port=$direct,bindaddr=127.0.0.1 \
    --ctrl type=tcp,port=$((direct + 1)),bindaddr=127.0.0.1 --flags not-need-init,startup-clear \
    --log file="$tmp/swtpm.log" &
  swtpm_pid=$!
  sleep 0.5
  kill -0 "$swtpm_pid" 2>/dev/null && break
  swtpm_pid=""
done
[[ -n $swtpm_pid ]] || { echo "swtpm did not start" >&2; exit 1; }

"$tpmlab" serve --port 0 --out "$tmp/serve" >"$tmp/serve.out" 2>"$tmp/serve.err" &
serve_pid=$!
for ((i = 0; i < 600; i++)); do
  grep -q '^export TPM2TOOLS_TCTI=' "$tmp/serve.out" 2>/dev/null && break
  kill -0 "$serve_pid" 2>/dev/null || { cat "$tmp/serve.err" >&2; exit 1; }
  sleep 0.1
done
served=$(sed -n 's/^export TPM2TOOLS_TCTI=.*port=\([0-9]*\)$/\1/p' "$tmp/serve.out")
[[ -n $served ]] || { echo "tpmlab serve did not start" >&2; cat "$tmp/serve.err" >&2; exit 1; }

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
# One call's wall time in ms.
timed() {  # port, command...
  local port=$1; shift
  local t0=$EPOCHREALTIME
  TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$port" "$@" >/dev/null 2>"$tmp/err" || { echo "FAILED: $* on port $port" >&2; cat "$tmp/err" >&2; exit 1; }
  awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.3f\n", (b - a) * 1000}'
}
for tool in getrandom pcrread; do
  case $tool in
    getrandom) cmd=(tpm2_getrandom 16) ;;
    pcrread) cmd=(tpm2_pcrread sha256:0,1,2) ;;
  esac
  : >"$tmp/$tool.direct"; : >"$tmp/$tool.serve"
  for ((i = 0; i < n; i++)); do
    timed "$direct" "${cmd[@]}" >>"$tmp/$tool.direct" || exit 1
    timed "$served" "${cmd[@]}" >>"$tmp/$tool.serve" || exit 1
  done
  d=$(median <"$tmp/$tool.direct") s=$(median <"$tmp/$tool.serve")
  awk -v t="tpm2_$tool" -v n="$n" -v d="$d" -v s="$s" \
    'BEGIN {printf "%-16s n=%d  direct swtpm %.2f ms  through tpmlab serve %.2f ms  ratio %.2f\n", t, n, d, s, s / d}'
done

kill -INT "$serve_pid"; wait "$serve_pid"; serve_pid=""
grep '^tpmlab serve: stopped' "$tmp/serve.out"
