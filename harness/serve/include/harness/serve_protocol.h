// The simulator socket protocols `tpmlab serve` speaks, as pure parsers: no
// sockets here, so short reads, bad lengths and unknown codes are tested
// byte by byte (tests/unit/serve_protocol_test.cc).
//
// Data port (both flavours): a TPM command either raw (what tcti-swtpm sends:
// the command's own 10-byte header says its size) or in the Microsoft
// simulator's framing (what tcti-mssim sends): u32 TPM_SEND_COMMAND (8), u8
// locality, u32 length, the command; its answer is u32 length, the response,
// u32 0. u32 TPM_SESSION_END (20) ends the connection. Every integer is
// big-endian.
//
// Second port, by flavour:
//  - swtpm: the control channel (swtpm's tpm_ioctl.h): u32 command code and
//    its fixed payload; the answer is a u32 result (0 = TPM_SUCCESS) and the
//    command's output. tcti-swtpm opens it for each CMD_SET_LOCALITY it sends
//    (before every command) and for CMD_INIT (Tss2_Tcti_Swtpm_Reset).
//  - mssim: platform signals, u32 each (POWER_ON 1, POWER_OFF 2, NV_ON 11,
//    CANCEL_ON 9, SESSION_END 20, STOP 21, ...), some with a payload; each is
//    answered with u32 0 except SESSION_END. tcti-mssim sends POWER_ON and
//    NV_ON whenever it connects.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "drivers/bytes.h"
#include "drivers/status.h"

namespace tpmlab::serve {

enum class Flavour { kSwtpm, kMssim };
const char* FlavourName(Flavour flavour);
/// "swtpm" or "mssim"; anything else is bad input naming the choices.
Result<Flavour> ParseFlavour(const std::string& text);

// Microsoft simulator codes (data port and platform port).
namespace mssim {
inline constexpr uint32_t kPowerOn = 1;
inline constexpr uint32_t kPowerOff = 2;
inline constexpr uint32_t kPhysPresOn = 3;
inline constexpr uint32_t kPhysPresOff = 4;
inline constexpr uint32_t kHashStart = 5;
inline constexpr uint32_t kHashData = 6;
inline constexpr uint32_t kHashEnd = 7;
inline constexpr uint32_t kSendCommand = 8;
inline constexpr uint32_t kCancelOn = 9;
inline constexpr uint32_t kCancelOff = 10;
inline constexpr uint32_t kNvOn = 11;
inline constexpr uint32_t kNvOff = 12;
inline constexpr uint32_t kKeyCacheOn = 13;
inline constexpr uint32_t kKeyCacheOff = 14;
inline constexpr uint32_t kRemoteHandshake = 15;
inline constexpr uint32_t kSetAlternativeResult = 16;
inline constexpr uint32_t kSessionEnd = 20;
inline constexpr uint32_t kStop = 21;
inline constexpr uint32_t kTestFailureMode = 30;
}  // namespace mssim

// swtpm control-channel results (tpm_ioctl.h uses TPM 1.2's names).
inline constexpr uint32_t kSwtpmSuccess = 0;
inline constexpr uint32_t kSwtpmBadOrdinal = 10;

/// "CMD_SET_LOCALITY", "TPM_SIGNAL_POWER_ON", or "code N".
std::string ControlCodeName(Flavour flavour, uint32_t code);

struct DataRequest {
  enum class Kind { kCommand, kSessionEnd };
  Kind kind = Kind::kCommand;
  bool mssim_framing = false;       // answer as FrameResponse(..., true)
  std::optional<uint8_t> locality;  // the mssim frame's locality byte
  Bytes command;
  uint64_t offset = 0;              // where the request starts on its connection
};

/// Cuts a data connection's bytes into requests. Feed what arrives, in
/// order, then take requests until Next gives none.
class DataParser {
 public:
  void Feed(ByteView bytes);
  /// The next whole request; nullopt while more bytes are needed.
  /// @returns a kParse error naming the byte offset on the connection (a tag
  ///          that is no TPM tag, a length under 10 or over 4096, a frame
  ///          whose length and command header disagree, an unknown mssim
  ///          code). The connection is then unusable: close it.
  Result<std::optional<DataRequest>> Next();
  /// Bytes received but not yet part of a whole request.
  size_t pending() const { return buffer_.size() - start_; }

 private:
  Bytes buffer_;
  size_t start_ = 0;      // first unconsumed byte in buffer_
  uint64_t consumed_ = 0;  // bytes of the connection before buffer_[start_]
};

/// The bytes that answer `response` on the data port.
Bytes FrameResponse(ByteView response, bool mssim_framing);

struct ControlRequest {
  uint32_t code = 0;
  Bytes payload;  // the fixed or length-prefixed payload of the code, whole
  uint64_t offset = 0;
};

/// Cuts a second-port connection's bytes into requests of `flavour`.
class ControlParser {
 public:
  explicit ControlParser(Flavour flavour) : flavour_(flavour) {}
  void Feed(ByteView bytes);
  /// The next whole request; nullopt while more bytes are needed.
  /// @returns a kParse error naming the byte offset for a code this server
  ///          does not know (its payload's length cannot be known) or a
  ///          length prefix over 4096.
  Result<std::optional<ControlRequest>> Next();
  size_t pending() const { return buffer_.size() - start_; }

 private:
  Flavour flavour_;
  Bytes buffer_;
  size_t start_ = 0;
  uint64_t consumed_ = 0;
};

}  // namespace tpmlab::serve
