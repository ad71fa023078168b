// Replaying an event log into the PCR values it claims, per bank, with the
// rules real firmware needs: EV_NO_ACTION is never extended; a StartupLocality
// event starts PCR0 at 00..0N; an H-CRTM event starts it at 00..04; PCRs
// 17-22 start at all ones.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "harness/eventlog.h"

namespace tpmlab {

struct Replay {
  // Every bank the log carries digests for: all 24 PCRs, extended or not.
  std::map<HashAlg, PcrBank> pcrs;
  // Bit n set when some event extended PCR n in that bank.
  std::map<HashAlg, uint32_t> extended;
  uint8_t startup_locality = 0;
  bool hcrtm = false;
  size_t events_extended = 0;
};

/// Replays the log. Fails only for a digest algorithm OpenSSL cannot compute.
Result<Replay> ReplayEventLog(const EventLog& log);

// The locality a StartupLocality EV_NO_ACTION event names, if `e` is one.
std::optional<uint8_t> StartupLocalityOf(const EventLog& log, const Event& e);

/// CPUs this process may run on (its affinity): long logs replay banks, and
/// check findings, in parallel only when there is more than one.
unsigned UsableCpus();

/// PCRs where the replay and the TPM disagree, per bank present in both.
/// An empty map means they agree in every bank compared.
std::map<HashAlg, std::vector<int>> CompareReplay(const Replay& replay, const PcrValues& tpm);

}  // namespace tpmlab
