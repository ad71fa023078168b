// Byte buffers and big-endian (TPM wire order) readers and writers.
//
// The reader never reads past its end: every Read* checks the remaining length
// first and leaves the offset unchanged on failure, reporting where it stopped.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "drivers/status.h"

namespace tpmlab {

using Bytes = std::vector<uint8_t>;
using ByteView = std::span<const uint8_t>;

std::string ToHex(ByteView bytes);
Result<Bytes> FromHex(std::string_view hex);
inline ByteView AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Appends big-endian integers and byte strings.
class ByteWriter {
 public:
  ByteWriter& U8(uint8_t v) { out_.push_back(v); return *this; }
  ByteWriter& U16(uint16_t v) { return Be(v, 2); }
  ByteWriter& U32(uint32_t v) { return Be(v, 4); }
  ByteWriter& U64(uint64_t v) { return Be(v, 8); }
  // Reserves first (doubling, so many appends stay linear): without it GCC 12
  // at -O3 takes insert() after push_back() for a write past the end
  // (-Wstringop-overflow) once this is inlined.
  ByteWriter& Append(ByteView b) {
    if (out_.capacity() - out_.size() < b.size()) out_.reserve(std::max(out_.size() + b.size(), 2 * out_.capacity()));
    out_.insert(out_.end(), b.begin(), b.end());
    return *this;
  }
  // A TPM2B: u16 size, then the bytes.
  ByteWriter& Sized16(ByteView b) { U16(static_cast<uint16_t>(b.size())); return Append(b); }
  const Bytes& bytes() const { return out_; }
  Bytes Take() { return std::move(out_); }

 private:
  ByteWriter& Be(uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
    return *this;
  }
  Bytes out_;
};

// Reads big-endian integers from a span, with bounds checks that cannot overflow.
class ByteReader {
 public:
  explicit ByteReader(ByteView data, std::string what = "buffer")
      : data_(data), what_(std::move(what)) {}

  Result<uint8_t> U8() { return Be<uint8_t>(1); }
  Result<uint16_t> U16() { return Be<uint16_t>(2); }
  Result<uint32_t> U32() { return Be<uint32_t>(4); }
  Result<uint64_t> U64() { return Be<uint64_t>(8); }
  Result<ByteView> Take(size_t n, std::string_view field = "field");
  // A TPM2B: u16 size, then that many bytes (at most `max` of them).
  Result<ByteView> Sized16(std::string_view field, size_t max = 0xFFFF);

  size_t offset() const { return offset_; }
  size_t remaining() const { return data_.size() - offset_; }
  bool empty() const { return remaining() == 0; }
  Status Error(std::string_view message) const;

 private:
  template <typename T>
  Result<T> Be(size_t n) {
    if (remaining() < n) return Error("truncated: need " + std::to_string(n) + " bytes");
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v = (v << 8) | data_[offset_ + i];
    offset_ += n;
    return static_cast<T>(v);
  }

  ByteView data_;
  std::string what_;
  size_t offset_ = 0;
};

}  // namespace tpmlab
