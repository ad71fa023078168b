// Aligning two event logs event by event: which event of one log is which
// event of the other. The one answer `tpmlab eventlog diff` and drift
// (harness/drift.h) both report, so they cannot disagree on what changed.
//
// What "the same event" is. Events are only ever compared within one PCR,
// each PCR's events in log order. Two events, one from each log, are
//   - the same measurement when their type and their digests in every bank
//     both logs carry are equal; EV_NO_ACTION records (their digests are
//     zero) and, when the logs have no bank in common, all events must also
//     have equal data. A pair of these whose data differs (the same digest,
//     another description: an image loaded from another disk) is "changed",
//     with the data differing;
//   - the same thing measured again, changed, when they are not that but
//     have the same type and the same data (the same variable with other
//     contents is not this: its value is in the data; the same firmware
//     volume at the same address with new contents, the same file name
//     with a new image, are): "changed", the digest differing;
//   - one event changed in place when they have only the same type and
//     stand between the same anchors (SecureBoot = 1 became SecureBoot = 0):
//     "changed", the data and usually the digest differing;
//   - otherwise unrelated: the first log's event was "removed", the
//     second's "added".
// Each step is a longest common subsequence, in this order, of the events
// the steps before left unmatched between two matched events: inserted and
// removed events never shift the rest, and a closer match always wins over
// a looser one. Where a PCR's sequences are so different that one step
// would take more than 2,000 insertions and deletions to search, that step
// compares them position by position instead, and the PCR is reported
// positional. Digests compare only in the banks both logs carry; with none
// in common, a pair's digest counts as differing whenever its data does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "harness/eventlog.h"

namespace tpmlab {

struct EventDifference {
  enum class Kind { kRemoved, kAdded, kChanged };
  Kind kind = Kind::kChanged;
  uint32_t pcr = 0;
  std::optional<size_t> before, after;  // indices into each log's events(); absent on the side it is missing from
  bool digest_differs = false;          // kChanged only
  bool data_differs = false;            // kChanged only
};

struct LogAlignment {
  std::vector<uint16_t> common_banks;  // TPM_ALG_IDs both logs carry, ascending
  // By PCR (numerically), then by position in the logs; within a run of
  // unmatched events, the first log's k-th before the second log's k-th.
  std::vector<EventDifference> differences;
  std::vector<uint32_t> positional_pcrs;  // ascending: compared by position somewhere (see above)
};

/// Aligns `before` with `after` per PCR as described above.
LogAlignment AlignEventLogs(const EventLog& before, const EventLog& after);

/// The banks a log carries digests for: the Spec ID event's algorithms in
/// its order (a SHA1-format log: sha1).
std::vector<uint16_t> LogBanks(const EventLog& log);

}  // namespace tpmlab
