#include "drivers/bytes.h"

namespace tpmlab {

std::string ToHex(ByteView bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xF]);
  }
  return out;
}

Result<Bytes> FromHex(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (hex.size() % 2 != 0) return Status::Parse("hex string has an odd length");
  Bytes out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return Status::Parse("not a hex digit", i);
    out.push_back(static_cast<uint8_t>(hi << 4 | lo));
  }
  return out;
}

Result<ByteView> ByteReader::Take(size_t n, std::string_view field) {
  if (remaining() < n) {
    return Error(std::string(field) + " needs " + std::to_string(n) + " bytes, " +
                 std::to_string(remaining()) + " left");
  }
  ByteView out = data_.subspan(offset_, n);
  offset_ += n;
  return out;
}

Result<ByteView> ByteReader::Sized16(std::string_view field, size_t max) {
  size_t start = offset_;
  TRY_ASSIGN(uint16_t size, U16());
  if (size > max) {
    offset_ = start;
    return Error(std::string(field) + " size " + std::to_string(size) + " exceeds " +
                 std::to_string(max));
  }
  auto body = Take(size, field);
  if (!body.ok()) offset_ = start;
  return body;
}

Status ByteReader::Error(std::string_view message) const {
  return Status::Parse(what_ + " at byte " + std::to_string(offset_) + ": " +
                           std::string(message),
                       offset_);
}

}  // namespace tpmlab
