// One command as a trace saw it. Its own header (in drivers/core) so results
// and analysis code can hold traces without linking the trace transport.
#pragma once

#include <chrono>
#include <cstdint>

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
};

}  // namespace tpmlab
