#include "harness/store.h"

#include <sqlite3.h>

#include <set>

#include "codec.h"
#include "statement.h"
#include "store_caches.h"

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
CREATE TABLE IF NOT EXISTS blobs (  -- what repeats, stored once: event logs, reference steps
  id INTEGER PRIMARY KEY,
  sha256 BLOB NOT NULL UNIQUE,     -- of the uncompressed bytes
  size INTEGER NOT NULL,           -- uncompressed
  data BLOB NOT NULL               -- zstd
);
CREATE TABLE IF NOT EXISTS steps (
  id INTEGER PRIMARY KEY,
  run_id INTEGER NOT NULL REFERENCES runs(id),
  idx INTEGER NOT NULL,
  action TEXT NOT NULL,
  cycle INTEGER,
  kind TEXT,                       -- the power-cycle kind; NULL for other steps
  status TEXT NOT NULL,            -- passed, failed, error
  started_at TEXT NOT NULL,
  duration_ms REAL,
  error TEXT,
  rc INTEGER,                      -- a refusal's TPM response code (a number, for programs)
  rc_name TEXT,                    -- and its name, as run.json gives it: "TPM_RC_VALUE"
  firmware TEXT,                   -- the platform firmware a firmware update moved to
  base_id INTEGER REFERENCES blobs(id),  -- the reference step `record` is compressed against
  record BLOB NOT NULL,            -- zstd: checks, alarms, drift, detail, snapshot, command trace
  UNIQUE (run_id, idx)
);
CREATE TABLE IF NOT EXISTS step_alarms (  -- each alarm code a step raised, for fleet queries
  step_id INTEGER NOT NULL REFERENCES steps(id),
  run_id INTEGER NOT NULL REFERENCES runs(id),
  code TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshots (  -- the steps that took one; the snapshot is in the step's record
  step_id INTEGER PRIMARY KEY REFERENCES steps(id),
  run_id INTEGER NOT NULL REFERENCES runs(id),
  taken_at TEXT NOT NULL,
  clock_ms INTEGER,
  reset_count INTEGER,
  restart_count INTEGER,
  quote_verified INTEGER,
  eventlog_id INTEGER REFERENCES blobs(id)  -- the log the OS would read, when there is one
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
CREATE INDEX IF NOT EXISTS step_alarms_by_run ON step_alarms(run_id, code);
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
    // The old step tables step aside; ConvertV6Rows rewrites their rows
    // into the new ones (made by kSchema) and drops them.
    /* 6 -> 7 */ "ALTER TABLE runs ADD COLUMN pid INTEGER;"
                 "ALTER TABLE runs ADD COLUMN pid_started TEXT;"
                 "ALTER TABLE runs ADD COLUMN outcome_json TEXT;"
                 "DROP INDEX IF EXISTS steps_by_run;"
                 "DROP INDEX IF EXISTS snapshots_by_run;"
                 "DROP INDEX IF EXISTS commands_by_step;"
                 "ALTER TABLE steps RENAME TO v6_steps;"
                 "ALTER TABLE snapshots RENAME TO v6_snapshots;"
                 "ALTER TABLE commands RENAME TO v6_commands;",
};

// Long hex strings in a step's JSON (quote, nonce, signature, PCR values)
// move to the record's binary tail as bytes: there zstd finds them again in
// the command trace (the quote's signature is the Quote response's), where as
// hex they would be stored a second time.
void MoveHexToTail(nlohmann::json& j, std::vector<Bytes>& tail) {
  if (j.is_object() || j.is_array()) {
    for (auto& v : j) MoveHexToTail(v, tail);
    return;
  }
  if (!j.is_string()) return;
  const std::string& text = j.get_ref<const std::string&>();
  if (text.size() < 32 || text.size() % 2 != 0) return;
  Result<Bytes> bytes = FromHex(text);
  if (!bytes.ok() || ToHex(*bytes) != text) return;  // only what reads back exactly
  j = nlohmann::json{{"$bytes", tail.size()}};
  tail.push_back(std::move(*bytes));
}

void Put32(Bytes& raw, size_t n) {
  for (int i = 0; i < 4; ++i) raw.push_back(static_cast<uint8_t>(n >> (8 * i)));
}

// A step's record before compression: its JSON part (length first), its
// packed command trace, then the JSON's long byte strings.
Bytes PackRecord(nlohmann::json body, const std::vector<TraceRecord>& trace) {
  std::vector<Bytes> tail;
  MoveHexToTail(body, tail);
  const std::string text = body.dump();
  Bytes raw;
  raw.reserve(text.size() + 64 + trace.size() * 256);
  Put32(raw, text.size());
  raw.insert(raw.end(), text.begin(), text.end());
  store_codec::PackTrace(trace, raw);
  Put32(raw, tail.size());
  for (const auto& b : tail) {
    Put32(raw, b.size());
    raw.insert(raw.end(), b.begin(), b.end());
  }
  return raw;
}

bool IsDiskFull(sqlite3* db) {
  const int rc = sqlite3_errcode(db);
  return rc == SQLITE_FULL || rc == SQLITE_IOERR;
}

}  // namespace

Store::Store(sqlite3* db, std::filesystem::path file)
    : db_(db), file_(std::move(file)), caches_(std::make_unique<Caches>()) {}

Store::~Store() { sqlite3_close(db_); }

Status Store::Error(const std::string& what) const {
  if (IsDiskFull(db_)) {
    return Status::Error(Layer::kStore, file_.string() + ": the disk is full (or failing): " + what +
                                            " was not stored (" + sqlite3_errmsg(db_) +
                                            "); what was stored before it is intact");
  }
  return Status::Error(Layer::kStore, file_.string() + ": " + what + ": " + sqlite3_errmsg(db_));
}

Status Store::Exec(const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    std::string m = message ? message : "unknown error";
    sqlite3_free(message);
    if (IsDiskFull(db_)) return Error(sql);
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
  if (schema.ok() && version != 0 && version < kStoreSchemaVersion) schema = store->ConvertV6Rows();
  if (schema.ok()) {
    schema = store->Exec(("PRAGMA user_version=" + std::to_string(kStoreSchemaVersion) + ";").c_str());
  }
  if (!schema.ok()) {
    (void)store->Exec("ROLLBACK;");
    return schema.Wrap("creating the schema (is this a tpmlab database?)");
  }
  TRY(store->Exec("COMMIT;"));
  store->caches_->references.clear();  // written by the conversion; new runs start their own
  return store;
}

Result<int64_t> Store::BeginRun(const RunInfo& run) {
  Statement st(db_, "INSERT INTO runs (scenario, scenario_file, seed, status, started_at, "
                    "tpmlab_version, host, dut, config_json, pid, pid_started) VALUES (?,?,?,'running',?,?,?,?,?,?,?)");
  if (!st.ok()) return Error("prepare run");
  st.Text(1, run.scenario).Text(2, run.scenario_file).Int(3, static_cast<int64_t>(run.seed))
      .Text(4, run.started_at).Text(5, run.tpmlab_version).Text(6, run.host).Text(7, run.dut)
      .Text(8, run.config_json).Int(9, run.pid).Text(10, run.pid_started);
  if (!st.Run()) return Error("the run");
  return static_cast<int64_t>(sqlite3_last_insert_rowid(db_));
}

Result<int64_t> Store::PutBlob(ByteView raw) {
  const Bytes sha = store_codec::Sha256(raw);
  Statement find(db_, "SELECT id FROM blobs WHERE sha256 = ?");
  if (!find.ok()) return Error("prepare blob lookup");
  find.Blob(1, sha);
  if (find.Row()) return static_cast<int64_t>(sqlite3_column_int64(find.stmt(), 0));
  Statement st(db_, "INSERT INTO blobs (sha256, size, data) VALUES (?,?,?)");
  if (!st.ok()) return Error("prepare blob");
  st.Blob(1, sha).Int(2, static_cast<int64_t>(raw.size())).Blob(3, store_codec::Compress(raw));
  if (!st.Run()) return Error("evidence");
  return static_cast<int64_t>(sqlite3_last_insert_rowid(db_));
}

Status Store::WriteStep(int64_t run_id, const StepResult& step) {
  const std::string what = "step " + std::to_string(step.index);
  nlohmann::json alarms = nlohmann::json::array();
  std::set<std::string> codes;
  for (const auto& a : step.alarms) {
    alarms.push_back(AlarmToJson(a));
    codes.insert(a.code);
  }
  nlohmann::json body = {{"checks", ChecksToJson(step.checks)}, {"alarms", alarms}, {"not_run", step.not_run},
                         {"drift", step.drift}, {"golden", step.golden_drift}, {"detail", step.detail}};
  if (step.snapshot) {
    body["snapshot"] = SnapshotToJson(*step.snapshot);
    // The log's bytes are a blob of their own; run.json's file name is not evidence.
    if (body["snapshot"].contains("eventlog") && body["snapshot"]["eventlog"].is_object()) {
      body["snapshot"]["eventlog"].erase("file");
    }
  }
  const Bytes raw = PackRecord(body, step.trace);

  // Against the run's reference step for this action, a boot that repeats
  // the one before costs only what differs (nonces, quotes, clocks). When
  // the reference no longer fits (a firmware update changed the PCRs and
  // log), this step becomes the new one.
  // Per kind: a resume keeps its PCRs, a reset measures the firmware again.
  Caches::Key key{run_id, step.action + "/" + step.kind};
  const auto ref = caches_->references.find(key);
  int64_t base_id = 0;
  Bytes record;
  if (ref != caches_->references.end()) {
    record = store_codec::Compress(raw, ref->second.raw);
    base_id = ref->second.id;
  }
  if (ref == caches_->references.end() || record.size() * 2 > store_codec::Compress(raw).size()) {
    TRY_ASSIGN(base_id, PutBlob(raw));
    record = store_codec::Compress(raw, raw);
    caches_->pending.emplace(key, Caches::Reference{base_id, raw});
  }
  if (record.empty()) return Status::Error(Layer::kStore, file_.string() + ": " + what + ": zstd failed");

  std::string firmware;
  if (step.detail.is_object() && step.detail.contains("platform") && step.detail["platform"].is_object() &&
      step.detail["platform"].contains("to") && step.detail["platform"]["to"].is_string()) {
    firmware = step.detail["platform"]["to"].get<std::string>();
  }
  {
    Statement st(db_, "INSERT INTO steps (run_id, idx, action, cycle, kind, status, started_at, duration_ms, "
                      "error, rc, rc_name, firmware, base_id, record) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    if (!st.ok()) return Error("prepare step");
    st.Int(1, run_id).Int(2, step.index).Text(3, step.action);
    step.cycle ? st.Int(4, *step.cycle) : st.Null(4);
    step.kind.empty() ? st.Null(5) : st.Text(5, step.kind);
    st.Text(6, step.status).Text(7, step.started_at).Real(8, step.duration_ms);
    step.error.empty() ? st.Null(9) : st.Text(9, step.error);
    if (step.rc) {
      st.Int(10, *step.rc).Text(11, TpmResponseCodeName(*step.rc));
    } else {
      st.Null(10).Null(11);
    }
    firmware.empty() ? st.Null(12) : st.Text(12, firmware);
    st.Int(13, base_id).Blob(14, record);
    if (!st.Run()) return Error(what);
  }
  const int64_t step_id = sqlite3_last_insert_rowid(db_);
  if (!codes.empty()) {
    Statement st(db_, "INSERT INTO step_alarms (step_id, run_id, code) VALUES (?,?,?)");
    if (!st.ok()) return Error("prepare alarms");
    for (const auto& c : codes) {
      if (!st.Int(1, step_id).Int(2, run_id).Text(3, c).Run()) return Error(what + "'s alarms");
    }
  }
  if (step.snapshot) {
    const Snapshot& s = *step.snapshot;
    int64_t eventlog_id = 0;
    if (s.eventlog) {
      TRY_ASSIGN(eventlog_id, PutBlob(*s.eventlog));
    }
    Statement st(db_, "INSERT INTO snapshots (step_id, run_id, taken_at, clock_ms, reset_count, restart_count, "
                      "quote_verified, eventlog_id) VALUES (?,?,?,?,?,?,?,?)");
    if (!st.ok()) return Error("prepare snapshot");
    st.Int(1, step_id).Int(2, run_id).Text(3, s.taken_at).Int(4, static_cast<int64_t>(s.clock().clock_ms))
        .Int(5, s.clock().reset_count).Int(6, s.clock().restart_count).Int(7, s.quote_check.verified());
    eventlog_id ? st.Int(8, eventlog_id) : st.Null(8);
    if (!st.Run()) return Error(what + "'s snapshot");
  }
  return Status::Ok();
}

Status Store::RecordStep(int64_t run_id, const StepResult& step) {
  TRY(Exec("BEGIN IMMEDIATE;"));
  caches_->pending.reset();
  Status written = WriteStep(run_id, step);
  if (written.ok()) written = Exec("COMMIT;");
  if (!written.ok()) {
    // SQLite may have rolled back already (a full disk at commit does).
    if (!sqlite3_get_autocommit(db_)) (void)Exec("ROLLBACK;");
    caches_->pending.reset();
    return written;
  }
  if (caches_->pending) {
    caches_->references[caches_->pending->first] = std::move(caches_->pending->second);
    caches_->pending.reset();
  }
  return Status::Ok();
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
  Statement st(db_, "SELECT steps.base_id, steps.record, snapshots.eventlog_id FROM snapshots JOIN steps "
                    "ON snapshots.step_id = steps.id WHERE steps.run_id = ? AND steps.idx = ?");
  if (!st.ok()) return Error("prepare snapshot query");
  st.Int(1, run_id).Int(2, step_index);
  if (!st.Row()) return Status::Parse(where + ": " + WhyNoSnapshot(db_, run_id, step_index));
  nlohmann::json body;
  const Bytes record = st.ColumnBlob(1).value_or(Bytes{});
  TRY(ReadRecord(sqlite3_column_int64(st.stmt(), 0), record, body, nullptr, where));
  return SnapshotOf(body, sqlite3_column_int64(st.stmt(), 2), where);
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
