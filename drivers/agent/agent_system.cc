#include "agent_system.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "drivers/transport.h"

namespace tpmlab::agent {
namespace {

int status_fd = 2;

Status Errno(const std::string& what) {
  return Status::Error(Layer::kTransport, what + ": " + std::strerror(errno));
}

int MillisLeft(std::chrono::steady_clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(left);
}

}  // namespace

// Also to stderr when that is not the console (PID 1 of a container, a test).
bool echo_to_stderr = false;

void SetStatusFd(int fd) {
  status_fd = fd;
  struct stat status_file{}, stderr_file{};
  echo_to_stderr = fd != 2 && ::fstat(2, &stderr_file) == 0 && ::fstat(fd, &status_file) == 0 &&
                   !(S_ISCHR(stderr_file.st_mode) && stderr_file.st_rdev == status_file.st_rdev);
}

void Say(const std::string& line) {
  const std::string text = "tpmlab-agent: " + line + "\n";
  (void)WriteAll(status_fd, AsBytes(text));
  if (echo_to_stderr) (void)WriteAll(2, AsBytes(text));
}

bool WriteAll(int fd, ByteView data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      pollfd p{fd, POLLOUT, 0};
      (void)::poll(&p, 1, 1000);
      continue;
    }
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

Result<Bytes> ReadWholeFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("open " + path);
  Bytes data;
  uint8_t chunk[16384];
  for (;;) {
    const ssize_t n = ::read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status error = Errno("read " + path);
      ::close(fd);
      return error;
    }
    if (n == 0) break;
    data.insert(data.end(), chunk, chunk + n);
  }
  ::close(fd);
  return data;
}

std::string FirstLine(const std::string& path) {
  auto data = ReadWholeFile(path);
  if (!data.ok()) return "";
  std::string text(data->begin(), data->end());
  const size_t end = text.find('\n');
  return end == std::string::npos ? text : text.substr(0, end);
}

std::string KernelRelease() {
  utsname name{};
  if (::uname(&name) != 0) return "";
  return name.release;
}

uint64_t UptimeMs() {
  const std::string line = FirstLine("/proc/uptime");  // "12.34 56.78"
  if (line.empty()) return 0;
  return static_cast<uint64_t>(std::strtod(line.c_str(), nullptr) * 1000.0);
}

std::string MountPseudoFilesystems() {
  struct Mount {
    const char* type;
    const char* target;
  };
  // In order: securityfs lives inside sysfs.
  const Mount mounts[] = {{"proc", "/proc"},
                          {"sysfs", "/sys"},
                          {"devtmpfs", "/dev"},
                          {"securityfs", "/sys/kernel/security"}};
  std::string failed;
  for (const Mount& m : mounts) {
    ::mkdir(m.target, 0755);  // EEXIST is fine
    if (::mount(m.type, m.target, m.type, MS_NOSUID | MS_NOEXEC, nullptr) != 0 && errno != EBUSY) {
      failed += std::string(failed.empty() ? "" : "; ") + "mount " + m.type + " on " + m.target + ": " +
                std::strerror(errno);
    }
  }
  return failed;
}

std::optional<std::string> KernelParameter(const std::string& key) {
  const std::string cmdline = FirstLine("/proc/cmdline");
  const std::string wanted = key + "=";
  size_t at = 0;
  while (at < cmdline.size()) {
    while (at < cmdline.size() && cmdline[at] == ' ') ++at;
    size_t end = cmdline.find(' ', at);
    if (end == std::string::npos) end = cmdline.size();
    const std::string word = cmdline.substr(at, end - at);
    if (word.rfind(wanted, 0) == 0) return word.substr(wanted.size());
    at = end;
  }
  return std::nullopt;
}

bool WaitForPath(const std::string& path, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (::access(path.c_str(), F_OK) != 0) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return true;
}

Result<int> OpenSerial(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return Errno("open " + path);
  termios tio{};
  if (::tcgetattr(fd, &tio) != 0) {
    // A virtio serial port (/dev/vport0p1) is a plain byte pipe: nothing to set.
    if (errno == ENOTTY) return fd;
    Status error = Errno("tcgetattr " + path);
    ::close(fd);
    return error;
  }
  ::cfmakeraw(&tio);
  ::cfsetispeed(&tio, B115200);
  ::cfsetospeed(&tio, B115200);
  tio.c_cflag &= ~static_cast<tcflag_t>(CRTSCTS);
  tio.c_cflag |= CLOCAL | CREAD;
  tio.c_iflag &= ~static_cast<tcflag_t>(IXON | IXOFF | IXANY);
  tio.c_cc[VMIN] = 1;
  tio.c_cc[VTIME] = 0;
  if (::tcsetattr(fd, TCSANOW, &tio) != 0) {
    Status error = Errno("tcsetattr " + path);
    ::close(fd);
    return error;
  }
  ::tcflush(fd, TCIOFLUSH);
  return fd;
}

Result<int> OpenTpm(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return Errno("open " + path);
  return fd;
}

Result<Bytes> TpmExchange(int fd, ByteView command, std::chrono::milliseconds timeout) {
  // The kernel takes a command in one write and gives the response in one read.
  for (;;) {
    const ssize_t n = ::write(fd, command.data(), command.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("write the command to the TPM");
    if (static_cast<size_t>(n) != command.size()) {
      return Status::Error(Layer::kTransport, "the TPM took " + std::to_string(n) + " of " +
                                                  std::to_string(command.size()) + " command bytes");
    }
    break;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Bytes response(kTpmMaxMessage);
  size_t got = 0;
  // A stand-in for the device (a socket in tests) may deliver it in pieces.
  while (got < kTpmHeaderSize || got < TpmHeaderSize(ByteView(response.data(), got))) {
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, MillisLeft(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return Errno("poll the TPM");
    if (ready == 0) {
      return Status::Timeout("no response from the TPM within " + std::to_string(timeout.count()) + " ms");
    }
    const ssize_t n = ::read(fd, response.data() + got, response.size() - got);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return Errno("read the response from the TPM");
    if (n == 0) {
      return Status::Error(Layer::kTransport, "the TPM closed after " + std::to_string(got) + " response bytes");
    }
    got += static_cast<size_t>(n);
    if (got == response.size()) break;
  }
  response.resize(got);
  return response;
}

Status SuspendToRam() {
  const int fd = ::open("/sys/power/state", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Errno("open /sys/power/state");
  // The write returns once the board has woken up again.
  const ssize_t n = ::write(fd, "mem", 3);
  Status result = n == 3 ? Status::Ok() : Errno("write mem to /sys/power/state");
  ::close(fd);
  return result;
}

Status RebootNow(bool power_off) {
  ::sync();
  if (::reboot(power_off ? RB_POWER_OFF : RB_AUTOBOOT) != 0) {
    return Errno(power_off ? "reboot(RB_POWER_OFF)" : "reboot(RB_AUTOBOOT)");
  }
  return Status::Ok();
}

}  // namespace tpmlab::agent
