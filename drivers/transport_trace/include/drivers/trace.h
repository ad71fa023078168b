// TraceTransport: a decorator that records every command passing through any
// Transport: code, bytes, response code, and how long the TPM took.
#pragma once

#include <chrono>
#include <cstdint>
#include <utility>
#include <vector>

#include "drivers/trace_record.h"
#include "drivers/transport.h"

namespace tpmlab {

class TraceTransport final : public Transport {
 public:
  // `keep_bytes` false records codes and timing only (long soaks).
  explicit TraceTransport(Transport& inner, bool keep_bytes = true)
      : inner_(inner), keep_bytes_(keep_bytes) {
    set_command_timeout(inner.command_timeout());
  }

  const std::vector<TraceRecord>& records() const { return records_; }
  // Hands over what was recorded since the last call.
  std::vector<TraceRecord> TakeRecords() { return std::exchange(records_, {}); }

 private:
  Status DoTransmit(ByteView command) override;
  Result<Bytes> DoReceive(Duration timeout) override;
  Status DoCancel() override { return inner_.Cancel(); }
  Status DoSetLocality(uint8_t locality) override { return inner_.SetLocality(locality); }
  Info DoInfo() const override {
    Info i = inner_.info();
    return {"trace(" + i.name + ")", i.description};
  }
  // The abandoned command goes into the trace as failed, with how long it waited.
  void DoAbandonResponse() override;

  Transport& inner_;
  bool keep_bytes_;
  uint64_t next_sequence_ = 0;
  std::vector<TraceRecord> records_;
  TraceRecord pending_;
};

}  // namespace tpmlab
