// One command as a trace saw it. Its own header (in drivers/core) so results
// and analysis code can hold traces without linking the trace transport.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

#include "drivers/bytes.h"

namespace tpmlab {

struct TraceRecord {
  uint64_t sequence = 0;
  uint32_t command_code = 0;
  uint32_t response_code = 0;  // 0 also when no response came (see `failed`)
  std::chrono::steady_clock::time_point started;
  std::chrono::nanoseconds duration{0};  // Transmit start to Receive end
  Bytes command;
  Bytes response;
  bool failed = false;  // the transport gave no response
  // When it was sent, counted from the start of the step that sent it (the
  // wall time StepResult::started_at names): what the store keeps of
  // `started`, so an exported trace shows real times. Absent in steps stored
  // before the store kept it (durations only).
  std::optional<std::chrono::nanoseconds> since_step_start;
};

}  // namespace tpmlab
