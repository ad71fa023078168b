#include "drivers/trace.h"

namespace tpmlab {

Status TraceTransport::DoTransmit(ByteView command) {
  pending_ = TraceRecord{};
  pending_.sequence = next_sequence_++;
  pending_.command_code = TpmHeaderCode(command);
  if (keep_bytes_) pending_.command.assign(command.begin(), command.end());
  pending_.started = std::chrono::steady_clock::now();
  Status s = inner_.Transmit(command);
  if (!s.ok()) {
    pending_.failed = true;
    records_.push_back(std::move(pending_));
  }
  return s;
}

Result<Bytes> TraceTransport::DoReceive(Duration timeout) {
  auto response = inner_.Receive(timeout);
  if (!response.ok() && response.status().timed_out()) return response;  // still owed
  pending_.duration = std::chrono::steady_clock::now() - pending_.started;
  if (response.ok()) {
    pending_.response_code = TpmHeaderCode(*response);
    if (keep_bytes_) pending_.response = *response;
  } else {
    pending_.failed = true;
  }
  records_.push_back(std::move(pending_));
  return response;
}

void TraceTransport::DoAbandonResponse() {
  pending_.duration = std::chrono::steady_clock::now() - pending_.started;
  pending_.failed = true;
  records_.push_back(std::move(pending_));
  pending_ = TraceRecord{};
  inner_.AbandonResponse();
}

}  // namespace tpmlab
