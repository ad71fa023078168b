// SerialPort: a byte sink on a tty, the seam for relay boards that sit behind
// a USB-serial chip (lcus boards on a CH340, 1a86:7523).
#pragma once

#include <memory>
#include <string>

#include "drivers/bytes.h"
#include "drivers/status.h"
#include "drivers/usb_device.h"

namespace tpmlab {

class SerialPort {
 public:
  virtual ~SerialPort() = default;
  /// Writes all of `data` and waits until it has left the port.
  /// @returns kTransport when the port went away or the write failed.
  Status Write(ByteView data) { return DoWrite(data); }
  std::string name() const { return DoName(); }

 private:
  virtual Status DoWrite(ByteView data) = 0;
  virtual std::string DoName() const = 0;
};

/// Opens `tty` raw, 8N1 at `baud` (9600, 19200, 38400, 57600 or 115200).
/// @returns kTransport naming the tty when it cannot be opened or set up.
Result<std::unique_ptr<SerialPort>> OpenSerialPort(const std::string& tty, int baud = 9600);

/// The tty of the one USB-serial device `match` selects: /dev/ttyUSBn, read
/// from its interface 0 in `sysfs_usb_devices` (/sys/bus/usb/devices).
/// @returns kTransport when none matches, when several do (a CH340 is a
///          common chip: a wrong match would send relay frames to another
///          device; the message lists them), or when it has no tty.
Result<std::string> FindUsbSerialTty(UsbContext& usb, const UsbMatch& match, const std::string& sysfs_usb_devices);

}  // namespace tpmlab
