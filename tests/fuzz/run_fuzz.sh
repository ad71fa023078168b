#!/usr/bin/env bash
# Fuzzes the event log parser, replay, checks, decoders and writer for
# SECONDS (default 30): builds tests/fuzz with clang, libFuzzer, ASan and
# UBSan in BUILD_DIR (default out/build/fuzz), seeds a corpus from
# ../shared/fixtures/eventlogs when present plus a few logs written here,
# and runs. Exit 0 when nothing crashed; a crash leaves its input in
# BUILD_DIR/artifacts/ (replay it: BUILD_DIR/tests/fuzz/eventlog_fuzz FILE).
# Exit 77 (skipped) when clang is not installed.
#   tests/fuzz/run_fuzz.sh [SECONDS] [BUILD_DIR]
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${1:-30}
build=${2:-$src/out/build/fuzz}

# clang without its libFuzzer runtime (libclang-rt-NN-dev) cannot link a fuzzer.
probe='extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }'
if ! command -v clang >/dev/null ||
   ! echo "$probe" | clang++ -x c++ -fsanitize=fuzzer - -o /dev/null 2>/dev/null; then
  echo "run_fuzz.sh: clang with libFuzzer not found (apt install clang libclang-rt-dev); skipped"
  exit 77
fi

# Warnings are not errors here: a clang-only warning elsewhere must not
# stop the fuzzer. UBSan aborts instead of printing, so libFuzzer sees it.
flags="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
CC=clang CXX=clang++ cmake -S "$src" -B "$build" -G Ninja -DBUILD_TESTING=OFF -DTPMLAB_FUZZ=ON \
  -DTPMLAB_WARNINGS_AS_ERRORS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_C_FLAGS=$flags" "-DCMAKE_CXX_FLAGS=$flags" >"$build.configure.log" 2>&1 ||
  { cat "$build.configure.log"; exit 1; }
cmake --build "$build" --target eventlog_fuzz

corpus="$build/corpus"
mkdir -p "$corpus" "$build/artifacts"
fixtures="$src/../shared/fixtures/eventlogs"
if [[ -d "$fixtures" ]]; then
  cp "$fixtures"/*.bin "$corpus"/ 2>/dev/null || true
fi
# Small logs of each shape, so the fuzzer starts inside every decoder.
python3 - "$corpus" <<'PY'
import hashlib, struct, sys
out = sys.argv[1]
def spec(banks):
    body = b"Spec ID Event03\0" + struct.pack("<IBBBBI", 0, 0, 2, 0, 2, len(banks))
    body += b"".join(struct.pack("<HH", a, s) for a, s in banks) + b"\0"
    return struct.pack("<II", 0, 3) + bytes(20) + struct.pack("<I", len(body)) + body
def ev(pcr, t, data, banks):
    d = b"".join(struct.pack("<H", a) + hashlib.sha256(data).digest()[:s] for a, s in banks)
    return struct.pack("<III", pcr, t, len(banks)) + d + struct.pack("<I", len(data)) + data
def var(name, data):
    guid = bytes.fromhex("61dfe48bca93d211aa0d00e098032b8c")
    return guid + struct.pack("<QQ", len(name), len(data)) + name.encode("utf-16-le") + data
banks = [(4, 20), (11, 32)]
dp = bytes([2, 1, 12, 0]) + struct.pack("<II", 0x0A0341D0, 0) + bytes([4, 4, 14, 0]) + "\\a.efi\0".encode("utf-16-le")[:10] + bytes([0x7F, 0xFF, 4, 0])
gpt = b"EFI PART" + bytes(76) + struct.pack("<II", 128, 0) + struct.pack("<Q", 1) + bytes(56) + "ESP".encode("utf-16-le") + bytes(66)
events = [
    ev(0, 3, b"StartupLocality\0\x03", banks),
    ev(0, 8, "1.0\0".encode("utf-16-le"), banks),
    ev(0, 0x80000008, struct.pack("<QQ", 0xFF000000, 0x10000), banks),
    ev(7, 0x80000001, var("SecureBoot", b"\x01"), banks),
    ev(1, 0x80000002, var("Boot0001", struct.pack("<IH", 1, len(dp)) + "x\0".encode("utf-16-le") + dp), banks),
    ev(4, 0x80000003, struct.pack("<QQQQ", 0, 0, 0, len(dp)) + dp, banks),
    ev(5, 0x80000006, gpt, banks),
    ev(1, 0x80000009, struct.pack("<Q", 1) + bytes(16) + struct.pack("<Q", 0x1000), banks),
    ev(9, 6, struct.pack("<II", 0x8F3B22ED, 3) + b"ab\0", banks),
    ev(4, 4, bytes(4), banks),
    ev(5, 0x80000007, b"Exit Boot Services Invocation", banks),
]
open(f"{out}/written-agile.bin", "wb").write(spec(banks) + b"".join(events))
sha1 = b"".join(struct.pack("<II", p, t) + hashlib.sha1(d).digest() + struct.pack("<I", len(d)) + d
                for p, t, d in [(0, 8, b"v\0"), (4, 4, bytes(4)), (12, 4, b"WBCL")])
open(f"{out}/written-sha1.bin", "wb").write(sha1)
open(f"{out}/written-spec-only.bin", "wb").write(spec([(11, 32), (12, 48), (13, 64), (0x12, 32)]))
PY

echo "run_fuzz.sh: fuzzing for ${seconds}s, corpus $corpus"
"$build/tests/fuzz/eventlog_fuzz" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$build/artifacts/" "$corpus"
