// tpmlab runs: the runs a results database holds, across DUTs, firmware and
// hosts, with their alarm counts; tpmlab runs show RUN: one run, step by step.
//
// The database is --db, else $TPMLAB_DB. A run whose process is gone without
// finishing it (kill -9, a lost host) is listed as interrupted.
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>

#include "exit_codes.h"
#include "harness/store.h"
#include "commands.h"

namespace tpmlab::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct RunsArgs {
  std::string db;
  RunFilter filter;
  bool json = false;
  int64_t run_id = 0;
};

// --db names the file, a run folder holding tpmlab.db or a postgresql://
// URL; without it, TPMLAB_DB.
Result<std::unique_ptr<Store>> OpenDatabase(std::string db) {
  if (db.empty()) {
    const char* env = std::getenv("TPMLAB_DB");
    db = env ? env : "";
  }
  if (db.empty()) return Status::Parse("name the results database: --db FILE|URL (or set TPMLAB_DB)");
  if (IsDatabaseUrl(db)) return Store::Open(db);
  fs::path file = db;
  std::error_code ec;
  if (fs::is_directory(file, ec)) file /= "tpmlab.db";
  if (!fs::is_regular_file(file, ec)) return Status::Parse(file.string() + ": no such results database");
  return Store::Open(file);
}

std::string AlarmCounts(const std::map<std::string, int>& alarms) {
  std::string out;
  for (const auto& [code, steps] : alarms) out += (out.empty() ? "" : " ") + code + "x" + std::to_string(steps);
  return out.empty() ? "-" : out;
}

std::string Joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ",") + i;
  return out.empty() ? "-" : out;
}

json RunToJson(const StoredRun& r) {
  return {{"run_id", r.id},
          {"scenario", r.info.scenario},
          {"scenario_file", r.info.scenario_file},
          {"seed", r.info.seed},
          {"status", r.status},
          {"started_at", r.info.started_at},
          {"finished_at", r.finished_at.empty() ? json(nullptr) : json(r.finished_at)},
          {"host", r.info.host},
          {"dut", r.info.dut},
          {"firmware", r.firmware},
          {"tpmlab_version", r.info.tpmlab_version},
          {"steps", r.steps},
          {"power_cycles", r.power_cycles},
          {"alarms", r.alarms}};
}

int ListRuns(const RunsArgs& a) {
  auto store = OpenDatabase(a.db);
  if (!store.ok()) {
    std::cerr << "tpmlab runs: " << store.status().message() << "\n";
    return ExitFor(store.status());
  }
  auto runs = (*store)->ListRuns(a.filter);
  if (!runs.ok()) {
    std::cerr << "tpmlab runs: " << runs.status().message() << "\n";
    return ExitFor(runs.status());
  }
  if (a.json) {
    json out = json::array();
    for (const auto& r : *runs) out.push_back(RunToJson(r));
    std::cout << out.dump(2) << "\n";
    return kExitPassed;
  }
  std::printf("%5s  %-20s  %-28s  %-24s  %-16s  %-11s  %7s  %7s  %s\n", "RUN", "STARTED", "SCENARIO", "DUT",
              "FIRMWARE", "STATUS", "STEPS", "CYCLES", "ALARMS (steps)");
  for (const auto& r : *runs) {
    std::printf("%5lld  %-20.20s  %-28.28s  %-24.24s  %-16.16s  %-11s  %7d  %7d  %s\n",
                static_cast<long long>(r.id), r.info.started_at.c_str(), r.info.scenario.c_str(),
                r.info.dut.c_str(), Joined(r.firmware).c_str(), r.status.c_str(), r.steps, r.power_cycles,
                AlarmCounts(r.alarms).c_str());
  }
  if (runs->empty()) std::cerr << "tpmlab runs: no run matches\n";
  return kExitPassed;
}

int ShowRun(const RunsArgs& a) {
  auto store = OpenDatabase(a.db);
  if (!store.ok()) {
    std::cerr << "tpmlab runs show: " << store.status().message() << "\n";
    return ExitFor(store.status());
  }
  auto run = (*store)->LoadRun(a.run_id);
  if (!run.ok()) {
    std::cerr << "tpmlab runs show: " << run.status().message() << "\n";
    return kExitUsage;
  }
  json steps = json::array();
  if (!a.json) {
    std::printf("run %lld: %s (seed %llu) on %s, %s, %s\n", static_cast<long long>(run->id),
                run->info.scenario.c_str(), static_cast<unsigned long long>(run->info.seed), run->info.dut.c_str(),
                run->status.c_str(), run->info.started_at.c_str());
    std::printf("%6s  %-14s  %6s  %-11s  %-8s  %10s  %s\n", "STEP", "ACTION", "CYCLE", "KIND", "STATUS", "MS",
                "ALARMS / ERROR");
  }
  Status walked = (*store)->ForEachStep(a.run_id, [&](StepResult&& s) {
    const std::vector<std::string> codes = DistinctAlarmCodes(s.alarms);
    if (a.json) {
      steps.push_back({{"index", s.index}, {"action", s.action}, {"cycle", s.cycle ? json(*s.cycle) : json(nullptr)},
                       {"kind", s.kind}, {"status", s.status}, {"duration_ms", s.duration_ms}, {"alarms", codes},
                       {"error", s.error}, {"commands", s.trace.size()}});
      return Status::Ok();
    }
    std::string said = Joined(codes);
    if (!s.error.empty()) said += "  " + s.error;
    std::printf("%6d  %-14s  %6s  %-11s  %-8s  %10.1f  %s\n", s.index, s.action.c_str(),
                s.cycle ? std::to_string(*s.cycle).c_str() : "-", s.kind.empty() ? "-" : s.kind.c_str(),
                s.status.c_str(), s.duration_ms, said.c_str());
    return Status::Ok();
  });
  if (!walked.ok()) {
    std::cerr << "tpmlab runs show: " << walked.message() << "\n";
    return ExitFor(walked);
  }
  if (a.json) {
    json out = RunToJson(*run);
    out["steps"] = steps;
    std::cout << out.dump(2) << "\n";
  }
  return kExitPassed;
}

}  // namespace

std::vector<Command> AddRunsCommands(CLI::App& app) {
  auto a = std::make_shared<RunsArgs>();
  CLI::App* runs = app.add_subcommand("runs", "List the runs in a results database (runs show RUN: one run's steps)");
  runs->add_option("--db", a->db, "results database, or a run folder holding tpmlab.db (default $TPMLAB_DB)");
  runs->add_option("--since", a->filter.since, "runs started at or after this UTC time (2026-12-01, 2026-12-01T10:00:00Z)");
  runs->add_option("--dut", a->filter.dut, "runs whose DUT label contains this");
  runs->add_option("--alarm", a->filter.alarm, "runs where a step raised this alarm code");
  runs->add_option("--firmware", a->filter.firmware, "runs that booted this platform firmware");
  runs->add_flag("--json", a->json, "JSON instead of a table");
  CLI::App* show = runs->add_subcommand("show", "One run, step by step");
  show->add_option("RUN", a->run_id, "run id (tpmlab runs lists them)")->required();
  show->add_option("--db", a->db, "results database, or a run folder holding tpmlab.db (default $TPMLAB_DB)");
  show->add_flag("--json", a->json, "JSON instead of a table");
  return {{show, [a] { return ShowRun(*a); }}, {runs, [a] { return ListRuns(*a); }}};
}

}  // namespace tpmlab::cli
