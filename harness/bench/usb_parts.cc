#include "harness/usb_parts.h"

namespace tpmlab {

std::optional<UsbPart> RecognizeUsb(const UsbDeviceInfo& d) {
  struct Known {
    uint16_t vid, pid;
    const char* role;
    const char* bench_kind;
  };
  // The parts the drivers support (hw/README.md; the same list as hw/udev/60-tpmlab.rules).
  static const Known kKnown[] = {
      {0x0403, 0x6014, "SPI bridge (FTDI FT232H, MPSSE)", "tis-spi-ftdi"},
      {0x0403, 0x6010, "SPI bridge (FTDI FT2232H, MPSSE)", "tis-spi-ftdi"},
      {0x0403, 0x6011, "SPI bridge (FTDI FT4232H, MPSSE)", "tis-spi-ftdi"},
      {0x365D, 0x1337, "TPM on a USB-SPI stick (LetsTrust TPM2Go)", "tis-spi-tpm2go"},
      {0x16C0, 0x05DF, "USB relay (dcttech HID)", "usb-relay"},
      {0x1A86, 0x7523, "USB relay or serial adapter (CH340; lcus relays use it)", "usb-relay"},
  };
  for (const auto& k : kKnown) {
    if (d.vendor_id == k.vid && d.product_id == k.pid) return UsbPart{d, k.role, k.bench_kind};
  }
  // Any hub may switch its ports; `tpmlab bench check` reads whether it does.
  if (d.device_class == 0x09) {
    return UsbPart{d, d.bcd_usb >= 0x0300 ? "USB hub (SuperSpeed)" : "USB hub", "usb-hub-port"};
  }
  return std::nullopt;
}

Result<std::vector<UsbPart>> ListUsbParts(UsbContext& usb, size_t* seen) {
  TRY_ASSIGN(std::vector<UsbDeviceInfo> devices, usb.Enumerate());
  if (seen != nullptr) *seen = devices.size();
  std::vector<UsbPart> parts;
  for (const auto& d : devices) {
    if (auto part = RecognizeUsb(d)) parts.push_back(std::move(*part));
  }
  return parts;
}

}  // namespace tpmlab
