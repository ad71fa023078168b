// Client for swtpm's control channel (socket form of the CUSE ioctls).
//
// Wire format (swtpm_ioctls(3), exact for 0.7.1): a request is a big-endian
// u32 command code followed by the command's request struct; the response is
// the response struct alone, big-endian, starting with a u32 result (0 = ok).
// swtpm serves one control connection at a time, so every call opens its own
// connection and closes it: holding one would block swtpm_ioctl and others.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "drivers/bytes.h"
#include "drivers/socket.h"
#include "drivers/status.h"

namespace tpmlab {

enum class SwtpmCtrl : uint32_t {
  kGetCapability = 0x01,
  kInit = 0x02,
  kShutdown = 0x03,
  kGetTpmEstablished = 0x04,
  kSetLocality = 0x05,
  kHashStart = 0x06,
  kHashData = 0x07,
  kHashEnd = 0x08,
  kCancelTpmCmd = 0x09,
  kStoreVolatile = 0x0A,
  kResetTpmEstablished = 0x0B,
  kGetStateBlob = 0x0C,
  kSetStateBlob = 0x0D,
  kStop = 0x0E,
  kGetConfig = 0x0F,
  kSetDatafd = 0x10,
  kSetBufferSize = 0x11,
  kGetInfo = 0x12,
};
const char* SwtpmCtrlName(SwtpmCtrl code);

enum class StateBlobType : uint32_t { kPermanent = 1, kVolatile = 2, kSaveState = 3 };

// CMD_GET_INFO flags (0.7.1 knows these two).
inline constexpr uint64_t kInfoTpmSpecification = 1;
inline constexpr uint64_t kInfoTpmAttributes = 2;

struct StateBlob {
  uint32_t flags = 0;  // 2 = encrypted
  Bytes data;
};

struct BufferSizes {
  uint32_t size = 0, min = 0, max = 0;
};

class SwtpmControl {
 public:
  using Duration = std::chrono::milliseconds;

  explicit SwtpmControl(Endpoint endpoint, Duration timeout = Duration(10000))
      : endpoint_(std::move(endpoint)), timeout_(timeout) {}

  Result<uint64_t> GetCapability();
  /// _TPM_Init: the power-on signal. swtpm terminates and re-initialises the
  /// TPM; with `delete_volatile` a stored volatile state is removed once loaded.
  Status Init(bool delete_volatile = true);
  /// Terminates the TPM and makes the swtpm process exit.
  Status Shutdown();
  Result<bool> GetTpmEstablished();
  Status SetLocality(uint8_t locality);
  Status HashStart();
  Status HashData(ByteView data);
  Status HashEnd();
  Status CancelTpmCommand();
  Status StoreVolatile();
  Status ResetTpmEstablished(uint8_t locality);
  Result<StateBlob> GetStateBlob(StateBlobType type, bool decrypted = false);
  /// The TPM must be stopped (Stop) first, or swtpm answers TPM_BAD_ORDINAL.
  Status SetStateBlob(StateBlobType type, ByteView data, bool encrypted = false);
  /// Terminates the TPM without exiting; Init powers it on again.
  Status Stop();
  Result<uint32_t> GetConfig();
  /// size 0 queries; a non-zero size needs a stopped TPM.
  Result<BufferSizes> SetBufferSize(uint32_t size);
  /// The JSON text swtpm returns for the given info flags.
  Result<std::string> GetInfo(uint64_t flags);

  const Endpoint& endpoint() const { return endpoint_; }

  // CMD_SET_DATAFD is not offered: it passes a file descriptor over a unix
  // socket and only matters to processes that hand swtpm its data channel.

 private:
  // Sends `code` + `request`, reads the u32 result and then `rest` more bytes.
  Result<Bytes> Call(SwtpmCtrl code, ByteView request, size_t rest);
  Result<Bytes> CallOn(Socket& s, SwtpmCtrl code, ByteView request, size_t rest);
  Status Simple(SwtpmCtrl code, ByteView request = {});

  Endpoint endpoint_;
  Duration timeout_;
};

// Names the TPM 1.2-style result codes swtpm uses on its control channel.
std::string SwtpmResultName(uint32_t result);

}  // namespace tpmlab
