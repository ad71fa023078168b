// The verifier's clock, same-TPM and EK certificate rules on snapshots built
// here: an OpenSSL AK signs a TPMS_ATTEST with the clock under test, so each
// case changes one thing — the clock, the counters, the safe flag, the EK,
// a signature, the certificate — and asserts the exact verdict: the alarm
// raised and the ones that must not be.
#define BOOST_TEST_MODULE verify_clock
#include <boost/test/unit_test.hpp>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <unistd.h>

#include "harness/attest.h"
#include "harness/ek_certificate.h"
#include "harness/enrollment.h"
#include "harness/snapshot_json.h"
#include "harness/verify.h"
#include "test_certificates.h"

namespace tpmlab {
namespace {

namespace fs = std::filesystem;
using testing::PublicKeyDer;

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

EVP_PKEY* Key(int which) {  // 0: the AK, 1: the EK, 2: another chip's EK, 3: another RSA key
  static Pkey keys[4] = {Pkey(EVP_RSA_gen(2048)), Pkey(EVP_RSA_gen(2048)), Pkey(EVP_RSA_gen(2048)),
                         Pkey(EVP_RSA_gen(2048))};
  BOOST_REQUIRE(keys[which] != nullptr);
  return keys[which].get();
}
EVP_PKEY* Ak() { return Key(0); }
EVP_PKEY* Ek() { return Key(1); }
EVP_PKEY* OtherEk() { return Key(2); }

const testing::TestCa& Manufacturer() {
  static const testing::TestCa ca = testing::MakeTestCa("tpmlab test manufacturer root");
  return ca;
}
const testing::TestCa& Stranger() {
  static const testing::TestCa ca = testing::MakeTestCa("tpmlab test unrelated root");
  return ca;
}

Bytes NameOf(ByteView der) {
  auto h = Hash(HashAlg::kSha256, der);
  BOOST_REQUIRE(h.ok());
  return ByteWriter().U16(0x000B).Append(*h).Take();
}

// What the chip under test is and when it was quoted.
struct Quoted {
  ClockInfo clock{100'000, 3, 0, true};
  int64_t wall_ms = 1'717'171'717'000;
  int64_t round_trip_ms = 20;
  EVP_PKEY* ek = Ek();
  uint8_t nonce = 0x4E;
};

// A snapshot as TakeSnapshot makes it: sha256 PCRs at reset, a quote over
// 0-23 signed by the AK, the EK and its certificate from the manufacturer.
Snapshot Take(const Quoted& q) {
  Snapshot s;
  s.taken_at_ms = q.wall_ms;
  s.quote_round_trip_ms = q.round_trip_ms;
  s.banks = {HashAlg::kSha256};
  for (int i = 0; i < kPcrCount; ++i) s.pcrs[HashAlg::kSha256][i] = PcrResetValue(HashAlg::kSha256, i);
  s.quote_bank = HashAlg::kSha256;
  s.quote_pcrs = 0xFFFFFF;
  s.nonce = Bytes(32, q.nonce);
  s.ak.public_der = PublicKeyDer(Ak());
  s.ak.name = NameOf(s.ak.public_der);
  s.ek.public_der = PublicKeyDer(q.ek);
  s.ek.name = NameOf(s.ek.public_der);
  s.srk.name = NameOf(AsBytes("srk"));
  s.ek_certificate = testing::IssueEkCertificate(Manufacturer(), s.ek.public_der);
  s.ek_certificate_index = kEkCertRsaIndex;
  s.properties.firmware_version = 0x20240125;
  Bytes joined;
  for (const Bytes& v : s.pcrs[HashAlg::kSha256]) joined.insert(joined.end(), v.begin(), v.end());
  ByteWriter w;
  w.U32(kTpmGeneratedValue).U16(kTpmStAttestQuote).Sized16(s.ak.name).Sized16(s.nonce);
  w.U64(q.clock.clock_ms).U32(q.clock.reset_count).U32(q.clock.restart_count).U8(q.clock.safe ? 1 : 0);
  w.U64(s.properties.firmware_version);
  w.U32(1).U16(0x000B).U8(3).U8(0xFF).U8(0xFF).U8(0xFF);
  w.Sized16(*Hash(HashAlg::kSha256, joined));
  s.quote.attest = w.Take();
  // TPMT_SIGNATURE: RSASSA with SHA-256.
  s.quote.signature = ByteWriter().U16(0x0014).U16(0x000B).Sized16(testing::SignSha256(Ak(), s.quote.attest)).Take();
  s.quote_attempts = 1;
  s.quote_check = VerifyQuote(s.quote, s.ak.public_der, s.nonce, s.pcrs);
  BOOST_REQUIRE_MESSAGE(s.quote_check.verified(), s.quote_check.failure);
  return s;
}

void BreakSignature(Snapshot& s) {
  s.quote.signature[s.quote.signature.size() / 2] ^= 0x01;
  s.quote_check = VerifyQuote(s.quote, s.ak.public_der, s.nonce, s.pcrs);
  BOOST_REQUIRE(!s.quote_check.signature_ok);
}

// The previous quote: a minute earlier, same power session.
Quoted Earlier() {
  Quoted q;
  q.clock.clock_ms -= 60'000;
  q.wall_ms -= 60'000;
  q.nonce = 0x50;
  return q;
}

VerifyOptions Trusting(std::vector<Bytes> roots) {
  VerifyOptions o;
  o.ek_roots = std::move(roots);
  return o;
}
const VerifyOptions& Manufacturers() {
  static const VerifyOptions o = Trusting({Manufacturer().der});
  return o;
}

std::string Describe(const Verdict& v) { return VerdictToJson(v).dump(); }

std::multiset<std::string> Codes(const Verdict& v) {
  std::multiset<std::string> out;
  for (const Alarm& a : v.alarms) out.insert(a.code);
  return out;
}

// The not-run line of `code` that contains `words`, or "".
std::string NotRunLine(const Verdict& v, const std::string& code, const std::string& words = "") {
  for (const auto& line : v.not_run) {
    if (line.rfind(code + ": ", 0) == 0 && line.find(words) != std::string::npos) return line;
  }
  return "";
}

const Alarm& First(const Verdict& v, const std::string& code) {
  auto it = std::find_if(v.alarms.begin(), v.alarms.end(), [&](const Alarm& a) { return a.code == code; });
  BOOST_REQUIRE_MESSAGE(it != v.alarms.end(), "no " << code << ": " << Describe(v));
  return *it;
}

using CodeSet = std::multiset<std::string>;

// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(clock)

BOOST_AUTO_TEST_CASE(a_clean_pair_raises_nothing) {
  const Snapshot before = Take(Earlier());
  const Verdict v = Verify(Take(Quoted{}), &before, nullptr, Manufacturers());
  BOOST_TEST(v.alarms.empty(), Describe(v));
  // An orderly reboot: resetCount up, the clock on from where it was.
  Quoted rebooted;
  rebooted.clock = {before.clock().clock_ms + 5'000, 4, 0, true};
  const Verdict r = Verify(Take(rebooted), &before, nullptr, Manufacturers());
  BOOST_TEST(r.alarms.empty(), Describe(r));
}

// NV state reverted (a vTPM snapshot restored), then an orderly reboot: the
// counters moved on, the clock is below one the TPM already reported, and the
// TPM says safe = YES — which promises no greater Clock was ever reported.
BOOST_AUTO_TEST_CASE(lower_clock_with_safe_yes_after_a_reboot_is_not_monotonic) {
  const Snapshot before = Take(Earlier());
  Quoted reverted;
  reverted.clock = {before.clock().clock_ms - 30'000, before.clock().reset_count + 1, 0, true};
  const Verdict v = Verify(Take(reverted), &before, nullptr, Manufacturers());
  BOOST_TEST((Codes(v) == CodeSet{alarm::kClockNotMonotonic}), Describe(v));
  BOOST_TEST(First(v, alarm::kClockNotMonotonic).evidence.at("actual").find("clock") != std::string::npos);
  BOOST_TEST(!NotRunLine(v, alarm::kClockSkew, "reset or restarted").empty(), Describe(v));
  // A restart (restartCount up) is no excuse either.
  reverted.clock = {before.clock().clock_ms - 30'000, before.clock().reset_count, 1, true};
  const Verdict restarted = Verify(Take(reverted), &before, nullptr, Manufacturers());
  BOOST_TEST((Codes(restarted) == CodeSet{alarm::kClockNotMonotonic}), Describe(restarted));
}

// After a power loss (safe = NO) the clock restarts from its last saved value:
// a lower clock is what CLOCK_NOT_SAFE reports, not a rollback.
BOOST_AUTO_TEST_CASE(lower_clock_with_safe_no_after_a_reboot_is_only_not_safe) {
  const Snapshot before = Take(Earlier());
  Quoted lost;
  lost.clock = {before.clock().clock_ms - 3'000, before.clock().reset_count + 1, 0, false};
  const Verdict v = Verify(Take(lost), &before, nullptr, Manufacturers());
  BOOST_TEST((Codes(v) == CodeSet{alarm::kClockNotSafe}), Describe(v));
}

// Within one power session a lower clock is a violation whatever safe says.
BOOST_AUTO_TEST_CASE(lower_clock_in_one_session_is_not_monotonic_even_when_not_safe) {
  const Snapshot before = Take(Earlier());
  Quoted q;
  q.clock = before.clock();
  q.clock.clock_ms -= 1'000;
  q.clock.safe = false;
  const Verdict v = Verify(Take(q), &before, nullptr, Manufacturers());
  BOOST_TEST((Codes(v) == CodeSet{alarm::kClockNotMonotonic, alarm::kClockNotSafe}), Describe(v));
}

// TPM2_Clear zeroes the counters and the clock and sets safe: one finding.
BOOST_AUTO_TEST_CASE(a_clear_is_a_rollback_and_not_also_a_clock_alarm) {
  const Snapshot before = Take(Earlier());
  Quoted cleared;
  cleared.clock = {2'000, 0, 0, true};
  const Verdict v = Verify(Take(cleared), &before, nullptr, Manufacturers());
  BOOST_TEST((Codes(v) == CodeSet{alarm::kCounterRollback}), Describe(v));
  BOOST_TEST(!NotRunLine(v, alarm::kClockNotMonotonic, "COUNTER_ROLLBACK").empty(), Describe(v));
}

// A previous quote whose signature fails is no baseline: its clock (here far
// ahead, which would make this one "go back") is not used.
BOOST_AUTO_TEST_CASE(a_previous_quote_with_a_bad_signature_is_not_a_baseline) {
  Quoted ahead = Earlier();
  ahead.clock.clock_ms += 10'000'000;
  ahead.clock.reset_count += 5;
  Snapshot forged = Take(ahead);
  BreakSignature(forged);
  const Verdict v = Verify(Take(Quoted{}), &forged, nullptr, Manufacturers());
  BOOST_TEST(v.alarms.empty(), Describe(v));
  for (const char* code : {alarm::kCounterRollback, alarm::kClockNotMonotonic, alarm::kClockSkew}) {
    BOOST_TEST(!NotRunLine(v, code, "earlier quote's signature does not verify").empty(), code << ": " << Describe(v));
  }
}

// Nor is the clock of this quote evidence when its own signature fails: only
// QUOTE_SIGNATURE_INVALID, no clock verdict from an unverified clock.
BOOST_AUTO_TEST_CASE(a_quote_with_a_bad_signature_gives_no_clock_verdict) {
  const Snapshot before = Take(Earlier());
  Quoted q;
  q.clock = {5'000, 0, 0, false};  // would be a rollback and not safe
  Snapshot now = Take(q);
  BreakSignature(now);
  const Verdict v = Verify(now, &before, nullptr, Manufacturers());
  BOOST_TEST((Codes(v) == CodeSet{alarm::kQuoteSignatureInvalid}), Describe(v));
  for (const char* code : {alarm::kClockNotSafe, alarm::kCounterRollback, alarm::kClockNotMonotonic, alarm::kClockSkew}) {
    BOOST_TEST(!NotRunLine(v, code, "signature does not verify").empty(), code << ": " << Describe(v));
  }
}

// Two quotes whose Quote commands were slow (3 s each on a loaded host): the
// TPM and wall time agree within that uncertainty. Through run.json (what
// `tpmlab verify RUN.json:N --previous RUN.json:M` reads) the verdict must be
// the same as on the snapshots taken: taken_at_ms and quote_round_trip_ms
// are saved and read back.
BOOST_AUTO_TEST_CASE(run_json_round_trip_keeps_the_wall_times_and_raises_no_false_skew) {
  Quoted early = Earlier(), late;
  early.round_trip_ms = late.round_trip_ms = 3'000;
  late.clock.clock_ms += 2'500;  // 2.5 s more TPM time than wall time: within 3 s
  const Snapshot before = Take(early), now = Take(late);
  const Verdict direct = Verify(now, &before, nullptr, Manufacturers());
  BOOST_TEST(direct.alarms.empty(), Describe(direct));

  auto reread = [](const Snapshot& s) {
    auto back = SnapshotFromJson(nlohmann::json::parse(SnapshotToJson(s).dump()), ".", "test");
    BOOST_REQUIRE_MESSAGE(back.ok(), back.status().ToString());
    return *back;
  };
  const Snapshot before_file = reread(before), now_file = reread(now);
  BOOST_TEST(now_file.taken_at_ms == now.taken_at_ms);
  BOOST_TEST(now_file.quote_round_trip_ms == 3'000);
  BOOST_TEST(now_file.quote_attempts == 1);
  BOOST_TEST(now_file.ek_certificate_index == kEkCertRsaIndex);
  const Verdict from_file = Verify(now_file, &before_file, nullptr, Manufacturers());
  BOOST_TEST((Codes(from_file) == Codes(direct)), Describe(from_file));
  BOOST_TEST(!from_file.Has(alarm::kClockSkew), Describe(from_file));
}

// Loose files carry no wall time: skew cannot be judged, and is not raised.
BOOST_AUTO_TEST_CASE(no_wall_time_is_no_skew_verdict) {
  const Snapshot before = Take(Earlier());
  Snapshot now = Take(Quoted{});
  now.taken_at_ms = 0;
  const Verdict v = Verify(now, &before, nullptr, Manufacturers());
  BOOST_TEST(v.alarms.empty(), Describe(v));
  BOOST_TEST(!NotRunLine(v, alarm::kClockSkew, "no wall time").empty(), Describe(v));
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(same_tpm)

// A previous snapshot from another chip (a swapped board) with higher
// counters: EK_CHANGED against the enrollment, never COUNTER_ROLLBACK.
BOOST_AUTO_TEST_CASE(a_swapped_chip_is_ek_changed_not_a_rollback) {
  Quoted old_chip = Earlier();
  old_chip.clock = {9'000'000, 40, 2, true};
  const Snapshot before = Take(old_chip);
  const Enrollment enrolled = EnrollFromSnapshot(before, "dut0");
  Quoted new_chip;
  new_chip.ek = OtherEk();
  new_chip.clock = {1'000, 1, 0, true};
  const Snapshot now = Take(new_chip);
  const Verdict v = Verify(now, &before, &enrolled, Manufacturers());
  BOOST_TEST(v.Has(alarm::kEkChanged), Describe(v));
  BOOST_TEST(!v.Has(alarm::kCounterRollback), Describe(v));
  BOOST_TEST(!v.Has(alarm::kClockNotMonotonic), Describe(v));
  BOOST_TEST(!NotRunLine(v, alarm::kCounterRollback, "the previous snapshot is another TPM").empty(), Describe(v));
  // Without an enrollment: the counters are still not compared, and said so.
  const Verdict bare = Verify(now, &before, nullptr, Manufacturers());
  BOOST_TEST(bare.alarms.empty(), Describe(bare));
  BOOST_TEST(!NotRunLine(bare, alarm::kClockNotMonotonic, "another TPM").empty(), Describe(bare));
}

BOOST_AUTO_TEST_CASE(ek_changed_compares_the_public_key_too) {
  const Snapshot now = Take(Quoted{});
  Enrollment enrolled = EnrollFromSnapshot(Take(Earlier()), "dut0");
  BOOST_TEST(Verify(now, nullptr, &enrolled, Manufacturers()).alarms.empty());
  enrolled.ek_public_der = PublicKeyDer(OtherEk());  // same name, another key
  const Verdict v = Verify(now, nullptr, &enrolled, Manufacturers());
  BOOST_TEST((Codes(v) == CodeSet{alarm::kEkChanged}), Describe(v));
  BOOST_TEST(First(v, alarm::kEkChanged).evidence.at("detail") == "the EK public key differs");
}

// Evidence without an EK while an enrollment exists: an alarm, never a skip.
BOOST_AUTO_TEST_CASE(no_ek_in_the_evidence_while_enrolled_is_an_alarm) {
  const Enrollment enrolled = EnrollFromSnapshot(Take(Earlier()), "dut0");
  Snapshot now = Take(Quoted{});
  now.ek = KeyInfo{};
  now.ek_certificate.reset();
  const Verdict v = Verify(now, nullptr, &enrolled, Manufacturers());
  BOOST_TEST(v.Has(alarm::kEkChanged), Describe(v));
  BOOST_TEST(First(v, alarm::kEkChanged).evidence.at("detail") == "no EK in the evidence");
  BOOST_TEST(NotRunLine(v, alarm::kEkChanged).empty(), Describe(v));
  // The TPM refused the EK (EK_MISSING says why): EK_CHANGED is listed as not run.
  now.ek_error = "TPM2_CreatePrimary: TPM_RC_HIERARCHY";
  const Verdict refused = Verify(now, nullptr, &enrolled, Manufacturers());
  BOOST_TEST(refused.Has(alarm::kEkMissing), Describe(refused));
  BOOST_TEST(!refused.Has(alarm::kEkChanged), Describe(refused));
  BOOST_TEST(!NotRunLine(refused, alarm::kEkChanged, "EK_MISSING").empty(), Describe(refused));
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(ek_certificate)

BOOST_AUTO_TEST_CASE(chain_to_a_configured_root_passes) {
  const Verdict v = Verify(Take(Quoted{}), nullptr, nullptr, Manufacturers());
  BOOST_TEST(v.alarms.empty(), Describe(v));
  BOOST_TEST(NotRunLine(v, alarm::kEkCertInvalid).empty(), Describe(v));
}

BOOST_AUTO_TEST_CASE(chain_to_a_wrong_root_is_an_alarm) {
  const Verdict v = Verify(Take(Quoted{}), nullptr, nullptr, Trusting({Stranger().der}));
  BOOST_TEST((Codes(v) == CodeSet{alarm::kEkCertInvalid}), Describe(v));
  BOOST_TEST(First(v, alarm::kEkCertInvalid).evidence.at("detail").find("does not chain") != std::string::npos);
  // Any one of several configured roots will do.
  const Verdict either = Verify(Take(Quoted{}), nullptr, nullptr, Trusting({Stranger().der, Manufacturer().der}));
  BOOST_TEST(either.alarms.empty(), Describe(either));
}

BOOST_AUTO_TEST_CASE(no_roots_is_chain_not_checked) {
  const Verdict v = Verify(Take(Quoted{}), nullptr, nullptr);
  BOOST_TEST(v.alarms.empty(), Describe(v));
  BOOST_TEST(!NotRunLine(v, alarm::kEkCertInvalid, "chain not checked").empty(), Describe(v));
}

BOOST_AUTO_TEST_CASE(a_certificate_for_another_key_is_an_alarm) {
  Snapshot s = Take(Quoted{});
  s.ek_certificate = testing::IssueEkCertificate(Manufacturer(), PublicKeyDer(Key(3)));
  const Verdict v = Verify(s, nullptr, nullptr, Manufacturers());
  BOOST_TEST((Codes(v) == CodeSet{alarm::kEkCertInvalid}), Describe(v));
  BOOST_TEST(First(v, alarm::kEkCertInvalid).evidence.at("actual") == ToHex(PublicKeyDer(Key(3))));
  BOOST_TEST(!v.Has(alarm::kEkCertMissing));
}

BOOST_AUTO_TEST_CASE(bytes_that_are_no_certificate_are_an_alarm) {
  Snapshot s = Take(Quoted{});
  s.ek_certificate = Bytes{0x30, 0x82, 0x01, 0x00, 0xCE, 0x27};
  const Verdict v = Verify(s, nullptr, nullptr, Manufacturers());
  BOOST_TEST((Codes(v) == CodeSet{alarm::kEkCertInvalid}), Describe(v));
}

// A chip provisioned with an ECC EK only: its certificate at 0x01C0000A is a
// certificate, not EK_CERT_MISSING; tpmlab's RSA EK is not compared with it.
BOOST_AUTO_TEST_CASE(an_ecc_certificate_at_the_ecc_index_is_not_missing) {
  Pkey ecc_ek(EVP_EC_gen("P-256"));
  Snapshot s = Take(Quoted{});
  s.ek_certificate = testing::IssueEkCertificate(Manufacturer(), PublicKeyDer(ecc_ek.get()));
  s.ek_certificate_index = kEkCertEccIndex;
  const Verdict v = Verify(s, nullptr, nullptr, Manufacturers());
  BOOST_TEST(v.alarms.empty(), Describe(v));
  BOOST_TEST(!v.Has(alarm::kEkCertMissing));
  BOOST_TEST(!NotRunLine(v, alarm::kEkCertInvalid, "0x01c0000a certifies an EC key").empty(), Describe(v));
  // Its chain is still checked.
  const Verdict wrong = Verify(s, nullptr, nullptr, Trusting({Stranger().der}));
  BOOST_TEST((Codes(wrong) == CodeSet{alarm::kEkCertInvalid}), Describe(wrong));
  BOOST_TEST(First(wrong, alarm::kEkCertInvalid).evidence.at("nv_index") == "0x01c0000a");
  // Read back from run.json, the index is still the ECC one.
  auto back = SnapshotFromJson(SnapshotToJson(s), ".", "test");
  BOOST_REQUIRE(back.ok());
  BOOST_TEST(back->ek_certificate_index == kEkCertEccIndex);
}

BOOST_AUTO_TEST_CASE(neither_index_is_missing_and_names_both) {
  Snapshot s = Take(Quoted{});
  s.ek_certificate.reset();
  const Verdict v = Verify(s, nullptr, nullptr, Manufacturers());
  BOOST_TEST((Codes(v) == CodeSet{alarm::kEkCertMissing}), Describe(v));
  BOOST_TEST(First(v, alarm::kEkCertMissing).evidence.at("nv_index") == "0x01c00002, 0x01c0000a");
}

// Roots as a user gives them: a PEM file, a folder, DER; bad paths are errors.
BOOST_AUTO_TEST_CASE(roots_load_from_pem_der_and_folders) {
  char tmpl[] = "/tmp/tpmlab-roots-XXXXXX";
  BOOST_REQUIRE(::mkdtemp(tmpl) != nullptr);
  const fs::path dir = tmpl;
  {
    std::ofstream(dir / "root.der", std::ios::binary)
        .write(reinterpret_cast<const char*>(Manufacturer().der.data()), static_cast<std::streamsize>(Manufacturer().der.size()));
    const unsigned char* p = Stranger().der.data();
    X509* cert = d2i_X509(nullptr, &p, static_cast<long>(Stranger().der.size()));
    FILE* f = std::fopen((dir / "other.pem").c_str(), "w");
    BOOST_REQUIRE(f != nullptr);
    PEM_write_X509(f, cert);
    std::fclose(f);
    X509_free(cert);
  }
  // Keys and notes beside the certificates are passed over.
  std::ofstream(dir / "signkey.pem") << "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
  std::ofstream(dir / "README") << "vendor roots";
  auto folder = LoadEkRoots(dir);
  BOOST_REQUIRE_MESSAGE(folder.ok(), folder.status().ToString());
  BOOST_TEST(folder->size() == 2u);
  auto pem = LoadEkRoots(dir / "other.pem");
  BOOST_REQUIRE(pem.ok());
  BOOST_TEST((pem->front() == Stranger().der));
  BOOST_TEST(!LoadEkRoots(dir / "absent").ok());
  BOOST_TEST(LoadEkRoots(dir / "absent").status().message().find("absent") != std::string::npos);
  fs::create_directories(dir / "empty");
  BOOST_TEST(!LoadEkRoots(dir / "empty").ok());
  std::ofstream(dir / "junk.pem") << "not a certificate";
  BOOST_TEST(!LoadEkRoots(dir / "junk.pem").ok());
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(hierarchies)

// Firmware commonly disables the platform hierarchy before the OS: a warning.
// Owner or endorsement off: an error (doctor judges the same).
BOOST_AUTO_TEST_CASE(platform_only_is_a_warning_owner_or_endorsement_an_error) {
  Snapshot s = Take(Quoted{});
  s.properties.platform_enabled = false;
  const Verdict platform = Verify(s, nullptr, nullptr, Manufacturers());
  BOOST_TEST((Codes(platform) == CodeSet{alarm::kHierarchyDisabled}), Describe(platform));
  BOOST_TEST((First(platform, alarm::kHierarchyDisabled).severity == Severity::kWarning));
  s.properties.owner_enabled = false;
  const Verdict owner = Verify(s, nullptr, nullptr, Manufacturers());
  BOOST_TEST((First(owner, alarm::kHierarchyDisabled).severity == Severity::kError));
  BOOST_TEST(First(owner, alarm::kHierarchyDisabled).evidence.at("disabled") == "platform owner");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace tpmlab
