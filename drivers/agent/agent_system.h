// What tpmlab-agent asks of the board's Linux: files, mounts, the kernel
// command line, a raw serial port, the TPM device, power.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "drivers/bytes.h"
#include "drivers/status.h"

namespace tpmlab::agent {

// Status lines for whoever watches: /dev/console when PID 1 (the harness
// reads the console to tell how far a boot got), stderr otherwise.
void SetStatusFd(int fd);
void Say(const std::string& line);

// A whole file, read to its end (securityfs files have no size).
Result<Bytes> ReadWholeFile(const std::string& path);
// The first line of a text file without its newline ("" when it cannot be read).
std::string FirstLine(const std::string& path);
std::string KernelRelease();
uint64_t UptimeMs();

// PID 1: mounts proc, sysfs, devtmpfs and securityfs, creating mount points;
// returns what failed ("" when all worked; EBUSY is fine).
std::string MountPseudoFilesystems();
// The value of `key=` on /proc/cmdline, if present.
std::optional<std::string> KernelParameter(const std::string& key);

// Waits up to `timeout` for `path` to exist (drivers probe asynchronously).
bool WaitForPath(const std::string& path, std::chrono::milliseconds timeout);

// Opens a serial tty raw (cfmakeraw), 115200 baud, no flow control; a
// channel that is not a tty (a virtio serial port) is used as it is.
Result<int> OpenSerial(const std::string& path);
// Opens the TPM character device read-write.
Result<int> OpenTpm(const std::string& path);

// Writes all of `data`; false with errno set when it cannot.
bool WriteAll(int fd, ByteView data);

// One TPM command: write it whole, read the whole response.
Result<Bytes> TpmExchange(int fd, ByteView command, std::chrono::milliseconds timeout);

// Suspend to RAM: writes "mem" to /sys/power/state; returns after the wake.
Status SuspendToRam();
// Reboot or power off now (sync first). Returns only when the kernel refused.
Status RebootNow(bool power_off);

}  // namespace tpmlab::agent
