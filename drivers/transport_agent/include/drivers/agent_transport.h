// The harness side of tpmlab-agent: a byte channel to the agent, a client
// that speaks the agent protocol (drivers/agent_protocol.h) over it, and the
// TPM behind the agent as a Transport, so Tpm, snapshots and quotes work
// unchanged on a board reached through its own OS.
//
// Every wait has a deadline (poll); a silent channel is a timeout naming the
// stage, a closed one "agent channel closed", a garbled frame names its byte
// offset, an ERROR frame carries the agent's text.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "drivers/agent_protocol.h"
#include "drivers/bytes.h"
#include "drivers/status.h"
#include "drivers/transport.h"

namespace tpmlab {

// A byte channel to an agent: a connected socket, a pipe pair or a tty.
class AgentChannel {
 public:
  ~AgentChannel();
  AgentChannel(const AgentChannel&) = delete;
  AgentChannel& operator=(const AgentChannel&) = delete;

  /// Takes ownership of the fds (read_fd may equal write_fd).
  static std::unique_ptr<AgentChannel> FromFds(int read_fd, int write_fd, std::string description);
  /// Connects to a unix stream socket (QEMU's chardev server), retrying until `timeout`.
  static Result<std::unique_ptr<AgentChannel>> ConnectUnix(const std::filesystem::path& path,
                                                           std::chrono::milliseconds timeout);
  const std::string& description() const { return description_; }

  /// Writes all of `data` before `deadline`.
  Status Write(ByteView data, std::chrono::steady_clock::time_point deadline);
  /// Reads what is there (at most `max` bytes) once the channel is readable;
  /// 0 bytes means the other end closed; a timeout error after `deadline`.
  Result<size_t> Read(uint8_t* out, size_t max, std::chrono::steady_clock::time_point deadline);

  /// Every byte read so far (frames and console noise alike): on a console,
  /// 0 after a boot's budget means the machine printed nothing at all.
  uint64_t bytes_read() const { return bytes_read_; }
  /// The last bytes read (at most 4 KiB), for saying what a console printed.
  const std::string& recent() const { return recent_; }

 private:
  AgentChannel(int read_fd, int write_fd, std::string description);

  int read_fd_;
  int write_fd_;
  std::string description_;
  uint64_t bytes_read_ = 0;
  std::string recent_;
};


class AgentClient {
 public:
  using Duration = std::chrono::milliseconds;

  explicit AgentClient(std::unique_ptr<AgentChannel> channel);
  /// Replaces the channel (a board relaunched); forgets any owed reply.
  void Attach(std::unique_ptr<AgentChannel> channel);
  /// Waits for the agent's next unsolicited HELLO (after a boot or resume),
  /// skipping anything else; stage "waiting for the agent's hello".
  Result<AgentHello> WaitHello(Duration timeout);
  /// Asks for a HELLO (is the agent there now?).
  Result<AgentHello> Hello(Duration timeout);
  /// The whole firmware event log, read in LOG_READ slices.
  Result<Bytes> ReadEventLog(Duration timeout);
  /// Sends POWER and waits for its ACK (the action happens after the ACK).
  Status RequestPower(AgentPowerAction action, Duration timeout);
  Status SendTpmCommand(ByteView command);
  Result<Bytes> ReceiveTpmResponse(Duration timeout);
  /// Gives up on an owed TPM response: it is skipped as stale when it comes.
  void AbandonTpmResponse() { tpm_owed_.reset(); }

  bool attached() const { return channel_ != nullptr; }
  /// The attached channel (null when none), for what it has carried.
  const AgentChannel* channel() const { return channel_.get(); }
  /// Drops the channel (a session that ended); forgets any owed reply.
  void Detach() { Attach(nullptr); }
  std::string channel_description() const;
  /// Bytes skipped on the channel that were not frames (console noise), so far.
  uint64_t skipped_bytes() const { return reader_.skipped_total(); }

 private:
  // What a wait is for: "no hello from the agent" and "waiting for the agent's hello".
  struct Stage {
    std::string silence;  // the timeout's message, before "within N ms"
    std::string doing;    // what was going on, for the other errors
  };

  uint16_t NextSeq();
  Status Send(AgentFrameType type, uint16_t seq, ByteView payload, std::chrono::steady_clock::time_point deadline);
  // The next frame from the channel, before `deadline`; `stage` names what
  // was being waited for in a timeout.
  Result<AgentFrame> ReadFrame(std::chrono::steady_clock::time_point deadline, Duration timeout,
                               const Stage& stage);
  // The reply to request `seq` of type `expected`; stale replies are skipped.
  Result<AgentFrame> AwaitReply(uint16_t seq, AgentFrameType expected, std::chrono::steady_clock::time_point deadline,
                                Duration timeout, const Stage& stage);
  Result<AgentFrame> Request(AgentFrameType type, ByteView payload, AgentFrameType expected, Duration timeout,
                             const Stage& stage);

  std::unique_ptr<AgentChannel> channel_;
  AgentFrameReader reader_;
  uint16_t seq_ = 0;
  std::optional<uint16_t> tpm_owed_;   // seq of the TPM command awaiting its response
  uint32_t tpm_owed_code_ = 0;
  std::optional<AgentHello> pending_hello_;  // an unsolicited HELLO seen while waiting for something else
};

// The TPM behind an agent, as a Transport: Tpm, snapshots and quotes work unchanged.
class AgentTransport final : public Transport {
 public:
  explicit AgentTransport(AgentClient& client, std::string description);

 private:
  Status DoTransmit(ByteView command) override;
  Result<Bytes> DoReceive(Duration timeout) override;
  // Not reachable through /dev/tpmrm0: an error saying so.
  Status DoCancel() override;
  // Locality 0 only.
  Status DoSetLocality(uint8_t locality) override;
  Info DoInfo() const override;
  void DoAbandonResponse() override;

  AgentClient& client_;
  std::string description_;
};

}  // namespace tpmlab
