// The USB parts tpmlab can drive, recognised by what they say they are, for
// `tpmlab hw list` and bench checks.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "drivers/status.h"
#include "drivers/usb_device.h"

namespace tpmlab {

struct UsbPart {
  UsbDeviceInfo device;
  std::string role;  // "SPI bridge (FTDI FT232H)", "USB relay (dcttech HID)", "USB hub"
  std::string bench_kind;  // what a bench file calls it: tis-spi-ftdi, usb-relay, usb-hub-port, ...
};

/// What a device is to tpmlab, or nothing when tpmlab has no use for it.
std::optional<UsbPart> RecognizeUsb(const UsbDeviceInfo& device);

/// Every recognised device the context enumerates; an error when USB cannot
/// be enumerated at all (no usbfs in a container, say).
Result<std::vector<UsbPart>> ListUsbParts(UsbContext& usb, size_t* seen = nullptr);

}  // namespace tpmlab
