// Checks on a parsed event log, reported as findings: things a verifier
// would trip over or a person should look at. A finding never makes the
// log unusable; the replay stands on its own.
//
// Codes (stable; reports and scripts match on them):
//   EVENT_DIGEST_MISMATCH       a digest that can be recomputed from the event
//                               data does not match it
//   DUPLICATE_SEPARATOR         a second EV_SEPARATOR on the same PCR
//   SEPARATOR_VALUE             separator data other than 00000000
//   MISSING_EXIT_BOOT_SERVICES  a UEFI boot whose PCR5 lacks the EBS actions
//   DUPLICATE_S_CRTM_VERSION    more than one EV_S_CRTM_VERSION
//   EVENT_AFTER_SEPARATOR       an event on PCR 0-7 after that PCR's separator
//                               of a type that has no business there
//   UNKNOWN_EVENT_TYPE          an event type the TCG tables do not name
//   EVENT_DATA_UNDECODABLE      data that does not match the structure its
//                               type claims (see event_data.h)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "harness/eventlog.h"

namespace tpmlab {

struct Finding {
  std::string code;
  std::string message;
  size_t event_index = 0;  // into EventLog::events(), the event to look at
  uint32_t pcr = 0;
  uint32_t type = 0;
  uint64_t offset = 0;     // where that event starts in the log bytes
};

/// Runs every check; findings come in event order.
std::vector<Finding> CheckEventLog(const EventLog& log);

}  // namespace tpmlab
