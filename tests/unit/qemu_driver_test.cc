// The QEMU driver without a VM: the initramfs bytes, boot stages from console
// text, and the packages named when QEMU, OVMF or the kernel are missing.
#define BOOST_TEST_MODULE qemu_driver_test
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <boost/test/unit_test.hpp>
#include <fstream>
#include <iterator>

#include "drivers/process.h"
#include "drivers/qemu.h"

namespace fs = std::filesystem;
using namespace tpmlab;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("tpmlab-qemu-unit-" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

std::string ReadAll(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

struct CpioMember {
  std::string name;
  uint32_t ino = 0, mode = 0, nlink = 0, mtime = 0, rdev_major = 0, rdev_minor = 0;
  std::string data;
};

// An independent reader of "newc" archives: every header and name and every
// file's data must start on a 4-byte boundary.
std::vector<CpioMember> ParseNewc(const std::string& archive) {
  std::vector<CpioMember> members;
  size_t at = 0;
  auto field = [&](size_t index) {
    return static_cast<uint32_t>(std::stoul(archive.substr(at + 6 + index * 8, 8), nullptr, 16));
  };
  for (;;) {
    BOOST_REQUIRE_EQUAL(at % 4, 0u);
    BOOST_REQUIRE_LE(at + 110, archive.size());
    BOOST_REQUIRE_EQUAL(archive.substr(at, 6), "070701");
    CpioMember m;
    m.ino = field(0);
    m.mode = field(1);
    BOOST_CHECK_EQUAL(field(2), 0u);  // uid
    BOOST_CHECK_EQUAL(field(3), 0u);  // gid
    m.nlink = field(4);
    m.mtime = field(5);
    const uint32_t size = field(6);
    m.rdev_major = field(9);
    m.rdev_minor = field(10);
    const uint32_t namesize = field(11);
    m.name = archive.substr(at + 110, namesize - 1);
    BOOST_REQUIRE_EQUAL(archive[at + 110 + namesize - 1], '\0');
    at += 110 + namesize;
    at = (at + 3) & ~size_t{3};
    m.data = archive.substr(at, size);
    at += size;
    at = (at + 3) & ~size_t{3};
    if (m.name == "TRAILER!!!") {
      BOOST_CHECK_EQUAL(at, archive.size());
      members.push_back(m);
      return members;
    }
    members.push_back(m);
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(initramfs_is_newc_sorted_aligned_and_reproducible) {
  TempDir dir;
  std::ofstream(dir.path / "init", std::ios::binary) << "#!/bin/sh\necho hi\n";  // 19 bytes: needs padding
  std::ofstream(dir.path / "blob", std::ios::binary) << std::string(4, 'x');
  const std::vector<InitramfsEntry> entries = {
      {"init", InitramfsEntry::kFile, (dir.path / "init").string(), 0755},
      {"dev/console", InitramfsEntry::kCharDev, "", 0600, 5, 1},
      {"dev", InitramfsEntry::kDir, "", 0755},
      {"etc/blob", InitramfsEntry::kFile, (dir.path / "blob").string(), 0644},
      {"etc", InitramfsEntry::kDir, "", 0755},
  };
  BOOST_REQUIRE(WriteInitramfs(dir.path / "a.cpio", entries).ok());
  const std::string archive = ReadAll(dir.path / "a.cpio");
  auto members = ParseNewc(archive);
  BOOST_REQUIRE_EQUAL(members.size(), 6u);
  const std::vector<std::string> names = {"dev", "dev/console", "etc", "etc/blob", "init", "TRAILER!!!"};
  for (size_t i = 0; i < names.size(); ++i) BOOST_CHECK_EQUAL(members[i].name, names[i]);
  BOOST_CHECK_EQUAL(members[0].mode, 040755u);
  BOOST_CHECK_EQUAL(members[1].mode, 020600u);
  BOOST_CHECK_EQUAL(members[1].rdev_major, 5u);
  BOOST_CHECK_EQUAL(members[1].rdev_minor, 1u);
  BOOST_CHECK_EQUAL(members[3].data, "xxxx");
  BOOST_CHECK_EQUAL(members[4].mode, 0100755u);
  BOOST_CHECK_EQUAL(members[4].data, "#!/bin/sh\necho hi\n");
  for (const auto& m : members) BOOST_CHECK_EQUAL(m.mtime, 0u);
  // Distinct inode numbers, or the kernel would take files for hard links.
  for (size_t i = 0; i + 1 < members.size(); ++i) {
    for (size_t j = i + 1; j + 1 < members.size(); ++j) BOOST_CHECK_NE(members[i].ino, members[j].ino);
  }

  // Same inputs in another order, another time: the same bytes.
  std::vector<InitramfsEntry> reversed(entries.rbegin(), entries.rend());
  BOOST_REQUIRE(WriteInitramfs(dir.path / "b.cpio", reversed).ok());
  BOOST_CHECK(ReadAll(dir.path / "b.cpio") == archive);
}

BOOST_AUTO_TEST_CASE(initramfs_refuses_bad_entries) {
  TempDir dir;
  auto write = [&](std::vector<InitramfsEntry> entries) { return WriteInitramfs(dir.path / "x.cpio", entries); };
  Status missing = write({{"init", InitramfsEntry::kFile, (dir.path / "absent").string(), 0755}});
  BOOST_CHECK(!missing.ok());
  BOOST_CHECK_NE(missing.message().find("absent"), std::string::npos);
  BOOST_CHECK(!write({{"/init", InitramfsEntry::kDir, "", 0755}}).ok());
  BOOST_CHECK(!write({{"a/../b", InitramfsEntry::kDir, "", 0755}}).ok());
  BOOST_CHECK(!write({{"dev", InitramfsEntry::kDir, "", 0755}, {"dev", InitramfsEntry::kDir, "", 0755}}).ok());
}

BOOST_AUTO_TEST_CASE(boot_stage_from_console_text) {
  BOOST_CHECK(BootStageFromConsole("") == BootStage::kNothing);
  // All OVMF 2022.11 prints before the kernel's EFI stub: its console setup.
  BOOST_CHECK(BootStageFromConsole("\x1b[2J\x1b[01;01H\x1b[=3h") == BootStage::kFirmware);
  BOOST_CHECK(BootStageFromConsole("BdsDxe: loading Boot0001 \"UEFI QEMU HARDDISK\"\r\n") == BootStage::kFirmware);
  BOOST_CHECK(BootStageFromConsole("BdsDxe: starting ...\n[    0.000000] Linux version 6.1.0-57-cloud-amd64\n") ==
              BootStage::kKernel);
  BOOST_CHECK(BootStageFromConsole("Linux version 6.1\ntpmlab-agent: started v1\n") == BootStage::kAgent);
  BOOST_CHECK(BootStageFromConsole("Linux version\ntpmlab-agent: started\ntpmlab-agent: serving ttyS1\n") ==
              BootStage::kServing);
  BOOST_CHECK_EQUAL(BootStageName(BootStage::kFirmware), "firmware");
  BOOST_CHECK_EQUAL(BootStageName(BootStage::kServing), "serving");
}

BOOST_AUTO_TEST_CASE(console_is_read_from_an_offset) {
  TempDir dir;
  std::ofstream(dir.path / "console.log") << "first boot\nsecond boot\n";
  BOOST_CHECK_EQUAL(ReadConsoleFrom(dir.path / "console.log", 11), "second boot\n");
  BOOST_CHECK_EQUAL(ReadConsoleFrom(dir.path / "console.log", 100), "");
  BOOST_CHECK_EQUAL(ReadConsoleFrom(dir.path / "absent.log", 0), "");
}

// Each missing piece names the Debian package that brings it.
BOOST_AUTO_TEST_CASE(missing_qemu_ovmf_or_kernel_names_the_package) {
  TempDir dir;
  std::ofstream(dir.path / "file") << "x";
  QemuConfig config;
  config.work_dir = dir.path / "work";
  config.swtpm_ctrl_socket = dir.path / "ctrl.sock";
  config.ovmf_code = dir.path / "file";
  config.ovmf_vars = dir.path / "file";
  config.kernel = dir.path / "file";

  auto expect_package = [](QemuConfig c, const std::string& package, const std::string& names) {
    auto launched = QemuProcess::Launch(std::move(c));
    BOOST_REQUIRE(!launched.ok());
    const Status& error = launched.status();
    BOOST_CHECK(error.kind() == ErrorKind::kMissingPackage);
    BOOST_CHECK_MESSAGE(error.message().find("'" + package + "'") != std::string::npos, error.message());
    BOOST_CHECK_MESSAGE(error.message().find(names) != std::string::npos, error.message());
  };
  QemuConfig no_qemu = config;
  no_qemu.binary = "tpmlab-no-such-qemu-system";
  expect_package(no_qemu, "qemu-system-x86", "tpmlab-no-such-qemu-system");

  config.binary = "/bin/true";  // found: the checks after it run
  QemuConfig no_ovmf = config;
  no_ovmf.ovmf_code = "/usr/share/OVMF/tpmlab-absent_CODE.fd";
  expect_package(no_ovmf, "ovmf", "tpmlab-absent_CODE.fd");
  QemuConfig no_vars = config;
  no_vars.ovmf_vars = dir.path / "absent_VARS.fd";
  expect_package(no_vars, "ovmf", "absent_VARS.fd");
  QemuConfig no_kernel = config;
  no_kernel.kernel = "/boot/tpmlab-absent-vmlinuz";
  expect_package(no_kernel, "linux-image-cloud-amd64", "tpmlab-absent-vmlinuz");
  // A whole firmware chip as the one pflash (a bench's flash: chip) instead of code + vars.
  QemuConfig no_chip = config;
  no_chip.ovmf_code.clear();
  no_chip.ovmf_vars.clear();
  no_chip.flash_chip = dir.path / "absent-chip.bin";
  expect_package(no_chip, "ovmf", "absent-chip.bin");

  // Everything there but no swtpm listening: an emulator error, not a package.
  auto no_swtpm = QemuProcess::Launch(config);
  BOOST_REQUIRE(!no_swtpm.ok());
  BOOST_CHECK(no_swtpm.status().kind() == ErrorKind::kEmulator);
  BOOST_CHECK_NE(no_swtpm.status().message().find("ctrl.sock"), std::string::npos);
}

namespace {

// Forks a stand-in for tpmlab that spawns `sleep 60` and then is SIGKILLed;
// returns the sleep's pid.
pid_t SpawnSleepAndKillParent(bool die_with_parent, const fs::path& log) {
  int pipe_fds[2];
  BOOST_REQUIRE_EQUAL(::pipe(pipe_fds), 0);
  pid_t parent = ::fork();
  BOOST_REQUIRE_GE(parent, 0);
  if (parent == 0) {
    ChildProcess::Options options;
    options.die_with_parent = die_with_parent;
    auto child = ChildProcess::Spawn({"sleep", "60"}, log, options);
    pid_t pid = child.ok() ? child->pid() : -1;
    ssize_t ignored = ::write(pipe_fds[1], &pid, sizeof pid);
    (void)ignored;
    for (;;) ::pause();
  }
  pid_t sleeper = -1;
  BOOST_REQUIRE_EQUAL(::read(pipe_fds[0], &sleeper, sizeof sleeper), static_cast<ssize_t>(sizeof sleeper));
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  ::kill(parent, SIGKILL);
  ::waitpid(parent, nullptr, 0);
  return sleeper;
}

// Ended: no such process, or a zombie its new parent has not reaped yet.
bool Ended(pid_t pid) {
  if (::kill(pid, 0) != 0) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto paren = text.rfind(')');
  return paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] == 'Z';
}

bool GoneWithin(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (Ended(pid)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

}  // namespace

// QEMU and its swtpm are spawned this way: a SIGKILLed tpmlab leaves no orphan.
BOOST_AUTO_TEST_CASE(children_spawned_to_die_with_parent_do_not_outlive_it) {
  TempDir dir;
  pid_t bound = SpawnSleepAndKillParent(true, dir.path / "bound.log");
  BOOST_REQUIRE_GT(bound, 0);
  BOOST_CHECK(GoneWithin(bound, std::chrono::milliseconds(10000)));

  // The control: without the option the orphan lives on (then we end it).
  pid_t orphan = SpawnSleepAndKillParent(false, dir.path / "orphan.log");
  BOOST_REQUIRE_GT(orphan, 0);
  BOOST_CHECK(!GoneWithin(orphan, std::chrono::milliseconds(300)));
  ::kill(orphan, SIGKILL);
}
