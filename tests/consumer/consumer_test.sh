#!/usr/bin/env bash
# An installed tpmlab as a project outside it meets it. Installs the tpmlab
# built in BUILD_DIR (components cli and devel, stripped) into a temporary
# prefix, then:
#  1. configures, builds and runs tests/consumer (find_package(tpmlab),
#     tpmlab::eventlog) on a log written here, and checks the PCRs it prints
#     against an independent replay in Python;
#  2. compiles the same main.cc with `pkg-config --cflags --libs tpmlab` and
#     checks it prints the same;
#  3. checks the installed tpmlab command runs and that no path of the source
#     tree is compiled into it (strings).
#   consumer_test.sh BUILD_DIR SOURCE_DIR CMAKE CXX "CXX_FLAGS"
# CXX and CXX_FLAGS are the build's own (a sanitizer build's libraries need
# the consumer built with the same -fsanitize flags).
set -uo pipefail
build=$1
src=$(cd "$2" && pwd)
cmake=$3
cxx=$4
cxx_flags=${5:-}
tmp=$(mktemp -d /tmp/tpmlab-consumer-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0
source "$src/tests/cli/lib.sh"
prefix="$tmp/prefix"

for component in cli devel; do
  expect_exit 0 "cmake --install --component $component" \
    "$cmake" --install "$build" --prefix "$prefix" --component "$component" --strip
done
[[ -f $(echo "$prefix"/lib*/cmake/tpmlab/tpmlabConfig.cmake) ]] || fail "no tpmlabConfig.cmake under $prefix/lib*/cmake/tpmlab"
[[ -f $(echo "$prefix"/lib*/cmake/tpmlab/tpmlabConfigVersion.cmake) ]] || fail "no tpmlabConfigVersion.cmake"
[[ -f "$prefix/include/tpmlab/harness/eventlog.h" ]] || fail "no include/tpmlab/harness/eventlog.h"
[[ -f "$prefix/include/tpmlab/harness/version.h" ]] || fail "no include/tpmlab/harness/version.h (generated)"
[[ -f "$prefix/include/tpmlab/drivers/status.h" ]] || fail "no include/tpmlab/drivers/status.h"
[[ -f "$prefix/share/tpmlab/firmware/baseline.yaml" ]] || fail "no stock firmware models in share/tpmlab/firmware"
grep -q 'INTERFACE_INCLUDE_DIRECTORIES "${_IMPORT_PREFIX}/include/tpmlab"' "$prefix"/lib*/cmake/tpmlab/tpmlabTargets.cmake ||
  fail "the imported targets' include directory is not include/tpmlab"

# A short crypto-agile log (sha1 and sha256), and the PCRs an independent
# replay gives: PCR0 from StartupLocality 3, PCR4 and PCR7 from zero.
/usr/bin/python3 - "$tmp" <<'PY' || fail "writing the test log"
import hashlib, struct, sys
out = sys.argv[1]
BANKS = [(0x0004, hashlib.sha1, "sha1"), (0x000B, hashlib.sha256, "sha256")]
def spec_id():
    body = b"Spec ID Event03\0" + struct.pack("<IBBBBI", 0, 0, 2, 0, 2, len(BANKS))
    body += b"".join(struct.pack("<HH", alg, h().digest_size) for alg, h, _ in BANKS) + b"\0"
    return struct.pack("<II", 0, 3) + bytes(20) + struct.pack("<I", len(body)) + body
def event(pcr, etype, data):
    digests = b"".join(struct.pack("<H", alg) + h(data).digest() for alg, h, _ in BANKS)
    return struct.pack("<III", pcr, etype, len(BANKS)) + digests + struct.pack("<I", len(data)) + data
def no_action(pcr, data):  # EV_NO_ACTION: zero digests, never extended
    digests = b"".join(struct.pack("<H", alg) + bytes(h().digest_size) for alg, h, _ in BANKS)
    return struct.pack("<III", pcr, 3, len(BANKS)) + digests + struct.pack("<I", len(data)) + data
events = [(0, 0x80000008, b"firmware blob"), (4, 0x80000003, b"bootx64.efi"), (7, 0x80000001, b"SecureBoot=1"),
          (0, 4, bytes(4)), (4, 4, bytes(4)), (7, 4, bytes(4))]
log = spec_id() + no_action(0, b"StartupLocality\0\x03")
log += b"".join(event(*e) for e in events)
open(out + "/boot.bin", "wb").write(log)
lines = ["tpmlab 0.1.0", "format crypto-agile, %d events" % (len(events) + 1)]
for _, h, name in sorted(BANKS, key=lambda b: b[0]):
    pcrs = {0: bytes(h().digest_size - 1) + b"\x03", 4: bytes(h().digest_size), 7: bytes(h().digest_size)}
    for pcr, _, data in events:
        pcrs[pcr] = h(pcrs[pcr] + h(data).digest()).digest()
    lines += ["%s pcr%d %s" % (name, pcr, pcrs[pcr].hex()) for pcr in sorted(pcrs)]
open(out + "/expected.txt", "w").write("\n".join(lines) + "\n")
PY
# The version line comes from project(VERSION), not a copy of it.
version=$(sed -n 's/^project(tpmlab VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
sed -i "1s/.*/tpmlab $version/" "$tmp/expected.txt"

# 1. find_package(tpmlab) against the prefix, and nothing else.
expect_exit 0 "configure the consumer with find_package(tpmlab)" \
  "$cmake" -S "$src/tests/consumer" -B "$tmp/consumer" -G Ninja "-DCMAKE_PREFIX_PATH=$prefix" \
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF "-DCMAKE_CXX_COMPILER=$cxx" "-DCMAKE_CXX_FLAGS=$cxx_flags"
grep -q "tpmlab_DIR:PATH=$prefix/" "$tmp/consumer/CMakeCache.txt" || fail "tpmlab was not found in the install prefix"
expect_exit 0 "build the consumer" "$cmake" --build "$tmp/consumer"
expect_exit 0 "the consumer parses and replays a log" "$tmp/consumer/replay_log" "$tmp/boot.bin"
if diff -u "$tmp/expected.txt" "$tmp/stdout" >"$tmp/diff"; then
  echo "ok: the consumer's replay matches an independent one"
else
  fail "the consumer's replay differs"; sed 's/^/  | /' "$tmp/diff"
fi
expect_exit 2 "the consumer reports a broken log" "$tmp/consumer/replay_log" "$src/CMakeLists.txt"

# 2. pkg-config.
export PKG_CONFIG_PATH
PKG_CONFIG_PATH=$(echo "$prefix"/lib*/pkgconfig)
expect_exit 0 "pkg-config --cflags --libs tpmlab" pkg-config --cflags --libs tpmlab
flags=$(cat "$tmp/stdout")
# The .pc file is relocatable (${pcfiledir}/../..), so compare resolved paths.
include_ok=false
for flag in $flags; do
  [[ $flag == -I* && $(realpath -m "${flag#-I}") == "$(realpath -m "$prefix/include/tpmlab")" ]] && include_ok=true
done
$include_ok || fail "pkg-config --cflags lacks -I$prefix/include/tpmlab: $flags"
# shellcheck disable=SC2086  # the flags are words
expect_exit 0 "compile the consumer with pkg-config's flags" \
  "$cxx" $cxx_flags "$src/tests/consumer/main.cc" -o "$tmp/replay_log_pc" $flags
expect_exit 0 "the pkg-config build replays the log" "$tmp/replay_log_pc" "$tmp/boot.bin"
diff -q "$tmp/expected.txt" "$tmp/stdout" >/dev/null || fail "the pkg-config build prints something else"

# 3. The installed command.
expect_exit 0 "the installed tpmlab --version" "$prefix/bin/tpmlab" --version
grep -q "^tpmlab $version" "$tmp/stdout" || fail "--version does not say tpmlab $version"
expect_exit 0 "the installed tpmlab replays the log" "$prefix/bin/tpmlab" eventlog replay "$tmp/boot.bin"
if strings "$prefix/bin/tpmlab" | grep -F "$src" >"$tmp/paths"; then
  fail "the installed tpmlab names the source tree"; sed 's/^/  | /' "$tmp/paths" | head -5
else
  echo "ok: the installed tpmlab names no path of the source tree"
fi

if [[ $failures -ne 0 ]]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "all consumer checks passed"
