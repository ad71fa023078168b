// Ownership and platform operations on a real swtpm: TPM2_Clear and
// ClearControl, new endorsement and platform seeds, hierarchies switched off
// and on, PCR banks reallocated, the clock set, and the handles the TPM lists.
#define BOOST_TEST_MODULE ownership
#include <boost/test/unit_test.hpp>

#include <algorithm>

#include "emulated.h"

namespace tpmlab::testing {
namespace {

constexpr uint32_t kRcDisabled = 0x120;
constexpr uint32_t kRcValue = 0x084;
constexpr uint32_t kRcAuthFail = 0x08E;

// A format-one response code without its handle/parameter/session number.
uint32_t BaseRc(uint32_t rc) { return (rc & 0x80) ? (rc & 0xBF) : (rc & 0xFFF); }

bool Contains(const std::vector<uint32_t>& v, uint32_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

struct StartedDut : EmulatedDut {
  StartedDut() { REQUIRE_OK(dut->Startup({})); }
};

BOOST_AUTO_TEST_CASE(clear_via_lockout_makes_a_new_srk_and_resets_reset_count) {
  StartedDut dut;
  REQUIRE_OK(dut->PowerCycle(PowerCycleKind::kReset, {}));
  const KeyInfo before = Require(dut.tpm().EnsureSrk());
  BOOST_TEST(Require(dut.tpm().ReadClock()).clock.reset_count > 0u);

  REQUIRE_OK(dut.tpm().Clear(Hierarchy::kLockout));
  const ClockInfo clock = Require(dut.tpm().ReadClock()).clock;
  BOOST_TEST(clock.reset_count == 0u);
  BOOST_TEST(clock.restart_count == 0u);
  const KeyInfo after = Require(dut.tpm().EnsureSrk());
  BOOST_TEST(after.created);
  BOOST_TEST(after.name != before.name);
}

BOOST_AUTO_TEST_CASE(clear_control_disables_clear_until_platform_enables_it) {
  StartedDut dut;
  REQUIRE_OK(dut.tpm().ClearControl(Hierarchy::kLockout, /*disable=*/true));
  Status refused = dut.tpm().Clear(Hierarchy::kLockout);
  BOOST_TEST((refused.layer() == Layer::kTpm), refused.ToString());
  BOOST_TEST(refused.tpm_rc() == kRcDisabled, refused.ToString());
  // Platform auth is no way around it either.
  refused = dut.tpm().Clear(Hierarchy::kPlatform);
  BOOST_TEST(refused.tpm_rc() == kRcDisabled, refused.ToString());

  // Only the platform may re-enable.
  Status lockout = dut.tpm().ClearControl(Hierarchy::kLockout, /*disable=*/false);
  BOOST_TEST((lockout.layer() == Layer::kTpm), lockout.ToString());
  BOOST_TEST(BaseRc(lockout.tpm_rc()) == kRcAuthFail, lockout.ToString());

  REQUIRE_OK(dut.tpm().ClearControl(Hierarchy::kPlatform, /*disable=*/false));
  REQUIRE_OK(dut.tpm().Clear(Hierarchy::kLockout));

  // Owner and endorsement cannot authorise ClearControl; the harness says so.
  BOOST_TEST((dut.tpm().ClearControl(Hierarchy::kOwner, true).layer() == Layer::kHarness));
}

BOOST_AUTO_TEST_CASE(change_eps_changes_the_ek_name) {
  StartedDut dut;
  const KeyInfo before = Require(dut.tpm().EnsureEk());
  const Bytes cert_before = Require(dut.tpm().NvRead(kEkCertRsaIndex));
  REQUIRE_OK(dut.tpm().ChangeEps());

  // The persisted EK went with the old seed.
  BOOST_TEST(!Contains(Require(dut.tpm().PersistentHandles()), kEkHandle));
  const KeyInfo after = Require(dut.tpm().EnsureEk());
  BOOST_TEST(after.created);
  BOOST_TEST(after.name != before.name);

  // The EK certificate (a platform-created NV index) stays, now certifying a
  // key the TPM no longer has.
  const auto nv = Require(dut.tpm().NvIndices());
  BOOST_TEST(Contains(nv, kEkCertRsaIndex));
  if (Contains(nv, kEkCertRsaIndex)) BOOST_TEST(Require(dut.tpm().NvRead(kEkCertRsaIndex)) == cert_before);
}

BOOST_AUTO_TEST_CASE(change_pps_succeeds_and_leaves_the_ek) {
  StartedDut dut;
  const KeyInfo ek = Require(dut.tpm().EnsureEk());
  REQUIRE_OK(dut.tpm().ChangePps());
  const KeyInfo again = Require(dut.tpm().EnsureEk());
  BOOST_TEST(!again.created);
  BOOST_TEST(again.name == ek.name);
}

BOOST_AUTO_TEST_CASE(a_disabled_endorsement_hierarchy_has_no_ek_until_enabled_or_reset) {
  StartedDut dut;
  const KeyInfo ek = Require(dut.tpm().EnsureEk());

  REQUIRE_OK(dut.tpm().HierarchyControl(Hierarchy::kEndorsement, /*enable=*/false));
  BOOST_TEST(!Require(dut.tpm().Properties()).endorsement_enabled);
  auto missing = dut.tpm().EnsureEk();
  BOOST_REQUIRE(!missing.ok());
  BOOST_TEST((missing.status().layer() == Layer::kTpm), missing.status().ToString());
  BOOST_TEST_MESSAGE("EnsureEk with endorsement disabled: " << missing.status().ToString());

  REQUIRE_OK(dut.tpm().HierarchyControl(Hierarchy::kEndorsement, /*enable=*/true));
  BOOST_TEST(Require(dut.tpm().EnsureEk()).name == ek.name);

  // Disabled again, a Startup(CLEAR) turns it back on.
  REQUIRE_OK(dut.tpm().HierarchyControl(Hierarchy::kEndorsement, /*enable=*/false));
  BOOST_REQUIRE(!dut.tpm().EnsureEk().ok());
  REQUIRE_OK(dut->PowerCycle(PowerCycleKind::kReset, {}));
  BOOST_TEST(Require(dut.tpm().Properties()).endorsement_enabled);
  BOOST_TEST(Require(dut.tpm().EnsureEk()).name == ek.name);

  // Owner likewise; lockout is no hierarchy one can switch.
  REQUIRE_OK(dut.tpm().HierarchyControl(Hierarchy::kOwner, false));
  BOOST_TEST(!Require(dut.tpm().Properties()).owner_enabled);
  BOOST_TEST(!dut.tpm().EnsureSrk().ok());
  REQUIRE_OK(dut.tpm().HierarchyControl(Hierarchy::kOwner, true));
  BOOST_TEST(dut.tpm().EnsureSrk().ok());
  BOOST_TEST((dut.tpm().HierarchyControl(Hierarchy::kLockout, false).layer() == Layer::kHarness));
}

BOOST_AUTO_TEST_CASE(pcr_allocate_takes_effect_at_the_next_reset) {
  StartedDut dut;
  const std::vector<HashAlg> both = {HashAlg::kSha1, HashAlg::kSha256};
  BOOST_TEST(Require(dut.tpm().PcrBanks()) == both);

  REQUIRE_OK(dut.tpm().PcrAllocate({HashAlg::kSha1}));
  BOOST_TEST(Require(dut.tpm().PcrBanks()) == both);  // not yet
  REQUIRE_OK(dut->PowerCycle(PowerCycleKind::kReset, {}));
  BOOST_TEST(Require(dut.tpm().PcrBanks()) == std::vector<HashAlg>{HashAlg::kSha1});

  REQUIRE_OK(dut.tpm().PcrAllocate({HashAlg::kSha256, HashAlg::kSha384}));
  REQUIRE_OK(dut->PowerCycle(PowerCycleKind::kPowerLoss, {}));
  BOOST_TEST(Require(dut.tpm().PcrBanks()) == (std::vector<HashAlg>{HashAlg::kSha256, HashAlg::kSha384}));
}

BOOST_AUTO_TEST_CASE(clock_set_moves_forward_and_never_back) {
  StartedDut dut;
  const ClockInfo start = Require(dut.tpm().ReadClock()).clock;
  const uint64_t target = start.clock_ms + 3600 * 1000;
  REQUIRE_OK(dut.tpm().ClockSet(target));
  const ClockInfo moved = Require(dut.tpm().ReadClock()).clock;
  BOOST_TEST(moved.clock_ms >= target);
  BOOST_TEST_MESSAGE("safe before ClockSet " << start.safe << ", after " << moved.safe);

  Status back = dut.tpm().ClockSet(start.clock_ms);
  BOOST_TEST((back.layer() == Layer::kTpm), back.ToString());
  BOOST_TEST(BaseRc(back.tpm_rc()) == kRcValue, back.ToString());
  BOOST_TEST(Require(dut.tpm().ReadClock()).clock.clock_ms >= target);
}

// libtpms writes Clock to NV when it crosses a multiple of 2^12 ms (4096 ms),
// and that write is what sets safe again after a power loss: a ClockSet far
// forward does it at once.
BOOST_AUTO_TEST_CASE(clock_set_past_an_nv_update_makes_the_clock_safe_again) {
  StartedDut dut;
  REQUIRE_OK(dut->PowerCycle(PowerCycleKind::kPowerLoss, {}));
  const ClockInfo lost = Require(dut.tpm().ReadClock()).clock;
  BOOST_TEST(!lost.safe);
  // A margin a slow host cannot eat: ClockSet refuses a value in the past.
  REQUIRE_OK(dut.tpm().ClockSet(lost.clock_ms + 60'000));
  const ClockInfo small = Require(dut.tpm().ReadClock()).clock;
  BOOST_TEST_MESSAGE("safe after ClockSet +60 s: " << small.safe);
  REQUIRE_OK(dut.tpm().ClockSet(small.clock_ms + 24ull * 3600 * 1000));
  BOOST_TEST(Require(dut.tpm().ReadClock()).clock.safe);
}

BOOST_AUTO_TEST_CASE(handles_list_the_keys_and_the_ek_certificate) {
  StartedDut dut;
  REQUIRE_OK(dut.tpm().EnsureEk());
  REQUIRE_OK(dut.tpm().EnsureSrk());
  REQUIRE_OK(dut.tpm().EnsureAk(KeyType::kEccP256));
  const auto persistent = Require(dut.tpm().PersistentHandles());
  for (uint32_t h : {kEkHandle, kSrkHandle, kAkHandle}) BOOST_TEST(Contains(persistent, h), h);
  for (uint32_t h : persistent) BOOST_TEST((h & 0xFF000000u) == 0x81000000u);
  BOOST_TEST(std::is_sorted(persistent.begin(), persistent.end()));

  const auto nv = Require(dut.tpm().NvIndices());
  BOOST_TEST(Contains(nv, kEkCertRsaIndex));
  for (uint32_t h : nv) BOOST_TEST((h & 0xFF000000u) == 0x01000000u);
}

}  // namespace
}  // namespace tpmlab::testing
