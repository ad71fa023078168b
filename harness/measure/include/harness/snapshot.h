// Snapshot: everything an attestation verifier would look at, taken at one
// point — every allocated bank, a verified quote and its clock counters,
// the TPM's identity (manufacturer, firmware, EK/SRK/AK names).
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "drivers/trace_record.h"
#include "harness/attest.h"
#include "harness/tpm.h"

namespace tpmlab {

struct Snapshot {
  std::string taken_at;  // UTC, ISO 8601
  int64_t taken_at_ms = 0;  // the same instant, ms since the Unix epoch (wall time)
  int64_t quote_round_trip_ms = 0;  // how long the Quote took: taken_at_ms is uncertain by half of it
  std::vector<HashAlg> banks;
  PcrValues pcrs;
  // The quote request: the bank, PCRs (bit n = PCR n) and nonce the verifier
  // asked for. Live, they are the runner's own; a verifier reading evidence
  // back (tpmlab verify) sets bank and PCRs from its own request, never from
  // the evidence. TakeSnapshot quotes these PCRs of every allocated bank
  // (the requested bank first), so every bank read is signed.
  HashAlg quote_bank = HashAlg::kSha256;
  uint32_t quote_pcrs = 0;
  Bytes nonce;
  QuoteBlob quote;
  QuoteCheck quote_check;  // includes the parsed TPMS_ATTEST (clock, firmware)
  TpmProperties properties;
  KeyInfo ek, srk, ak;
  // Why a key could not be had (a disabled hierarchy, say); empty when it could.
  std::string ek_error, srk_error, ak_error;
  // The EK certificate from NV, when there is one: the RSA one (0x01C00002)
  // or else the ECC P-256 one (0x01C0000A); ek_certificate_index says which.
  std::optional<Bytes> ek_certificate;
  uint32_t ek_certificate_index = 0;
  // How many read-PCRs-then-Quote rounds it took for the quote to match the
  // PCRs read (1 normally; more when something extended a PCR in between).
  int quote_attempts = 0;
  std::map<std::string, double> latency_us;  // command name -> median µs

  // The event log the OS would read now, when the platform keeps one, and
  // how its replay compares with the PCRs read: per bank compared, the PCRs
  // that differ (empty: the replay matches).
  std::optional<Bytes> eventlog;
  size_t eventlog_events = 0;
  std::map<HashAlg, std::vector<int>> replay_differs;
  std::vector<HashAlg> replay_banks;

  const ClockInfo& clock() const { return quote_check.attest.clock; }
};

struct SnapshotOptions {
  KeyType ak_type = KeyType::kRsa2048;
  HashAlg quote_bank = HashAlg::kSha256;  // falls back to the first bank allocated
  uint32_t quote_pcrs = 0xFFFFFF;         // PCRs 0-23
  // A live host extends PCRs at any time (IMA, systemd), so a quote may not
  // match the PCRs read just before it: read and quote again, this many
  // rounds at most (rust-keylime's agent makes 5 attempts).
  int max_quote_attempts = 5;
  // Runs between reading the PCRs and each Quote (tests: an extend landing
  // there, as IMA's would on a live host). Its failure ends the snapshot.
  std::function<Status(Tpm&, int attempt)> between_read_and_quote;
};

/// Reads all banks, then quotes them with a fresh nonce and verifies the quote
/// against what was read; when a genuine quote's PCR digest does not match
/// the values read (a PCR extended in between), reads and quotes again, up to
/// max_quote_attempts rounds, and records how many it took. Creates the EK, SRK and AK where they are missing;
/// a key that cannot be had is recorded (ek_error, ...), not fatal, and
/// without an AK there is no quote (quote_check.parsed stays false).
Result<Snapshot> TakeSnapshot(Tpm& tpm, const SnapshotOptions& options);

/// Median duration per command name over a trace.
std::map<std::string, double> LatencyByCommand(const std::vector<TraceRecord>& trace);

std::string UtcNow();

}  // namespace tpmlab
