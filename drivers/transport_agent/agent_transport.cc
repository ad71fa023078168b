#include "drivers/agent_transport.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <thread>

namespace tpmlab {
namespace {

using Clock = std::chrono::steady_clock;

// The largest log ReadEventLog accepts: real firmware logs are tens of KiB.
constexpr uint64_t kMaxEventLog = 64ull << 20;

int MillisLeft(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) return 0;
  return left > 60'000 ? 60'000 : static_cast<int>(left);
}

Status Errno(const std::string& what, int error) {
  return Status::Error(Layer::kTransport, what + ": " + std::strerror(error));
}

std::string CommandCode(uint32_t code) {
  char text[64];
  std::snprintf(text, sizeof(text), "awaiting the response to command 0x%08x", code);
  return text;
}

// write() on a pipe whose reader died raises SIGPIPE, which would kill the
// harness: block it for this thread around the write and swallow a pending one.
ssize_t WriteNoSigpipe(int fd, const uint8_t* data, size_t size) {
  const ssize_t sent = ::send(fd, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (sent >= 0 || errno != ENOTSOCK) return sent;
  sigset_t pipe_only, old;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
  const ssize_t n = ::write(fd, data, size);
  const int saved = errno;
  if (n < 0 && saved == EPIPE) {
    const timespec zero{0, 0};
    while (sigtimedwait(&pipe_only, nullptr, &zero) == SIGPIPE) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = saved;
  return n;
}

}  // namespace

AgentChannel::AgentChannel(int read_fd, int write_fd, std::string description)
    : read_fd_(read_fd), write_fd_(write_fd), description_(std::move(description)) {
  // Non-blocking: every wait is a poll with a deadline, never a blocked read.
  for (int fd : {read_fd_, write_fd_}) {
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags >= 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  }
}

AgentChannel::~AgentChannel() {
  if (read_fd_ >= 0) ::close(read_fd_);
  if (write_fd_ >= 0 && write_fd_ != read_fd_) ::close(write_fd_);
}

std::unique_ptr<AgentChannel> AgentChannel::FromFds(int read_fd, int write_fd, std::string description) {
  return std::unique_ptr<AgentChannel>(new AgentChannel(read_fd, write_fd, std::move(description)));
}

Result<std::unique_ptr<AgentChannel>> AgentChannel::ConnectUnix(const std::filesystem::path& path,
                                                                std::chrono::milliseconds timeout) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const std::string name = path.string();
  if (name.size() >= sizeof(address.sun_path)) {
    return Status::Error(Layer::kTransport, "agent socket path too long for a unix socket: " + name);
  }
  std::memcpy(address.sun_path, name.c_str(), name.size() + 1);
  const auto deadline = Clock::now() + timeout;
  int last_error = 0;
  // QEMU creates the socket some time after it starts: retry until the deadline.
  for (;;) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return Errno("socket for " + name, errno);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0) {
      return FromFds(fd, fd, "unix:" + name);
    }
    last_error = errno;
    ::close(fd);
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  Status error = Status::Timeout("cannot connect to the agent channel " + name + " within " +
                                 std::to_string(timeout.count()) + " ms: " + std::strerror(last_error));
  return error;
}

Status AgentChannel::Write(ByteView data, Clock::time_point deadline) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = WriteNoSigpipe(write_fd_, data.data() + done, data.size() - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      if (errno == EPIPE || errno == ECONNRESET) {
        return Status::Error(Layer::kTransport, "agent channel closed (" + description_ + ": " +
                                                    std::strerror(errno) + ")");
      }
      return Errno("write to the agent channel " + description_, errno);
    }
    pollfd p{write_fd_, POLLOUT, 0};
    const int ready = ::poll(&p, 1, MillisLeft(deadline));
    if (ready < 0 && errno != EINTR) return Errno("poll " + description_, errno);
    if (ready == 0 && Clock::now() >= deadline) {
      return Status::Timeout("the agent channel " + description_ + " took no bytes (" + std::to_string(done) +
                             " of " + std::to_string(data.size()) + " written)");
    }
  }
  return Status::Ok();
}

Result<size_t> AgentChannel::Read(uint8_t* out, size_t max, Clock::time_point deadline) {
  for (;;) {
    const ssize_t n = ::read(read_fd_, out, max);
    if (n >= 0) {
      constexpr size_t kRecent = 4096;
      bytes_read_ += static_cast<uint64_t>(n);
      recent_.append(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
      if (recent_.size() > kRecent) recent_.erase(0, recent_.size() - kRecent);
      return static_cast<size_t>(n);
    }
    if (errno == EINTR) continue;
    if (errno == ECONNRESET) return size_t{0};
    if (errno != EAGAIN && errno != EWOULDBLOCK) return Errno("read from the agent channel " + description_, errno);
    pollfd p{read_fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, MillisLeft(deadline));
    if (ready < 0 && errno != EINTR) return Errno("poll " + description_, errno);
    if (ready == 0 && Clock::now() >= deadline) return Status::Timeout("silent");
  }
}

AgentClient::AgentClient(std::unique_ptr<AgentChannel> channel) : channel_(std::move(channel)) {}

void AgentClient::Attach(std::unique_ptr<AgentChannel> channel) {
  channel_ = std::move(channel);
  reader_.Reset();
  tpm_owed_.reset();
  pending_hello_.reset();
}

std::string AgentClient::channel_description() const {
  return channel_ ? channel_->description() : std::string("no channel");
}

uint16_t AgentClient::NextSeq() {
  if (++seq_ == 0) seq_ = 1;  // seq 0 is the agent's unsolicited HELLO
  return seq_;
}

Status AgentClient::Send(AgentFrameType type, uint16_t seq, ByteView payload, Clock::time_point deadline) {
  if (!channel_) return Status::Error(Layer::kTransport, "no agent channel attached");
  AgentFrame frame{type, seq, Bytes(payload.begin(), payload.end())};
  TRY_ASSIGN(Bytes bytes, EncodeAgentFrame(frame));
  return channel_->Write(bytes, deadline).Wrap("send " + AgentFrameTypeName(static_cast<uint8_t>(type)));
}

Result<AgentFrame> AgentClient::ReadFrame(Clock::time_point deadline, Duration timeout, const Stage& stage) {
  if (!channel_) return Status::Error(Layer::kTransport, "no agent channel attached");
  uint8_t chunk[4096];
  for (;;) {
    auto next = reader_.Next();
    if (!next.ok()) {
      return next.status().Wrap("garbled frame from the agent on " + channel_->description());
    }
    if (next->has_value()) return std::move(**next);
    auto got = channel_->Read(chunk, sizeof(chunk), deadline);
    if (!got.ok() && got.status().timed_out()) {
      std::string message = stage.silence + " within " + std::to_string(timeout.count()) + " ms (" + stage.doing +
                            " on " + channel_->description();
      if (reader_.buffered() > 0) {
        message += "; " + std::to_string(reader_.buffered()) + " bytes of a cut-off frame at byte " +
                   std::to_string(reader_.offset()) + ", then silence";
      }
      message += ")";
      return Status::Timeout(message);
    }
    if (!got.ok()) return got.status();
    if (*got == 0) {
      return Status::Error(Layer::kTransport, "agent channel closed (" + channel_->description() + ", while " +
                                                  stage.doing + ")");
    }
    reader_.Feed(ByteView(chunk, *got));
  }
}

Result<AgentFrame> AgentClient::AwaitReply(uint16_t seq, AgentFrameType expected, Clock::time_point deadline,
                                           Duration timeout, const Stage& stage) {
  for (;;) {
    TRY_ASSIGN(AgentFrame frame, ReadFrame(deadline, timeout, stage));
    if (frame.seq == 0 && frame.type == AgentFrameType::kHello) {
      auto hello = DecodeAgentHello(frame.payload);
      if (hello.ok()) pending_hello_ = *hello;
      if (expected == AgentFrameType::kHello) continue;  // the requested one follows
      const std::string why = hello.ok() ? " (agent hello, reason=" + hello->reason + ")" : std::string();
      if (expected == AgentFrameType::kTpmResponse) {
        return Status::Error(Layer::kTransport, "the board restarted while a TPM command was in flight" + why);
      }
      return Status::Error(Layer::kTransport, "the board restarted while " + stage.doing + why);
    }
    if (frame.seq == 0 && frame.type == AgentFrameType::kError) {
      return Status::Error(Layer::kTransport, "the agent could not read a request: " + DecodeAgentText(frame.payload));
    }
    if (frame.seq != seq) continue;  // a stale reply to a request given up on
    if (frame.type == AgentFrameType::kError) {
      return Status::Error(Layer::kTransport, "the agent reports: " + DecodeAgentText(frame.payload));
    }
    if (frame.type != expected) {
      return Status::Error(Layer::kTransport, "the agent answered seq " + std::to_string(seq) + " with " +
                                                  AgentFrameTypeName(static_cast<uint8_t>(frame.type)) +
                                                  " where " + AgentFrameTypeName(static_cast<uint8_t>(expected)) +
                                                  " was expected");
    }
    return frame;
  }
}

Result<AgentFrame> AgentClient::Request(AgentFrameType type, ByteView payload, AgentFrameType expected,
                                        Duration timeout, const Stage& stage) {
  const auto deadline = Clock::now() + timeout;
  const uint16_t seq = NextSeq();
  TRY(Send(type, seq, payload, deadline));
  return AwaitReply(seq, expected, deadline, timeout, stage);
}

Result<AgentHello> AgentClient::WaitHello(Duration timeout) {
  if (pending_hello_) {
    AgentHello hello = std::move(*pending_hello_);
    pending_hello_.reset();
    return hello;
  }
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    TRY_ASSIGN(AgentFrame frame, ReadFrame(deadline, timeout, {"no hello from the agent", "waiting for the agent's hello"}));
    if (frame.seq != 0 || frame.type != AgentFrameType::kHello) continue;
    tpm_owed_.reset();  // a fresh agent owes nothing
    return DecodeAgentHello(frame.payload);
  }
}

Result<AgentHello> AgentClient::Hello(Duration timeout) {
  TRY_ASSIGN(AgentFrame frame, Request(AgentFrameType::kHelloRequest, {}, AgentFrameType::kHello, timeout,
                                       {"no hello from the agent", "asking for a hello"}));
  return DecodeAgentHello(frame.payload);
}

Result<Bytes> AgentClient::ReadEventLog(Duration timeout) {
  const auto deadline = Clock::now() + timeout;
  Bytes log;
  for (;;) {
    const uint16_t seq = NextSeq();
    const AgentLogRead slice{static_cast<uint32_t>(log.size()), static_cast<uint32_t>(kAgentMaxPayload)};
    TRY(Send(AgentFrameType::kLogRead, seq, EncodeAgentLogRead(slice), deadline));
    TRY_ASSIGN(AgentFrame frame,
               AwaitReply(seq, AgentFrameType::kLogData, deadline, timeout,
                          {"no event log slice from the agent", "reading the event log at byte " + std::to_string(log.size())}));
    if (frame.payload.empty()) return log;
    if (log.size() + frame.payload.size() > kMaxEventLog) {
      return Status::Error(Layer::kTransport, "the agent's event log is over " + std::to_string(kMaxEventLog) +
                                                  " bytes; giving up");
    }
    log.insert(log.end(), frame.payload.begin(), frame.payload.end());
  }
}

Status AgentClient::RequestPower(AgentPowerAction action, Duration timeout) {
  const std::string name = AgentPowerActionName(action);
  return Request(AgentFrameType::kPower, EncodeAgentPower(action), AgentFrameType::kPowerAck, timeout,
                 {"no POWER_ACK from the agent", "asking for " + name})
      .status();
}

Status AgentClient::SendTpmCommand(ByteView command) {
  const uint16_t seq = NextSeq();
  // A command is at most a few KiB: a channel that takes none of it in 10 s is stuck.
  TRY(Send(AgentFrameType::kTpmCommand, seq, command, Clock::now() + std::chrono::seconds(10)));
  tpm_owed_ = seq;
  tpm_owed_code_ = TpmHeaderCode(command);
  return Status::Ok();
}

Result<Bytes> AgentClient::ReceiveTpmResponse(Duration timeout) {
  if (!tpm_owed_) return Status::Error(Layer::kHarness, "no TPM command sent to the agent is awaiting its response");
  auto frame = AwaitReply(*tpm_owed_, AgentFrameType::kTpmResponse, Clock::now() + timeout, timeout,
                          {"no TPM response from the agent", CommandCode(tpm_owed_code_)});
  // On a timeout the response is still owed (a later call may get it).
  if (!frame.ok() && !frame.status().timed_out()) tpm_owed_.reset();
  if (!frame.ok()) return frame.status();
  tpm_owed_.reset();
  return std::move(frame->payload);
}

AgentTransport::AgentTransport(AgentClient& client, std::string description)
    : client_(client), description_(std::move(description)) {}

Status AgentTransport::DoTransmit(ByteView command) { return client_.SendTpmCommand(command); }

Result<Bytes> AgentTransport::DoReceive(Duration timeout) { return client_.ReceiveTpmResponse(timeout); }

Status AgentTransport::DoCancel() {
  return Status::Error(Layer::kTransport,
                       description_ + ": no cancel through the agent (it holds /dev/tpmrm0, which has none)");
}

Status AgentTransport::DoSetLocality(uint8_t locality) {
  if (locality == 0) return Status::Ok();
  return Status::Error(Layer::kTransport, description_ + ": only locality 0 is reachable through the agent's "
                                                         "/dev/tpmrm0, not " + std::to_string(locality));
}

Transport::Info AgentTransport::DoInfo() const { return {"agent", description_}; }

void AgentTransport::DoAbandonResponse() { client_.AbandonTpmResponse(); }

}  // namespace tpmlab
