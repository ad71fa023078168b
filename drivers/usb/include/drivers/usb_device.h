// UsbDevice and UsbContext: the seam between tpmlab's USB protocols (FTDI
// MPSSE and TPM2Go SPI bridges, HID relays, hub port power) and libusb.
//
// The real implementation (libusb_device.cc) is a thin layer over libusb-1.0;
// tests use FakeUsb (fake_usb.h), which records every transfer and answers
// from a script, so every byte a driver sends is checked without hardware.
//
// Errors are kTransport. A device that went away (unplugged, its hub port
// switched off) says "device gone"; a transfer that ran out of time is a
// Status::Timeout.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "drivers/bytes.h"
#include "drivers/spi_bus.h"
#include "drivers/status.h"

namespace tpmlab {

struct UsbDeviceInfo {
  uint16_t vendor_id = 0;
  uint16_t product_id = 0;
  uint16_t bcd_usb = 0;  // 0x0200 USB2, 0x0300+ SuperSpeed
  uint8_t device_class = 0;  // 0x09: hub
  std::string serial;        // "" when the device has none or it could not be read
  std::string product;
  uint8_t bus = 0;
  std::vector<uint8_t> port_path;  // ports from the root hub down

  // "1-2.3" as in /sys/bus/usb/devices and uhubctl -l.
  std::string Path() const;
  // "0403:6014 serial FT5XYZ at 1-2.3"
  std::string Describe() const;
};

// Which device to open: VID:PID (0 matches any), an ECMAScript regular
// expression that must match the whole serial number ("" matches any), and
// an optional bus path ("1-2.3").
struct UsbMatch {
  uint16_t vendor_id = 0;
  std::vector<uint16_t> product_ids;  // empty: any
  std::string serial_pattern;
  std::string path;

  bool Matches(const UsbDeviceInfo& info) const;
  std::string Describe() const;
};

// Standard bmRequestType values used by tpmlab's drivers.
namespace usb {
inline constexpr uint8_t kEndpointIn = 0x80;
using Timeout = std::chrono::milliseconds;
inline constexpr Timeout kDefaultTimeout{1000};
}  // namespace usb

class UsbDevice {
 public:
  using Timeout = usb::Timeout;
  virtual ~UsbDevice() = default;

  const UsbDeviceInfo& info() const { return DoInfo(); }

  /// A control transfer with a data stage to the device (or none).
  /// @returns kTransport (device gone, stall, timeout).
  Status ControlOut(uint8_t request_type, uint8_t request, uint16_t value, uint16_t index,
                    ByteView data, Timeout timeout = usb::kDefaultTimeout) {
    return DoControlOut(request_type, request, value, index, data, timeout);
  }
  /// A control transfer reading up to `length` bytes (0: no data stage).
  Result<Bytes> ControlIn(uint8_t request_type, uint8_t request, uint16_t value, uint16_t index,
                          uint16_t length, Timeout timeout = usb::kDefaultTimeout) {
    return DoControlIn(request_type, request, value, index, length, timeout);
  }
  /// Sends all of `data` on a bulk OUT endpoint; a short write is an error.
  Status BulkOut(uint8_t endpoint, ByteView data, Timeout timeout = usb::kDefaultTimeout) {
    return DoBulkOut(endpoint, data, timeout);
  }
  /// Reads up to `max` bytes from a bulk IN endpoint (one transfer).
  Result<Bytes> BulkIn(uint8_t endpoint, size_t max, Timeout timeout = usb::kDefaultTimeout) {
    return DoBulkIn(endpoint, max, timeout);
  }
  Status InterruptOut(uint8_t endpoint, ByteView data, Timeout timeout = usb::kDefaultTimeout) {
    return DoInterruptOut(endpoint, data, timeout);
  }
  Result<Bytes> InterruptIn(uint8_t endpoint, size_t max, Timeout timeout = usb::kDefaultTimeout) {
    return DoInterruptIn(endpoint, max, timeout);
  }
  Status ClaimInterface(int interface) { return DoClaimInterface(interface); }
  Status ReleaseInterface(int interface) { return DoReleaseInterface(interface); }
  /// Detaches a kernel driver bound to `interface` (ftdi_sio, usbhid, ...).
  /// @returns true when one was detached (re-attach it when done).
  Result<bool> DetachKernelDriver(int interface) { return DoDetachKernelDriver(interface); }
  Status AttachKernelDriver(int interface) { return DoAttachKernelDriver(interface); }

 private:
  virtual const UsbDeviceInfo& DoInfo() const = 0;
  virtual Status DoControlOut(uint8_t request_type, uint8_t request, uint16_t value,
                              uint16_t index, ByteView data, Timeout timeout) = 0;
  virtual Result<Bytes> DoControlIn(uint8_t request_type, uint8_t request, uint16_t value,
                                    uint16_t index, uint16_t length, Timeout timeout) = 0;
  virtual Status DoBulkOut(uint8_t endpoint, ByteView data, Timeout timeout) = 0;
  virtual Result<Bytes> DoBulkIn(uint8_t endpoint, size_t max, Timeout timeout) = 0;
  virtual Status DoInterruptOut(uint8_t endpoint, ByteView data, Timeout timeout) = 0;
  virtual Result<Bytes> DoInterruptIn(uint8_t endpoint, size_t max, Timeout timeout) = 0;
  virtual Status DoClaimInterface(int interface) = 0;
  virtual Status DoReleaseInterface(int interface) = 0;
  virtual Result<bool> DoDetachKernelDriver(int interface) = 0;
  virtual Status DoAttachKernelDriver(int interface) = 0;
};

// Claims an interface, detaching its kernel driver first; undoes both on
// destruction (best effort: the device may be gone by then).
class ClaimedInterface {
 public:
  static Result<std::unique_ptr<ClaimedInterface>> Claim(UsbDevice& device, int interface);
  ~ClaimedInterface();
  ClaimedInterface(const ClaimedInterface&) = delete;
  ClaimedInterface& operator=(const ClaimedInterface&) = delete;

 private:
  ClaimedInterface(UsbDevice& device, int interface, bool reattach)
      : device_(device), interface_(interface), reattach_(reattach) {}
  UsbDevice& device_;
  int interface_;
  bool reattach_;
};

class UsbContext {
 public:
  virtual ~UsbContext() = default;

  /// Every device on every bus.
  Result<std::vector<UsbDeviceInfo>> Enumerate() { return DoEnumerate(); }

  /// Opens the one device that matches.
  /// @returns kTransport naming the match when none or several match (the
  ///          error lists the candidates), or when it cannot be opened
  ///          (permissions: the message points at the udev rules).
  Result<std::unique_ptr<UsbDevice>> Open(const UsbMatch& match);

  /// Waits for a matching device to (re-)appear, e.g. after its hub port was
  /// powered again, polling every `interval` until `timeout` on `clock`.
  /// @returns a Status::Timeout naming the match when it never appeared.
  Result<std::unique_ptr<UsbDevice>> WaitAndOpen(const UsbMatch& match,
                                                 std::chrono::milliseconds timeout,
                                                 Clock& clock,
                                                 Clock::Duration interval = std::chrono::milliseconds(100));

 private:
  virtual Result<std::vector<UsbDeviceInfo>> DoEnumerate() = 0;
  virtual Result<std::unique_ptr<UsbDevice>> DoOpen(const UsbDeviceInfo& device) = 0;
};

/// The libusb-1.0 context (libusb_device.cc).
/// @returns kTransport when libusb cannot be initialised (no usbfs).
Result<std::unique_ptr<UsbContext>> OpenLibusbContext();

}  // namespace tpmlab
