// Store: results in SQLite (WAL, the embedded default) or PostgreSQL (one
// database many lab hosts write at once), through SOCI: one store code, the
// same rows in both. A run row is written when the run starts,
// each step with its snapshot, checks and command trace in one transaction
// when the step completes, so a crash loses at most the step in flight.
// Evidence is kept compact: a step's record is zstd-compressed against a
// reference step of the same run (what repeats from boot to boot costs a few
// bytes), event logs are stored once by their sha256; the columns fleet
// queries filter on (status, cycle, alarm codes, firmware) stay plain SQL.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "drivers/trace_record.h"
#include "harness/rules.h"
#include "harness/snapshot.h"
#include "harness/verify.h"

struct sqlite3;
namespace soci {
class session;
}

namespace tpmlab {

/// A PostgreSQL database named by a libpq URL (postgresql://… or
/// postgres://…), not a SQLite file.
bool IsDatabaseUrl(const std::string& target);
/// What a message or a run.json may show of a database: a SQLite file's
/// path, a URL without its password (libpq reads that from PGPASSWORD or
/// ~/.pgpass, never from a tpmlab file).
std::string DatabaseDisplayName(const std::string& target);
/// Where a run's results go when it names no database: $TPMLAB_DB (a lab's
/// shared one), else OUT/tpmlab.db beside the run.
std::string DefaultDatabase(const std::filesystem::path& out_dir);
/// How run.json and enrollment.json name a database so it opens again from
/// anywhere: a file's absolute path, a URL without its password.
std::string DatabaseReference(const std::string& target);

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
  // The process writing the run: a run left `running` by a process that is
  // gone from this host is shown as interrupted (it was killed).
  int64_t pid = 0;
  std::string pid_started;     // the process's start time (/proc/PID/stat), against reuse
};

// A stored run, as `tpmlab runs` and `tpmlab export` see it.
struct StoredRun {
  int64_t id = 0;
  RunInfo info;                // as BeginRun got it
  // running, passed, failed, error, interrupted. A run whose process died
  // without finishing it (kill -9, power loss) reads as interrupted.
  std::string status;
  std::string finished_at;     // empty while running or when killed
  int steps = 0;               // steps stored
  int power_cycles = 0;
  std::map<std::string, int> alarms;  // alarm code -> steps that raised it
  std::vector<std::string> firmware;  // platform firmware names the run booted, in order
  // What the run stored when it finished (FinishRun): expectations, error,
  // expected failures, the DUT, inputs. Null for a run that never finished.
  nlohmann::json outcome;
};

// Which runs ListRuns returns; empty fields do not filter.
struct RunFilter {
  std::string since;     // runs started at or after this UTC time ("2026-12-01", "2026-12-01T10:00:00Z")
  std::string dut;       // the DUT label contains this
  std::string alarm;     // a step raised this alarm code
  std::string firmware;  // the run booted this platform firmware
};

inline constexpr int kStoreSchemaVersion = 7;

class Store {
 public:
  /// Opens or creates the database, a SQLite file or a postgresql:// URL;
  /// creates the schema when it is new and brings an older one up to date.
  static Result<std::unique_ptr<Store>> Open(const std::string& target);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  Result<int64_t> BeginRun(const RunInfo& run);
  Status RecordStep(int64_t run_id, const StepResult& step);
  /// Ends a run; `outcome` (JSON) is what export needs to write its run.json
  /// and junit.xml again later: expectations, error, expected failures, DUT.
  Status FinishRun(int64_t run_id, const std::string& status, const std::string& finished_at,
                   const nlohmann::json& outcome = nullptr);
  Status RecordEnrollment(int64_t run_id, int step_index, const Enrollment& enrollment);

  /// The snapshot a stored step took (its quote verified again from the bytes).
  Result<Snapshot> LoadSnapshot(int64_t run_id, int step_index);
  /// The latest enrollment of a run, if it made one.
  Result<std::optional<Enrollment>> LoadEnrollment(int64_t run_id);

  /// Runs, oldest first.
  Result<std::vector<StoredRun>> ListRuns(const RunFilter& filter = {});
  Result<StoredRun> LoadRun(int64_t run_id);
  /// Each stored step of a run, in order, rebuilt whole: checks, alarms,
  /// drift, detail, its snapshot (with the event log's bytes) and its command
  /// trace. One step is in memory at a time; an error from `each` stops the walk.
  Status ForEachStep(int64_t run_id, const std::function<Status(StepResult&&)>& each);

  /// The SQLite file; empty for PostgreSQL.
  const std::filesystem::path& file() const { return file_; }
  /// The file, or the URL without its password: what messages and run.json name.
  const std::string& name() const { return name_; }
  bool postgres() const { return postgres_; }

 private:
  struct Caches;  // compression references being written, blobs being read

  Store(std::unique_ptr<soci::session> sql, bool postgres, std::filesystem::path file, std::string name);
  // Runs each statement of a script (SOCI runs one statement at a time).
  Status Exec(const std::string& script);
  // An exception from SOCI as a Status naming the database and `what`; a
  // full disk says so.
  Status Failed(const std::string& what, const std::exception& e) const;
  Status OpenSchema();
  Status Begin();
  Status Rollback();
  // BLOB columns: SQLite binds the bytes, PostgreSQL's text protocol the
  // bytea hex form ("\x0a1b…"); the SQL casts the parameter to BLOB.
  std::string BlobParam(ByteView bytes) const;
  Result<Bytes> BlobColumn(const std::string& column) const;
  // A step's rows, inside the caller's transaction.
  Status WriteStep(int64_t run_id, const StepResult& step);
  // Stored once per content (sha256): the id of the row holding `raw`.
  Result<int64_t> PutBlob(ByteView raw);
  Result<Bytes> GetBlob(int64_t id);
  // A step record unpacked: its JSON part and its command trace.
  Status ReadRecord(int64_t base_id, ByteView record, nlohmann::json& body, std::vector<TraceRecord>* trace,
                    const std::string& where);
  Result<Snapshot> SnapshotOf(nlohmann::json& body, int64_t eventlog_id, const std::string& where);
  std::string WhyNoSnapshot(int64_t run_id, int step_index);
  // Schema 6 (SQLite only) kept steps, snapshots and commands as plain
  // columns: rewritten into the compact layout once, when the database is opened.
  Status ConvertV6Rows();
  Status ConvertV6Steps();

  std::unique_ptr<soci::session> sql_;
  bool postgres_;
  sqlite3* sqlite_ = nullptr;  // SQLite's own handle: busy timeout, transaction state, schema 6
  std::shared_ptr<std::mutex> writer_turn_;  // SQLite: this process's writers of the file take turns
  std::filesystem::path file_;
  std::string name_;
  std::unique_ptr<Caches> caches_;
};

}  // namespace tpmlab
