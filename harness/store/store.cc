#include "harness/store.h"

#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>
#include <soci/sqlite3/soci-sqlite3.h>

#include <regex>
#include <set>

#include "codec.h"
#include "store_caches.h"

#include "harness/snapshot_json.h"
#include "harness/tpm_types.h"

namespace tpmlab {
namespace {

using soci::i_null;
using soci::indicator;
using soci::into;
using soci::use;

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
  step_id INTEGER NOT NULL PRIMARY KEY REFERENCES steps(id),
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
// packed command trace, then the JSON's long byte strings, then when each
// command was sent (a section older readers never reach).
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
  store_codec::PackTraceTimes(trace, raw);
  return raw;
}

// The schema in PostgreSQL's words: 64-bit integers (seeds, clocks), ids
// numbered by the database, doubles; BLOB is a domain over bytea.
std::string InPostgresTerms(std::string sql) {
  sql = std::regex_replace(sql, std::regex(R"(\bINTEGER PRIMARY KEY\b)"), "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY");
  sql = std::regex_replace(sql, std::regex(R"(\bINTEGER\b)"), "BIGINT");
  return std::regex_replace(sql, std::regex(R"(\bREAL\b)"), "DOUBLE PRECISION");
}

// Statements of a script without its comments, split at `;` (the schema
// holds neither inside a string).
std::vector<std::string> Statements(const std::string& script) {
  static const std::regex comment("--[^\n]*");
  const std::string code = std::regex_replace(script, comment, "");
  std::vector<std::string> out;
  size_t from = 0;
  while (from < code.size()) {
    size_t end = code.find(';', from);
    if (end == std::string::npos) end = code.size();
    std::string one = code.substr(from, end - from);
    if (one.find_first_not_of(" \t\r\n") != std::string::npos) out.push_back(std::move(one));
    from = end + 1;
  }
  return out;
}

// SOCI's PostgreSQL backend reads the connection string as key=value words
// and rewrites it: a URL must hold a `key=value` (a query parameter) to come
// through whole. application_name also names tpmlab in pg_stat_activity.
std::string PostgresConnectString(const std::string& url) {
  if (url.find('=') != std::string::npos) return url;
  return url + (url.find('?') == std::string::npos ? "?" : "&") + "application_name=tpmlab";
}

// SOCI's SQLite backend takes `key=value` words when the string holds '='.
std::string SqliteConnectString(const std::string& file) {
  if (file.find('=') == std::string::npos) return file;
  return "db=\"" + file + "\"";
}

// libpq's messages come in lines: one line for a message that names the database.
std::string OneLine(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  text = std::regex_replace(text, std::regex("\\.?\n+"), ": ");
  return text;
}

// Writers of one SQLite file in this process (a fleet's DUTs) take turns
// here rather than in SQLite's busy handler, which sleeps between its tries:
// with 8 DUTs those sleeps cost a quarter of the fleet's cycles. Other
// processes still wait in the busy handler.
std::shared_ptr<std::mutex> WriterTurn(const std::filesystem::path& file) {
  static std::mutex guard;
  static std::map<std::string, std::weak_ptr<std::mutex>> turns;
  std::error_code ec;
  const std::string key = std::filesystem::weakly_canonical(file, ec).string();
  std::lock_guard<std::mutex> hold(guard);
  std::shared_ptr<std::mutex> turn = turns[key].lock();
  if (!turn) {
    turn = std::make_shared<std::mutex>();
    turns[key] = turn;
  }
  return turn;
}

constexpr int kPostgresSchemaLock = 0x7470'6d6c;  // "tpml": one host creates or migrates the schema

}  // namespace

bool IsDatabaseUrl(const std::string& target) {
  return target.rfind("postgresql://", 0) == 0 || target.rfind("postgres://", 0) == 0;
}

std::string DatabaseDisplayName(const std::string& target) {
  if (!IsDatabaseUrl(target)) return target;
  // postgresql://user:PASSWORD@host/…: the password is dropped.
  static const std::regex password(R"(^(postgres(ql)?://[^:/@?]*):[^@/?]*@)");
  std::string shown = std::regex_replace(target, password, "$1@");
  static const std::regex query_password(R"(([?&])password=[^&]*&?)");
  shown = std::regex_replace(shown, query_password, "$1");
  if (!shown.empty() && (shown.back() == '&' || shown.back() == '?')) shown.pop_back();
  return shown;
}

std::string DefaultDatabase(const std::filesystem::path& out_dir) {
  const char* env = std::getenv("TPMLAB_DB");
  if (env != nullptr && *env != '\0') return env;
  return (out_dir / "tpmlab.db").string();
}

std::string DatabaseReference(const std::string& target) {
  if (IsDatabaseUrl(target)) return DatabaseDisplayName(target);
  return std::filesystem::absolute(target).lexically_normal().string();
}

Store::Store(std::unique_ptr<soci::session> sql, bool postgres, std::filesystem::path file, std::string name)
    : sql_(std::move(sql)),
      postgres_(postgres),
      file_(std::move(file)),
      name_(std::move(name)),
      caches_(std::make_unique<Caches>()) {
  if (!postgres_) {
    auto* backend = static_cast<soci::sqlite3_session_backend*>(sql_->get_backend());
    sqlite_ = reinterpret_cast<::sqlite3*>(backend->conn_);
    writer_turn_ = WriterTurn(file_);
  }
}

Store::~Store() = default;

Status Store::Failed(const std::string& what, const std::exception& e) const {
  bool full = false;
  if (const auto* lite = dynamic_cast<const soci::sqlite3_soci_error*>(&e)) {
    const int rc = lite->result() & 0xff;
    full = rc == SQLITE_FULL || rc == SQLITE_IOERR;
  } else if (const auto* pg = dynamic_cast<const soci::postgresql_soci_error*>(&e)) {
    full = pg->sqlstate() == "53100" || pg->sqlstate().rfind("58", 0) == 0;  // disk_full, system errors
  }
  const std::string message = OneLine(e.what());
  if (full) {
    return Status::Error(Layer::kStore, name_ + ": the disk is full (or failing): " + what +
                                            " was not stored (" + message + "); what was stored before it is intact");
  }
  return Status::Error(Layer::kStore, name_ + ": " + what + ": " + message);
}

Status Store::Exec(const std::string& script) {
  for (const auto& statement : Statements(script)) {
    try {
      *sql_ << statement;
    } catch (const std::exception& e) {
      return Failed(statement.substr(statement.find_first_not_of(" \n"), 60), e);
    }
  }
  return Status::Ok();
}

Status Store::Begin() {
  // IMMEDIATE: SQLite takes the write lock now (waiting out other writers)
  // rather than failing at the first write.
  return Exec(postgres_ ? "BEGIN" : "BEGIN IMMEDIATE");
}

Status Store::Rollback() {
  // SQLite rolls back by itself on some errors (a full disk at commit does).
  if (sqlite_ && sqlite_api::sqlite3_get_autocommit(reinterpret_cast<sqlite_api::sqlite3*>(sqlite_))) return Status::Ok();
  return Exec("ROLLBACK");
}

std::string Store::BlobParam(ByteView bytes) const {
  if (!postgres_) return std::string(bytes.begin(), bytes.end());
  return "\\x" + ToHex(bytes);
}

Result<Bytes> Store::BlobColumn(const std::string& column) const {
  if (!postgres_) return Bytes(column.begin(), column.end());
  if (column.rfind("\\x", 0) != 0) return Status::Parse(name_ + ": a bytea column is not in hex form");
  return FromHex(std::string_view(column).substr(2));
}

Result<std::unique_ptr<Store>> Store::Open(const std::string& target) {
  const bool postgres = IsDatabaseUrl(target);
  const std::string name = DatabaseDisplayName(target);
  auto sql = std::make_unique<soci::session>();
  std::filesystem::path file;
  try {
    if (postgres) {
      sql->open(soci::postgresql, PostgresConnectString(target));
    } else {
      file = target;
      std::error_code ec;
      if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), ec);
      sql->open(soci::sqlite3, SqliteConnectString(target));
    }
  } catch (const std::exception& e) {
    return Status::Error(Layer::kStore, "cannot open " + name + ": " + OneLine(e.what()));
  }
  std::unique_ptr<Store> store(new Store(std::move(sql), postgres, file, name));
  if (!postgres) {
    auto* lite = reinterpret_cast<sqlite_api::sqlite3*>(store->sqlite_);
    sqlite_api::sqlite3_busy_timeout(lite, 5000);  // another run may be writing to the same file
    // WAL: readers see every committed step while a run is writing, and a
    // crashed writer never corrupts what was committed.
    TRY(store->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"));
  } else {
    // libpq prints notices ("relation ... already exists, skipping") on stderr.
    TRY(store->Exec("SET client_min_messages = warning"));
  }
  TRY(store->Begin());
  Status schema = store->OpenSchema();
  if (!schema.ok()) {
    (void)store->Rollback();
    return schema;
  }
  TRY(store->Exec("COMMIT"));
  store->caches_->references.clear();  // written by the conversion; new runs start their own
  return store;
}

// Inside Open's transaction. SQLite keeps the schema version in
// user_version, PostgreSQL in a table; PostgreSQL starts at version 7, so
// the older migrations are SQLite's alone.
Status Store::OpenSchema() {
  int version = 0;
  try {
    if (postgres_) {
      // Hosts starting together: one makes the schema, the others wait for it.
      *sql_ << "SELECT pg_advisory_xact_lock(" + std::to_string(kPostgresSchemaLock) + ")";
      *sql_ << "CREATE TABLE IF NOT EXISTS tpmlab_schema (version INTEGER NOT NULL)";
      indicator has = i_null;
      *sql_ << "SELECT MAX(version) FROM tpmlab_schema", into(version, has);
      if (has == i_null) version = 0;
    } else {
      *sql_ << "PRAGMA user_version", into(version);
    }
  } catch (const std::exception& e) {
    return Failed("reading the schema version (is this a tpmlab database?)", e);
  }
  if (version > kStoreSchemaVersion) {
    return Status::Error(Layer::kStore, name_ + ": schema version " + std::to_string(version) +
                                            " is newer than this tpmlab knows (" +
                                            std::to_string(kStoreSchemaVersion) + ")");
  }
  if (version == kStoreSchemaVersion) return Status::Ok();
  Status schema = Status::Ok();
  if (postgres_) {
    if (version == 0) schema = Exec("CREATE DOMAIN blob AS bytea");
    if (schema.ok()) schema = Exec(InPostgresTerms(kSchema));
    if (schema.ok()) schema = Exec("DELETE FROM tpmlab_schema; INSERT INTO tpmlab_schema (version) VALUES (" +
                                   std::to_string(kStoreSchemaVersion) + ")");
  } else {
    for (int v = std::max(version, 1); v < kStoreSchemaVersion && schema.ok() && version != 0; ++v) {
      schema = Exec(kMigrations[v - 1]);
    }
    if (schema.ok()) schema = Exec(kSchema);
    if (schema.ok() && version != 0) schema = ConvertV6Rows();
    if (schema.ok()) schema = Exec("PRAGMA user_version=" + std::to_string(kStoreSchemaVersion));
  }
  if (!schema.ok()) return schema.Wrap("creating the schema (is this a tpmlab database?)");
  return Status::Ok();
}

Result<int64_t> Store::BeginRun(const RunInfo& run) {
  long long id = 0;
  try {
    const long long seed = static_cast<long long>(run.seed), pid = run.pid;
    *sql_ << "INSERT INTO runs (scenario, scenario_file, seed, status, started_at, tpmlab_version, host, dut, "
             "config_json, pid, pid_started) VALUES (:a, :b, :c, 'running', :d, :e, :f, :g, :h, :i, :j) RETURNING id",
        use(run.scenario), use(run.scenario_file), use(seed), use(run.started_at), use(run.tpmlab_version),
        use(run.host), use(run.dut), use(run.config_json), use(pid), use(run.pid_started), into(id);
  } catch (const std::exception& e) {
    return Failed("the run", e);
  }
  return static_cast<int64_t>(id);
}

// Inside the caller's transaction.
Result<int64_t> Store::PutBlob(ByteView raw) {
  const std::string sha = BlobParam(store_codec::Sha256(raw));
  long long id = 0;
  try {
    soci::statement find = (sql_->prepare << "SELECT id FROM blobs WHERE sha256 = CAST(:s AS BLOB)", use(sha), into(id));
    if (find.execute(true)) return static_cast<int64_t>(id);
    const std::string data = BlobParam(store_codec::Compress(raw));
    const long long size = static_cast<long long>(raw.size());
    // Another host may store the same log at the same moment (PostgreSQL):
    // the second insert does nothing, and reads the first one's row.
    soci::statement insert = (sql_->prepare << "INSERT INTO blobs (sha256, size, data) VALUES "
                                               "(CAST(:s AS BLOB), :n, CAST(:d AS BLOB)) "
                                               "ON CONFLICT (sha256) DO NOTHING RETURNING id",
                              use(sha), use(size), use(data), into(id));
    if (insert.execute(true)) return static_cast<int64_t>(id);
    *sql_ << "SELECT id FROM blobs WHERE sha256 = CAST(:s AS BLOB)", use(sha), into(id);
  } catch (const std::exception& e) {
    return Failed("evidence", e);
  }
  return static_cast<int64_t>(id);
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
  if (record.empty()) return Status::Error(Layer::kStore, name_ + ": " + what + ": zstd failed");

  std::string firmware;
  if (step.detail.is_object() && step.detail.contains("platform") && step.detail["platform"].is_object() &&
      step.detail["platform"].contains("to") && step.detail["platform"]["to"].is_string()) {
    firmware = step.detail["platform"]["to"].get<std::string>();
  }
  int64_t eventlog_id = 0;
  if (step.snapshot && step.snapshot->eventlog) {
    TRY_ASSIGN(eventlog_id, PutBlob(*step.snapshot->eventlog));
  }
  try {
    const long long run = run_id, base = base_id;
    const int index = step.index, cycle = step.cycle.value_or(0);
    const long long rc = step.rc.value_or(0);
    const std::string rc_name = step.rc ? TpmResponseCodeName(*step.rc) : "";
    const std::string data = BlobParam(record);
    indicator has_cycle = step.cycle ? soci::i_ok : i_null, has_kind = step.kind.empty() ? i_null : soci::i_ok,
                    has_error = step.error.empty() ? i_null : soci::i_ok, has_rc = step.rc ? soci::i_ok : i_null,
                    has_firmware = firmware.empty() ? i_null : soci::i_ok;
    long long step_id = 0;
    *sql_ << "INSERT INTO steps (run_id, idx, action, cycle, kind, status, started_at, duration_ms, error, rc, "
             "rc_name, firmware, base_id, record) VALUES (:r, :i, :a, :c, :k, :s, :t, :d, :e, :rc, :rn, :f, :b, "
             "CAST(:rec AS BLOB)) RETURNING id",
        use(run), use(index), use(step.action), use(cycle, has_cycle), use(step.kind, has_kind), use(step.status),
        use(step.started_at), use(step.duration_ms), use(step.error, has_error), use(rc, has_rc),
        use(rc_name, has_rc), use(firmware, has_firmware), use(base), use(data), into(step_id);
    for (const auto& code : codes) {
      *sql_ << "INSERT INTO step_alarms (step_id, run_id, code) VALUES (:s, :r, :c)", use(step_id), use(run),
          use(code);
    }
    if (step.snapshot) {
      const Snapshot& s = *step.snapshot;
      const long long clock_ms = static_cast<long long>(s.clock().clock_ms), log = eventlog_id;
      const long long resets = s.clock().reset_count, restarts = s.clock().restart_count;
      const int verified = s.quote_check.verified() ? 1 : 0;
      indicator has_log = eventlog_id ? soci::i_ok : i_null;
      *sql_ << "INSERT INTO snapshots (step_id, run_id, taken_at, clock_ms, reset_count, restart_count, "
               "quote_verified, eventlog_id) VALUES (:s, :r, :t, :c, :rs, :rt, :q, :l)",
          use(step_id), use(run), use(s.taken_at), use(clock_ms), use(resets), use(restarts), use(verified),
          use(log, has_log);
    }
  } catch (const std::exception& e) {
    return Failed(what, e);
  }
  return Status::Ok();
}

Status Store::RecordStep(int64_t run_id, const StepResult& step) {
  std::unique_lock<std::mutex> turn;
  if (writer_turn_) turn = std::unique_lock<std::mutex>(*writer_turn_);
  TRY(Begin());
  caches_->pending.reset();
  Status written = WriteStep(run_id, step);
  if (written.ok()) written = Exec("COMMIT");
  if (!written.ok()) {
    (void)Rollback();
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
  try {
    // Named, not temporaries: SOCI runs the statement after they would be gone.
    const long long run = run_id;
    const std::string ek = ToHex(e.ek_name), ak = ToHex(e.ak_name), text = EnrollmentToJson(e).dump();
    *sql_ << "INSERT INTO enrollments (run_id, step_idx, dut, enrolled_at, ek_name, ak_name, enrollment_json) "
             "VALUES (:r, :i, :d, :t, :ek, :ak, :j)",
        use(run), use(step_index), use(e.dut), use(e.enrolled_at), use(ek), use(ak), use(text);
  } catch (const std::exception& ex) {
    return Failed("the enrollment", ex);
  }
  return Status::Ok();
}

Status Store::FinishRun(int64_t run_id, const std::string& status, const std::string& finished_at,
                        const nlohmann::json& outcome) {
  try {
    const long long run = run_id;
    const std::string text = outcome.is_null() ? "" : outcome.dump();
    indicator has_outcome = outcome.is_null() ? i_null : soci::i_ok;
    *sql_ << "UPDATE runs SET status = :s, finished_at = :f, outcome_json = :o WHERE id = :r", use(status),
        use(finished_at), use(text, has_outcome), use(run);
  } catch (const std::exception& e) {
    return Failed("finishing run " + std::to_string(run_id), e);
  }
  return Status::Ok();
}

}  // namespace tpmlab
