#include "agent_server.h"

#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include "agent_system.h"
#include "harness/version.h"

namespace tpmlab::agent {

AgentHello DescribeAgent(const std::string& tpm, const std::string& event_log, const std::string& reason,
                         const std::string& tpm_error) {
  AgentHello hello;
  hello.agent = "tpmlab-agent";
  hello.protocol = kAgentProtocolVersion;
  hello.version = kTpmlabVersion;
  hello.kernel = KernelRelease();
  hello.tpm = tpm;
  auto log = ReadWholeFile(event_log);
  hello.log_size = log.ok() ? log->size() : 0;
  hello.boot_id = FirstLine("/proc/sys/kernel/random/boot_id");
  hello.uptime_ms = UptimeMs();
  hello.reason = reason;
  hello.tpm_error = tpm_error;
  return hello;
}

Server::Server(ServerOptions options) : options_(std::move(options)) {
  if (options_.tpm_fd) {
    tpm_fd_ = *options_.tpm_fd;
  } else {
    OpenTpmDevice();
  }
}

Server::~Server() { CloseTpmDevice(); }

void Server::OpenTpmDevice() {
  if (options_.tpm_fd) return;  // a handed-in fd cannot be reopened: it stays open
  CloseTpmDevice();
  if (options_.tpm_wait.count() > 0 && !WaitForPath(options_.tpm_path, options_.tpm_wait)) {
    tpm_error_ = options_.tpm_path + " did not appear within " + std::to_string(options_.tpm_wait.count()) + " ms";
    return;
  }
  auto fd = OpenTpm(options_.tpm_path);
  if (fd.ok()) {
    tpm_fd_ = *fd;
    tpm_error_.clear();
  } else {
    tpm_error_ = fd.status().message();
  }
}

void Server::CloseTpmDevice() {
  if (options_.tpm_fd || tpm_fd_ < 0) return;
  ::close(tpm_fd_);
  tpm_fd_ = -1;
}

bool Server::Send(AgentFrameType type, uint16_t seq, ByteView payload) {
  AgentFrame frame{type, seq, Bytes(payload.begin(), payload.end())};
  auto bytes = EncodeAgentFrame(frame);
  if (!bytes.ok()) {  // only a payload over the maximum, which no reply has
    return SendError(seq, bytes.status().message());
  }
  if (!WriteAll(options_.out_fd, *bytes)) {
    Say("cannot write to " + options_.channel + ": " + std::strerror(errno));
    return false;
  }
  return true;
}

bool Server::SendError(uint16_t seq, const std::string& text) {
  return Send(AgentFrameType::kError, seq, EncodeAgentText(text));
}

bool Server::SendHello(uint16_t seq, const std::string& reason) {
  const std::string tpm = options_.tpm_fd ? "fd " + std::to_string(*options_.tpm_fd) : options_.tpm_path;
  return Send(AgentFrameType::kHello, seq, EncodeAgentHello(DescribeAgent(tpm, options_.event_log, reason, tpm_error_)));
}

int Server::Run() {
  if (!SendHello(0, "start") && !options_.pid1) return 1;
  uint8_t chunk[4096];
  for (;;) {
    const ssize_t n = ::read(options_.in_fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (!options_.pid1) {
        if (n < 0) Say("read " + options_.channel + ": " + std::strerror(errno));
        return n == 0 ? 0 : 1;
      }
      // PID 1 never leaves: a hung-up tty comes back when the harness reconnects.
      std::this_thread::sleep_for(std::chrono::seconds(1));
      continue;
    }
    reader_.Feed(ByteView(chunk, static_cast<size_t>(n)));
    for (;;) {
      auto next = reader_.Next();
      if (auto skipped = reader_.TakeSkipped()) {
        const std::string text = "skipped " + std::to_string(skipped->length) + " bytes that are not a frame at byte " +
                                 std::to_string(skipped->offset) + " of " + options_.channel;
        if (!SendError(0, text) && !options_.pid1) return 1;
      }
      if (!next.ok()) {
        if (!SendError(0, "bad frame on " + options_.channel + ": " + next.status().message()) && !options_.pid1) {
          return 1;
        }
        continue;
      }
      if (!next->has_value()) break;
      if (!Handle(**next) && !options_.pid1) return 1;
    }
  }
}

bool Server::Handle(const AgentFrame& request) {
  switch (request.type) {
    case AgentFrameType::kHelloRequest:
      return SendHello(request.seq, "request");
    case AgentFrameType::kTpmCommand: {
      if (tpm_fd_ < 0) return SendError(request.seq, "the TPM is not open: " + tpm_error_);
      auto response = TpmExchange(tpm_fd_, request.payload, options_.tpm_timeout);
      if (!response.ok()) return SendError(request.seq, options_.tpm_path + ": " + response.status().message());
      return Send(AgentFrameType::kTpmResponse, request.seq, *response);
    }
    case AgentFrameType::kLogRead: {
      auto slice = DecodeAgentLogRead(request.payload);
      if (!slice.ok()) return SendError(request.seq, slice.status().message());
      auto log = ReadWholeFile(options_.event_log);
      if (!log.ok()) return SendError(request.seq, "event log: " + log.status().message());
      const size_t begin = std::min<size_t>(slice->offset, log->size());
      const size_t length = std::min<size_t>({log->size() - begin, slice->max, kAgentMaxPayload});
      return Send(AgentFrameType::kLogData, request.seq,
                  ByteView(log->data() + begin, length));
    }
    case AgentFrameType::kPower:
      return HandlePower(request);
    default:
      return SendError(request.seq, "the agent does not take " +
                                        AgentFrameTypeName(static_cast<uint8_t>(request.type)) + " frames");
  }
}

bool Server::HandlePower(const AgentFrame& request) {
  auto action = DecodeAgentPower(request.payload);
  if (!action.ok()) return SendError(request.seq, action.status().message());
  if (!Send(AgentFrameType::kPowerAck, request.seq, {})) return false;
  ::tcdrain(options_.out_fd);  // the ACK is out before the board goes away (ENOTTY on a pipe: fine)
  const std::string name = AgentPowerActionName(*action);
  if (options_.power_dry_run) {
    Say("would " + name + " now (--power-dry-run)");
    if (*action == AgentPowerAction::kSuspend) return SendHello(0, "resume");
    return true;
  }
  Say(name + " requested");
  if (*action == AgentPowerAction::kSuspend) {
    CloseTpmDevice();  // the kernel sends TPM2_Shutdown(STATE) on the way down
    const Status slept = SuspendToRam();
    if (!slept.ok()) Say("suspend failed: " + slept.message());
    OpenTpmDevice();
    Say("resumed");
    return SendHello(0, "resume");
  }
  CloseTpmDevice();
  const Status done = RebootNow(*action == AgentPowerAction::kPowerOff);
  // Only a refused reboot() gets here (not root, in a container).
  Say(name + " failed: " + done.message());
  if (!options_.tpm_fd) OpenTpmDevice();
  return true;
}

}  // namespace tpmlab::agent
