#include "harness/run_folder.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "drivers/swtpm.h"
#include "harness/snapshot.h"

namespace tpmlab {

namespace fs = std::filesystem;

namespace {

// Empties the holder's line (the folder is free) and drops the lock.
void Release(int fd) {
  if (fd < 0) return;
  (void)!::ftruncate(fd, 0);
  ::close(fd);
}

}  // namespace

RunFolderLock& RunFolderLock::operator=(RunFolderLock&& other) noexcept {
  if (this != &other) {
    Release(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

RunFolderLock::~RunFolderLock() { Release(fd_); }

Result<RunFolderLock> RunFolderLock::Acquire(const fs::path& folder) {
  const fs::path file = folder / kRunFolderLockFile;
  // CLOEXEC: an swtpm started by this run must not inherit (and outlive us holding) the lock.
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Status::Error(Layer::kStore, "cannot open " + file.string() + ": " + std::strerror(errno));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    char holder[256] = {};
    const ssize_t n = error == EWOULDBLOCK ? ::pread(fd, holder, sizeof(holder) - 1, 0) : 0;
    ::close(fd);  // not ours: the holder's line stays
    if (error != EWOULDBLOCK) {
      return Status::Error(Layer::kStore, "cannot lock " + file.string() + ": " + std::strerror(error));
    }
    std::string who = n > 0 ? std::string(holder, static_cast<size_t>(n)) : "";
    while (!who.empty() && (who.back() == '\n' || who.back() == ' ')) who.pop_back();
    return Status::Error(Layer::kHarness,
                         folder.string() + " is in use by another tpmlab run" + (who.empty() ? "" : " (" + who + ")") +
                             ": wait for it to end, or choose another output folder");
  }
  RunFolderLock lock(fd);
  const std::string holder = "pid " + std::to_string(::getpid()) + ", since " + UtcNow() + "\n";
  if (::ftruncate(fd, 0) == 0) (void)!::pwrite(fd, holder.data(), holder.size(), 0);
  return lock;
}

bool HasChipState(const fs::path& state_dir) { return SwtpmStateExists(state_dir); }

fs::path NextRunFolder(const fs::path& out_dir) {
  std::error_code ec;
  for (int n = 2;; ++n) {
    fs::path candidate = out_dir / ("run-" + std::to_string(n));
    if (!fs::exists(candidate, ec)) return candidate;
  }
}

}  // namespace tpmlab
