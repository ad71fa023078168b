// Aligning two event logs event by event: which event of one log is which
// event of the other. The one answer `tpmlab eventlog diff` and drift
// (harness/drift.h) both report, so they cannot disagree on what changed.
//
// What "the same event" is. Events are only ever compared within one PCR,
// each PCR's events in log order. Two events, one from each log, are
//   1. the same measurement when their type and their digests in every bank
//      both logs carry are equal (EV_NO_ACTION records, whose digests are
//      zero, and all events when the logs have no bank in common, must also
//      have equal data). Such a pair whose data differs (the same image
//      loaded by another path) is "changed", its data differing;
//   2. else the same thing measured anew when they have the same type and
//      the same data: the firmware volume at the same address with new
//      contents, the same file name with a new image. "changed", its
//      digest differing;
//   3. else one event changed in place when they only have the same type and
//      stand between the same matched events (SecureBoot = 1 became
//      SecureBoot = 0; a variable's value is part of its data). "changed",
//      its data and, as a rule, its digest differing;
//   4. else unrelated: the first log's event was "removed", the second's
//      "added".
// Each rule is a longest common subsequence, in this order, of what the
// rules before it left unmatched between two matched events: inserted and
// removed events never shift the rest, and a closer match always wins over
// a looser one. Where one rule would need more than 2,000 insertions and
// deletions to search a PCR's unmatched events, it pairs them by position
// instead (equal ones only), and the PCR is reported positional. Digests
// compare only in the banks both logs carry; with none in common, a pair's
// digest counts as differing whenever its data does.
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
