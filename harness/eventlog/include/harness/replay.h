// Replaying an event log into the PCR values it claims, per bank, with the
// rules real firmware needs: EV_NO_ACTION is never extended; a StartupLocality
// event starts PCR0 at 00..0N; an H-CRTM event starts it at 00..04.
//
// DRTM PCRs 17-22: _TPM_Init sets them to all ones (PC Client PTP, PCR
// initial values), and a dynamic launch (_TPM_Hash_Start at locality 4)
// resets them to zero before it measures into them (TPM 2.0 Part 1, D-RTM
// sequence). A log with an event on any of 17-22 records such a launch, so
// its replay starts all six at zero; a log without one leaves them at all
// ones.
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
  bool drtm = false;  // some event extends PCR 17-22: they started at zero
  size_t events_extended = 0;
};

/// Replays the log. Fails only for a digest algorithm OpenSSL cannot compute.
Result<Replay> ReplayEventLog(const EventLog& log);

// The locality a StartupLocality EV_NO_ACTION event names, if `e` is one.
std::optional<uint8_t> StartupLocalityOf(const EventLog& log, const Event& e);

/// CPUs this process may run on (its affinity): long logs replay banks, and
/// check findings, in parallel only when there is more than one.
unsigned UsableCpus();

// The replay scope: which PCRs a verifier compares with a firmware log's
// replay. One rule for verify, doctor, the runner and drift, Keylime's:
//   PCR 0-9 and 11-15 (Keylime's MEASUREDBOOT_PCRS) always; a PCR with no
//     event in the log must still be at its reset value (an unlogged extend);
//   PCR 10 never: IMA extends it, and the IMA log accounts for it;
//   PCR 16 (debug) and 23 (application) never: nothing logs them;
//   PCR 17-22 (DRTM) when the log extends them (see above for their start).
inline constexpr uint32_t kMeasuredBootPcrs = 0x0000FBFFu;  // 0-9, 11-15
inline constexpr uint32_t kDrtmPcrs = 0x007E0000u;          // 17-22

/// Bit n set when PCR n of `bank` is in the replay scope of this log.
uint32_t ReplayScope(const Replay& replay, HashAlg bank);

/// PCRs in the replay scope where the replay and the TPM disagree, per bank
/// present in both. An empty map means they agree in every bank compared.
std::map<HashAlg, std::vector<int>> CompareReplay(const Replay& replay, const PcrValues& tpm);

}  // namespace tpmlab
