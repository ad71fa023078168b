// tpmlab: the command line.
//
// Exit codes (stable; scripts and CI rely on them):
//   0  every step and check passed
//   1  a check failed (the TPM did not behave as TPM 2.0 says it must)
//   2  bad input or usage: nothing ran
//   3  the run could not complete: TPM, emulator, transport or store error
//   4  something tpmlab needs is not installed (the message names the package)
//   130 interrupted (Ctrl-C); every completed step is stored
#include <CLI/CLI.hpp>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>

#include "harness/replay.h"
#include "harness/runner.h"
#include "harness/scenario_yaml.h"

namespace {

using namespace tpmlab;
namespace fs = std::filesystem;

enum ExitCode {
  kExitPassed = 0,
  kExitFailed = 1,
  kExitUsage = 2,
  kExitRunError = 3,
  kExitEnvironment = 4,
  kExitInterrupted = 130,
};

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

int ExitFor(const Status& s) {
  switch (s.layer()) {
    case Layer::kScenario:
    case Layer::kParse:
      return kExitUsage;
    case Layer::kEnvironment:
      return kExitEnvironment;
    default:
      return kExitRunError;
  }
}

std::string DefaultOutDir(const std::string& scenario) {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
  return "tpmlab-runs/" + scenario + "-" + stamp;
}

// One line per step on a terminal; nothing in CI or when piped.
void ShowProgress(const StepResult& r, int total) {
  std::string what = r.action;
  if (r.cycle) what += " #" + std::to_string(*r.cycle) + " " + r.kind;
  std::string extra;
  if (r.snapshot) {
    const auto& c = r.snapshot->clock();
    extra = "reset=" + std::to_string(c.reset_count) + " restart=" + std::to_string(c.restart_count) +
            " safe=" + (c.safe ? "1" : "0");
  }
  std::fprintf(stderr, "[%4d/%d] %-28s %-6s %7.1f ms  %s\n", r.index + 1, total, what.c_str(),
               r.status.c_str(), r.duration_ms, extra.c_str());
  for (const auto& c : r.checks) {
    if (!c.passed) std::fprintf(stderr, "         check %s failed: %s\n", c.name.c_str(), c.detail.c_str());
  }
  if (!r.error.empty()) std::fprintf(stderr, "         error: %s\n", r.error.c_str());
}

int Run(const std::string& scenario_file, std::string out_dir, std::string db,
        std::optional<uint64_t> seed, std::optional<int> cycles, bool keep_state, bool unix_sockets,
        bool quiet) {
  auto scenario = LoadScenarioFile(scenario_file);
  if (!scenario.ok()) {
    std::cerr << "tpmlab: " << scenario.status().message() << "\n";
    return kExitUsage;
  }
  if (cycles) {
    Status s = OverrideCycles(*scenario, *cycles);
    if (!s.ok()) {
      std::cerr << "tpmlab: " << s.message() << "\n";
      return kExitUsage;
    }
  }
  if (out_dir.empty()) out_dir = DefaultOutDir(scenario->name);
  if (db.empty()) db = (fs::path(out_dir) / "tpmlab.db").string();

  RunOptions options;
  options.out_dir = out_dir;
  options.database = db;
  options.seed = seed;
  options.keep_state = keep_state;
  options.unix_sockets = unix_sockets;
  options.stop = &g_stop;
  if (!quiet && ::isatty(STDERR_FILENO)) options.on_step = ShowProgress;

  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  auto result = RunScenario(*scenario, options);
  if (!result.ok()) {
    std::cerr << "tpmlab: " << result.status().ToString() << "\n";
    return ExitFor(result.status());
  }
  int cycles_run = 0, failed = 0;
  for (const auto& s : result->steps) {
    cycles_run += s.cycle ? 1 : 0;
    for (const auto& c : s.checks) failed += c.passed ? 0 : 1;
  }
  std::cout << "tpmlab run " << RunStatusName(result->status) << ": " << scenario->name << ", seed "
            << result->seed << ", " << result->steps.size() << " steps, " << cycles_run
            << " power cycles, " << failed << " failed checks\n"
            << "  results: " << result->run_json.string() << "\n"
            << "  database: " << db << " (run " << result->run_id << ")\n";
  if (!result->error.empty()) std::cerr << "tpmlab: " << result->error << "\n";
  switch (result->status) {
    case RunStatus::kPassed: return kExitPassed;
    case RunStatus::kFailed: return kExitFailed;
    case RunStatus::kInterrupted: return kExitInterrupted;
    case RunStatus::kError: return kExitRunError;
  }
  return kExitRunError;
}

// tpmlab eventlog replay FILE [--json]
int EventlogReplay(const std::string& file, bool as_json) {
  auto log = ReadEventLogFile(file);
  if (!log.ok()) {
    std::cerr << "tpmlab: " << log.status().message() << "\n";
    return kExitUsage;
  }
  auto replay = ReplayEventLog(*log);
  if (!replay.ok()) {
    std::cerr << "tpmlab: " << replay.status().ToString() << "\n";
    return kExitRunError;
  }
  nlohmann::json pcrs = nlohmann::json::object();
  for (const auto& [alg, values] : replay->pcrs) {
    const uint32_t mask = replay->extended.at(alg);
    if (mask == 0) continue;
    nlohmann::json bank = nlohmann::json::object();
    for (int i = 0; i < kPcrCount; ++i) {
      if (mask & (1u << i)) bank[std::to_string(i)] = ToHex(values[i]);
    }
    pcrs[HashAlgName(alg)] = std::move(bank);
  }
  nlohmann::json out = {{"file", file}, {"format", LogFormatName(log->format())},
                        {"events", log->size()}, {"pcrs", pcrs}, {"findings", nlohmann::json::array()}};
  if (as_json) {
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << file << ": " << LogFormatName(log->format()) << ", " << log->size() << " events\n";
    for (const auto& [bank, values] : pcrs.items()) {
      for (const auto& [pcr, hex] : values.items()) std::cout << "  " << bank << ":" << pcr << " " << hex.get<std::string>() << "\n";
    }
  }
  return kExitPassed;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tpmlab: drive TPM 2.0 chips through power cycles and record what drifts"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("tpmlab ") + kTpmlabVersion);

  auto* run = app.add_subcommand("run", "Run a scenario on the embedded default (an auto-launched swtpm)");
  std::string scenario, out_dir, db;
  std::optional<uint64_t> seed;
  std::optional<int> cycles;
  bool keep_state = false, unix_sockets = false, quiet = false;
  run->add_option("SCENARIO", scenario, "Scenario file (YAML)")->required();
  run->add_option("--out", out_dir, "Folder for run.json and the DUT state (default tpmlab-runs/NAME-TIME)");
  run->add_option("--db", db, "SQLite results database (default OUT/tpmlab.db)");
  run->add_option("--seed", seed, "Seed for random choices (default: the scenario's)");
  run->add_option("--cycles", cycles, "Count of the scenario's top-level repeat")->check(CLI::NonNegativeNumber);
  run->add_flag("--keep-state", keep_state, "Continue from the DUT state in OUT instead of a new chip");
  run->add_flag("--unix-sockets", unix_sockets, "Talk to swtpm over unix sockets instead of loopback TCP");
  run->add_flag("-q,--quiet", quiet, "No progress lines, only the summary");

  auto* eventlog = app.add_subcommand("eventlog", "Read, replay and compare TCG event logs");
  eventlog->require_subcommand(1);
  auto* replay = eventlog->add_subcommand("replay", "Replay a log into PCR values per bank");
  std::string log_file;
  bool as_json = false;
  replay->add_option("FILE", log_file, "Event log (binary_bios_measurements)")->required();
  replay->add_flag("--json", as_json, "JSON output");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }
  if (*replay) return EventlogReplay(log_file, as_json);
  if (*run) return Run(scenario, out_dir, db, seed, cycles, keep_state, unix_sockets, quiet);
  return kExitUsage;
}
