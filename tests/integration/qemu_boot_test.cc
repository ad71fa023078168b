// The QEMU driver on a real board: swtpm (QEMU mode) + QEMU + OVMF + the
// cloud kernel booting an initramfs whose /init (qemu/test_init.cc) prints
// PCR 0 and powers off. Two boots in one QEMU: the launch, then a QMP
// system_reset from the powered-off state. Then Quit: nothing is left running.
#define BOOST_TEST_MODULE qemu_boot_test
#include <signal.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <regex>

#include "drivers/qemu.h"
#include "drivers/swtpm.h"
#include "needs.h"

namespace fs = std::filesystem;
using namespace tpmlab;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

const fs::path kOvmfCode = "/usr/share/OVMF/OVMF_CODE_4M.fd";
const fs::path kOvmfVars = "/usr/share/OVMF/OVMF_VARS_4M.fd";

// The newest cloud kernel in /boot; the glob itself when there is none (the
// precondition then names it as absent).
fs::path CloudKernel() {
  fs::path newest = "/boot/vmlinuz-*-cloud-amd64";
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/boot", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("vmlinuz-", 0) == 0 && name.size() > 12 &&
        name.compare(name.size() - 12, 12, "-cloud-amd64") == 0 && entry.path() > newest) {
      newest = entry.path();
    }
  }
  return newest;
}

fs::path QemuBinary() {
  auto found = FindProgram("qemu-system-x86_64");
  return found ? *found : fs::path("/usr/bin/qemu-system-x86_64");
}

#define EXPECT_OK(expr)                                              \
  do {                                                               \
    ::tpmlab::Status expect_ok_ = ::tpmlab::internal::AsStatus(expr); \
    BOOST_REQUIRE_MESSAGE(expect_ok_.ok(), expect_ok_.ToString());   \
  } while (0)

bool PidAlive(pid_t pid) { return pid > 0 && ::kill(pid, 0) == 0; }

struct BootSeen {
  double firmware_s = -1, kernel_s = -1, init_s = -1, off_s = -1;
  std::string pcr0;
};

// Follows one boot on the console from `offset` until the guest powers off
// (the SHUTDOWN event), noting when each stage first shows.
BootSeen FollowBoot(QemuProcess& qemu, uint64_t offset, milliseconds timeout) {
  BootSeen seen;
  const auto start = Clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  for (;;) {
    const std::string text = ReadConsoleFrom(qemu.console_log(), offset);
    const BootStage stage = BootStageFromConsole(text);
    if (seen.firmware_s < 0 && stage >= BootStage::kFirmware) seen.firmware_s = seconds();
    if (seen.kernel_s < 0 && stage >= BootStage::kKernel) seen.kernel_s = seconds();
    if (seen.init_s < 0 && text.find("tpmlab-qemu-test: init started") != std::string::npos) seen.init_s = seconds();
    Status off = qemu.WaitEvent("SHUTDOWN", milliseconds(50));
    if (off.ok()) {
      seen.off_s = seconds();
      std::smatch match;
      const std::string all = ReadConsoleFrom(qemu.console_log(), offset);
      if (std::regex_search(all, match, std::regex("tpmlab-qemu-test: pcr0=([0-9A-Fa-f]+|none)"))) {
        seen.pcr0 = match[1];
      }
      BOOST_TEST_MESSAGE("boot: firmware " << seen.firmware_s << " s, kernel " << seen.kernel_s << " s, /init "
                                           << seen.init_s << " s, powered off " << seen.off_s << " s");
      BOOST_REQUIRE_MESSAGE(BootStageFromConsole(all) >= BootStage::kKernel,
                            "boot stopped at " << BootStageName(BootStageFromConsole(all)));
      return seen;
    }
    BOOST_REQUIRE_MESSAGE(off.timed_out(), off.ToString());
    BOOST_REQUIRE_MESSAGE(Clock::now() - start < timeout,
                          "no power-off within " << timeout.count() << " ms; the boot reached "
                                                 << BootStageName(stage) << "; console tail:\n"
                                                 << text.substr(text.size() > 2000 ? text.size() - 2000 : 0));
  }
}

}  // namespace

// swtpm in QEMU mode without QEMU: only the control socket, state paths made
// absolute (a relative one fails CMD_INIT with 0x9), CMD_INIT as QEMU sends
// it, and a relaunch on the same state after a hard kill.
BOOST_AUTO_TEST_CASE(swtpm_qemu_mode_serves_the_control_socket_only) {
  char tmpl[] = "/tmp/tpmlab-swtpm-qemu-XXXXXX";
  BOOST_REQUIRE(::mkdtemp(tmpl) != nullptr);
  const fs::path root = tmpl;
  const fs::path cwd = fs::current_path();
  fs::current_path(root);  // the folders below are given relative
  SwtpmConfig config;
  config.state_dir = "tpm";
  config.qemu_ctrl_socket = "ctrl.sock";
  auto launched = SwtpmProcess::Launch(config);
  fs::current_path(cwd);
  EXPECT_OK(launched.status());
  std::unique_ptr<SwtpmProcess> swtpm = std::move(*launched);
  BOOST_TEST(swtpm->qemu_mode());
  BOOST_TEST(swtpm->config().state_dir == root / "tpm");
  BOOST_TEST(swtpm->ctrl_endpoint().path == (root / "ctrl.sock").string());
  BOOST_TEST(!swtpm->data_endpoint().is_unix());
  BOOST_TEST(swtpm->data_endpoint().port == 0);
  BOOST_TEST(fs::is_socket(root / "ctrl.sock"));
  EXPECT_OK(swtpm->control().Init());

  const pid_t first = swtpm->pid();
  swtpm->Kill(SIGKILL);
  BOOST_TEST(!PidAlive(first));
  EXPECT_OK(swtpm->Relaunch());
  EXPECT_OK(swtpm->control().Init());
  // CMD_SHUTDOWN (what QEMU sends on quit) ends it.
  EXPECT_OK(swtpm->control().Shutdown());
  BOOST_TEST(swtpm->EndedWithin(milliseconds(10000)));
  swtpm.reset();
  std::error_code ignored;
  fs::remove_all(root, ignored);
}

BOOST_AUTO_TEST_CASE(boots_ovmf_measures_into_swtpm_resets_and_quits_cleanly,
                     TPMLAB_NEEDS("qemu", kOvmfCode) *
                         boost::unit_test::precondition(tpmlab::test::PathPresent{kOvmfVars}) *
                         boost::unit_test::precondition(tpmlab::test::PathPresent{CloudKernel()}) *
                         boost::unit_test::precondition(tpmlab::test::PathPresent{QemuBinary()})) {
  char tmpl[] = "/tmp/tpmlab-qemu-boot-XXXXXX";
  BOOST_REQUIRE(::mkdtemp(tmpl) != nullptr);
  const fs::path root = tmpl;

  // The initramfs: /init is the static test program; the console node lets
  // the kernel open /dev/console for it.
  const std::vector<InitramfsEntry> entries = {
      {"dev", InitramfsEntry::kDir, "", 0755},
      {"dev/console", InitramfsEntry::kCharDev, "", 0600, 5, 1},
      {"init", InitramfsEntry::kFile, TPMLAB_QEMU_TEST_INIT, 0755},
      {"sys", InitramfsEntry::kDir, "", 0755},
  };
  EXPECT_OK(WriteInitramfs(root / "initrd.cpio", entries));

  EXPECT_OK(ProvisionSwtpmState(root / "tpm", ProvisionOptions{}));
  SwtpmConfig swtpm_config;
  swtpm_config.state_dir = root / "tpm";
  swtpm_config.qemu_ctrl_socket = root / "swtpm-ctrl.sock";
  swtpm_config.log_level = 5;  // its log shows every control command QEMU sends
  auto swtpm_launched = SwtpmProcess::Launch(swtpm_config);
  EXPECT_OK(swtpm_launched.status());
  std::unique_ptr<SwtpmProcess> swtpm = std::move(*swtpm_launched);

  fs::copy_file(kOvmfVars, root / "OVMF_VARS.fd");
  QemuConfig config;
  config.ovmf_code = kOvmfCode;
  config.ovmf_vars = root / "OVMF_VARS.fd";
  config.kernel = CloudKernel();
  config.initrd = root / "initrd.cpio";
  config.append = "console=ttyS0 panic=-1";
  config.work_dir = root / "qemu";
  config.swtpm_ctrl_socket = swtpm_config.qemu_ctrl_socket;
  const auto launched_at = Clock::now();
  auto launched = QemuProcess::Launch(config);
  EXPECT_OK(launched.status());
  std::unique_ptr<QemuProcess> qemu = std::move(*launched);
  BOOST_TEST_MESSAGE("accel " << qemu->accel() << "; QMP up after "
                              << std::chrono::duration<double>(Clock::now() - launched_at).count() << " s");
  BOOST_TEST((qemu->accel() == "tcg" || qemu->accel() == "kvm"));
  auto status = qemu->QueryStatus();
  EXPECT_OK(status.status());
  BOOST_TEST((*status == "running" || *status == "shutdown"), *status);

  // Boot 1: firmware, kernel, our /init with a PCR 0 the firmware extended.
  BootSeen first = FollowBoot(*qemu, 0, milliseconds(240000));
  const std::string console1 = ReadConsoleFrom(qemu->console_log(), 0);
  BOOST_TEST(first.firmware_s >= 0, "no firmware output on the console");
  BOOST_TEST(console1.find("Linux version") != std::string::npos);
  BOOST_TEST(console1.find("tpmlab-qemu-test: init started") != std::string::npos);
  BOOST_REQUIRE_MESSAGE(first.pcr0.size() == 64, "PCR 0 not printed: '" << first.pcr0 << "'");
  BOOST_TEST(first.pcr0 != std::string(64, '0'), "PCR 0 is all zeros: OVMF measured nothing");
  EXPECT_OK(qemu->WaitStatus("shutdown", milliseconds(10000)));

  // Boot 2: a QMP system_reset from the powered-off board. QEMU sends swtpm
  // CMD_INIT, so the same firmware measures into fresh PCRs: the same PCR 0
  // (without the TPM reset it would be extended twice over).
  const uint64_t offset = qemu->console_size();
  EXPECT_OK(qemu->SystemReset());
  EXPECT_OK(qemu->WaitEvent("RESET", milliseconds(10000)));
  BootSeen second = FollowBoot(*qemu, offset, milliseconds(240000));
  BOOST_TEST(ReadConsoleFrom(qemu->console_log(), offset).find("tpmlab-qemu-test: init started") !=
             std::string::npos);
  BOOST_TEST(second.pcr0 == first.pcr0);
  EXPECT_OK(swtpm->CheckAlive());

  // Quit: QEMU sends CMD_SHUTDOWN, swtpm exits by itself; no process is left.
  const pid_t qemu_pid = qemu->pid();
  const pid_t swtpm_pid = swtpm->pid();
  qemu->Quit();
  BOOST_TEST(!qemu->alive());
  BOOST_TEST(swtpm->EndedWithin(milliseconds(10000)), "swtpm still runs after QEMU quit");
  BOOST_TEST(!PidAlive(qemu_pid));
  BOOST_TEST(!PidAlive(swtpm_pid));
  BOOST_TEST_MESSAGE("QEMU command line:");
  std::string line;
  for (const auto& arg : qemu->command_line()) line += arg + " ";
  BOOST_TEST_MESSAGE(line);

  qemu.reset();
  swtpm.reset();
  // TPMLAB_KEEP_QEMU_TEST=1 keeps the folder (console, QEMU and swtpm logs) to look at.
  if (std::getenv("TPMLAB_KEEP_QEMU_TEST") == nullptr) {
    std::error_code ignored;
    fs::remove_all(root, ignored);
  } else {
    BOOST_TEST_MESSAGE("kept " << root.string());
  }
}
