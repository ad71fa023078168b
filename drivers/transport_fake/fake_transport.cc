#include "drivers/fake_transport.h"

namespace tpmlab {

Status FakeTransport::DoTransmit(ByteView command) {
  commands_.emplace_back(command.begin(), command.end());
  if (!script_.empty()) {
    next_ = std::move(script_.front());
    script_.pop_front();
  } else if (responder_) {
    next_ = responder_(command);
  } else {
    next_ = Status::Error(Layer::kTransport, "fake transport: no scripted reply");
  }
  return Status::Ok();
}

Result<Bytes> FakeTransport::DoReceive(Duration) {
  if (!next_) return Status::Error(Layer::kTransport, "fake transport: no reply pending");
  Reply r = std::move(*next_);
  next_.reset();
  return r;
}

}  // namespace tpmlab
