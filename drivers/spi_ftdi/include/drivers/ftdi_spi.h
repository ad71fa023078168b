// FtdiMpsseSpiBus: SPI mode 0, MSB first, through an FTDI FT232H / FT2232H /
// FT4232H in MPSSE mode over raw USB (../shared/docs/hardware-reference.md §3).
//
// Pins: SK=ADBUS0, DO=ADBUS1, DI=ADBUS2, CS=ADBUS3 (driven with SET_BITS_LOW),
// direction 0xFB. Open resets the chip, purges both FIFOs, sets the latency
// timer, enters MPSSE, checks it answers a bad opcode with FA xx, and sets the
// clock. Chip select stays asserted from Select to Deselect: the TIS engine
// polls wait states with single-byte reads in between, each a USB round trip.
//
// Byte streams (one bulk OUT each, then the bulk IN read of n bytes):
//   Select + header      80 00 FB 31 03 00 h0 h1 h2 h3 87   read 4
//   wait-state poll      20 00 00 87                         read 1
//   data read            20 (n-1)lo (n-1)hi 87               read n
//   data write           11 (n-1)lo (n-1)hi d...   queued until the next read or Deselect
//   Deselect             [queued write] 80 08 FB
// Each bulk IN packet (512 bytes on these high-speed parts) starts with two
// modem-status bytes, which are stripped.
// A read sends opcode 0x20 (no MOSI data: DO keeps its last level) rather
// than clocking out zeros; TPMs ignore MOSI during a read's data phase.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "drivers/spi_bus.h"
#include "drivers/usb_device.h"

namespace tpmlab {

namespace ftdi {
inline constexpr uint16_t kVendorId = 0x0403;
inline constexpr uint16_t kFt232h = 0x6014;
inline constexpr uint16_t kFt2232h = 0x6010;
inline constexpr uint16_t kFt4232h = 0x6011;
// Vendor requests (bmRequestType 0x40), wIndex = interface 1..4.
inline constexpr uint8_t kRequestOut = 0x40;
inline constexpr uint8_t kSioReset = 0x00;
inline constexpr uint16_t kResetSio = 0, kPurgeRx = 1, kPurgeTx = 2;
inline constexpr uint8_t kSetLatencyTimer = 0x09;
inline constexpr uint8_t kSetBitmode = 0x0B;
inline constexpr uint8_t kBitmodeReset = 0x00, kBitmodeMpsse = 0x02;
// MPSSE opcodes.
inline constexpr uint8_t kSetBitsLow = 0x80;
inline constexpr uint8_t kLoopbackEnd = 0x85;
inline constexpr uint8_t kTckDivisor = 0x86;
inline constexpr uint8_t kSendImmediate = 0x87;
inline constexpr uint8_t kDisableDiv5 = 0x8A, kEnableDiv5 = 0x8B;
inline constexpr uint8_t kBadCommandReply = 0xFA;
inline constexpr uint8_t kWriteReadBytes = 0x31;  // DO_WRITE|DO_READ|WRITE_NEG
inline constexpr uint8_t kWriteBytes = 0x11;      // DO_WRITE|WRITE_NEG
inline constexpr uint8_t kReadBytes = 0x20;       // DO_READ
inline constexpr uint8_t kPinCs = 0x08;           // ADBUS3
inline constexpr uint8_t kDirection = 0xFB;
inline constexpr size_t kPacketSize = 512;
inline constexpr size_t kStatusBytes = 2;

struct Clock {
  bool divide_by_5 = false;  // 12 MHz base instead of 60 MHz
  uint16_t divisor = 0;
  uint32_t actual_hz = 0;
};
// The fastest clock not above `hz`: > 6 MHz uses the 60 MHz base (0x8A), else
// 12 MHz (0x8B); frequency = base / ((1 + divisor) * 2).
Clock ClockFor(uint32_t hz);
}  // namespace ftdi

struct FtdiSpiConfig {
  UsbMatch match{ftdi::kVendorId, {ftdi::kFt232h, ftdi::kFt2232h, ftdi::kFt4232h}, "", ""};
  int interface = 1;          // 1=A .. 4=D
  uint32_t hz = 1'000'000;    // SPI clock; tcti-spi-ftdi uses 15 MHz
  uint8_t latency_ms = 2;
  std::chrono::milliseconds usb_timeout{1000};
  // Bulk IN reads that return only status bytes before a read gives up.
  int max_empty_reads = 100;
};

class FtdiMpsseSpiBus final : public SpiBus {
 public:
  /// Opens, claims (detaching ftdi_sio) and configures the bridge.
  /// @returns kTransport naming the step (no device, claim, reset, MPSSE sync).
  static Result<std::unique_ptr<FtdiMpsseSpiBus>> Open(UsbContext& usb, FtdiSpiConfig config);
  /// Over an already-open device (tests, or a caller that re-enumerated).
  static Result<std::unique_ptr<FtdiMpsseSpiBus>> Open(std::unique_ptr<UsbDevice> device,
                                                       FtdiSpiConfig config);
  ~FtdiMpsseSpiBus() override;

  const ftdi::Clock& clock() const { return clock_; }

 private:
  FtdiMpsseSpiBus(std::unique_ptr<UsbDevice> device, FtdiSpiConfig config);
  Status Init();
  Status Control(uint8_t request, uint16_t value, const char* what);
  Status Flush();                     // sends queued bytes
  Result<Bytes> Read(size_t n);       // strips status bytes
  Status Abort(const Status& cause);  // best-effort CS high, not selected

  Status DoSelect() override;
  Status DoTransfer(ByteView out, MutableByteView in) override;
  Status DoDeselect() override;
  Info DoInfo() const override;

  std::unique_ptr<UsbDevice> device_;
  std::unique_ptr<ClaimedInterface> claim_;
  FtdiSpiConfig config_;
  ftdi::Clock clock_;
  uint8_t out_ep_;
  uint8_t in_ep_;
  Bytes queue_;
  bool selected_ = false;
};

}  // namespace tpmlab
