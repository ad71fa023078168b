#!/usr/bin/env bash
# `tpmlab verify` judges a quote as Keylime and go-attestation would: with the
# ENROLLED AK (not the key the evidence carries), against the PCRs and nonce
# the verifier asked for, and no quote is an alarm. Bad evidence is taken from
# two real swtpm runs (a second chip's AK is a foreign AK; one run's earlier
# quote is a replay) or made by hand: a TPMS_ATTEST signed with an OpenSSL
# key that the test also enrolls as the AK (a TPM cannot be made to sign a
# wrong qualifiedSigner, a shrunk selection on request, or with SHA-1 here).
#   verify_quote_cli_test.sh TPMLAB_BINARY SOURCE_DIR
set -uo pipefail
tpmlab=$1
src=$2
tmp=$(mktemp -d /tmp/tpmlab-verify-quote-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
py() { /usr/bin/python3 - "$@"; }

# The codes of a `verify --json` answer in $tmp/stdout must be exactly these.
expect_codes() {  # description, code...
  local what=$1; shift
  py "$tmp/stdout" "$@" <<'PY' || fail "$what"
import json, sys
v = json.load(open(sys.argv[1]))
got = sorted({a["code"] for a in v["alarms"]})
want = sorted(set(sys.argv[2:]))
if got != want:
    print("  codes", got, "expected", want)
    sys.exit(1)
PY
}

# Two chips, each booted, enrolled and quoted again (steps 0 and 2).
for chip in a b; do
  expect_exit 0 "attest run on chip $chip" "$tpmlab" run "$src/scenarios/attest.yaml" --out "$tmp/$chip"
done

# Loose files of a run's step: what tpm2_quote would have written.
loose() { write_loose_files "$tmp/$1/run.json" "$2" "$tmp/$1$2"; }  # -> $tmp/<chip><step>.*
loose a 2
loose b 2
verify_loose() {  # exit, description, prefix-of-quote, ak.der, pcrs-prefix, extra args...
  local want=$1 what=$2 q=$3 ak=$4 p=$5; shift 5
  expect_exit "$want" "$what" "$tpmlab" verify --quote "$q.attest" --signature "$q.sig" --ak "$ak" \
    --pcrs "$p.pcrs.json" --nonce "$(cat "$p.nonce")" --json "$@"
}

# 1. The chip's own quote, its own enrollment: no alarm.
verify_loose 0 "loose files of chip a against chip a's enrollment" "$tmp/a2" "$tmp/a2.ak.der" "$tmp/a2" \
  --enrollment "$tmp/a/enrollment.json"
expect_codes "chip a's own quote raises nothing"
py "$tmp/stdout" <<'PY' || fail "verify --json does not say the request it judged by"
import json, sys
r = json.load(open(sys.argv[1]))["request"]
assert r["selection"] == "sha256:0-23, signed sha256" and r["from"] == "the enrollment", r
PY

# 2. Foreign AK: chip b's quote with chip b's AK in the evidence, judged
# against chip a's enrollment: the AK is unknown and the signature fails
# against the enrolled key (Keylime checks with the registrar's AIK).
verify_loose 1 "foreign AK (chip b's quote and AK, chip a enrolled)" "$tmp/b2" "$tmp/b2.ak.der" "$tmp/b2" \
  --enrollment "$tmp/a/enrollment.json"
expect_codes "foreign AK: AK_UNKNOWN and QUOTE_SIGNATURE_INVALID only" AK_UNKNOWN QUOTE_SIGNATURE_INVALID
# Chip a's genuine quote with a foreign --ak: the key named is not the
# enrolled one (the quote itself verifies with the enrolled key).
verify_loose 1 "chip a's quote with chip b's key as --ak" "$tmp/a2" "$tmp/b2.ak.der" "$tmp/a2" \
  --enrollment "$tmp/a/enrollment.json"
expect_codes "a foreign --ak is AK_UNKNOWN" AK_UNKNOWN
# Without an enrollment the evidence's own AK is all there is: said, not passed.
verify_loose 0 "chip b's quote without an enrollment" "$tmp/b2" "$tmp/b2.ak.der" "$tmp/b2"
grep -q "AK_UNKNOWN: not enrolled; the quote was checked with the AK the evidence names" "$tmp/stdout" \
  || fail "no enrollment: AK_UNKNOWN is not listed as not run"

# 3. Replay: step 2 of chip a presents step 0's quote (and its nonce) again.
py "$tmp/a/run.json" "$tmp/a/replayed.json" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))
steps = {s["index"]: s for s in run["steps"]}
steps[2]["snapshot"]["quote"] = steps[0]["snapshot"]["quote"]
json.dump(run, open(sys.argv[2], "w"))
PY
expect_exit 1 "step 0's quote presented at step 2 with --previous" "$tpmlab" verify "$tmp/a/replayed.json:2" \
  --previous "$tmp/a/replayed.json:0" --enrollment "$tmp/a/enrollment.json" --json
py "$tmp/stdout" <<'PY' || fail "a replayed quote is not QUOTE_NONCE_MISMATCH (replayed)"
import json, sys
v = json.load(open(sys.argv[1]))
nonce = [a for a in v["alarms"] if a["code"] == "QUOTE_NONCE_MISMATCH"]
assert nonce and nonce[0]["evidence"].get("replayed") == "true", v
assert not any(a["code"] == "QUOTE_SIGNATURE_INVALID" for a in v["alarms"]), v
PY

# 4. No quote: the AK could not be made. An alarm (Keylime fails
# quote_validation), so verify exits 1.
py "$tmp/a/run.json" "$tmp/a/noquote.json" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))
snap = next(s for s in run["steps"] if s["index"] == 2)["snapshot"]
snap["quote"] = {"verified": False, "failure": "no quote: the AK could not be made", "bank": "sha256", "pcrs": []}
snap["ak_name"] = snap["ak_public_der"] = snap["ak_qualified_name"] = ""
snap["key_errors"]["ak"] = "TPM2_CreatePrimary: TPM_RC_HIERARCHY (0x185, handle 1)"
json.dump(run, open(sys.argv[2], "w"))
PY
expect_exit 1 "a step with no quote" "$tpmlab" verify "$tmp/a/noquote.json:2" --enrollment "$tmp/a/enrollment.json" --json
expect_codes "no quote: QUOTE_MISSING, and the enrolled host names no AK" QUOTE_MISSING AK_UNKNOWN
expect_exit 1 "a step with no quote, not enrolled" "$tpmlab" verify "$tmp/a/noquote.json:2" --json
expect_codes "no quote, not enrolled: QUOTE_MISSING alone" QUOTE_MISSING

# 5. Quotes made by hand over chip a's step-2 PCRs, signed with an OpenSSL
# key enrolled (in a copy of chip a's enrollment) as the AK.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tmp/key.pem" 2>/dev/null
openssl pkey -in "$tmp/key.pem" -pubout -outform DER -out "$tmp/key.der"
py "$tmp/a/enrollment.json" "$tmp/key.der" "$tmp/hand-enrollment.json" <<'PY'
import hashlib, json, sys
e = json.load(open(sys.argv[1]))
for history_key in ("enrollments", "run_id", "database", "step"):
    e.pop(history_key, None)  # one enrollment, not the run's history
der = open(sys.argv[2], "rb").read()
e["ak_public_der"] = der.hex()
e["ak_name"] = "000b" + hashlib.sha256(der).hexdigest()
e["ak_qualified_name"] = "000b" + hashlib.sha256(b"qualified " + der).hexdigest()
json.dump(e, open(sys.argv[3], "w"))
PY
hand_quote() {  # name mask(hex) hash(sha256|sha1) signer(hex|enrolled)
  py "$tmp/a/run.json" "$tmp/hand-enrollment.json" "$tmp/$1" "$2" "$3" "$4" <<'PY'
import hashlib, json, struct, sys
run = json.load(open(sys.argv[1]))
enrolled = json.load(open(sys.argv[2]))
out, mask, hash_name, signer = sys.argv[3], int(sys.argv[4], 16), sys.argv[5], sys.argv[6]
snap = next(s for s in run["steps"] if s["index"] == 2)["snapshot"]
signer = bytes.fromhex(enrolled["ak_qualified_name"] if signer == "enrolled" else signer)
nonce = bytes.fromhex(snap["quote"]["nonce"])
clock = snap["clock"]
h = hashlib.new(hash_name)
for i in range(24):
    if mask >> i & 1:
        h.update(bytes.fromhex(snap["pcrs"]["sha256"][str(i)]))
attest = struct.pack(">IH", 0xFF544347, 0x8018)
attest += struct.pack(">H", len(signer)) + signer + struct.pack(">H", len(nonce)) + nonce
attest += struct.pack(">QIIB", clock["clock_ms"], clock["reset_count"], clock["restart_count"], int(clock["safe"]))
attest += struct.pack(">Q", enrolled["firmware_version"])
attest += struct.pack(">IHB", 1, 0x000B, 3) + bytes([mask & 0xFF, mask >> 8 & 0xFF, mask >> 16 & 0xFF])
digest = h.digest()
attest += struct.pack(">H", len(digest)) + digest
open(out + ".attest", "wb").write(attest)
PY
  openssl dgst "-$3" -sign "$tmp/key.pem" -out "$tmp/$1.raw" "$tmp/$1.attest"
  py "$tmp/$1.raw" "$3" "$tmp/$1.sig" <<'PY'
import struct, sys
raw = open(sys.argv[1], "rb").read()
alg = {"sha256": 0x000B, "sha1": 0x0004}[sys.argv[2]]
open(sys.argv[3], "wb").write(struct.pack(">HHH", 0x0014, alg, len(raw)) + raw)
PY
}
hand_quote good ffffff sha256 enrolled
verify_loose 0 "a hand-made quote with the enrolled key (the maker works)" "$tmp/good" "$tmp/key.der" "$tmp/a2" \
  --enrollment "$tmp/hand-enrollment.json"
expect_codes "the hand-made good quote raises nothing"

# Wrong qualifiedSigner: signed by the enrolled key, naming another signer.
hand_quote signer ffffff sha256 000b5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a
verify_loose 1 "a quote naming another qualifiedSigner" "$tmp/signer" "$tmp/key.der" "$tmp/a2" \
  --enrollment "$tmp/hand-enrollment.json"
expect_codes "wrong qualifiedSigner: AK_UNKNOWN only" AK_UNKNOWN

# Selection shrunk: PCRs 0-7 quoted while 0-23 are asked for; a golden PCR 10
# that differs is not judged on values no verified quote covers.
hand_quote shrunk 0000ff sha256 enrolled
py "$tmp/hand-enrollment.json" "$tmp/hand-enrollment-pcr10.json" <<'PY'
import json, sys
e = json.load(open(sys.argv[1]))
v = e["golden_pcrs"]["sha256"]["10"]
e["golden_pcrs"]["sha256"]["10"] = ("0" if v[0] != "0" else "1") + v[1:]
json.dump(e, open(sys.argv[2], "w"))
PY
verify_loose 1 "a quote over PCRs 0-7 while 0-23 are requested" "$tmp/shrunk" "$tmp/key.der" "$tmp/a2" \
  --enrollment "$tmp/hand-enrollment-pcr10.json"
expect_codes "shrunk selection: the coverage alarm only, no PCR_POLICY_MISMATCH" QUOTE_PCR_DIGEST_MISMATCH
grep -q '"not quoted: 8-23"' "$tmp/stdout" || fail "the coverage alarm does not name PCRs 8-23"
grep -q "PCR_POLICY_MISMATCH: PCR 0-23 (sha256) not covered by a verified quote" "$tmp/stdout" \
  || fail "shrunk selection: the golden PCRs are not listed as not run"
# Asked for 0-7 only, the same quote verifies; PCR 10 stays unjudged.
verify_loose 0 "the same quote when the verifier asks for sha256:0-7" "$tmp/shrunk" "$tmp/key.der" "$tmp/a2" \
  --enrollment "$tmp/hand-enrollment-pcr10.json" --pcr-selection sha256:0-7
grep -q "PCR_POLICY_MISMATCH: PCR 8-23 (sha256) not covered by a verified quote" "$tmp/stdout" \
  || fail "--pcr-selection sha256:0-7: PCRs 8-23 are not listed as not run"

# SHA-1 signature: refused whatever the key (Keylime accepts sha256/384/512).
hand_quote sha1 ffffff sha1 enrolled
verify_loose 1 "a quote signed with SHA-1" "$tmp/sha1" "$tmp/key.der" "$tmp/a2" --enrollment "$tmp/hand-enrollment.json"
expect_codes "SHA-1 signature: QUOTE_SIGNATURE_INVALID only" QUOTE_SIGNATURE_INVALID
grep -q "signed with sha1, the verifier accepts sha256 only" "$tmp/stdout" || fail "SHA-1: the detail does not say why"

# 6. Bad --pcr-selection: exit 2, naming the option.
for bad in "sha256" "sha256:" "sha256:0-24" "sha256:7-3" "md5:0-7" "sha256:0-7:sha1:0"; do
  expect_exit 2 "--pcr-selection $bad" "$tpmlab" verify "$tmp/a/run.json:2" --pcr-selection "$bad"
  expect_stderr "--pcr-selection" "--pcr-selection $bad names the option"
done
expect_exit 0 "--pcr-selection sha256:0-7,10,14-15 on a quote of 0-23" "$tpmlab" verify "$tmp/a/run.json:2" \
  --enrollment "$tmp/a/enrollment.json" --pcr-selection sha256:0-7,10,14-15
grep -q "request: sha256:0-7,10,14-15, signed sha256 (--pcr-selection)" "$tmp/stdout" || fail "the request is not shown"

if [[ $failures -ne 0 ]]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "all passed"
