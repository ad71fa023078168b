// A fleet: the scenario on many DUTs at once, one thread per DUT.
//
// Threads rather than a child tpmlab per DUT: the Python API runs fleets
// too (there is no tpmlab binary to re-execute inside an interpreter), so
// one implementation serves both; the CPU-heavy part of a DUT is its own
// swtpm process anyway, and a thread per DUT shares nothing mutable: each
// run has its own Session, Store connection (SQLite in serialized mode, WAL,
// busy timeout), sockets and emulator. What is process-wide is made safe
// before the threads start (the environment, the database's schema).
#include "harness/fleet.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <set>
#include <thread>

#include "harness/bench_policy.h"
#include "harness/run_files.h"
#include "harness/verify.h"
#include "run.h"

namespace tpmlab {

namespace fs = std::filesystem;
using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

namespace {

// The run id a run that could not start still has: the row its run.json names.
std::optional<int64_t> RunIdOfFailedStart(const fs::path& out_dir) {
  std::ifstream in(out_dir / "run.json");
  if (!in) return std::nullopt;
  const json run = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!run.is_object() || !run.contains("run_id") || !run["run_id"].is_number_integer()) return std::nullopt;
  return run["run_id"].get<int64_t>();
}

// What the command line and run.json show of a run, counted once it ended.
void Summarize(FleetMemberResult& m) {
  if (!m.run) {
    m.failed_start_run_id = RunIdOfFailedStart(m.out_dir);
    return;
  }
  // From the run's counts: its steps are in the store, not in memory.
  m.steps = static_cast<int>(m.run->steps.size());
  m.cycles = m.run->power_cycles;
  m.verified_cycles = m.run->passed_cycles;
  for (const auto& a : m.run->alarms) m.alarms[a.code] = a.steps;
}

// Process-wide state that the runs' threads would otherwise race on.
void PrepareProcessForThreads(const std::vector<FleetMember>& members) {
  // Tpm::Open sets TSS2_LOG (unless the user did) so that tpm2-tss stays
  // quiet; setenv while another thread reads the environment (PATH lookups
  // for swtpm) is a data race, so it is set here, before any thread, and
  // Tpm::Open's own call then finds it set and changes nothing.
  ::setenv("TSS2_LOG", "all+none", /*overwrite=*/0);
  // Each run opens its own connection; the first opening of a new database
  // creates its schema and switches it to WAL, which is done once here
  // rather than by every thread at once.
  std::set<fs::path> databases;
  for (const auto& m : members) databases.insert(m.options.database);
  for (const auto& db : databases) {
    if (!db.empty()) (void)Store::Open(db);  // an error shows again in each run that uses it
  }
}

}  // namespace

Status CheckBenchAllowsScenario(const Scenario& scenario, const Bench& bench) {
  return RefusedSteps(PlanOf(scenario.steps), bench);
}

int FleetResult::verified_cycles() const {
  int total = 0;
  for (const auto& m : members) total += m.verified_cycles;
  return total;
}

int RunStatusSeverity(RunStatus status) {
  switch (status) {
    case RunStatus::kPassed: return 0;
    case RunStatus::kFailed: return 1;
    case RunStatus::kError: return 2;
    case RunStatus::kInterrupted: return 3;
  }
  return 2;
}

std::vector<std::string> FleetDutNames(size_t count, const std::vector<std::string>& bench_names) {
  std::vector<std::string> names;
  if (bench_names.empty()) {
    for (size_t i = 0; i < count; ++i) names.push_back("dut" + std::to_string(i));
    return names;
  }
  std::set<std::string> taken;
  for (const auto& bench : bench_names) {
    std::string base;
    for (char c : bench) {
      const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                        c == '_' || c == '-';
      base += keep ? c : '_';
    }
    if (base.empty() || base == "." || base == "..") base = "bench";
    std::string name = base;
    for (int n = 2; taken.count(name); ++n) name = base + "-" + std::to_string(n);
    taken.insert(name);
    names.push_back(name);
  }
  return names;
}

FleetResult RunFleet(const Scenario& scenario, std::vector<FleetMember> members, const FleetOptions& options) {
  FleetResult fleet;
  fleet.members.resize(members.size());
  PrepareProcessForThreads(members);
  fleet.started_at = UtcNow();
  const auto fleet_start = SteadyClock::now();
  std::vector<std::thread> threads;
  threads.reserve(members.size());
  for (size_t i = 0; i < members.size(); ++i) {
    FleetMemberResult& out = fleet.members[i];
    FleetMember& member = members[i];
    out.name = member.name;
    out.out_dir = member.options.out_dir;
    if (member.options.bench) out.bench = member.options.bench->name;
    if (options.on_step) {
      member.options.on_step = [&options, i](const StepResult& step, int total) { options.on_step(i, step, total); };
    }
    threads.emplace_back([&scenario, &member, &out, &options, i] {
      const auto start = SteadyClock::now();
      try {
        Result<RunResult> run = RunScenario(scenario, member.options);
        if (run.ok()) {
          out.run = std::move(*run);
        } else {
          out.start_error = run.status();
        }
      } catch (const std::exception& e) {
        // A bug in one run must not take the others down with the process.
        out.start_error = Status::Error(Layer::kHarness, std::string("internal error: ") + e.what());
      } catch (...) {
        out.start_error = Status::Error(Layer::kHarness, "internal error: an exception that is not a std::exception");
      }
      out.seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
      Summarize(out);
      if (out.run && !options.keep_steps) {
        out.run->steps = StoredSteps();
      }
      if (options.on_finished) options.on_finished(i, out);
    });
  }
  for (auto& t : threads) t.join();
  fleet.seconds = std::chrono::duration<double>(SteadyClock::now() - fleet_start).count();
  fleet.finished_at = UtcNow();
  return fleet;
}

Status WriteFleetJson(const fs::path& file, const Scenario& scenario, uint64_t seed, const fs::path& database,
                      const FleetResult& fleet, const std::vector<int>& exit_codes, std::optional<int> exit_code) {
  RunStatus worst = RunStatus::kPassed;
  json duts = json::array();
  for (size_t i = 0; i < fleet.members.size(); ++i) {
    const FleetMemberResult& m = fleet.members[i];
    if (RunStatusSeverity(m.status()) > RunStatusSeverity(worst)) worst = m.status();
    std::error_code ec;
    fs::path folder = fs::relative(m.out_dir, file.parent_path(), ec);
    if (ec || folder.empty()) folder = m.out_dir;
    json alarms = json::object();
    for (const auto& [code, steps] : m.alarms) alarms[code] = steps;
    const fs::path run_json = m.out_dir / "run.json";
    std::string error = m.run ? m.run->error : "the run could not start: " + m.start_error.ToString();
    json dut = {{"name", m.name},
                    {"folder", folder.string()},
                    {"bench", m.bench.empty() ? json(nullptr) : json(m.bench)},
                    {"run_id", m.run_id() ? json(*m.run_id()) : json(nullptr)},
                    {"status", RunStatusName(m.status())},
                    {"run_json", fs::exists(run_json, ec) ? json(run_json.string()) : json(nullptr)},
                    {"steps", m.steps},
                    {"cycles", m.cycles},
                    {"verified_cycles", m.verified_cycles},
                    {"seconds", m.seconds},
                    {"verified_cycles_per_second", m.cycles_per_second()},
                    {"alarms", alarms},
                    {"error", error}};
    if (i < exit_codes.size()) dut["exit_code"] = exit_codes[i];
    duts.push_back(std::move(dut));
  }
  json doc = {{"scenario", scenario.name},
              {"scenario_file", scenario.file},
              {"seed", seed},
              {"database", DatabaseReference(database)},
              {"status", RunStatusName(worst)},
              {"started_at", fleet.started_at},
              {"finished_at", fleet.finished_at},
              {"seconds", fleet.seconds},
              {"verified_cycles", fleet.verified_cycles()},
              {"verified_cycles_per_second", fleet.verified_cycles_per_second()},
              {"duts", duts}};
  if (exit_code) doc["exit_code"] = *exit_code;
  return WriteFileAtomically(file, doc.dump(2) + "\n");
}

}  // namespace tpmlab
