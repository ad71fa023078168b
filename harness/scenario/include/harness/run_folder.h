// A run's output folder: one run at a time writes into it (a lock held for
// the run's life), and a run never lands on top of an earlier one.
#pragma once

#include <filesystem>
#include <string>

#include "drivers/status.h"

namespace tpmlab {

/// An exclusive lock on a folder (flock on FOLDER/.tpmlab.lock), released
/// when destroyed. The lock file is left behind: deleting it would let two
/// runs lock two different files of one name.
class RunFolderLock {
 public:
  RunFolderLock() = default;
  RunFolderLock(RunFolderLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  RunFolderLock& operator=(RunFolderLock&& other) noexcept;
  ~RunFolderLock();
  RunFolderLock(const RunFolderLock&) = delete;
  RunFolderLock& operator=(const RunFolderLock&) = delete;

  /// Locks `folder` at once, or says which run holds it (its pid and start).
  static Result<RunFolderLock> Acquire(const std::filesystem::path& folder);

 private:
  explicit RunFolderLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

inline constexpr const char* kRunFolderLockFile = ".tpmlab.lock";

/// Whether `state_dir` holds an emulated chip's state (what --keep-state continues).
bool HasChipState(const std::filesystem::path& state_dir);

/// The first of OUT/run-2, OUT/run-3, ... that does not exist yet: where a
/// run continuing the chip of OUT's earlier run writes its own run.json.
std::filesystem::path NextRunFolder(const std::filesystem::path& out_dir);

}  // namespace tpmlab
