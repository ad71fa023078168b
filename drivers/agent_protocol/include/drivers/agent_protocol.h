// The tpmlab agent protocol: framed messages between the harness and
// tpmlab-agent on a board's own OS, over one byte channel (serial port,
// virtio console, a pipe pair for ssh).
//
// A frame, all integers big-endian:
//   "TPLA" | version u8 (1) | type u8 | seq u16 | payload length u32 | payload | crc32 u32
// The CRC (IEEE, as zlib) covers magic through payload. A reply carries its
// request's seq; the agent's unsolicited HELLOs carry seq 0.
//
// This library depends on drivers_core only, so the static agent links it too.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "drivers/bytes.h"
#include "drivers/status.h"

namespace tpmlab {

inline constexpr uint8_t kAgentProtocolVersion = 1;
inline constexpr size_t kAgentMaxPayload = 65536;
inline constexpr size_t kAgentFrameHeaderSize = 12;  // magic, version, type, seq, length
inline constexpr size_t kAgentFrameOverhead = kAgentFrameHeaderSize + 4;  // and the CRC
inline constexpr std::string_view kAgentFrameMagic = "TPLA";

enum class AgentFrameType : uint8_t {
  kHelloRequest = 0x01,
  kHello = 0x81,
  kTpmCommand = 0x02,
  kTpmResponse = 0x82,
  kLogRead = 0x03,   // payload: offset u32, max u32
  kLogData = 0x83,   // the slice; empty = end of the log
  kPower = 0x04,     // payload: one byte, AgentPowerAction
  kPowerAck = 0x84,
  kError = 0xFF,     // UTF-8 text: what failed
};

// "TPM_COMMAND" ..., or "type 0x42" for a type the protocol does not define.
std::string AgentFrameTypeName(uint8_t type);

enum class AgentPowerAction : uint8_t { kReboot = 1, kPowerOff = 2, kSuspend = 3 };
const char* AgentPowerActionName(AgentPowerAction action);  // "reboot", "power-off", "suspend"

struct AgentFrame {
  AgentFrameType type = AgentFrameType::kError;
  uint16_t seq = 0;
  Bytes payload;
};

// IEEE CRC-32 (reflected, polynomial 0xEDB88320, init and final xor 0xFFFFFFFF).
uint32_t Crc32(ByteView data, uint32_t crc = 0);

// The frame's bytes. A payload over kAgentMaxPayload is the caller's bug:
// encode checks it (kInternal error).
Result<Bytes> EncodeAgentFrame(const AgentFrame& frame);

// Cuts frames out of a byte stream fed in pieces of any size.
//
// Bytes before a "TPLA" are skipped (and counted: a console message or line
// noise is not an error by itself). A frame with a bad version, an oversized
// length or a bad CRC is an error naming what was wrong and the frame's offset
// in the stream; the reader then resyncs past that frame's magic.
class AgentFrameReader {
 public:
  // A run of skipped bytes: where it started in the stream and how long it was.
  struct Skipped {
    uint64_t offset = 0;
    uint64_t length = 0;
  };

  void Feed(ByteView bytes);
  // The next whole frame; nullopt when more bytes are needed; an error
  // (kTransport, placed at the frame's offset) for a bad frame.
  Result<std::optional<AgentFrame>> Next();

  // Garbage skipped since the last call, not counting the rest of a frame
  // already reported as an error.
  std::optional<Skipped> TakeSkipped();
  uint64_t skipped_total() const { return skipped_total_; }
  // Bytes held that are not yet a whole frame (a cut-off frame when the
  // channel then goes silent).
  size_t buffered() const { return buffer_.size() - start_; }
  // Stream offset of the next byte to be examined.
  uint64_t offset() const { return base_offset_ + start_; }
  void Reset();

 private:
  void Drop(size_t n, bool garbage);
  void Compact();

  Bytes buffer_;
  size_t start_ = 0;          // first unexamined byte in buffer_
  uint64_t base_offset_ = 0;  // stream offset of buffer_[0]
  uint64_t skipped_total_ = 0;
  std::optional<Skipped> pending_skip_;
  bool after_error_ = false;  // bytes skipped now belong to the frame just reported
};

// AgentHello: what the agent says about itself (HELLO payload, "key=value\n" lines).
struct AgentHello {
  std::string agent, version, kernel, tpm, boot_id, reason, tpm_error;
  int protocol = 0;
  uint64_t log_size = 0;
  uint64_t uptime_ms = 0;
  std::string raw;  // the payload as sent
};

Bytes EncodeAgentHello(const AgentHello& hello);
// Unknown keys are ignored (a newer agent may say more); a number that does
// not parse is a kParse error naming the key.
Result<AgentHello> DecodeAgentHello(ByteView payload);

struct AgentLogRead {
  uint32_t offset = 0;
  uint32_t max = 0;
};
Bytes EncodeAgentLogRead(const AgentLogRead& request);
Result<AgentLogRead> DecodeAgentLogRead(ByteView payload);

Bytes EncodeAgentPower(AgentPowerAction action);
Result<AgentPowerAction> DecodeAgentPower(ByteView payload);

inline Bytes EncodeAgentText(std::string_view text) {
  ByteView b = AsBytes(text);
  return Bytes(b.begin(), b.end());
}
inline std::string DecodeAgentText(ByteView payload) {
  return std::string(payload.begin(), payload.end());
}

}  // namespace tpmlab
