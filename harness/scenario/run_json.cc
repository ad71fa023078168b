// run.json: each step as recorded, the run's provenance and summary, and the
// event logs its snapshots saw, kept beside it (junit.xml: run_files.cc).
// Written from the store, one step in memory at a time: at the end of a run
// and by `tpmlab export`, by the same code.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>

#include "harness/run_files.h"
#include "harness/snapshot_json.h"
#include "run.h"

namespace tpmlab {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Keeps each distinct log once, as eventlogs/<sha256>.bin beside run.json,
// so any tool can read the exact bytes a snapshot saw.
Result<std::string> EventLogFileName(const Bytes& log) {
  TRY_ASSIGN(Bytes digest, Hash(HashAlg::kSha256, log));
  return "eventlogs/" + ToHex(digest) + ".bin";
}

Status SaveEventLog(const fs::path& out_dir, const Bytes& log) {
  TRY_ASSIGN(const std::string name, EventLogFileName(log));
  const fs::path file = out_dir / name;
  std::error_code ec;
  if (fs::is_regular_file(file, ec)) return Status::Ok();  // the same bytes, kept for an earlier step
  fs::create_directories(file.parent_path(), ec);
  if (ec) return Status::Error(Layer::kStore, "cannot keep the event log " + file.string() + ": " + ec.message());
  return WriteFileAtomically(file, std::string(log.begin(), log.end()));
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

// The run's DUT, inputs, expectations, error and expected failures: what
// FinishRun stored, or (a run that never finished) what BeginRun did.
struct Outcome {
  json dut, inputs, expectations = json::array();
  std::string error;
  std::set<int> expected_failures;
};

Outcome OutcomeOf(const StoredRun& run) {
  json config = json::parse(run.info.config_json, nullptr, false);
  if (!config.is_object()) config = json::object();
  const json& stored = run.outcome.is_object() ? run.outcome : config;
  Outcome o;
  o.dut = stored.value("dut", config.value("dut", json::object()));
  if (!o.dut.contains("label")) o.dut["label"] = run.info.dut;
  o.inputs = stored.value("inputs", config.value("inputs", json({{"scenario", nullptr}, {"files", json::array()}})));
  if (run.outcome.is_object()) {
    o.expectations = run.outcome.value("expectations", json::array());
    o.error = run.outcome.value("error", "");
    for (const auto& i : run.outcome.value("expected_failures", json::array())) o.expected_failures.insert(i.get<int>());
  } else if (run.status == "interrupted") {
    o.error = "killed: no finish recorded (the process writing the run ended without finishing it; "
              "the steps it stored are kept)";
  }
  return o;
}

// What the steps add up to, gathered as they stream by.
struct Tallies {
  size_t steps = 0;
  double total_ms = 0;
  int failed = 0;
  std::map<std::string, int> by_kind, alarms;
  std::set<std::string> platform_firmware, tpm_firmware;
  std::set<int> errored;  // steps an expectation names that could not complete
};

void Tally(const StepResult& s, const Outcome& o, const std::set<int>& judged, Tallies& t) {
  ++t.steps;
  t.total_ms += s.duration_ms;
  // One alarm per code raised at a step; each finding (per PCR, per bank)
  // stays in the step's alarms with its evidence.
  for (const auto& code : DistinctAlarmCodes(s.alarms)) t.alarms[code]++;
  if (!s.kind.empty()) t.by_kind[s.kind]++;
  if (!o.expected_failures.count(s.index)) {
    for (const auto& c : s.checks) t.failed += c.passed || s.action == "expect" ? 0 : 1;
  }
  if (s.status == "error" && judged.count(s.index)) t.errored.insert(s.index);
  if (!s.detail.is_null() && s.detail.contains("platform")) {
    t.platform_firmware.insert(s.detail["platform"]["to"].get<std::string>());
  }
  if (s.snapshot) {
    char v[24];
    std::snprintf(v, sizeof(v), "0x%016llx", static_cast<unsigned long long>(s.snapshot->properties.firmware_version));
    t.tpm_firmware.insert(v);
  }
}

// What ran, for reports: the firmware the platform booted and the TPM
// firmware versions its snapshots reported.
json Provenance(const StoredRun& run, const Outcome& o, Tallies& t) {
  const json config = json::parse(run.info.config_json, nullptr, false);
  if (config.is_object()) {
    const json firmware = config.value("scenario", json::object()).value("platform", json::object())
                              .value("firmware", json(nullptr));
    if (firmware.is_object()) t.platform_firmware.insert(firmware.value("name", ""));
  }
  auto join = [](const std::set<std::string>& items) {
    std::string out;
    for (const auto& i : items) out += (out.empty() ? "" : ",") + i;
    return out;
  };
  return {{"scenario", run.info.scenario},
          {"scenario_file", run.info.scenario_file},
          {"seed", run.info.seed},
          {"tpmlab_version", run.info.tpmlab_version},
          {"dut", o.dut.value("label", o.dut.value("name", ""))},
          {"platform_firmware", join(t.platform_firmware)},
          {"tpm_firmware_versions", join(t.tpm_firmware)},
          {"dut_state", o.dut.value("state", "")}};  // new chip, or the one kept (--keep-state)
}

// A step's JSON, nested as run.json's "steps" holds it (dump(2) at depth 2).
std::string Indented(const json& step) {
  std::string text = "    " + step.dump(2);
  for (size_t at = text.find('\n'); at != std::string::npos; at = text.find('\n', at + 5)) text.insert(at + 1, "    ");
  return text;
}

// A step as a compact run.json holds it, on one line: the snapshot becomes
// where the whole one is (the event log stays beside run.json) and a passed
// check keeps its name; everything else is as in the full form. The
// database has all of it (`tpmlab export DB:RUN --step N`).
void Compact(json& step, const std::string& database, int64_t run_id) {
  if (step.contains("snapshot")) {
    json ref = {{"stored", {{"database", database}, {"run_id", run_id}, {"step", step["index"]}}}};
    if (step["snapshot"].contains("eventlog")) ref["eventlog"] = {{"file", step["snapshot"]["eventlog"].value("file", "")}};
    step["snapshot"] = std::move(ref);
  }
  for (auto& c : step["checks"]) {
    if (c.value("passed", false)) c.erase("detail");
  }
}

}  // namespace

Result<RunJsonForm> ParseRunJsonForm(const std::string& text) {
  if (text == "auto" || text.empty()) return RunJsonForm::kAuto;
  if (text == "full") return RunJsonForm::kFull;
  if (text == "compact") return RunJsonForm::kCompact;
  return Status::Parse("run.json form '" + text + "': expected auto, full or compact");
}

Result<json> StepToRunJson(const StepResult& s, const fs::path& out_dir) {
  json j = StepJsonBody(s, /*with_snapshot=*/true);
  if (s.snapshot && s.snapshot->eventlog) {
    if (!out_dir.empty()) TRY(SaveEventLog(out_dir, *s.snapshot->eventlog));
    TRY_ASSIGN(j["snapshot"]["eventlog"]["file"], EventLogFileName(*s.snapshot->eventlog));
  }
  return j;
}

Status WriteRunFiles(const StoredRun& run, const StepSource& steps, const fs::path& database, const fs::path& out_dir,
                     RunJsonForm form) {
  const Outcome o = OutcomeOf(run);
  const bool compact = form == RunJsonForm::kCompact || (form == RunJsonForm::kAuto && run.steps > kFullRunJsonMaxSteps);
  const std::string db = DatabaseReference(database);
  std::set<int> judged;
  for (const auto& e : o.expectations) judged.insert(e.value("step", -1));

  // The steps go to a spool file first: run.json's summary and provenance,
  // which come before them, are known only once all have streamed by.
  const fs::path run_json = out_dir / "run.json";
  const fs::path spool_path = out_dir / "run.json.steps.tmp";
  struct RemoveSpool {
    fs::path file;
    ~RemoveSpool() { std::error_code ec; fs::remove(file, ec); }
  } remove_spool{spool_path};
  std::ofstream spool(spool_path, std::ios::binary | std::ios::trunc);
  if (!spool) return Status::Error(Layer::kStore, "cannot write " + spool_path.string());
  JunitWriter junit(out_dir / "junit.xml");
  Tallies t;
  Status evidence = Status::Ok();  // the first event log that could not be kept
  TRY(steps([&](StepResult&& s) -> Status {
    Tally(s, o, judged, t);
    TRY_ASSIGN(json j, StepToRunJson(s));
    if (s.snapshot && s.snapshot->eventlog) {
      // A run whose evidence is not kept is not a pass: run.json says so.
      if (Status kept = SaveEventLog(out_dir, *s.snapshot->eventlog); !kept.ok() && evidence.ok()) evidence = kept;
    }
    if (o.expected_failures.count(s.index)) j["expected_failure"] = true;
    if (compact) Compact(j, db, run.id);
    spool << (t.steps == 1 ? "" : ",\n") << (compact ? "    " + j.dump() : Indented(j));
    // Expect steps and refusals are judged by the expectations (a step
    // error always has one: expected, or "step N completes" failed).
    if (!(s.status == "passed" || s.status == "refused" || s.status == "error" || s.action == "expect" ||
          o.expected_failures.count(s.index))) {
      std::string failed = s.error;
      for (const auto& c : s.checks) {
        if (!c.passed) failed += std::string(failed.empty() ? "" : "\n") + c.name + ": " + c.detail;
      }
      junit.AddStepCase(run.info.scenario, {"step " + std::to_string(s.index) + " (" + s.action + ")", s.duration_ms,
                                            failed, false});
    }
    if (!spool) return Status::Error(Layer::kStore, "cannot write " + spool_path.string());
    return Status::Ok();
  }));
  spool.close();
  if (!spool) return Status::Error(Layer::kStore, "cannot write " + spool_path.string());

  int cycles = 0;
  for (const auto& [k, n] : t.by_kind) cycles += n;
  const int failed_expectations = static_cast<int>(std::count_if(
      o.expectations.begin(), o.expectations.end(), [](const json& e) { return !e.value("passed", false); }));
  const json steps_marker = "\u0001steps\u0001";
  std::string status = run.status, error = o.error;
  if (!evidence.ok()) {
    status = "error";
    error += (error.empty() ? "" : "; ") + evidence.ToString();
  }
  json report = {{"tpmlab_version", run.info.tpmlab_version},
                 {"scenario", run.info.scenario},
                 {"scenario_file", run.info.scenario_file},
                 {"seed", run.info.seed},
                 {"status", status},
                 {"started_at", run.info.started_at},
                 {"finished_at", run.finished_at.empty() ? json(nullptr) : json(run.finished_at)},
                 {"database", db},
                 {"run_id", run.id},
                 {"dut", o.dut},
                 {"summary", {{"steps", t.steps},
                              {"power_cycles", cycles},
                              {"by_kind", t.by_kind},
                              {"failed_checks", t.failed},
                              {"expectations", o.expectations.size()},
                              {"failed_expectations", failed_expectations},
                              {"alarms", t.alarms}}},
                 {"provenance", Provenance(run, o, t)},
                 {"inputs", o.inputs},
                 {"expectations", o.expectations},
                 {"steps", steps_marker}};
  if (compact) report["step_snapshots"] = "stored";  // in the database run.json names; see README "Reading a step"
  if (!error.empty()) report["error"] = error;
  const std::string text = report.dump(2);
  const std::string key = "\"steps\": " + steps_marker.dump();
  const size_t at = text.find(key);
  if (at == std::string::npos) return Status::Error(Layer::kHarness, "run.json: lost its steps");
  const fs::path tmp = run_json.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text.substr(0, at) << "\"steps\": ";
    if (t.steps == 0) {
      out << "[]";
    } else {
      std::ifstream in(spool_path, std::ios::binary);
      out << "[\n" << in.rdbuf() << "\n  ]";
    }
    out << text.substr(at + key.size()) << "\n";
    if (!out) return Status::Error(Layer::kStore, "cannot write " + tmp.string());
  }
  std::error_code ec;
  fs::rename(tmp, run_json, ec);
  if (ec) return Status::Error(Layer::kStore, "cannot write " + run_json.string() + ": " + ec.message());

  const bool ended_early = status == "error" || status == "interrupted";
  std::vector<JunitWriter::Case> expectation_cases;
  for (const auto& e : o.expectations) {
    const bool passed = e.value("passed", false);
    const std::string name = e.value("name", "");
    const bool step_error = !passed && t.errored.count(e.value("step", -1)) && name.find("completes") != std::string::npos;
    expectation_cases.push_back({name, 0, passed ? "" : e.value("detail", ""), step_error});
  }
  TRY(junit.Finish(run.info.scenario, report["provenance"],
                   {"run completes", t.total_ms, ended_early ? error : "", true}, expectation_cases));
  return evidence;
}

Status WriteRunFiles(Store& store, int64_t run_id, const fs::path& out_dir, RunJsonForm form) {
  TRY_ASSIGN(StoredRun run, store.LoadRun(run_id));
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) return Status::Error(Layer::kStore, "cannot create " + out_dir.string() + ": " + ec.message());
  return WriteRunFiles(
      run, [&](const auto& each) { return store.ForEachStep(run_id, each); }, store.name(), out_dir, form);
}

Result<Snapshot> SnapshotOfRunStep(const json& snapshot, const fs::path& run_dir, const std::string& where) {
  if (!snapshot.is_object() || !snapshot.contains("stored") || snapshot.contains("pcrs")) {
    return SnapshotFromJson(snapshot, run_dir, where);
  }
  const json& stored = snapshot["stored"];
  if (!stored.is_object() || !stored.value("database", json()).is_string() ||
      !stored.value("run_id", json()).is_number_integer() || !stored.value("step", json()).is_number_integer()) {
    return Status::Parse(where + ": snapshot.stored names no database, run_id and step");
  }
  fs::path database = stored["database"].get<std::string>();
  std::error_code ec;
  // A run folder that moved (copied off the lab host) takes its database
  // along; shared results (a URL) are opened where they are.
  if (!IsDatabaseUrl(database)) {
    if (!fs::is_regular_file(database, ec) && fs::is_regular_file(run_dir / database.filename(), ec)) {
      database = run_dir / database.filename();
    }
    if (!fs::is_regular_file(database, ec)) {
      return Status::Parse(where + ": its snapshot is in the database " + database.string() +
                           ", which is not there (nor beside run.json)");
    }
  }
  TRY_ASSIGN(auto store, Store::Open(database));
  auto loaded = store->LoadSnapshot(stored["run_id"].get<int64_t>(), stored["step"].get<int>());
  if (!loaded.ok()) return loaded.status().Wrap(where + " (stored in " + database.string() + ")");
  return loaded;
}

const std::vector<StepResult>& StoredSteps::Load() const {
  if (loaded_) return *loaded_;
  auto steps = std::make_shared<std::vector<StepResult>>();
  if (count_ > 0) {
    auto store = Store::Open(database_);
    load_error_ = store.ok() ? (*store)->ForEachStep(run_id_, [&](StepResult&& s) {
      steps->push_back(std::move(s));
      return Status::Ok();
    })
                             : store.status();
  }
  loaded_ = std::move(steps);
  return *loaded_;
}

nlohmann::json StepToJson(const StepResult& step, bool with_snapshot) { return StepJsonBody(step, with_snapshot); }

}  // namespace tpmlab
