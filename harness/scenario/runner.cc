#include "harness/runner.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "harness/boot_source.h"
#include "harness/doctor.h"
#include "harness/drift.h"
#include "harness/replay.h"
#include "harness/run_files.h"
#include "harness/run_folder.h"
#include "harness/snapshot_json.h"
#include "harness/verify.h"

namespace tpmlab {

namespace fs = std::filesystem;
using nlohmann::json;

const char* RunStatusName(RunStatus status) {
  switch (status) {
    case RunStatus::kPassed: return "passed";
    case RunStatus::kFailed: return "failed";
    case RunStatus::kError: return "error";
    case RunStatus::kInterrupted: return "interrupted";
  }
  return "unknown";
}

namespace {

using Clock = std::chrono::steady_clock;

// Draws from weights with a generator whose output is fixed by the seed
// (std::discrete_distribution's is not portable across standard libraries).
PowerCycleKind Draw(const std::vector<std::pair<PowerCycleKind, double>>& mix, std::mt19937_64& rng) {
  double total = 0;
  for (const auto& [kind, w] : mix) total += w;
  const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53 * total;
  double acc = 0;
  for (const auto& [kind, w] : mix) {
    acc += w;
    if (u < acc && w > 0) return kind;
  }
  return mix.back().first;
}

std::string Hostname() {
  char buf[256] = {};
  ::gethostname(buf, sizeof(buf) - 1);
  return buf;
}

json ScenarioConfigJson(const Scenario& s, uint64_t seed) {
  json banks = s.platform.banks;
  return {{"scenario", s.name},
          {"file", s.file},
          {"seed", seed},
          {"platform",
           {{"banks", banks},
            {"ak", KeyTypeName(s.platform.ak)},
            {"startup_locality", s.platform.boot.startup_locality},
            {"hcrtm", s.platform.boot.hcrtm_data
                          ? json(std::string(s.platform.boot.hcrtm_data->begin(),
                                             s.platform.boot.hcrtm_data->end()))
                          : json(nullptr)},
            {"firmware", s.platform.firmware ? json({{"name", s.platform.firmware->name},
                                                     {"file", s.platform.firmware->file}})
                                              : json(nullptr)},
            {"command_timeout_ms", s.platform.command_timeout_ms},
            {"bus", EmulatedBusName(s.platform.bus)}}}};
}

// Whether a TPM response code is the one expected: equal, or the same
// format-1 error with a different parameter/handle number.
bool SameResponseCode(uint32_t actual, uint32_t expected) {
  if (actual == expected) return true;
  return (actual & 0x80) != 0 && (actual & 0xBF) == expected;
}

// The codes raised, each once (findings of one code on several PCRs are one alarm).
std::string Codes(const std::vector<Alarm>& alarms) {
  std::string out;
  for (const auto& code : DistinctAlarmCodes(alarms)) out += std::string(out.empty() ? "" : ", ") + code;
  return out.empty() ? "none" : out;
}

// Why the check that raises `code` did not run at a step ("" when it ran):
// its not_run entry is "CODE: why".
std::string WhyNotRun(const StepResult& s, const std::string& code) {
  for (const auto& entry : s.not_run) {
    if (entry.rfind(code + ": ", 0) == 0) return entry.substr(code.size() + 2);
  }
  return "";
}

std::string Movement(uint64_t before, uint64_t after) {
  if (after == before) return "same";
  if (after == 0) return "reset";
  return after > before ? "up" : "down";
}

// The bench-guarded operation a step performs, if any (hw/README.md, allow:).
std::optional<Operation> DestructiveOperation(const Step& step) {
  const auto& a = step.action;
  if (std::holds_alternative<ClearStep>(a) || std::holds_alternative<ClearControlStep>(a)) return Operation::kClear;
  if (std::holds_alternative<ChangeEpsStep>(a)) return Operation::kChangeEps;
  if (std::holds_alternative<ChangePpsStep>(a)) return Operation::kChangePps;
  if (std::holds_alternative<AllocateBanksStep>(a)) return Operation::kAllocateBanks;
  if (const auto* f = std::get_if<FirmwareUpdateStep>(&a); f && !f->model) return Operation::kFirmwareInstall;
  if (std::holds_alternative<ClockSetStep>(a) || std::holds_alternative<ClockSkewStep>(a)) return Operation::kClockSet;
  if (const auto* h = std::get_if<HierarchyStep>(&a); h && !h->enable) return Operation::kHierarchy;
  if (std::holds_alternative<ExtendStep>(a)) return Operation::kExtend;
  return std::nullopt;
}

// Why a step cannot run on the bench's chip at all, or "" when it can.
std::string UnrunnableOn(const Step& step, const Bench& bench) {
  if (bench.emulated()) return "";
  const auto& a = step.action;
  const bool has_power = bench.power.kind != PowerKind::kNone;
  if (std::holds_alternative<PowerCycleStep>(a) && !has_power) {
    return "a power cycle needs a power switch, and the bench has power: none";
  }
  if (const auto* f = std::get_if<FaultStep>(&a)) {
    using K = FaultStep::Kind;
    if (f->kind == K::kHang || f->kind == K::kUnhang || f->kind == K::kKill || f->kind == K::kCutPower) {
      return "this fault freezes or kills the emulator: an emulated DUT only";
    }
  }
  if (std::holds_alternative<CheckpointStep>(a) || std::holds_alternative<RollbackStep>(a)) {
    return "checkpoints copy the emulator's NV state: an emulated DUT only";
  }
  if (const auto* f = std::get_if<FirmwareUpdateStep>(&a)) {
    if (!f->model) return "TPM images are swtpm builds: tpmlab has no firmware installer for a real chip";
    if (!bench.harness_boots()) return "this machine's platform measures its own firmware, not a firmware model";
  }
  return "";
}

// Every step of a scenario the bench refuses or cannot run, with where it
// is written: found before anything runs, so a real chip never gets half a
// scenario.
Status RefusedSteps(const std::vector<Step>& steps, const Bench& bench) {
  std::string refused, unrunnable;
  std::function<void(const std::vector<Step>&)> walk = [&](const std::vector<Step>& list) {
    for (const Step& step : list) {
      if (const auto* r = std::get_if<RepeatStep>(&step.action)) walk(r->steps);
      if (const auto* c = std::get_if<ChooseStep>(&step.action)) walk(c->steps);
      if (const std::string why = UnrunnableOn(step, bench); !why.empty()) {
        unrunnable += "\n  " + step.where.ToString() + ": " + StepActionName(step) + ": " + why;
        continue;
      }
      const auto op = DestructiveOperation(step);
      if (op && !CheckAllowed(bench, *op).ok()) {
        refused += "\n  " + step.where.ToString() + ": " + StepActionName(step) + " needs allow." + OperationKey(*op);
      }
    }
  };
  walk(steps);
  if (refused.empty() && unrunnable.empty()) return Status::Ok();
  std::string message = "bench '" + bench.name + "' (" + bench.file + ") is a real chip";
  if (!unrunnable.empty()) message += "; these steps cannot run on it:" + unrunnable;
  if (!refused.empty()) {
    message += std::string(unrunnable.empty() ? "" : "\nand it") + " does not allow what this scenario does:" +
               refused + "\n(set those keys under allow: in the bench file to permit them)";
  }
  return Status::Error(Layer::kScenario, message);
}

bool HasCode(const std::vector<std::string>& codes, const std::string& code) {
  return std::find(codes.begin(), codes.end(), code) != codes.end();
}

class Run {
 public:
  Run(const Scenario& scenario, const RunOptions& options, Store& store, Dut& dut, int64_t run_id,
      uint64_t seed)
      : scenario_(scenario), options_(options), store_(store), dut_(dut), run_id_(run_id),
        rng_(seed), total_(CountSteps(scenario.steps)) {
    result_.run_id = run_id;
    result_.seed = seed;
    if (scenario.platform.firmware && MeasuresFirmware()) {
      firmware_ = std::make_unique<EmulatedFirmware>(*scenario.platform.firmware, scenario.platform.boot);
    }
  }

  /// Runs one step of the scenario or one built elsewhere (a session).
  void Execute(const Step& step) {
    if (!Stopped()) ExecuteStep(step);
    NoteInterrupt();
  }

  /// Judges what is left and hands over the result.
  RunResult Finish() {
    Settle();
    if (result_.status == RunStatus::kPassed && uncovered_errors_ > 0) result_.status = RunStatus::kError;
    if (result_.status == RunStatus::kPassed && failed_checks_ > 0) result_.status = RunStatus::kFailed;
    return std::move(result_);
  }

  bool Stopped() const {
    return ended_ || (options_.stop && options_.stop->load()) ||
           (options_.max_steps && result_.steps.size() >= static_cast<size_t>(std::max(0, *options_.max_steps)));
  }
  const RunResult& result() const { return result_; }

 private:
  void NoteInterrupt() {
    if (!ended_ && options_.stop && options_.stop->load()) {
      ended_ = true;
      result_.status = RunStatus::kInterrupted;
      result_.error = "interrupted";
    }
  }

  void ExecuteSteps(const std::vector<Step>& steps) {
    for (const auto& step : steps) {
      if (Stopped()) break;
      ExecuteStep(step);
    }
    NoteInterrupt();
  }

  void ExecuteStep(const Step& step) {
    if (const auto* r = std::get_if<RepeatStep>(&step.action)) {
      for (int i = 0; i < r->count && !Stopped(); ++i) ExecuteSteps(r->steps);
    } else if (const auto* c = std::get_if<ChooseStep>(&step.action)) {
      ExecuteStep(c->steps[Choose(*c)]);
    } else {
      ExecuteOne(step);
    }
  }

  size_t Choose(const ChooseStep& c) {
    std::vector<double> weights = c.weights;
    if (weights.empty()) weights.assign(c.steps.size(), 1.0);
    double total = 0;
    for (double w : weights) total += w;
    const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53 * total;
    double acc = 0;
    for (size_t i = 0; i < weights.size(); ++i) {
      acc += weights[i];
      if (u < acc && weights[i] > 0) return i;
    }
    return weights.size() - 1;
  }

  void ExecuteOne(const Step& step) {
    const bool is_expect = std::holds_alternative<ExpectStep>(step.action);
    if (!is_expect) Settle();
    StepResult r;
    r.index = static_cast<int>(result_.steps.size());
    r.action = StepActionName(step);
    r.started_at = UtcNow();
    const size_t injected_before = dut_.faults().injected().size();
    const auto start = Clock::now();
    Status s = Dispatch(step, r);
    r.duration_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    r.trace = dut_.trace().TakeRecords();
    NoteInjectedFaults(injected_before, r);
    if (r.snapshot) r.snapshot->latency_us = LatencyByCommand(r.trace);
    if (!s.ok() && IsRefusal(step, s)) {
      // The TPM answered and said no: recorded, and the run goes on.
      r.status = "refused";
      r.rc = s.tpm_rc();
      r.error = s.ToString();
      consecutive_errors_ = 0;
    } else if (!s.ok()) {
      r.status = "error";
      r.error = s.ToString();
      // A TPM that does not answer is what a verifier would see, too.
      if (s.layer() == Layer::kTransport || s.layer() == Layer::kEmulator ||
          (s.layer() == Layer::kTpm && (s.tpm_rc() & 0xFFF) == 0x101)) {
        r.alarms.push_back(TpmUnreachable(s));
      }
      // When the emulator died, say how, with its log tail.
      Status health = dut_.Health();
      if (!health.ok() && r.error.find("log tail") == std::string::npos) {
        r.error += "\n" + health.ToString();
      }
      // The harness goes on after a failed step (a later one may power the
      // TPM back); a TPM that stays gone ends the run.
      if (++consecutive_errors_ >= scenario_.platform.max_consecutive_errors) {
        result_.status = RunStatus::kError;
        result_.error = step.where.ToString() + ": " + r.error + "\n(" + std::to_string(consecutive_errors_) +
                        " steps failed in a row; the run stops)";
        ended_ = true;
      }
    } else {
      // Only a step that talked to the TPM shows it is back.
      if (!is_expect) consecutive_errors_ = 0;
      r.status = AllPassed(r.checks) ? "passed" : "failed";
    }
    if (is_expect) {
      for (const auto& c : r.checks) failed_checks_ += c.passed ? 0 : 1;
    } else {
      // Judged when the next step starts: an expect step may explain them.
      judged_ = static_cast<int>(result_.steps.size());
      judged_where_ = step.where.ToString();
      covered_alarms_ = covered_error_ = covered_refusal_ = covered_checks_ = false;
    }
    Status stored = store_.RecordStep(run_id_, r);
    if (!stored.ok()) {
      // Results that cannot be kept end the run: never run on without a record.
      result_.status = RunStatus::kError;
      result_.error = stored.ToString();
      ended_ = true;
    }
    if (options_.on_step) options_.on_step(r, total_);
    result_.steps.push_back(std::move(r));
  }

  // Steps whose TPM refusal is an outcome to record, not a broken run.
  static bool IsRefusal(const Step& step, const Status& s) {
    if (s.layer() != Layer::kTpm || (s.tpm_rc() & 0xFFF) == 0x101) return false;  // failure mode is not a refusal
    return std::holds_alternative<ClearStep>(step.action) || std::holds_alternative<ClearControlStep>(step.action) ||
           std::holds_alternative<ChangeEpsStep>(step.action) || std::holds_alternative<ChangePpsStep>(step.action) ||
           std::holds_alternative<HierarchyStep>(step.action) ||
           std::holds_alternative<AllocateBanksStep>(step.action) ||
           std::holds_alternative<ClockSetStep>(step.action) || std::holds_alternative<ClockSkewStep>(step.action);
  }

  // Faults that hit this step's commands, and a power cut that did.
  void NoteInjectedFaults(size_t before, StepResult& r) {
    const auto& injected = dut_.faults().injected();
    json faults = json::array();
    for (size_t i = before; i < injected.size(); ++i) {
      const auto& f = injected[i];
      const bool cut = f.kind == FaultKind::kAction;
      if (cut) power_lost_ = true;
      faults.push_back({{"sequence", f.sequence},
                        {"command", TpmCommandName(f.command_code)},
                        {"fault", cut ? "power_cut" : FaultKindName(f.kind)}});
    }
    if (!faults.empty()) r.detail["faults_injected"] = faults;
    if (cut_armed_for_ > 0 && r.action != "fault" && --cut_armed_for_ == 0) {
      // The cut was for this step only; a step shorter than the point drawn escapes it.
      bool fired = false;
      for (const auto& f : faults) fired = fired || f["fault"] == "power_cut";
      if (!fired) {
        dut_.faults().RemoveRules(FaultKind::kAction);
        r.detail["power_cut"] = "not reached: the step sent fewer commands than the point drawn";
      }
    }
  }

  // Checks that fail exactly when a verifier alarms (a quote that does not
  // verify, a key that changed): an expect step naming the alarm explains them.
  static bool IsVerifierCheck(const std::string& name) {
    return name == "quote_verified" || name == "ek_name" || name == "srk_name" || name == "ak_name" ||
           name == "firmware_version" || name == "eventlog_replay";
  }

  // Judges what no expect step covered in the step last executed.
  void Settle() {
    if (judged_ < 0 || settled_ == judged_) return;
    settled_ = judged_;
    const StepResult& s = result_.steps[static_cast<size_t>(judged_)];
    const std::string what = "step " + std::to_string(s.index) + " (" + s.action + ")";
    int explained = 0;
    for (const auto& c : s.checks) {
      if (c.passed) continue;
      if (covered_checks_ && IsVerifierCheck(c.name)) {
        ++explained;
      } else {
        ++failed_checks_;
      }
    }
    if (explained > 0 && s.status == "failed" && explained == static_cast<int>(std::count_if(
        s.checks.begin(), s.checks.end(), [](const Check& c) { return !c.passed; }))) {
      result_.expected_failures.insert(s.index);
    }
    if (s.status == "error" && !covered_error_) {
      ++uncovered_errors_;
      if (result_.error.empty()) result_.error = judged_where_ + ": " + s.error;
      result_.expectations.push_back({s.index, judged_where_, what + " completes", false, s.error});
    }
    if (s.status == "refused" && !covered_refusal_) {
      ++failed_checks_;
      result_.expectations.push_back({s.index, judged_where_, what + " is not refused", false, s.error});
    }
    if ((scenario_.unexpected_alarms_fail || options_.fail_on_alarm) && !s.alarms.empty() && !covered_alarms_) {
      ++failed_checks_;
      const char* why = scenario_.unexpected_alarms_fail ? "" : " (--fail-on-alarm)";
      result_.expectations.push_back({s.index, judged_where_, what + " raises no alarm no expect step names", false,
                                      "raised " + DescribeAlarms(s.alarms) + why});
    }
  }

  // Whether tpmlab measures the scenario's firmware model and keeps its log;
  // otherwise the log comes from the bench (securityfs, a file).
  bool MeasuresFirmware() const {
    return !options_.bench || options_.bench->boot_log.source == BootLogSource::kEmulatedFirmware;
  }

  // The log a verifier would get now: the firmware model's, or the bench's file.
  Result<EventLog> CurrentEventLog() const {
    if (firmware_) return firmware_->log();
    if (options_.bench && !MeasuresFirmware()) {
      auto log = ReadEventLogFile(options_.bench->boot_log.path);
      if (!log.ok()) {
        return Status::Error(log.status().layer(), std::string("boot log (") +
                                                       BootLogSourceName(options_.bench->boot_log.source) +
                                                       "): " + log.status().message());
      }
      return log;
    }
    return Status::Error(Layer::kScenario, "the platform has no firmware model, so no event log");
  }
  bool HasEventLog() const { return firmware_ || (options_.bench && !MeasuresFirmware()); }

  Status Dispatch(const Step& step, StepResult& r) {
    // Safety: a real chip only undergoes what its bench file allows.
    if (const auto op = DestructiveOperation(step); op && options_.bench) TRY(CheckAllowed(*options_.bench, *op));
    const auto& a = step.action;
    if (const auto* b = std::get_if<BootStep>(&a)) return Boot(*b, r);
    if (const auto* p = std::get_if<PowerCycleStep>(&a)) return PowerCycle(*p, r);
    if (std::get_if<SnapshotStep>(&a)) return Snap(r);
    if (std::get_if<EnrollStep>(&a)) return Enroll(r);
    if (const auto* e = std::get_if<ExpectStep>(&a)) return Expect(*e, step.where, r);
    if (const auto* c = std::get_if<ClearStep>(&a)) return Clear(*c, r);
    if (const auto* c = std::get_if<ClearControlStep>(&a)) {
      TRY(dut_.tpm().ClearControl(c->auth, c->disable));
      r.checks.push_back({"clear_control", true, c->disable ? "TPM2_Clear disabled" : "TPM2_Clear enabled"});
      return Status::Ok();
    }
    if (std::get_if<ChangeEpsStep>(&a)) return ChangeSeed(/*endorsement=*/true, r);
    if (std::get_if<ChangePpsStep>(&a)) return ChangeSeed(/*endorsement=*/false, r);
    if (const auto* h = std::get_if<HierarchyStep>(&a)) {
      TRY(dut_.tpm().HierarchyControl(h->hierarchy, h->enable));
      r.checks.push_back({"hierarchy", true, std::string(HierarchyName(h->hierarchy)) + (h->enable ? " enabled" : " disabled")});
      return Status::Ok();
    }
    if (const auto* al = std::get_if<AllocateBanksStep>(&a)) return AllocateBanks(*al, r);
    if (const auto* f = std::get_if<FirmwareUpdateStep>(&a)) return FirmwareUpdate(*f, r);
    if (const auto* c = std::get_if<ClockSetStep>(&a)) return SetClock(c->clock_ms, 0, r);
    if (const auto* c = std::get_if<ClockSkewStep>(&a)) return SetClock(0, c->skew_ms, r);
    if (const auto* e = std::get_if<ExtendStep>(&a)) return Extend(*e, r);
    if (const auto* f = std::get_if<FaultStep>(&a)) return Fault(*f, r);
    if (const auto* w = std::get_if<WaitStep>(&a)) return Wait(w->ms);
    if (const auto* c = std::get_if<CheckpointStep>(&a)) return Checkpoint(*c, r);
    if (const auto* rb = std::get_if<RollbackStep>(&a)) return Rollback(*rb, r);
    if (std::get_if<DoctorStep>(&a)) return Doctor(r);
    return Status::Error(Layer::kHarness, std::string("unhandled step ") + StepActionName(step));
  }

  static const char* HierarchyName(Hierarchy h) {
    switch (h) {
      case Hierarchy::kOwner: return "owner";
      case Hierarchy::kEndorsement: return "endorsement";
      case Hierarchy::kPlatform: return "platform";
      case Hierarchy::kLockout: return "lockout";
    }
    return "?";
  }

  // After Startup: check the PCRs against the rules, measure, snapshot.
  Status AfterStartup(StartupType startup, const PcrValues& before, bool snapshot, StepResult& r) {
    // A bank allocation takes effect at a reset: ask again after each one.
    if (banks_.empty() || startup == StartupType::kClear) {
      TRY_ASSIGN(banks_, dut_.tpm().PcrBanks());
    }
    TRY_ASSIGN(PcrValues now, dut_.tpm().ReadPcrs(banks_));
    r.checks.push_back(CheckStartupPcrs(startup, scenario_.platform.boot, before, now));
    // The platform firmware measures and logs (not again on an S3 resume).
    if (firmware_) TRY(firmware_->AfterStartup(dut_.tpm(), startup, banks_));
    if (snapshot) TRY(Snap(r));
    return Status::Ok();
  }

  Status Boot(const BootStep& b, StepResult& r) {
    banks_.clear();
    if (dut_.platform_started()) {
      // This machine's firmware booted and measured the TPM; tpmlab attests
      // what it finds, so there is no reset state to check.
      r.checks.push_back({"boot", true, "started and measured by this machine's platform at its own boot"});
      TRY_ASSIGN(banks_, dut_.tpm().PcrBanks());
      return b.snapshot ? Snap(r) : Status::Ok();
    }
    TRY(dut_.PowerOn());
    Status started = dut_.Startup(scenario_.platform.boot, StartupType::kClear);
    if (!started.ok() && started.layer() == Layer::kTpm && (started.tpm_rc() & 0xFFF) == 0x100 &&
        !dut_.can_switch_power()) {
      return Status::Error(Layer::kScenario, started.message() + ": the chip was started before this run, and " +
                                                 dut_.no_power_reason() +
                                                 ": switch it off and on by hand, or give the bench a power switch");
    }
    TRY(started);
    return AfterStartup(StartupType::kClear, {}, b.snapshot, r);
  }

  Status PowerCycle(const PowerCycleStep& p, StepResult& r) {
    const PowerCycleKind kind = p.kind ? *p.kind : Draw(p.mix, rng_);
    // Refused by a DUT without a switch: no cycle happened, nothing counts.
    if (!dut_.can_switch_power()) return dut_.PowerCycle(kind, scenario_.platform.boot);
    r.cycle = ++cycles_;
    r.kind = PowerCycleKindName(kind);
    if (banks_.empty()) {
      TRY_ASSIGN(banks_, dut_.tpm().PcrBanks());
    }
    // What the TPM held when it went down, to judge what it kept.
    TRY_ASSIGN(TimeInfo before_clock, dut_.tpm().ReadClock());
    TRY_ASSIGN(PcrValues before_pcrs, dut_.tpm().ReadPcrs(banks_));
    if (!IsOrderly(kind)) power_lost_ = true;
    TRY(dut_.PowerCycle(kind, scenario_.platform.boot));
    // Where the clock restarted after a loss: a quote that says safe = YES
    // is right when the clock was saved to NV since (a slow, loaded step).
    std::optional<ClockInfo> clock_at_startup;
    if (!IsOrderly(kind)) {
      TRY_ASSIGN(TimeInfo started, dut_.tpm().ReadClock());
      clock_at_startup = started.clock;
    }
    TRY(AfterStartup(StartupAfter(kind), before_pcrs, p.snapshot, r));
    if (r.snapshot) {
      auto counters = CheckCounters(kind, before_clock.clock, r.snapshot->clock(), clock_at_startup);
      r.checks.insert(r.checks.end(), counters.begin(), counters.end());
    }
    return Status::Ok();
  }

  Status Snap(StepResult& r) {
    SnapshotOptions o;
    o.ak_type = scenario_.platform.ak;
    TRY_ASSIGN(Snapshot s, TakeSnapshot(dut_.tpm(), o));
    // A quote is expected whenever the TPM can make one; when it cannot (no
    // AK: a disabled hierarchy), the verifier's alarms say so.
    if (s.quote_check.parsed || s.ak_error.empty()) r.checks.push_back(CheckQuote(s));
    if (HasEventLog()) r.checks.push_back(AttachEventLog(s));
    // Judge it as a verifier would, against the enrollment and the last quote.
    Verdict verdict = Verify(s, last_ ? &*last_ : nullptr, enrollment_ ? &*enrollment_ : nullptr);
    r.alarms = std::move(verdict.alarms);
    r.not_run = std::move(verdict.not_run);
    // And explain what moved since the last boot and since the golden one.
    if (last_) r.drift = DriftToJson(DiffSnapshots(*last_, s));
    if (golden_) r.golden_drift = DriftToJson(DiffSnapshots(*golden_, s));
    before_last_ = std::move(last_);
    last_ = s;
    last_step_with_snapshot_ = r.index;
    if (reference_) {
      auto identity = CheckIdentity(*reference_, s);
      r.checks.insert(r.checks.end(), identity.begin(), identity.end());
    } else {
      reference_ = s;
    }
    r.snapshot = std::move(s);
    return Status::Ok();
  }

  // vCenter adding a host: the latest snapshot becomes the enrolled identity
  // and golden reference.
  Status Enroll(StepResult& r) {
    if (!last_) return Status::Error(Layer::kScenario, "enroll needs a snapshot first (a boot or snapshot step)");
    enrollment_ = EnrollFromSnapshot(*last_, dut_.name());
    golden_ = last_;
    // A re-enrollment accepts the identity the TPM has now.
    reference_ = last_;
    TRY(store_.RecordEnrollment(run_id_, r.index, *enrollment_));
    // Every enrollment of the run, each with its step: verifying an earlier
    // step needs the enrollment in force then, not the latest.
    enrollments_.push_back({r.index, *enrollment_});
    const fs::path file = options_.out_dir / "enrollment.json";
    const EnrollmentRun run{run_id_, fs::absolute(options_.database).string()};
    TRY(WriteFileAtomically(file, EnrollmentHistoryToJson(enrollments_, run).dump(2) + "\n"));
    r.checks.push_back({"enrolled", true, "EK " + ToHex(enrollment_->ek_name) + ", AK " +
                                              ToHex(enrollment_->ak_name) + "; golden reference: the snapshot of step " +
                                              std::to_string(last_step_with_snapshot_) + " (" + file.string() + ")"});
    return Status::Ok();
  }

  // --- expectations --------------------------------------------------------

  Status Expect(const ExpectStep& e, const SourceLocation& where, StepResult& r) {
    if (judged_ < 0) {
      r.checks.push_back({"expect", false, "there is no step before this expect to judge"});
      result_.expectations.push_back({r.index, where.ToString(), "expect", false, "no step before it"});
      return Status::Ok();
    }
    const StepResult& s = result_.steps[static_cast<size_t>(judged_)];
    std::vector<Check> checks;
    std::set<std::string> raised;
    for (const auto& a : s.alarms) raised.insert(a.code);
    // A code not raised because its check could not run says so: "not
    // raised" would read as the verifier having looked and found nothing.
    auto not_raised = [&](const std::string& code) {
      const std::string why = WhyNotRun(s, code);
      return why.empty() ? code + " was not raised" : code + " was not raised: its check did not run (why: " + why + ")";
    };
    for (const auto& code : e.alarms) {
      checks.push_back({"alarm " + code, raised.count(code) > 0,
                        raised.count(code) ? "raised" : not_raised(code) + " (raised: " + Codes(s.alarms) + ")"});
    }
    if (!e.one_of.empty()) {
      std::string named;
      bool any = false;
      for (const auto& code : e.one_of) {
        any = any || raised.count(code) > 0;
        named += std::string(named.empty() ? "" : ", ") + code;
      }
      std::string not_run;
      for (const auto& code : e.one_of) {
        if (!WhyNotRun(s, code).empty()) not_run += "; " + not_raised(code);
      }
      checks.push_back({"one of " + named, any,
                        any ? "raised: " + Codes(s.alarms) : "none raised (raised: " + Codes(s.alarms) + ")" + not_run});
    }
    for (const auto& code : e.absent) {
      // Passes as a verifier would see it, but says when nothing was looked at.
      checks.push_back({"no alarm " + code, raised.count(code) == 0, raised.count(code) ? "raised" : not_raised(code)});
    }
    if (!e.others_allowed) {
      for (const auto& code : raised) {
        if (HasCode(e.alarms, code) || HasCode(e.one_of, code) || HasCode(e.allow, code) || HasCode(e.absent, code)) {
          continue;
        }
        // A step expected to fail raises the alarm its failure is.
        if (e.error && *e.error && code == alarm::kTpmUnreachable) continue;
        if (HasCode(e.allow_after_power_loss, code)) {
          if (!power_lost_) checks.push_back({"alarm " + code, false, "raised before the run had any power loss"});
          continue;
        }
        checks.push_back({"no other alarm", false, "unexpected alarm " + code});
      }
    }
    ExpectPcrs(e, s, checks);
    ExpectCounters(e, s, checks);
    if (e.rc) {
      const bool ok = s.rc && SameResponseCode(*s.rc, *e.rc);
      checks.push_back({"refused with " + TpmResponseCodeName(*e.rc), ok,
                        s.rc ? "the TPM answered " + TpmResponseName(*s.rc) : "the step was not refused (" + s.status + ")"});
    }
    if (e.error) {
      const bool errored = s.status == "error";
      checks.push_back({*e.error ? "step failed" : "step completed", errored == *e.error,
                        errored ? s.error : "status " + s.status});
    }
    covered_alarms_ = covered_alarms_ || !e.others_allowed || !e.alarms.empty() || !e.one_of.empty();
    covered_error_ = covered_error_ || (e.error && *e.error) || HasCode(e.alarms, alarm::kTpmUnreachable);
    covered_refusal_ = covered_refusal_ || e.rc.has_value();

    std::string failed;
    for (const auto& c : checks) {
      if (!c.passed) failed += std::string(failed.empty() ? "" : "; ") + c.name + ": " + c.detail;
    }
    std::string name = "expect at " + where.ToString() + " on step " + std::to_string(s.index) + " (" + s.action + ")";
    if (!e.alarms.empty()) {
      std::string codes;
      for (const auto& c : e.alarms) codes += std::string(codes.empty() ? "" : ", ") + c;
      name += ": " + codes;
    }
    result_.expectations.push_back({s.index, where.ToString(), name, failed.empty(), failed.empty() ? "met" : failed});
    covered_checks_ = covered_checks_ || (failed.empty() && (!e.alarms.empty() || !e.one_of.empty()));
    if (failed.empty() && s.status == "error" && covered_error_) result_.expected_failures.insert(s.index);
    r.detail["judged_step"] = s.index;
    r.checks = std::move(checks);
    return Status::Ok();
  }

  void ExpectPcrs(const ExpectStep& e, const StepResult& s, std::vector<Check>& checks) const {
    if (e.pcrs_drift.empty() && e.pcrs_steady.empty()) return;
    const std::optional<Snapshot>& reference = e.against_golden ? golden_ : before_last_;
    if (!s.snapshot || !reference) {
      checks.push_back({"pcrs", false, !s.snapshot ? "the step took no snapshot" : "no reference snapshot to compare with"});
      return;
    }
    const auto bank = *HashAlgFromName(e.pcr_bank);
    auto now = s.snapshot->pcrs.find(bank);
    auto then = reference->pcrs.find(bank);
    if (now == s.snapshot->pcrs.end() || then == reference->pcrs.end()) {
      checks.push_back({"pcrs", false, "the " + e.pcr_bank + " bank is not in both snapshots"});
      return;
    }
    const char* against = e.against_golden ? "golden" : "previous";
    for (int pcr : e.pcrs_drift) {
      const bool moved = now->second[pcr] != then->second[pcr];
      checks.push_back({"pcr " + std::to_string(pcr) + " drifts", moved,
                        std::string(moved ? "differs from " : "same as ") + against});
    }
    for (int pcr : e.pcrs_steady) {
      const bool moved = now->second[pcr] != then->second[pcr];
      checks.push_back({"pcr " + std::to_string(pcr) + " steady", !moved,
                        std::string(moved ? "differs from " : "same as ") + against});
    }
  }

  void ExpectCounters(const ExpectStep& e, const StepResult& s, std::vector<Check>& checks) const {
    if (!e.reset_count && !e.restart_count && !e.safe) return;
    if (!s.snapshot || !s.snapshot->quote_check.parsed) {
      checks.push_back({"counters", false, "the step has no quoted clock"});
      return;
    }
    const ClockInfo& now = s.snapshot->clock();
    if (e.safe) {
      checks.push_back({"safe", now.safe == *e.safe, now.safe ? "safe = YES" : "safe = NO"});
    }
    if (!e.reset_count && !e.restart_count) return;
    if (!before_last_ || !before_last_->quote_check.parsed) {
      checks.push_back({"counters", false, "no earlier quoted clock to compare with"});
      return;
    }
    const ClockInfo& then = before_last_->clock();
    if (e.reset_count) {
      const std::string m = Movement(then.reset_count, now.reset_count);
      checks.push_back({"reset_count " + *e.reset_count, m == *e.reset_count,
                        std::to_string(then.reset_count) + " -> " + std::to_string(now.reset_count)});
    }
    if (e.restart_count) {
      const std::string m = Movement(then.restart_count, now.restart_count);
      checks.push_back({"restart_count " + *e.restart_count, m == *e.restart_count,
                        std::to_string(then.restart_count) + " -> " + std::to_string(now.restart_count)});
    }
  }

  // --- ownership, clock, measurements ---------------------------------------

  Status Clear(const ClearStep& c, StepResult& r) {
    TRY(dut_.tpm().Clear(c.auth));
    // A clear replaces the SRK and the AK; the identity to hold starts over.
    reference_.reset();
    r.checks.push_back({"clear", true, std::string("TPM2_Clear authorised by ") + HierarchyName(c.auth)});
    return Status::Ok();
  }

  Status ChangeSeed(bool endorsement, StepResult& r) {
    auto before = dut_.tpm().EnsureEk();
    TRY(endorsement ? dut_.tpm().ChangeEps() : dut_.tpm().ChangePps());
    reference_.reset();
    if (endorsement) {
      // The EK at 0x81010001 was flushed with the old seed; the next snapshot
      // makes the new one, as a new board would.
      if (before.ok()) r.detail["ek_before"] = ToHex(before->name);
      r.checks.push_back({"change_eps", true, "new endorsement primary seed: EK and AK will be new"});
    } else {
      r.checks.push_back({"change_pps", true, "new platform primary seed"});
    }
    return Status::Ok();
  }

  Status AllocateBanks(const AllocateBanksStep& al, StepResult& r) {
    std::vector<HashAlg> banks;
    for (const auto& b : al.banks) banks.push_back(*HashAlgFromName(b));
    TRY(dut_.tpm().PcrAllocate(banks));
    std::string list;
    for (const auto& b : al.banks) list += std::string(list.empty() ? "" : ",") + b;
    r.checks.push_back({"allocate_banks", true, "PCR banks " + list + " from the next TPM reset"});
    return Status::Ok();
  }

  Status SetClock(uint64_t absolute, int64_t skew, StepResult& r) {
    TRY_ASSIGN(TimeInfo now, dut_.tpm().ReadClock());
    const uint64_t target = skew > 0 ? now.clock.clock_ms + static_cast<uint64_t>(skew) : absolute;
    TRY(dut_.tpm().ClockSet(target));
    r.detail["clock_before_ms"] = now.clock.clock_ms;
    r.detail["clock_set_ms"] = target;
    r.checks.push_back({"clock_set", true, "TPM clock " + std::to_string(now.clock.clock_ms) + " -> " +
                                               std::to_string(target) + " ms"});
    return Status::Ok();
  }

  Status Extend(const ExtendStep& e, StepResult& r) {
    if (banks_.empty()) {
      TRY_ASSIGN(banks_, dut_.tpm().PcrBanks());
    }
    if (firmware_) {
      TRY(firmware_->Measure(dut_.tpm(), banks_, e.pcr, e.event_type, e.data, e.logged));
    } else {
      if (e.logged) {
        const std::string source = options_.bench ? BootLogSourceName(options_.bench->boot_log.source) : "nowhere";
        return Status::Error(Layer::kScenario, "event: tpmlab keeps no event log here (no firmware model, or the "
                                               "bench's log comes from " + source + "), so there is none to append to");
      }
      std::map<HashAlg, Bytes> digests;
      const ByteView bytes(reinterpret_cast<const uint8_t*>(e.data.data()), e.data.size());
      for (HashAlg bank : banks_) {
        TRY_ASSIGN(digests[bank], Hash(bank, bytes));
      }
      TRY(dut_.tpm().Extend(e.pcr, digests));
    }
    r.checks.push_back({e.logged ? "event" : "extend", true,
                        "PCR " + std::to_string(e.pcr) + (e.logged ? " extended and logged" : " extended, not logged")});
    return Status::Ok();
  }

  // --- faults ----------------------------------------------------------------

  Status Fault(const FaultStep& f, StepResult& r) {
    using K = FaultStep::Kind;
    FaultRule rule;
    rule.count = f.count;
    rule.command_code = f.command_code;
    rule.probability = f.probability;
    rule.latency = std::chrono::milliseconds(f.latency_ms);
    rule.response_code = f.response_code;
    std::string what;
    switch (f.kind) {
      case K::kLatency: rule.kind = FaultKind::kLatency; break;
      case K::kDrop: rule.kind = FaultKind::kDrop; break;
      case K::kCorrupt: rule.kind = FaultKind::kCorrupt; break;
      case K::kResponseCode: rule.kind = FaultKind::kResponseCode; break;
      case K::kDisconnect: rule.kind = FaultKind::kDisconnect; break;
      case K::kHang:
        TRY(dut_.Hang(true));
        what = "the TPM hangs (emulator stopped): commands time out after " +
               std::to_string(scenario_.platform.command_timeout_ms) + " ms";
        break;
      case K::kUnhang:
        TRY(dut_.Hang(false));
        what = "the TPM answers again";
        break;
      case K::kKill: {
        FaultRule cut;
        cut.count = 1;
        cut.command_code = f.command_code;
        TRY(dut_.CutPowerDuring(cut));
        what = "power cut while the next " + (f.command_code ? TpmCommandName(*f.command_code) : std::string("command")) +
               " runs";
        break;
      }
      case K::kCutPower: {
        FaultRule cut;
        cut.count = 1;
        cut.skip = static_cast<uint32_t>(rng_() % static_cast<uint64_t>(f.within));
        TRY(dut_.CutPowerDuring(cut));
        cut_armed_for_ = 1;
        r.detail["cut_at_command"] = cut.skip + 1;
        what = "power cut at command " + std::to_string(cut.skip + 1) + " of the next step (drawn from 1.." +
               std::to_string(f.within) + ")";
        break;
      }
      case K::kClear:
        dut_.faults().ClearRules();
        TRY(dut_.Hang(false));
        what = "all faults removed";
        break;
    }
    if (what.empty()) {
      dut_.faults().Add(rule);
      what = std::string(FaultKindName(rule.kind)) +
             (rule.command_code ? " on " + TpmCommandName(*rule.command_code) : std::string(" on any command")) +
             (rule.count != UINT32_MAX ? ", next " + std::to_string(rule.count) : std::string()) +
             (rule.probability < 1 ? ", p=" + std::to_string(rule.probability) : std::string());
    }
    r.checks.push_back({"fault", true, what});
    return Status::Ok();
  }

  Status Wait(int ms) {
    const auto until = Clock::now() + std::chrono::milliseconds(ms);
    while (Clock::now() < until && !(options_.stop && options_.stop->load())) {
      std::this_thread::sleep_for(std::min<Clock::duration>(until - Clock::now(), std::chrono::milliseconds(100)));
    }
    return Status::Ok();
  }

  Status Checkpoint(const CheckpointStep& c, StepResult& r) {
    const fs::path dir = options_.out_dir / "checkpoints" / c.name;
    TRY(dut_.SaveState(dir));
    checkpoints_[c.name] = dir;
    r.checks.push_back({"checkpoint", true, "NV state saved to " + dir.string()});
    return Status::Ok();
  }

  Status Rollback(const RollbackStep& rb, StepResult& r) {
    auto it = checkpoints_.find(rb.name);
    if (it == checkpoints_.end()) {
      return Status::Error(Layer::kScenario, "rollback: checkpoint '" + rb.name + "' was not taken in this run");
    }
    power_lost_ = true;  // the restored state was saved mid-session
    TRY(dut_.RestoreState(it->second));
    TRY(dut_.Startup(scenario_.platform.boot, StartupType::kClear));
    r.checks.push_back({"rollback", true, "NV state restored from checkpoint '" + rb.name + "'"});
    return AfterStartup(StartupType::kClear, {}, rb.snapshot, r);
  }

  // --- firmware --------------------------------------------------------------

  Status FirmwareUpdate(const FirmwareUpdateStep& f, StepResult& r) {
    if (f.model && !MeasuresFirmware()) {
      return Status::Error(Layer::kScenario, "a platform firmware model applies to a DUT tpmlab boots and measures; "
                                             "bench '" + options_.bench->name + "' takes its boot log from " +
                                             BootLogSourceName(options_.bench->boot_log.source));
    }
    if (f.model) {
      const std::string from = firmware_ ? firmware_->model().name : "none";
      if (firmware_) {
        firmware_->set_model(*f.model);
      } else {
        firmware_ = std::make_unique<EmulatedFirmware>(*f.model, scenario_.platform.boot);
      }
      r.detail["platform"] = {{"from", from}, {"to", f.model->name}, {"file", f.model->file}};
      r.checks.push_back({"firmware_update", true, "platform firmware " + from + " -> " + f.model->name +
                                                       ", measured from the next cold boot"});
      return Status::Ok();
    }
    const TpmImage* image = nullptr;
    for (const auto& i : scenario_.platform.images) {
      if (i.name == f.image) image = &i;
    }
    if (image == nullptr) return Status::Error(Layer::kScenario, "no TPM image named '" + f.image + "'");
    TRY_ASSIGN(json before, TpmRecord());
    const uint64_t running = before["firmware_version_raw"].get<uint64_t>();
    // The installed build's version: what the chip reported before any image
    // of this run changed it.
    if (!stock_version_) stock_version_ = running;
    const uint64_t target = image->firmware_version.value_or(*stock_version_);
    std::string library_dir = image->library_dir;
    if (image->firmware_version && library_dir.empty()) {
      TRY_ASSIGN(fs::path dir, DeriveLibtpmsImage(options_.out_dir / "images" / image->name, *stock_version_,
                                                  *image->firmware_version));
      library_dir = dir.string();
    }
    TRY(dut_.SwapImage(image->swtpm, library_dir, running, target));
    TRY(dut_.Startup(scenario_.platform.boot, StartupType::kClear));
    TRY(AfterStartup(StartupType::kClear, {}, /*snapshot=*/false, r));
    TRY_ASSIGN(json after, TpmRecord());
    json survived;
    for (const char* key : {"firmware_version", "ek", "srk", "persistent_handles", "nv_indices"}) {
      survived[key] = before[key] == after[key];
    }
    before.erase("firmware_version_raw");
    after.erase("firmware_version_raw");
    r.detail["tpm"] = {{"image", image->name}, {"swtpm", image->swtpm}, {"library_dir", library_dir},
                       {"before", before}, {"after", after}, {"unchanged", survived}};
    // A firmware update may change the identity a power cycle must keep.
    reference_.reset();
    r.checks.push_back({"firmware_update", true, "TPM image " + image->name + ": firmware " +
                                                     before["firmware_version"].get<std::string>() + " -> " +
                                                     after["firmware_version"].get<std::string>()});
    return Status::Ok();
  }

  // What a TPM firmware update may change, read from the TPM.
  Result<json> TpmRecord() {
    Tpm& tpm = dut_.tpm();
    TRY_ASSIGN(TpmProperties p, tpm.Properties());
    char version[24];
    std::snprintf(version, sizeof(version), "0x%016llx", static_cast<unsigned long long>(p.firmware_version));
    json record = {{"firmware_version", version}, {"firmware_version_raw", p.firmware_version},
                   {"manufacturer", p.manufacturer}};
    TRY_ASSIGN(std::vector<uint32_t> persistent, tpm.PersistentHandles());
    TRY_ASSIGN(std::vector<uint32_t> nv, tpm.NvIndices());
    // Keys that are there, not made for the record (that would fake survival).
    auto persisted = [&](uint32_t handle) {
      return std::find(persistent.begin(), persistent.end(), handle) != persistent.end();
    };
    auto ek = persisted(kEkHandle) ? tpm.EnsureEk() : Result<KeyInfo>(Status::Error(Layer::kTpm, "none"));
    record["ek"] = ek.ok() ? json(ToHex(ek->name)) : json(nullptr);
    auto srk = persisted(kSrkHandle) ? tpm.EnsureSrk() : Result<KeyInfo>(Status::Error(Layer::kTpm, "none"));
    record["srk"] = srk.ok() ? json(ToHex(srk->name)) : json(nullptr);
    auto hex_list = [](const std::vector<uint32_t>& handles) {
      json list = json::array();
      for (uint32_t h : handles) {
        char buf[16];
        std::snprintf(buf, sizeof(buf), "0x%08x", h);
        list.push_back(buf);
      }
      return list;
    };
    record["persistent_handles"] = hex_list(persistent);
    record["nv_indices"] = hex_list(nv);
    return record;
  }

  // The troubleshooting checklist, each item a check (a warning passes).
  Status Doctor(StepResult& r) {
    DoctorOptions o;
    o.snapshot.ak_type = scenario_.platform.ak;
    if (auto log = CurrentEventLog(); log.ok()) {
      o.eventlog = WriteEventLog(*log);
    } else {
      o.eventlog_missing_reason = log.status().message();
    }
    if (enrollment_) o.enrollment = *enrollment_;
    const auto items = RunDoctor(dut_.tpm(), o);
    for (const auto& item : items) {
      r.checks.push_back({"doctor " + item.id, item.status != DoctorStatus::kFail,
                          std::string(DoctorStatusName(item.status)) + ": " + item.detail +
                              (item.advice.empty() || item.status == DoctorStatus::kOk ? "" : " (" + item.advice + ")")});
    }
    r.detail["doctor"] = DoctorToJson(items);
    return Status::Ok();
  }

  // The log the OS would read now, and whether it replays to the PCRs read.
  Check AttachEventLog(Snapshot& s) {
    auto read = CurrentEventLog();
    if (!read.ok()) return {"eventlog_replay", false, read.status().ToString()};
    const EventLog& log = *read;
    s.eventlog = WriteEventLog(log);
    s.eventlog_events = log.size();
    auto replay = ReplayEventLog(log);
    if (!replay.ok()) return {"eventlog_replay", false, replay.status().ToString()};
    s.replay_differs = CompareReplay(*replay, s.pcrs);
    std::string detail;
    for (const auto& [bank, values] : replay->pcrs) {
      if (s.pcrs.count(bank)) s.replay_banks.push_back(bank);
    }
    for (const auto& [bank, pcrs] : s.replay_differs) {
      detail += std::string(detail.empty() ? "" : "; ") + HashAlgName(bank) + " PCRs";
      for (int p : pcrs) detail += " " + std::to_string(p);
    }
    const bool matches = s.replay_differs.empty();
    // A mismatch is the verifier's finding (PCR_REPLAY_MISMATCH); the check
    // records it without failing the step, like any other alarm.
    return {"eventlog_replay", true,
            matches ? "the log's " + std::to_string(log.size()) + " events replay to the PCRs read in every bank"
                    : "replay differs: " + detail};
  }

  const Scenario& scenario_;
  const RunOptions& options_;
  Store& store_;
  Dut& dut_;
  int64_t run_id_;
  std::mt19937_64 rng_;
  int total_;
  int cycles_ = 0;
  int failed_checks_ = 0;
  int uncovered_errors_ = 0;
  int consecutive_errors_ = 0;
  bool ended_ = false;
  bool power_lost_ = false;   // an unorderly power loss happened in this run
  int cut_armed_for_ = 0;     // steps an armed power cut still applies to
  int last_step_with_snapshot_ = -1;
  // The last step that is not an expect, which expect steps judge, and what they covered.
  int judged_ = -1;
  int settled_ = -1;
  std::string judged_where_;
  bool covered_alarms_ = false, covered_error_ = false, covered_refusal_ = false, covered_checks_ = false;
  std::vector<HashAlg> banks_;
  std::optional<Snapshot> reference_;  // the identity to hold across power cycles
  std::unique_ptr<EmulatedFirmware> firmware_;
  std::optional<Snapshot> last_;            // the latest snapshot: counters and drift
  std::optional<Snapshot> before_last_;     // the one before it (expect: pcrs, counters)
  std::optional<Enrollment> enrollment_;    // set by an enroll step
  std::vector<EnrollmentRecord> enrollments_;  // every enroll step's, for enrollment.json
  std::optional<Snapshot> golden_;          // the snapshot enrolled from
  std::map<std::string, fs::path> checkpoints_;
  std::optional<uint64_t> stock_version_;   // the installed libtpms's firmware version
  RunResult result_;
};

// Keeps each distinct log once, as eventlogs/<sha256>.bin beside run.json,
// so any tool can read the exact bytes a snapshot saw.
std::string SaveEventLog(const fs::path& out_dir, const Bytes& log) {
  auto digest = Hash(HashAlg::kSha256, log);
  if (!digest.ok()) return "";
  const std::string name = "eventlogs/" + ToHex(*digest) + ".bin";
  const fs::path file = out_dir / name;
  if (!fs::exists(file)) {
    std::error_code ec;
    fs::create_directories(file.parent_path(), ec);
    std::ofstream(file, std::ios::binary).write(reinterpret_cast<const char*>(log.data()),
                                                static_cast<std::streamsize>(log.size()));
  }
  return name;
}

json StepJsonBody(const StepResult& s, bool with_snapshot) {
  json j = {{"index", s.index},
            {"action", s.action},
            {"status", s.status},
            {"started_at", s.started_at},
            {"duration_ms", s.duration_ms},
            {"checks", ChecksToJson(s.checks)}};
  if (s.cycle) j["cycle"] = *s.cycle;
  if (s.rc) {
    // rc for machines (a number), the rest for people.
    char hex[16];
    std::snprintf(hex, sizeof(hex), "0x%03x", *s.rc);
    j["rc"] = *s.rc;
    j["rc_hex"] = hex;
    j["rc_name"] = TpmResponseCodeName(*s.rc);
    j["rc_text"] = TpmResponseText(*s.rc);
  }
  if (!s.detail.is_null()) j["detail"] = s.detail;
  if (!s.kind.empty()) j["kind"] = s.kind;
  if (!s.error.empty()) j["error"] = s.error;
  json alarms = json::array();
  for (const auto& a : s.alarms) alarms.push_back(AlarmToJson(a));
  j["alarms"] = alarms;
  if (!s.not_run.empty()) j["not_run"] = s.not_run;
  if (!s.drift.is_null()) j["drift"] = s.drift;
  if (!s.golden_drift.is_null()) j["golden_drift"] = s.golden_drift;
  if (with_snapshot && s.snapshot) j["snapshot"] = SnapshotToJson(*s.snapshot);
  j["commands"] = s.trace.size();
  return j;
}

json ExpectationsToJson(const std::vector<Expectation>& expectations) {
  json out = json::array();
  for (const auto& e : expectations) {
    out.push_back({{"step", e.step}, {"where", e.where}, {"name", e.name}, {"passed", e.passed}, {"detail", e.detail}});
  }
  return out;
}

// What ran, for reports: the firmware the platform booted and the TPM
// firmware versions its snapshots reported.
json Provenance(const Scenario& scenario, const RunResult& result, const json& dut) {
  std::set<std::string> platform, tpm;
  if (scenario.platform.firmware) platform.insert(scenario.platform.firmware->name);
  for (const auto& s : result.steps) {
    if (!s.detail.is_null() && s.detail.contains("platform")) platform.insert(s.detail["platform"]["to"].get<std::string>());
    if (s.snapshot) {
      char v[24];
      std::snprintf(v, sizeof(v), "0x%016llx", static_cast<unsigned long long>(s.snapshot->properties.firmware_version));
      tpm.insert(v);
    }
  }
  auto join = [](const std::set<std::string>& items) {
    std::string out;
    for (const auto& i : items) out += (out.empty() ? "" : ",") + i;
    return out;
  };
  return {{"scenario", scenario.name},
          {"scenario_file", scenario.file},
          {"seed", result.seed},
          {"tpmlab_version", kTpmlabVersion},
          {"dut", dut.value("label", dut.value("name", ""))},
          {"platform_firmware", join(platform)},
          {"tpm_firmware_versions", join(tpm)},
          {"dut_state", dut.value("state", "")}};  // new chip, or the one kept (--keep-state)
}

Status WriteRunJson(const fs::path& file, const Scenario& scenario, const RunResult& result,
                    const json& dut, const RunOptions& options, const std::string& started_at,
                    const json& inputs) {
  json steps = json::array();
  std::map<std::string, int> by_kind;
  std::map<std::string, int> alarm_counts;
  int failed = 0;
  for (const auto& s : result.steps) {
    // One alarm per code raised at a step; each finding (per PCR, per bank)
    // stays in the step's alarms with its evidence.
    for (const auto& code : DistinctAlarmCodes(s.alarms)) alarm_counts[code]++;
    steps.push_back(StepJsonBody(s, /*with_snapshot=*/true));
    if (result.expected_failures.count(s.index)) steps.back()["expected_failure"] = true;
    if (s.snapshot && s.snapshot->eventlog) {
      steps.back()["snapshot"]["eventlog"]["file"] = SaveEventLog(file.parent_path(), *s.snapshot->eventlog);
    }
    if (!s.kind.empty()) by_kind[s.kind]++;
    if (result.expected_failures.count(s.index)) continue;
    for (const auto& c : s.checks) failed += c.passed || s.action == "expect" ? 0 : 1;
  }
  int cycles = 0;
  for (const auto& [k, n] : by_kind) cycles += n;
  json run = {{"tpmlab_version", kTpmlabVersion},
              {"scenario", scenario.name},
              {"scenario_file", scenario.file},
              {"seed", result.seed},
              {"status", RunStatusName(result.status)},
              {"started_at", started_at},
              {"finished_at", UtcNow()},
              {"database", fs::absolute(options.database).string()},
              {"run_id", result.run_id},
              {"dut", dut},
              {"summary", {{"steps", result.steps.size()},
                           {"power_cycles", cycles},
                           {"by_kind", by_kind},
                           {"failed_checks", failed},
                           {"expectations", result.expectations.size()},
                           {"failed_expectations", std::count_if(result.expectations.begin(), result.expectations.end(),
                                                                 [](const Expectation& e) { return !e.passed; })},
                           {"alarms", alarm_counts}}},
              {"provenance", Provenance(scenario, result, dut)},
              {"inputs", inputs},
              {"expectations", ExpectationsToJson(result.expectations)},
              {"steps", steps}};
  if (!result.error.empty()) run["error"] = result.error;
  TRY(WriteFileAtomically(file, run.dump(2) + "\n"));
  return WriteFileAtomically(file.parent_path() / "junit.xml", JunitXml(scenario, result, run["provenance"]));
}

}  // namespace

nlohmann::json StepToJson(const StepResult& step, bool with_snapshot) { return StepJsonBody(step, with_snapshot); }

struct Session::State {
  Scenario scenario;
  RunOptions options;
  std::vector<RunFolderLock> locks;  // out_dir's, and a kept chip's folder: held until Finish
  std::unique_ptr<Store> store;
  std::unique_ptr<Dut> dut;
  std::unique_ptr<Run> run;
  json dut_json, inputs;
  std::string started_at;
  int64_t run_id = 0;
  std::optional<RunResult> finished;
};

namespace {

// The emulated DUT's state folder.
fs::path StateDirOf(const RunOptions& options) {
  return options.state_dir.empty() ? options.out_dir / options.dut_name : options.state_dir;
}

RunInfo RunInfoOf(const Scenario& scenario, const RunOptions& options, const json& dut_json,
                  const std::string& started_at, uint64_t seed) {
  RunInfo info;
  info.scenario = scenario.name;
  info.scenario_file = scenario.file;
  info.seed = seed;
  info.started_at = started_at;
  info.tpmlab_version = kTpmlabVersion;
  info.host = Hostname();
  info.dut = dut_json.value("label", options.dut_name);
  info.config_json = json({{"scenario", ScenarioConfigJson(scenario, seed)}, {"dut", dut_json}}).dump();
  return info;
}

std::string ChipId(const DutBusInfo& bus) {
  char id[24];
  std::snprintf(id, sizeof id, "%04x:%04x:%02x", bus.vendor_id, bus.device_id, bus.revision);
  return id;
}

}  // namespace

// The embedded default, or an emulated bench (the simulated SPI TPM).
Status Session::LaunchEmulatedDut(State& st, uint64_t seed) {
  const Scenario& scenario = st.scenario;
  const RunOptions& options = st.options;
  EmulatedDutConfig config;
  config.name = options.dut_name;
  config.state_dir = StateDirOf(options);
  config.banks = scenario.platform.banks;
  config.unix_sockets = options.unix_sockets;
  config.command_timeout = std::chrono::milliseconds(scenario.platform.command_timeout_ms);
  for (const auto& [code, ms] : scenario.platform.command_timeouts_ms) {
    config.command_timeouts[code] = std::chrono::milliseconds(ms);
  }
  config.fault_seed = seed;
  config.initial_state = options.initial_state;
  config.bus = scenario.platform.bus;
  config.tis = scenario.platform.tis;
  if (options.bench) ApplyEmulatedBench(*options.bench, config);
  config.tis.seed = seed;
  // A run starts from a newly manufactured chip (or the state it is given)
  // unless told to keep one.
  std::error_code ec;
  const bool had_state = HasChipState(config.state_dir);
  if (!options.keep_state) fs::remove_all(config.state_dir, ec);
  // Said in run.json's provenance: above all a --keep-state that found no chip.
  std::string state = "new";
  if (options.keep_state && had_state) {
    state = "kept: continued the chip in " + fs::absolute(config.state_dir).string();
  } else if (!options.initial_state.empty()) {
    state = "copied from " + options.initial_state.string();
  } else if (options.keep_state) {
    state = "new: --keep-state found no chip state in " + fs::absolute(config.state_dir).string();
  }
  TRY_ASSIGN(st.dut, Dut::LaunchEmulated(config));
  // The chip as it was before the first command, so a bundle can start a
  // replay from exactly here.
  TRY(CopySwtpmState(config.state_dir, options.out_dir / "initial-state"));
  st.inputs["initial_state"] = "initial-state";

  Dut& dut = *st.dut;
  const std::string version = dut.emulator()->capabilities().version;
  st.dut_json = {{"name", dut.name()},
                 {"kind", "swtpm"},
                 {"label", dut.name() + " (swtpm " + version + ")"},
                 {"swtpm_version", version},
                 {"state_dir", fs::absolute(config.state_dir).string()},
                 {"endpoint", dut.emulator()->data_endpoint().ToString()},
                 {"banks", scenario.platform.banks},
                 {"bus", EmulatedBusName(dut.bus_info().bus)},
                 {"state", state}};
  if (const DutBusInfo bus = dut.bus_info(); bus.bus == EmulatedBus::kTisSpi) {
    st.dut_json["tis"] = {{"vid_did_rid", ChipId(bus)}, {"vendor_id", bus.vendor_id}, {"device_id", bus.device_id},
                          {"revision", bus.revision}, {"wait_states", config.tis.wait_states},
                          {"burst_count", config.tis.burst_count}, {"description", bus.description}};
  }
  return Status::Ok();
}

// A real chip from the bench file: /dev/tpmrm0 or a TPM on a USB bridge.
Status Session::OpenHardwareDut(State& st, uint64_t seed) {
  const Scenario& scenario = st.scenario;
  const RunOptions& options = st.options;
  const Bench& bench = *options.bench;
  BenchDutOptions o;
  o.name = options.dut_name;
  o.command_timeout = std::chrono::milliseconds(scenario.platform.command_timeout_ms);
  for (const auto& [code, ms] : scenario.platform.command_timeouts_ms) {
    o.command_timeouts[code] = std::chrono::milliseconds(ms);
  }
  o.fault_seed = seed;
  TRY_ASSIGN(st.dut, OpenBenchDut(bench, o, options.hardware));
  // Persisting tpmlab's EK, SRK and AK, or evicting someone else's key at
  // their handles, writes NV: only when the bench allows NV writes.
  st.dut->tpm().set_evict_foreign_keys(bench.allow.nv_write);
  st.dut->tpm().set_persist_keys(bench.allow.nv_write);
  Dut& dut = *st.dut;
  const DutBusInfo bus = dut.bus_info();
  st.dut_json = {{"name", dut.name()},
                 {"kind", dut.kind()},
                 {"label", dut.name() + " (" + dut.kind() + " " + bus.description + ")"},
                 {"description", bus.description},
                 {"platform_started", dut.platform_started()},
                 {"power", PowerKindName(bench.power.kind)},
                 {"boot_log", BootLogSourceName(bench.boot_log.source)},
                 {"bus", EmulatedBusName(bus.bus)},
                 {"warnings", dut.warnings()}};
  if (bus.vendor_id != 0) {
    st.dut_json["tis"] = {{"vid_did_rid", ChipId(bus)}, {"vendor_id", bus.vendor_id}, {"device_id", bus.device_id},
                          {"revision", bus.revision}, {"description", bus.description}};
  }
  return Status::Ok();
}

Result<std::unique_ptr<Session>> Session::Open(Scenario scenario_in, RunOptions options_in) {
  std::unique_ptr<Session> session(new Session());
  session->state_ = std::make_unique<State>();
  State& st = *session->state_;
  st.scenario = std::move(scenario_in);
  st.options = std::move(options_in);
  const Scenario& scenario = st.scenario;
  const RunOptions& options = st.options;
  // Bad input first: nothing is made for a scenario that cannot run.
  TRY(ValidateScenario(scenario));
  if (options.bench) TRY(RefusedSteps(scenario.steps, *options.bench));
  const uint64_t seed = options.seed.value_or(scenario.seed);
  std::error_code ec;
  fs::create_directories(options.out_dir, ec);
  if (ec) {
    return Status::Error(Layer::kStore, "cannot create " + options.out_dir.string() + ": " + ec.message());
  }
  // One run at a time in a folder: a second one says so at once instead of
  // fighting the first over its emulator state.
  TRY_ASSIGN(RunFolderLock out_lock, RunFolderLock::Acquire(options.out_dir));
  st.locks.push_back(std::move(out_lock));
  if (!options.state_dir.empty() && !(options.bench && !options.bench->emulated())) {
    const fs::path chip_folder = fs::absolute(options.state_dir).parent_path();
    if (!fs::equivalent(chip_folder, options.out_dir, ec)) {
      fs::create_directories(chip_folder, ec);
      TRY_ASSIGN(RunFolderLock chip_lock, RunFolderLock::Acquire(chip_folder));
      st.locks.push_back(std::move(chip_lock));
    }
  }
  if (Status started = Start(st, seed); !started.ok()) {
    // CI reads run.json and junit.xml: a run that could not start leaves
    // both, saying why, as any failed run does.
    RecordFailedStart(st, seed, started);
    return started;
  }
  if (options.on_dut_ready) options.on_dut_ready(*st.dut);
  st.run = std::make_unique<Run>(st.scenario, st.options, *st.store, *st.dut, st.run_id, seed);
  return session;
}

// The store, the inputs, the DUT and the run's row.
Status Session::Start(State& st, uint64_t seed) {
  const RunOptions& options = st.options;
  TRY_ASSIGN(st.store, Store::Open(options.database));
  TRY_ASSIGN(st.inputs, SaveRunInputs(st.scenario, options.out_dir));
  if (options.bench) {
    std::error_code copy_error;
    fs::create_directories(options.out_dir / "inputs", copy_error);
    fs::copy_file(options.bench->file, options.out_dir / "inputs" / "bench.yaml",
                  fs::copy_options::overwrite_existing, copy_error);
    if (!copy_error) st.inputs["bench"] = "inputs/bench.yaml";
  }
  st.started_at = UtcNow();
  if (options.bench && !options.bench->emulated()) {
    TRY(OpenHardwareDut(st, seed));
  } else {
    TRY(LaunchEmulatedDut(st, seed));
  }
  if (options.bench) {
    st.dut_json["bench"] = options.bench->name;
    st.dut_json["bench_file"] = options.bench->file;
  }
  auto run_id = st.store->BeginRun(RunInfoOf(st.scenario, st.options, st.dut_json, st.started_at, seed));
  if (!run_id.ok()) {
    st.dut->Close();
    return run_id.status();
  }
  st.run_id = *run_id;
  return Status::Ok();
}

void Session::RecordFailedStart(State& st, uint64_t seed, const Status& why) {
  const RunOptions& options = st.options;
  if (st.started_at.empty()) st.started_at = UtcNow();
  if (!st.dut_json.contains("label")) {
    const std::string what = options.bench ? "bench " + options.bench->name : std::string("swtpm");
    st.dut_json["name"] = options.dut_name;
    st.dut_json["label"] = options.dut_name + " (" + what + ", not started)";
    if (options.bench) {
      st.dut_json["bench"] = options.bench->name;
      st.dut_json["bench_file"] = options.bench->file;
    }
  }
  RunResult result;
  result.status = RunStatus::kError;
  result.seed = seed;
  result.error = "the run could not start: " + why.ToString();
  if (st.store && st.run_id == 0) {
    // The database lists it too, so a run id in run.json always resolves.
    if (auto id = st.store->BeginRun(RunInfoOf(st.scenario, st.options, st.dut_json, st.started_at, seed)); id.ok()) {
      st.run_id = *id;
      (void)st.store->FinishRun(st.run_id, RunStatusName(result.status), UtcNow());
    }
  }
  result.run_id = st.run_id;
  result.run_json = options.out_dir / "run.json";
  (void)WriteRunJson(result.run_json, st.scenario, result, st.dut_json, options, st.started_at, st.inputs);
}

Session::Session() = default;

Session::~Session() {
  // A session that never opened fully has nothing to finish.
  if (state_ && state_->run && !state_->finished) (void)Finish();
}

std::vector<StepResult> Session::Execute(const Step& step) {
  if (state_->finished) return {};
  const size_t before = state_->run->result().steps.size();
  state_->run->Execute(step);
  const auto& steps = state_->run->result().steps;
  return std::vector<StepResult>(steps.begin() + static_cast<std::ptrdiff_t>(before), steps.end());
}

bool Session::ended() const { return state_->finished.has_value() || state_->run->Stopped(); }

Dut& Session::dut() { return *state_->dut; }

const Scenario& Session::scenario() const { return state_->scenario; }

const RunResult& Session::Finish() {
  State& st = *state_;
  if (st.finished) return *st.finished;
  RunResult result = st.run->Finish();
  st.dut->Close();
  result.run_json = st.options.out_dir / "run.json";
  Status finished = st.store->FinishRun(st.run_id, RunStatusName(result.status), UtcNow());
  Status written = WriteRunJson(result.run_json, st.scenario, result, st.dut_json, st.options, st.started_at, st.inputs);
  for (const Status& s : {finished, written}) {
    if (!s.ok()) {
      result.status = RunStatus::kError;
      result.error += (result.error.empty() ? "" : "; ") + s.ToString();
    }
  }
  st.locks.clear();  // the folder is free for the next run
  st.finished = std::move(result);
  return *st.finished;
}

Result<RunResult> RunScenario(const Scenario& scenario, const RunOptions& options) {
  TRY_ASSIGN(std::unique_ptr<Session> session, Session::Open(scenario, options));
  for (const auto& step : session->scenario().steps) {
    if (session->ended()) break;
    session->Execute(step);
  }
  return session->Finish();
}

}  // namespace tpmlab
