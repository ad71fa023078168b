// Tpm2GoSpiBus: a TPM on a LetsTrust TPM2Go stick (VID 0x365D, PID 0x1337),
// a Cypress USB-Serial bridge, chosen by a regular expression on its USB
// serial number (../shared/docs/hardware-reference.md §4).
//
// One SPI transfer of len ≤ 68 bytes is the Cypress vendor sequence:
//   control IN  C0 CA wValue=0003 (CY_SPI_WRITEREAD) wIndex=len wLength=0
//   bulk OUT    EP 01, len bytes (MOSI)
//   bulk IN     EP 82, len bytes (MISO), re-read up to 5 times until all came
// Interface 0 is claimed after detaching the kernel driver.
//
// Chip select. tpm2-tss's tcti-spi-ltt2go never controls CS, so the bridge
// frames each vendor transfer and a wait state cannot be held; the TIS
// engine then sends each register frame, header and data, in one transfer
// (holds_chip_select() is false) and fails a frame the TPM stalls. With
// `cs_gpio` set, Select and Deselect drive CS through the Cypress GPIO
// request (C0 DB wValue=gpio wIndex=level wLength=0), CS stays low across
// the TIS engine's wait-state polls, and wait states are honoured.
// [unverified] CY_CMD_GPIO_SET=0xDB is only defined in tcti-spi-ltt2go; its
// setup-packet layout and which GPIO is wired to the TPM's CS are inferred
// and must be confirmed on a stick before a bench relies on them.
//
// Write-only transfers are queued and sent with the next read or at Deselect.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "drivers/spi_bus.h"
#include "drivers/usb_device.h"

namespace tpmlab {

namespace tpm2go {
inline constexpr uint16_t kVendorId = 0x365D;
inline constexpr uint16_t kProductId = 0x1337;
inline constexpr uint8_t kRequestIn = 0xC0;
inline constexpr uint8_t kCmdSpi = 0xCA;
inline constexpr uint16_t kSpiWriteRead = 0x03;
inline constexpr uint8_t kCmdGpioSet = 0xDB;
inline constexpr uint8_t kEndpointOut = 0x01;
inline constexpr uint8_t kEndpointIn = 0x82;
inline constexpr size_t kMaxTransfer = 68;  // 4 header + 64 data
inline constexpr int kInRetries = 5;
}  // namespace tpm2go

struct Tpm2GoSpiConfig {
  std::string serial_pattern;  // regex on the USB serial number; "" = the only stick
  std::string path;            // optional bus path "1-2.3"
  std::optional<uint8_t> cs_gpio;  // drive CS by GPIO (wait states); unset: per transfer
  std::chrono::milliseconds usb_timeout{1000};
};

class Tpm2GoSpiBus final : public SpiBus {
 public:
  /// Opens the stick matching the serial pattern and claims interface 0.
  static Result<std::unique_ptr<Tpm2GoSpiBus>> Open(UsbContext& usb, Tpm2GoSpiConfig config);
  static Result<std::unique_ptr<Tpm2GoSpiBus>> Open(std::unique_ptr<UsbDevice> device,
                                                    Tpm2GoSpiConfig config);
  ~Tpm2GoSpiBus() override;

  static UsbMatch Match(const Tpm2GoSpiConfig& config) {
    return {tpm2go::kVendorId, {tpm2go::kProductId}, config.serial_pattern, config.path};
  }


 private:
  Tpm2GoSpiBus(std::unique_ptr<UsbDevice> device, Tpm2GoSpiConfig config)
      : device_(std::move(device)), config_(std::move(config)) {}
  Status SetCs(bool high);
  // One vendor transfer of mosi.size() ≤ 68 bytes; MISO into `miso`.
  Status WriteRead(ByteView mosi, uint8_t* miso);
  Status Send(ByteView mosi, uint8_t* miso);  // any length, in ≤ 68-byte pieces
  Status Abort(const Status& cause);

  Status DoSelect() override;
  Status DoTransfer(ByteView out, MutableByteView in) override;
  Status DoDeselect() override;
  Info DoInfo() const override;
  bool DoHoldsChipSelect() const override { return config_.cs_gpio.has_value(); }

  std::unique_ptr<UsbDevice> device_;
  std::unique_ptr<ClaimedInterface> claim_;
  Tpm2GoSpiConfig config_;
  Bytes queue_;
  bool selected_ = false;
};

}  // namespace tpmlab
