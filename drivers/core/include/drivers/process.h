// Child processes: the emulators and tools the drivers start and supervise.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "drivers/status.h"

namespace tpmlab {

// Finds `program` on PATH (or checks it when it contains a '/').
std::optional<std::filesystem::path> FindProgram(const std::string& program);

// A started child whose stdout and stderr go to a log file. The destructor
// kills and reaps it, so no child outlives its owner.
class ChildProcess final {
 public:
  ChildProcess() = default;
  ~ChildProcess();
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  struct Options {
    // The child gets SIGKILL when the thread that spawned it ends, even when
    // the harness itself is SIGKILLed (PR_SET_PDEATHSIG): for children that
    // must never outlive it (QEMU and its swtpm). Spawn from a thread that
    // lives as long as the child.
    bool die_with_parent = false;
    // With die_with_parent: the programs the child starts die with the
    // harness too (swtpm_setup's swtpm would not). The child then runs under
    // a small supervisor that kills its process group when the harness dies.
    bool whole_group = false;
    // The child's stdin and stdout instead of /dev/null and the log (a pipe
    // pair carrying a protocol, as ssh to tpmlab-agent); -1: the defaults.
    // The caller keeps (and closes) its own copies.
    int stdin_fd = -1;
    int stdout_fd = -1;
  };
  /// Makes every later Spawn die_with_parent. A program whose main thread
  /// lives as long as its children (the tpmlab command) turns it on, so a
  /// `kill -9` of the harness takes its emulators along; a library user's
  /// threads may end before the DUT they opened, so it stays off there.
  static void DieWithParentByDefault(bool on);
  static Result<ChildProcess> Spawn(const std::vector<std::string>& argv,
                                    const std::filesystem::path& log_file);
  static Result<ChildProcess> Spawn(const std::vector<std::string>& argv,
                                    const std::filesystem::path& log_file, Options options);

  pid_t pid() const { return pid_; }
  bool running();
  // The exit status once the child has ended ("exited with 1", "killed by SIGKILL").
  std::optional<std::string> exit_description() const { return exit_; }
  std::optional<int> exit_code() const { return exit_code_; }

  // Sends `signal` and reaps the child, waiting at most `timeout`; then SIGKILL.
  void Kill(int signal, std::chrono::milliseconds timeout);
  // Waits for the child to end by itself; false on timeout.
  bool Wait(std::chrono::milliseconds timeout);
  // Stops the child without reaping it (SIGSTOP / SIGCONT), to model a hung chip.
  void Signal(int signal);

 private:
  void Reaped(int wait_status);
  void SignalGroup(int signal);

  pid_t pid_ = -1;
  std::optional<std::string> exit_;
  std::optional<int> exit_code_;
};

// Runs a program to completion; the result is its exit code. A timeout kills
// the program and whatever it started.
Result<int> RunProgram(const std::vector<std::string>& argv,
                       const std::filesystem::path& log_file,
                       std::chrono::milliseconds timeout);

// The last `lines` lines of a text file ("" when it does not exist).
std::string FileTail(const std::filesystem::path& file, size_t lines);

}  // namespace tpmlab
