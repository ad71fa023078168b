#include "drivers/fault_transport.h"

#include <thread>

namespace tpmlab {

const char* FaultKindName(FaultKind kind) {
  switch (kind) {
    case FaultKind::kLatency: return "latency";
    case FaultKind::kDrop: return "drop";
    case FaultKind::kCorrupt: return "corrupt";
    case FaultKind::kResponseCode: return "response_code";
    case FaultKind::kDisconnect: return "disconnect";
    case FaultKind::kAction: return "action";
  }
  return "unknown";
}

std::optional<FaultRule> FaultTransport::Pick(uint32_t command_code) {
  for (auto& rule : rules_) {
    if (rule.count == 0) continue;
    if (rule.command_code && *rule.command_code != command_code) continue;
    if (rule.skip > 0) {
      --rule.skip;
      continue;
    }
    // Draw even when certain, so adding a rule does not shift later draws.
    const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
    if (u >= rule.probability) continue;
    if (rule.count != UINT32_MAX) --rule.count;
    return rule;
  }
  return std::nullopt;
}

Status FaultTransport::DoTransmit(ByteView command) {
  const uint32_t code = TpmHeaderCode(command);
  active_ = Pick(code);
  forwarded_ = false;
  const uint64_t seq = sequence_++;
  if (active_) injected_.push_back({seq, code, active_->kind});
  if (active_ && active_->kind == FaultKind::kDisconnect) {
    active_.reset();
    return Status::Error(Layer::kTransport, "injected fault: the link dropped before the command was sent");
  }
  if (active_ && active_->kind == FaultKind::kResponseCode) return Status::Ok();  // never reaches the TPM
  const bool act = active_ && active_->kind == FaultKind::kAction;
  if (act && active_->before_send) active_->before_send();
  TRY(inner_.Transmit(command));
  forwarded_ = true;
  if (act && active_->action) active_->action();
  return Status::Ok();
}

Result<Bytes> FaultTransport::DoReceive(Duration timeout) {
  const std::optional<FaultRule> fault = std::move(active_);
  active_.reset();
  if (fault && fault->kind == FaultKind::kResponseCode) {
    return ByteWriter().U16(0x8001).U32(10).U32(fault->response_code).Take();
  }
  if (fault && fault->kind == FaultKind::kLatency) std::this_thread::sleep_for(fault->latency);
  auto response = inner_.Receive(timeout);
  if (!fault || !response.ok()) return response;
  if (fault->kind == FaultKind::kDrop) {
    // The TPM ran the command; its answer is lost on the way back.
    std::this_thread::sleep_for(timeout);
    return Status::Timeout("injected fault: the response to command " + std::to_string(injected_.back().sequence) +
                           " never arrived");
  }
  if (fault->kind == FaultKind::kCorrupt && response->size() > kTpmHeaderSize) {
    const size_t at = kTpmHeaderSize + static_cast<size_t>(rng_() % (response->size() - kTpmHeaderSize));
    (*response)[at] ^= 0xFF;
  }
  return response;
}

}  // namespace tpmlab
