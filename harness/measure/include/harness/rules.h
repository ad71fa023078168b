// The rules TPM 2.0 sets for power cycles, as checks on what a DUT did:
// counters, the safe flag, the clock, PCR reset or retention, and identity.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "harness/platform.h"
#include "harness/snapshot.h"

namespace tpmlab {

struct Check {
  std::string name;    // "reset_count", "pcrs_after_startup", ...
  bool passed = false;
  std::string detail;  // what was expected and what was seen
};

// What the harness read just before bringing the TPM down.
struct BeforeCycle {
  ClockInfo clock;
  PcrValues pcrs;
};

// libtpms saves Clock to NV each time it crosses a multiple of 2^12 ms
// (NV_CLOCK_UPDATE_INTERVAL 12); that save sets safe again. Chips choose
// their own interval, usually far longer.
inline constexpr uint64_t kClockSaveIntervalMs = 4096;

/// Counters, safe and clock after `kind`, compared with before it.
/// `at_startup`, the clock read right after the Startup, lets a quote say
/// safe = YES after a power loss when the clock was saved to NV since: it
/// crossed a save between that read and the quote, or that read already said
/// YES just past a save (a loaded host delays the read after the Startup).
// `ran_before_read_ms`: how long, at least, the chip ran after its Startup
// before the harness first read its clock (a board's firmware and OS boot
// first); past one NV save interval, safe = YES after a loss is the rule.
std::vector<Check> CheckCounters(PowerCycleKind kind, const ClockInfo& before, const ClockInfo& after,
                                 std::optional<ClockInfo> at_startup = std::nullopt,
                                 std::optional<uint64_t> ran_before_read_ms = std::nullopt);

/// PCRs right after Startup and before any measurement: reset to their
/// initial values (PCR0 per locality or H-CRTM) after Startup(CLEAR); after
/// Startup(STATE), PCRs 0-15 kept and 16-23 reset.
Check CheckStartupPcrs(StartupType startup, const BootOptions& boot, const PcrValues& before,
                       const PcrValues& after);

/// The value PCR0 of `bank` holds after Startup(CLEAR) with these options.
Bytes ExpectedPcr0(HashAlg bank, const BootOptions& boot);

/// EK unchanged always; SRK and AK unchanged when no clear happened since.
std::vector<Check> CheckIdentity(const Snapshot& reference, const Snapshot& now);

Check CheckQuote(const Snapshot& snapshot);

bool AllPassed(const std::vector<Check>& checks);

}  // namespace tpmlab
