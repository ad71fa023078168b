// SerialPort: a byte sink on a tty, the seam for relay boards that sit behind
// a USB-serial chip (lcus boards on a CH340, 1a86:7523).
#pragma once

#include <memory>
#include <string>

#include "drivers/bytes.h"
#include "drivers/status.h"

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

}  // namespace tpmlab
