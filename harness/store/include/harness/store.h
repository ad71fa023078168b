// Store: results in SQLite (WAL). A run row is written when the run starts,
// each step with its snapshot, checks and command trace in one transaction
// when the step completes, so a crash loses at most the step in flight.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "drivers/trace_record.h"
#include "harness/rules.h"
#include "harness/snapshot.h"
#include "harness/verify.h"

struct sqlite3;

namespace tpmlab {

// What one step did.
struct StepResult {
  int index = 0;
  std::string action;          // "boot", "power_cycle", "snapshot"
  std::optional<int> cycle;    // power cycles are numbered from 1
  std::string kind;            // the power-cycle kind
  std::string status;          // "passed", "failed" (a check), "error" (could not complete)
  std::string started_at;
  double duration_ms = 0;
  std::vector<Check> checks;
  std::string error;
  std::optional<Snapshot> snapshot;
  std::vector<TraceRecord> trace;
  // What a verifier says of this step's snapshot (or of a TPM it could not reach).
  std::vector<Alarm> alarms;
  std::vector<std::string> not_run;
  // Drift from the previous boot and from the golden reference, as JSON
  // ({pcrs, events, causes}); null when there was nothing to compare.
  nlohmann::json drift;
  nlohmann::json golden_drift;
  // What the step did beyond checks: the TPM's refusal code, injected faults,
  // a firmware update's before/after record, an expectation's verdict.
  std::optional<uint32_t> rc;
  nlohmann::json detail;
};

struct RunInfo {
  std::string scenario;
  std::string scenario_file;
  uint64_t seed = 0;
  std::string started_at;
  std::string tpmlab_version;
  std::string host;
  std::string dut;             // "dut0 (swtpm 0.7.1)"
  std::string config_json;     // the scenario as run, and the DUT's setup
};

inline constexpr int kStoreSchemaVersion = 6;

class Store {
 public:
  /// Opens or creates the database; creates the schema when it is new.
  static Result<std::unique_ptr<Store>> Open(const std::filesystem::path& file);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  Result<int64_t> BeginRun(const RunInfo& run);
  Status RecordStep(int64_t run_id, const StepResult& step);
  Status FinishRun(int64_t run_id, const std::string& status, const std::string& finished_at);
  Status RecordEnrollment(int64_t run_id, int step_index, const Enrollment& enrollment);

  /// The snapshot a stored step took (its quote verified again from the bytes).
  Result<Snapshot> LoadSnapshot(int64_t run_id, int step_index);
  /// The latest enrollment of a run, if it made one.
  Result<std::optional<Enrollment>> LoadEnrollment(int64_t run_id);

  const std::filesystem::path& file() const { return file_; }

 private:
  Store(sqlite3* db, std::filesystem::path file) : db_(db), file_(std::move(file)) {}
  Status Exec(const char* sql);
  Status Error(const std::string& what) const;

  sqlite3* db_;
  std::filesystem::path file_;
};

}  // namespace tpmlab
