// Child processes (drivers/process.h): a program run to completion reports
// its own exit status, and neither a timeout nor the harness's own death
// leaves behind what the program started (swtpm_setup starts a swtpm).
#define BOOST_TEST_MODULE process
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "drivers/process.h"

namespace tpmlab {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct TempDir {
  TempDir() {
    char name[] = "/tmp/tpmlab-process-test-XXXXXX";
    path = ::mkdtemp(name);
  }
  ~TempDir() { fs::remove_all(path); }
  fs::path path;
};

// A zombie counts as gone: this container's init does not reap orphans.
bool Alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string ignored, state;
  if (!(stat >> ignored >> ignored >> state)) return false;
  return state != "Z" && state != "X";
}

bool GoneWithin(pid_t pid, std::chrono::milliseconds budget) {
  const auto deadline = std::chrono::steady_clock::now() + budget;
  while (Alive(pid)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// Waits for the pid a shell wrote to `file`.
pid_t PidFrom(const fs::path& file, std::chrono::milliseconds budget) {
  const auto deadline = std::chrono::steady_clock::now() + budget;
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(file);
    pid_t pid = 0;
    if (in >> pid && pid > 0) return pid;
    std::this_thread::sleep_for(10ms);
  }
  return 0;
}

// A program that starts a long-lived program of its own, tells its pid, and
// then waits forever itself.
std::vector<std::string> StartsASleeper(const fs::path& pid_file) {
  return {"sh", "-c", "sleep 300 & echo $! > " + pid_file.string() + "; wait"};
}

struct DieWithParent {
  explicit DieWithParent(bool on) { ChildProcess::DieWithParentByDefault(on); }
  ~DieWithParent() { ChildProcess::DieWithParentByDefault(false); }
};

BOOST_AUTO_TEST_CASE(the_exit_status_is_the_programs_own, *boost::unit_test::timeout(60)) {
  TempDir dir;
  for (bool supervised : {false, true}) {
    BOOST_TEST_CONTEXT("die with parent: " << supervised) {
      DieWithParent mode(supervised);
      auto code = RunProgram({"sh", "-c", "exit 7"}, dir.path / "log", 10s);
      BOOST_TEST_REQUIRE(code.ok(), code.status().message());
      BOOST_TEST(*code == 7);
      auto killed = RunProgram({"sh", "-c", "kill -TERM $$"}, dir.path / "log", 10s);
      BOOST_TEST_REQUIRE(!killed.ok());
      BOOST_TEST(killed.status().message().find("killed by signal Terminated") != std::string::npos,
                 killed.status().message());
      auto missing = RunProgram({"/nonexistent/tool"}, dir.path / "missing.log", 10s);
      BOOST_TEST_REQUIRE(missing.ok(), missing.status().message());
      BOOST_TEST(*missing == 127);
      std::ifstream log(dir.path / "missing.log");
      std::string text((std::istreambuf_iterator<char>(log)), {});
      BOOST_TEST(text.find("exec /nonexistent/tool: No such file or directory") != std::string::npos,
                 text);
      fs::remove(dir.path / "missing.log");
    }
  }
}

BOOST_AUTO_TEST_CASE(a_timeout_kills_what_the_program_started, *boost::unit_test::timeout(60)) {
  TempDir dir;
  for (bool supervised : {false, true}) {
    BOOST_TEST_CONTEXT("die with parent: " << supervised) {
      DieWithParent mode(supervised);
      const fs::path pid_file = dir.path / ("sleeper" + std::to_string(supervised));
      auto code = RunProgram(StartsASleeper(pid_file), dir.path / "log", 1500ms);
      BOOST_TEST(!code.ok());
      const pid_t sleeper = PidFrom(pid_file, 1s);
      BOOST_TEST_REQUIRE(sleeper > 0);
      BOOST_TEST(GoneWithin(sleeper, 5s));
    }
  }
}

// SIGTERM to a supervised program reaches the program, not only its
// supervisor, and the harness sees how the program ended.
BOOST_AUTO_TEST_CASE(sigterm_reaches_a_supervised_program, *boost::unit_test::timeout(60)) {
  TempDir dir;
  ChildProcess::Options options;
  options.die_with_parent = true;
  options.whole_group = true;
  const fs::path pid_file = dir.path / "sleeper";
  auto child = ChildProcess::Spawn({"sh", "-c", "sleep 300 & echo $! > " + pid_file.string() + "; exec sleep 301"},
                                   dir.path / "log", options);
  BOOST_TEST_REQUIRE(child.ok(), child.status().message());
  const pid_t sleeper = PidFrom(pid_file, 10s);
  child->Kill(SIGTERM, 5s);
  BOOST_TEST(child->exit_description().value_or("") == "killed by signal Terminated");
  BOOST_TEST_REQUIRE(sleeper > 0);
  BOOST_TEST(GoneWithin(sleeper, 5s));
}

// The harness is SIGKILLed while a program it runs has started another (a
// kill -9 of tpmlab while swtpm_setup manufactures a chip): both go with it.
BOOST_AUTO_TEST_CASE(a_killed_harness_takes_the_programs_children_along,
                     *boost::unit_test::timeout(60)) {
  TempDir dir;
  const fs::path pid_file = dir.path / "sleeper";
  const pid_t harness = ::fork();
  BOOST_TEST_REQUIRE(harness >= 0);
  if (harness == 0) {
    ChildProcess::DieWithParentByDefault(true);
    auto code = RunProgram(StartsASleeper(pid_file), dir.path / "log", 120s);
    ::_exit(code.ok() ? 0 : 1);
  }
  const pid_t sleeper = PidFrom(pid_file, 10s);
  ::kill(harness, SIGKILL);
  int status = 0;
  ::waitpid(harness, &status, 0);
  BOOST_TEST_REQUIRE(sleeper > 0);
  BOOST_TEST(GoneWithin(sleeper, 5s));
}

// A child that leads its own group still gets the signals meant for it:
// SIGSTOP models a hung chip, SIGCONT wakes it.
BOOST_AUTO_TEST_CASE(stop_and_continue_reach_the_child, *boost::unit_test::timeout(60)) {
  TempDir dir;
  auto child = ChildProcess::Spawn({"sleep", "300"}, dir.path / "log");
  BOOST_TEST_REQUIRE(child.ok(), child.status().message());
  child->Signal(SIGSTOP);
  const auto state = [&] {
    std::ifstream stat("/proc/" + std::to_string(child->pid()) + "/stat");
    std::string ignored, s;
    stat >> ignored >> ignored >> s;
    return s;
  };
  for (int i = 0; i < 100 && state() != "T"; ++i) std::this_thread::sleep_for(10ms);
  BOOST_TEST(state() == "T");
  child->Signal(SIGCONT);
  for (int i = 0; i < 100 && state() == "T"; ++i) std::this_thread::sleep_for(10ms);
  BOOST_TEST(state() != "T");
  child->Kill(SIGTERM, 2s);
  BOOST_TEST(!child->running());
}

}  // namespace
}  // namespace tpmlab
