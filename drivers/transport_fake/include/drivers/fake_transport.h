// FakeTransport: answers from a script, for unit tests of code above a Transport.
#pragma once

#include <deque>
#include <functional>
#include <optional>
#include <vector>

#include "drivers/transport.h"

namespace tpmlab {

class FakeTransport final : public Transport {
 public:
  // A reply is either response bytes or a Status the transport fails with.
  using Reply = Result<Bytes>;
  using Responder = std::function<Reply(ByteView command)>;

  // Replies in order, one per command; a command with no scripted reply fails.
  void Enqueue(Reply reply) { script_.push_back(std::move(reply)); }
  // Computes replies instead (used after the script runs out).
  void set_responder(Responder responder) { responder_ = std::move(responder); }

  const std::vector<Bytes>& commands() const { return commands_; }
  int cancels() const { return cancels_; }
  uint8_t locality() const { return locality_; }

 private:
  Status DoTransmit(ByteView command) override;
  Result<Bytes> DoReceive(Duration timeout) override;
  Status DoCancel() override { ++cancels_; return Status::Ok(); }
  Status DoSetLocality(uint8_t locality) override { locality_ = locality; return Status::Ok(); }
  Info DoInfo() const override { return {"fake", "scripted responses"}; }

  std::deque<Reply> script_;
  Responder responder_;
  std::vector<Bytes> commands_;
  std::optional<Reply> next_;
  int cancels_ = 0;
  uint8_t locality_ = 0;
};

}  // namespace tpmlab
