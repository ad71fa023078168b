#include "harness/store.h"

#include <sqlite3.h>

#include "statement.h"

#include "harness/snapshot_json.h"
#include "harness/tpm_types.h"

namespace tpmlab {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY,
  scenario TEXT NOT NULL,
  scenario_file TEXT,
  seed INTEGER NOT NULL,
  status TEXT NOT NULL,            -- running, passed, failed, error, interrupted
  started_at TEXT NOT NULL,
  finished_at TEXT,
  tpmlab_version TEXT,
  host TEXT,
  dut TEXT,
  config_json TEXT,
  pid INTEGER,                     -- the process writing it, and when that process started:
  pid_started TEXT,                -- a running run whose process is gone was killed
  outcome_json TEXT                -- expectations, error, DUT: what export needs (set at finish)
);
CREATE TABLE IF NOT EXISTS steps (
  id INTEGER PRIMARY KEY,
  run_id INTEGER NOT NULL REFERENCES runs(id),
  idx INTEGER NOT NULL,
  action TEXT NOT NULL,
  cycle INTEGER,
  kind TEXT,
  status TEXT NOT NULL,            -- passed, failed, error
  started_at TEXT NOT NULL,
  duration_ms REAL,
  error TEXT,
  checks_json TEXT,
  alarms_json TEXT,
  drift_json TEXT,
  detail_json TEXT,                -- what the step did: faults, firmware records, refusals
  rc INTEGER,                      -- a refusal's TPM response code (a number, for programs)
  rc_name TEXT,                    -- and its name, as run.json gives it: "TPM_RC_VALUE"
  UNIQUE (run_id, idx)
);
CREATE TABLE IF NOT EXISTS enrollments (
  id INTEGER PRIMARY KEY,
  run_id INTEGER REFERENCES runs(id),
  step_idx INTEGER,
  dut TEXT NOT NULL,
  enrolled_at TEXT NOT NULL,
  ek_name TEXT,
  ak_name TEXT,
  enrollment_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshots (
  id INTEGER PRIMARY KEY,
  step_id INTEGER NOT NULL REFERENCES steps(id),
  run_id INTEGER NOT NULL REFERENCES runs(id),
  taken_at TEXT NOT NULL,
  pcrs_json TEXT NOT NULL,
  clock_ms INTEGER,
  reset_count INTEGER,
  restart_count INTEGER,
  safe INTEGER,
  firmware_version INTEGER,
  manufacturer TEXT,
  quote_verified INTEGER,
  quote_failure TEXT,
  quote_bank TEXT,
  nonce BLOB,
  quote_attest BLOB,
  quote_signature BLOB,
  ek_name TEXT,
  srk_name TEXT,
  ak_name TEXT,
  ak_public_der BLOB,
  latency_json TEXT,
  eventlog BLOB,                   -- the log the OS would read, when there is one
  eventlog_json TEXT,              -- events, sha256, replay_matches
  snapshot_json TEXT               -- the whole snapshot as run.json has it
);
CREATE TABLE IF NOT EXISTS commands (
  step_id INTEGER NOT NULL REFERENCES steps(id),
  seq INTEGER NOT NULL,
  code INTEGER NOT NULL,
  name TEXT NOT NULL,
  response_code INTEGER,
  failed INTEGER NOT NULL,
  duration_us REAL,
  command BLOB,
  response BLOB
);
CREATE INDEX IF NOT EXISTS steps_by_run ON steps(run_id);
CREATE INDEX IF NOT EXISTS snapshots_by_run ON snapshots(run_id);
CREATE INDEX IF NOT EXISTS commands_by_step ON commands(step_id);
)sql";

// What each schema version adds to the one before it; a database written by
// an older tpmlab is brought up to date when it is opened.
constexpr const char* kMigrations[] = {
    /* 1 -> 2 */ "ALTER TABLE snapshots ADD COLUMN eventlog BLOB;"
                 "ALTER TABLE snapshots ADD COLUMN eventlog_json TEXT;",
    /* 2 -> 3 */ "ALTER TABLE steps ADD COLUMN alarms_json TEXT;"
                 "ALTER TABLE steps ADD COLUMN drift_json TEXT;",
    /* 3 -> 4 */ "ALTER TABLE snapshots ADD COLUMN snapshot_json TEXT;",
    /* 4 -> 5 */ "ALTER TABLE steps ADD COLUMN detail_json TEXT;",
    /* 5 -> 6 */ "ALTER TABLE steps ADD COLUMN rc INTEGER;"
                 "ALTER TABLE steps ADD COLUMN rc_name TEXT;",
    /* 6 -> 7 */ "ALTER TABLE runs ADD COLUMN pid INTEGER;"
                 "ALTER TABLE runs ADD COLUMN pid_started TEXT;"
                 "ALTER TABLE runs ADD COLUMN outcome_json TEXT;",
};

}  // namespace

Store::~Store() { sqlite3_close(db_); }

Status Store::Error(const std::string& what) const {
  return Status::Error(Layer::kStore, file_.string() + ": " + what + ": " + sqlite3_errmsg(db_));
}

Status Store::Exec(const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    std::string m = message ? message : "unknown error";
    sqlite3_free(message);
    return Status::Error(Layer::kStore, file_.string() + ": " + m);
  }
  return Status::Ok();
}

Result<std::unique_ptr<Store>> Store::Open(const std::filesystem::path& file) {
  std::error_code ec;
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), ec);
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    std::string m = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return Status::Error(Layer::kStore, "cannot open " + file.string() + ": " + m);
  }
  std::unique_ptr<Store> store(new Store(db, file));
  sqlite3_busy_timeout(db, 5000);  // another run may be writing to the same file
  // WAL: readers see every committed step while a run is writing, and a
  // crashed writer never corrupts what was committed.
  TRY(store->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"));
  TRY(store->Exec("BEGIN IMMEDIATE;"));
  int version = 0;
  {
    Statement st(db, "PRAGMA user_version");
    version = st.ok() ? st.ColumnInt() : 0;
  }
  if (version > kStoreSchemaVersion) {
    (void)store->Exec("ROLLBACK;");
    return Status::Error(Layer::kStore, file.string() + ": schema version " + std::to_string(version) +
                                            " is newer than this tpmlab knows (" +
                                            std::to_string(kStoreSchemaVersion) + ")");
  }
  Status schema = Status::Ok();
  for (int v = std::max(version, 1); v < kStoreSchemaVersion && schema.ok() && version != 0; ++v) {
    schema = store->Exec(kMigrations[v - 1]);
  }
  if (schema.ok()) schema = store->Exec(kSchema);
  if (schema.ok()) {
    schema = store->Exec(("PRAGMA user_version=" + std::to_string(kStoreSchemaVersion) + ";").c_str());
  }
  if (!schema.ok()) {
    (void)store->Exec("ROLLBACK;");
    return schema.Wrap("creating the schema (is this a tpmlab database?)");
  }
  TRY(store->Exec("COMMIT;"));
  return store;
}

Result<int64_t> Store::BeginRun(const RunInfo& run) {
  Statement st(db_, "INSERT INTO runs (scenario, scenario_file, seed, status, started_at, "
                    "tpmlab_version, host, dut, config_json, pid, pid_started) VALUES (?,?,?,'running',?,?,?,?,?,?,?)");
  if (!st.ok()) return Error("prepare run");
  st.Text(1, run.scenario).Text(2, run.scenario_file).Int(3, static_cast<int64_t>(run.seed))
      .Text(4, run.started_at).Text(5, run.tpmlab_version).Text(6, run.host).Text(7, run.dut)
      .Text(8, run.config_json).Int(9, run.pid).Text(10, run.pid_started);
  if (!st.Run()) return Error("insert run");
  return static_cast<int64_t>(sqlite3_last_insert_rowid(db_));
}

Status Store::RecordStep(int64_t run_id, const StepResult& step) {
  TRY(Exec("BEGIN IMMEDIATE;"));
  auto fail = [this](const std::string& what) {
    Status s = Error(what);
    (void)Exec("ROLLBACK;");
    return s;
  };
  {
    Statement st(db_, "INSERT INTO steps (run_id, idx, action, cycle, kind, status, started_at, "
                      "duration_ms, error, checks_json, alarms_json, drift_json, detail_json, rc, rc_name) "
                      "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    if (!st.ok()) return fail("prepare step");
    st.Int(1, run_id).Int(2, step.index).Text(3, step.action);
    step.cycle ? st.Int(4, *step.cycle) : st.Null(4);
    st.Text(5, step.kind).Text(6, step.status).Text(7, step.started_at).Real(8, step.duration_ms)
        .Text(9, step.error).Text(10, ChecksToJson(step.checks).dump());
    nlohmann::json alarms = nlohmann::json::array();
    for (const auto& a : step.alarms) alarms.push_back(AlarmToJson(a));
    st.Text(11, nlohmann::json{{"alarms", alarms}, {"not_run", step.not_run}}.dump())
        .Text(12, nlohmann::json{{"previous", step.drift}, {"golden", step.golden_drift}}.dump());
    step.detail.is_null() ? st.Null(13) : st.Text(13, step.detail.dump());
    if (step.rc) {
      st.Int(14, *step.rc).Text(15, TpmResponseCodeName(*step.rc));
    } else {
      st.Null(14).Null(15);
    }
    if (!st.Run()) return fail("insert step");
  }
  const int64_t step_id = sqlite3_last_insert_rowid(db_);
  if (step.snapshot) {
    const Snapshot& s = *step.snapshot;
    Statement st(db_, "INSERT INTO snapshots (step_id, run_id, taken_at, pcrs_json, clock_ms, "
                      "reset_count, restart_count, safe, firmware_version, manufacturer, "
                      "quote_verified, quote_failure, quote_bank, nonce, quote_attest, "
                      "quote_signature, ek_name, srk_name, ak_name, ak_public_der, latency_json, "
                      "eventlog, eventlog_json, snapshot_json) "
                      "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    if (!st.ok()) return fail("prepare snapshot");
    st.Int(1, step_id).Int(2, run_id).Text(3, s.taken_at).Text(4, PcrsToJson(s.pcrs).dump())
        .Int(5, static_cast<int64_t>(s.clock().clock_ms)).Int(6, s.clock().reset_count)
        .Int(7, s.clock().restart_count).Int(8, s.clock().safe)
        .Int(9, static_cast<int64_t>(s.properties.firmware_version)).Text(10, s.properties.manufacturer)
        .Int(11, s.quote_check.verified()).Text(12, s.quote_check.failure)
        .Text(13, HashAlgName(s.quote_bank)).Blob(14, s.nonce).Blob(15, s.quote.attest)
        .Blob(16, s.quote.signature).Text(17, ToHex(s.ek.name)).Text(18, ToHex(s.srk.name))
        .Text(19, ToHex(s.ak.name)).Blob(20, s.ak.public_der)
        .Text(21, nlohmann::json(s.latency_us).dump());
    if (s.eventlog) {
      st.Blob(22, *s.eventlog).Text(23, EventlogToJson(s).dump());
    } else {
      st.Null(22).Null(23);
    }
    st.Text(24, SnapshotToJson(s).dump());
    if (!st.Run()) return fail("insert snapshot");
  }
  if (!step.trace.empty()) {
    Statement st(db_, "INSERT INTO commands (step_id, seq, code, name, response_code, failed, "
                      "duration_us, command, response) VALUES (?,?,?,?,?,?,?,?,?)");
    if (!st.ok()) return fail("prepare commands");
    for (const auto& r : step.trace) {
      st.Int(1, step_id).Int(2, static_cast<int64_t>(r.sequence)).Int(3, r.command_code)
          .Text(4, TpmCommandName(r.command_code)).Int(5, r.response_code).Int(6, r.failed)
          .Real(7, std::chrono::duration<double, std::micro>(r.duration).count())
          .Blob(8, r.command).Blob(9, r.response);
      if (!st.Run()) return fail("insert command");
    }
  }
  return Exec("COMMIT;");
}

Status Store::RecordEnrollment(int64_t run_id, int step_index, const Enrollment& e) {
  Statement st(db_, "INSERT INTO enrollments (run_id, step_idx, dut, enrolled_at, ek_name, ak_name, "
                    "enrollment_json) VALUES (?,?,?,?,?,?,?)");
  if (!st.ok()) return Error("prepare enrollment");
  st.Int(1, run_id).Int(2, step_index).Text(3, e.dut).Text(4, e.enrolled_at).Text(5, ToHex(e.ek_name))
      .Text(6, ToHex(e.ak_name)).Text(7, EnrollmentToJson(e).dump());
  if (!st.Run()) return Error("insert enrollment");
  return Status::Ok();
}

namespace {

// "1, 2, 3" or "1 to 250" for the ids in a column, in order.
std::string IdList(sqlite3* db, const char* sql, int64_t bind) {
  Statement count_st(db, (std::string("SELECT COUNT(*), MIN(v), MAX(v) FROM (") + sql + ")").c_str());
  if (!count_st.ok()) return "?";
  if (bind >= 0) count_st.Int(1, bind);
  if (!count_st.Row()) return "?";
  const int64_t n = sqlite3_column_int64(count_st.stmt(), 0);
  const int64_t lo = sqlite3_column_int64(count_st.stmt(), 1), hi = sqlite3_column_int64(count_st.stmt(), 2);
  if (n == 0) return "";
  if (n > 10 && hi - lo + 1 == n) return std::to_string(lo) + " to " + std::to_string(hi);
  Statement st(db, sql);
  if (bind >= 0) st.Int(1, bind);
  std::string out;
  int listed = 0;
  while (st.Row() && listed++ < 10) out += (out.empty() ? "" : ", ") + std::to_string(sqlite3_column_int64(st.stmt(), 0));
  if (n > 10) out += ", ... (" + std::to_string(n) + " in all)";
  return out;
}

// Why a run's step has no stored snapshot: no such run, no such step, or a
// step that took none.
std::string WhyNoSnapshot(sqlite3* db, int64_t run_id, int step_index) {
  Statement run(db, "SELECT COUNT(*) FROM runs WHERE id = ?");
  run.Int(1, run_id);
  if (run.ok() && run.ColumnInt() == 0) {
    const std::string runs = IdList(db, "SELECT id AS v FROM runs ORDER BY id", -1);
    return "there is no run " + std::to_string(run_id) + " in this database (" +
           (runs.empty() ? std::string("it holds no runs") : "its runs: " + runs) + ")";
  }
  Statement step(db, "SELECT COUNT(*) FROM steps WHERE run_id = ? AND idx = ?");
  step.Int(1, run_id).Int(2, step_index);
  if (step.ok() && step.ColumnInt() == 0) {
    const std::string steps = IdList(db, "SELECT idx AS v FROM steps WHERE run_id = ? ORDER BY idx", run_id);
    return "run " + std::to_string(run_id) + " has no step " + std::to_string(step_index) + " (" +
           (steps.empty() ? std::string("it recorded no steps") : "its steps: " + steps) + ")";
  }
  return "that step took no snapshot";
}

}  // namespace

Result<Snapshot> Store::LoadSnapshot(int64_t run_id, int step_index) {
  const std::string where = file_.string() + " run " + std::to_string(run_id) + " step " + std::to_string(step_index);
  Statement st(db_, "SELECT snapshots.snapshot_json, snapshots.eventlog FROM snapshots JOIN steps "
                    "ON snapshots.step_id = steps.id WHERE steps.run_id = ? AND steps.idx = ?");
  if (!st.ok()) return Error("prepare snapshot query");
  st.Int(1, run_id).Int(2, step_index);
  if (!st.Row()) return Status::Parse(where + ": " + WhyNoSnapshot(db_, run_id, step_index));
  const std::string text = st.ColumnText(0);
  if (text.empty()) return Status::Parse(where + ": stored by a tpmlab too old to keep whole snapshots");
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return Status::Parse(where + ": stored snapshot is not JSON");
  const std::optional<Bytes> log = st.ColumnBlob(1);
  if (j.contains("eventlog") && j["eventlog"].is_object()) j["eventlog"].erase("file");  // the bytes are in the database
  TRY_ASSIGN(Snapshot s, SnapshotFromJson(j, file_.parent_path(), where));
  s.eventlog = log;
  return s;
}

Result<std::optional<Enrollment>> Store::LoadEnrollment(int64_t run_id) {
  Statement st(db_, "SELECT enrollment_json FROM enrollments WHERE run_id = ? ORDER BY id DESC LIMIT 1");
  if (!st.ok()) return Error("prepare enrollment query");
  st.Int(1, run_id);
  if (!st.Row()) return std::optional<Enrollment>{};
  nlohmann::json j = nlohmann::json::parse(st.ColumnText(0), nullptr, false);
  TRY_ASSIGN(Enrollment e, EnrollmentFromJson(j, file_.string() + " run " + std::to_string(run_id)));
  return std::optional<Enrollment>(std::move(e));
}

Status Store::FinishRun(int64_t run_id, const std::string& status, const std::string& finished_at,
                        const nlohmann::json& outcome) {
  Statement st(db_, "UPDATE runs SET status = ?, finished_at = ?, outcome_json = ? WHERE id = ?");
  if (!st.ok()) return Error("prepare finish");
  st.Text(1, status).Text(2, finished_at).Int(4, run_id);
  outcome.is_null() ? st.Null(3) : st.Text(3, outcome.dump());
  if (!st.Run()) return Error("finish run");
  return Status::Ok();
}

}  // namespace tpmlab
