#include "harness/dut.h"

#include <signal.h>

namespace tpmlab {

namespace {

// The emulator's power switch, plus what a power cut does to the bus: the
// TIS registers reset with the chip and the host's TIS engine re-takes its
// locality. Off and On both reset: whatever the power did, the bus sees a
// chip that came back from _TPM_Init.
class TisResetPower final : public PowerControl {
 public:
  TisResetPower(std::unique_ptr<PowerControl> inner, TisSimulator& chip, TisSpiTransport& host)
      : inner_(std::move(inner)), chip_(chip), host_(host) {}

 private:
  Status DoOff(PowerCut cut) override { return Reset(inner_->Off(cut)); }
  Status DoOn() override { return Reset(inner_->On()); }
  Status DoCycle(PowerCut cut) override { return Reset(inner_->Cycle(cut)); }
  Status Reset(Status s) {
    chip_.PowerOn();
    host_.ChipReset();
    return s;
  }

  std::unique_ptr<PowerControl> inner_;
  TisSimulator& chip_;
  TisSpiTransport& host_;
};

// A real switch, then what the chip's bus needs once power is back (the
// bridge found again, the TIS engine reset).
class HardwarePower final : public PowerControl {
 public:
  HardwarePower(std::unique_ptr<PowerControl> inner, std::function<Status()> after_on)
      : inner_(std::move(inner)), after_on_(std::move(after_on)) {}

 private:
  Status DoOff(PowerCut cut) override { return inner_->Off(cut); }
  Status DoOn() override { return AfterOn(inner_->On()); }
  Status DoCycle(PowerCut cut) override { return AfterOn(inner_->Cycle(cut)); }
  Status AfterOn(Status on) {
    TRY(on);
    return after_on_ ? after_on_() : Status::Ok();
  }

  std::unique_ptr<PowerControl> inner_;
  std::function<Status()> after_on_;
};

}  // namespace

Result<std::unique_ptr<Dut>> Dut::OpenHardware(HardwareDutConfig config) {
  if (!config.transport) return Status::Error(Layer::kHarness, "a hardware DUT needs a transport");
  std::unique_ptr<Dut> dut(new Dut());
  dut->name_ = config.name;
  dut->kind_ = config.kind;
  dut->bus_ = EmulatedBus::kHardware;
  dut->hardware_bus_ = config.bus_info;
  dut->platform_started_ = config.platform_started;
  dut->no_power_reason_ = config.no_power_reason;
  dut->warnings_ = config.warnings;
  dut->keep_alive_ = config.keep_alive;
  dut->transport_ = std::move(config.transport);
  dut->board_ = std::move(config.board);
  dut->transport_->set_command_timeout(config.command_timeout);
  dut->faults_ = std::make_unique<FaultTransport>(*dut->transport_, config.fault_seed);
  dut->trace_ = std::make_unique<TraceTransport>(*dut->faults_, config.trace_bytes);
  dut->trace_->set_command_timeout(config.command_timeout);
  for (const auto& [code, timeout] : config.command_timeouts) dut->trace_->set_command_timeout(code, timeout);
  if (config.power) {
    dut->power_ = std::make_unique<HardwarePower>(std::move(config.power), std::move(config.after_power_on));
  }
  TRY_ASSIGN(dut->tpm_, Tpm::Open(*dut->trace_));
  return dut;
}

Result<std::unique_ptr<Dut>> Dut::LaunchEmulated(const EmulatedDutConfig& config) {
  if (!config.initial_state.empty() && !SwtpmStateExists(config.state_dir)) {
    TRY(CopySwtpmState(config.initial_state, config.state_dir));
  }
  if (!SwtpmStateExists(config.state_dir)) {
    ProvisionOptions provision;
    provision.banks = config.banks;
    provision.swtpm_binary = config.swtpm_binary;
    TRY(ProvisionSwtpmState(config.state_dir, provision));
  }
  SwtpmConfig swtpm;
  swtpm.state_dir = config.state_dir;
  swtpm.binary = config.swtpm_binary;
  swtpm.library_dir = config.library_dir;
  swtpm.unix_sockets = config.unix_sockets;

  std::unique_ptr<Dut> dut(new Dut());
  dut->name_ = config.name;
  TRY_ASSIGN(dut->swtpm_, SwtpmProcess::Launch(swtpm));
  dut->transport_ = std::make_unique<SwtpmTransport>(*dut->swtpm_);
  dut->transport_->set_command_timeout(config.command_timeout);
  dut->bus_ = config.bus;
  Transport* host = dut->transport_.get();
  if (config.bus == EmulatedBus::kTisSpi) {
    if (config.tis.wait_states < 0 || config.tis.burst_count == 0) {
      return Status::Error(Layer::kHarness, "TIS bus: wait_states must be >= 0 and burst_count >= 1");
    }
    TisSimulator::Options sim;
    sim.wait_states_min = 0;
    sim.wait_states_max = config.tis.wait_states;
    sim.burst_count = config.tis.burst_count;
    sim.seed = config.tis.seed;
    dut->tis_sim_ = std::make_unique<TisSimulator>(*dut->transport_, sim);
    TRY_ASSIGN(dut->tis_, TisSpiTransport::Open(*dut->tis_sim_));
    dut->tis_->set_command_timeout(config.command_timeout);
    host = dut->tis_.get();
  }
  dut->faults_ = std::make_unique<FaultTransport>(*host, config.fault_seed);
  dut->trace_ = std::make_unique<TraceTransport>(*dut->faults_, config.trace_bytes);
  // The TPM session waits on the top of the stack: per-command timeouts go there.
  dut->trace_->set_command_timeout(config.command_timeout);
  for (const auto& [code, timeout] : config.command_timeouts) dut->trace_->set_command_timeout(code, timeout);
  dut->power_ = std::make_unique<SwtpmPower>(*dut->swtpm_);
  if (dut->tis_) {
    dut->power_ = std::make_unique<TisResetPower>(std::move(dut->power_), *dut->tis_sim_, *dut->tis_);
  }
  TRY_ASSIGN(dut->tpm_, Tpm::Open(*dut->trace_));
  return dut;
}

Dut::~Dut() { Close(); }

DutBusInfo Dut::bus_info() const {
  if (hardware_bus_) return *hardware_bus_;
  DutBusInfo info;
  info.bus = bus_;
  if (tis_) {
    info.vendor_id = tis_->chip().vendor_id;
    info.device_id = tis_->chip().device_id;
    info.revision = tis_->chip().revision;
    info.description = tis_->info().description;
  } else if (transport_) {
    info.description = transport_->info().description;
  }
  return info;
}

Status Dut::Health() {
  if (board_) return board_->Health();
  return swtpm_ ? swtpm_->CheckAlive() : Status::Ok();
}

Status Dut::NoPower(const std::string& what) const {
  return Status::Error(Layer::kScenario, what + " needs a power switch, and " +
                                             (no_power_reason_.empty() ? "this DUT has none" : no_power_reason_));
}

Status Dut::PowerOn() {
  if (board_) {
    // Its firmware sends Startup and measures; the keys of a boot before are gone.
    tpm_->ForgetTransientKeys();
    return board_->Boot();
  }
  if (!power_) return Status::Ok();  // nothing to switch: the chip has power
  // A real chip may have been on since the last run; only a power cycle
  // delivers _TPM_Init to it.
  if (!swtpm_) return power_->Cycle(PowerCut::kSoft);
  return power_->On();
}

Status Dut::Startup(const BootOptions& boot, StartupType type) {
  if (platform_started_) {
    return Status::Error(Layer::kScenario, "this machine's platform started the TPM; tpmlab does not send Startup to it");
  }
  if (boot.hcrtm_data && !swtpm_) {
    return Status::Error(Layer::kScenario, "an H-CRTM measurement needs locality 4, which only an emulated DUT offers");
  }
  if (boot.startup_locality != 0) TRY(trace_->SetLocality(boot.startup_locality));
  if (boot.hcrtm_data) {
    // The H-CRTM measures before Startup: the TPM resets PCR0 to 00..04 and
    // extends the hash of this data into it.
    SwtpmControl ctrl = swtpm_->control();
    TRY(ctrl.HashStart());
    TRY(ctrl.HashData(*boot.hcrtm_data));
    TRY(ctrl.HashEnd());
  }
  Status started = tpm_->Startup(type);
  if (boot.startup_locality != 0) {
    Status back = trace_->SetLocality(0);
    if (started.ok()) started = back;
  }
  return started;
}

Status Dut::PowerCycle(PowerCycleKind kind, const BootOptions& boot) {
  // A board shuts down, resets and starts its chip itself, as its OS and
  // firmware do.
  if (board_) {
    if (const std::string why = board_->Refuses(kind); !why.empty()) {
      return Status::Error(Layer::kScenario, std::string("a ") + PowerCycleKindName(kind) + " cycle: " + why);
    }
    (void)boot;
    // The chip was reset (or resumed through a new agent connection): its
    // transient objects are gone.
    tpm_->ForgetTransientKeys();
    return board_->PowerCycle(kind);
  }
  // Refused before the Shutdown: a chip left shut down and never reset
  // would answer nothing but TPM_RC_INITIALIZE.
  if (!power_) return NoPower(std::string("a ") + PowerCycleKindName(kind) + " cycle");
  switch (kind) {
    case PowerCycleKind::kReset:
      TRY(tpm_->Shutdown(StartupType::kClear));
      break;
    case PowerCycleKind::kRestart:
    case PowerCycleKind::kResume:
      TRY(tpm_->Shutdown(StartupType::kState));
      break;
    case PowerCycleKind::kPowerLoss:
    case PowerCycleKind::kHardLoss:
      break;  // no Shutdown: that is what makes them unorderly
  }
  // A hard loss kills the emulator; to a real chip's rail, every loss is the
  // same cut (and kHard would ask an operator to switch off the host, too).
  TRY(power_->Cycle(kind == PowerCycleKind::kHardLoss && swtpm_ ? PowerCut::kHard : PowerCut::kSoft));
  return Startup(boot, StartupAfter(kind));
}

Status Dut::Hang(bool hung) {
  if (!swtpm_) return Status::Error(Layer::kHarness, "hang: only an emulated DUT can be frozen");
  swtpm_->Freeze(hung);
  return Status::Ok();
}

Status Dut::CutPowerDuring(FaultRule match) {
  if (!swtpm_) return Status::Error(Layer::kHarness, "a power cut mid-command needs an emulated DUT");
  match.kind = FaultKind::kAction;
  SwtpmProcess* emulator = swtpm_.get();
  // Frozen first, so the command is in the TPM's hands but never finished
  // when the power goes, however fast the TPM would have been.
  match.before_send = [emulator] { emulator->Freeze(true); };
  match.action = [emulator] { emulator->Kill(SIGKILL); };
  faults_->Add(match);
  return Status::Ok();
}

Status Dut::SwapImage(const std::string& binary, const std::string& library_dir, uint64_t from_version,
                      uint64_t to_version) {
  if (!swtpm_) return Status::Error(Layer::kHarness, "firmware images apply to emulated DUTs");
  // The updater leaves the chip orderly before it flashes.
  if (swtpm_->alive()) (void)tpm_->Shutdown(StartupType::kClear);
  swtpm_->Stop();
  if (from_version != to_version) {
    TRY(WriteSwtpmFirmwareVersion(swtpm_->config().state_dir, from_version, to_version));
  }
  TRY(swtpm_->SetImage(binary, library_dir));
  return power_->On();
}

Status Dut::SaveState(const std::filesystem::path& to) {
  if (!swtpm_) return Status::Error(Layer::kHarness, "state checkpoints apply to emulated DUTs");
  return CopySwtpmState(swtpm_->config().state_dir, to);
}

Status Dut::RestoreState(const std::filesystem::path& from) {
  if (!swtpm_) return Status::Error(Layer::kHarness, "state checkpoints apply to emulated DUTs");
  swtpm_->Freeze(false);
  swtpm_->Kill(SIGKILL);
  TRY(CopySwtpmState(from, swtpm_->config().state_dir));
  return power_->On();
}

void Dut::Close() {
  if (closed_) return;
  closed_ = true;
  if (swtpm_) swtpm_->Freeze(false);  // a DUT left hung by a fault still shuts down
  // Leave the chip as a well-behaved platform would: orderly, so the next
  // session does not start with safe = NO and a raised DA counter.
  if (swtpm_ && swtpm_->alive() && tpm_) (void)tpm_->Shutdown(StartupType::kClear);
  // A chip tpmlab booted is left orderly too; one the platform started is
  // the platform's to shut down.
  if (!swtpm_ && tpm_ && !platform_started_) (void)tpm_->Shutdown(StartupType::kClear);
  tpm_.reset();
  if (swtpm_) swtpm_->Stop();
  if (board_) board_->Close();
}

}  // namespace tpmlab
