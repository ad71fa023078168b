// Ways to reach tpmlab-agent on a whole machine: `ssh -T HOST tpmlab-agent
// --stdio` (the system's OpenSSH client, never a password: BatchMode), a
// serial console (a tty, raw), or a TCP console (ser2net, a QEMU chardev
// socket). Each gives an AgentChannel; what ssh said on its stderr is read
// back to tell a refused connection from a failed login or a missing agent.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "drivers/agent_transport.h"
#include "drivers/process.h"
#include "drivers/status.h"

namespace tpmlab {

struct SshTarget {
  std::string host;
  std::string user;                  // "": ssh's own choice
  uint32_t port = 0;                 // 0: ssh's own choice
  std::vector<std::string> options;  // as the bench gives them; a leading "~/" is the user's home
  std::string command = "tpmlab-agent --stdio";
  std::chrono::seconds connect_timeout{10};  // ssh's ConnectTimeout, per attempt

  /// "ssh root@lab-board-7:2222"
  std::string ToString() const;
};

/// The ssh command line: ssh -T -o BatchMode=yes (never a prompt) -o
/// ConnectTimeout=N -o ServerAliveInterval=15 [-p PORT] OPTIONS [USER@]HOST COMMAND.
std::vector<std::string> SshArgv(const SshTarget& target);

// An ssh child whose stdin and stdout are the agent channel; its stderr goes
// to a log file. The child dies with its owner (ChildProcess).
struct SshAgentSession {
  ChildProcess ssh;
  std::unique_ptr<AgentChannel> channel;
  std::filesystem::path stderr_log;
  uint64_t stderr_offset = 0;  // where this session's part of the log starts
};

/// Starts ssh (it has not connected yet when this returns).
/// @returns kMissingPackage when ssh is not on PATH (Debian openssh-client).
Result<SshAgentSession> StartSshAgent(const SshTarget& target, const std::filesystem::path& stderr_log);

// What ssh's stderr says about a session that ended.
enum class SshOutcome {
  kUnknown,       // nothing recognised (the last line is quoted)
  kUnreachable,   // refused, timed out, no route, reset: worth retrying while a machine boots
  kUnresolved,    // the host name does not resolve
  kAuthFailed,    // "Permission denied (publickey...)", too many failures
  kHostKey,       // host key verification failed (changed, or unknown with strict checking)
  kNoAgent,       // the remote shell did not find the agent command (exit 127, "command not found")
};
struct SshDiagnosis {
  SshOutcome outcome = SshOutcome::kUnknown;
  std::string line;  // ssh's (or the remote shell's) own line, quoted in errors
};
/// Reads ssh's stderr (from the session's offset) and its exit code.
SshDiagnosis DiagnoseSsh(const std::string& stderr_text, std::optional<int> exit_code);
std::string SshOutcomeName(SshOutcome outcome);

/// Opens `device` raw, 8N1, no flow control, at `baud`.
/// @returns kTransport naming the device (absent, busy, not a tty, bad baud).
Result<std::unique_ptr<AgentChannel>> OpenSerialAgentChannel(const std::string& device, uint32_t baud);

/// Connects to a TCP console at host:port (names resolved), once.
/// @returns kTransport naming host:port and why (refused, timed out, unresolved).
Result<std::unique_ptr<AgentChannel>> ConnectTcpAgentChannel(const std::string& host, uint16_t port,
                                                            std::chrono::milliseconds timeout);

/// Whether `host` resolves (getaddrinfo); the error says why not.
Status ResolveHost(const std::string& host);

}  // namespace tpmlab
