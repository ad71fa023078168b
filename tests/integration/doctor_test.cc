// The doctor checklist on a real swtpm booted by the baseline firmware model:
// all clear on a healthy chip, and the item that should fail failing (and
// saying why) for a disabled endorsement hierarchy, a new endorsement seed, a
// power loss, an unlogged extend and a TPM in failure mode.
#define BOOST_TEST_MODULE doctor
#include <boost/test/unit_test.hpp>

#include "harness/doctor.h"
#include "platform.h"

namespace tpmlab::testing {
namespace {

DoctorOptions WithLog(const EmulatedPlatform& p) {
  DoctorOptions o;
  o.eventlog = WriteEventLog(p.firmware.log());
  return o;
}

const DoctorItem& Get(const std::vector<DoctorItem>& items, const char* id) {
  const DoctorItem* item = FindDoctorItem(items, id);
  BOOST_REQUIRE_MESSAGE(item != nullptr, std::string("no item ") + id);
  return *item;
}

DoctorStatus StatusOf(const std::vector<DoctorItem>& items, const char* id) { return Get(items, id).status; }

void Show(const std::vector<DoctorItem>& items) {
  for (const auto& i : items) {
    BOOST_TEST_MESSAGE(DoctorStatusName(i.status) << " " << i.id << ": " << i.detail);
  }
}

BOOST_AUTO_TEST_CASE(every_item_is_ok_on_a_healthy_swtpm) {
  EmulatedPlatform p;
  const auto items = RunDoctor(p.dut.tpm(), WithLog(p));
  Show(items);
  BOOST_TEST(items.size() == 9u);
  for (const auto& i : items) {
    BOOST_TEST((i.status == DoctorStatus::kOk), i.id << ": " << DoctorStatusName(i.status) << ": " << i.detail);
    BOOST_TEST(!i.title.empty());
    BOOST_TEST(!i.detail.empty());
  }
  BOOST_TEST((DoctorOverall(items) == DoctorStatus::kOk));
  BOOST_TEST(DoctorReachedTpm(items));
  BOOST_TEST(Get(items, doctor::kTpmVersion).detail.find("TPM 2.0") != std::string::npos);
  const auto json = DoctorToJson(items);
  BOOST_TEST(json["status"] == "ok");
  BOOST_TEST(json["items"].size() == 9u);
  BOOST_TEST(json["items"][0]["id"] == doctor::kTpmPresent);
}

BOOST_AUTO_TEST_CASE(without_a_log_the_replay_is_skipped_with_the_reason) {
  EmulatedPlatform p;
  DoctorOptions o;
  o.eventlog_missing_reason = "no firmware model found";
  const auto items = RunDoctor(p.dut.tpm(), o);
  BOOST_TEST((StatusOf(items, doctor::kEventlog) == DoctorStatus::kSkipped));
  BOOST_TEST(Get(items, doctor::kEventlog).detail == "no firmware model found");
  BOOST_TEST((StatusOf(items, doctor::kAttestation) == DoctorStatus::kOk), Get(items, doctor::kAttestation).detail);
  BOOST_TEST((DoctorOverall(items) == DoctorStatus::kOk));
}

BOOST_AUTO_TEST_CASE(a_disabled_endorsement_hierarchy_fails_the_ek_item) {
  EmulatedPlatform p;
  REQUIRE_OK(p.dut.tpm().HierarchyControl(Hierarchy::kEndorsement, /*enable=*/false));
  const auto items = RunDoctor(p.dut.tpm(), WithLog(p));
  Show(items);
  BOOST_TEST(items.size() == 9u);
  const DoctorItem& ek = Get(items, doctor::kEkPresent);
  BOOST_TEST((ek.status == DoctorStatus::kFail));
  BOOST_TEST(ek.detail.find("no EK") != std::string::npos, ek.detail);
  BOOST_TEST(!ek.advice.empty());
  const DoctorItem& hierarchies = Get(items, doctor::kHierarchies);
  BOOST_TEST((hierarchies.status == DoctorStatus::kFail));
  BOOST_TEST(hierarchies.detail.find("endorsement") != std::string::npos, hierarchies.detail);
  const DoctorItem& attestation = Get(items, doctor::kAttestation);
  BOOST_TEST((attestation.status == DoctorStatus::kFail));
  BOOST_TEST(attestation.detail.find("HIERARCHY_DISABLED") != std::string::npos, attestation.detail);
  // The certificate is still in NV, just not compared with an EK.
  BOOST_TEST((StatusOf(items, doctor::kEkCertificate) == DoctorStatus::kOk));
  BOOST_TEST((StatusOf(items, doctor::kEventlog) == DoctorStatus::kOk));
  BOOST_TEST((DoctorOverall(items) == DoctorStatus::kFail));
  BOOST_TEST(DoctorReachedTpm(items));
  BOOST_TEST(DoctorToJson(items)["status"] == "fail");
}

BOOST_AUTO_TEST_CASE(a_new_endorsement_seed_orphans_the_certificate_and_the_enrollment) {
  EmulatedPlatform p;
  DoctorOptions o = WithLog(p);
  o.enrollment = EnrollFromSnapshot(p.Snap(), "dut0");
  BOOST_TEST((DoctorOverall(RunDoctor(p.dut.tpm(), o)) == DoctorStatus::kOk));

  REQUIRE_OK(p.dut.tpm().ChangeEps());
  const auto items = RunDoctor(p.dut.tpm(), o);
  Show(items);
  BOOST_TEST((StatusOf(items, doctor::kEkPresent) == DoctorStatus::kOk));  // a new one
  const DoctorItem& cert = Get(items, doctor::kEkCertificate);
  BOOST_TEST((cert.status == DoctorStatus::kFail));
  BOOST_TEST(cert.detail.find("another key") != std::string::npos, cert.detail);
  const DoctorItem& attestation = Get(items, doctor::kAttestation);
  BOOST_TEST((attestation.status == DoctorStatus::kFail));
  BOOST_TEST(attestation.detail.find("EK_CHANGED") != std::string::npos, attestation.detail);
}

BOOST_AUTO_TEST_CASE(a_power_loss_warns_about_the_clock) {
  EmulatedPlatform p;
  p.Reboot("baseline", PowerCycleKind::kPowerLoss);
  const auto items = RunDoctor(p.dut.tpm(), WithLog(p));
  Show(items);
  const DoctorItem& clock = Get(items, doctor::kClock);
  BOOST_TEST((clock.status == DoctorStatus::kWarn));
  BOOST_TEST(clock.detail.find("safe NO") != std::string::npos, clock.detail);
  BOOST_TEST((StatusOf(items, doctor::kEventlog) == DoctorStatus::kOk));
  BOOST_TEST((DoctorOverall(items) == DoctorStatus::kWarn));
}

BOOST_AUTO_TEST_CASE(an_unlogged_extend_fails_the_replay) {
  EmulatedPlatform p;
  REQUIRE_OK(p.dut.tpm().Extend(8, {{HashAlg::kSha256, Bytes(32, 0xAB)}}));
  const auto items = RunDoctor(p.dut.tpm(), WithLog(p));
  const DoctorItem& log = Get(items, doctor::kEventlog);
  BOOST_TEST((log.status == DoctorStatus::kFail));
  BOOST_TEST(log.detail.find("sha256 PCRs 8") != std::string::npos, log.detail);
  BOOST_TEST(log.detail.find("sha1") == std::string::npos, log.detail);
  BOOST_TEST(Get(items, doctor::kAttestation).detail.find("PCR_REPLAY_MISMATCH") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_tpm_in_failure_mode_fails_the_first_item_and_skips_the_rest) {
  EmulatedPlatform p;
  FaultRule failure;
  failure.kind = FaultKind::kResponseCode;
  failure.response_code = kTpmRcFailure;
  failure.count = UINT32_MAX;
  p.dut->faults().Add(failure);
  const auto items = RunDoctor(p.dut.tpm(), WithLog(p));
  Show(items);
  BOOST_REQUIRE(items.size() == 9u);
  BOOST_TEST((items[0].status == DoctorStatus::kFail));
  BOOST_TEST(items[0].detail.find("GetCapability") != std::string::npos, items[0].detail);
  for (size_t i = 1; i < items.size(); ++i) BOOST_TEST((items[i].status == DoctorStatus::kSkipped));
  BOOST_TEST(!DoctorReachedTpm(items));
  BOOST_TEST((DoctorOverall(items) == DoctorStatus::kFail));
}

}  // namespace
}  // namespace tpmlab::testing
