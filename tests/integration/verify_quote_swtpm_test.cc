// The verifier and real swtpm quotes: a quote is judged with the ENROLLED AK
// (a second chip's AK is foreign), its qualifiedSigner is the enrolled AK's
// qualified name as TPM2_ReadPublic gives it, the PCRs and nonce are the
// verifier's (a shrunk selection, a replayed quote), and no quote is an alarm.
#define BOOST_TEST_MODULE verify_quote_swtpm
#include <boost/test/unit_test.hpp>

#include <set>
#include <string>

#include "harness/enrollment.h"
#include "harness/verify.h"
#include "platform.h"

namespace tpmlab::testing {
namespace {

std::string Describe(const Verdict& v) { return VerdictToJson(v).dump(); }

std::multiset<std::string> Codes(const Verdict& v) {
  std::multiset<std::string> out;
  for (const Alarm& a : v.alarms) out.insert(a.code);
  return out;
}

bool NotRunSays(const Verdict& v, const std::string& line) {
  for (const auto& n : v.not_run) {
    if (n == line) return true;
  }
  return false;
}

using CodeList = std::multiset<std::string>;

// A DUT booted clean and enrolled from a snapshot after an orderly reset.
struct Enrolled : EmulatedPlatform {
  Enrolled() {
    Reboot("baseline");
    snapshot = Snap();
    enrollment = EnrollFromSnapshot(snapshot, "dut0");
  }
  Snapshot snapshot;
  Enrollment enrollment;
};

}  // namespace

BOOST_AUTO_TEST_CASE(the_enrolled_ak_is_named_by_its_quotes) {
  Enrolled a;
  for (KeyType type : {KeyType::kRsa2048, KeyType::kEccP256}) {
    SnapshotOptions o;
    o.ak_type = type;
    const Snapshot s = a.Snap(o);
    // TPM2_ReadPublic's qualifiedName is what the TPM writes as qualifiedSigner.
    BOOST_TEST(!s.ak.qualified_name.empty());
    BOOST_TEST(ToHex(s.ak.qualified_name) == ToHex(s.quote_check.attest.qualified_signer));
  }
  BOOST_TEST(ToHex(a.enrollment.ak_qualified_name) == ToHex(a.snapshot.ak.qualified_name));
  BOOST_REQUIRE(a.enrollment.quote_request.has_value());
  BOOST_TEST(a.enrollment.quote_request->pcrs == 0xFFFFFFu);
  BOOST_TEST((a.enrollment.quote_request->signature_hash == HashAlg::kSha256));
  // The firmware enrolled is the quote's signed one.
  BOOST_TEST(a.enrollment.firmware_version == a.snapshot.quote_check.attest.firmware_version);
}

BOOST_AUTO_TEST_CASE(a_second_chips_ak_is_foreign_and_its_signature_fails) {
  Enrolled a;
  // A second swtpm with its own endorsement seed: another chip, another AK.
  EmulatedPlatform b;
  REQUIRE_OK(b.dut.tpm().ChangeEps());
  b.Reboot("baseline");
  Snapshot s = b.Snap();
  BOOST_REQUIRE(s.ak.public_der != a.enrollment.ak_public_der);
  // Its quote and AK, presented as chip a's (a's EK and certificate).
  s.ek = a.snapshot.ek;
  s.ek_certificate = a.snapshot.ek_certificate;
  const Verdict v = Verify(s, nullptr, &a.enrollment);
  // The AK's name and the quote's qualifiedSigner are both not the enrolled
  // AK's; the signature does not verify with the enrolled key.
  BOOST_TEST((Codes(v) == CodeList{alarm::kAkUnknown, alarm::kAkUnknown, alarm::kQuoteSignatureInvalid}),
             Describe(v));
  // Nothing the foreign quote says is believed.
  BOOST_TEST(NotRunSays(v, "PCR_POLICY_MISMATCH: PCR 0-23 (sha256) not covered by a verified quote"), Describe(v));
  BOOST_TEST(!v.Has(alarm::kPcrPolicyMismatch), Describe(v));

  // Not enrolled, the same quote verifies with the AK it names: said as such.
  const Verdict alone = Verify(s, nullptr, nullptr);
  BOOST_TEST(!alone.Has(alarm::kQuoteSignatureInvalid), Describe(alone));
  BOOST_TEST(NotRunSays(alone, "AK_UNKNOWN: not enrolled; the quote was checked with the AK the evidence names"),
             Describe(alone));
}

BOOST_AUTO_TEST_CASE(a_quote_over_fewer_pcrs_than_requested_covers_only_those) {
  Enrolled a;
  SnapshotOptions eight;
  eight.quote_pcrs = 0xFF;  // the TPM is asked for PCRs 0-7 only
  Snapshot s = a.Snap(eight);
  // The verifier asked for 0-23; the golden PCR 10 differs.
  s.quote_pcrs = 0xFFFFFF;
  Enrollment e = a.enrollment;
  e.golden_pcrs[HashAlg::kSha256][10][0] ^= 0x01;
  const Verdict v = Verify(s, &a.snapshot, &e);
  BOOST_TEST((Codes(v) == CodeList{alarm::kQuotePcrDigestMismatch}), Describe(v));
  BOOST_TEST(v.alarms.at(0).evidence.at("detail") == "not quoted: 8-23");
  BOOST_TEST(!v.Has(alarm::kPcrPolicyMismatch), Describe(v));

  // Asked for 0-7, it verifies; PCR 10 is not the quote's to vouch for.
  s.quote_pcrs = 0xFF;
  const Verdict asked = Verify(s, &a.snapshot, &e);
  BOOST_TEST(asked.alarms.empty(), Describe(asked));
  BOOST_TEST(NotRunSays(asked, "PCR_POLICY_MISMATCH: PCR 8-23 (sha256) not covered by a verified quote"),
             Describe(asked));
}

BOOST_AUTO_TEST_CASE(the_previous_quote_presented_again_is_a_replay) {
  Enrolled a;
  const Snapshot before = a.Snap();
  Snapshot now = a.Snap();
  // Step N carries step N-1's quote and, to look consistent, its nonce.
  now.quote = before.quote;
  now.nonce = before.nonce;
  now.quote_check = before.quote_check;
  const Verdict v = Verify(now, &before, &a.enrollment);
  BOOST_TEST((Codes(v) == CodeList{alarm::kQuoteNonceMismatch}), Describe(v));
  BOOST_TEST(v.alarms.at(0).evidence.at("replayed") == "true");
  // The genuine next quote is clean.
  const Verdict clean = Verify(a.Snap(), &before, &a.enrollment);
  BOOST_TEST(clean.alarms.empty(), Describe(clean));
}

BOOST_AUTO_TEST_CASE(no_ak_means_quote_missing) {
  Enrolled a;
  // The same chip (one provisioned template) with its endorsement hierarchy
  // disabled before any AK exists: no AK, so no quote.
  EmulatedPlatform b;
  REQUIRE_OK(b.dut.tpm().HierarchyControl(Hierarchy::kEndorsement, /*enable=*/false));
  const Snapshot s = Require(TakeSnapshot(b.dut.tpm(), SnapshotOptions{}));
  BOOST_REQUIRE(!s.ak_error.empty());
  const Verdict v = Verify(s, nullptr, &a.enrollment);
  BOOST_TEST(v.Has(alarm::kQuoteMissing), Describe(v));
  BOOST_TEST(v.Has(alarm::kAkUnknown), Describe(v));  // enrolled, and the evidence names no AK
  for (const char* c : {alarm::kQuoteMalformed, alarm::kQuoteSignatureInvalid, alarm::kQuoteNonceMismatch,
                        alarm::kQuotePcrDigestMismatch, alarm::kPcrPolicyMismatch, alarm::kTpmFirmwareChanged}) {
    BOOST_TEST(!v.Has(c), c << ": " << Describe(v));
  }
}

}  // namespace tpmlab::testing
