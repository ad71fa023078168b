#include "harness/rules.h"

#include <cstdio>

namespace tpmlab {
namespace {

Check Expect(std::string name, bool passed, std::string detail) {
  return Check{std::move(name), passed, std::move(detail)};
}

std::string Was(uint64_t expected, uint64_t seen) {
  return "expected " + std::to_string(expected) + ", saw " + std::to_string(seen);
}

}  // namespace

std::vector<Check> CheckCounters(PowerCycleKind kind, const ClockInfo& before, const ClockInfo& after,
                                 std::optional<ClockInfo> at_startup, std::optional<uint64_t> ran_before_read_ms) {
  std::vector<Check> checks;
  const bool tpm_reset = kind == PowerCycleKind::kReset || kind == PowerCycleKind::kPowerLoss ||
                         kind == PowerCycleKind::kHardLoss;
  if (tpm_reset) {
    // A TPM Reset: resetCount +1, restartCount back to 0.
    checks.push_back(Expect("reset_count", after.reset_count == before.reset_count + 1,
                            Was(before.reset_count + 1, after.reset_count)));
    checks.push_back(Expect("restart_count", after.restart_count == 0, Was(0, after.restart_count)));
  } else {
    // TPM Restart and Resume: resetCount kept, restartCount +1.
    checks.push_back(Expect("reset_count", after.reset_count == before.reset_count,
                            Was(before.reset_count, after.reset_count)));
    checks.push_back(Expect("restart_count", after.restart_count == before.restart_count + 1,
                            Was(before.restart_count + 1, after.restart_count)));
  }
  if (IsOrderly(kind)) {
    // An orderly shutdown saves the clock, so it must not go back; safe stays
    // as it was (a TPM that once lost power stays unsafe until its clock is
    // next written to NV, so false may stay false).
    checks.push_back(Expect("clock_monotonic", after.clock_ms >= before.clock_ms,
                            "clock " + std::to_string(before.clock_ms) + " -> " +
                                std::to_string(after.clock_ms) + " ms"));
    checks.push_back(Expect("safe", !before.safe || after.safe,
                            std::string("safe ") + (before.safe ? "YES" : "NO") + " -> " +
                                (after.safe ? "YES" : "NO")));
  } else {
    // No Shutdown: the clock may fall back to its last saved value and the
    // next quote must say safe = NO — unless the clock was saved to NV
    // again between the Startup and the quote (a slow step, a loaded host).
    // The read after the Startup may itself come after a save on a loaded
    // host: YES there counts only within kSavedJustNowMs past a save
    // boundary, so a TPM that never drops safe is still caught most cycles.
    constexpr uint64_t kSavedJustNowMs = 2000;
    const bool crossed_since = at_startup && after.clock_ms / kClockSaveIntervalMs >
                                                 at_startup->clock_ms / kClockSaveIntervalMs;
    const bool saved_before_read =
        at_startup && at_startup->safe && at_startup->clock_ms % kClockSaveIntervalMs < kSavedJustNowMs;
    if (after.safe && ran_before_read_ms && *ran_before_read_ms >= kClockSaveIntervalMs) {
      checks.push_back(Expect("safe", true,
                              "YES after an unorderly power loss: the chip ran " + std::to_string(*ran_before_read_ms) +
                                  " ms after its Startup (the board's boot) before the first read, past an NV "
                                  "clock save (every " + std::to_string(kClockSaveIntervalMs) + " ms)"));
    } else if (after.safe && (crossed_since || saved_before_read)) {
      checks.push_back(Expect("safe", true,
                              "YES after an unorderly power loss: the clock passed an NV save (" +
                                  std::to_string(at_startup->clock_ms) + " -> " + std::to_string(after.clock_ms) +
                                  " ms) since the Startup" +
                                  (crossed_since ? "" : ", before the clock was first read")));
    } else {
      checks.push_back(Expect("safe", !after.safe,
                              std::string("expected NO after an unorderly power loss, saw ") +
                                  (after.safe ? "YES" : "NO")));
    }
  }
  return checks;
}

Bytes ExpectedPcr0(HashAlg bank, const BootOptions& boot) {
  if (!boot.hcrtm_data) return PcrResetValue(bank, 0, boot.startup_locality);
  // H-CRTM: PCR0 starts at 00..04 and the hash of the H-CRTM data is extended.
  Bytes start(HashSize(bank), 0);
  start.back() = 4;
  auto digest = Hash(bank, *boot.hcrtm_data);
  return digest.ok() ? ExtendPcr(bank, start, *digest) : Bytes{};
}

Check CheckStartupPcrs(StartupType startup, const BootOptions& boot, const PcrValues& before,
                       const PcrValues& after) {
  std::string wrong;
  for (const auto& [bank, values] : after) {
    for (int pcr = 0; pcr < kPcrCount; ++pcr) {
      Bytes expected;
      std::string rule;
      if (startup == StartupType::kState && pcr <= 15 && before.count(bank)) {
        expected = before.at(bank)[pcr];
        rule = "kept";
      } else if (pcr == 0 && startup == StartupType::kClear) {
        expected = ExpectedPcr0(bank, boot);
        rule = boot.hcrtm_data ? "H-CRTM" : "locality " + std::to_string(boot.startup_locality);
      } else {
        expected = PcrResetValue(bank, pcr);
        rule = "reset";
      }
      if (values[pcr] != expected && wrong.size() < 400) {
        wrong += std::string(wrong.empty() ? "" : "; ") + HashAlgName(bank) + ":" +
                 std::to_string(pcr) + " (" + rule + ") expected " + ToHex(expected).substr(0, 16) +
                 "… saw " + ToHex(values[pcr]).substr(0, 16) + "…";
      }
    }
  }
  const char* what = startup == StartupType::kClear
                         ? "all PCRs at their initial values after Startup(CLEAR)"
                         : "PCRs 0-15 kept and 16-23 reset after Startup(STATE)";
  return Expect("pcrs_after_startup", wrong.empty(), wrong.empty() ? what : wrong);
}

std::vector<Check> CheckIdentity(const Snapshot& reference, const Snapshot& now) {
  std::vector<Check> checks;
  auto same = [&](const char* name, const Bytes& a, const Bytes& b) {
    checks.push_back(Expect(name, a == b,
                            a == b ? "unchanged: " + ToHex(b)
                                   : "changed from " + ToHex(a) + " to " + ToHex(b)));
  };
  same("ek_name", reference.ek.name, now.ek.name);
  same("srk_name", reference.srk.name, now.srk.name);
  same("ak_name", reference.ak.name, now.ak.name);
  // In hex, as run.json, drift, the verifier and the doctor print it.
  auto version = [](uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof(buf), "0x%016llx", static_cast<unsigned long long>(v));
    return std::string(buf);
  };
  const uint64_t expected = reference.properties.firmware_version, seen = now.properties.firmware_version;
  checks.push_back(Expect("firmware_version", expected == seen,
                          "expected " + version(expected) + ", saw " + version(seen)));
  return checks;
}

Check CheckQuote(const Snapshot& s) {
  return Expect("quote_verified", s.quote_check.verified(),
                s.quote_check.verified() ? "signature, nonce, magic/type, pcrDigest and the PCRs requested verified"
                                         : s.quote_check.failure);
}

bool AllPassed(const std::vector<Check>& checks) {
  for (const auto& c : checks) {
    if (!c.passed) return false;
  }
  return true;
}

}  // namespace tpmlab
