// The TPM 2.0 power-cycle rules (harness/rules.h) on hand-made before/after
// readings: counters, safe and clock per kind of cycle (tpm-reference.md
// §4.3), PCR initial values after Startup (§2.4), and identity.
#define BOOST_TEST_MODULE rules
#include <boost/test/unit_test.hpp>

#include <openssl/evp.h>

#include <string>
#include <vector>

#include "harness/rules.h"

namespace tpmlab {
namespace {

const Check* Find(const std::vector<Check>& checks, const std::string& name) {
  for (const auto& c : checks) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

// Whether the check called `name` is there and passed; fails the test when absent.
bool Passed(const std::vector<Check>& checks, const std::string& name) {
  const Check* c = Find(checks, name);
  BOOST_REQUIRE_MESSAGE(c != nullptr, "no check named " + name);
  return c->passed;
}

std::string Details(const std::vector<Check>& checks) {
  std::string out;
  for (const auto& c : checks) out += c.name + (c.passed ? " ok: " : " FAILED: ") + c.detail + "\n";
  return out;
}

ClockInfo ClockAt(uint64_t ms, uint32_t resets, uint32_t restarts, bool safe) {
  ClockInfo c;
  c.clock_ms = ms;
  c.reset_count = resets;
  c.restart_count = restarts;
  c.safe = safe;
  return c;
}

const ClockInfo kBefore = ClockAt(100000, 5, 2, true);

// A digest computed here with OpenSSL, independent of the harness's Hash().
Bytes Digest(const EVP_MD* md, ByteView data) {
  Bytes out(static_cast<size_t>(EVP_MD_get_size(md)));
  unsigned int len = 0;
  BOOST_REQUIRE(EVP_Digest(data.data(), data.size(), out.data(), &len, md, nullptr) == 1);
  return out;
}

const EVP_MD* Md(HashAlg bank) { return bank == HashAlg::kSha1 ? EVP_sha1() : EVP_sha256(); }

// What the TCG spec says every PCR holds after Startup(CLEAR) at locality 0,
// written out here rather than taken from PcrResetValue.
PcrValues ResetPcrs() {
  PcrValues v;
  for (HashAlg bank : {HashAlg::kSha1, HashAlg::kSha256}) {
    const size_t size = bank == HashAlg::kSha1 ? 20 : 32;
    for (int pcr = 0; pcr < kPcrCount; ++pcr) {
      v[bank][pcr] = Bytes(size, pcr >= 17 && pcr <= 22 ? 0xFF : 0x00);
    }
  }
  return v;
}

// PCRs after a boot that measured something into every one of them.
PcrValues MeasuredPcrs() {
  PcrValues v;
  for (HashAlg bank : {HashAlg::kSha1, HashAlg::kSha256}) {
    for (int pcr = 0; pcr < kPcrCount; ++pcr) {
      v[bank][pcr] = Digest(Md(bank), AsBytes("measured into " + std::to_string(pcr)));
    }
  }
  return v;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(counters)

BOOST_AUTO_TEST_CASE(tpm_reset_kinds_pass_with_reset_count_up_and_restart_count_zeroed) {
  // Reset: orderly, so the clock moved on and safe stays YES.
  auto checks = CheckCounters(PowerCycleKind::kReset, kBefore, ClockAt(100500, 6, 0, true));
  BOOST_TEST(AllPassed(checks), Details(checks));
  // Power loss and hard loss: no Shutdown, so safe must be NO.
  for (PowerCycleKind kind : {PowerCycleKind::kPowerLoss, PowerCycleKind::kHardLoss}) {
    BOOST_TEST_CONTEXT(PowerCycleKindName(kind)) {
      checks = CheckCounters(kind, kBefore, ClockAt(100500, 6, 0, false));
      BOOST_TEST(AllPassed(checks), Details(checks));
    }
  }
}

BOOST_AUTO_TEST_CASE(restart_and_resume_pass_with_restart_count_up) {
  for (PowerCycleKind kind : {PowerCycleKind::kRestart, PowerCycleKind::kResume}) {
    BOOST_TEST_CONTEXT(PowerCycleKindName(kind)) {
      auto checks = CheckCounters(kind, kBefore, ClockAt(100500, 5, 3, true));
      BOOST_TEST(AllPassed(checks), Details(checks));
    }
  }
}

BOOST_AUTO_TEST_CASE(reset_count_not_incremented_fails) {
  for (PowerCycleKind kind :
       {PowerCycleKind::kReset, PowerCycleKind::kPowerLoss, PowerCycleKind::kHardLoss}) {
    BOOST_TEST_CONTEXT(PowerCycleKindName(kind)) {
      const bool safe = IsOrderly(kind);
      auto checks = CheckCounters(kind, kBefore, ClockAt(100500, 5, 0, safe));
      BOOST_TEST(!Passed(checks, "reset_count"));
      BOOST_TEST(!AllPassed(checks));
      BOOST_TEST(Passed(checks, "restart_count"));
    }
  }
}

// After a loss, safe = YES is right only when the clock crossed an NV save
// (every 4096 ms in libtpms) between the Startup and the quote.
BOOST_AUTO_TEST_CASE(safe_after_a_loss_needs_a_clock_save_since_startup) {
  const ClockInfo yes = ClockAt(8200, 6, 0, true);
  const ClockInfo read_unsafe_before_a_save = ClockAt(8000, 6, 0, false);
  BOOST_TEST(Passed(CheckCounters(PowerCycleKind::kPowerLoss, kBefore, yes, read_unsafe_before_a_save), "safe"));
  BOOST_TEST(!Passed(CheckCounters(PowerCycleKind::kPowerLoss, kBefore, yes, ClockAt(8193, 6, 0, false)), "safe"));
  BOOST_TEST(!Passed(CheckCounters(PowerCycleKind::kPowerLoss, kBefore, yes), "safe"));
  BOOST_TEST(Passed(CheckCounters(PowerCycleKind::kHardLoss, kBefore, ClockAt(8200, 6, 0, false),
                                  read_unsafe_before_a_save),
                    "safe"));
}

// A loaded host may read the clock after the Startup only once the next save
// already set safe again: YES just past a save boundary is that save; YES
// far from one is a TPM that never dropped safe.
BOOST_AUTO_TEST_CASE(safe_after_a_loss_may_be_saved_before_the_first_read) {
  const ClockInfo yes = ClockAt(8400, 6, 0, true);
  BOOST_TEST(Passed(CheckCounters(PowerCycleKind::kPowerLoss, kBefore, yes, ClockAt(8300, 6, 0, true)), "safe"));
  BOOST_TEST(!Passed(CheckCounters(PowerCycleKind::kPowerLoss, kBefore, ClockAt(11000, 6, 0, true),
                                   ClockAt(10900, 6, 0, true)),
                     "safe"));
}

BOOST_AUTO_TEST_CASE(restart_counted_as_a_reset_fails) {
  // A Restart that the TPM treated as a Reset (resetCount up, restartCount 0).
  for (PowerCycleKind kind : {PowerCycleKind::kRestart, PowerCycleKind::kResume}) {
    BOOST_TEST_CONTEXT(PowerCycleKindName(kind)) {
      auto checks = CheckCounters(kind, kBefore, ClockAt(100500, 6, 0, true));
      BOOST_TEST(!Passed(checks, "reset_count"));
      BOOST_TEST(!Passed(checks, "restart_count"));
    }
  }
}

BOOST_AUTO_TEST_CASE(restart_count_not_zeroed_by_a_reset_fails) {
  auto checks = CheckCounters(PowerCycleKind::kReset, kBefore, ClockAt(100500, 6, 2, true));
  BOOST_TEST(Passed(checks, "reset_count"));
  BOOST_TEST(!Passed(checks, "restart_count"));
}

BOOST_AUTO_TEST_CASE(safe_yes_after_power_loss_fails) {
  for (PowerCycleKind kind : {PowerCycleKind::kPowerLoss, PowerCycleKind::kHardLoss}) {
    BOOST_TEST_CONTEXT(PowerCycleKindName(kind)) {
      auto checks = CheckCounters(kind, kBefore, ClockAt(100500, 6, 0, true));
      BOOST_TEST(!Passed(checks, "safe"));
      BOOST_TEST(Passed(checks, "reset_count"));
      BOOST_TEST(!Find(checks, "safe")->detail.empty());
    }
  }
}

BOOST_AUTO_TEST_CASE(safe_lost_across_an_orderly_cycle_fails) {
  auto checks = CheckCounters(PowerCycleKind::kReset, kBefore, ClockAt(100500, 6, 0, false));
  BOOST_TEST(!Passed(checks, "safe"));
  // A TPM that was already unsafe may stay so until its clock is next saved.
  checks = CheckCounters(PowerCycleKind::kRestart, ClockAt(100000, 5, 2, false),
                         ClockAt(100500, 5, 3, false));
  BOOST_TEST(AllPassed(checks), Details(checks));
}

BOOST_AUTO_TEST_CASE(clock_going_back_fails_after_an_orderly_cycle) {
  for (PowerCycleKind kind :
       {PowerCycleKind::kReset, PowerCycleKind::kRestart, PowerCycleKind::kResume}) {
    BOOST_TEST_CONTEXT(PowerCycleKindName(kind)) {
      const bool reset = kind == PowerCycleKind::kReset;
      auto checks = CheckCounters(kind, kBefore, ClockAt(99999, reset ? 6 : 5, reset ? 0 : 3, true));
      BOOST_TEST(!Passed(checks, "clock_monotonic"));
      BOOST_TEST(!AllPassed(checks));
    }
  }
}

BOOST_AUTO_TEST_CASE(clock_going_back_is_fine_after_power_loss) {
  // The clock falls back to the last value the TPM saved to NV.
  for (PowerCycleKind kind : {PowerCycleKind::kPowerLoss, PowerCycleKind::kHardLoss}) {
    BOOST_TEST_CONTEXT(PowerCycleKindName(kind)) {
      auto checks = CheckCounters(kind, kBefore, ClockAt(60000, 6, 0, false));
      BOOST_TEST(AllPassed(checks), Details(checks));
    }
  }
}

BOOST_AUTO_TEST_CASE(all_passed_of_nothing_is_true_and_one_failure_is_enough) {
  BOOST_TEST(AllPassed(std::vector<Check>{}));
  const std::vector<Check> one_failed = {Check{"a", true, ""}, Check{"b", false, ""}};
  BOOST_TEST(!AllPassed(one_failed));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(startup_pcrs)

BOOST_AUTO_TEST_CASE(clear_with_every_pcr_at_its_reset_value_passes) {
  Check c = CheckStartupPcrs(StartupType::kClear, BootOptions{}, MeasuredPcrs(), ResetPcrs());
  BOOST_TEST(c.passed, c.detail);
  BOOST_TEST(c.name == "pcrs_after_startup");
}

BOOST_AUTO_TEST_CASE(clear_with_a_pcr_not_reset_fails_and_names_it) {
  PcrValues after = ResetPcrs();
  after[HashAlg::kSha256][5] = MeasuredPcrs()[HashAlg::kSha256][5];
  Check c = CheckStartupPcrs(StartupType::kClear, BootOptions{}, MeasuredPcrs(), after);
  BOOST_TEST(!c.passed);
  BOOST_TEST(c.detail.find("sha256:5") != std::string::npos, c.detail);

  // The D-RTM PCRs start at all ones, not zeros.
  after = ResetPcrs();
  after[HashAlg::kSha1][17] = Bytes(20, 0x00);
  c = CheckStartupPcrs(StartupType::kClear, BootOptions{}, MeasuredPcrs(), after);
  BOOST_TEST(!c.passed);
  BOOST_TEST(c.detail.find("sha1:17") != std::string::npos, c.detail);
}

BOOST_AUTO_TEST_CASE(locality_3_startup_expects_pcr0_ending_in_03) {
  BootOptions boot;
  boot.startup_locality = 3;
  PcrValues after = ResetPcrs();
  after[HashAlg::kSha1][0].back() = 0x03;
  after[HashAlg::kSha256][0].back() = 0x03;
  Check c = CheckStartupPcrs(StartupType::kClear, boot, MeasuredPcrs(), after);
  BOOST_TEST(c.passed, c.detail);

  // A TPM that ignored the locality leaves PCR0 all zeros.
  c = CheckStartupPcrs(StartupType::kClear, boot, MeasuredPcrs(), ResetPcrs());
  BOOST_TEST(!c.passed);
  BOOST_TEST(c.detail.find(":0 ") != std::string::npos, c.detail);
}

BOOST_AUTO_TEST_CASE(hcrtm_startup_expects_pcr0_extended_from_00_04) {
  const std::string data = "tpmlab H-CRTM image";
  BootOptions boot;
  boot.hcrtm_data = Bytes(data.begin(), data.end());
  PcrValues after = ResetPcrs();
  for (HashAlg bank : {HashAlg::kSha1, HashAlg::kSha256}) {
    const EVP_MD* md = Md(bank);
    Bytes start(static_cast<size_t>(EVP_MD_get_size(md)), 0x00);
    start.back() = 0x04;
    const Bytes measured = Digest(md, AsBytes(data));
    Bytes joined = start;
    joined.insert(joined.end(), measured.begin(), measured.end());
    after[bank][0] = Digest(md, joined);
    BOOST_TEST(ToHex(ExpectedPcr0(bank, boot)) == ToHex(after[bank][0]));
  }
  Check c = CheckStartupPcrs(StartupType::kClear, boot, MeasuredPcrs(), after);
  BOOST_TEST(c.passed, c.detail);

  // Without the H-CRTM measurement PCR0 would be plain 00..00: wrong here.
  c = CheckStartupPcrs(StartupType::kClear, boot, MeasuredPcrs(), ResetPcrs());
  BOOST_TEST(!c.passed);
}

BOOST_AUTO_TEST_CASE(expected_pcr0_without_hcrtm_carries_the_locality) {
  BootOptions boot;
  BOOST_TEST(ToHex(ExpectedPcr0(HashAlg::kSha1, boot)) == std::string(40, '0'));
  boot.startup_locality = 3;
  BOOST_TEST(ToHex(ExpectedPcr0(HashAlg::kSha256, boot)) == std::string(62, '0') + "03");
}

BOOST_AUTO_TEST_CASE(state_keeps_0_to_15_and_resets_16_to_23) {
  const PcrValues before = MeasuredPcrs();
  PcrValues after = before;
  for (HashAlg bank : {HashAlg::kSha1, HashAlg::kSha256}) {
    const size_t size = bank == HashAlg::kSha1 ? 20 : 32;
    after[bank][16] = Bytes(size, 0x00);
    for (int pcr = 17; pcr <= 22; ++pcr) after[bank][pcr] = Bytes(size, 0xFF);
    after[bank][23] = Bytes(size, 0x00);
  }
  Check c = CheckStartupPcrs(StartupType::kState, BootOptions{}, before, after);
  BOOST_TEST(c.passed, c.detail);

  // A PCR of 0-15 that was reset instead of restored.
  PcrValues lost = after;
  lost[HashAlg::kSha256][10] = Bytes(32, 0x00);
  c = CheckStartupPcrs(StartupType::kState, BootOptions{}, before, lost);
  BOOST_TEST(!c.passed);
  BOOST_TEST(c.detail.find("sha256:10") != std::string::npos, c.detail);

  // PCR 16 and 23 are never saved: keeping them is wrong.
  for (int pcr : {16, 20, 23}) {
    BOOST_TEST_CONTEXT("PCR " << pcr) {
      PcrValues kept = after;
      kept[HashAlg::kSha1][pcr] = before.at(HashAlg::kSha1)[pcr];
      c = CheckStartupPcrs(StartupType::kState, BootOptions{}, before, kept);
      BOOST_TEST(!c.passed);
    }
  }
}

BOOST_AUTO_TEST_CASE(state_pcr0_is_restored_even_with_locality_3) {
  // PCR0 comes back from the saved state; the locality byte does not apply.
  BootOptions boot;
  boot.startup_locality = 3;
  const PcrValues before = MeasuredPcrs();
  PcrValues after = before;
  for (HashAlg bank : {HashAlg::kSha1, HashAlg::kSha256}) {
    const size_t size = bank == HashAlg::kSha1 ? 20 : 32;
    after[bank][16] = after[bank][23] = Bytes(size, 0x00);
    for (int pcr = 17; pcr <= 22; ++pcr) after[bank][pcr] = Bytes(size, 0xFF);
  }
  Check c = CheckStartupPcrs(StartupType::kState, boot, before, after);
  BOOST_TEST(c.passed, c.detail);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(identity)

Snapshot Identity(uint8_t ek_byte) {
  Snapshot s;
  s.ek.name = ByteWriter().U16(0x000B).Append(Bytes(32, ek_byte)).Take();
  s.srk.name = ByteWriter().U16(0x000B).Append(Bytes(32, 0x22)).Take();
  s.ak.name = ByteWriter().U16(0x000B).Append(Bytes(32, 0x33)).Take();
  s.properties.firmware_version = 0x2024012500120000ULL;
  return s;
}

BOOST_AUTO_TEST_CASE(unchanged_identity_passes) {
  auto checks = CheckIdentity(Identity(0x11), Identity(0x11));
  BOOST_TEST(AllPassed(checks), Details(checks));
  BOOST_TEST(Passed(checks, "ek_name"));
}

BOOST_AUTO_TEST_CASE(changed_ek_name_is_flagged) {
  auto checks = CheckIdentity(Identity(0x11), Identity(0x99));
  BOOST_TEST(!Passed(checks, "ek_name"));
  BOOST_TEST(Passed(checks, "srk_name"));
  BOOST_TEST(Passed(checks, "ak_name"));
  BOOST_TEST(!AllPassed(checks));
  const std::string& detail = Find(checks, "ek_name")->detail;
  BOOST_TEST(detail.find(ToHex(Identity(0x99).ek.name)) != std::string::npos, detail);
}

BOOST_AUTO_TEST_CASE(firmware_upgrade_is_flagged) {
  Snapshot now = Identity(0x11);
  now.properties.firmware_version += 1;
  auto checks = CheckIdentity(Identity(0x11), now);
  BOOST_TEST(!Passed(checks, "firmware_version"));
  BOOST_TEST(Passed(checks, "ek_name"));
  // In hex, as every other place prints a firmware version.
  BOOST_TEST(Find(checks, "firmware_version")->detail ==
             "expected 0x2024012500120000, saw 0x2024012500120001");
}

BOOST_AUTO_TEST_CASE(check_quote_reports_the_verifier_failure) {
  Snapshot s;
  s.quote_check.failure = "extraData does not echo the nonce";
  Check c = CheckQuote(s);
  BOOST_TEST(!c.passed);
  BOOST_TEST(c.detail == s.quote_check.failure);

  s.quote_check = QuoteCheck{};
  s.quote_check.parsed = s.quote_check.magic_ok = s.quote_check.type_ok = true;
  s.quote_check.nonce_ok = s.quote_check.pcr_digest_ok = s.quote_check.signature_ok = true;
  BOOST_TEST(!CheckQuote(s).passed);  // verified only when it covers the PCRs requested too
  s.quote_check.covers_request = true;
  BOOST_TEST(CheckQuote(s).passed);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace tpmlab
