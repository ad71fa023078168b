// The tpmlab subcommands, one area per file.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace tpmlab {
struct Drift;
struct RunResult;
struct StepResult;
}  // namespace tpmlab

namespace tpmlab::cli {

struct Command {
  CLI::App* app;
  std::function<int()> run;
};

// Each adds its subcommands to `app`; main runs the one the user chose.
Command AddRunCommand(CLI::App& app);                       // run_command.cc
std::vector<Command> AddEventlogCommands(CLI::App& app);    // eventlog_commands.cc
std::vector<Command> AddVerifyCommands(CLI::App& app);      // verify_commands.cc: enroll, verify, diff
std::vector<Command> AddBundleCommands(CLI::App& app);      // bundle_commands.cc: bundle, replay
Command AddDoctorCommand(CLI::App& app);                    // doctor_command.cc
std::vector<Command> AddBenchCommands(CLI::App& app);      // bench_commands.cc: bench check, hw list
Command AddReproduceCommand(CLI::App& app);                 // reproduce_command.cc
Command AddExportCommand(CLI::App& app);                    // export_command.cc
Command AddTraceCommand(CLI::App& app);                     // trace_command.cc
Command AddReportCommand(CLI::App& app);                    // report_command.cc
std::vector<Command> AddRunsCommands(CLI::App& app);        // runs_command.cc: runs, runs show
Command AddReferenceCommand(CLI::App& app);                 // reference_command.cc: golden PCRs, Keylime
Command AddCompareCommand(CLI::App& app);                   // compare_command.cc
Command AddServeCommand(CLI::App& app);                     // serve_command.cc: a bench's TPM to other tools
// tpmlab compare A B -o HTML with its default threshold: tpmlab report --compare.
int CompareRunsCommand(const std::string& a, const std::string& b, const std::string& html);  // compare_command.cc

// tpmlab run's options, and the run itself with its summary and exit code;
// `on_result` sees a run that completed (tpmlab reproduce explains its drift).
struct RunArgs {
  std::string scenario, out_dir, db, bench;
  // Several DUTs at once (fleet_command.cc): --duts N emulated chips, or
  // one DUT per --bench file when more than one is given.
  std::vector<std::string> benches;
  std::optional<int> duts;
  std::optional<uint64_t> seed;
  std::optional<int> cycles;
  bool keep_state = false, unix_sockets = false, quiet = false, progress = false, fail_on_alarm = false;
  std::string run_json = "auto";  // --run-json: full, compact, auto
};
int RunScenarioCommand(RunArgs args, const std::function<void(const RunResult&)>& on_result = {});  // run_command.cc

// tpmlab run on many DUTs at once (--duts N, several --bench); the same
// options, one folder per DUT under OUT, OUT/fleet.json.
int RunFleetCommand(RunArgs args);  // fleet_command.cc
inline constexpr int kMaxFleetDuts = 64;
bool IsFleetRun(const RunArgs& args);  // fleet_command.cc

// tpmlab-runs/NAME-TIME: where a run goes without --out.
std::string DefaultOutDir(const std::string& scenario);  // run_command.cc
// A step's progress lines: the step, then each failed check, error and alarm.
std::string StepProgressLines(const StepResult& step, int total);  // run_command.cc

// What changed, event by event, and the causes, as tpmlab diff prints it.
void PrintDrift(const Drift& drift);  // verify_commands.cc

// A progress line's start, "[step    5 | 6/20]": the step's index as run.json,
// the database and RUN.json:STEP number it, then how many of the total are done.
std::string StepProgressPrefix(int index, int total);  // run_command.cc

}  // namespace tpmlab::cli
