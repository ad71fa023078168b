// Private to harness/scenario: the run of one scenario on one DUT, which a
// Session (session.cc) owns. The loop and the dispatch are in runner.cc; each
// family of steps has its own file, named below at its members, so a new
// step is one more member in the file of its family (or a new file).
#pragma once

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "harness/bench_policy.h"
#include "harness/boot_source.h"
#include "harness/enrollment.h"
#include "harness/eventlog.h"
#include "harness/runner.h"
#include "harness/snapshot.h"

namespace tpmlab {

class Run {
 public:
  Run(const Scenario& scenario, const RunOptions& options, Store& store, Dut& dut, int64_t run_id,
      uint64_t seed);

  /// Runs one step of the scenario or one built elsewhere (a session);
  /// the results it produced are appended to `keep` when given (they are in
  /// the store either way: the run itself keeps none).
  void Execute(const Step& step, std::vector<StepResult>* keep = nullptr);
  /// Judges what is left and hands over the result.
  RunResult Finish();
  bool Stopped() const;
  const RunResult& result() const { return result_; }
  int steps_stored() const { return steps_stored_; }

 private:
  using Clock = std::chrono::steady_clock;

  // --- the loop and the dispatch (runner.cc) ---------------------------------
  void NoteInterrupt();
  void ExecuteSteps(const std::vector<Step>& steps);
  void ExecuteStep(const Step& step);
  size_t Choose(const ChooseStep& c);
  void ExecuteOne(const Step& step);
  static bool IsRefusal(const Step& step, const Status& s);
  void NoteInjectedFaults(size_t before, StepResult& r);
  static bool IsVerifierCheck(const std::string& name);
  void Settle();
  bool MeasuresFirmware() const;
  Result<EventLog> CurrentEventLog() const;
  bool HasEventLog() const;
  Status Dispatch(const Step& step, StepResult& r);
  void Tally(const StepResult& r);

  // --- boot and power (run_boot.cc) -------------------------------------------
  Status AfterStartup(StartupType startup, const PcrValues& before, bool snapshot, StepResult& r);
  Status Boot(const BootStep& b, StepResult& r);
  Status PowerCycle(const PowerCycleStep& p, StepResult& r);

  // --- snapshots, enrollment, the doctor (run_attest.cc) ----------------------
  Status Snap(StepResult& r);
  Status Enroll(StepResult& r);
  Status Doctor(StepResult& r);
  Check AttachEventLog(Snapshot& s);

  // --- expectations (run_expect.cc) -------------------------------------------
  Status Expect(const ExpectStep& e, const SourceLocation& where, StepResult& r);
  void ExpectPcrs(const ExpectStep& e, const StepResult& s, std::vector<Check>& checks) const;
  void ExpectCounters(const ExpectStep& e, const StepResult& s, std::vector<Check>& checks) const;

  // --- ownership, clock, measurements (run_ownership.cc) ----------------------
  static const char* HierarchyName(Hierarchy h);
  Status Clear(const ClearStep& c, StepResult& r);
  Status ChangeSeed(bool endorsement, StepResult& r);
  Status AllocateBanks(const AllocateBanksStep& al, StepResult& r);
  Status SetClock(uint64_t absolute, int64_t skew, StepResult& r);
  Status Extend(const ExtendStep& e, StepResult& r);

  // --- faults and checkpoints (run_faults.cc) ---------------------------------
  Status Fault(const FaultStep& f, StepResult& r);
  Status Wait(int ms);
  Status Checkpoint(const CheckpointStep& c, StepResult& r);
  Status Rollback(const RollbackStep& rb, StepResult& r);

  // --- firmware (run_firmware.cc) ---------------------------------------------
  Status FirmwareUpdate(const FirmwareUpdateStep& f, StepResult& r);
  Result<nlohmann::json> TpmRecord();

  const Scenario& scenario_;
  const RunOptions& options_;
  Store& store_;
  Dut& dut_;
  int64_t run_id_;
  std::mt19937_64 rng_;
  int total_;
  int cycles_ = 0;
  int failed_checks_ = 0;
  int uncovered_errors_ = 0;
  int consecutive_errors_ = 0;
  bool ended_ = false;
  bool power_lost_ = false;   // an unorderly power loss happened in this run
  int cut_armed_for_ = 0;     // steps an armed power cut still applies to
  int last_step_with_snapshot_ = -1;
  int steps_run_ = 0;
  int steps_stored_ = 0;
  std::vector<StepResult>* keep_ = nullptr;  // where Execute's caller wants the results
  // The last step that is not an expect, which expect steps judge, and what they covered.
  int judged_ = -1;
  std::optional<StepResult> judged_step_;  // that step, kept until the next one
  int settled_ = -1;
  std::string judged_where_;
  bool covered_alarms_ = false, covered_error_ = false, covered_refusal_ = false, covered_checks_ = false;
  std::vector<HashAlg> banks_;
  std::optional<Snapshot> reference_;  // the identity to hold across power cycles
  std::unique_ptr<EmulatedFirmware> firmware_;
  std::optional<Snapshot> last_;            // the latest snapshot: counters and drift
  std::optional<Snapshot> before_last_;     // the one before it (expect: pcrs, counters)
  std::optional<Enrollment> enrollment_;    // set by an enroll step
  std::vector<EnrollmentRecord> enrollments_;  // every enroll step's, for enrollment.json
  std::optional<Snapshot> golden_;          // the snapshot enrolled from
  std::map<std::string, std::filesystem::path> checkpoints_;
  std::optional<uint64_t> stock_version_;   // the installed libtpms's firmware version
  RunResult result_;
};

// --- what a step asks of the bench (run_bench.cc) ------------------------------

/// The bench-guarded operation a step performs, if any (hw/README.md, allow:).
std::optional<Operation> DestructiveOperation(const Step& step);
/// Every step of `steps` (inside repeat and choose too) as the bench judges
/// it (harness/bench_policy.h), in the order they are written.
std::vector<PlannedStep> PlanOf(const std::vector<Step>& steps);

// --- junit.xml (run_files.cc) ----------------------------------------------------

/// JUnit XML for CI, written as a run's steps stream by: one test case for
/// the run as a whole, one per expectation and one per failed step; the
/// properties say what ran. Step cases wait in a spool file beside it.
class JunitWriter {
 public:
  struct Case {
    std::string name;
    double ms = 0;
    std::string failure;  // empty: passed
    bool error = false;   // <error> (could not run) rather than <failure> (wrong result)
  };
  explicit JunitWriter(std::filesystem::path file);
  ~JunitWriter();
  void AddStepCase(const std::string& suite, const Case& c);
  /// Writes the file: `run_case` (its time is the run's), the expectations, then the step cases.
  Status Finish(const std::string& suite, const nlohmann::json& properties, const Case& run_case,
                const std::vector<Case>& expectation_cases);

 private:
  static std::string CaseXml(const std::string& suite, const Case& c);
  void Count(const Case& c);
  std::filesystem::path file_, spool_path_;
  std::ofstream spool_;
  int tests_ = 0, failures_ = 0, errors_ = 0;
};

}  // namespace tpmlab
