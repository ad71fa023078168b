#include "drivers/agent_protocol.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>

namespace tpmlab {
namespace {

// The reflected CRC-32 table, computed once.
std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int bit = 0; bit < 8; ++bit) c = (c & 1) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
    table[i] = c;
  }
  return table;
}

uint32_t ReadBe32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

std::string Hex(uint32_t value, int digits) {
  char text[16];
  std::snprintf(text, sizeof(text), "0x%0*x", digits, value);
  return text;
}

bool IsKnownType(uint8_t type) {
  switch (static_cast<AgentFrameType>(type)) {
    case AgentFrameType::kHelloRequest:
    case AgentFrameType::kHello:
    case AgentFrameType::kTpmCommand:
    case AgentFrameType::kTpmResponse:
    case AgentFrameType::kLogRead:
    case AgentFrameType::kLogData:
    case AgentFrameType::kPower:
    case AgentFrameType::kPowerAck:
    case AgentFrameType::kError:
      return true;
  }
  return false;
}

Status FrameError(uint64_t offset, const std::string& reason) {
  return Status::ErrorAt(Layer::kTransport, Location::AtOffset(offset),
                         reason + " (frame at byte " + std::to_string(offset) + " of the stream)");
}

}  // namespace

std::string AgentFrameTypeName(uint8_t type) {
  switch (static_cast<AgentFrameType>(type)) {
    case AgentFrameType::kHelloRequest: return "HELLO_REQUEST";
    case AgentFrameType::kHello: return "HELLO";
    case AgentFrameType::kTpmCommand: return "TPM_COMMAND";
    case AgentFrameType::kTpmResponse: return "TPM_RESPONSE";
    case AgentFrameType::kLogRead: return "LOG_READ";
    case AgentFrameType::kLogData: return "LOG_DATA";
    case AgentFrameType::kPower: return "POWER";
    case AgentFrameType::kPowerAck: return "POWER_ACK";
    case AgentFrameType::kError: return "ERROR";
  }
  return "type " + Hex(type, 2);
}

const char* AgentPowerActionName(AgentPowerAction action) {
  switch (action) {
    case AgentPowerAction::kReboot: return "reboot";
    case AgentPowerAction::kPowerOff: return "power-off";
    case AgentPowerAction::kSuspend: return "suspend";
  }
  return "unknown power action";
}

uint32_t Crc32(ByteView data, uint32_t crc) {
  static const std::array<uint32_t, 256> table = MakeCrcTable();
  crc = ~crc;
  for (uint8_t byte : data) crc = table[(crc ^ byte) & 0xFFu] ^ (crc >> 8);
  return ~crc;
}

Result<Bytes> EncodeAgentFrame(const AgentFrame& frame) {
  if (frame.payload.size() > kAgentMaxPayload) {
    return Status::Error(Layer::kHarness, "agent frame payload of " + std::to_string(frame.payload.size()) +
                                              " bytes is over the " + std::to_string(kAgentMaxPayload) +
                                              " maximum");
  }
  ByteWriter w;
  w.Append(AsBytes(kAgentFrameMagic))
      .U8(kAgentProtocolVersion)
      .U8(static_cast<uint8_t>(frame.type))
      .U16(frame.seq)
      .U32(static_cast<uint32_t>(frame.payload.size()))
      .Append(frame.payload);
  w.U32(Crc32(w.bytes()));
  return w.Take();
}

void AgentFrameReader::Feed(ByteView bytes) {
  Compact();
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
}

void AgentFrameReader::Compact() {
  if (start_ == 0) return;
  buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(start_));
  base_offset_ += start_;
  start_ = 0;
}

void AgentFrameReader::Reset() {
  base_offset_ += buffer_.size();
  buffer_.clear();
  start_ = 0;
  pending_skip_.reset();
  after_error_ = false;
}

void AgentFrameReader::Drop(size_t n, bool garbage) {
  if (n == 0) return;
  if (garbage) {
    skipped_total_ += n;
    if (!after_error_) {
      if (!pending_skip_) pending_skip_ = Skipped{offset(), 0};
      pending_skip_->length += n;
    }
  }
  start_ += n;
}

std::optional<AgentFrameReader::Skipped> AgentFrameReader::TakeSkipped() {
  auto skipped = pending_skip_;
  pending_skip_.reset();
  return skipped;
}

Result<std::optional<AgentFrame>> AgentFrameReader::Next() {
  const ByteView magic = AsBytes(kAgentFrameMagic);
  // Resync: find the magic. Keep a tail that may be the start of one.
  const auto begin = buffer_.begin() + static_cast<std::ptrdiff_t>(start_);
  const auto found = std::search(begin, buffer_.end(), magic.begin(), magic.end());
  if (found == buffer_.end()) {
    size_t keep = std::min<size_t>(buffer_.size() - start_, magic.size() - 1);
    while (keep > 0 && !std::equal(buffer_.end() - static_cast<std::ptrdiff_t>(keep), buffer_.end(),
                                   magic.begin())) {
      --keep;
    }
    Drop(buffer_.size() - start_ - keep, true);
    return std::optional<AgentFrame>();
  }
  Drop(static_cast<size_t>(found - begin), true);
  after_error_ = false;
  if (buffered() < kAgentFrameHeaderSize) return std::optional<AgentFrame>();

  const uint8_t* header = buffer_.data() + start_;
  const uint64_t frame_offset = offset();
  const uint8_t version = header[4];
  const uint8_t type = header[5];
  const uint16_t seq = static_cast<uint16_t>(header[6] << 8 | header[7]);
  const uint32_t length = ReadBe32(header + 8);
  // A bad frame: report it, then look for the next magic after this one.
  auto reject = [&](const std::string& reason) -> Result<std::optional<AgentFrame>> {
    Drop(magic.size(), false);
    after_error_ = true;
    return FrameError(frame_offset, reason);
  };
  if (version != kAgentProtocolVersion) {
    return reject("protocol version " + std::to_string(version) + " where " +
                  std::to_string(kAgentProtocolVersion) + " was expected");
  }
  if (length > kAgentMaxPayload) {
    return reject("payload length " + std::to_string(length) + " over the " + std::to_string(kAgentMaxPayload) +
                  "-byte maximum");
  }
  if (buffered() < kAgentFrameOverhead + length) return std::optional<AgentFrame>();
  const uint32_t expected = Crc32(ByteView(header, kAgentFrameHeaderSize + length));
  const uint32_t sent = ReadBe32(header + kAgentFrameHeaderSize + length);
  if (expected != sent) {
    return reject("bad CRC in " + AgentFrameTypeName(type) + " frame seq " + std::to_string(seq) + " (sent " +
                  Hex(sent, 8) + ", computed " + Hex(expected, 8) + ")");
  }
  if (!IsKnownType(type)) {
    Drop(kAgentFrameOverhead + length, false);
    return FrameError(frame_offset, "unknown frame " + AgentFrameTypeName(type) + " seq " + std::to_string(seq));
  }
  AgentFrame frame;
  frame.type = static_cast<AgentFrameType>(type);
  frame.seq = seq;
  frame.payload.assign(header + kAgentFrameHeaderSize, header + kAgentFrameHeaderSize + length);
  Drop(kAgentFrameOverhead + length, false);
  return std::optional<AgentFrame>(std::move(frame));
}

Bytes EncodeAgentHello(const AgentHello& hello) {
  std::string text;
  auto line = [&text](std::string_view key, const std::string& value) {
    text.append(key).append("=");
    // One line per key: a newline inside a value would start a bogus key.
    for (char c : value) text.push_back(c == '\n' || c == '\r' ? ' ' : c);
    text.append("\n");
  };
  line("agent", hello.agent);
  line("protocol", std::to_string(hello.protocol));
  line("version", hello.version);
  line("kernel", hello.kernel);
  line("tpm", hello.tpm);
  line("log_size", std::to_string(hello.log_size));
  line("boot_id", hello.boot_id);
  line("uptime_ms", std::to_string(hello.uptime_ms));
  line("reason", hello.reason);
  if (!hello.tpm_error.empty()) line("tpm_error", hello.tpm_error);
  return EncodeAgentText(text);
}

Result<AgentHello> DecodeAgentHello(ByteView payload) {
  AgentHello hello;
  hello.raw = DecodeAgentText(payload);
  std::string_view rest = hello.raw;
  uint32_t line_number = 0;
  while (!rest.empty()) {
    ++line_number;
    const size_t end = rest.find('\n');
    std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    if (line.empty()) continue;
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos) {
      return Status::ErrorAt(Layer::kParse, Location("agent hello", line_number, 1),
                             "'" + std::string(line) + "' is not key=value");
    }
    const std::string_view key = line.substr(0, eq);
    const std::string value(line.substr(eq + 1));
    auto number = [&](auto& out) -> Status {
      auto [ptr, error] = std::from_chars(value.data(), value.data() + value.size(), out);
      if (error != std::errc() || ptr != value.data() + value.size() || value.empty()) {
        return Status::ErrorAt(Layer::kParse, Location("agent hello", line_number, static_cast<uint32_t>(eq + 2)),
                               std::string(key) + " '" + value + "' is not a number");
      }
      return Status::Ok();
    };
    if (key == "agent") hello.agent = value;
    else if (key == "version") hello.version = value;
    else if (key == "kernel") hello.kernel = value;
    else if (key == "tpm") hello.tpm = value;
    else if (key == "boot_id") hello.boot_id = value;
    else if (key == "reason") hello.reason = value;
    else if (key == "tpm_error") hello.tpm_error = value;
    else if (key == "protocol") TRY(number(hello.protocol));
    else if (key == "log_size") TRY(number(hello.log_size));
    else if (key == "uptime_ms") TRY(number(hello.uptime_ms));
  }
  return hello;
}

Bytes EncodeAgentLogRead(const AgentLogRead& request) {
  return ByteWriter().U32(request.offset).U32(request.max).Take();
}

Result<AgentLogRead> DecodeAgentLogRead(ByteView payload) {
  if (payload.size() != 8) {
    return Status::Parse("LOG_READ payload of " + std::to_string(payload.size()) +
                         " bytes (offset u32 and max u32 are 8)");
  }
  return AgentLogRead{ReadBe32(payload.data()), ReadBe32(payload.data() + 4)};
}

Bytes EncodeAgentPower(AgentPowerAction action) { return Bytes{static_cast<uint8_t>(action)}; }

Result<AgentPowerAction> DecodeAgentPower(ByteView payload) {
  if (payload.size() != 1) {
    return Status::Parse("POWER payload of " + std::to_string(payload.size()) + " bytes (one byte: 1, 2 or 3)");
  }
  if (payload[0] < 1 || payload[0] > 3) {
    return Status::Parse("POWER action " + std::to_string(payload[0]) +
                         " (1 reboot, 2 power-off, 3 suspend-to-RAM)");
  }
  return static_cast<AgentPowerAction>(payload[0]);
}

}  // namespace tpmlab
