#!/usr/bin/env bash
# run_eventlog_bench.sh: event log parse + replay, tpmlab beside tpm2_eventlog.
#
#   run_eventlog_bench.sh --build-dir DIR [--runs R] [--events N] [--repeat K]
#                         [--fixtures DIR] [--tpmlab PATH] [--enforce]
#
# --tpmlab PATH times that tpmlab binary instead of DIR/harness/cli/tpmlab
# (another build of the CLI, say).
# Generates an N-event crypto-agile log (sha1+sha256, default 100,000, about
# 10.2 MB) with DIR/tests/bench/eventlog_bench into a temporary folder, then,
# R runs (default 5), interleaved within every run (the order of the two tools
# flips from run to run) so machine noise hits both:
#   - whole commands, stdout to /dev/null, on the generated log:
#       DIR/harness/cli/tpmlab eventlog replay FILE --json   and   tpm2_eventlog FILE
#   - the same on the fixture corpus (FIXTURES/*.bin, one command per file,
#     summed); a file either tool crashes on (killed by a signal) is left out
#     for both, and the summary names it; skipped when there is no corpus
#   - eventlog_bench time --repeat K on the generated log and on the corpus
#     (every fixture tpmlab parses): in-process read+parse, replay, and the
#     bare hashing of the same extends
# Prints medians (min-max over runs; the in-process figures are medians of
# the per-run medians), the ratios and the targets:
#   tpm2_eventlog / tpmlab on the generated log, whole command  >= 20
#   in-process replay / bare hashing                            <= 2
# stdout carries only the summary unless it is a terminal (then also one
# progress line per run). Errors go to stderr.
# Exit: 0 ok; 1 a command failed or set-up failed; 2 a target MISSed with --enforce.
set -uo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
usage() {
    echo "usage: $0 --build-dir DIR [--runs R] [--events N] [--repeat K] [--fixtures DIR] [--tpmlab PATH] [--enforce]" >&2
    exit 1
}

build="" runs=5 events=100000 repeat=5 enforce=0 tpmlab=""
fixtures="$here/../../../shared/fixtures/eventlogs"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --build-dir) build="${2:-}"; shift 2 ;;
        --runs) runs="${2:-}"; shift 2 ;;
        --events) events="${2:-}"; shift 2 ;;
        --repeat) repeat="${2:-}"; shift 2 ;;
        --fixtures) fixtures="${2:-}"; shift 2 ;;
        --tpmlab) tpmlab="${2:-}"; shift 2 ;;
        --enforce) enforce=1; shift ;;
        -h|--help) usage ;;
        *) echo "unknown argument: $1" >&2; usage ;;
    esac
done
[[ -n "$build" && -d "$build" ]] || { echo "--build-dir DIR must exist" >&2; usage; }
for v in "$runs" "$events" "$repeat"; do
    [[ "$v" =~ ^[1-9][0-9]*$ ]] || usage
done

[[ -n "$tpmlab" ]] || tpmlab="$build/harness/cli/tpmlab"
bench="$build/tests/bench/eventlog_bench"
[[ -x "$tpmlab" ]] || { echo "tpmlab not found: $tpmlab" >&2; exit 1; }
[[ -x "$bench" ]] || { echo "eventlog_bench not found: $bench (build target bench_eventlog)" >&2; exit 1; }
command -v tpm2_eventlog >/dev/null || { echo "missing tool: tpm2_eventlog (tpm2-tools)" >&2; exit 1; }
tty=0; [[ -t 1 ]] && tty=1

tmp=$(mktemp -d "${TMPDIR:-/tmp}/eventlogbench.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
errlog="$tmp/err"

# ---- timing: bash's EPOCHREALTIME (no fork), else date ----
now_us() {  # sets now to microseconds
    if [[ -n "${EPOCHREALTIME:-}" ]]; then
        now=${EPOCHREALTIME/./}
    else
        now=$(($(date +%s%N) / 1000))
    fi
}
# timed CMD...: runs CMD with stdout to /dev/null, stderr to $errlog; sets
# elapsed (µs) and rc.
timed() {
    local t0
    now_us; t0=$now
    "$@" >/dev/null 2>"$errlog"; rc=$?
    now_us; elapsed=$((now - t0))
}

# ---- set-up (untimed) ----
log="$tmp/eventlog-${events}.bin"
gen=$("$bench" generate "$log" --events "$events" --banks sha1,sha256 2>"$errlog") || {
    echo "eventlog_bench generate failed:" >&2; cat "$errlog" >&2; exit 1; }
log_bytes=$(sed -n 's/.* bytes=\([0-9]*\).*/\1/p' <<<"$gen")

failures=0
fail() { echo "run ${run:-0}: $*" >&2; [[ -s "$errlog" ]] && tail -n 5 "$errlog" >&2; failures=$((failures + 1)); }

# Both tools must succeed on the generated log, and should agree on its PCRs.
agree="no"
if tpm2_eventlog "$log" >"$tmp/tel.yaml" 2>"$errlog" &&
   "$tpmlab" eventlog replay "$log" >"$tmp/tpmlab.txt" 2>>"$errlog"; then
    awk '/^pcrs:/ { p = 1; next }
         p && /^  [a-z0-9_]+:$/ { bank = $1; sub(":", "", bank); next }
         p && /^    [0-9]+ *:/ { gsub(" ", ""); split($0, a, ":"); print bank ":" a[1] " " substr(a[2], 3) }' \
        "$tmp/tel.yaml" | sort >"$tmp/tel.pcrs"
    sed -n 's/^ *\([a-z0-9_]*:[0-9]* [0-9a-f]*\)$/\1/p' "$tmp/tpmlab.txt" | sort >"$tmp/tpmlab.pcrs"
    [[ -s "$tmp/tel.pcrs" ]] && cmp -s "$tmp/tel.pcrs" "$tmp/tpmlab.pcrs" && agree="yes"
else
    echo "a tool failed on the generated log:" >&2; cat "$errlog" >&2; exit 1
fi
rm -f "$tmp/tel.yaml"

# The corpus: files neither tool crashes on; each file's exit codes are
# remembered (a malformed fixture is an error exit for either tool, and still
# timed) and must not change from run to run.
corpus=() crashed=()
declare -A rc_tpmlab=() rc_tel=()
if compgen -G "$fixtures/*.bin" >/dev/null; then
    for f in "$fixtures"/*.bin; do
        # (grouped with stderr closed: bash's own "Segmentation fault" report too)
        { "$tpmlab" eventlog replay "$f" --json >/dev/null 2>&1; } 2>/dev/null; a=$?
        { tpm2_eventlog "$f" >/dev/null 2>&1; } 2>/dev/null; b=$?
        if [[ $a -ge 128 || $b -ge 128 ]]; then
            who=""; [[ $b -ge 128 ]] && who="tpm2_eventlog"; [[ $a -ge 128 ]] && who="${who:+$who+}tpmlab"
            crashed+=("$(basename "$f") ($who, signal $(( (b >= 128 ? b : a) - 128 )))")
            continue
        fi
        corpus+=("$f"); rc_tpmlab[$f]=$a; rc_tel[$f]=$b
    done
fi

# ---- runs ----
declare -a w_tpmlab=() w_tel=() c_tpmlab=() c_tel=()
declare -a big_parse=() big_replay=() big_cpu=() big_bare=() big_ratio=()
declare -a cor_parse=() cor_replay=() cor_cpu=() cor_bare=() cor_ratio=()

ms() { awk -v u="$1" 'BEGIN { printf "%.3f", u / 1000 }'; }

whole_tpmlab() {
    timed "$tpmlab" eventlog replay "$log" --json
    if [[ $rc -eq 0 ]]; then w_tpmlab+=("$(ms $elapsed)"); else fail "tpmlab on the generated log: exit $rc"; fi
}
whole_tel() {
    timed tpm2_eventlog "$log"
    if [[ $rc -eq 0 ]]; then w_tel+=("$(ms $elapsed)"); else fail "tpm2_eventlog on the generated log: exit $rc"; fi
}
corpus_tpmlab() {
    local f sum=0 ok=1
    for f in "${corpus[@]}"; do
        timed "$tpmlab" eventlog replay "$f" --json
        sum=$((sum + elapsed))
        [[ $rc -eq ${rc_tpmlab[$f]} ]] || { fail "tpmlab on $f: exit $rc, was ${rc_tpmlab[$f]}"; ok=0; }
    done
    [[ $ok -eq 1 ]] && c_tpmlab+=("$(ms $sum)")
}
corpus_tel() {
    local f sum=0 ok=1
    for f in "${corpus[@]}"; do
        timed tpm2_eventlog "$f"
        sum=$((sum + elapsed))
        [[ $rc -eq ${rc_tel[$f]} ]] || { fail "tpm2_eventlog on $f: exit $rc, was ${rc_tel[$f]}"; ok=0; }
    done
    [[ $ok -eq 1 ]] && c_tel+=("$(ms $sum)")
}
# in_process PREFIX LINE-SELECTOR FILES...: one eventlog_bench time run.
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$2"; }
in_process() {
    local which=$1 select=$2 out line
    shift 2
    out=$("$bench" time --repeat "$repeat" "$@" 2>"$errlog")
    if [[ $? -ne 0 ]]; then fail "eventlog_bench time ($which) failed or did not match the replay"; return; fi
    line=$(grep -m1 "$select" <<<"$out")
    [[ -n "$line" ]] || { fail "eventlog_bench time ($which): no result line"; return; }
    local -n p=${which}_parse r=${which}_replay c=${which}_cpu b=${which}_bare q=${which}_ratio
    p+=("$(field parse_ms "$line")"); r+=("$(field replay_ms "$line")")
    c+=("$(field replay_cpu_ms "$line")"); b+=("$(field bare_ms "$line")")
    q+=("$(field replay_over_bare "$line")")
}

last() { [[ $# -gt 0 ]] && echo "${!#}" || echo "-"; }
for ((run = 1; run <= runs; run++)); do
    if ((run % 2)); then whole_tpmlab; whole_tel; else whole_tel; whole_tpmlab; fi
    if [[ ${#corpus[@]} -gt 0 ]]; then
        if ((run % 2)); then corpus_tpmlab; corpus_tel; else corpus_tel; corpus_tpmlab; fi
    fi
    in_process big "eventlog_bench file=" "$log"
    [[ ${#corpus[@]} -gt 0 ]] && in_process cor "eventlog_bench total " "$fixtures"/*.bin
    [[ $tty -eq 0 ]] || echo "run $run/$runs: generated log tpmlab $(last "${w_tpmlab[@]}") ms," \
        "tpm2_eventlog $(last "${w_tel[@]}") ms; corpus $(last "${c_tpmlab[@]}") / $(last "${c_tel[@]}") ms;" \
        "replay/bare $(last "${big_ratio[@]}")"
done

# ---- summary ----
stats() {  # values... -> "median min max" (or "-" when empty)
    [[ $# -gt 0 ]] || { echo "-"; return; }
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.6g %.6g %.6g\n", m, v[1], v[NR] }'
}
row() {  # label values...
    local label=$1 m lo hi
    shift
    read -r m lo hi <<<"$(stats "$@")"
    if [[ "$m" == "-" ]]; then
        printf '  %-44s %10s\n' "$label" "no result"
    else
        printf '  %-44s %10.2f   %.2f-%.2f\n' "$label" "$m" "$lo" "$hi"
    fi
}
median() { local s; s=$(stats "$@"); echo "${s%% *}"; }
missed=0
ratio() {  # label value op target ("-" for none)
    local label=$1 r=$2 op=$3 target=$4 verdict
    if [[ "$r" == "-" || -z "$r" ]]; then
        printf '  %-44s %10s\n' "$label" "n/a"; return
    fi
    if [[ "$target" == "-" ]]; then
        printf '  %-44s %10.2f\n' "$label" "$r"; return
    fi
    if awk -v r="$r" -v t="$target" -v op="$op" 'BEGIN { exit !(op == ">=" ? r >= t : r <= t) }'; then
        verdict=PASS
    else
        verdict=MISS; missed=1
    fi
    printf '  %-44s %10.2f   target %s %-4s %s\n' "$label" "$r" "$op" "$target" "$verdict"
}
div() { [[ "$1" == "-" || "$2" == "-" ]] && { echo "-"; return; }; awk -v n="$1" -v d="$2" 'BEGIN { printf "%.4f", n / d }'; }

echo "eventlog bench: runs=$runs, generated log $events events sha1+sha256 ($log_bytes B), in-process repeat=$repeat"
echo "  tpmlab: $tpmlab; $(tpm2_eventlog --version 2>/dev/null | head -n 1)"
echo "  tpm2_eventlog and tpmlab agree on the generated log's PCRs: $agree"
if [[ ${#corpus[@]} -gt 0 ]]; then
    echo "  corpus: ${#corpus[@]} files from $fixtures"
    [[ ${#crashed[@]} -eq 0 ]] || echo "  left out of the corpus (a tool crashes on them): ${crashed[*]}"
else
    echo "  corpus: none ($fixtures has no *.bin)"
fi
printf '%-46s %10s   %s\n' "whole command, stdout to /dev/null" "median ms" "min-max"
row "tpmlab eventlog replay --json, generated log" "${w_tpmlab[@]}"
row "tpm2_eventlog, generated log" "${w_tel[@]}"
if [[ ${#corpus[@]} -gt 0 ]]; then
    row "tpmlab, corpus (one command per file, sum)" "${c_tpmlab[@]}"
    row "tpm2_eventlog, corpus (sum)" "${c_tel[@]}"
fi
printf '%-46s %10s   %s\n' "in process (median of per-run medians)" "ms" "min-max"
row "generated log: read + parse" "${big_parse[@]}"
row "generated log: replay (wall)" "${big_replay[@]}"
row "generated log: replay (CPU, all threads)" "${big_cpu[@]}"
row "generated log: bare hashing of the extends" "${big_bare[@]}"
if [[ ${#corpus[@]} -gt 0 ]]; then
    row "corpus total: read + parse" "${cor_parse[@]}"
    row "corpus total: replay (wall)" "${cor_replay[@]}"
    row "corpus total: bare hashing" "${cor_bare[@]}"
fi
echo "ratios (of medians)"
ratio "tpm2_eventlog / tpmlab, generated log" "$(div "$(median "${w_tel[@]}")" "$(median "${w_tpmlab[@]}")")" ">=" 20
[[ ${#corpus[@]} -gt 0 ]] &&
    ratio "tpm2_eventlog / tpmlab, corpus" "$(div "$(median "${c_tel[@]}")" "$(median "${c_tpmlab[@]}")")" ">=" -
ratio "replay / bare hashing, generated log" "$(median "${big_ratio[@]}")" "<=" 2
ratio "replay CPU / bare hashing, generated log" "$(div "$(median "${big_cpu[@]}")" "$(median "${big_bare[@]}")")" "<=" -
[[ ${#corpus[@]} -gt 0 ]] &&
    ratio "replay / bare hashing, corpus total" "$(median "${cor_ratio[@]}")" "<=" 2
[[ $failures -eq 0 ]] || echo "failures: $failures (details on stderr)"

[[ $failures -eq 0 ]] || exit 1
[[ $enforce -eq 1 && $missed -eq 1 ]] && exit 2
exit 0
