#include "drivers/transport.h"

namespace tpmlab {

uint32_t TpmHeaderSize(ByteView m) {
  if (m.size() < kTpmHeaderSize) return 0;
  return uint32_t{m[2]} << 24 | uint32_t{m[3]} << 16 | uint32_t{m[4]} << 8 | m[5];
}

uint32_t TpmHeaderCode(ByteView m) {
  if (m.size() < kTpmHeaderSize) return 0;
  return uint32_t{m[6]} << 24 | uint32_t{m[7]} << 16 | uint32_t{m[8]} << 8 | m[9];
}

Status Transport::Transmit(ByteView command) {
  if (awaiting_response_) {
    return Status::Error(Layer::kHarness,
                         "bad sequence: transmit while the previous response is unread");
  }
  if (command.size() < kTpmHeaderSize || TpmHeaderSize(command) != command.size()) {
    return Status::Error(Layer::kHarness, "command header size does not match its length");
  }
  last_command_code_ = TpmHeaderCode(command);
  TRY(DoTransmit(command));
  awaiting_response_ = true;
  return Status::Ok();
}

Result<Bytes> Transport::Receive(Duration timeout) {
  if (!awaiting_response_) {
    return Status::Error(Layer::kHarness, "bad sequence: receive without a command");
  }
  auto response = DoReceive(timeout);
  // A timeout leaves the response owed; any other failure ends the exchange.
  if (response.ok() || !response.status().timed_out()) awaiting_response_ = false;
  if (response.ok() && (response->size() < kTpmHeaderSize || TpmHeaderSize(*response) != response->size())) {
    return Status::Error(Layer::kTransport,
                         "response of " + std::to_string(response->size()) + " bytes from " +
                             DoInfo().description + " claims " +
                             std::to_string(TpmHeaderSize(*response)) + " in its header");
  }
  return response;
}

Result<Bytes> Transport::Exchange(ByteView command) {
  TRY(Transmit(command));
  auto response = Receive(command_timeout());
  if (!response.ok() && response.status().timed_out()) AbandonResponse();
  return response;
}

void Transport::AbandonResponse() {
  if (!awaiting_response_) return;
  DoAbandonResponse();  // best effort: the TPM may be gone
  awaiting_response_ = false;
}

}  // namespace tpmlab
