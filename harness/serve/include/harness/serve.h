// tpmlab serve's engine: a DUT's TPM offered as a simulator socket pair on
// loopback (data port P, control or platform port P+1; serve_protocol.h), so
// tpm2-tools or any TSS drives the bench's chip through tpmlab. Command bytes
// are relayed unchanged through the DUT's trace and fault decorators (never
// decoded here: this folder does not include tpm2-tss); _TPM_Init and
// locality go to the DUT's power switch and transport. What was relayed is
// handed over as store steps, so the run's trace is in the database.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "drivers/fault_transport.h"
#include "harness/dut.h"
#include "harness/serve_protocol.h"
#include "harness/store.h"

namespace tpmlab::serve {

struct ServeOptions {
  Flavour flavour = Flavour::kSwtpm;
  std::string host = "127.0.0.1";
  uint16_t port = 2321;  // data port; the second is port + 1. 0: a free pair is chosen
  // A step goes to the store after this long without a command, or when it
  // holds this many commands (so memory does not grow with a long serve).
  std::chrono::milliseconds idle_step{1000};
  size_t max_step_commands = 1000;
  // How long a client may take to take its answer before it is dropped.
  std::chrono::milliseconds send_timeout{10000};
  // Set (by a signal handler) to stop serving; checked at least every 200 ms.
  const std::atomic<bool>* stop = nullptr;
  // The index of the first step Serve hands over (the caller's boot step came first).
  int first_step_index = 0;
  // One line per event worth telling (connections closed for bad bytes,
  // power signals); may be empty.
  std::function<void(const std::string&)> log;
};

struct ServeCounts {
  uint64_t commands = 0;        // relayed and answered
  uint64_t failed = 0;          // the DUT gave no answer (the client's connection was closed)
  uint64_t data_connections = 0;
  uint64_t control_connections = 0;
  uint64_t protocol_errors = 0;  // connections closed for bytes that do not parse
  uint64_t power_ons = 0;        // _TPM_Init delivered to the DUT
};

/// Parses one --fault SPEC: KIND[=VALUE][,cc=CODE][,count=N][,skip=N][,p=PROBABILITY]
/// with KIND latency=MS, rc=CODE (or retry, yielded, testing, failure),
/// corrupt, drop or disconnect; codes in hex (0x17b) or decimal.
/// @returns kBadInput naming the spec and what is wrong in it.
Result<FaultRule> ParseFaultSpec(const std::string& spec);

class Server {
 public:
  /// Binds both ports on options.host (port and port + 1; for port 0, a
  /// free pair), before any DUT is opened, so a port in use costs no boot.
  /// @returns kTransport naming host:port when a port cannot be bound.
  static Result<std::unique_ptr<Server>> Listen(const ServeOptions& options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  uint16_t data_port() const { return data_port_; }
  uint16_t control_port() const { return static_cast<uint16_t>(data_port_ + 1); }

  /// Serves `dut` (open and powered) until options.stop is set. Every relayed command's trace record
  /// goes into a step ("serve"; "power_on" for a _TPM_Init) handed to
  /// `record` (index and trace filled in); an error from `record` stops
  /// serving and is returned.
  Status Serve(Dut& dut, const std::function<Status(StepResult&&)>& record);
  const ServeCounts& counts() const { return counts_; }

 private:
  struct Connection;
  explicit Server(ServeOptions options);  // in serve.cc, where Connection is complete

  Status Accept(int listener, bool data);
  // Reads what arrived; false when the connection is to be closed.
  bool OnReadable(Connection& c);
  bool HandleData(Connection& c, const DataRequest& request);
  bool HandleControl(Connection& c, const ControlRequest& request);
  bool SendAll(Connection& c, ByteView bytes);
  Status PowerOn(const std::string& signal);
  Status SetLocality(uint8_t locality);
  // Hands the commands traced since the last step to `record_` as a step.
  // `always`: a step even when no command was traced (a power signal).
  void FlushStep(const std::string& action, nlohmann::json detail = nullptr, bool always = false);
  void OpenStep();
  void Log(const std::string& line) const;

  Dut* dut_ = nullptr;  // while serving
  ServeOptions options_;
  int data_listener_ = -1;
  int control_listener_ = -1;
  uint16_t data_port_ = 0;
  std::vector<std::unique_ptr<Connection>> connections_;
  ServeCounts counts_;
  uint8_t locality_ = 0;
  bool powered_ = true;  // mssim: POWER_OFF seen and no POWER_ON since
  // The step being gathered.
  const std::function<Status(StepResult&&)>* record_ = nullptr;
  int next_index_ = 0;
  bool step_open_ = false;
  std::chrono::steady_clock::time_point step_start_{};
  std::string step_started_at_;
  size_t step_commands_ = 0;
  size_t step_failed_ = 0;
  std::chrono::steady_clock::time_point last_command_{};
  Status record_error_ = Status::Ok();
};

}  // namespace tpmlab::serve
