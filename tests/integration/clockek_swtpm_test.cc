// On real swtpms: the quote retried when a PCR moves between the read and
// the Quote; an NV state revert followed by an orderly reboot (a lower clock
// with safe = YES); a swapped chip against the previous snapshot; and an EK
// certificate issued by a CA this test makes (swtpm_setup --create-ek-cert
// signing with it), checked against that root, a wrong root and none.
#define BOOST_TEST_MODULE clockek_swtpm
#include <boost/test/unit_test.hpp>

#include <openssl/pem.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <set>
#include <string>

#include "emulated.h"
#include "harness/doctor.h"
#include "harness/ek_certificate.h"
#include "harness/enrollment.h"
#include "harness/snapshot_json.h"
#include "harness/verify.h"
#include "test_certificates.h"

namespace tpmlab::testing {
namespace {

std::string Describe(const Verdict& v) { return VerdictToJson(v).dump(); }

bool NotRunSays(const Verdict& v, const std::string& code, const std::string& words) {
  for (const auto& line : v.not_run) {
    if (line.rfind(code + ": ", 0) == 0 && line.find(words) != std::string::npos) return true;
  }
  return false;
}

// A started DUT on its own swtpm (a copy of the shared manufactured chip).
struct StartedDut : EmulatedDut {
  StartedDut() { REQUIRE_OK(dut->Startup({})); }
};

const std::map<HashAlg, Bytes> kExtendDigest = {{HashAlg::kSha1, Bytes(20, 0xA5)}, {HashAlg::kSha256, Bytes(32, 0xA5)}};

// --- the quote retry ---------------------------------------------------------

// Something (IMA, systemd) extends a PCR once between the read and the first
// Quote: the second round matches, and the snapshot says it took two.
BOOST_AUTO_TEST_CASE(an_extend_between_read_and_quote_is_retried_once) {
  StartedDut d;
  SnapshotOptions o;
  o.between_read_and_quote = [](Tpm& tpm, int attempt) {
    return attempt == 1 ? tpm.Extend(16, kExtendDigest) : Status::Ok();
  };
  const Snapshot s = Require(TakeSnapshot(d.tpm(), o));
  BOOST_TEST(s.quote_attempts == 2);
  BOOST_TEST(s.quote_check.verified(), s.quote_check.failure);
  const Verdict v = Verify(s, nullptr, nullptr);
  BOOST_TEST(!v.Has(alarm::kQuotePcrDigestMismatch), Describe(v));
  BOOST_TEST(SnapshotToJson(s)["quote"]["attempts"] == 2);
  // Without the extend, one round.
  BOOST_TEST(Require(TakeSnapshot(d.tpm(), SnapshotOptions{})).quote_attempts == 1);
}

// A PCR that moves before every Quote: after the bound (5, as rust-keylime)
// the last quote is kept and the verifier raises the mismatch.
BOOST_AUTO_TEST_CASE(an_extend_before_every_quote_ends_with_the_mismatch_alarm) {
  StartedDut d;
  SnapshotOptions o;
  int extends = 0;
  o.between_read_and_quote = [&extends](Tpm& tpm, int) {
    ++extends;
    return tpm.Extend(16, kExtendDigest);
  };
  const Snapshot s = Require(TakeSnapshot(d.tpm(), o));
  BOOST_TEST(s.quote_attempts == 5);
  BOOST_TEST(extends == 5);
  BOOST_TEST(s.quote_check.signature_ok);
  BOOST_TEST(!s.quote_check.pcr_digest_ok);
  const Verdict v = Verify(s, nullptr, nullptr);
  BOOST_TEST(v.Has(alarm::kQuotePcrDigestMismatch), Describe(v));
  BOOST_TEST(!v.Has(alarm::kQuoteSignatureInvalid), Describe(v));
}

// --- the clock across a revert and a reboot -----------------------------------

// A vTPM snapshot restored, the clock brought past an NV save (safe = YES
// again) and an orderly reboot: resetCount moved on, the clock is below one
// the TPM reported before the revert, and it says safe = YES.
BOOST_AUTO_TEST_CASE(a_reverted_clock_after_an_orderly_reboot_is_not_monotonic) {
  StartedDut d;
  REQUIRE_OK(d->PowerCycle(PowerCycleKind::kReset, {}));
  // The keys exist before the checkpoint, so the reverted chip still has them.
  BOOST_REQUIRE(Require(TakeSnapshot(d.tpm(), SnapshotOptions{})).quote_check.verified());
  const fs::path checkpoint = d.root / "checkpoint";
  REQUIRE_OK(d->SaveState(checkpoint));
  TimeInfo t = Require(d.tpm().ReadClock());
  REQUIRE_OK(d.tpm().ClockSet(t.clock.clock_ms + 600'000));
  REQUIRE_OK(d->PowerCycle(PowerCycleKind::kReset, {}));
  const Snapshot before = Require(TakeSnapshot(d.tpm(), SnapshotOptions{}));
  BOOST_REQUIRE(before.quote_check.verified());
  BOOST_REQUIRE(before.clock().safe);

  REQUIRE_OK(d->RestoreState(checkpoint));
  REQUIRE_OK(d->Startup({}));
  t = Require(d.tpm().ReadClock());
  // Forward past the next NV save of the clock (libtpms: every 4.096 s of
  // Clock), which makes it safe again; still far below `before`.
  REQUIRE_OK(d.tpm().ClockSet(t.clock.clock_ms + 10'000));
  REQUIRE_OK(d->PowerCycle(PowerCycleKind::kReset, {}));
  REQUIRE_OK(d->PowerCycle(PowerCycleKind::kReset, {}));
  const Snapshot now = Require(TakeSnapshot(d.tpm(), SnapshotOptions{}));
  BOOST_REQUIRE(now.quote_check.verified());
  BOOST_TEST_MESSAGE("before: reset " << before.clock().reset_count << " clock " << before.clock().clock_ms
                                      << "; now: reset " << now.clock().reset_count << " clock " << now.clock().clock_ms
                                      << " safe " << now.clock().safe);
  BOOST_REQUIRE(now.clock().safe);
  BOOST_REQUIRE(now.clock().reset_count > before.clock().reset_count);
  BOOST_REQUIRE(now.clock().clock_ms < before.clock().clock_ms);

  const Verdict v = Verify(now, &before, nullptr);
  BOOST_TEST(v.Has(alarm::kClockNotMonotonic), Describe(v));
  BOOST_TEST(!v.Has(alarm::kCounterRollback), Describe(v));
  BOOST_TEST(!v.Has(alarm::kClockNotSafe), Describe(v));
  BOOST_TEST(!v.Has(alarm::kClockSkew), Describe(v));
}

// --- a swapped chip -----------------------------------------------------------

// The previous snapshot is of another chip (a new endorsement seed: another
// EK) that had booted more often: the counters are not compared, the EK is
// EK_CHANGED against the enrollment, and nothing says COUNTER_ROLLBACK.
BOOST_AUTO_TEST_CASE(a_previous_snapshot_of_another_chip_is_not_a_rollback) {
  StartedDut old_chip, new_chip;
  for (int i = 0; i < 3; ++i) REQUIRE_OK(old_chip->PowerCycle(PowerCycleKind::kReset, {}));
  const Snapshot before = Require(TakeSnapshot(old_chip.tpm(), SnapshotOptions{}));
  const Enrollment enrolled = EnrollFromSnapshot(before, "dut0");
  REQUIRE_OK(new_chip.tpm().ChangeEps());
  const Snapshot now = Require(TakeSnapshot(new_chip.tpm(), SnapshotOptions{}));
  BOOST_REQUIRE(now.ek.name != before.ek.name);
  BOOST_REQUIRE(now.clock().reset_count < before.clock().reset_count);

  const Verdict v = Verify(now, &before, &enrolled);
  BOOST_TEST(v.Has(alarm::kEkChanged), Describe(v));
  BOOST_TEST(!v.Has(alarm::kCounterRollback), Describe(v));
  BOOST_TEST(!v.Has(alarm::kClockNotMonotonic), Describe(v));
  // (not judged: the new chip's quote is not signed by the enrolled AK, and
  // the previous snapshot is another TPM)
  BOOST_TEST(NotRunSays(v, alarm::kCounterRollback, ""), Describe(v));
  // Without an enrollment the quote verifies with its own AK: the counters
  // are still not compared, the previous snapshot being another TPM.
  const Verdict alone = Verify(now, &before, nullptr);
  BOOST_TEST(!alone.Has(alarm::kCounterRollback), Describe(alone));
  BOOST_TEST(NotRunSays(alone, alarm::kCounterRollback, "another TPM"), Describe(alone));
  // The certificate in NV still certifies the old EK.
  BOOST_TEST(v.Has(alarm::kEkCertInvalid), Describe(v));
}

// --- hierarchies: one rule in verify and doctor ---------------------------------

// The platform hierarchy disabled (as firmware commonly leaves it): a warning
// in both; the owner hierarchy disabled too: an error in verify, a failed item
// in doctor.
BOOST_AUTO_TEST_CASE(a_disabled_platform_hierarchy_is_a_warning_in_verify_and_doctor) {
  StartedDut d;
  REQUIRE_OK(d.tpm().HierarchyControl(Hierarchy::kPlatform, /*enable=*/false));
  const Snapshot s = Require(TakeSnapshot(d.tpm(), SnapshotOptions{}));
  const Verdict v = Verify(s, nullptr, nullptr);
  BOOST_REQUIRE_MESSAGE(v.Count(alarm::kHierarchyDisabled) == 1u, Describe(v));
  for (const Alarm& a : v.alarms) {
    if (a.code == alarm::kHierarchyDisabled) BOOST_TEST((a.severity == Severity::kWarning), Describe(v));
  }
  auto items = RunDoctor(d.tpm(), DoctorOptions{});
  const DoctorItem* hierarchies = FindDoctorItem(items, doctor::kHierarchies);
  BOOST_REQUIRE(hierarchies != nullptr);
  BOOST_TEST((hierarchies->status == DoctorStatus::kWarn), hierarchies->detail);

  // Owner off needs platform auth, which is gone until the next Startup(CLEAR).
  REQUIRE_OK(d->PowerCycle(PowerCycleKind::kReset, {}));
  REQUIRE_OK(d.tpm().HierarchyControl(Hierarchy::kOwner, /*enable=*/false));
  REQUIRE_OK(d.tpm().HierarchyControl(Hierarchy::kPlatform, /*enable=*/false));
  const TpmProperties p = Require(d.tpm().Properties());
  BOOST_REQUIRE(!p.owner_enabled && !p.platform_enabled);
  items = RunDoctor(d.tpm(), DoctorOptions{});
  hierarchies = FindDoctorItem(items, doctor::kHierarchies);
  BOOST_TEST((hierarchies->status == DoctorStatus::kFail), hierarchies->detail);
  Snapshot off = s;
  off.properties = p;
  const Verdict owner = Verify(off, nullptr, nullptr);
  bool error = false;
  for (const Alarm& a : owner.alarms) error |= a.code == alarm::kHierarchyDisabled && a.severity == Severity::kError;
  BOOST_TEST(error, Describe(owner));
}

// --- EK certificates from a CA this test makes ----------------------------------

void WritePem(const fs::path& file, EVP_PKEY* key, const Bytes& cert_der) {
  FILE* f = std::fopen(file.c_str(), "w");
  BOOST_REQUIRE(f != nullptr);
  if (key != nullptr) {
    PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  } else {
    const unsigned char* p = cert_der.data();
    X509* cert = d2i_X509(nullptr, &p, static_cast<long>(cert_der.size()));
    PEM_write_X509(f, cert);
    X509_free(cert);
  }
  std::fclose(f);
}

// A chip manufactured by swtpm_setup whose EK certificate the test's CA signs.
struct ChipWithOwnCa {
  ChipWithOwnCa() : ca(MakeTestCa("tpmlab test vendor CA", /*rsa=*/true)) {
    root = MakeTempDir("ekca");
    const fs::path ca_dir = root / "ca", state = root / "dut0";
    fs::create_directories(ca_dir);
    fs::create_directories(state);
    WritePem(ca_dir / "key.pem", ca.key, {});
    WritePem(ca_dir / "cert.pem", nullptr, ca.der);
    std::ofstream(root / "localca.conf") << "statedir = " << ca_dir.string() << "\nsigningkey = "
                                         << (ca_dir / "key.pem").string() << "\nissuercert = "
                                         << (ca_dir / "cert.pem").string() << "\ncertserial = "
                                         << (ca_dir / "serial").string() << "\n";
    std::ofstream(root / "setup.conf") << "create_certs_tool = swtpm_localca\ncreate_certs_tool_config = "
                                       << (root / "localca.conf").string()
                                       << "\ncreate_certs_tool_options = /dev/null\n";
    // swtpm_setup runs swtpm by its full path only.
    const std::string command = "swtpm_setup --tpm2 --tpmstate " + state.string() +
                                " --createek --create-ek-cert --pcr-banks sha1,sha256 --overwrite --config " +
                                (root / "setup.conf").string() + " --tpm \"$(command -v swtpm) socket\" > " +
                                (root / "setup.log").string() + " 2>&1";
    if (std::system(command.c_str()) != 0) {
      std::ifstream log(root / "setup.log");
      const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
      fs::remove_all(root);
      BOOST_FAIL("swtpm_setup failed: " << text);
    }
    EmulatedDutConfig config;
    config.state_dir = state;
    config.command_timeout = std::chrono::milliseconds(20000);
    dut = Require(Dut::LaunchEmulated(config));
    REQUIRE_OK(dut->Startup({}));
  }
  ~ChipWithOwnCa() {
    dut.reset();
    std::error_code ignored;
    fs::remove_all(root, ignored);
  }
  TestCa ca;
  fs::path root;
  std::unique_ptr<Dut> dut;
};

BOOST_AUTO_TEST_CASE(the_ek_certificate_chains_to_the_vendor_root_and_not_to_another) {
  ChipWithOwnCa chip;
  const Snapshot s = Require(TakeSnapshot(chip.dut->tpm(), SnapshotOptions{}));
  BOOST_REQUIRE(s.ek_certificate.has_value());
  BOOST_TEST(s.ek_certificate_index == kEkCertRsaIndex);

  VerifyOptions vendor;
  vendor.ek_roots = {chip.ca.der};
  const Verdict ok = Verify(s, nullptr, nullptr, vendor);
  BOOST_TEST(!ok.Has(alarm::kEkCertInvalid), Describe(ok));
  BOOST_TEST(!ok.Has(alarm::kEkCertMissing), Describe(ok));
  BOOST_TEST(!NotRunSays(ok, alarm::kEkCertInvalid, "chain"), Describe(ok));

  VerifyOptions stranger;
  stranger.ek_roots = {MakeTestCa("tpmlab unrelated root").der};
  const Verdict wrong = Verify(s, nullptr, nullptr, stranger);
  BOOST_TEST(wrong.Has(alarm::kEkCertInvalid), Describe(wrong));
  BOOST_TEST(wrong.Count(alarm::kEkCertInvalid) == 1u, Describe(wrong));

  const Verdict none = Verify(s, nullptr, nullptr);
  BOOST_TEST(!none.Has(alarm::kEkCertInvalid), Describe(none));
  BOOST_TEST(NotRunSays(none, alarm::kEkCertInvalid, "chain not checked"), Describe(none));

  // The doctor says the same.
  DoctorOptions doctor;
  doctor.ek_roots = vendor.ek_roots;
  auto items = RunDoctor(chip.dut->tpm(), doctor);
  const DoctorItem* cert = FindDoctorItem(items, doctor::kEkCertificate);
  BOOST_REQUIRE(cert != nullptr);
  BOOST_TEST((cert->status == DoctorStatus::kOk), cert->detail);
  BOOST_TEST(cert->detail.find("chains to a configured root") != std::string::npos, cert->detail);
  doctor.ek_roots = stranger.ek_roots;
  items = RunDoctor(chip.dut->tpm(), doctor);
  cert = FindDoctorItem(items, doctor::kEkCertificate);
  BOOST_TEST((cert->status == DoctorStatus::kFail), cert->detail);
  doctor.ek_roots.clear();
  items = RunDoctor(chip.dut->tpm(), doctor);
  cert = FindDoctorItem(items, doctor::kEkCertificate);
  BOOST_TEST(cert->detail.find("chain not checked") != std::string::npos, cert->detail);
}

}  // namespace
}  // namespace tpmlab::testing
