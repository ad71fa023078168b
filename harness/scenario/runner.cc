#include "harness/runner.h"

#include <unistd.h>

#include <fstream>
#include <random>

#include "harness/boot_source.h"
#include "harness/drift.h"
#include "harness/replay.h"
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
            {"command_timeout_ms", s.platform.command_timeout_ms}}}};
}

class Run {
 public:
  Run(const Scenario& scenario, const RunOptions& options, Store& store, Dut& dut, int64_t run_id,
      uint64_t seed)
      : scenario_(scenario), options_(options), store_(store), dut_(dut), run_id_(run_id),
        rng_(seed), total_(CountSteps(scenario.steps)) {
    result_.run_id = run_id;
    result_.seed = seed;
    if (scenario.platform.firmware) {
      firmware_ = std::make_unique<EmulatedFirmware>(*scenario.platform.firmware, scenario.platform.boot);
    }
  }

  RunResult Execute() {
    ExecuteSteps(scenario_.steps);
    if (result_.status == RunStatus::kPassed && failed_checks_ > 0) result_.status = RunStatus::kFailed;
    return std::move(result_);
  }

 private:
  bool Stopped() const { return ended_ || (options_.stop && options_.stop->load()); }

  void ExecuteSteps(const std::vector<Step>& steps) {
    for (const auto& step : steps) {
      if (Stopped()) break;
      if (const auto* r = std::get_if<RepeatStep>(&step.action)) {
        for (int i = 0; i < r->count && !Stopped(); ++i) ExecuteSteps(r->steps);
        continue;
      }
      ExecuteOne(step);
    }
    if (!ended_ && options_.stop && options_.stop->load()) {
      ended_ = true;
      result_.status = RunStatus::kInterrupted;
      result_.error = "interrupted";
    }
  }

  void ExecuteOne(const Step& step) {
    StepResult r;
    r.index = static_cast<int>(result_.steps.size());
    r.action = StepActionName(step);
    r.started_at = UtcNow();
    const auto start = Clock::now();
    Status s = Dispatch(step, r);
    r.duration_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    r.trace = dut_.trace().TakeRecords();
    if (r.snapshot) r.snapshot->latency_us = LatencyByCommand(r.trace);
    if (!s.ok()) {
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
      result_.status = RunStatus::kError;
      result_.error = step.where.ToString() + ": " + r.error;
      ended_ = true;
    } else {
      r.status = AllPassed(r.checks) ? "passed" : "failed";
      for (const auto& c : r.checks) failed_checks_ += c.passed ? 0 : 1;
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

  Status Dispatch(const Step& step, StepResult& r) {
    if (const auto* b = std::get_if<BootStep>(&step.action)) return Boot(*b, r);
    if (const auto* p = std::get_if<PowerCycleStep>(&step.action)) return PowerCycle(*p, r);
    if (std::get_if<SnapshotStep>(&step.action)) return Snap(r);
    if (std::get_if<EnrollStep>(&step.action)) return Enroll(r);
    return Status::Error(Layer::kHarness, "unhandled step");
  }

  // After Startup: check the PCRs against the rules, measure, snapshot.
  Status AfterStartup(StartupType startup, const PcrValues& before, bool snapshot, StepResult& r) {
    if (banks_.empty()) {
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
    TRY(dut_.PowerOn());
    TRY(dut_.Startup(scenario_.platform.boot, StartupType::kClear));
    banks_.clear();
    return AfterStartup(StartupType::kClear, {}, b.snapshot, r);
  }

  Status PowerCycle(const PowerCycleStep& p, StepResult& r) {
    const PowerCycleKind kind = p.kind ? *p.kind : Draw(p.mix, rng_);
    r.cycle = ++cycles_;
    r.kind = PowerCycleKindName(kind);
    if (banks_.empty()) {
      TRY_ASSIGN(banks_, dut_.tpm().PcrBanks());
    }
    // What the TPM held when it went down, to judge what it kept.
    TRY_ASSIGN(TimeInfo before_clock, dut_.tpm().ReadClock());
    TRY_ASSIGN(PcrValues before_pcrs, dut_.tpm().ReadPcrs(banks_));
    TRY(dut_.PowerCycle(kind, scenario_.platform.boot));
    TRY(AfterStartup(StartupAfter(kind), before_pcrs, p.snapshot, r));
    if (r.snapshot) {
      auto counters = CheckCounters(kind, before_clock.clock, r.snapshot->clock());
      r.checks.insert(r.checks.end(), counters.begin(), counters.end());
    }
    return Status::Ok();
  }

  Status Snap(StepResult& r) {
    SnapshotOptions o;
    o.ak_type = scenario_.platform.ak;
    TRY_ASSIGN(Snapshot s, TakeSnapshot(dut_.tpm(), o));
    r.checks.push_back(CheckQuote(s));
    if (firmware_) r.checks.push_back(AttachEventLog(s));
    // Judge it as a verifier would, against the enrollment and the last quote.
    Verdict verdict = Verify(s, last_ ? &*last_ : nullptr, enrollment_ ? &*enrollment_ : nullptr);
    r.alarms = std::move(verdict.alarms);
    r.not_run = std::move(verdict.not_run);
    // And explain what moved since the last boot and since the golden one.
    if (last_) r.drift = DriftToJson(DiffSnapshots(*last_, s));
    if (golden_) r.golden_drift = DriftToJson(DiffSnapshots(*golden_, s));
    last_ = s;
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
    TRY(store_.RecordEnrollment(run_id_, r.index, *enrollment_));
    const fs::path file = options_.out_dir / "enrollment.json";
    std::ofstream(file) << EnrollmentToJson(*enrollment_).dump(2) << "\n";
    r.checks.push_back({"enrolled", true, "EK " + ToHex(enrollment_->ek_name) + ", AK " +
                                              ToHex(enrollment_->ak_name) + "; golden reference from step " +
                                              std::to_string(r.index - 1) + " (" + file.string() + ")"});
    return Status::Ok();
  }

  // The log the OS would read now, and whether it replays to the PCRs read.
  Check AttachEventLog(Snapshot& s) {
    const EventLog& log = firmware_->log();
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
    return {"eventlog_replay", matches,
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
  bool ended_ = false;
  std::vector<HashAlg> banks_;
  std::optional<Snapshot> reference_;  // the first snapshot: identity to hold
  std::unique_ptr<EmulatedFirmware> firmware_;
  std::optional<Snapshot> last_;            // the latest snapshot: counters and drift
  std::optional<Enrollment> enrollment_;    // set by an enroll step
  std::optional<Snapshot> golden_;          // the snapshot enrolled from
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

json StepToJson(const StepResult& s) {
  json j = {{"index", s.index},
            {"action", s.action},
            {"status", s.status},
            {"started_at", s.started_at},
            {"duration_ms", s.duration_ms},
            {"checks", ChecksToJson(s.checks)}};
  if (s.cycle) j["cycle"] = *s.cycle;
  if (!s.kind.empty()) j["kind"] = s.kind;
  if (!s.error.empty()) j["error"] = s.error;
  json alarms = json::array();
  for (const auto& a : s.alarms) alarms.push_back(AlarmToJson(a));
  j["alarms"] = alarms;
  if (!s.not_run.empty()) j["not_run"] = s.not_run;
  if (!s.drift.is_null()) j["drift"] = s.drift;
  if (!s.golden_drift.is_null()) j["golden_drift"] = s.golden_drift;
  if (s.snapshot) j["snapshot"] = SnapshotToJson(*s.snapshot);
  j["commands"] = s.trace.size();
  return j;
}

Status WriteRunJson(const fs::path& file, const Scenario& scenario, const RunResult& result,
                    const json& dut, const RunOptions& options, const std::string& started_at) {
  json steps = json::array();
  std::map<std::string, int> by_kind;
  std::map<std::string, int> alarm_counts;
  int failed = 0;
  for (const auto& s : result.steps) {
    for (const auto& a : s.alarms) alarm_counts[a.code]++;
    steps.push_back(StepToJson(s));
    if (s.snapshot && s.snapshot->eventlog) {
      steps.back()["snapshot"]["eventlog"]["file"] = SaveEventLog(file.parent_path(), *s.snapshot->eventlog);
    }
    if (!s.kind.empty()) by_kind[s.kind]++;
    for (const auto& c : s.checks) failed += c.passed ? 0 : 1;
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
                           {"alarms", alarm_counts}}},
              {"steps", steps}};
  if (!result.error.empty()) run["error"] = result.error;
  const fs::path tmp = file.string() + ".tmp";
  {
    std::ofstream out(tmp);
    out << run.dump(2) << "\n";
    if (!out) return Status::Error(Layer::kStore, "cannot write " + tmp.string());
  }
  std::error_code ec;
  fs::rename(tmp, file, ec);  // atomic: readers never see half a file
  if (ec) return Status::Error(Layer::kStore, "cannot write " + file.string() + ": " + ec.message());
  return Status::Ok();
}

}  // namespace

Result<RunResult> RunScenario(const Scenario& scenario, const RunOptions& options) {
  TRY(ValidateScenario(scenario));
  const uint64_t seed = options.seed.value_or(scenario.seed);
  std::error_code ec;
  fs::create_directories(options.out_dir, ec);
  if (ec) {
    return Status::Error(Layer::kStore, "cannot create " + options.out_dir.string() + ": " + ec.message());
  }
  TRY_ASSIGN(std::unique_ptr<Store> store, Store::Open(options.database));

  EmulatedDutConfig config;
  config.state_dir = options.out_dir / "dut0";
  config.banks = scenario.platform.banks;
  config.unix_sockets = options.unix_sockets;
  config.command_timeout = std::chrono::milliseconds(scenario.platform.command_timeout_ms);
  // A run starts from a newly manufactured chip unless told to keep one.
  if (!options.keep_state) fs::remove_all(config.state_dir, ec);
  TRY_ASSIGN(std::unique_ptr<Dut> dut, Dut::LaunchEmulated(config));

  const std::string started_at = UtcNow();
  json dut_json = {{"name", dut->name()},
                   {"kind", "swtpm"},
                   {"swtpm_version", dut->emulator()->capabilities().version},
                   {"state_dir", fs::absolute(config.state_dir).string()},
                   {"endpoint", dut->emulator()->data_endpoint().ToString()},
                   {"banks", scenario.platform.banks}};
  RunInfo info;
  info.scenario = scenario.name;
  info.scenario_file = scenario.file;
  info.seed = seed;
  info.started_at = started_at;
  info.tpmlab_version = kTpmlabVersion;
  info.host = Hostname();
  info.dut = dut->name() + " (swtpm " + dut->emulator()->capabilities().version + ")";
  info.config_json = json({{"scenario", ScenarioConfigJson(scenario, seed)}, {"dut", dut_json}}).dump();
  TRY_ASSIGN(int64_t run_id, store->BeginRun(info));

  if (options.on_dut_ready) options.on_dut_ready(*dut);
  Run run(scenario, options, *store, *dut, run_id, seed);
  RunResult result = run.Execute();
  dut->Close();
  result.run_json = options.out_dir / "run.json";
  Status finished = store->FinishRun(run_id, RunStatusName(result.status), UtcNow());
  Status written = WriteRunJson(result.run_json, scenario, result, dut_json, options, started_at);
  for (const Status& s : {finished, written}) {
    if (!s.ok()) {
      result.status = RunStatus::kError;
      result.error += (result.error.empty() ? "" : "; ") + s.ToString();
    }
  }
  return result;
}

}  // namespace tpmlab
