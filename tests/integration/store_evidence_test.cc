// The store's evidence under pressure: a database written by schema 6 read
// back whole after the upgrade, and a disk that fills mid-run (the step in
// flight is lost, the database stays consistent, the error says why).
#define BOOST_TEST_MODULE store_evidence
#include <boost/test/unit_test.hpp>
#include <signal.h>
#include <sqlite3.h>
#include <sys/resource.h>

#include <nlohmann/json.hpp>
#include <set>

#include "emulated.h"
#include "harness/runner.h"
#include "harness/scenario_yaml.h"
#include "harness/snapshot_json.h"
#include "harness/store.h"
#include "harness/tpm_types.h"

namespace tpmlab::testing {
namespace {

using nlohmann::json;

// Steps of a real run on swtpm: boots with snapshots, traces and an alarm.
std::vector<StepResult> RecordedSteps() {
  static std::vector<StepResult> steps;
  if (!steps.empty()) return steps;
  const std::string text = R"(
name: recorded
seed: 3
platform:
  banks: [sha1, sha256]
  firmware: )" TPMLAB_SOURCE_DIR R"(/scenarios/firmware/baseline.yaml
steps:
  - boot
  - repeat: {count: 3, steps: [power_cycle: reset]}
  - firmware_update: {platform: secure-boot-off}
  - power_cycle: reset
)";
  const fs::path out = MakeTempDir("recorded");
  RunOptions o;
  o.out_dir = out;
  o.database = out / "results.db";
  RunResult r = Require(RunScenario(Require(LoadScenarioText(text, "recorded.yaml")), o));
  auto store = Require(Store::Open(o.database));
  BOOST_REQUIRE(store->ForEachStep(r.run_id, [&](StepResult&& s) {
    steps.push_back(std::move(s));
    return Status::Ok();
  }).ok());
  fs::remove_all(out);
  return steps;
}

struct Db {
  explicit Db(const fs::path& file) { BOOST_REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK); }
  ~Db() { sqlite3_close(db); }
  void Exec(const std::string& sql) {
    char* m = nullptr;
    BOOST_REQUIRE_MESSAGE(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &m) == SQLITE_OK, (m ? m : "") << "\n" << sql);
  }
  std::string Text(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    BOOST_REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
    std::string out = sqlite3_step(st) == SQLITE_ROW ? reinterpret_cast<const char*>(sqlite3_column_text(st, 0)) : "";
    sqlite3_finalize(st);
    return out;
  }
  sqlite3* db = nullptr;
};

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}
std::string Hex(const Bytes& b) { return "x'" + ToHex(b) + "'"; }

// The tables schema 6 made (as harness/store/store.cc had them before 7).
constexpr const char* kSchema6 = R"sql(
CREATE TABLE runs (id INTEGER PRIMARY KEY, scenario TEXT NOT NULL, scenario_file TEXT, seed INTEGER NOT NULL,
  status TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT, tpmlab_version TEXT, host TEXT, dut TEXT,
  config_json TEXT);
CREATE TABLE steps (id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES runs(id), idx INTEGER NOT NULL,
  action TEXT NOT NULL, cycle INTEGER, kind TEXT, status TEXT NOT NULL, started_at TEXT NOT NULL,
  duration_ms REAL, error TEXT, checks_json TEXT, alarms_json TEXT, drift_json TEXT, detail_json TEXT,
  rc INTEGER, rc_name TEXT, UNIQUE (run_id, idx));
CREATE TABLE enrollments (id INTEGER PRIMARY KEY, run_id INTEGER REFERENCES runs(id), step_idx INTEGER,
  dut TEXT NOT NULL, enrolled_at TEXT NOT NULL, ek_name TEXT, ak_name TEXT, enrollment_json TEXT NOT NULL);
CREATE TABLE snapshots (id INTEGER PRIMARY KEY, step_id INTEGER NOT NULL REFERENCES steps(id),
  run_id INTEGER NOT NULL REFERENCES runs(id), taken_at TEXT NOT NULL, pcrs_json TEXT NOT NULL, clock_ms INTEGER,
  reset_count INTEGER, restart_count INTEGER, safe INTEGER, firmware_version INTEGER, manufacturer TEXT,
  quote_verified INTEGER, quote_failure TEXT, quote_bank TEXT, nonce BLOB, quote_attest BLOB,
  quote_signature BLOB, ek_name TEXT, srk_name TEXT, ak_name TEXT, ak_public_der BLOB, latency_json TEXT,
  eventlog BLOB, eventlog_json TEXT, snapshot_json TEXT);
CREATE TABLE commands (step_id INTEGER NOT NULL REFERENCES steps(id), seq INTEGER NOT NULL, code INTEGER NOT NULL,
  name TEXT NOT NULL, response_code INTEGER, failed INTEGER NOT NULL, duration_us REAL, command BLOB, response BLOB);
CREATE INDEX steps_by_run ON steps(run_id);
CREATE INDEX snapshots_by_run ON snapshots(run_id);
CREATE INDEX commands_by_step ON commands(step_id);
PRAGMA user_version = 6;
)sql";

// A step as schema 6 stored it.
void InsertV6Step(Db& db, int64_t step_id, const StepResult& s) {
  json alarms = json::array();
  for (const auto& a : s.alarms) alarms.push_back(AlarmToJson(a));
  db.Exec("INSERT INTO steps (id, run_id, idx, action, cycle, kind, status, started_at, duration_ms, error, "
          "checks_json, alarms_json, drift_json, detail_json, rc) VALUES (" +
          std::to_string(step_id) + ", 1, " + std::to_string(s.index) + ", " + Quote(s.action) + ", " +
          (s.cycle ? std::to_string(*s.cycle) : "NULL") + ", " + Quote(s.kind) + ", " + Quote(s.status) + ", " +
          Quote(s.started_at) + ", " + std::to_string(s.duration_ms) + ", " + Quote(s.error) + ", " +
          Quote(ChecksToJson(s.checks).dump()) + ", " +
          Quote(json{{"alarms", alarms}, {"not_run", s.not_run}}.dump()) + ", " +
          Quote(json{{"previous", s.drift}, {"golden", s.golden_drift}}.dump()) + ", " +
          (s.detail.is_null() ? "NULL" : Quote(s.detail.dump())) + ", " + (s.rc ? std::to_string(*s.rc) : "NULL") + ")");
  if (s.snapshot) {
    db.Exec("INSERT INTO snapshots (step_id, run_id, taken_at, pcrs_json, quote_verified, eventlog, snapshot_json) "
            "VALUES (" + std::to_string(step_id) + ", 1, " + Quote(s.snapshot->taken_at) + ", " +
            Quote(PcrsToJson(s.snapshot->pcrs).dump()) + ", 1, " +
            (s.snapshot->eventlog ? Hex(*s.snapshot->eventlog) : "NULL") + ", " +
            Quote(SnapshotToJson(*s.snapshot).dump()) + ")");
  }
  for (const auto& c : s.trace) {
    db.Exec("INSERT INTO commands VALUES (" + std::to_string(step_id) + ", " + std::to_string(c.sequence) + ", " +
            std::to_string(c.command_code) + ", " + Quote(TpmCommandName(c.command_code)) + ", " +
            std::to_string(c.response_code) + ", " + std::to_string(c.failed) + ", " +
            std::to_string(std::chrono::duration<double, std::micro>(c.duration).count()) + ", " + Hex(c.command) +
            ", " + Hex(c.response) + ")");
  }
}

// run.json's view of a step, without what schema 6 rounded (durations to
// the microsecond) or kept elsewhere (the log's file name).
json Comparable(const StepResult& s) {
  json j = StepToJson(s);
  if (j.contains("snapshot") && j["snapshot"].contains("eventlog") && j["snapshot"]["eventlog"].is_object()) {
    j["snapshot"]["eventlog"].erase("file");
  }
  json trace = json::array();
  for (const auto& c : s.trace) {
    trace.push_back({c.sequence, c.command_code, c.response_code, c.failed, ToHex(c.command), ToHex(c.response),
                     c.duration.count() / 1000});
  }
  j["trace"] = trace;
  return j;
}

BOOST_AUTO_TEST_CASE(a_schema_6_database_reads_back_whole_after_the_upgrade) {
  const std::vector<StepResult> steps = RecordedSteps();
  BOOST_REQUIRE(steps.size() >= 6u);
  const fs::path dir = MakeTempDir("v6");
  const fs::path file = dir / "old.db";
  {
    Db db(file);
    db.Exec(kSchema6);
    db.Exec("INSERT INTO runs (id, scenario, seed, status, started_at, dut) VALUES "
            "(1, 'recorded', 3, 'passed', '2026-11-30T10:00:00Z', 'dut0')");
    for (size_t i = 0; i < steps.size(); ++i) InsertV6Step(db, static_cast<int64_t>(100 + i), steps[i]);
  }
  auto store = Require(Store::Open(file));
  const StoredRun run = Require(store->LoadRun(1));
  BOOST_TEST(run.steps == static_cast<int>(steps.size()));
  std::map<std::string, int> alarms;
  for (const auto& s : steps) {
    std::set<std::string> codes;
    for (const auto& a : s.alarms) codes.insert(a.code);
    for (const auto& c : codes) alarms[c]++;
  }
  BOOST_TEST(!alarms.empty(), "the recorded run alarms");
  BOOST_TEST(json(run.alarms) == json(alarms), "alarm codes carried into the new table");
  BOOST_TEST(json(run.firmware) == json({"secure-boot-off"}), "the firmware a step moved to");
  size_t at = 0;
  Status walked = store->ForEachStep(1, [&](StepResult&& s) {
    BOOST_REQUIRE(at < steps.size());
    const json want = Comparable(steps[at++]);
    const json got = Comparable(s);
    BOOST_TEST(got == want, "step " << s.index << "\nstored: " << got.dump() << "\nbefore: " << want.dump());
    if (s.snapshot) BOOST_TEST(s.snapshot->quote_check.verified(), "quote verified again after the upgrade");
    return Status::Ok();
  });
  BOOST_TEST(walked.ok(), walked.message());
  BOOST_TEST(at == steps.size());
  store.reset();
  Db db(file);
  BOOST_TEST(db.Text("PRAGMA user_version") == std::to_string(kStoreSchemaVersion));
  BOOST_TEST(db.Text("SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'v6_%'") == "0", "the old tables are gone");
  BOOST_TEST(db.Text("PRAGMA integrity_check") == "ok");
  fs::remove_all(dir);
}

// A soft file-size limit is how a full disk looks to SQLite here: writes past
// it fail (EFBIG), as they do with ENOSPC, wherever the WAL or database grows.
struct FileSizeLimit {
  explicit FileSizeLimit(rlim_t bytes) {
    ::getrlimit(RLIMIT_FSIZE, &saved);
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit l = saved;
    l.rlim_cur = bytes;
    ::setrlimit(RLIMIT_FSIZE, &l);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &saved);
    ::signal(SIGXFSZ, SIG_DFL);
  }
  rlimit saved{};
};

BOOST_AUTO_TEST_CASE(a_full_disk_loses_only_the_step_in_flight) {
  const std::vector<StepResult> steps = RecordedSteps();
  const fs::path dir = MakeTempDir("full");
  const fs::path file = dir / "results.db";
  int64_t run_id = 0;
  int stored = 0;
  Status failed = Status::Ok();
  {
    auto store = Require(Store::Open(file));
    RunInfo info;
    info.scenario = "soak";
    info.started_at = "2026-12-06T10:00:00Z";
    run_id = Require(store->BeginRun(info));
    FileSizeLimit limit(512 * 1024);
    for (int i = 0; i < 20000 && failed.ok(); ++i) {
      StepResult s = steps[1 + static_cast<size_t>(i) % (steps.size() - 1)];
      s.index = i;
      failed = store->RecordStep(run_id, s);
      if (failed.ok()) ++stored;
    }
  }
  BOOST_REQUIRE_MESSAGE(!failed.ok(), "the limit was reached");
  BOOST_TEST((failed.layer() == Layer::kStore));
  BOOST_TEST(failed.message().find(file.string()) != std::string::npos, failed.message());
  BOOST_TEST(failed.message().find("the disk is full") != std::string::npos, failed.message());
  BOOST_TEST(stored > 0);

  auto store = Require(Store::Open(file));
  BOOST_TEST(Require(store->LoadRun(run_id)).steps == stored, "every committed step, and not the one that failed");
  int read = 0;
  Status walked = store->ForEachStep(run_id, [&](StepResult&& s) {
    BOOST_TEST(s.index == read);
    const StepResult& want = steps[1 + static_cast<size_t>(read) % (steps.size() - 1)];
    BOOST_TEST(s.trace.size() == want.trace.size());
    BOOST_TEST(s.snapshot.has_value() == want.snapshot.has_value());
    ++read;
    return Status::Ok();
  });
  BOOST_TEST(walked.ok(), walked.message());
  BOOST_TEST(read == stored);
  store.reset();
  Db db(file);
  BOOST_TEST(db.Text("PRAGMA integrity_check") == "ok");
  fs::remove_all(dir);
}

// When each command was sent (what `tpmlab trace` places packets by): the
// runner records it, the store keeps it; a step stored without it (as every
// step was before the store kept it) reads back without, not as zero.
BOOST_AUTO_TEST_CASE(command_send_times_read_back_and_steps_stored_without_them_have_none) {
  const std::vector<StepResult> steps = RecordedSteps();
  const StepResult& boot = steps.at(0);
  BOOST_REQUIRE(boot.trace.size() > 2);
  for (size_t i = 0; i < boot.trace.size(); ++i) {
    const auto& t = boot.trace[i];
    BOOST_REQUIRE_MESSAGE(t.since_step_start.has_value(), "command " << i << " has its send time");
    BOOST_TEST(t.since_step_start->count() >= 0);
    if (i > 0) {  // one command at a time: sent after the previous one was answered
      const auto& before = boot.trace[i - 1];
      BOOST_TEST((*t.since_step_start >= *before.since_step_start + before.duration), "command " << i);
    }
  }
  const fs::path dir = MakeTempDir("times");
  const fs::path file = dir / "results.db";
  auto store = Require(Store::Open(file));
  RunInfo info;
  info.scenario = "times";
  info.started_at = "2026-12-06T10:00:00Z";
  const int64_t run_id = Require(store->BeginRun(info));
  StepResult without = boot;
  without.index = 1;
  for (auto& t : without.trace) t.since_step_start.reset();
  BOOST_REQUIRE(store->RecordStep(run_id, boot).ok());
  BOOST_REQUIRE(store->RecordStep(run_id, without).ok());
  std::vector<StepResult> read;
  BOOST_REQUIRE(store->ForEachStep(run_id, [&](StepResult&& s) {
    read.push_back(std::move(s));
    return Status::Ok();
  }).ok());
  BOOST_REQUIRE(read.size() == 2u);
  BOOST_REQUIRE(read[0].trace.size() == boot.trace.size());
  for (size_t i = 0; i < boot.trace.size(); ++i) {
    BOOST_TEST((read[0].trace[i].since_step_start == boot.trace[i].since_step_start), "command " << i);
    BOOST_TEST(!read[1].trace[i].since_step_start.has_value(), "command " << i);
    BOOST_TEST(read[1].trace[i].command == boot.trace[i].command);
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tpmlab::testing
