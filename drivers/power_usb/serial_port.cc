#include "drivers/serial_port.h"

#include <filesystem>
#include <vector>

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tpmlab {
namespace {

Status Errno(const std::string& what) {
  return Status::Error(Layer::kTransport, what + ": " + std::strerror(errno));
}

class TtySerialPort final : public SerialPort {
 public:
  TtySerialPort(int fd, std::string tty) : fd_(fd), tty_(std::move(tty)) {}
  ~TtySerialPort() override { ::close(fd_); }

 private:
  Status DoWrite(ByteView data) override {
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::write(fd_, data.data() + done, data.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Errno("writing " + tty_);
      done += static_cast<size_t>(n);
    }
    if (::tcdrain(fd_) != 0) return Errno("draining " + tty_);
    return Status::Ok();
  }
  std::string DoName() const override { return tty_; }

  int fd_;
  std::string tty_;
};

}  // namespace

Result<std::unique_ptr<SerialPort>> OpenSerialPort(const std::string& tty, int baud) {
  speed_t speed;
  switch (baud) {
    case 9600: speed = B9600; break;
    case 19200: speed = B19200; break;
    case 38400: speed = B38400; break;
    case 57600: speed = B57600; break;
    case 115200: speed = B115200; break;
    default:
      return Status::Error(Layer::kScenario, "serial port " + tty + ": unsupported baud rate " +
                                                 std::to_string(baud));
  }
  int fd = ::open(tty.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return Errno("opening " + tty);
  termios t{};
  if (::tcgetattr(fd, &t) != 0) {
    Status s = Errno("configuring " + tty);
    ::close(fd);
    return s;
  }
  ::cfmakeraw(&t);
  t.c_cflag |= CLOCAL | CREAD;
  t.c_cflag &= ~(CSTOPB | PARENB);
  ::cfsetispeed(&t, speed);
  ::cfsetospeed(&t, speed);
  if (::tcsetattr(fd, TCSANOW, &t) != 0) {
    Status s = Errno("configuring " + tty);
    ::close(fd);
    return s;
  }
  return std::unique_ptr<SerialPort>(new TtySerialPort(fd, tty));
}

Result<std::string> FindUsbSerialTty(UsbContext& usb, const UsbMatch& match, const std::string& sysfs_usb_devices) {
  TRY_ASSIGN(std::vector<UsbDeviceInfo> devices, usb.Enumerate());
  std::vector<UsbDeviceInfo> found;
  for (const auto& d : devices) {
    if (match.Matches(d)) found.push_back(d);
  }
  if (found.empty()) return Status::Error(Layer::kTransport, "no USB-serial device " + match.Describe());
  if (found.size() > 1) {
    std::string list;
    for (const auto& d : found) list += "\n  " + d.Describe();
    return Status::Error(Layer::kTransport, std::to_string(found.size()) + " USB-serial devices match " +
                                                match.Describe() + "; give a serial or a path to choose:" + list);
  }
  std::error_code ec;
  const std::filesystem::path interface = std::filesystem::path(sysfs_usb_devices) / (found[0].Path() + ":1.0");
  for (const auto& entry : std::filesystem::directory_iterator(interface, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("ttyUSB", 0) == 0) return "/dev/" + name;
  }
  return Status::Error(Layer::kTransport, found[0].Describe() + " has no ttyUSB under " + interface.string() +
                                              " (is its serial driver, ch341, loaded?)");
}

}  // namespace tpmlab
