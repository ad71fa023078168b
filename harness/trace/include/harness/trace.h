// A stored run's commands and responses as a pcapng capture for Wireshark
// (tshark 4.0's TPM 2.0 dissector, protocol `tpm`): one TCP connection per
// boot of the DUT (a TPM2_Startup after one that succeeded starts the next)
// to port 2321, each command in the TPM simulator's framing
// (TPM_SEND_COMMAND, locality, size, bytes; the response's size, bytes and
// a 4-byte ack), at the wall-clock time it was sent. Boots, power cycles and
// injected faults are packet comments; the DUT, run and steps are in the
// section header's comment.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>

#include "harness/store.h"

namespace tpmlab {

struct TraceExportOptions {
  std::optional<int> step;  // only this step (its own connection); all steps when absent
};

struct TraceExportSummary {
  int64_t steps = 0;
  int64_t commands = 0;
  int64_t unanswered = 0;  // commands written without a response (TraceRecord::failed)
  int64_t connections = 0;  // TCP streams: boots of the DUT
  int64_t packets = 0;
  // Steps stored before the store kept when each command was sent: their
  // commands are placed back to back from the step's start (and say so).
  int64_t steps_estimated = 0;
};

/// Writes run `run` of `store` to `out` as pcapng, one step in memory at a time.
Result<TraceExportSummary> WriteTracePcapng(Store& store, const StoredRun& run, const TraceExportOptions& options,
                                            std::ostream& out);

}  // namespace tpmlab
