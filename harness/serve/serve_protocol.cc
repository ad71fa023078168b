#include "harness/serve_protocol.h"

#include <cstdio>

#include "drivers/transport.h"

namespace tpmlab::serve {
namespace {

uint32_t U32At(const Bytes& b, size_t at) {
  return uint32_t{b[at]} << 24 | uint32_t{b[at + 1]} << 16 | uint32_t{b[at + 2]} << 8 | b[at + 3];
}

std::string Hex(uint32_t v) {
  char text[16];
  std::snprintf(text, sizeof(text), "0x%x", v);
  return text;
}

Status BadAt(uint64_t offset, const std::string& what) {
  return Status::Parse("byte offset " + std::to_string(offset) + ": " + what, offset);
}

// Drops consumed bytes once they are most of the buffer (amortised O(n)).
void Compact(Bytes& buffer, size_t& start) {
  if (start > 0 && start * 2 >= buffer.size()) {
    buffer.erase(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(start));
    start = 0;
  }
}

// How many payload bytes follow `code` on the second port: a fixed count,
// or (length_prefixed) a u32 count then that many bytes. nullopt: unknown.
struct PayloadShape {
  size_t fixed = 0;
  bool length_prefixed = false;
};

std::optional<PayloadShape> ShapeOf(Flavour flavour, uint32_t code) {
  if (flavour == Flavour::kSwtpm) {
    switch (code) {
      case 0x01: case 0x03: case 0x04: case 0x06: case 0x08: case 0x09: case 0x0A: case 0x0E: case 0x0F:
        return PayloadShape{};
      case 0x02: return PayloadShape{4, false};    // CMD_INIT: u32 flags
      case 0x05: return PayloadShape{1, false};    // CMD_SET_LOCALITY: u8
      case 0x07: return PayloadShape{0, true};     // CMD_HASH_DATA: u32 length, data
      case 0x0B: return PayloadShape{1, false};    // CMD_RESET_TPMESTABLISHED: u8 locality
      case 0x11: return PayloadShape{4, false};    // CMD_SET_BUFFERSIZE: u32
      case 0x12: return PayloadShape{16, false};   // CMD_GET_INFO: u64 flags, u32 offset, u32 pad
      default: return std::nullopt;
    }
  }
  switch (code) {
    case mssim::kPowerOn: case mssim::kPowerOff: case mssim::kPhysPresOn: case mssim::kPhysPresOff:
    case mssim::kHashStart: case mssim::kHashEnd: case mssim::kCancelOn: case mssim::kCancelOff:
    case mssim::kNvOn: case mssim::kNvOff: case mssim::kKeyCacheOn: case mssim::kKeyCacheOff:
    case mssim::kSessionEnd: case mssim::kStop: case mssim::kTestFailureMode:
      return PayloadShape{};
    case mssim::kHashData: return PayloadShape{0, true};
    case mssim::kRemoteHandshake: case mssim::kSetAlternativeResult: return PayloadShape{4, false};
    default: return std::nullopt;
  }
}

}  // namespace

const char* FlavourName(Flavour flavour) { return flavour == Flavour::kSwtpm ? "swtpm" : "mssim"; }

Result<Flavour> ParseFlavour(const std::string& text) {
  if (text == "swtpm") return Flavour::kSwtpm;
  if (text == "mssim") return Flavour::kMssim;
  return Status::Parse("--protocol " + text + ": expected swtpm or mssim").WithKind(ErrorKind::kBadInput);
}

std::string ControlCodeName(Flavour flavour, uint32_t code) {
  if (flavour == Flavour::kSwtpm) {
    static const char* const kNames[] = {nullptr, "CMD_GET_CAPABILITY", "CMD_INIT", "CMD_SHUTDOWN",
                                         "CMD_GET_TPMESTABLISHED", "CMD_SET_LOCALITY", "CMD_HASH_START",
                                         "CMD_HASH_DATA", "CMD_HASH_END", "CMD_CANCEL_TPM_CMD",
                                         "CMD_STORE_VOLATILE", "CMD_RESET_TPMESTABLISHED", "CMD_GET_STATEBLOB",
                                         "CMD_SET_STATEBLOB", "CMD_STOP", "CMD_GET_CONFIG", "CMD_SET_DATAFD",
                                         "CMD_SET_BUFFERSIZE", "CMD_GET_INFO"};
    if (code >= 1 && code < sizeof(kNames) / sizeof(kNames[0])) return kNames[code];
    return "code " + std::to_string(code);
  }
  switch (code) {
    case mssim::kPowerOn: return "TPM_SIGNAL_POWER_ON";
    case mssim::kPowerOff: return "TPM_SIGNAL_POWER_OFF";
    case mssim::kPhysPresOn: return "TPM_SIGNAL_PHYS_PRES_ON";
    case mssim::kPhysPresOff: return "TPM_SIGNAL_PHYS_PRES_OFF";
    case mssim::kHashStart: return "TPM_SIGNAL_HASH_START";
    case mssim::kHashData: return "TPM_SIGNAL_HASH_DATA";
    case mssim::kHashEnd: return "TPM_SIGNAL_HASH_END";
    case mssim::kSendCommand: return "TPM_SEND_COMMAND";
    case mssim::kCancelOn: return "TPM_SIGNAL_CANCEL_ON";
    case mssim::kCancelOff: return "TPM_SIGNAL_CANCEL_OFF";
    case mssim::kNvOn: return "TPM_SIGNAL_NV_ON";
    case mssim::kNvOff: return "TPM_SIGNAL_NV_OFF";
    case mssim::kKeyCacheOn: return "TPM_SIGNAL_KEY_CACHE_ON";
    case mssim::kKeyCacheOff: return "TPM_SIGNAL_KEY_CACHE_OFF";
    case mssim::kRemoteHandshake: return "TPM_REMOTE_HANDSHAKE";
    case mssim::kSetAlternativeResult: return "TPM_SET_ALTERNATIVE_RESULT";
    case mssim::kSessionEnd: return "TPM_SESSION_END";
    case mssim::kStop: return "TPM_STOP";
    case mssim::kTestFailureMode: return "TPM_TEST_FAILURE_MODE";
    default: return "code " + std::to_string(code);
  }
}

void DataParser::Feed(ByteView bytes) {
  Compact(buffer_, start_);
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
}

Result<std::optional<DataRequest>> DataParser::Next() {
  const size_t have = buffer_.size() - start_;
  const uint64_t at = consumed_;
  if (have == 0) return std::optional<DataRequest>();
  DataRequest request;
  request.offset = at;
  size_t command_at = 0;  // of the TPM command within the frame
  size_t length = 0;      // of the TPM command
  if (buffer_[start_] == 0x80) {
    // Raw: the TPM header is the frame.
    if (have < kTpmHeaderSize) return std::optional<DataRequest>();
    const uint32_t tag = uint32_t{buffer_[start_]} << 8 | buffer_[start_ + 1];
    if (tag != 0x8001 && tag != 0x8002) {
      return BadAt(at, "tag " + Hex(tag) + " is neither TPM_ST_NO_SESSIONS (0x8001) nor TPM_ST_SESSIONS (0x8002)");
    }
    length = U32At(buffer_, start_ + 2);
    if (length < kTpmHeaderSize || length > kTpmMaxMessage) {
      return BadAt(at + 2, "command size " + std::to_string(length) + " is outside 10.." +
                               std::to_string(kTpmMaxMessage));
    }
  } else {
    if (have < 4) return std::optional<DataRequest>();
    const uint32_t code = U32At(buffer_, start_);
    if (code == mssim::kSessionEnd) {
      request.kind = DataRequest::Kind::kSessionEnd;
      start_ += 4;
      consumed_ += 4;
      return std::optional<DataRequest>(std::move(request));
    }
    if (code != mssim::kSendCommand) {
      return BadAt(at, "data port code " + Hex(code) + " is neither TPM_SEND_COMMAND (8) nor TPM_SESSION_END (20), "
                       "nor the start of a raw TPM command (0x80)");
    }
    if (have < 9) return std::optional<DataRequest>();
    request.mssim_framing = true;
    request.locality = buffer_[start_ + 4];
    length = U32At(buffer_, start_ + 5);
    if (length < kTpmHeaderSize || length > kTpmMaxMessage) {
      return BadAt(at + 5, "TPM_SEND_COMMAND length " + std::to_string(length) + " is outside 10.." +
                               std::to_string(kTpmMaxMessage));
    }
    command_at = 9;
    if (have < command_at + kTpmHeaderSize) return std::optional<DataRequest>();
    const uint32_t inner = U32At(buffer_, start_ + command_at + 2);
    if (inner != length) {
      return BadAt(at + command_at + 2, "the command's header says " + std::to_string(inner) +
                                            " bytes, its TPM_SEND_COMMAND frame " + std::to_string(length));
    }
  }
  if (have < command_at + length) return std::optional<DataRequest>();
  const auto first = buffer_.begin() + static_cast<std::ptrdiff_t>(start_ + command_at);
  request.command.assign(first, first + static_cast<std::ptrdiff_t>(length));
  start_ += command_at + length;
  consumed_ += command_at + length;
  return std::optional<DataRequest>(std::move(request));
}

Bytes FrameResponse(ByteView response, bool mssim_framing) {
  if (!mssim_framing) return Bytes(response.begin(), response.end());
  return ByteWriter().U32(static_cast<uint32_t>(response.size())).Append(response).U32(0).Take();
}

void ControlParser::Feed(ByteView bytes) {
  Compact(buffer_, start_);
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
}

Result<std::optional<ControlRequest>> ControlParser::Next() {
  const size_t have = buffer_.size() - start_;
  const uint64_t at = consumed_;
  if (have < 4) return std::optional<ControlRequest>();
  ControlRequest request;
  request.offset = at;
  request.code = U32At(buffer_, start_);
  const auto shape = ShapeOf(flavour_, request.code);
  if (!shape) {
    return BadAt(at, std::string(FlavourName(flavour_)) + " " +
                         (flavour_ == Flavour::kSwtpm ? "control" : "platform") + " code " +
                         std::to_string(request.code) + " (" + ControlCodeName(flavour_, request.code) +
                         ") is not served");
  }
  size_t payload = shape->fixed;
  size_t prefix = 0;
  if (shape->length_prefixed) {
    if (have < 8) return std::optional<ControlRequest>();
    const uint32_t n = U32At(buffer_, start_ + 4);
    if (n > kTpmMaxMessage) {
      return BadAt(at + 4, ControlCodeName(flavour_, request.code) + " length " + std::to_string(n) +
                               " is over " + std::to_string(kTpmMaxMessage));
    }
    prefix = 4;
    payload = n;
  }
  if (have < 4 + prefix + payload) return std::optional<ControlRequest>();
  const auto first = buffer_.begin() + static_cast<std::ptrdiff_t>(start_ + 4 + prefix);
  request.payload.assign(first, first + static_cast<std::ptrdiff_t>(payload));
  start_ += 4 + prefix + payload;
  consumed_ += 4 + prefix + payload;
  return std::optional<ControlRequest>(std::move(request));
}

}  // namespace tpmlab::serve
