// FaultTransport: a decorator that injects faults into any Transport, so a
// scenario can reproduce what a flaky bus or a sick TPM does: added latency,
// a response that never comes (timeout), a corrupted byte, a chosen response
// code (TPM_RC_RETRY, TPM_RC_YIELDED, TPM_RC_TESTING, TPM_RC_FAILURE), or a
// dropped connection. Each rule applies to the next N commands, to one
// command code, and/or with a probability drawn from the run's seed.
#pragma once

#include <chrono>
#include <functional>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "drivers/transport.h"

namespace tpmlab {

enum class FaultKind {
  kLatency,       // the response arrives `latency` late
  kDrop,          // the command reaches the TPM; its response never arrives
  kCorrupt,       // one response byte after the header is flipped
  kResponseCode,  // the TPM answers `response_code` without running the command
  kDisconnect,    // the link fails before the command is sent
  kAction,        // the command reaches the TPM, then `action` runs before the
                  // response is read (kill the TPM or cut its power mid-command)
};
const char* FaultKindName(FaultKind kind);

// Response codes a TPM gives when it cannot run a command now.
inline constexpr uint32_t kTpmRcRetry = 0x922;
inline constexpr uint32_t kTpmRcYielded = 0x908;
inline constexpr uint32_t kTpmRcTesting = 0x90A;
inline constexpr uint32_t kTpmRcFailure = 0x101;

struct FaultRule {
  FaultKind kind = FaultKind::kLatency;
  uint32_t count = UINT32_MAX;              // how many commands it may still hit
  std::optional<uint32_t> command_code;     // only this command, when set
  double probability = 1.0;                 // of hitting a command that matches
  std::chrono::milliseconds latency{0};     // kLatency
  uint32_t response_code = kTpmRcRetry;     // kResponseCode
  uint32_t skip = 0;                        // matching commands let through first
  std::function<void()> before_send;        // kAction: runs before the command is sent,
  std::function<void()> action;             // and this after (e.g. freeze, then kill)
};

class FaultTransport final : public Transport {
 public:
  struct Injected {
    uint64_t sequence = 0;  // the command's number through this transport
    uint32_t command_code = 0;
    FaultKind kind = FaultKind::kLatency;
  };

  FaultTransport(Transport& inner, uint64_t seed) : inner_(inner), rng_(seed) {
    set_command_timeout(inner.command_timeout());
  }

  void Add(const FaultRule& rule) { rules_.push_back(rule); }
  void ClearRules() { rules_.clear(); }
  /// Drops the rules of one kind (an armed power cut that did not fire).
  void RemoveRules(FaultKind kind) {
    std::erase_if(rules_, [kind](const FaultRule& r) { return r.kind == kind; });
  }
  // Every fault injected so far, in order.
  const std::vector<Injected>& injected() const { return injected_; }

 private:
  Status DoTransmit(ByteView command) override;
  Result<Bytes> DoReceive(Duration timeout) override;
  Status DoCancel() override { return forwarded_ ? inner_.Cancel() : Status::Ok(); }
  Status DoSetLocality(uint8_t locality) override { return inner_.SetLocality(locality); }
  Info DoInfo() const override {
    Info i = inner_.info();
    return {"fault(" + i.name + ")", i.description};
  }
  void DoAbandonResponse() override {
    if (forwarded_) inner_.AbandonResponse();
  }
  // The rule that hits this command, if any (consumes one of its count).
  std::optional<FaultRule> Pick(uint32_t command_code);

  Transport& inner_;
  std::mt19937_64 rng_;
  std::vector<FaultRule> rules_;
  std::vector<Injected> injected_;
  uint64_t sequence_ = 0;
  std::optional<FaultRule> active_;  // the fault on the command in flight
  bool forwarded_ = false;           // whether the inner transport has it
};

}  // namespace tpmlab
