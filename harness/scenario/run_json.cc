// run.json: each step as recorded, the run's provenance and summary, and the
// event logs its snapshots saw, kept beside it (junit.xml: run_files.cc).
#include <algorithm>
#include <cstdio>
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

}  // namespace

Status SaveEventLogs(const fs::path& out_dir, const RunResult& result) {
  for (const auto& s : result.steps) {
    if (s.snapshot && s.snapshot->eventlog) TRY(SaveEventLog(out_dir, *s.snapshot->eventlog));
  }
  return Status::Ok();
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
      // Written by SaveEventLogs.
      const auto name = EventLogFileName(*s.snapshot->eventlog);
      steps.back()["snapshot"]["eventlog"]["file"] = name.ok() ? *name : "";
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

nlohmann::json StepToJson(const StepResult& step, bool with_snapshot) { return StepJsonBody(step, with_snapshot); }

}  // namespace tpmlab
