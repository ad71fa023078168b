// DeviceTransport: TPM commands through the Linux TPM character device,
// /dev/tpmrm0 (the kernel's resource manager; shared) or /dev/tpm0 (raw;
// one opener at a time).
//
// The kernel's device protocol: one write() carries one whole command, one
// read() returns one whole response. The device is opened O_NONBLOCK so the
// write returns at once and poll() waits for the response with the
// per-command timeout (kernels without asynchronous TPM I/O execute the
// command inside write() instead; that still works, without the timeout).
//
// Cancel: the character device has no cancel. Abandoning a response closes
// and reopens the device: the kernel discards the response, and on
// /dev/tpmrm0 the resource manager flushes that connection's transient
// objects and sessions. Only locality 0 is reachable from user space.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "drivers/transport.h"

namespace tpmlab {

class DeviceTransport final : public Transport {
 public:
  /// Opens a new file descriptor, for FromFd's reopen.
  using Reopen = std::function<Result<int>()>;

  /// Opens `path` (usually /dev/tpmrm0).
  /// @returns a transport error naming the path and the reason: no TPM
  ///          device (ENOENT), run as root or join group tss (EACCES),
  ///          /dev/tpm0 held by another process (EBUSY).
  static Result<std::unique_ptr<DeviceTransport>> Open(const std::string& path);

  /// The seam for tests: a descriptor that behaves like the device (one
  /// write per command, one read per response), owned from now on. `name`
  /// stands in for the path in messages; `reopen`, when given, is how
  /// AbandonResponse gets a fresh descriptor.
  static std::unique_ptr<DeviceTransport> FromFd(int fd, std::string name, Reopen reopen = {});

  ~DeviceTransport() override;
  DeviceTransport(const DeviceTransport&) = delete;
  DeviceTransport& operator=(const DeviceTransport&) = delete;

  const std::string& path() const { return path_; }

  /// The reason an open(2) of a TPM device failed, for messages elsewhere
  /// (`tpmlab bench check`): "no TPM device", "run as root or join group tss".
  static std::string OpenErrorHint(int error, const std::string& path);

 private:
  DeviceTransport(int fd, std::string path, Reopen reopen);

  Status DoTransmit(ByteView command) override;
  Result<Bytes> DoReceive(Duration timeout) override;
  Status DoCancel() override;
  Status DoSetLocality(uint8_t locality) override;
  Info DoInfo() const override;
  void DoAbandonResponse() override;

  void Close();

  int fd_ = -1;
  std::string path_;
  Reopen reopen_;
  Status reopen_error_;  // why the last reopen failed; reported on the next use
};

}  // namespace tpmlab
