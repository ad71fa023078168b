// A fleet: one scenario run on many DUTs at once (tpmlab run --duts N or
// several --bench, tpmlab.run_scenario(duts=...)). Each DUT runs in its own
// thread through the ordinary RunScenario, with its own results folder, its
// own store connection and run row (one database for all), and its own
// timeouts: one DUT failing, hanging until its timeout or not starting stops
// none of the others.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "harness/runner.h"

namespace tpmlab {

/// One DUT of a fleet: its name (also its folder under the fleet's) and the
/// options of its run there.
struct FleetMember {
  std::string name;
  RunOptions options;
};

/// How one DUT's run went.
struct FleetMemberResult {
  std::string name;
  std::filesystem::path out_dir;
  std::string bench;              // the bench's name; empty for the embedded default
  std::optional<RunResult> run;   // the run, when it started (its steps unless not kept)
  Status start_error;             // why it did not start (run empty)
  double seconds = 0;             // wall time of its run, set-up and shutdown included
  int steps = 0;
  int cycles = 0;                 // power-cycle steps
  int verified_cycles = 0;        // power-cycle steps that passed every check
  std::map<std::string, int> alarms;  // code -> steps that raised it
  // A run that could not start still has a row and a run.json saying why
  // (when it got as far as the store).
  std::optional<int64_t> failed_start_run_id;

  RunStatus status() const { return run ? run->status : RunStatus::kError; }
  std::optional<int64_t> run_id() const { return run ? std::optional<int64_t>(run->run_id) : failed_start_run_id; }
  double cycles_per_second() const { return seconds > 0 ? verified_cycles / seconds : 0; }
};

struct FleetResult {
  std::vector<FleetMemberResult> members;
  double seconds = 0;  // wall time from the first DUT's start to the last one's end
  std::string started_at, finished_at;

  int verified_cycles() const;
  /// All DUTs' verified power cycles per second of the fleet's wall time.
  double verified_cycles_per_second() const { return seconds > 0 ? verified_cycles() / seconds : 0; }
};

/// How bad a run's status is, for "the worst of the DUTs": passed < failed
/// (the DUT was judged and found wanting) < error (it could not be judged:
/// it did not start or did not complete) < interrupted (the user stopped the
/// fleet: no verdict at all).
int RunStatusSeverity(RunStatus status);

/// Whether `bench` can run every step of `scenario` (a real chip refuses a
/// power cycle without a power switch, a clear it is not allowed): checked
/// for every bench before a fleet starts, so bad input runs nothing.
Status CheckBenchAllowsScenario(const Scenario& scenario, const Bench& bench);

/// The DUT names of a fleet, which are also its folder names: dut0..dutN-1
/// for `count` emulated DUTs, or else each bench's name (letters, digits,
/// '.', '_', '-' kept) with a second and later use of a name made unique as
/// NAME-2, NAME-3, ...
std::vector<std::string> FleetDutNames(size_t count, const std::vector<std::string>& bench_names);

struct FleetOptions {
  /// Called after each step, from the DUT's own thread (serialize yourself).
  std::function<void(size_t member, const StepResult&, int total_steps)> on_step;
  /// Called once a DUT's run has ended (or failed to start), from its thread.
  std::function<void(size_t member, const FleetMemberResult&)> on_finished;
  /// Whether results keep each run's steps (Python hands them out); the
  /// command line needs only the counts.
  bool keep_steps = true;
};

/// Runs `scenario` on every member at once, one thread per member, and
/// returns when all have ended. A member's RunOptions are its own (set its
/// out_dir, dut_name, bench and a `stop` flag shared by all to stop them all
/// between steps). Never throws for one member's sake: what stopped a member
/// is in its result.
FleetResult RunFleet(const Scenario& scenario, std::vector<FleetMember> members, const FleetOptions& options = {});

/// OUT/fleet.json: the scenario, the database, the worst status, and per
/// DUT its folder (relative to the fleet's), run id, status and counts; with
/// the command line's exit codes when given (`exit_codes` per member, in
/// order; Python has none).
Status WriteFleetJson(const std::filesystem::path& file, const Scenario& scenario, uint64_t seed,
                      const std::filesystem::path& database, const FleetResult& fleet,
                      const std::vector<int>& exit_codes = {}, std::optional<int> exit_code = std::nullopt);

}  // namespace tpmlab
