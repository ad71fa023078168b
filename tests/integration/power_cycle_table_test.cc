// The TPM 2.0 table, on a real swtpm: what each power cycle kind, a clear,
// a locality-3 Startup and an H-CRTM do to counters, PCRs and keys.
#define BOOST_TEST_MODULE power_cycle_table
#include <boost/test/unit_test.hpp>

#include "emulated.h"
#include "harness/attest.h"
#include "harness/rules.h"
#include "harness/snapshot.h"

namespace tpmlab::testing {
namespace {

const std::vector<HashAlg> kBanks = {HashAlg::kSha1, HashAlg::kSha256};

// Extends PCRs 0-23 that a platform or OS could touch, so that "reset" and
// "kept" can be told apart afterwards.
void ExtendEverything(Tpm& tpm) {
  for (int pcr : {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 23}) {
    std::map<HashAlg, Bytes> d;
    for (HashAlg b : kBanks) d[b] = Require(Hash(b, AsBytes("measurement " + std::to_string(pcr))));
    REQUIRE_OK(tpm.Extend(pcr, d));
  }
}

struct Cycle {
  ClockInfo before, after;
  PcrValues pcrs_before, pcrs_after;
  Snapshot snapshot;
};

// Boots (unless the TPM is already started), measures, cycles with `kind`,
// and snapshots.
Cycle RunCycle(EmulatedDut& dut, PowerCycleKind kind, bool started = false) {
  const BootOptions boot;
  if (!started) REQUIRE_OK(dut->Startup(boot));
  ExtendEverything(dut.tpm());
  Cycle c;
  c.before = Require(dut.tpm().ReadClock()).clock;
  c.pcrs_before = Require(dut.tpm().ReadPcrs(kBanks));
  REQUIRE_OK(dut->PowerCycle(kind, boot));
  c.pcrs_after = Require(dut.tpm().ReadPcrs(kBanks));
  c.snapshot = Require(TakeSnapshot(dut.tpm(), SnapshotOptions{}));
  BOOST_TEST(c.snapshot.quote_check.verified(), c.snapshot.quote_check.failure);
  c.after = c.snapshot.clock();
  return c;
}

bool AllReset(const PcrValues& pcrs, const BootOptions& boot = {}) {
  for (const auto& [bank, values] : pcrs) {
    for (int pcr = 0; pcr < kPcrCount; ++pcr) {
      Bytes expected = pcr == 0 ? ExpectedPcr0(bank, boot) : PcrResetValue(bank, pcr);
      if (values[pcr] != expected) return false;
    }
  }
  return true;
}

BOOST_AUTO_TEST_CASE(reset_increments_reset_count_and_clears_pcrs) {
  EmulatedDut dut;
  Cycle c = RunCycle(dut, PowerCycleKind::kReset);
  BOOST_TEST(c.after.reset_count == c.before.reset_count + 1);
  BOOST_TEST(c.after.restart_count == 0u);
  BOOST_TEST(AllReset(c.pcrs_after));
  BOOST_TEST(c.after.clock_ms >= c.before.clock_ms);
}

BOOST_AUTO_TEST_CASE(restart_increments_restart_count_and_clears_pcrs) {
  EmulatedDut dut;
  Cycle c = RunCycle(dut, PowerCycleKind::kRestart);
  BOOST_TEST(c.after.reset_count == c.before.reset_count);
  BOOST_TEST(c.after.restart_count == c.before.restart_count + 1);
  BOOST_TEST(AllReset(c.pcrs_after));
}

BOOST_AUTO_TEST_CASE(resume_keeps_pcrs_0_to_15_and_resets_16_and_23) {
  EmulatedDut dut;
  Cycle c = RunCycle(dut, PowerCycleKind::kResume);
  BOOST_TEST(c.after.reset_count == c.before.reset_count);
  BOOST_TEST(c.after.restart_count == c.before.restart_count + 1);
  for (HashAlg bank : kBanks) {
    for (int pcr = 0; pcr <= 15; ++pcr) {
      BOOST_TEST((c.pcrs_after[bank][pcr] == c.pcrs_before[bank][pcr]), "PCR " << pcr << " kept");
    }
    BOOST_TEST((c.pcrs_before[bank][16] != PcrResetValue(bank, 16)));
    BOOST_TEST((c.pcrs_after[bank][16] == PcrResetValue(bank, 16)));
    BOOST_TEST((c.pcrs_after[bank][23] == PcrResetValue(bank, 23)));
    for (int pcr = 17; pcr <= 22; ++pcr) BOOST_TEST((c.pcrs_after[bank][pcr] == PcrResetValue(bank, pcr)));
  }
}

BOOST_AUTO_TEST_CASE(power_loss_counts_a_reset_and_is_not_safe) {
  EmulatedDut dut;
  REQUIRE_OK(dut->Startup({}));
  const Bytes ek_before = Require(dut.tpm().EnsureEk()).name;
  REQUIRE_OK(dut->PowerCycle(PowerCycleKind::kReset, {}));  // leave a safe TPM first
  Cycle c = RunCycle(dut, PowerCycleKind::kPowerLoss, /*started=*/true);
  BOOST_TEST(c.before.safe);
  BOOST_TEST(c.after.reset_count == c.before.reset_count + 1);
  BOOST_TEST(c.after.restart_count == 0u);
  BOOST_TEST(!c.after.safe);
  BOOST_TEST(AllReset(c.pcrs_after));
  BOOST_TEST((c.snapshot.ek.name == ek_before));
}

BOOST_AUTO_TEST_CASE(hard_loss_relaunches_on_the_same_state) {
  EmulatedDut dut;
  REQUIRE_OK(dut->Startup({}));
  const Bytes ek_before = Require(dut.tpm().EnsureEk()).name;
  const Bytes srk_before = Require(dut.tpm().EnsureSrk()).name;
  REQUIRE_OK(dut->PowerCycle(PowerCycleKind::kReset, {}));
  const pid_t pid_before = dut->emulator()->pid();
  Cycle c = RunCycle(dut, PowerCycleKind::kHardLoss, /*started=*/true);
  BOOST_TEST(dut->emulator()->pid() != pid_before);
  BOOST_TEST(c.after.reset_count == c.before.reset_count + 1);
  BOOST_TEST(c.after.restart_count == 0u);
  BOOST_TEST(!c.after.safe);
  BOOST_TEST(AllReset(c.pcrs_after));
  BOOST_TEST((c.snapshot.ek.name == ek_before));
  BOOST_TEST((c.snapshot.srk.name == srk_before));
}

BOOST_AUTO_TEST_CASE(clear_zeroes_counters_changes_srk_keeps_ek) {
  EmulatedDut dut;
  REQUIRE_OK(dut->Startup({}));
  REQUIRE_OK(dut->PowerCycle(PowerCycleKind::kReset, {}));
  REQUIRE_OK(dut->PowerCycle(PowerCycleKind::kRestart, {}));
  Snapshot before = Require(TakeSnapshot(dut.tpm(), SnapshotOptions{}));
  BOOST_TEST(before.clock().reset_count > 0u);
  BOOST_TEST(before.clock().restart_count > 0u);
  REQUIRE_OK(dut.tpm().Clear(Hierarchy::kLockout));
  Snapshot after = Require(TakeSnapshot(dut.tpm(), SnapshotOptions{}));
  BOOST_TEST(after.quote_check.verified(), after.quote_check.failure);
  BOOST_TEST(after.clock().reset_count == 0u);
  BOOST_TEST(after.clock().restart_count == 0u);
  BOOST_TEST((after.srk.name != before.srk.name));
  BOOST_TEST((after.ek.name == before.ek.name));
  BOOST_TEST(after.ek.created);  // Clear evicted it; re-created identically
}

BOOST_AUTO_TEST_CASE(startup_without_a_power_cycle_is_refused) {
  EmulatedDut dut;
  REQUIRE_OK(dut->Startup({}));
  Status again = dut->Startup({});
  BOOST_TEST(!again.ok());
  BOOST_TEST(again.tpm_rc() == 0x100u, again.ToString());
}

BOOST_AUTO_TEST_CASE(startup_at_locality_3_sets_pcr0_to_3) {
  EmulatedDut dut;
  BootOptions boot;
  boot.startup_locality = 3;
  REQUIRE_OK(dut->Startup(boot));
  PcrValues pcrs = Require(dut.tpm().ReadPcrs(kBanks));
  for (HashAlg bank : kBanks) {
    Bytes expected(HashSize(bank), 0);
    expected.back() = 3;
    BOOST_TEST((pcrs[bank][0] == expected), HashAlgName(bank) << " PCR0 " << ToHex(pcrs[bank][0]));
  }
  // Commands after Startup run at locality 0 again: an extend of PCR0 works.
  std::map<HashAlg, Bytes> d{{HashAlg::kSha256, Bytes(32, 1)}};
  REQUIRE_OK(dut.tpm().Extend(0, d));
}

BOOST_AUTO_TEST_CASE(hcrtm_measures_into_pcr0_from_4) {
  EmulatedDut dut;
  BootOptions boot;
  const std::string data = "tpmlab H-CRTM image";
  boot.hcrtm_data = Bytes(data.begin(), data.end());
  REQUIRE_OK(dut->Startup(boot));
  PcrValues pcrs = Require(dut.tpm().ReadPcrs(kBanks));
  for (HashAlg bank : kBanks) {
    Bytes start(HashSize(bank), 0);
    start.back() = 4;
    Bytes digest = Require(Hash(bank, AsBytes(data)));
    Bytes joined = start;
    joined.insert(joined.end(), digest.begin(), digest.end());
    BOOST_TEST((pcrs[bank][0] == Require(Hash(bank, joined))), HashAlgName(bank));
  }
}

BOOST_AUTO_TEST_CASE(unix_sockets_carry_the_same_cycle) {
  EmulatedDut dut(/*unix_sockets=*/true);
  BOOST_TEST(dut->emulator()->data_endpoint().is_unix());
  Cycle c = RunCycle(dut, PowerCycleKind::kPowerLoss);
  BOOST_TEST(c.after.reset_count == c.before.reset_count + 1);
  Cycle h = RunCycle(dut, PowerCycleKind::kHardLoss, /*started=*/true);
  BOOST_TEST(h.after.reset_count == h.before.reset_count + 1);
}

BOOST_AUTO_TEST_CASE(provisioned_chip_has_ek_certificate_and_ibm_identity) {
  EmulatedDut dut;
  REQUIRE_OK(dut->Startup({}));
  Bytes cert = Require(dut.tpm().NvRead(kEkCertRsaIndex));
  BOOST_TEST(cert.size() > 300u);
  BOOST_TEST(cert[0] == 0x30);  // DER SEQUENCE
  TpmProperties p = Require(dut.tpm().Properties());
  BOOST_TEST(p.manufacturer == "IBM");
  BOOST_TEST(p.firmware_version != 0u);
  std::vector<HashAlg> banks = Require(dut.tpm().PcrBanks());
  BOOST_TEST((banks == kBanks));
}

BOOST_AUTO_TEST_CASE(ecc_ak_quotes_verify_and_replace_an_rsa_ak) {
  EmulatedDut dut;
  REQUIRE_OK(dut->Startup({}));
  KeyInfo rsa = Require(dut.tpm().EnsureAk(KeyType::kRsa2048));
  SnapshotOptions o;
  o.ak_type = KeyType::kEccP256;
  Snapshot s = Require(TakeSnapshot(dut.tpm(), o));
  BOOST_TEST(s.quote_check.verified(), s.quote_check.failure);
  BOOST_TEST((s.ak.type == KeyType::kEccP256));
  BOOST_TEST((s.ak.name != rsa.name));
}

}  // namespace
}  // namespace tpmlab::testing
