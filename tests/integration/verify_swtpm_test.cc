// The verifier on a real swtpm: the baseline firmware model boots, a first
// snapshot enrolls the DUT, and later snapshots are judged against it and
// against the snapshot before them. A clean boot raises no alarm; each
// thing done to the real TPM (Secure Boot off, TPM2_Clear, an unlogged
// extend, a power loss, another AK, a dead emulator) raises exactly the
// alarms a verifier should see.
#define BOOST_TEST_MODULE verify_swtpm
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <csignal>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "harness/enrollment.h"
#include "harness/verify.h"
#include "platform.h"

namespace tpmlab::testing {
namespace {

// The first boot is followed by an orderly reset (Enroll), so the TPM's
// clock has been saved (safe YES) by the time anything is enrolled.
struct Platform : EmulatedPlatform {
  using EmulatedPlatform::EmulatedPlatform;

  // Boots clean, resets, snapshots and enrolls: the verifier's starting point.
  void Enroll() {
    Reboot("baseline");
    enrolled_snapshot = Snap();
    BOOST_REQUIRE(enrolled_snapshot.clock().safe);
    enrollment = EnrollFromSnapshot(enrolled_snapshot, "dut0");
  }

  Verdict Judge(const Snapshot& now) const { return Verify(now, &enrolled_snapshot, &enrollment); }

  Snapshot enrolled_snapshot;
  Enrollment enrollment;
};

std::string Describe(const Verdict& v) { return VerdictToJson(v).dump(); }

std::multiset<std::string> Codes(const Verdict& v) {
  std::multiset<std::string> out;
  for (const Alarm& a : v.alarms) out.insert(a.code);
  return out;
}

// The alarms with this code, each as "bank:pcr".
std::set<std::string> Pcrs(const Verdict& v, const std::string& code) {
  std::set<std::string> out;
  for (const Alarm& a : v.alarms) {
    if (a.code == code) out.insert(a.evidence.at("bank") + ":" + a.evidence.at("pcr"));
  }
  return out;
}

using CodeList = std::multiset<std::string>;

BOOST_AUTO_TEST_CASE(a_clean_boot_raises_no_alarm) {
  Platform p;
  // Straight after the first power-on nothing has saved the clock yet: at
  // most CLOCK_NOT_SAFE, and nothing to compare with.
  const Snapshot first = p.Snap();
  Verdict v = Verify(first, nullptr, nullptr);
  for (const Alarm& a : v.alarms) BOOST_TEST(a.code == alarm::kClockNotSafe, Describe(v));

  p.Enroll();
  v = Verify(p.enrolled_snapshot, &first, &p.enrollment);
  BOOST_TEST(v.alarms.empty(), Describe(v));

  // The next boot of the same firmware after an orderly reset.
  p.Reboot("baseline");
  const Snapshot next = p.Snap();
  BOOST_TEST(next.clock().reset_count > p.enrolled_snapshot.clock().reset_count);
  v = p.Judge(next);
  BOOST_TEST(v.alarms.empty(), Describe(v));

  // A second quote in the same power session: every check runs, the clock
  // skew against wall time included, and none raises.
  const Snapshot again = p.Snap();
  v = Verify(again, &next, &p.enrollment);
  BOOST_TEST(v.alarms.empty(), Describe(v));
  // All but the EK certificate's chain, which needs manufacturer roots, and
  // the sha1 bank: the quote covers sha256 only (go-attestation's rule).
  for (const auto& line : v.not_run) {
    BOOST_TEST((line.rfind("EK_CERT_INVALID: chain not checked", 0) == 0 ||
                line.find("(sha1) not covered by a verified quote") != std::string::npos),
               Describe(v));
  }
}

BOOST_AUTO_TEST_CASE(secure_boot_off_is_reported_with_its_pcr7) {
  Platform p;
  p.Enroll();
  p.Reboot("secure-boot-off");
  const Verdict v = p.Judge(p.Snap());
  BOOST_TEST((Codes(v) == CodeList{alarm::kSecureBootDisabled, alarm::kPcrPolicyMismatch, alarm::kPcrPolicyMismatch}),
             Describe(v));
  BOOST_TEST((Pcrs(v, alarm::kPcrPolicyMismatch) == std::set<std::string>{"sha1:7", "sha256:7"}), Describe(v));

  // Back to Secure Boot on: clean again.
  p.Reboot("baseline");
  const Verdict back = p.Judge(p.Snap());
  BOOST_TEST(back.alarms.empty(), Describe(back));
}

BOOST_AUTO_TEST_CASE(tpm2_clear_rolls_the_counters_back) {
  Platform p;
  p.Enroll();
  // Clear sets Clock back to zero. Push it an hour ahead first, so that is
  // told apart from "little time passed since the enrollment's quote".
  constexpr uint64_t kHourMs = 3'600'000;
  REQUIRE_OK(p.dut.tpm().ClockSet(p.enrolled_snapshot.clock().clock_ms + kHourMs));
  REQUIRE_OK(p.dut.tpm().Clear(Hierarchy::kLockout));
  const Snapshot cleared = p.Snap();
  BOOST_TEST(cleared.clock().reset_count == 0u);
  BOOST_TEST(cleared.clock().restart_count == 0u);
  BOOST_TEST(cleared.clock().clock_ms < kHourMs);
  // What a clear does not change: the PCRs (so log and golden values hold),
  // the EPS (the EK comes back identical), the platform's EK certificate.
  // What it does change: the SPS, so the SRK is another key (not enrolled,
  // so not judged), and the persisted AK is evicted: the next one is new.
  BOOST_TEST(cleared.ek.name == p.enrolled_snapshot.ek.name);
  BOOST_TEST(cleared.ak.name != p.enrolled_snapshot.ak.name);
  BOOST_TEST(cleared.ek_certificate.has_value());
  BOOST_TEST(cleared.srk.name != p.enrolled_snapshot.srk.name);
  BOOST_TEST(cleared.clock().safe);
  const Verdict v = p.Judge(cleared);
  // The new AK's name and qualifiedSigner are not the enrolled AK's, and its
  // quote does not verify with the enrolled key: its counters are no
  // evidence (Keylime trusts nothing of a quote that fails), so the rollback
  // is listed as not judged rather than raised.
  BOOST_TEST((Codes(v) == CodeList{alarm::kAkUnknown, alarm::kAkUnknown, alarm::kQuoteSignatureInvalid}),
             Describe(v));
  BOOST_TEST(std::any_of(v.not_run.begin(), v.not_run.end(),
                         [](const std::string& line) { return line.rfind(alarm::kCounterRollback, 0) == 0; }),
             Describe(v));
}

BOOST_AUTO_TEST_CASE(an_unlogged_extend_of_pcr0_fails_the_replay) {
  Platform p;
  p.Enroll();
  std::map<HashAlg, Bytes> digests;
  for (HashAlg bank : kBanks) digests[bank] = Require(Hash(bank, AsBytes("an unlogged firmware measurement")));
  REQUIRE_OK(p.dut.tpm().Extend(0, digests));
  const Verdict v = p.Judge(p.Snap());
  BOOST_TEST((Codes(v) == CodeList{alarm::kPcrReplayMismatch, alarm::kPcrReplayMismatch, alarm::kPcrPolicyMismatch,
                                   alarm::kPcrPolicyMismatch}),
             Describe(v));
  BOOST_TEST((Pcrs(v, alarm::kPcrReplayMismatch) == std::set<std::string>{"sha1:0", "sha256:0"}), Describe(v));
  BOOST_TEST((Pcrs(v, alarm::kPcrPolicyMismatch) == std::set<std::string>{"sha1:0", "sha256:0"}), Describe(v));
  for (const Alarm& a : v.alarms) {
    if (a.code != alarm::kPcrReplayMismatch) continue;
    // expected is the log's replay, which is the enrolled value.
    const HashAlg bank = *HashAlgFromName(a.evidence.at("bank"));
    BOOST_TEST(a.evidence.at("expected") == ToHex(p.enrolled_snapshot.pcrs.at(bank)[0]));
  }
}

BOOST_AUTO_TEST_CASE(a_power_loss_leaves_the_clock_not_safe) {
  Platform p;
  p.Enroll();
  p.Reboot("baseline", PowerCycleKind::kPowerLoss);
  const Snapshot after = p.Snap();
  BOOST_TEST(!after.clock().safe);
  BOOST_TEST(after.clock().reset_count > p.enrolled_snapshot.clock().reset_count);
  const Verdict v = p.Judge(after);
  BOOST_TEST((Codes(v) == CodeList{alarm::kClockNotSafe}), Describe(v));
}

BOOST_AUTO_TEST_CASE(another_ak_is_unknown) {
  Platform p;
  p.Enroll();
  BOOST_REQUIRE(p.enrollment.ak_name == p.enrolled_snapshot.ak.name);
  SnapshotOptions ecc;
  ecc.ak_type = KeyType::kEccP256;
  const Snapshot s = p.Snap(ecc);
  BOOST_TEST((s.ak.type == KeyType::kEccP256));
  const Verdict v = p.Judge(s);
  // Its name and the quote's qualifiedSigner are not the enrolled AK's, and
  // the quote does not verify with the enrolled key.
  BOOST_TEST((Codes(v) == CodeList{alarm::kAkUnknown, alarm::kAkUnknown, alarm::kQuoteSignatureInvalid}), Describe(v));
}

BOOST_AUTO_TEST_CASE(a_dead_emulator_is_unreachable) {
  Platform p;
  p.Enroll();
  BOOST_REQUIRE(p.dut->emulator() != nullptr);
  p.dut->emulator()->Kill(SIGKILL);
  auto s = TakeSnapshot(p.dut.tpm(), SnapshotOptions{});
  BOOST_REQUIRE_MESSAGE(!s.ok(), "a snapshot of a dead TPM");
  const Alarm a = TpmUnreachable(s.status());
  BOOST_TEST(a.code == alarm::kTpmUnreachable);
  BOOST_TEST(a.message == "TPM 2.0 device detected but a connection cannot be established");
  // The emulator's death, or the socket it left: never a TPM response code.
  const std::string layer = a.evidence.at("layer");
  BOOST_TEST((layer == "emulator" || layer == "transport"), layer << ": " << a.evidence.at("detail"));
  BOOST_TEST(!a.evidence.at("detail").empty());
}

}  // namespace
}  // namespace tpmlab::testing
