// Drift on a real swtpm: boot the baseline firmware and snapshot it, reset
// and boot a variant, snapshot again; the drift names exactly the PCRs the
// variant moves and the cause of the move. Two boots of one model are no
// drift. The TPM-side causes (an unlogged extend, a power loss, a clear, a
// locality-3 or H-CRTM boot) show up from what the TPM itself reports.
#define BOOST_TEST_MODULE drift_models
#include <boost/test/unit_test.hpp>

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "harness/drift.h"
#include "platform.h"

namespace tpmlab::testing {
namespace {

using Platform = EmulatedPlatform;

std::set<int> MovedPcrs(const Drift& d) {
  std::set<int> pcrs;
  for (const auto& [bank, list] : d.pcrs) pcrs.insert(list.begin(), list.end());
  for (const auto& [bank, list] : d.pcrs) {
    BOOST_TEST((std::set<int>(list.begin(), list.end()) == pcrs), HashAlgName(bank));
  }
  return pcrs;
}

using CodePcr = std::pair<std::string, int>;
std::set<CodePcr> Causes(const Drift& d) {
  std::set<CodePcr> out;
  for (const auto& c : d.causes) out.emplace(c.code, c.pcr);
  return out;
}

std::string Describe(const Drift& d) { return DriftToJson(d).dump(); }

struct Variant {
  std::string name;
  std::set<int> pcrs;
  std::set<CodePcr> causes;
};

BOOST_AUTO_TEST_CASE(each_variant_drifts_in_its_pcrs_for_its_cause) {
  using namespace drift;
  const std::vector<Variant> variants = {
      {"firmware-blob", {0}, {{kFirmwareBlob, 0}}},
      {"option-rom", {2}, {{kOptionRom, 2}}},
      {"secure-boot-off", {7}, {{kSecureBootVariable, 7}}},
      {"dbx-update", {7}, {{kSecureBootVariable, 7}}},
      {"boot-order", {1}, {{kBootOrder, 1}}},
      {"kernel-cmdline", {8}, {{kKernelCmdline, 8}}},
      {"systemd-boot",
       {4, 7, 8, 9, 12},
       {{kBootLoader, 4},
        {kSecureBootVariable, 7},
        {kBootLoader, 8},
        {kKernelCmdline, 8},
        {kKernel, 9},
        {kKernelCmdline, 12}}},
  };
  Platform p("baseline");
  const Snapshot baseline = p.Snap();
  BOOST_TEST(baseline.banks.size() == 2u);
  for (const auto& v : variants) {
    p.Reboot(v.name);
    const Snapshot variant = p.Snap();
    BOOST_TEST(variant.clock().reset_count > baseline.clock().reset_count, v.name);
    const Drift d = DiffSnapshots(baseline, variant);
    BOOST_TEST(d.pcrs.size() == 2u, v.name << ": " << Describe(d));
    BOOST_TEST((MovedPcrs(d) == v.pcrs), v.name << ": " << Describe(d));
    BOOST_TEST((Causes(d) == v.causes), v.name << ": " << Describe(d));

    // The same model booted again: nothing moved, nothing to explain.
    p.Reboot(v.name);
    const Drift again = DiffSnapshots(variant, p.Snap());
    BOOST_TEST(again.empty(), v.name << " twice: " << Describe(again));
  }
  p.Reboot("baseline");
  const Drift back = DiffSnapshots(baseline, p.Snap());
  BOOST_TEST(back.empty(), "baseline again: " << Describe(back));
}

BOOST_AUTO_TEST_CASE(an_unlogged_extend_is_unexplained) {
  Platform p("baseline");
  const Snapshot before = p.Snap();
  // The firmware extends PCR7 once more and logs nothing.
  std::map<HashAlg, Bytes> digests;
  for (HashAlg bank : kBanks) digests[bank] = Require(Hash(bank, AsBytes("unlogged policy")));
  REQUIRE_OK(p.dut.tpm().Extend(7, digests));
  const Drift d = DiffSnapshots(before, p.Snap());
  BOOST_TEST((MovedPcrs(d) == std::set<int>{7}), Describe(d));
  BOOST_TEST(d.events.empty());
  BOOST_TEST((Causes(d) == std::set<CodePcr>{{drift::kUnexplainedPcrChange, 7}}), Describe(d));
}

BOOST_AUTO_TEST_CASE(a_power_loss_is_the_only_drift) {
  Platform p("baseline");
  // An orderly reboot first, so the TPM's clock has been saved (safe YES).
  p.Reboot("baseline");
  const Snapshot before = p.Snap();
  BOOST_REQUIRE(before.clock().safe);
  p.Reboot("baseline", PowerCycleKind::kPowerLoss);
  const Snapshot after = p.Snap();
  BOOST_TEST(!after.clock().safe);
  const Drift d = DiffSnapshots(before, after);
  BOOST_TEST(d.pcrs.empty(), Describe(d));
  BOOST_TEST(d.events.empty(), Describe(d));
  BOOST_TEST((Causes(d) == std::set<CodePcr>{{drift::kPowerLoss, -1}}), Describe(d));
}

BOOST_AUTO_TEST_CASE(a_clear_is_an_ownership_clear) {
  Platform p("baseline");
  p.Reboot("baseline");
  const Snapshot before = p.Snap();
  REQUIRE_OK(p.dut.tpm().Clear(Hierarchy::kLockout));
  const Drift d = DiffSnapshots(before, p.Snap());
  BOOST_TEST(d.pcrs.empty(), Describe(d));  // a clear leaves the PCRs alone
  BOOST_TEST((Causes(d) == std::set<CodePcr>{{drift::kOwnershipClear, -1}}), Describe(d));
}

BOOST_AUTO_TEST_CASE(locality_3_and_hcrtm_boots) {
  Platform p("baseline");
  const Snapshot plain = p.Snap();
  BootOptions loc3;
  loc3.startup_locality = 3;
  p.RebootWith(loc3);
  const Snapshot at3 = p.Snap();
  Drift d = DiffSnapshots(plain, at3);
  BOOST_TEST((MovedPcrs(d) == std::set<int>{0}), Describe(d));
  BOOST_TEST((Causes(d) == std::set<CodePcr>{{drift::kStartupLocality, 0}}), Describe(d));

  BootOptions hcrtm = loc3;
  hcrtm.hcrtm_data = Bytes{'h', 'c', 'r', 't', 'm'};
  p.RebootWith(hcrtm);
  d = DiffSnapshots(at3, p.Snap());
  BOOST_TEST((MovedPcrs(d) == std::set<int>{0}), Describe(d));
  BOOST_TEST((Causes(d) == std::set<CodePcr>{{drift::kHcrtm, 0}}), Describe(d));
}

}  // namespace
}  // namespace tpmlab::testing
