#include "drivers/process.h"
#include "drivers/process_env.h"

#include <atomic>

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <sstream>
#include <string_view>
#include <thread>

namespace tpmlab {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::optional<fs::path> FindProgram(const std::string& program) {
  if (program.find('/') != std::string::npos) {
    if (::access(program.c_str(), X_OK) == 0) return fs::path(program);
    return std::nullopt;
  }
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    fs::path candidate = fs::path(dir.empty() ? "." : dir) / program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) Kill(SIGKILL, std::chrono::milliseconds(2000));
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(other.pid_), exit_(std::move(other.exit_)), exit_code_(other.exit_code_) {
  other.pid_ = -1;
}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0) Kill(SIGKILL, std::chrono::milliseconds(2000));
    pid_ = other.pid_;
    exit_ = std::move(other.exit_);
    exit_code_ = other.exit_code_;
    other.pid_ = -1;
  }
  return *this;
}

namespace {
std::atomic<bool> die_with_parent_by_default{false};

// Only async-signal-safe calls after fork: another thread (a fleet's other
// DUTs) may have held stdio's or malloc's lock at the fork.
void WriteExecFailure(const char* program) {
  // strerrordesc_np: the untranslated table entry (no locale, no malloc).
  const char* why = ::strerrordesc_np(errno);
  if (why == nullptr) why = "unknown error";
  for (const char* part : {"exec ", program, ": ", why, "\n"}) {
    (void)!::write(2, part, std::strlen(part));
  }
}

void KillOwnGroup(int) { ::kill(0, SIGKILL); }

// The supervisor of a whole_group child: it forks the program into its own
// group and waits for it. When the harness dies it gets SIGHUP and kills the
// group, the programs the program started included; otherwise it ends as the
// program ended, so the harness sees the program's own exit status.
[[noreturn]] void Supervise(char* const* args, char* const* envp, pid_t harness) {
  struct sigaction on_harness_death {};
  on_harness_death.sa_handler = KillOwnGroup;
  ::sigaction(SIGHUP, &on_harness_death, nullptr);
  ::prctl(PR_SET_PDEATHSIG, SIGHUP);
  if (::getppid() != harness) KillOwnGroup(0);
  // A SIGTERM or SIGINT to the group is for the program; the supervisor
  // stays to report how it ended.
  ::signal(SIGTERM, SIG_IGN);
  ::signal(SIGINT, SIG_IGN);
  const pid_t program = ::fork();
  if (program < 0) ::_exit(127);
  if (program == 0) {
    for (int own : {SIGHUP, SIGTERM, SIGINT}) ::signal(own, SIG_DFL);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // a supervisor killed on its own
    ::execvpe(args[0], args, envp);
    WriteExecFailure(args[0]);
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(program, &status, 0) < 0) {
    if (errno != EINTR) ::_exit(127);
  }
  if (WIFEXITED(status)) ::_exit(WEXITSTATUS(status));
  const int ended_by = WTERMSIG(status);
  ::signal(ended_by, SIG_DFL);
  ::kill(::getpid(), ended_by);
  ::_exit(128 + ended_by);
}
}  // namespace

void ChildProcess::DieWithParentByDefault(bool on) { die_with_parent_by_default = on; }

Result<ChildProcess> ChildProcess::Spawn(const std::vector<std::string>& argv,
                                         const fs::path& log_file) {
  return Spawn(argv, log_file, Options{});
}

namespace {
// The environment of a child: the harness's, with `additions` set. Built
// before fork: after it, only async-signal-safe calls.
struct ChildEnvironment {
  std::vector<std::string> set;
  std::vector<char*> envp;
  explicit ChildEnvironment(const EnvironmentAdditions& additions) {
    for (const auto& [name, value] : additions) set.push_back(name + "=" + value);
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      const std::string_view entry(*e);
      bool replaced = false;
      for (const auto& [name, value] : additions) {
        replaced = replaced || (entry.size() > name.size() && entry.compare(0, name.size(), name) == 0 &&
                                entry[name.size()] == '=');
      }
      if (!replaced) envp.push_back(*e);
    }
    for (auto& s : set) envp.push_back(s.data());
    envp.push_back(nullptr);
  }
};

// Set by RunProgramWithEnvironment around its Spawn, on its own thread only.
thread_local const EnvironmentAdditions* spawn_environment = nullptr;
}  // namespace

Result<ChildProcess> ChildProcess::Spawn(const std::vector<std::string>& argv,
                                         const fs::path& log_file, Options options) {
  if (argv.empty()) return Status::Error(Layer::kHarness, "empty command line");
  if (die_with_parent_by_default) options.die_with_parent = true;
  int log_fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return Status::Error(Layer::kEmulator,
                         "open log " + log_file.string() + ": " + std::strerror(errno));
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ChildEnvironment environment(spawn_environment ? *spawn_environment : EnvironmentAdditions{});

  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    return Status::Error(Layer::kEmulator, std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    // Child: its own process group, so a terminal's Ctrl-C reaches the harness
    // first and the harness decides how the emulator stops.
    ::setpgid(0, 0);
    if (options.die_with_parent) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      // The parent may have died before prctl took effect.
      if (::getppid() != parent) ::_exit(127);
    }
    if (options.stdin_fd >= 0) {
      ::dup2(options.stdin_fd, 0);
    } else {
      int devnull = ::open("/dev/null", O_RDONLY);
      ::dup2(devnull, 0);
    }
    ::dup2(options.stdout_fd >= 0 ? options.stdout_fd : log_fd, 1);
    ::dup2(log_fd, 2);
    if (options.die_with_parent && options.whole_group) Supervise(args.data(), environment.envp.data(), parent);
    ::execvpe(args[0], args.data(), environment.envp.data());
    WriteExecFailure(args[0]);
    ::_exit(127);
  }
  // Here too, so a Kill right after Spawn finds the group.
  ::setpgid(pid, pid);
  ::close(log_fd);
  ChildProcess child;
  child.pid_ = pid;
  return child;
}

void ChildProcess::Reaped(int wait_status) {
  if (WIFEXITED(wait_status)) {
    exit_code_ = WEXITSTATUS(wait_status);
    exit_ = "exited with " + std::to_string(*exit_code_);
  } else if (WIFSIGNALED(wait_status)) {
    exit_ = std::string("killed by signal ") + ::strsignal(WTERMSIG(wait_status));
  }
  pid_ = -1;
}

bool ChildProcess::running() {
  if (pid_ <= 0) return false;
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    Reaped(st);
    return false;
  }
  return r == 0;
}

bool ChildProcess::Wait(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (running()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

void ChildProcess::Kill(int signal, std::chrono::milliseconds timeout) {
  if (!running()) return;
  // A stopped child cannot act on SIGTERM; SIGKILL needs no waking (and
  // waking it first would let it finish what it was doing).
  if (signal != SIGKILL) SignalGroup(SIGCONT);
  SignalGroup(signal);
  if (Wait(timeout)) return;
  SignalGroup(SIGKILL);
  int st = 0;
  if (::waitpid(pid_, &st, 0) == pid_) Reaped(st);
}

void ChildProcess::Signal(int signal) {
  if (pid_ > 0) SignalGroup(signal);
}

// The child leads its own group: what it started goes with it.
void ChildProcess::SignalGroup(int signal) {
  if (::kill(-pid_, signal) != 0) ::kill(pid_, signal);
}

Result<int> RunProgram(const std::vector<std::string>& argv, const fs::path& log_file,
                       std::chrono::milliseconds timeout) {
  ChildProcess::Options options;
  options.whole_group = true;
  TRY_ASSIGN(ChildProcess child, ChildProcess::Spawn(argv, log_file, options));
  if (!child.Wait(timeout)) {
    child.Kill(SIGKILL, std::chrono::milliseconds(1000));
    return Status::Timeout(argv[0] + " did not finish within " +
                           std::to_string(timeout.count()) + " ms");
  }
  if (!child.exit_code()) {
    return Status::Error(Layer::kEmulator, argv[0] + " " + child.exit_description().value_or("ended"));
  }
  return *child.exit_code();
}

Result<int> RunProgramWithEnvironment(const std::vector<std::string>& argv, const fs::path& log_file,
                                      std::chrono::milliseconds timeout, const EnvironmentAdditions& environment) {
  spawn_environment = &environment;
  struct Reset {
    ~Reset() { spawn_environment = nullptr; }
  } reset;
  return RunProgram(argv, log_file, timeout);
}

std::string FileTail(const fs::path& file, size_t lines) {
  std::ifstream in(file);
  std::deque<std::string> tail;
  std::string line;
  while (std::getline(in, line)) {
    tail.push_back(line);
    if (tail.size() > lines) tail.pop_front();
  }
  std::string out;
  for (const auto& l : tail) out += l + "\n";
  return out;
}

}  // namespace tpmlab
