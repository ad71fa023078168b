#!/usr/bin/env bash
# tpm2tools_cycle.sh: the benchmark cycle the way labs script it today, one
# tpm2-tools / swtpm_ioctl process per step, against a running swtpm
# (data port P, ctrl port P+1).
#
#   tpm2tools_cycle.sh --port P --cycles N [--ak rsa|ecc]
#
# Setup: Startup(CLEAR), EK persisted at 0x81010001, AK (EK child) persisted at
# 0x81010002, AK public key exported as PEM.
# Cycle: swtpm_ioctl -i (unorderly power loss, no Shutdown) -> tpm2_startup -c
# -> tpm2_pcrread (all banks) -> tpm2_pcrextend x8 (PCRs 0-7, all banks each)
# -> tpm2_quote sha256:0-23 with a fresh nonce -> tpm2_checkquote.
# Final line: tpm2tools cycles=N seconds=S cycles_per_s=X ak=rsa|ecc
# Exits 1 if any command fails.
set -euo pipefail
export LC_ALL=C   # EPOCHREALTIME and awk must agree on the decimal point

usage() { echo "usage: $0 --port P --cycles N [--ak rsa|ecc]" >&2; exit 1; }
port="" cycles="" ak=rsa
while [[ $# -gt 0 ]]; do
    case "$1" in
        --port) port="${2:-}"; shift 2 ;;
        --cycles) cycles="${2:-}"; shift 2 ;;
        --ak) ak="${2:-}"; shift 2 ;;
        -h|--help) usage ;;
        *) echo "unknown argument: $1" >&2; usage ;;
    esac
done
[[ "$port" =~ ^[0-9]+$ && "$cycles" =~ ^[0-9]+$ && "$cycles" -gt 0 ]] || usage
case "$ak" in
    rsa) sign=rsassa ;;
    ecc) sign=ecdsa ;;
    *) usage ;;
esac

export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$port"
ctrl="127.0.0.1:$((port + 1))"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# Runs a command quietly; on failure shows its output and exits 1.
run() {
    if ! "$@" >"$work/out" 2>&1; then
        echo "tpm2tools_cycle: FAILED: $*" >&2
        cat "$work/out" >&2
        exit 1
    fi
}

# ---- setup (not timed) ----
run tpm2_startup -c
# Re-runnable on a used state: evict an EK/AK left at our handles.
run tpm2_getcap handles-persistent
cp "$work/out" persistent.txt
for h in 0x81010001 0x81010002; do
    if grep -qi -- "- $h\$" persistent.txt; then
        run tpm2_evictcontrol -C o -c "$h"
    fi
done
run tpm2_createek -c 0x81010001 -G "$ak" -u ek.pub
# tpm2_createak has no attribute option, so the AK is DA-protected and each
# unorderly power loss after a quote would count as a DA failure (lockout after
# 3 with the default maxTries). Recovery time 0 disables DA counting; set it once.
run tpm2_dictionarylockout -s -n 1000 -t 0 -l 0
run tpm2_createak -C 0x81010001 -c ak.ctx -G "$ak" -g sha256 -s "$sign" -u ak.pub -n ak.name
run tpm2_evictcontrol -C o -c ak.ctx 0x81010002
run tpm2_flushcontext -t   # no resource manager: transients would leak (3 slots)
run tpm2_readpublic -c 0x81010002 -f pem -o ak.pem

# Allocated banks, from the "  - sha256: [ 0, 1, ... ]" lines of tpm2_getcap pcrs.
run tpm2_getcap pcrs
banks=()
while read -r dash alg rest; do
    [[ "$dash" == "-" && "$rest" =~ [0-9] ]] && banks+=("${alg%:}")
done <"$work/out"
[[ ${#banks[@]} -gt 0 ]] || { echo "tpm2tools_cycle: no allocated PCR banks" >&2; exit 1; }

# One extend argument per PCR: "i:alg=<hex>,alg=<hex>,..." with a fixed digest per bank.
declare -A hexlen=([sha1]=40 [sha256]=64 [sha384]=96 [sha512]=128 [sm3_256]=64)
extend_args=()
for i in 0 1 2 3 4 5 6 7; do
    spec=""
    for b in "${banks[@]}"; do
        n=${hexlen[$b]:-}
        [[ -n "$n" ]] || { echo "tpm2tools_cycle: unknown bank $b" >&2; exit 1; }
        printf -v d "%0${n}d" 0; d=${d//0/a$i}; d=${d:0:n}
        spec+="${spec:+,}$b=$d"
    done
    extend_args+=("$i:$spec")
done
pcrs_0_23=$(seq -s, 0 23)

# ---- cycles (timed) ----
t0=$EPOCHREALTIME
for ((c = 0; c < cycles; c++)); do
    run swtpm_ioctl --tcp "$ctrl" -i
    run tpm2_startup -c
    run tpm2_pcrread
    for arg in "${extend_args[@]}"; do
        run tpm2_pcrextend "$arg"
    done
    # Fresh 32-byte nonce without forking: 8 x 32-bit SRANDOM (bash >= 5.1, getrandom()).
    printf -v nonce '%08x%08x%08x%08x%08x%08x%08x%08x' $SRANDOM $SRANDOM $SRANDOM $SRANDOM \
        $SRANDOM $SRANDOM $SRANDOM $SRANDOM
    run tpm2_quote -c 0x81010002 -l "sha256:$pcrs_0_23" -q "$nonce" -m q.msg -s q.sig -o q.pcrs -g sha256
    run tpm2_checkquote -u ak.pem -m q.msg -s q.sig -f q.pcrs -g sha256 -q "$nonce"
done
t1=$EPOCHREALTIME

awk -v n="$cycles" -v t0="$t0" -v t1="$t1" -v ak="$ak" 'BEGIN {
    s = t1 - t0; printf "tpm2tools cycles=%d seconds=%.3f cycles_per_s=%.2f ak=%s\n", n, s, n / s, ak }'
