// The QEMU board driver: a supervised qemu-system-x86_64 running OVMF with a
// TPM backed by an swtpm (SwtpmConfig::qemu_ctrl_socket), its QMP control
// socket, its console log, and the deterministic initramfs the guest boots.
// Moves bytes and flips switches; knows nothing of TPM semantics.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "drivers/process.h"
#include "drivers/socket.h"
#include "drivers/status.h"

namespace tpmlab {

struct QemuConfig {
  std::string binary = "qemu-system-x86_64";
  std::string machine = "q35";
  bool smm = false;                        // Secure Boot OVMF builds: smm=on + secure pflash
  std::string tpm_interface = "tpm-tis";   // or "tpm-crb"
  std::filesystem::path ovmf_code;         // read-only pflash 0
  std::filesystem::path ovmf_vars;         // the run's writable copy, pflash 1
  // Instead of ovmf_code + ovmf_vars: one writable pflash (unit 0) holding a
  // whole firmware chip (OVMF's vars then code), as flashrom wrote it.
  std::filesystem::path flash_chip;
  std::filesystem::path kernel, initrd;
  std::string append;                      // kernel command line
  int memory_mb = 512;
  std::string accel = "auto";              // "kvm", "tcg", "auto": kvm when /dev/kvm opens and a KVM probe runs guest code, else tcg
  std::filesystem::path work_dir;          // sockets and logs go here (made absolute)
  std::filesystem::path swtpm_ctrl_socket; // the swtpm's --ctrl type=unixio path
  bool s3 = true;                          // -global ICH9-LPC.disable_s3=0
  std::chrono::milliseconds start_timeout{30000};  // until QMP answers
};

/// A QEMU process this object launched, controls over QMP, and stops.
/// Not thread-safe: one caller at a time.
class QemuProcess final {
 public:
  /// Launches QEMU running, with QMP on work_dir/qmp.sock, serial0 appended to
  /// work_dir/console.log (firmware and kernel output), serial1 a unix socket
  /// server work_dir/agent.sock (the agent channel), no display, and
  /// -no-shutdown: a guest power-off leaves QEMU in status "shutdown" (a
  /// SHUTDOWN event) until SystemReset or Quit. A guest reboot is a reset in place.
  /// The swtpm must already listen on config.swtpm_ctrl_socket.
  /// Missing qemu/OVMF/kernel: ErrorKind::kMissingPackage naming the Debian package.
  static Result<std::unique_ptr<QemuProcess>> Launch(QemuConfig config);
  ~QemuProcess();  // kills and reaps: nothing outlives it
  QemuProcess(const QemuProcess&) = delete;
  QemuProcess& operator=(const QemuProcess&) = delete;

  /// QMP system_reset: a power loss without a shutdown (QEMU sends swtpm
  /// CMD_INIT). From status "shutdown" it also continues, so the board boots again.
  Status SystemReset();
  /// QMP system_wakeup (from S3; OVMF then sends TPM2_Startup(STATE)).
  Status SystemWakeup();
  /// QMP cont: runs a board left in "prelaunch" or "paused".
  Status Continue();
  /// QMP query-status "status": running, suspended, shutdown, prelaunch, ...
  Result<std::string> QueryStatus();
  /// Waits until QMP reports `status`, or the timeout.
  Status WaitStatus(const std::string& status, std::chrono::milliseconds timeout);
  /// Waits for a QMP event by name ("SUSPEND", "RESET", "SHUTDOWN", "WAKEUP")
  /// and consumes it. Events are queued from launch on, so one that came
  /// before the call counts; ClearEvents forgets the queued ones.
  Status WaitEvent(const std::string& name, std::chrono::milliseconds timeout);
  void ClearEvents();
  /// SIGKILL and reap: a hard power loss. (The swtpm must be killed and
  /// relaunched on its state by its owner before the next Launch.)
  void Kill();
  /// QMP quit (QEMU sends swtpm CMD_SHUTDOWN, swtpm exits), wait a little, then kill.
  void Quit();
  bool alive();
  /// Ok, or how it ended with the tail of its stderr log.
  Status CheckAlive();
  std::string StderrTail(size_t lines = 15) const;
  pid_t pid() const { return child_.pid(); }

  std::filesystem::path console_log() const { return config_.work_dir / "console.log"; }
  std::filesystem::path agent_socket() const { return config_.work_dir / "agent.sock"; }
  std::filesystem::path qmp_socket() const { return config_.work_dir / "qmp.sock"; }
  std::filesystem::path stderr_log() const { return config_.work_dir / "qemu.log"; }
  /// The console log's size now: pass it to ReadConsoleFrom for what comes next.
  uint64_t console_size() const;
  const std::string& accel() const { return accel_; }  // "tcg" or "kvm": what it runs with
  const QemuConfig& config() const { return config_; }
  /// The command line it was started with.
  const std::vector<std::string>& command_line() const { return argv_; }

 private:
  explicit QemuProcess(QemuConfig config) : config_(std::move(config)) {}
  Status ConnectQmp();
  // Sends one command and returns its "return" value as JSON text; events
  // read meanwhile are queued.
  Result<std::string> Execute(const std::string& command, std::chrono::milliseconds timeout);
  // Reads one QMP message (a JSON line) within `timeout`.
  Result<std::string> ReadMessage(std::chrono::milliseconds timeout);
  // Non-consuming: true when an event `name` is queued, reading what is pending.
  Result<bool> EventQueued(const std::string& name, std::chrono::milliseconds wait, bool consume);
  Status Dead(const std::string& doing);

  QemuConfig config_;
  std::string accel_;
  std::vector<std::string> argv_;
  ChildProcess child_;
  Socket qmp_;
  std::string qmp_buffer_;
  std::deque<std::string> events_;  // event names, oldest first
};

/// The accelerator "auto" resolves to on this machine ("kvm" or "tcg"); the
/// KVM probe (a 64 KiB BIOS that writes to isa-debug-exit) runs once per process.
std::string ResolveAccel(const std::string& binary, const std::string& requested);

/// How far a boot got, from the console log text: nothing, firmware (any
/// output: OVMF prints only its console setup escapes there), kernel ("Linux version"), agent ("tpmlab-agent: started"),
/// serving ("tpmlab-agent: serving").
enum class BootStage { kNothing, kFirmware, kKernel, kAgent, kServing };
BootStage BootStageFromConsole(const std::string& console_text);
const char* BootStageName(BootStage stage);
/// The console text written since `offset` (each boot appends); "" when none.
std::string ReadConsoleFrom(const std::filesystem::path& log, uint64_t offset);

/// A cpio "newc" initramfs, deterministic (mtime 0, inode numbers by position,
/// sorted by path), so the same inputs give the same bytes (the kernel's EFI
/// stub may measure the initrd).
struct InitramfsEntry {
  std::string path;  // "init", "dev", "dev/console": relative, no leading '/'
  enum Kind { kFile, kDir, kCharDev } kind = kFile;
  std::string source_file;  // kFile: the file whose bytes go in
  uint32_t mode = 0;        // permission bits (the type bits come from kind)
  uint32_t rdev_major = 0, rdev_minor = 0;
};
Status WriteInitramfs(const std::filesystem::path& out, const std::vector<InitramfsEntry>& entries);

}  // namespace tpmlab
