#include "drivers/device_transport.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace tpmlab {
namespace {

using Clock = std::chrono::steady_clock;

int MillisLeft(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

Status Errno(const std::string& what, int error) {
  return Status::Error(Layer::kTransport, what + ": " + std::strerror(error));
}

Result<int> OpenPath(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NONBLOCK);
  if (fd >= 0) return fd;
  const int error = errno;
  return Status::Error(Layer::kTransport,
                       path + ": " + std::strerror(error) + ": " + DeviceTransport::OpenErrorHint(error, path));
}

}  // namespace

std::string DeviceTransport::OpenErrorHint(int error, const std::string& path) {
  switch (error) {
    case ENOENT:
    case ENODEV:
    case ENXIO:
      return "no TPM device (is the TPM enabled in firmware and its driver loaded?)";
    case EACCES:
    case EPERM:
      return "run as root or join group tss";
    case EBUSY:
      return path.find("tpmrm") == std::string::npos
                 ? "another process has " + path + " open (use /dev/tpmrm0 to share the TPM)"
                 : "the device is busy";
    default:
      return "cannot open the TPM device";
  }
}

DeviceTransport::DeviceTransport(int fd, std::string path, Reopen reopen)
    : fd_(fd), path_(std::move(path)), reopen_(std::move(reopen)) {}

DeviceTransport::~DeviceTransport() { Close(); }

void DeviceTransport::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Result<std::unique_ptr<DeviceTransport>> DeviceTransport::Open(const std::string& path) {
  TRY_ASSIGN(int fd, OpenPath(path));
  return std::unique_ptr<DeviceTransport>(new DeviceTransport(fd, path, [path] { return OpenPath(path); }));
}

std::unique_ptr<DeviceTransport> DeviceTransport::FromFd(int fd, std::string name, Reopen reopen) {
  return std::unique_ptr<DeviceTransport>(new DeviceTransport(fd, std::move(name), std::move(reopen)));
}

Status DeviceTransport::DoTransmit(ByteView command) {
  if (fd_ < 0) {
    if (!reopen_error_.ok()) return reopen_error_;
    return Status::Error(Layer::kTransport, path_ + ": the device is closed");
  }
  for (;;) {
    // The kernel takes a command in one write; a partial write is an error.
    const ssize_t n = ::write(fd_, command.data(), command.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("write " + path_, errno);
    if (static_cast<size_t>(n) != command.size()) {
      return Status::Error(Layer::kTransport, "write " + path_ + ": wrote " + std::to_string(n) + " of " +
                                                  std::to_string(command.size()) + " bytes");
    }
    return Status::Ok();
  }
}

Result<Bytes> DeviceTransport::DoReceive(Duration timeout) {
  if (fd_ < 0) return Status::Error(Layer::kTransport, path_ + ": the device is closed");
  const auto deadline = Clock::now() + timeout;
  Bytes response(kTpmMaxMessage);
  size_t got = 0;
  // One read returns the whole response from the kernel; a stand-in that
  // delivers it in pieces is read on until the header's size is reached.
  while (got < kTpmHeaderSize || got < TpmHeaderSize(ByteView(response.data(), got))) {
    pollfd p{fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, MillisLeft(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return Errno("poll " + path_, errno);
    if (ready == 0) {
      return Status::Timeout(path_ + ": no response within " + std::to_string(timeout.count()) + " ms");
    }
    const ssize_t n = ::read(fd_, response.data() + got, response.size() - got);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return Errno("read " + path_, errno);
    if (n == 0) {
      return Status::Error(Layer::kTransport, "read " + path_ + ": the device closed after " +
                                                  std::to_string(got) + " bytes of the response");
    }
    got += static_cast<size_t>(n);
    if (got == response.size()) break;  // the base class rejects a size that does not match
  }
  response.resize(got);
  return response;
}

Status DeviceTransport::DoCancel() {
  return Status::Error(Layer::kTransport,
                       path_ + ": the TPM character device has no cancel (abandon the response to reopen it)");
}

Status DeviceTransport::DoSetLocality(uint8_t locality) {
  if (locality == 0) return Status::Ok();
  return Status::Error(Layer::kTransport,
                       path_ + ": only locality 0 is reachable through the TPM character device, not " +
                           std::to_string(locality));
}

Transport::Info DeviceTransport::DoInfo() const {
  const bool rm = path_.find("tpmrm") != std::string::npos;
  return {rm ? "tpmrm" : "tpm-device", path_};
}

void DeviceTransport::DoAbandonResponse() {
  // No cancel: closing drops the owed response (and on tpmrm the
  // connection's sessions and transient objects); a new descriptor follows.
  Close();
  reopen_error_ = Status::Ok();
  if (!reopen_) {
    reopen_error_ = Status::Error(Layer::kTransport, path_ + ": closed after an abandoned response");
    return;
  }
  auto fd = reopen_();
  if (fd.ok()) {
    fd_ = *fd;
  } else {
    reopen_error_ = fd.status().Wrap("reopen after an abandoned response");
  }
}

}  // namespace tpmlab
