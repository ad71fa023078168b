// A connected stream socket (TCP on loopback or a unix socket) with deadlines.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "drivers/bytes.h"
#include "drivers/status.h"

namespace tpmlab {

// Where a socket listens: TCP host:port, or a unix socket path when `path` is set.
struct Endpoint {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string path;

  bool is_unix() const { return !path.empty(); }
  std::string ToString() const;
};

class Socket final {
 public:
  using Duration = std::chrono::milliseconds;

  Socket() = default;
  ~Socket() { Close(); }
  Socket(Socket&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  Socket& operator=(Socket&& other) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  static Result<Socket> Connect(const Endpoint& endpoint, Duration timeout);
  // Wraps an fd this object will own (tests use socketpair()).
  static Socket Adopt(int fd) { Socket s; s.fd_ = fd; return s; }

  Status SendAll(ByteView data, Duration timeout);
  // Reads exactly `n` bytes or fails; EOF before that is an error.
  Status ReadExact(uint8_t* out, size_t n, Duration timeout);
  // True when the peer has closed or the socket has unread bytes (a stale answer).
  bool HasPendingInputOrEof();
  void Close();
  bool is_open() const { return fd_ >= 0; }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

// True if nothing listens on 127.0.0.1:port and it can be bound right now.
bool LoopbackPortFree(uint16_t port);

}  // namespace tpmlab
