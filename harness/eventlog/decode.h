// Private to harness/eventlog: bounded reading, text and GUID helpers, and
// UEFI device paths, shared by the event data decoders (event_data.cc).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "harness/eventlog.h"

namespace tpmlab::decode {

using json = nlohmann::json;

inline constexpr size_t kHexCap = 256;      // raw bytes shown in JSON; the event's size says the rest
inline constexpr size_t kSummaryCap = 200;  // characters in a one-line summary

// A little-endian cursor over event data. A read that does not fit fails,
// returns false and leaves the offset where it was.
class Cursor {
 public:
  explicit Cursor(ByteView d) : d_(d) {}
  size_t offset() const { return off_; }
  size_t left() const { return d_.size() - off_; }
  ByteView rest() const { return d_.subspan(off_); }
  bool Take(size_t n, ByteView& out) {
    if (n > left()) return false;
    out = d_.subspan(off_, n);
    off_ += n;
    return true;
  }
  template <typename T>
  bool Le(T& v) {
    if (sizeof(T) > left()) return false;
    uint64_t x = 0;
    for (size_t i = 0; i < sizeof(T); ++i) x |= uint64_t{d_[off_ + i]} << (8 * i);
    v = static_cast<T>(x);
    off_ += sizeof(T);
    return true;
  }

 private:
  ByteView d_;
  size_t off_ = 0;
};

std::string Num(uint64_t v);
std::string Hex64(uint64_t v);  // "0x7e000000"
std::string Hex32(uint32_t v);  // "0x0000abcd"
// " at byte N of the event data", for problems.
std::string At(size_t offset);

// {"hex": …} of at most kHexCap bytes, with "hex_truncated" when cut.
void PutHex(json& j, ByteView b);
// One line of at most kSummaryCap characters: newlines and tabs escaped.
std::string Clip(const std::string& s);

// The i-th little-endian UTF-16 code unit of `b`.
inline uint16_t Unit(ByteView b, size_t i) { return static_cast<uint16_t>(b[2 * i] | b[2 * i + 1] << 8); }
// UTF-16LE up to the first NUL, as UTF-8; unpaired surrogates become U+FFFD
// so the result is always valid UTF-8 (nlohmann::json refuses anything else).
std::string Utf16ToUtf8(ByteView b);
// Printable ASCII, ignoring trailing NULs; nullopt for anything else.
std::optional<std::string> AsciiText(ByteView b);
// Whether AsciiText(b) has a value, without building the string.
bool IsAsciiText(ByteView b);
// UCS-2 text of ASCII and Latin-1 characters, ignoring trailing NULs.
std::optional<std::string> Ucs2Text(ByteView b);
// Bytes meant as an ASCII label: trailing NULs dropped, other bytes as \xNN.
std::string EscapedText(ByteView b);

// j[key] = the GUID's text, and j[key + "_name"] when it is well known.
void PutGuid(json& j, const std::string& key, ByteView guid16);
// The well-known name of a GUID, else its text.
std::string GuidLabel(ByteView guid16);

// A device path: nodes of {u8 type; u8 subtype; u16 length incl. these 4
// bytes}, up to the end node 7F/FF, in UEFI's text form and as nodes.
struct DevicePath {
  json nodes = json::array();
  std::string text;
  std::string problem;  // a node whose length does not fit; empty when none
};
// `base` is where `dp` starts in the event data, for messages. With `full`
// false only the node framing is walked: `problem` is set as it would be,
// and no nodes or text are built.
DevicePath DecodeDevicePath(ByteView dp, size_t base, bool full = true);
json DevicePathJson(const DevicePath& p);

// Every event data decoder walks the data once in one of two modes: decoding
// (`full`: data and summary built, and on failure the problem) or checking
// only (EventDataUndecodable, which the findings run on every event: no JSON
// and no strings built unless the data fails). Both modes take the same
// branches and fail at the same reads; what only decoding needs sits under
// `if (out.full)` or after `if (!out.full) return`. The fuzz target checks
// that the two agree (tests/fuzz/eventlog_fuzz.cc). The decoders are in
// event_data.cc, the UEFI variables' in uefi_variable.cc.
struct Out {
  explicit Out(bool full_mode) : full(full_mode) {
    if (full) data = json::object();
  }
  const bool full;
  bool failed = false;
  json data;  // stays null when only checking
  std::string summary;
  std::string problem;
};

// The walk stops here: the data does not match its structure. `problem`
// (built only when decoding) names the byte offset.
void Fail(Out& out, ByteView d, std::string problem);

// EV_EFI_VARIABLE_* data (uefi_variable.cc).
void Variable(uint32_t type, ByteView d, Out& out);

}  // namespace tpmlab::decode
