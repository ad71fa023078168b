// tpmlab-agent's serving loop: frames in on the channel, one request at a
// time, replies out. Never crashes on garbage: it resyncs and says what it
// skipped in an ERROR frame.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "drivers/agent_protocol.h"

namespace tpmlab::agent {

struct ServerOptions {
  int in_fd = 0;
  int out_fd = 1;
  std::string channel;          // for messages: "/dev/ttyS1", "stdio"
  std::string tpm_path;         // opened (and reopened after a suspend) unless tpm_fd is set
  std::optional<int> tpm_fd;    // an already-open TPM stand-in (tests)
  std::string event_log;        // read whole at every LOG_READ
  bool pid1 = false;            // never return
  bool power_dry_run = false;   // acknowledge POWER but only say what would happen (tests)
  std::chrono::milliseconds tpm_timeout{std::chrono::minutes(5)};
  std::chrono::milliseconds tpm_wait{0};  // how long to wait for the TPM device to appear
};

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Serves until the channel closes (never returns when PID 1). The return
  // value is the process exit code.
  int Run();
  // Why the TPM is not open ("" when it is).
  const std::string& tpm_error() const { return tpm_error_; }

 private:
  void OpenTpmDevice();
  void CloseTpmDevice();
  bool Send(AgentFrameType type, uint16_t seq, ByteView payload);
  bool SendError(uint16_t seq, const std::string& text);
  bool SendHello(uint16_t seq, const std::string& reason);
  bool Handle(const AgentFrame& request);
  bool HandlePower(const AgentFrame& request);

  ServerOptions options_;
  int tpm_fd_ = -1;
  std::string tpm_error_;
  AgentFrameReader reader_;
};

// The HELLO this agent sends now.
AgentHello DescribeAgent(const std::string& tpm, const std::string& event_log, const std::string& reason,
                         const std::string& tpm_error);

}  // namespace tpmlab::agent
