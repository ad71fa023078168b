// Transport: how TPM command bytes reach a TPM and response bytes come back.
//
// The method set follows the TCTI table (transmit, receive, cancel, set
// locality). Public methods are non-virtual and enforce the transmit-then-
// receive order once, here; backends implement the Do* hooks.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

#include "drivers/bytes.h"
#include "drivers/status.h"

namespace tpmlab {

// TPM framing, which every transport may rely on: a 10-byte header whose
// bytes 2..5 hold the total size and 6..9 the command or response code.
inline constexpr size_t kTpmHeaderSize = 10;
inline constexpr size_t kTpmMaxMessage = 4096;
uint32_t TpmHeaderSize(ByteView message);  // 0 when shorter than a header
uint32_t TpmHeaderCode(ByteView message);  // 0 when shorter than a header

class Transport {
 public:
  using Duration = std::chrono::milliseconds;

  struct Info {
    std::string name;         // "swtpm", "trace(swtpm)", "tpmrm"
    std::string description;  // where it goes: "127.0.0.1:2321"
  };

  virtual ~Transport() = default;

  /// Sends one whole command.
  /// @returns kHarness if a response is still owed (bad sequence),
  ///          kTransport on I/O failure.
  Status Transmit(ByteView command);

  /// Waits at most `timeout` for the response to the last command.
  /// @returns the response; a transport error with timed_out() set on timeout
  ///          (the response is still owed and a later Receive may get it);
  ///          a transport error when the response's header size does not
  ///          match its length (a cut or padded response must never decode).
  Result<Bytes> Receive(Duration timeout);

  /// Transmit and Receive with the transport's per-command timeout.
  Result<Bytes> Exchange(ByteView command);

  /// Gives up on an owed response (after a final timeout): cancels the
  /// command on the TPM where the backend can, and allows a new Transmit.
  void AbandonResponse();

  Status Cancel() { return DoCancel(); }
  Status SetLocality(uint8_t locality) { return DoSetLocality(locality); }
  Info info() const { return DoInfo(); }

  /// The timeout of the command in flight: its own when one was set for its
  /// command code, else the transport's.
  Duration command_timeout() const {
    auto it = per_command_.find(last_command_code_);
    return it == per_command_.end() ? command_timeout_ : it->second;
  }
  void set_command_timeout(Duration timeout) { command_timeout_ = timeout; }
  void set_command_timeout(uint32_t command_code, Duration timeout) { per_command_[command_code] = timeout; }

 private:
  virtual Status DoTransmit(ByteView command) = 0;
  virtual Result<Bytes> DoReceive(Duration timeout) = 0;
  virtual Status DoCancel() = 0;
  virtual Status DoSetLocality(uint8_t locality) = 0;
  virtual Info DoInfo() const = 0;
  // Decorators forward this so every layer below gives up the response too.
  virtual void DoAbandonResponse() { (void)DoCancel(); }

  bool awaiting_response_ = false;
  Duration command_timeout_{30000};
  std::map<uint32_t, Duration> per_command_;
  uint32_t last_command_code_ = 0;
};

}  // namespace tpmlab
