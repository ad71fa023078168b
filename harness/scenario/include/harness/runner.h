// The runner: executes a Scenario on a DUT, checks every step against the
// TPM 2.0 rules, records each step in the store as it completes, and writes
// run.json at the end.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "harness/bench.h"
#include "harness/bench_dut.h"
#include "harness/scenario.h"
#include "harness/store.h"
#include "harness/version.h"  // kTpmlabVersion, for run.json

namespace tpmlab {

enum class RunStatus { kPassed, kFailed, kError, kInterrupted };
const char* RunStatusName(RunStatus status);

struct RunOptions {
  std::filesystem::path out_dir;          // run.json and the DUT's state go here
  std::filesystem::path database;         // SQLite file, or a postgresql:// URL
  std::optional<uint64_t> seed;           // overrides the scenario's
  bool keep_state = false;                // reuse the DUT state found in out_dir
  std::string dut_name = "dut0";          // also the DUT's state folder under out_dir
  // The emulated DUT's state folder when it is not out_dir/dut_name (a run
  // continuing the chip of an earlier run in the folder above).
  std::filesystem::path state_dir;
  // Start the DUT from a copy of this emulator state (a bundle's) instead of
  // a newly manufactured chip.
  std::filesystem::path initial_state;
  bool unix_sockets = false;
  // Any alarm no expect step names fails the run, as `unexpected_alarms:
  // fail` does, without editing the scenario (tpmlab run --fail-on-alarm).
  bool fail_on_alarm = false;
  // The bench to run on (hw/README.md): a real chip, or the simulated SPI
  // TPM. None: the embedded default (one emulated DUT).
  std::optional<Bench> bench;
  // This machine's parts, a seam for tests (a fake USB context, a fake TPM device).
  BenchHardware hardware;
  // Called after each step (progress display).
  std::function<void(const StepResult&, int total_steps)> on_step;
  // Called once the DUT is up, before the first step (scripting, fault hooks).
  std::function<void(Dut&)> on_dut_ready;
  // Set from a signal handler to stop between steps.
  const std::atomic<bool>* stop = nullptr;
  // Ends the run, as finished (not interrupted), once this many steps ran:
  // a replay runs exactly the steps its recorded run did.
  std::optional<int> max_steps;
  // How run.json carries each step's snapshot (RunJsonForm, run_files.h).
  std::string run_json_form = "auto";
};

// One judged expectation: an `expect` step, or what no expect step covered
// (a step error, a TPM refusal, an alarm under unexpected_alarms: fail).
struct Expectation {
  int step = 0;           // the step it judges
  std::string where;      // file:line:column of the expect step (or of the step judged)
  std::string name;       // "expect at step 4: TPM_UNREACHABLE"
  bool passed = false;
  std::string detail;
};

// The steps of a run, read back from its database when first asked for: a
// run keeps none of them in memory while it runs, so a soak of any length
// stays flat. Asking (size() does not) loads every step at once: fine for a
// test or a short run; a long one streams with Store::ForEachStep instead.
class StoredSteps {
 public:
  StoredSteps() = default;
  StoredSteps(std::filesystem::path database, int64_t run_id, size_t count)
      : database_(std::move(database)), run_id_(run_id), count_(count) {}
  size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  const StepResult& operator[](size_t i) const { return Load().at(i); }
  const StepResult& back() const { return Load().back(); }
  std::vector<StepResult>::const_iterator begin() const { return Load().begin(); }
  std::vector<StepResult>::const_iterator end() const { return Load().end(); }
  /// Every step, read once from the store (empty when it cannot be read: load_error says why).
  const std::vector<StepResult>& Load() const;
  const Status& load_error() const { return load_error_; }

 private:
  std::filesystem::path database_;
  int64_t run_id_ = 0;
  size_t count_ = 0;
  mutable std::shared_ptr<const std::vector<StepResult>> loaded_;
  mutable Status load_error_;
};

// An alarm code over a run: how many steps raised it, and the first of them.
struct AlarmTally {
  static constexpr size_t kStepsKept = 8;
  std::string code;
  int steps = 0;
  std::vector<int> first_steps;  // at most kStepsKept step indices
};

struct RunResult {
  RunStatus status = RunStatus::kPassed;
  int64_t run_id = 0;
  uint64_t seed = 0;
  StoredSteps steps;  // from the store, once the run finished
  // What the run counted as it went (its memory stays bounded).
  int power_cycles = 0;
  int passed_cycles = 0;  // power cycles whose every check passed (a fleet's verified cycles)
  int failed_checks = 0;  // of steps that are not expect steps, expected failures not counted
  std::vector<AlarmTally> alarms;  // in the order first raised
  std::vector<Expectation> expectations;
  // Steps whose failure an expect step asked for (a hung TPM's snapshot).
  std::set<int> expected_failures;
  std::filesystem::path run_json;
  std::string error;  // what ended the run early, when it did
};

/// A run driven one step at a time (Python, an interactive bench), by the
/// same code that runs a scenario file: the same checks, alarms, store rows,
/// run.json and junit.xml. The scenario gives the platform (and any steps
/// the caller chooses to run from it).
class Session {
 public:
  /// Sets up the run: a lock on out_dir (and on the folder of a kept chip
  /// state) held until Finish, the store, a newly manufactured (or given)
  /// emulated DUT or the bench's chip, the run's row. An error only when that
  /// cannot be done, or when the bench does not allow a step of the scenario;
  /// out_dir in use by another run is an error at once. When the DUT cannot
  /// be started, run.json and junit.xml still say so (status error).
  static Result<std::unique_ptr<Session>> Open(Scenario scenario, RunOptions options);
  /// Finishes the run if Finish() was not called.
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  /// Runs one step (a repeat or choose expands to the steps it runs) and
  /// returns the results it produced. A failed step is in its result, not an
  /// error; after the run has ended nothing runs and the list is empty.
  std::vector<StepResult> Execute(const Step& step);
  /// Runs one step keeping nothing of its results (they are in the store):
  /// what RunScenario does, so a long repeat stays in constant memory.
  void ExecuteUnkept(const Step& step);
  bool ended() const;
  Dut& dut();
  const Scenario& scenario() const;
  /// Ends the run: judges what no expect step covered, shuts the DUT down in
  /// order, writes run.json and junit.xml. Later calls return the same result.
  const RunResult& Finish();

 private:
  Session();
  struct State;
  static Status LaunchEmulatedDut(State& st, uint64_t seed);
  static Status OpenHardwareDut(State& st, uint64_t seed);
  static Status Start(State& st, uint64_t seed);
  static void RecordFailedStart(State& st, uint64_t seed, const Status& why);
  std::unique_ptr<State> state_;
};

/// A step as run.json records it (with its snapshot unless told not to).
nlohmann::json StepToJson(const StepResult& step, bool with_snapshot = true);

/// Runs the scenario. Returns an error Status only when the run could not be
/// set up (bad options, database, missing swtpm); a run that starts always
/// ends with a RunResult, its steps stored, and run.json written.
Result<RunResult> RunScenario(const Scenario& scenario, const RunOptions& options);

}  // namespace tpmlab
