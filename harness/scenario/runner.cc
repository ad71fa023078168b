// The run loop: executes a scenario's steps one at a time, records each in
// the store, judges what no expect step covered, and dispatches each step to
// its family (run.h lists them).
#include <algorithm>

#include "run.h"

namespace tpmlab {

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

Run::Run(const Scenario& scenario, const RunOptions& options, Store& store, Dut& dut, int64_t run_id,
         uint64_t seed)
    : scenario_(scenario), options_(options), store_(store), dut_(dut), run_id_(run_id),
      rng_(seed), total_(CountSteps(scenario.steps)) {
  result_.run_id = run_id;
  result_.seed = seed;
  if (scenario.platform.firmware && MeasuresFirmware()) {
    firmware_ = std::make_unique<EmulatedFirmware>(*scenario.platform.firmware, scenario.platform.boot);
  }
}

void Run::Execute(const Step& step, std::vector<StepResult>* keep) {
  keep_ = keep;
  if (!Stopped()) ExecuteStep(step);
  NoteInterrupt();
  keep_ = nullptr;
}

RunResult Run::Finish() {
  Settle();
  if (result_.status == RunStatus::kPassed && uncovered_errors_ > 0) result_.status = RunStatus::kError;
  if (result_.status == RunStatus::kPassed && failed_checks_ > 0) result_.status = RunStatus::kFailed;
  return std::move(result_);
}

bool Run::Stopped() const {
  return ended_ || (options_.stop && options_.stop->load()) ||
         (options_.max_steps && steps_run_ >= std::max(0, *options_.max_steps));
}

void Run::NoteInterrupt() {
  if (!ended_ && options_.stop && options_.stop->load()) {
    ended_ = true;
    result_.status = RunStatus::kInterrupted;
    result_.error = "interrupted";
  }
}

void Run::ExecuteSteps(const std::vector<Step>& steps) {
  for (const auto& step : steps) {
    if (Stopped()) break;
    ExecuteStep(step);
  }
  NoteInterrupt();
}

void Run::ExecuteStep(const Step& step) {
  if (const auto* r = std::get_if<RepeatStep>(&step.action)) {
    for (int i = 0; i < r->count && !Stopped(); ++i) ExecuteSteps(r->steps);
  } else if (const auto* c = std::get_if<ChooseStep>(&step.action)) {
    ExecuteStep(c->steps[Choose(*c)]);
  } else {
    ExecuteOne(step);
  }
}

size_t Run::Choose(const ChooseStep& c) {
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

void Run::ExecuteOne(const Step& step) {
  const bool is_expect = std::holds_alternative<ExpectStep>(step.action);
  if (!is_expect) Settle();
  StepResult r;
  r.index = steps_run_;
  r.action = StepActionName(step);
  r.started_at = UtcNow();
  const size_t injected_before = dut_.faults().injected().size();
  const auto start = Clock::now();
  Status s = Dispatch(step, r);
  r.duration_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  r.trace = dut_.trace().TakeRecords();
  for (auto& t : r.trace) t.since_step_start = t.started - start;  // the store keeps this, not `started`
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
        IsTpmResponse(s, rc::kFailure)) {
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
    judged_ = steps_run_;
    judged_where_ = step.where.ToString();
    covered_alarms_ = covered_error_ = covered_refusal_ = covered_checks_ = false;
  }
  Status stored = store_.RecordStep(run_id_, r);
  if (!stored.ok()) {
    // Results that cannot be kept end the run: never run on without a record.
    result_.status = RunStatus::kError;
    result_.error = stored.ToString() + "\n(step " + std::to_string(r.index) +
                    " could not be stored, so the run stops; the steps stored before it are kept)";
    ended_ = true;
  } else {
    ++steps_stored_;
  }
  if (options_.on_step) options_.on_step(r, total_);
  Tally(r);
  ++steps_run_;
  // The step is in the store: the run keeps only the one expect steps judge.
  if (keep_) keep_->push_back(r);
  if (!is_expect) {
    r.trace.clear();
    r.trace.shrink_to_fit();
    judged_step_ = std::move(r);
  }
}

// What the run counts as it goes, instead of keeping its steps.
void Run::Tally(const StepResult& r) {
  if (r.cycle) {
    ++result_.power_cycles;
    if (r.status == "passed") ++result_.passed_cycles;
  }
  if (r.action != "expect") {
    for (const auto& c : r.checks) result_.failed_checks += c.passed ? 0 : 1;
  }
  for (const auto& code : DistinctAlarmCodes(r.alarms)) {
    auto it = std::find_if(result_.alarms.begin(), result_.alarms.end(),
                           [&](const AlarmTally& t) { return t.code == code; });
    if (it == result_.alarms.end()) it = result_.alarms.insert(result_.alarms.end(), AlarmTally{code, 0, {}});
    ++it->steps;
    if (it->first_steps.size() < AlarmTally::kStepsKept) it->first_steps.push_back(r.index);
  }
}

// Steps whose TPM refusal is an outcome to record, not a broken run.
bool Run::IsRefusal(const Step& step, const Status& s) {
  if (s.layer() != Layer::kTpm || IsTpmResponse(s, rc::kFailure)) return false;  // failure mode is not a refusal
  return std::holds_alternative<ClearStep>(step.action) || std::holds_alternative<ClearControlStep>(step.action) ||
         std::holds_alternative<ChangeEpsStep>(step.action) || std::holds_alternative<ChangePpsStep>(step.action) ||
         std::holds_alternative<HierarchyStep>(step.action) ||
         std::holds_alternative<AllocateBanksStep>(step.action) ||
         std::holds_alternative<ClockSetStep>(step.action) || std::holds_alternative<ClockSkewStep>(step.action);
}

// Faults that hit this step's commands, and a power cut that did.
void Run::NoteInjectedFaults(size_t before, StepResult& r) {
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
bool Run::IsVerifierCheck(const std::string& name) {
  return name == "quote_verified" || name == "ek_name" || name == "srk_name" || name == "ak_name" ||
         name == "firmware_version" || name == "eventlog_replay";
}

// Judges what no expect step covered in the step last executed.
void Run::Settle() {
  if (judged_ < 0 || settled_ == judged_) return;
  settled_ = judged_;
  const StepResult& s = *judged_step_;
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
    result_.failed_checks -= explained;  // asked for: not a failed check
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
bool Run::MeasuresFirmware() const {
  return !options_.bench || options_.bench->boot_log.source == BootLogSource::kEmulatedFirmware;
}

// The log a verifier would get now: the firmware model's, or the bench's file.
Result<EventLog> Run::CurrentEventLog() const {
  if (firmware_) return firmware_->log();
  if (Board* board = dut_.board()) {
    TRY_ASSIGN(Bytes bytes, board->ReadEventLog());
    auto log = ParseEventLog(bytes);
    if (!log.ok()) return log.status().Wrap("the board's event log (from tpmlab-agent)");
    return log;
  }
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

bool Run::HasEventLog() const { return firmware_ || (options_.bench && !MeasuresFirmware()); }

Status Run::Dispatch(const Step& step, StepResult& r) {
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
}  // namespace tpmlab
