#include "drivers/socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tpmlab {
namespace {

using Clock = std::chrono::steady_clock;

Status Errno(const std::string& what) {
  return Status::Error(Layer::kTransport, what + ": " + std::strerror(errno));
}

int MillisLeft(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

// Waits until fd is ready for `events`; a timeout is its own kind of error.
Status WaitFor(int fd, short events, Clock::time_point deadline, const char* what) {
  for (;;) {
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, MillisLeft(deadline));
    if (n > 0) return Status::Ok();
    if (n == 0) return Status::Timeout(std::string(what) + " timed out");
    if (errno != EINTR) return Errno(std::string("poll for ") + what);
  }
}

}  // namespace

std::string Endpoint::ToString() const {
  return is_unix() ? "unix:" + path : host + ":" + std::to_string(port);
}

Socket& Socket::operator=(Socket&& other) noexcept {
  if (this != &other) {
    Close();
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

void Socket::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Result<Socket> Socket::Connect(const Endpoint& endpoint, Duration timeout) {
  const auto deadline = Clock::now() + timeout;
  sockaddr_storage addr{};
  socklen_t len = 0;
  int family = AF_INET;
  if (endpoint.is_unix()) {
    family = AF_UNIX;
    auto* un = reinterpret_cast<sockaddr_un*>(&addr);
    un->sun_family = AF_UNIX;
    if (endpoint.path.size() >= sizeof(un->sun_path)) {
      return Status::Error(Layer::kTransport, "unix socket path too long: " + endpoint.path);
    }
    std::memcpy(un->sun_path, endpoint.path.c_str(), endpoint.path.size() + 1);
    len = sizeof(sockaddr_un);
  } else {
    auto* in = reinterpret_cast<sockaddr_in*>(&addr);
    in->sin_family = AF_INET;
    in->sin_port = htons(endpoint.port);
    if (::inet_pton(AF_INET, endpoint.host.c_str(), &in->sin_addr) != 1) {
      return Status::Error(Layer::kTransport, "not an IPv4 address: " + endpoint.host);
    }
    len = sizeof(sockaddr_in);
  }

  Socket s;
  s.fd_ = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (s.fd_ < 0) return Errno("socket");
  if (::connect(s.fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    if (errno != EINPROGRESS && errno != EAGAIN) {
      return Errno("connect " + endpoint.ToString());
    }
    TRY(WaitFor(s.fd_, POLLOUT, deadline, ("connect " + endpoint.ToString()).c_str()));
    int err = 0;
    socklen_t errlen = sizeof(err);
    ::getsockopt(s.fd_, SOL_SOCKET, SO_ERROR, &err, &errlen);
    if (err != 0) {
      errno = err;
      return Errno("connect " + endpoint.ToString());
    }
  }
  if (!endpoint.is_unix()) {
    // TPM commands are small request/response pairs: never wait for Nagle.
    int one = 1;
    ::setsockopt(s.fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  return s;
}

Status Socket::SendAll(ByteView data, Duration timeout) {
  if (fd_ < 0) return Status::Error(Layer::kTransport, "send on a closed socket");
  const auto deadline = Clock::now() + timeout;
  size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = ::send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      TRY(WaitFor(fd_, POLLOUT, deadline, "send"));
      continue;
    }
    return Errno("send");
  }
  return Status::Ok();
}

Status Socket::ReadExact(uint8_t* out, size_t n, Duration timeout) {
  if (fd_ < 0) return Status::Error(Layer::kTransport, "read on a closed socket");
  const auto deadline = Clock::now() + timeout;
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::recv(fd_, out + got, n - got, 0);
    if (r > 0) {
      got += static_cast<size_t>(r);
      continue;
    }
    if (r == 0) {
      return Status::Error(Layer::kTransport, "connection closed by peer after " +
                                                  std::to_string(got) + " of " +
                                                  std::to_string(n) + " bytes");
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      TRY(WaitFor(fd_, POLLIN, deadline, "receive"));
      continue;
    }
    return Errno("receive");
  }
  return Status::Ok();
}

bool Socket::HasPendingInputOrEof() {
  if (fd_ < 0) return true;
  pollfd p{fd_, POLLIN, 0};
  return ::poll(&p, 1, 0) != 0;
}

bool LoopbackPortFree(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(port);
  in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&in), sizeof(in)) == 0;
  ::close(fd);
  return ok;
}

}  // namespace tpmlab
