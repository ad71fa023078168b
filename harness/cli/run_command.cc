// tpmlab run: a scenario on the embedded default (an auto-launched swtpm), or
// on a bench file's DUT (--bench: a real chip, the simulated SPI TPM).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <map>
#include <memory>

#include "exit_codes.h"
#include "harness/run_folder.h"
#include "lava.h"
#include "harness/runner.h"
#include "harness/scenario_yaml.h"
#include "harness/verify.h"
#include "commands.h"

namespace tpmlab::cli {
namespace {

namespace fs = std::filesystem;

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

void ShowProgress(const StepResult& r, int total) { std::fputs(StepProgressLines(r, total).c_str(), stderr); }

// "PCR_POLICY_MISMATCH x2 (steps 5, 9); CLOCK_NOT_SAFE x1 (step 9)": each
// code with the first steps that raised it, by index (the run's bounded tally).
std::string AlarmSummary(const std::vector<AlarmTally>& alarms) {
  std::string out;
  for (const auto& a : alarms) {
    out += (out.empty() ? "" : "; ") + a.code + " x" + std::to_string(a.steps) + (a.steps == 1 ? " (step " : " (steps ");
    for (size_t i = 0; i < a.first_steps.size(); ++i) out += (i ? ", " : "") + std::to_string(a.first_steps[i]);
    if (static_cast<size_t>(a.steps) > a.first_steps.size()) out += ", ...";
    out += ")";
  }
  return out.empty() ? "none" : out;
}

int Run(RunArgs a, const std::function<void(const RunResult&)>& on_result) {
  auto scenario = LoadScenarioFile(a.scenario);
  if (!scenario.ok()) {
    std::cerr << "tpmlab: " << scenario.status().message() << "\n";
    return kExitUsage;
  }
  if (a.cycles) {
    Status s = OverrideCycles(*scenario, *a.cycles);
    if (!s.ok()) {
      std::cerr << "tpmlab: " << s.message() << "\n";
      return kExitUsage;
    }
  }
  RunOptions options;
  if (!a.bench.empty()) {
    auto bench = LoadBench(a.bench);
    if (!bench.ok()) {
      std::cerr << "tpmlab: " << bench.status().message() << "\n";
      return kExitUsage;
    }
    options.bench = std::move(*bench);
    if (!options.bench->emulated() && (a.keep_state || a.unix_sockets)) {
      std::cerr << "tpmlab: --keep-state and --unix-sockets apply to an emulated DUT, not bench "
                << options.bench->name << " (" << DutTransportName(options.bench->dut.transport) << ")\n";
      return kExitUsage;
    }
  }
  if (a.out_dir.empty()) a.out_dir = DefaultOutDir(scenario->name);
  if (a.db.empty()) a.db = DefaultDatabase(a.out_dir);
  const std::string db = a.db;

  // Never over an earlier run: refuse, or with --keep-state continue its chip
  // and write this run to a sub-folder (the database stays the folder's).
  fs::path out_dir = a.out_dir;
  const bool emulated = !options.bench || options.bench->emulated();
  if (std::error_code ec; fs::exists(out_dir / "run.json", ec)) {
    if (!a.keep_state || !emulated) {
      std::cerr << "tpmlab: " << out_dir.string() << " already holds a run (" << (out_dir / "run.json").string()
                << "); tpmlab does not overwrite it: choose another --out, remove that run, or add --keep-state "
                   "to continue its chip into a new sub-folder\n";
      return kExitUsage;
    }
    options.state_dir = out_dir / options.dut_name;
    out_dir = NextRunFolder(out_dir);
    std::cerr << "tpmlab: " << a.out_dir << " already holds a run; --keep-state continues its chip ("
              << options.state_dir.string() << ") and writes this run to " << out_dir.string() << "\n";
  }
  const fs::path chip = options.state_dir.empty() ? out_dir / options.dut_name : options.state_dir;
  if (a.keep_state && !HasChipState(chip)) {
    std::cerr << "tpmlab: warning: --keep-state: no chip state in " << chip.string()
              << ", so this run starts a newly manufactured chip\n";
  }

  options.out_dir = out_dir;
  options.database = db;
  options.seed = a.seed;
  options.keep_state = a.keep_state;
  options.unix_sockets = a.unix_sockets;
  options.fail_on_alarm = a.fail_on_alarm;
  options.run_json_form = a.run_json;
  options.stop = &g_stop;
  if (a.progress || (!a.quiet && ::isatty(STDERR_FILENO))) options.on_step = ShowProgress;

  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  auto result = RunScenario(*scenario, options);
  if (!result.ok()) {
    std::cerr << "tpmlab: " << result.status().ToString() << "\n";
    // A run that could not start still leaves run.json and junit.xml.
    if (std::error_code ec; fs::exists(out_dir / "run.json", ec) && fs::exists(out_dir / "junit.xml", ec)) {
      std::cerr << "  results: " << (out_dir / "run.json").string() << " (status error)\n";
    }
    return ExitFor(result.status());
  }
  // Counted as the run went: its steps are in the store, not in memory.
  const int cycles_run = result->power_cycles, failed = result->failed_checks;
  int expected = 0, met = 0;
  for (const auto& e : result->expectations) {
    ++expected;
    met += e.passed ? 1 : 0;
    if (!e.passed) std::cerr << "  expectation not met: " << e.name << ": " << e.detail << "\n";
  }
  std::cout << "tpmlab run " << RunStatusName(result->status) << ": " << scenario->name << ", seed "
            << result->seed << ", " << result->steps.size() << " steps, " << cycles_run
            << " power cycles, " << failed << " failed checks"
            << (expected > 0 ? ", " + std::to_string(met) + "/" + std::to_string(expected) + " expectations met" : "")
            << "\n"
            << "  alarms: " << AlarmSummary(result->alarms) << "\n"
            << "  results: " << result->run_json.string() << "\n"
            << "  database: " << DatabaseDisplayName(db) << " (run " << result->run_id << ")\n";
  if (!result->error.empty()) std::cerr << "tpmlab: " << result->error << "\n";
  ReportToLava(result->run_json);
  if (on_result) on_result(*result);
  switch (result->status) {
    case RunStatus::kPassed: return kExitPassed;
    case RunStatus::kFailed: return kExitFailed;
    case RunStatus::kInterrupted: return kExitInterrupted;
    case RunStatus::kError: return kExitRunError;
  }
  return kExitRunError;
}

}  // namespace

std::string DefaultOutDir(const std::string& scenario) {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
  return "tpmlab-runs/" + scenario + "-" + stamp;
}

// One line per step on a terminal (or with --progress), then a line for each
// failed check, error and alarm.
std::string StepProgressLines(const StepResult& r, int total) {
  std::string what = r.action;
  if (r.cycle) what += " #" + std::to_string(*r.cycle) + " " + r.kind;
  std::string extra;
  if (r.snapshot) {
    const auto& c = r.snapshot->clock();
    extra = "reset=" + std::to_string(c.reset_count) + " restart=" + std::to_string(c.restart_count) +
            " safe=" + (c.safe ? "1" : "0");
  }
  const std::string prefix = StepProgressPrefix(r.index, total);
  std::string out(prefix.size() + what.size() + r.status.size() + extra.size() + 64, '\0');
  const int n = std::snprintf(out.data(), out.size(), "%s %-28s %-8s %7.1f ms  %s\n", prefix.c_str(), what.c_str(),
                              r.status.c_str(), r.duration_ms, extra.c_str());
  out.resize(n > 0 ? std::min(static_cast<size_t>(n), out.size() - 1) : 0);
  for (const auto& c : r.checks) {
    if (!c.passed) out += "    check " + c.name + " failed: " + c.detail + "\n";
  }
  if (!r.error.empty()) out += "    error: " + r.error + "\n";
  // One line per alarm, however many PCRs or banks its findings cover.
  for (const auto& code : DistinctAlarmCodes(r.alarms)) out += "    alarm " + DescribeAlarm(code, r.alarms) + "\n";
  return out;
}

int RunScenarioCommand(RunArgs args, const std::function<void(const RunResult&)>& on_result) {
  return Run(std::move(args), on_result);
}

// A whole number from 0 to `max`, written as plain decimal digits: no sign
// (a -1 must not wrap to 2^64-1) and a short message instead of CLI11's
// range of 300 digits.
static CLI::Validator WholeNumber(uint64_t max) {
  return CLI::Validator(
      [max](std::string& text) -> std::string {
        const bool digits = !text.empty() && text.size() <= 20 &&
                            std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
        if (!digits) return "expected a whole number from 0 to " + std::to_string(max) + ", not '" + text + "'";
        errno = 0;
        const unsigned long long value = std::strtoull(text.c_str(), nullptr, 10);
        if (errno == ERANGE || value > max) return "at most " + std::to_string(max) + ", not " + text;
        return std::string();
      },
      "", "");
}

std::string StepProgressPrefix(int index, int total) {
  // The number is the step's index, as run.json, the database and
  // RUN.json:STEP give it; done/total counts, so it never reads as the index.
  const int done = index + 1;
  std::string count = std::to_string(done) + (total >= done ? "/" + std::to_string(total) : " done");
  // Padded to the widest count, so the columns after it stay put.
  const size_t width = total >= done ? 2 * std::to_string(total).size() + 1 : count.size();
  if (count.size() < width) count.insert(0, width - count.size(), ' ');
  char buf[64];
  std::snprintf(buf, sizeof(buf), "[step %4d | %s]", index, count.c_str());
  return buf;
}

Command AddRunCommand(CLI::App& app) {
  auto a = std::make_shared<RunArgs>();
  auto* run = app.add_subcommand("run", "Run a scenario on the embedded default (an auto-launched swtpm) or a bench");
  run->add_option("SCENARIO", a->scenario, "Scenario file (YAML)")->required();
  run->add_option("-o,--out", a->out_dir, "Folder for run.json and the DUT state (default tpmlab-runs/NAME-TIME)");
  run->add_option("--db", a->db,
                  "Results database: a SQLite file, or postgresql://... shared by many hosts "
                  "(default $TPMLAB_DB, else OUT/tpmlab.db)");
  run->add_option("--bench", a->benches,
                  "Bench file: the DUT to run on (hw/README.md); default the embedded swtpm. Given more than once: "
                  "the scenario runs on every bench's DUT at once, one folder each under OUT");
  run->add_option("--duts", a->duts,
                  "Run the scenario on N emulated chips at once, one folder each under OUT (OUT/dut0 ...), "
                  "one database, OUT/fleet.json; exit status the worst of them")
      ->check(WholeNumber(kMaxFleetDuts));
  run->add_option("--seed", a->seed, "Seed for random choices (default: the scenario's)")
      ->check(WholeNumber(UINT64_MAX));
  run->add_option("--cycles", a->cycles, "Count of the scenario's top-level repeat")
      ->check(WholeNumber(INT32_MAX));
  run->add_flag("--keep-state", a->keep_state, "Continue from the DUT state in OUT instead of a new chip");
  run->add_flag("--unix-sockets", a->unix_sockets, "Talk to swtpm over unix sockets instead of loopback TCP");
  run->add_flag("-q,--quiet", a->quiet, "No progress lines, only the summary");
  run->add_flag("--progress", a->progress, "Progress lines even when stderr is not a terminal (CI logs)");
  run->add_option("--run-json", a->run_json,
                  "How run.json holds each step's snapshot: full (inline), compact (a reference to the database; "
                  "tpmlab export DB:RUN --step N prints it), auto (full up to 1000 steps, default)")
      ->check(CLI::IsMember({"auto", "full", "compact"}));
  run->add_flag("--fail-on-alarm", a->fail_on_alarm,
                "Fail the run on any alarm no expect step names (as unexpected_alarms: fail)");
  return {run, [a] {
    if (IsFleetRun(*a)) return RunFleetCommand(*a);
    if (!a->benches.empty()) a->bench = a->benches.front();
    return Run(*a, {});
  }};
}

}  // namespace tpmlab::cli
