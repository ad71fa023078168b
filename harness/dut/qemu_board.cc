// The QEMU + OVMF board: launching it, booting it to the agent's hello (and
// saying where a boot stopped when it does not get there), and its power
// cycles mapped to what a real platform does.
#include "harness/qemu_board.h"

#include <dlfcn.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <system_error>

#include "drivers/agent_transport.h"
#include "drivers/flash.h"
#include "drivers/process.h"
#include "drivers/qemu.h"
#include "drivers/swtpm.h"
#include "harness/platform_flash.h"

namespace tpmlab {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr milliseconds kAgentReply{60000};   // a log read or a power request
constexpr milliseconds kSuspendTimeout{60000};

Status Missing(const std::string& what, const std::string& package) {
  return Status::Error(Layer::kHarness, what + ": install the Debian package " + package)
      .WithKind(ErrorKind::kMissingPackage);
}

// tpmlab's console on ttyS0, the agent's channel on ttyS1, and the bench's own words.
std::string KernelCommandLine(const BenchBoard& board) {
  return "console=ttyS0,115200 tpmlab.channel=/dev/ttyS1 panic=0 " + board.cmdline;
}

milliseconds Since(Clock::time_point t) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - t);
}

// swtpm's log at level 20 holds every command and response it handled, in
// hex after "SWTPM_IO_Read:" / "SWTPM_IO_Write:"; the board's bus trace is
// read back from it.
std::vector<BusCommand> ParseSwtpmIo(const std::string& text) {
  std::vector<BusCommand> commands;
  std::istringstream lines(text);
  std::string line;
  Bytes* into = nullptr;
  bool control = false;  // the line after "Ctrl Cmd:" holds the control command's code
  while (std::getline(lines, line)) {
    if (line.find("Ctrl Cmd:") != std::string::npos) {
      control = true;
      into = nullptr;
      continue;
    }
    if (control) {
      control = false;
      if (line.rfind(" 00 00 00 02", 0) == 0) commands.push_back({{}, {}, /*tpm_init=*/true});  // CMD_INIT
      continue;
    }
    if (line.find("SWTPM_IO_Read:") != std::string::npos) {
      commands.emplace_back();
      into = &commands.back().command;
      continue;
    }
    if (line.find("SWTPM_IO_Write:") != std::string::npos && !commands.empty()) {
      into = &commands.back().response;
      continue;
    }
    if (!into) continue;
    std::istringstream hex(line);
    std::string byte;
    bool any = false;
    while (hex >> byte) {
      if (byte.size() != 2 || !std::isxdigit(static_cast<unsigned char>(byte[0])) ||
          !std::isxdigit(static_cast<unsigned char>(byte[1]))) {
        any = false;
        break;
      }
      into->push_back(static_cast<uint8_t>(std::stoul(byte, nullptr, 16)));
      any = true;
    }
    if (!any) into = nullptr;
  }
  return commands;
}

class QemuBoard final : public Board {
 public:
  QemuBoard(const Bench& bench, QemuBoardOptions options, fs::path kernel, fs::path initrd, fs::path tpm_state)
      : bench_(bench), board_(*bench.board), options_(std::move(options)), kernel_(std::move(kernel)),
        initrd_(std::move(initrd)), tpm_state_(std::move(tpm_state)),
        agent_(std::make_unique<AgentClient>(nullptr)) {}
  ~QemuBoard() override { Close(); }

  AgentClient& agent() { return *agent_; }

  Status SelectInitial() {
    if (bench_.flash) {
      TRY(PrepareChip());
      return SelectFirmware(options_.firmware.empty() ? bench_.flash->default_image : options_.firmware);
    }
    const std::string name = options_.firmware.empty() ? board_.default_image : options_.firmware;
    return SelectFirmware(name);
  }

  Status Boot() override {
    (void)TakeBusCommands();  // what came before this boot is not its traffic
    if (qemu_ && qemu_->alive()) {
      // Already up: a cold boot is an orderly power-off, then power on.
      TRY(PowerOffInOrder());
    }
    return LaunchAndWait();
  }

  Status PowerCycle(PowerCycleKind kind) override {
    if (const std::string why = Refuses(kind); !why.empty()) return Status::Error(Layer::kScenario, why);
    (void)TakeBusCommands();  // the harness's own commands until now
    if (!qemu_ || !qemu_->alive()) return LaunchAndWait();
    switch (kind) {
      case PowerCycleKind::kReset:
        // A new image is new flash: the board powers off and on to take it.
        if (image_changed_) {
          TRY(PowerOffInOrder());
          return LaunchAndWait();
        }
        TRY(agent_->RequestPower(AgentPowerAction::kReboot, kAgentReply));
        return WaitForAgent("reboot", /*resume=*/false);
      case PowerCycleKind::kResume: {
        TRY(agent_->RequestPower(AgentPowerAction::kSuspend, kAgentReply));
        Status suspended = qemu_->WaitStatus("suspended", kSuspendTimeout);
        if (!suspended.ok()) return Explain(suspended.Wrap("suspend to RAM"));
        const auto woken = Clock::now();
        TRY(qemu_->SystemWakeup());
        Status back = WaitForAgent("resume", /*resume=*/true);
        times_.total = Since(woken);
        return back;
      }
      case PowerCycleKind::kPowerLoss:
        if (image_changed_) return HardLoss();
        TRY(qemu_->SystemReset());
        return WaitForAgent("system_reset", /*resume=*/false);
      case PowerCycleKind::kHardLoss:
        return HardLoss();
      case PowerCycleKind::kRestart:
        break;
    }
    return Status::Error(Layer::kScenario, Refuses(kind));
  }

  std::string Refuses(PowerCycleKind kind) const override {
    if (kind == PowerCycleKind::kRestart) {
      return "bench '" + bench_.name + "' is a QEMU board: a restart (Shutdown(STATE), then Startup(CLEAR)) is a "
             "resume from hibernation, which its initramfs-only Linux cannot do (no swap to hibernate to)";
    }
    return "";
  }

  Result<Bytes> ReadEventLog() override {
    auto log = agent_->ReadEventLog(kAgentReply);
    if (!log.ok()) return Explain(log.status().Wrap("reading the firmware event log through tpmlab-agent"));
    return log;
  }

  Status SelectFirmware(const std::string& name) override {
    if (bench_.flash) {
      // Written with flashrom while the board is off: at the next cold boot
      // or power cycle (LaunchAndWait), so the chip is never written under a
      // running firmware and the harness keeps its TPM until then.
      const FlashImage* image = bench_.flash->Image(name);
      if (!image) {
        return Status::Error(Layer::kScenario, "bench '" + bench_.name + "' has no flash image '" + name +
                                                   "' (flash.images: " + bench_.flash->ImageNames() + ")");
      }
      pending_flash_ = image;
      image_changed_ = true;
      return Status::Ok();
    }
    const BoardImage* image = board_.Image(name);
    if (!image) {
      return Status::Error(Layer::kScenario, "bench '" + bench_.name + "' has no firmware image '" + name +
                                                 "' (it has: " + board_.ImageNames() + ")");
    }
    if (image_ && image_->name == name) return Status::Ok();
    for (const fs::path& file : {image->code, image->vars}) {
      if (::access(file.c_str(), R_OK) != 0) {
        return Missing("firmware image '" + name + "': cannot read " + file.string(), "ovmf");
      }
    }
    // Each image starts from its own variable store template, as a board's
    // flash would after an update that resets setup.
    std::error_code ec;
    const fs::path vars = options_.work_dir / ("vars-" + name + ".fd");
    fs::copy_file(image->vars, vars, fs::copy_options::overwrite_existing, ec);
    if (ec) return Status::Error(Layer::kHarness, "cannot copy " + image->vars.string() + " to " + vars.string() + ": " + ec.message());
    image_changed_ = image_ != nullptr;
    image_ = image;
    vars_ = vars;
    return Status::Ok();
  }

  std::vector<BusCommand> TakeBusCommands() override {
    std::vector<BusCommand> taken = std::exchange(pending_bus_, {});
    if (!swtpm_) return taken;
    std::ifstream in(swtpm_->log_file(), std::ios::binary);
    in.seekg(static_cast<std::streamoff>(swtpm_log_offset_));
    std::ostringstream text;
    text << in.rdbuf();
    const std::string s = text.str();
    // Only whole lines: the emulator may be writing the last one.
    const size_t end = s.rfind('\n');
    if (end == std::string::npos) return {};
    swtpm_log_offset_ += end + 1;
    for (BusCommand& c : ParseSwtpmIo(s.substr(0, end + 1))) taken.push_back(std::move(c));
    return taken;
  }

  BootTimes last_boot() const override { return times_; }

  nlohmann::json Describe() const override {
    nlohmann::json j = {{"machine", board_.machine},
                        {"tpm_interface", board_.tpm_interface},
                        {"memory_mb", board_.memory_mb},
                        {"kernel", kernel_.string()},
                        {"initramfs", initrd_.string()},
                        {"firmware", image_ ? image_->name : flashed_ ? flashed_->name : ""},
                        {"boot_ms", {{"firmware", times_.firmware.count()}, {"kernel", times_.kernel.count()},
                                     {"agent", times_.agent.count()}, {"total", times_.total.count()}}}};
    if (image_) j["firmware_images"] = {{"code", image_->code.string()}, {"vars", image_->vars.string()}, {"smm", image_->smm}};
    if (bench_.flash) {
      nlohmann::json parts = nlohmann::json::array();
      if (flashed_) {
        for (const auto& p : flashed_->parts) parts.push_back(p.string());
      }
      j["firmware_images"] = {{"chip", chip_.string()}, {"programmer", chip_programmer_},
                              {"image", flashed_ ? flashed_->name : ""}, {"parts", parts},
                              {"smm", flashed_ && flashed_->smm},
                              {"pending", pending_flash_ ? pending_flash_->name : ""}};
      j["flashes"] = flashes_;
    }
    if (qemu_) j["accel"] = qemu_->accel();
    if (!hello_.raw.empty()) {
      j["agent"] = {{"version", hello_.version}, {"kernel", hello_.kernel}, {"tpm", hello_.tpm},
                    {"log_size", hello_.log_size}, {"boot_id", hello_.boot_id}};
    }
    return j;
  }

  Status Health() override {
    if (qemu_) TRY(Explain(qemu_->CheckAlive()));
    return Status::Ok();
  }

  void Close() override {
    if (closed_) return;
    closed_ = true;
    // A board is left as a user leaves a machine: powered off by its OS, so
    // the kernel sends Shutdown(CLEAR) and the chip is orderly.
    if (qemu_ && qemu_->alive()) (void)PowerOffInOrder();
    qemu_.reset();
    swtpm_.reset();
  }

 private:
  Status LaunchSwtpm() {
    // What the last emulator saw (the OS's Shutdown before a power-off) is
    // still this cycle's traffic.
    for (BusCommand& c : TakeBusCommands()) pending_bus_.push_back(std::move(c));
    swtpm_.reset();
    SwtpmConfig config;
    config.state_dir = tpm_state_;
    config.qemu_ctrl_socket = options_.work_dir / "swtpm-ctrl.sock";
    config.log_level = 20;  // every command in hex: the board's bus trace
    TRY_ASSIGN(swtpm_, SwtpmProcess::Launch(config));
    swtpm_log_offset_ = 0;
    if (std::error_code ec; fs::exists(swtpm_->log_file(), ec)) swtpm_log_offset_ = fs::file_size(swtpm_->log_file(), ec);
    return Status::Ok();
  }

  // The bench's chip file, or the run's copy of it (so a run never changes
  // the bench's files); the programmer string then names the copy.
  Status PrepareChip() {
    const BenchFlash& flash = *bench_.flash;
    const fs::path bench_chip = *flash.chip_file();
    if (flash.in_place) {
      chip_ = bench_chip;
      chip_programmer_ = flash.programmer;
      return Status::Ok();
    }
    chip_ = options_.work_dir / "flash-chip.bin";
    chip_programmer_ = WithProgrammerParam(flash.programmer, "image", chip_.string());
    std::error_code ec;
    fs::remove(chip_, ec);
    if (!fs::exists(bench_chip, ec)) return Status::Ok();  // a new chip: erased until the first flash
    const uint64_t size = fs::file_size(bench_chip, ec);
    if (size != DummyChipSize(flash.programmer).value_or(size)) {
      return Status::Error(Layer::kScenario, flash.where.ToString() + ": the chip file " + bench_chip.string() + " is " +
                                                 std::to_string(size) + " bytes, not the emulated chip's " +
                                                 std::to_string(*DummyChipSize(flash.programmer)))
          .WithKind(ErrorKind::kBadInput);
    }
    fs::copy_file(bench_chip, chip_, fs::copy_options::overwrite_existing, ec);
    if (ec) return Status::Error(Layer::kHarness, "cannot copy " + bench_chip.string() + " to " + chip_.string() + ": " + ec.message());
    return Status::Ok();
  }

  // Writes the image SelectFirmware chose into the chip; the board is off.
  Status FlashPending() {
    FlashOptions flash_options;
    flash_options.programmer = chip_programmer_;
    const fs::path run_dir = options_.run_dir.empty() ? options_.work_dir.parent_path() : options_.run_dir;
    TRY_ASSIGN(FlashRecord record, FlashPlatformFirmware(bench_, pending_flash_->name, run_dir, flash_options));
    flashes_.push_back(record.ToJson());
    flashed_ = std::exchange(pending_flash_, nullptr);
    return Status::Ok();
  }

  Status LaunchAndWait() {
    qemu_.reset();
    if (pending_flash_) TRY(FlashPending());
    TRY(LaunchSwtpm());
    QemuConfig config;
    config.binary = board_.qemu;
    config.machine = board_.machine;
    if (bench_.flash) {
      config.smm = flashed_ && flashed_->smm;
      config.flash_chip = chip_;
    } else {
      config.smm = image_->smm;
      config.ovmf_code = image_->code;
      config.ovmf_vars = vars_;
    }
    config.tpm_interface = board_.tpm_interface;
    config.kernel = kernel_;
    config.initrd = initrd_;
    config.append = KernelCommandLine(board_);
    config.memory_mb = static_cast<int>(board_.memory_mb);
    config.accel = board_.accel;
    config.work_dir = options_.work_dir / "qemu";
    config.swtpm_ctrl_socket = options_.work_dir / "swtpm-ctrl.sock";
    std::error_code ec;
    fs::create_directories(config.work_dir, ec);
    console_offset_ = 0;
    if (fs::exists(config.work_dir / "console.log", ec)) console_offset_ = fs::file_size(config.work_dir / "console.log", ec);
    TRY_ASSIGN(qemu_, QemuProcess::Launch(config));
    image_changed_ = false;
    TRY_ASSIGN(auto channel, AgentChannel::ConnectUnix(qemu_->agent_socket(), milliseconds(10000)));
    agent_->Attach(std::move(channel));
    return WaitForAgent("power on", /*resume=*/false);
  }

  // Up to the agent's hello, watching the console for how far the boot got.
  Status WaitForAgent(const std::string& after, bool resume) {
    const auto start = Clock::now();
    const auto deadline = start + std::chrono::seconds(board_.boot_timeout_s);
    times_ = {};
    BootStage seen = BootStage::kNothing;
    Clock::time_point kernel_at{}, agent_at{};
    std::string console;
    while (true) {
      auto hello = agent_->WaitHello(milliseconds(100));  // a poll: the console says how far the boot got
      console += ReadConsoleFrom(qemu_->console_log(), console_offset_ + console.size());
      const BootStage now = BootStageFromConsole(console);
      if (now >= BootStage::kKernel && kernel_at == Clock::time_point{}) kernel_at = Clock::now();
      if (now >= BootStage::kAgent && agent_at == Clock::time_point{}) agent_at = Clock::now();
      seen = std::max(seen, now);
      if (times_.startup_seen == Clock::time_point{} && StartupSent()) times_.startup_seen = Clock::now();
      if (hello.ok()) {
        if (resume && hello->reason != "resume") continue;  // a stale one
        hello_ = *hello;
        const auto done = Clock::now();
        times_.total = Since(start);
        if (kernel_at != Clock::time_point{}) {
          times_.firmware = std::chrono::duration_cast<milliseconds>(kernel_at - start);
          if (agent_at != Clock::time_point{}) {
            times_.kernel = std::chrono::duration_cast<milliseconds>(agent_at - kernel_at);
            times_.agent = std::chrono::duration_cast<milliseconds>(done - agent_at);
          }
        }
        console_offset_ += console.size();
        if (!hello->tpm_error.empty()) {
          return Status::Error(Layer::kTransport, "the board booted but tpmlab-agent cannot open its TPM: " + hello->tpm_error);
        }
        return Status::Ok();
      }
      if (!hello.status().timed_out()) return Explain(hello.status().Wrap("after " + after));
      if (Status alive = qemu_->CheckAlive(); !alive.ok()) return alive.Wrap("QEMU ended during the boot after " + after);
      if (Clock::now() >= deadline) {
        console_offset_ += console.size();
        const std::string tail = TailLines(console, 8);
        return Status::Timeout("no hello from tpmlab-agent within " + std::to_string(board_.boot_timeout_s) +
                                 " s after " + after + ": the boot stopped in " + StoppedIn(seen, resume) +
                                 (tail.empty() ? " (the console printed nothing)" : "; console:\n" + tail));
      }
    }
  }

  // Whether the firmware sent TPM2_Startup since the bus trace was last taken
  // (its header in swtpm's hex log; the log is only read, not taken).
  bool StartupSent() const {
    if (!swtpm_) return false;
    std::ifstream in(swtpm_->log_file(), std::ios::binary);
    in.seekg(static_cast<std::streamoff>(swtpm_log_offset_));
    std::ostringstream text;
    text << in.rdbuf();
    return text.str().find("80 01 00 00 00 0C 00 00 01 44") != std::string::npos;
  }

  static std::string StoppedIn(BootStage seen, bool resume) {
    if (resume) return "the resume (the firmware or kernel did not wake the agent)";
    switch (seen) {
      case BootStage::kNothing: return "the firmware";
      case BootStage::kFirmware: return "the firmware (it never started the kernel)";
      case BootStage::kKernel: return "the kernel (the agent never started)";
      case BootStage::kAgent: return "the agent (it started but never served its channel)";
      case BootStage::kServing: return "the agent's channel (it serves, but its hello never arrived)";
    }
    return "an unknown stage";
  }

  // The last `lines` lines of `text` (the console may end mid-line).
  static std::string TailLines(const std::string& text, size_t lines) {
    size_t start = text.size();
    for (size_t n = 0; n < lines && start > 0; ++n) {
      const size_t nl = text.rfind('\n', start - 1 > 0 && text[start - 1] == '\n' ? start - 2 : start - 1);
      if (nl == std::string::npos) return text;
      start = nl;
    }
    return start < text.size() && text[start] == '\n' ? text.substr(start + 1) : text.substr(start);
  }

  // An error from the agent or QMP, with how QEMU ended if it did.
  Status Explain(Status error) {
    if (error.ok() || !qemu_) return error;
    if (Status alive = qemu_->CheckAlive(); !alive.ok()) return error.Wrap(alive.message());
    return error;
  }

  Status PowerOffInOrder() {
    Status asked = agent_->RequestPower(AgentPowerAction::kPowerOff, kAgentReply);
    // QEMU ends when the guest powers off (and swtpm with it); a board whose
    // agent did not answer is switched off at the wall.
    if (!asked.ok() || !qemu_->WaitStatus("shutdown", milliseconds(60000)).ok()) {
      qemu_->Kill();
    }
    qemu_->Quit();
    qemu_.reset();
    for (BusCommand& c : TakeBusCommands()) pending_bus_.push_back(std::move(c));
    swtpm_.reset();
    return Status::Ok();
  }

  Status HardLoss() {
    qemu_->Kill();
    qemu_.reset();
    if (swtpm_) swtpm_->Kill(SIGKILL);
    return LaunchAndWait();
  }

  const Bench& bench_;
  const BenchBoard& board_;
  QemuBoardOptions options_;
  fs::path kernel_, initrd_, tpm_state_;
  const BoardImage* image_ = nullptr;
  fs::path vars_;
  // A bench flash: chip: the file QEMU boots as its one pflash, the image in
  // it, the one to write at the next power on, and what each flash did.
  fs::path chip_;
  std::string chip_programmer_;
  const FlashImage* flashed_ = nullptr;
  const FlashImage* pending_flash_ = nullptr;
  nlohmann::json flashes_ = nlohmann::json::array();
  bool image_changed_ = false;
  std::unique_ptr<SwtpmProcess> swtpm_;
  std::unique_ptr<QemuProcess> qemu_;
  std::unique_ptr<AgentClient> agent_;
  AgentHello hello_;
  BootTimes times_;
  uint64_t console_offset_ = 0;
  uint64_t swtpm_log_offset_ = 0;
  std::vector<BusCommand> pending_bus_;  // taken from an emulator since replaced
  bool closed_ = false;
};

// The kernel the board boots: Debian's, with the bench's test signature added
// when its Secure Boot images need one.
Result<fs::path> PrepareKernel(const BenchBoard& board, const fs::path& dir) {
  TRY_ASSIGN(fs::path kernel, BoardKernel(board));
  if (::access(kernel.c_str(), R_OK) != 0) {
    return Status::Error(Layer::kHarness, "cannot read the kernel " + kernel.string() + " (it is root's: run as root)");
  }
  if (!board.sign_key) return kernel;
  if (!FindProgram("sbsign")) return Missing("signing the board's kernel needs sbsign", "sbsigntool");
  const fs::path key = dir / "kernel-signing.key", signed_kernel = dir / ("signed-" + kernel.filename().string());
  std::vector<std::string> decrypt = {"openssl", "pkey", "-in", board.sign_key->string(), "-out", key.string()};
  if (!board.sign_key_password.empty()) {
    decrypt.push_back("-passin");
    decrypt.push_back("pass:" + board.sign_key_password);
  }
  TRY_ASSIGN(int rc, RunProgram(decrypt, dir / "sign.log", milliseconds(30000)));
  if (rc != 0) return Status::Error(Layer::kHarness, "cannot read the signing key " + board.sign_key->string() + ": " + FileTail(dir / "sign.log", 5));
  TRY_ASSIGN(rc, RunProgram({"sbsign", "--key", key.string(), "--cert", board.sign_cert->string(), "--output",
                             signed_kernel.string(), kernel.string()},
                            dir / "sign.log", milliseconds(60000)));
  std::error_code ec;
  fs::remove(key, ec);
  if (rc != 0) return Status::Error(Layer::kHarness, "sbsign failed on " + kernel.string() + ": " + FileTail(dir / "sign.log", 5));
  return signed_kernel;
}

}  // namespace

Result<fs::path> FindAgentBinary() {
  if (const char* env = std::getenv("TPMLAB_AGENT"); env && *env) {
    if (::access(env, X_OK) == 0) return fs::path(env);
    return Status::Error(Layer::kHarness, std::string("TPMLAB_AGENT=") + env + " is not an executable file");
  }
  // Beside the running program (the tpmlab command), or beside the binary
  // holding this code (the Python package's extension module).
  std::vector<fs::path> homes;
  std::error_code ec;
  if (fs::path exe = fs::read_symlink("/proc/self/exe", ec); !ec) homes.push_back(exe.parent_path());
  Dl_info self_info{};
  if (::dladdr(reinterpret_cast<void*>(&FindAgentBinary), &self_info) && self_info.dli_fname) {
    if (fs::path lib = fs::canonical(self_info.dli_fname, ec); !ec) homes.push_back(lib.parent_path());
  }
  for (const fs::path& home : homes) {
    for (const fs::path& candidate : {home / "tpmlab-agent", home.parent_path() / "libexec" / "tpmlab" / "tpmlab-agent"}) {
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
  }
  if (auto found = FindProgram("tpmlab-agent")) return *found;
  return Status::Error(Layer::kHarness, "tpmlab-agent not found (beside " +
                                            (homes.empty() ? std::string("tpmlab") : homes.front().string()) +
                                            ", in ../libexec/tpmlab or on PATH): build or install tpmlab whole, or set TPMLAB_AGENT")
      .WithKind(ErrorKind::kMissingPackage);
}

Result<BoardKit> WriteBoardKit(const Bench& bench, const fs::path& dir_in, const std::vector<std::string>& banks) {
  if (!bench.board) return Status::Error(Layer::kScenario, "bench '" + bench.name + "' has no board: section");
  const fs::path dir = fs::absolute(dir_in);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::Error(Layer::kStore, "cannot create " + dir.string() + ": " + ec.message());
  BoardKit kit;
  TRY_ASSIGN(kit.kernel, PrepareKernel(*bench.board, dir));
  TRY_ASSIGN(fs::path agent, FindAgentBinary());
  kit.initramfs = dir / "initramfs.cpio";
  TRY(WriteInitramfs(kit.initramfs, {{"dev", InitramfsEntry::kDir, "", 0755},
                                     {"dev/console", InitramfsEntry::kCharDev, "", 0600, 5, 1},
                                     {"init", InitramfsEntry::kFile, agent.string(), 0755},
                                     {"proc", InitramfsEntry::kDir, "", 0755},
                                     {"sys", InitramfsEntry::kDir, "", 0755}}));
  // The chip, manufactured as every emulated DUT's is.
  kit.tpm_state = dir / "tpm";
  if (!SwtpmStateExists(kit.tpm_state)) {
    ProvisionOptions provision;
    provision.banks = banks;
    TRY(ProvisionSwtpmState(kit.tpm_state, provision));
  }
  kit.append = KernelCommandLine(*bench.board);
  return kit;
}

Result<OpenedBoard> OpenQemuBoard(const Bench& bench, const QemuBoardOptions& options_in) {
  if (!bench.board) return Status::Error(Layer::kHarness, "bench '" + bench.name + "' has no board");
  const BenchBoard& board = *bench.board;
  QemuBoardOptions options = options_in;
  options.work_dir = fs::absolute(options.work_dir);
  std::error_code ec;
  fs::create_directories(options.work_dir, ec);
  if (ec) return Status::Error(Layer::kStore, "cannot create " + options.work_dir.string() + ": " + ec.message());
  if (!FindProgram(board.qemu)) return Missing(board.qemu + " not found", "qemu-system-x86");
  TRY_ASSIGN(BoardKit kit, WriteBoardKit(bench, options.work_dir, options.banks));
  auto qemu_board = std::make_unique<QemuBoard>(bench, options, kit.kernel, kit.initramfs, kit.tpm_state);
  TRY(qemu_board->SelectInitial());
  OpenedBoard opened;
  opened.transport = std::make_unique<AgentTransport>(qemu_board->agent(), "tpmlab-agent on " + bench.name);
  opened.board = std::move(qemu_board);
  return opened;
}

}  // namespace tpmlab
