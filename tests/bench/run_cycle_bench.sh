#!/usr/bin/env bash
# run_cycle_bench.sh: side-by-side cycle benchmark.
#
#   run_cycle_bench.sh --build-dir DIR [--runs R] [--cycles N] [--shell-cycles M]
#                      [--ak rsa|ecc] [--pin CPU] [--enforce]
#
# Contenders, interleaved a b c within every run so machine noise hits all:
#   (a) DIR/tests/bench/tpmlab_cycle --cycles N --ak A  (launches its own swtpm)
#   (b) esapi_floor on a fresh swtpm started here        (N cycles)
#   (c) tpm2tools_cycle.sh on a fresh swtpm started here  (M cycles)
# Prints the median cycles/s (min-max over runs) per contender, the ratios of
# medians (a)/(b) and (a)/(c), and the targets (a)/(b) >= 0.9, (a)/(c) >= 15.
# stdout carries only the summary unless it is a terminal (then also one
# progress line per run). Errors go to stderr.
# --pin CPU runs every contender and its swtpm on that one CPU (taskset), the
# same pinning for all: a round trip then costs ~19 µs instead of ~95 µs.
# Exit: 0 ok; 1 a contender or swtpm failed; 2 a target MISSed with --enforce.
set -uo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
usage() {
    echo "usage: $0 --build-dir DIR [--runs R] [--cycles N] [--shell-cycles M] [--ak rsa|ecc] [--pin CPU] [--enforce]" >&2
    exit 1
}

build="" runs=5 cycles=200 shell_cycles=20 ak=rsa enforce=0 pin=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --build-dir) build="${2:-}"; shift 2 ;;
        --runs) runs="${2:-}"; shift 2 ;;
        --cycles) cycles="${2:-}"; shift 2 ;;
        --shell-cycles) shell_cycles="${2:-}"; shift 2 ;;
        --ak) ak="${2:-}"; shift 2 ;;
        --enforce) enforce=1; shift ;;
        --pin) pin=(taskset -c "${2:-}"); shift 2 ;;
        -h|--help) usage ;;
        *) echo "unknown argument: $1" >&2; usage ;;
    esac
done
[[ -n "$build" && -d "$build" ]] || { echo "--build-dir DIR must exist" >&2; usage; }
for v in "$runs" "$cycles" "$shell_cycles"; do
    [[ "$v" =~ ^[1-9][0-9]*$ ]] || usage
done
[[ "$ak" == rsa || "$ak" == ecc ]] || usage

tpmlab="$build/tests/bench/tpmlab_cycle"
floor="$build/tests/bench/esapi_floor"
[[ -x "$floor" ]] || floor="$build/esapi_floor"   # standalone build of tests/bench
[[ -x "$floor" ]] || { echo "esapi_floor not found under $build" >&2; exit 1; }
shell_cycle="$here/tpm2tools_cycle.sh"
for tool in swtpm swtpm_ioctl ss tpm2_quote; do
    command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 1; }
done
tty=0; [[ -t 1 ]] && tty=1

# ---- swtpm lifecycle (one fresh instance per contender and run) ----
sw_pid="" sw_dir="" sw_port=""

port_pair_free() {  # $1 = P; both P and P+1 must have no listener
    [[ -z "$(ss -Hltn "( sport = :$1 or sport = :$(($1 + 1)) )")" ]]
}

start_swtpm() {
    local attempt p
    for attempt in 1 2 3 4 5 6 7 8; do
        p=$((20000 + (SRANDOM % 20000) * 2))
        port_pair_free "$p" || continue
        sw_dir=$(mktemp -d "${TMPDIR:-/tmp}/cyclebench.XXXXXX")
        # -d returns once both sockets listen and the pid file is written.
        if "${pin[@]}" swtpm socket --tpm2 --tpmstate dir="$sw_dir" \
                --server type=tcp,port="$p",bindaddr=127.0.0.1 \
                --ctrl type=tcp,port=$((p + 1)),bindaddr=127.0.0.1 \
                --flags not-need-init --locality allow-set-locality \
                -d --pid file="$sw_dir/pid" --log file="$sw_dir/log" 2>"$sw_dir/err" &&
            [[ -s "$sw_dir/pid" ]]; then
            sw_pid=$(<"$sw_dir/pid") sw_port=$p
            return 0
        fi
        rm -rf "$sw_dir"; sw_dir=""   # lost a port race (or similar): next pair
        [[ $attempt -ge 8 ]] || sleep 0.05
    done
    echo "could not start swtpm after 8 attempts" >&2
    return 1
}

stop_swtpm() {
    if [[ -n "$sw_pid" ]]; then
        kill "$sw_pid" 2>/dev/null
        # Not our child (-d daemonised), so poll instead of wait; SIGKILL after 2 s.
        local i
        for ((i = 0; i < 200; i++)); do
            kill -0 "$sw_pid" 2>/dev/null || break
            sleep 0.01
        done
        kill -0 "$sw_pid" 2>/dev/null && kill -9 "$sw_pid" 2>/dev/null
    fi
    [[ -n "$sw_dir" ]] && rm -rf "$sw_dir"
    sw_pid="" sw_dir="" sw_port=""
}

errlog=$(mktemp "${TMPDIR:-/tmp}/cyclebench-err.XXXXXX")
trap 'stop_swtpm; rm -f "$errlog"' EXIT
trap 'exit 130' INT TERM

# ---- contenders ----
# Results go through the global $result (no $(...) around these functions, so
# the swtpm pid stays visible to the EXIT trap).
failures=0 result=""
declare -a res_a=() res_b=() res_c=()

# run_contender LABEL PREFIX CMD...: runs CMD and sets result to cycles_per_s
# from its line starting with PREFIX; on failure reports to stderr, result=FAIL.
run_contender() {
    local label=$1 prefix=$2 out rc line
    shift 2
    out=$("${pin[@]}" "$@" 2>"$errlog"); rc=$?
    line=$(grep -m1 "^$prefix " <<<"$out")
    if [[ $rc -eq 0 && "$line" =~ cycles_per_s=([0-9.]+) ]]; then
        result=${BASH_REMATCH[1]}
        return 0
    fi
    {
        echo "run $run: $label failed (exit $rc): $*"
        tail -n 20 "$errlog"
        [[ -z "$out" ]] || tail -n 5 <<<"$out"
    } >&2
    failures=$((failures + 1)) result=FAIL
    return 1
}

# on_fresh_swtpm LABEL PREFIX CMD ARGS...: runs CMD --port P ARGS... on a fresh swtpm.
on_fresh_swtpm() {
    local label=$1 prefix=$2 rc
    shift 2
    if ! start_swtpm; then
        failures=$((failures + 1)) result=FAIL
        return 1
    fi
    run_contender "$label" "$prefix" "$1" --port "$sw_port" "${@:2}"; rc=$?
    stop_swtpm
    return $rc
}

for ((run = 1; run <= runs; run++)); do
    a="-"
    if [[ -x "$tpmlab" ]]; then
        run_contender "(a) tpmlab_cycle" tpmlab_cycle "$tpmlab" --cycles "$cycles" --ak "$ak" &&
            res_a+=("$result")
        a=$result
    fi
    on_fresh_swtpm "(b) esapi_floor" esapi_floor "$floor" --cycles "$cycles" --ak "$ak" &&
        res_b+=("$result")
    b=$result
    on_fresh_swtpm "(c) tpm2tools_cycle.sh" tpm2tools "$shell_cycle" --cycles "$shell_cycles" --ak "$ak" &&
        res_c+=("$result")
    c=$result
    [[ $tty -eq 0 ]] || echo "run $run/$runs: (a) $a  (b) $b  (c) $c cycles/s"
done

# ---- summary ----
stats() {  # values... -> "median min max" (or "-" when empty)
    [[ $# -gt 0 ]] || { echo "-"; return; }
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.2f %.2f %.2f\n", m, v[1], v[NR] }'
}
row() {  # label stats-line
    local label=$1 m lo hi
    read -r m lo hi <<<"$2"
    if [[ "$m" == "-" ]]; then
        printf '%-26s %14s\n' "$label" "no result"
    else
        printf '%-26s %14.1f   %.1f-%.1f\n' "$label" "$m" "$lo" "$hi"
    fi
}
missed=0
ratio() {  # label num-median den-median target
    local label=$1 num=$2 den=$3 target=$4 r verdict
    if [[ "$num" == "-" || "$den" == "-" ]]; then
        printf '%-10s %8s   target >= %-4s  n/a\n' "$label" "-" "$target"
        return
    fi
    r=$(awk -v n="$num" -v d="$den" 'BEGIN { printf "%.2f", n / d }')
    if awk -v r="$r" -v t="$target" 'BEGIN { exit !(r >= t) }'; then verdict=PASS
    else verdict=MISS; missed=1; fi
    printf '%-10s %8s   target >= %-4s  %s\n' "$label" "$r" "$target" "$verdict"
}

sa=$(stats "${res_a[@]}") sb=$(stats "${res_b[@]}") sc=$(stats "${res_c[@]}")
ma=${sa%% *} mb=${sb%% *} mc=${sc%% *}
echo "cycle bench: ak=$ak runs=$runs cycles=$cycles shell-cycles=$shell_cycles pin=${pin[*]:-none}"
printf '%-26s %14s   %s\n' "contender" "median cyc/s" "min-max"
if [[ -x "$tpmlab" ]]; then row "(a) tpmlab_cycle" "$sa"; else echo "(a) tpmlab: not built"; fi
row "(b) esapi_floor" "$sb"
row "(c) tpm2-tools shell" "$sc"
ratio "(a)/(b)" "$ma" "$mb" 0.9
ratio "(a)/(c)" "$ma" "$mc" 15
[[ $failures -eq 0 ]] || echo "failures: $failures (details on stderr)"

[[ $failures -eq 0 ]] || exit 1
[[ $enforce -eq 1 && $missed -eq 1 ]] && exit 2
exit 0
