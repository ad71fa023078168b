// A whole machine as a Board: powering it, waiting for its agent's hello
// (and saying where a boot stopped when none comes), and its power cycles
// mapped to what the machine can do.
#include "harness/machine_board.h"

#include <signal.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

#include "drivers/agent_links.h"
#include "drivers/agent_transport.h"
#include "harness/platform_flash.h"

namespace tpmlab {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr milliseconds kAgentReply{60000};  // a log read or a power request
constexpr milliseconds kRetryPause{2000};   // between ssh attempts while a machine boots
constexpr milliseconds kProbeEvery{5000};   // HELLO_REQUEST on a console whose agent started before us

milliseconds Since(Clock::time_point t) { return std::chrono::duration_cast<milliseconds>(Clock::now() - t); }

std::string ReadFrom(const fs::path& file, uint64_t offset) {
  std::ifstream in(file, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(offset));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The printable tail of what a console said, for an error message.
std::string ConsoleTail(const std::string& bytes, size_t max_lines) {
  std::string text;
  for (char c : bytes) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n' || (u >= 0x20 && u < 0x7F)) text += c;
  }
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  std::string tail;
  for (size_t i = lines.size() > max_lines ? lines.size() - max_lines : 0; i < lines.size(); ++i) {
    tail += "\n  " + lines[i];
  }
  return tail;
}

class MachineBoard final : public Board {
 public:
  MachineBoard(const Bench& bench, fs::path work_dir, fs::path run_dir, std::unique_ptr<PowerControl> power)
      : bench_(bench), machine_(*bench.machine), work_dir_(std::move(work_dir)), run_dir_(std::move(run_dir)),
        power_(std::move(power)),
        agent_(std::make_unique<AgentClient>(nullptr)),
        off_time_(bench.power.off_ms ? milliseconds(bench.power.off_ms) : milliseconds(5000)) {
    target_.host = machine_.ssh_host;
    target_.user = machine_.ssh_user;
    target_.port = machine_.ssh_port;
    target_.options = machine_.ssh_options;
    target_.command = machine_.ssh_command;
  }
  ~MachineBoard() override { Close(); }

  AgentClient& agent() { return *agent_; }

  Status Boot() override {
    (void)TakeBusCommands();
    const auto start = Clock::now();
    const std::string before = hello_.boot_id;
    if (!power_) {
      // Nothing to switch: the machine is up (or coming up) by itself.
      already_up_ = true;
      // A session from an earlier boot step said its hello already: a new
      // one says it again (a console is asked instead).
      if (machine_.link == MachineLink::kSsh) DropLink();
      return WaitForAgent("connecting (power: none: the machine must be up by itself)", start, "", false);
    }
    already_up_ = false;
    return OffFlashOn("power on", start, before);
  }

  Status PowerCycle(PowerCycleKind kind) override {
    if (const std::string why = Refuses(kind); !why.empty()) return Status::Error(Layer::kScenario, why);
    const auto start = Clock::now();
    const std::string before = hello_.boot_id;
    // New firmware goes in while the machine is off, whatever the cycle:
    // a reboot or a BMC reset never takes the power away.
    if (!pending_flash_.empty()) {
      return OffFlashOn(std::string("the ") + PowerCycleKindName(kind) + " (off to flash new firmware)", start, before);
    }
    switch (kind) {
      case PowerCycleKind::kReset:
        // The OS reboots: its kernel sends Shutdown(CLEAR), the firmware Startup(CLEAR).
        TRY(Explain(agent_->RequestPower(AgentPowerAction::kReboot, kAgentReply).Wrap("asking the machine to reboot")));
        if (machine_.link == MachineLink::kSsh) DropLink();
        return WaitForAgent("the reboot", start, before, false);
      case PowerCycleKind::kResume:
        TRY(Explain(agent_->RequestPower(AgentPowerAction::kSuspend, kAgentReply).Wrap("asking the machine to suspend")));
        return WaitForAgent("the suspend", start, before, true);
      case PowerCycleKind::kPowerLoss:
        DropLink();
        if (Status cycled = power_->Cycle(PowerCut::kSoft); !cycled.ok()) return NoPower(cycled, "cycling it");
        return WaitForAgent("the power-loss", start, before, false);
      case PowerCycleKind::kHardLoss:
        return OffFlashOn("the hard-loss", start, before);
      case PowerCycleKind::kRestart:
        break;
    }
    return Status::Error(Layer::kScenario, Refuses(kind));
  }

  std::string Refuses(PowerCycleKind kind) const override { return MachineRefusesCycle(bench_, kind); }

  Result<Bytes> ReadEventLog() override {
    auto log = agent_->ReadEventLog(kAgentReply);
    if (!log.ok()) return Explain(log.status().Wrap("reading the firmware event log through tpmlab-agent"));
    return log;
  }

  Status SelectFirmware(const std::string& name) override {
    if (bench_.flash) {
      // Written with flashrom at the next power-off (OffFlashOn); flashrom
      // reads the chip first and leaves one that already holds it unwritten.
      if (!bench_.flash->Image(name)) {
        return Status::Error(Layer::kScenario, "bench '" + bench_.name + "' has no flash image '" + name +
                                                   "' (flash.images: " + bench_.flash->ImageNames() + ")");
      }
      pending_flash_ = name;
      firmware_ = name;
      return Status::Ok();
    }
    if (machine_.firmware.empty() || machine_.firmware == name) {
      firmware_ = name;
      return Status::Ok();
    }
    return Status::Error(Layer::kScenario, "bench '" + bench_.name + "' is a machine running firmware '" +
                                               machine_.firmware + "': tpmlab has no way to install '" + name +
                                               "' on it");
  }

  // A real machine's TPM bus is not observed: nothing to hand over.
  std::vector<BusCommand> TakeBusCommands() override { return {}; }

  BootTimes last_boot() const override { return times_; }

  nlohmann::json Describe() const override {
    nlohmann::json j = {{"machine", machine_.LinkDescription()},
                        {"power", PowerKindName(bench_.power.kind)},
                        {"firmware", machine_.firmware.empty() ? firmware_ : machine_.firmware},
                        {"already_up", already_up_},
                        {"connect_attempts", attempts_},
                        {"boot_ms", {{"agent", times_.agent.count()}, {"total", times_.total.count()}}},
                        {"bus_trace", "none: a real machine's TPM bus is not observed, so platform_commands "
                                      "stays empty (what the firmware measured is in its event log)"}};
    if (bench_.flash) {
      j["flash"] = {{"programmer", bench_.flash->programmer}, {"pending", pending_flash_}};
      j["flashes"] = flashes_;
    }
    if (!hello_.raw.empty()) {
      j["agent"] = {{"version", hello_.version}, {"kernel", hello_.kernel}, {"tpm", hello_.tpm},
                    {"log_size", hello_.log_size}, {"boot_id", hello_.boot_id}, {"uptime_ms", hello_.uptime_ms}};
    }
    return j;
  }

  Status Health() override {
    if (machine_.link == MachineLink::kSsh && ssh_ && !ssh_->ssh.running()) {
      return Status::Error(Layer::kTransport, "the ssh session to the machine ended (" + machine_.LinkDescription() +
                                                  "): " + SshSaid().line);
    }
    return Status::Ok();
  }

  // The machine is left running, as a user leaves a lab machine: only the link closes.
  void Close() override {
    if (closed_) return;
    closed_ = true;
    DropLink();
  }

 private:
  // Power off, write pending firmware, wait off_ms, power on, and wait for
  // the agent of the new boot.
  Status OffFlashOn(const std::string& what, Clock::time_point start, const std::string& before) {
    DropLink();
    if (Status off = power_->Off(PowerCut::kHard); !off.ok()) return NoPower(off, "switching it off");
    const auto off_since = Clock::now();
    if (!pending_flash_.empty()) {
      // The run folder is the board folder's parent (RUN/board).
      TRY_ASSIGN(FlashRecord record, FlashPlatformFirmware(bench_, pending_flash_, run_dir_));
      flashes_.push_back(record.ToJson());
      pending_flash_.clear();
    }
    if (const auto off_for = Clock::now() - off_since; off_for < off_time_) std::this_thread::sleep_for(off_time_ - off_for);
    if (Status on = power_->On(); !on.ok()) return NoPower(on, "switching it on");
    return WaitForAgent(what, start, before, false);
  }

  Status NoPower(const Status& failed, const std::string& doing) {
    return Status::Error(failed.layer(), "no power: the power switch (" + std::string(PowerKindName(bench_.power.kind)) +
                                             ") of bench '" + bench_.name + "' failed " + doing + ": " +
                                             failed.message())
        .WithKind(ErrorKind::kTransport);  // a run error (3), whatever layer the switch's was
  }

  SshDiagnosis SshSaid() const {
    if (!ssh_) return {};
    return DiagnoseSsh(ReadFrom(ssh_->stderr_log, ssh_->stderr_offset), ssh_->ssh.exit_code());
  }

  // An agent error, with how the ssh session ended when it did.
  Status Explain(Status error) {
    if (error.ok() || machine_.link != MachineLink::kSsh || !ssh_) return error;
    if (ssh_->ssh.running()) return error;
    return error.Wrap("ssh ended: " + SshSaid().line);
  }

  void DropLink() {
    agent_->Detach();
    if (ssh_) {
      ssh_->ssh.Kill(SIGTERM, milliseconds(2000));
      ssh_.reset();
    }
    console_open_ = false;
  }

  // Opens the link if it is not open; false with `why` when it cannot be now.
  Result<bool> Connect(Clock::time_point deadline, std::string& why) {
    if (agent_->attached()) return true;
    ++attempts_;
    attempt_start_ = Clock::now();
    switch (machine_.link) {
      case MachineLink::kSsh: {
        TRY_ASSIGN(SshAgentSession session, StartSshAgent(target_, work_dir_ / "ssh.log"));
        ssh_ = std::make_unique<SshAgentSession>(std::move(session));
        agent_->Attach(std::move(ssh_->channel));
        return true;
      }
      case MachineLink::kSerial: {
        auto channel = OpenSerialAgentChannel(machine_.serial_device, machine_.baud);
        if (!channel.ok()) {
          why = channel.status().message();
          return false;
        }
        agent_->Attach(std::move(*channel));
        console_open_ = true;
        return true;
      }
      case MachineLink::kTcp: {
        const auto left = std::max(milliseconds(100), std::chrono::duration_cast<milliseconds>(deadline - Clock::now()));
        auto channel = ConnectTcpAgentChannel(machine_.console_host, machine_.console_port, std::min(left, milliseconds(5000)));
        if (!channel.ok()) {
          why = channel.status().message();
          return false;
        }
        agent_->Attach(std::move(*channel));
        console_open_ = true;
        return true;
      }
    }
    return false;
  }

  // Up to the agent's hello within the bench's budget. `old_boot`: a hello
  // with this boot_id is the OS from before (a reboot not yet under way);
  // `resume`: the same boot must come back, not a new one.
  Status WaitForAgent(const std::string& after, Clock::time_point start, const std::string& old_boot, bool resume) {
    const auto budget = std::chrono::seconds(machine_.boot_timeout_s);
    const auto deadline = start + budget;
    times_ = {};
    attempts_ = 0;
    attempt_start_ = Clock::now();  // a link kept from before (a console) counts from here
    std::string last;         // the last reason a link could not be had
    uint64_t console_bytes = 0;
    std::string console_recent;
    bool stale_seen = false;  // the old boot answered after the cycle
    auto last_probe = Clock::time_point{};
    const bool console = machine_.link != MachineLink::kSsh;
    // A console's agent started before tpmlab listened: ask it.
    const bool probe = console && !resume && (!power_ || !old_boot.empty());
    while (Clock::now() < deadline) {
      std::string why;
      TRY_ASSIGN(bool linked, Connect(deadline, why));
      if (!linked) {
        last = why;
        std::this_thread::sleep_for(std::min(kRetryPause, std::chrono::duration_cast<milliseconds>(deadline - Clock::now())));
        continue;
      }
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
      Result<AgentHello> hello = Status::Timeout("");
      if (probe && Clock::now() - last_probe >= kProbeEvery) {
        last_probe = Clock::now();
        hello = agent_->Hello(std::min(left, milliseconds(3000)));
      } else {
        hello = agent_->WaitHello(std::min(left, console ? milliseconds(1000) : left));
      }
      if (const AgentChannel* c = agent_->channel()) {
        console_bytes = std::max(console_bytes, c->bytes_read());
        console_recent = c->recent();
      }
      if (hello.ok()) {
        if (!old_boot.empty() && hello->boot_id == old_boot && !resume) {
          // The OS from before still answers (it has not gone down yet).
          stale_seen = true;
          if (machine_.link == MachineLink::kSsh) DropLink();
          std::this_thread::sleep_for(kRetryPause);
          continue;
        }
        if (resume && hello->boot_id != old_boot) {
          hello_ = *hello;
          return Status::Error(Layer::kTransport, "the machine (" + machine_.LinkDescription() +
                                                      ") booted anew instead of resuming after " + after +
                                                      " (boot_id " + old_boot + " -> " + hello->boot_id + ")");
        }
        hello_ = *hello;
        times_.total = Since(start);
        times_.agent = Since(attempt_start_);
        if (!hello->tpm_error.empty()) {
          return Status::Error(Layer::kTransport, "the machine is up but tpmlab-agent cannot open its TPM: " +
                                                      hello->tpm_error);
        }
        return Status::Ok();
      }
      if (hello.status().timed_out()) continue;
      // The link ended: ssh gave up, or the console server dropped us.
      if (machine_.link == MachineLink::kSsh && ssh_) {
        ssh_->ssh.Wait(milliseconds(3000));
        const SshDiagnosis said = SshSaid();
        last = said.line.empty() ? hello.status().message() : said.line;
        switch (said.outcome) {
          case SshOutcome::kAuthFailed:
          case SshOutcome::kHostKey:
          case SshOutcome::kUnresolved:
          case SshOutcome::kNoAgent:
            DropLink();
            return NoAgent(after, SshOutcomeName(said.outcome) + ": " + last);
          case SshOutcome::kUnreachable:
          case SshOutcome::kUnknown:
            break;
        }
      } else {
        last = hello.status().message();
      }
      DropLink();
      std::this_thread::sleep_for(std::min(kRetryPause, std::chrono::duration_cast<milliseconds>(
                                                            std::max(deadline - Clock::now(), Clock::duration::zero()))));
    }
    const std::string within = "within " + std::to_string(machine_.boot_timeout_s) + " s after " + after;
    if (machine_.link == MachineLink::kSsh) {
      std::string ssh_line = last;
      if (ssh_ && ssh_line.empty()) ssh_line = SshSaid().line;
      DropLink();
      if (stale_seen) {
        return NoAgent(after, "only the boot from before answered (boot_id " + old_boot + ") " + within +
                                  ": the machine did not go down");
      }
      return NoAgent(after, "no hello " + within + (ssh_line.empty() ? " (ssh was still connecting)" : ": " + ssh_line));
    }
    if (!console_open_) {
      return Status::Timeout("no console: " + machine_.LinkDescription() + " could not be opened " + within + ": " + last);
    }
    if (console_bytes == 0) {
      return Status::Timeout("no console output: nothing came over " + machine_.LinkDescription() + " " + within +
                             " (is the machine on, and its console on this line?)");
    }
    if (stale_seen) {
      return Status::Timeout("no agent: only the boot from before answered (boot_id " + old_boot + ") " + within +
                             ": the machine did not go down");
    }
    return Status::Timeout("no agent: " + machine_.LinkDescription() + " printed " + std::to_string(console_bytes) +
                           " bytes but tpmlab-agent never said hello " + within + "; the console's last lines:" +
                           ConsoleTail(console_recent, 8));
  }

  Status NoAgent(const std::string& after, const std::string& why) const {
    return Status::Error(Layer::kTransport, "no agent: " + machine_.LinkDescription() + " (" + machine_.ssh_command +
                                                ") after " + after + ": " + why)
        .WithKind(ErrorKind::kTransport);
  }

  const Bench& bench_;
  const BenchMachine& machine_;
  fs::path work_dir_;
  fs::path run_dir_;  // where flashes keep the chip's previous contents (RUN/firmware)
  std::unique_ptr<PowerControl> power_;
  std::unique_ptr<AgentClient> agent_;
  milliseconds off_time_;
  SshTarget target_;
  std::unique_ptr<SshAgentSession> ssh_;
  bool console_open_ = false;
  AgentHello hello_;
  BootTimes times_;
  Clock::time_point attempt_start_{};
  int attempts_ = 0;
  bool already_up_ = false;
  std::string firmware_;
  std::string pending_flash_;         // a flash image to write at the next power-off
  nlohmann::json flashes_ = nlohmann::json::array();
  bool closed_ = false;
};

}  // namespace

Result<OpenedBoard> OpenMachineBoard(const Bench& bench, const QemuBoardOptions& options,
                                     std::unique_ptr<PowerControl> power) {
  if (!bench.machine) return Status::Error(Layer::kHarness, "bench '" + bench.name + "' has no machine");
  const fs::path work_dir = fs::absolute(options.work_dir);
  std::error_code ec;
  fs::create_directories(work_dir, ec);
  if (ec) return Status::Error(Layer::kStore, "cannot create " + work_dir.string() + ": " + ec.message());
  const bool has_power = power != nullptr;
  const fs::path run_dir = options.run_dir.empty() ? work_dir.parent_path() : fs::absolute(options.run_dir);
  auto machine = std::make_unique<MachineBoard>(bench, work_dir, run_dir, std::move(power));
  if (bench.flash) {
    // The scenario's firmware (or the bench's default image) is written
    // before the first boot; flashrom leaves a chip that already holds it.
    const std::string first = options.firmware.empty() ? bench.flash->default_image : options.firmware;
    if (!first.empty() && has_power) {
      TRY(machine->SelectFirmware(first));
    } else if (!options.firmware.empty()) {
      return Status::Error(Layer::kScenario, "bench '" + bench.name + "': writing platform firmware '" +
                                                 options.firmware + "' needs the machine off, and the bench has power: none");
    }
  }
  OpenedBoard opened;
  opened.transport = std::make_unique<AgentTransport>(machine->agent(), "tpmlab-agent on " +
                                                                            bench.machine->LinkDescription());
  opened.board = std::move(machine);
  return opened;
}

}  // namespace tpmlab
