// The store read back: a run on a real swtpm, then its row and every step
// rebuilt from the database, as `tpmlab runs` and `tpmlab export` read them.
// What the store gives back must be what run.json said when the run ended.
#define BOOST_TEST_MODULE store
#include <boost/test/unit_test.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "emulated.h"
#include "postgres_cluster.h"
#include "harness/runner.h"
#include "harness/scenario_yaml.h"
#include "harness/store.h"

namespace tpmlab::testing {
namespace {

using nlohmann::json;

// Power cycles of every kind, then a Secure Boot change the verifier alarms on.
Scenario Drifting() {
  const std::string text = R"(
name: drifting
seed: 11
platform:
  banks: [sha1, sha256]
  firmware: )" TPMLAB_SOURCE_DIR R"(/scenarios/firmware/baseline.yaml
steps:
  - boot
  - enroll
  - repeat:
      count: 6
      steps:
        - power_cycle:
            mix: {reset: 1, restart: 1, resume: 1, power-loss: 1}
  - firmware_update: {platform: secure-boot-off}
  - power_cycle: reset
)";
  return Require(LoadScenarioText(text, "drifting.yaml"));
}

json ReadJson(const fs::path& file) {
  std::ifstream in(file);
  return json::parse(in);
}

RunFilter Since(const std::string& t) {
  RunFilter f;
  f.since = t;
  return f;
}

RunFilter OfDut(const std::string& d) {
  RunFilter f;
  f.dut = d;
  return f;
}

// A pid no process has: a child that has exited and been reaped.
int64_t DeadPid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  return child;
}

// The runner writes to `database` (a file in `out` or a URL); every stored
// step must read back as run.json has it.
void ReadsBackAsRunJsonSaid(const fs::path& out, const std::string& database) {
  RunOptions o;
  o.out_dir = out;
  o.database = database;
  RunResult r = Require(RunScenario(Drifting(), o));
  const json run = ReadJson(out / "run.json");

  auto store = Require(Store::Open(o.database));
  StoredRun stored = Require(store->LoadRun(r.run_id));
  BOOST_TEST(stored.status == run["status"].get<std::string>());
  BOOST_TEST(stored.info.scenario == "drifting");
  BOOST_TEST(stored.info.seed == 11u);
  BOOST_TEST(!stored.finished_at.empty());
  BOOST_TEST(stored.steps == run["summary"]["steps"].get<int>());
  BOOST_TEST(stored.power_cycles == run["summary"]["power_cycles"].get<int>());
  BOOST_TEST(json(stored.alarms) == run["summary"]["alarms"]);
  BOOST_TEST(stored.alarms.count("PCR_POLICY_MISMATCH") == 1u, "the Secure Boot change alarms");
  BOOST_TEST(json(stored.firmware) == json({"baseline", "secure-boot-off"}));

  size_t at = 0;
  Status walked = store->ForEachStep(r.run_id, [&](StepResult&& step) {
    BOOST_REQUIRE(at < run["steps"].size());
    json want = run["steps"][at++];
    json got = StepToJson(step);
    // run.json names the log's file beside it; the store holds the bytes.
    if (want.contains("snapshot")) {
      BOOST_REQUIRE(step.snapshot && step.snapshot->eventlog);
      want["snapshot"]["eventlog"].erase("file");
      got["snapshot"]["eventlog"].erase("file");
      BOOST_TEST(step.snapshot->quote_check.verified(), "step " << step.index << " quote verified again");
    }
    want.erase("expected_failure");
    BOOST_TEST(got == want, "step " << step.index << "\nstored:  " << got.dump() << "\nrun.json: " << want.dump());
    return Status::Ok();
  });
  BOOST_TEST(walked.ok(), walked.message());
  BOOST_TEST(at == run["steps"].size());
}

BOOST_AUTO_TEST_CASE(a_run_reads_back_as_run_json_said) {
  const fs::path out = MakeTempDir("store");
  ReadsBackAsRunJsonSaid(out, out / "results.db");
  fs::remove_all(out);
}

BOOST_AUTO_TEST_CASE(a_run_in_postgresql_reads_back_as_run_json_said, TPMLAB_NEEDS_POSTGRES) {
  auto cluster = test::StartPostgresForTest();
  if (!cluster) return;  // the case has failed, saying why
  const fs::path out = MakeTempDir("store-pg");
  ReadsBackAsRunJsonSaid(out, Require(cluster->CreateDatabase("results")));
  fs::remove_all(out);
}

void RunsOfGoneProcessesReadAsInterrupted(const std::string& database) {
  auto store = Require(Store::Open(database));
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  auto info = [&](const std::string& started_at, const std::string& on, const std::string& dut, int64_t pid) {
    RunInfo i;
    i.scenario = "soak";
    i.started_at = started_at;
    i.host = on;
    i.dut = dut;
    i.pid = pid;
    return i;
  };
  const int64_t dead = DeadPid();
  const RunInfo killed = info("2026-12-01T10:00:00Z", host, "dut0 (swtpm)", dead);
  const RunInfo alive = info("2026-12-02T10:00:00Z", host, "dut1 (swtpm)", ::getpid());
  const RunInfo elsewhere = info("2026-12-03T10:00:00Z", "another-host", "dut2", dead);
  const int64_t a = Require(store->BeginRun(killed));
  const int64_t b = Require(store->BeginRun(alive));
  const int64_t c = Require(store->BeginRun(elsewhere));
  BOOST_TEST(Require(store->LoadRun(a)).status == "interrupted");
  BOOST_TEST(Require(store->LoadRun(b)).status == "running");
  BOOST_TEST(Require(store->LoadRun(c)).status == "running", "another host's process cannot be checked");
  BOOST_TEST(Require(store->LoadRun(a)).outcome.is_null());

  BOOST_TEST(Require(store->ListRuns()).size() == 3u);
  BOOST_TEST(Require(store->ListRuns(Since("2026-12-02"))).size() == 2u);
  const auto dut1 = Require(store->ListRuns(OfDut("dut1")));
  BOOST_REQUIRE(dut1.size() == 1u);
  BOOST_TEST(dut1[0].id == b);

  Result<StoredRun> missing = store->LoadRun(99);
  BOOST_TEST(!missing.ok());
  BOOST_TEST(missing.status().message().find("no run 99") != std::string::npos, missing.status().message());
}

BOOST_AUTO_TEST_CASE(a_run_whose_process_is_gone_reads_as_interrupted) {
  const fs::path out = MakeTempDir("killed");
  RunsOfGoneProcessesReadAsInterrupted(out / "results.db");
  fs::remove_all(out);
}

BOOST_AUTO_TEST_CASE(a_run_in_postgresql_whose_process_is_gone_reads_as_interrupted, TPMLAB_NEEDS_POSTGRES) {
  auto cluster = test::StartPostgresForTest();
  if (!cluster) return;
  RunsOfGoneProcessesReadAsInterrupted(Require(cluster->CreateDatabase("killed")));
}

// PostgreSQL keeps the schema's version in a table: a database a newer
// tpmlab wrote is refused, not misread; opening it again changes nothing.
BOOST_AUTO_TEST_CASE(a_postgresql_schema_newer_than_this_tpmlab_is_refused, TPMLAB_NEEDS_POSTGRES) {
  auto cluster = test::StartPostgresForTest();
  if (!cluster) return;
  const std::string url = Require(cluster->CreateDatabase("newer"));
  Require(Store::Open(url));
  Require(Store::Open(url));  // a second host opening it finds the schema made
  const fs::path log = MakeTempDir("psql") / "psql.log";
  const int psql = Require(RunProgram({(test::DefaultPostgresBinDir() / "psql").string(), url, "-c",
                                       "UPDATE tpmlab_schema SET version = 99"},
                                      log, std::chrono::seconds(60)));
  BOOST_REQUIRE_MESSAGE(psql == 0, FileTail(log, 5));
  fs::remove_all(log.parent_path());
  Result<std::unique_ptr<Store>> newer = Store::Open(url);
  BOOST_REQUIRE(!newer.ok());
  BOOST_TEST(newer.status().message().find("schema version 99 is newer than this tpmlab knows (7)") !=
                 std::string::npos,
             newer.status().message());
}

// Everything a reader gets of a run: its row and each step whole, with the
// command trace's bytes and nanosecond timings.
json Everything(Store& store, int64_t run_id) {
  const StoredRun r = Require(store.LoadRun(run_id));
  json out = {{"scenario", r.info.scenario}, {"scenario_file", r.info.scenario_file}, {"seed", r.info.seed},
              {"started_at", r.info.started_at}, {"version", r.info.tpmlab_version}, {"host", r.info.host},
              {"dut", r.info.dut}, {"config", r.info.config_json}, {"pid", r.info.pid},
              {"pid_started", r.info.pid_started}, {"status", r.status}, {"finished_at", r.finished_at},
              {"steps", r.steps}, {"power_cycles", r.power_cycles}, {"alarms", r.alarms},
              {"firmware", r.firmware}, {"outcome", r.outcome}};
  json steps = json::array();
  BOOST_REQUIRE(store.ForEachStep(run_id, [&](StepResult&& s) {
    json j = StepToJson(s);
    if (s.snapshot && s.snapshot->eventlog) j["eventlog_bytes"] = ToHex(*s.snapshot->eventlog);
    for (const auto& c : s.trace) {
      j["trace"].push_back({c.sequence, c.command_code, c.response_code, c.failed, c.duration.count(),
                            ToHex(c.command), ToHex(c.response)});
    }
    steps.push_back(std::move(j));
    return Status::Ok();
  }).ok());
  out["step_list"] = std::move(steps);
  const auto enrollment = Require(store.LoadEnrollment(run_id));
  out["enrollment"] = enrollment ? EnrollmentToJson(*enrollment) : json(nullptr);
  return out;
}

// One scenario's results, written through the store into SQLite and into
// PostgreSQL, read back the same from both: every column, record, log and
// command, to the nanosecond.
BOOST_AUTO_TEST_CASE(the_same_run_reads_back_identically_from_sqlite_and_postgresql, TPMLAB_NEEDS_POSTGRES) {
  auto cluster = test::StartPostgresForTest();
  if (!cluster) return;
  const fs::path out = MakeTempDir("same");
  RunOptions o;
  o.out_dir = out;
  o.database = out / "results.db";
  const RunResult r = Require(RunScenario(Drifting(), o));
  auto sqlite = Require(Store::Open(o.database));
  auto postgres = Require(Store::Open(Require(cluster->CreateDatabase("same"))));
  BOOST_TEST(postgres->postgres());

  const StoredRun run = Require(sqlite->LoadRun(r.run_id));
  RunInfo info = run.info;
  const int64_t copy = Require(postgres->BeginRun(info));
  const auto enrollment = Require(sqlite->LoadEnrollment(r.run_id));
  BOOST_REQUIRE(sqlite->ForEachStep(r.run_id, [&](StepResult&& s) { return postgres->RecordStep(copy, s); }).ok());
  if (enrollment) BOOST_REQUIRE(postgres->RecordEnrollment(copy, 1, *enrollment).ok());
  BOOST_REQUIRE(postgres->FinishRun(copy, run.status, run.finished_at, run.outcome).ok());

  const json want = Everything(*sqlite, r.run_id);
  const json got = Everything(*postgres, copy);
  BOOST_TEST(want["step_list"].size() >= 10u);
  BOOST_TEST(!want["enrollment"].is_null());
  BOOST_TEST(got == want, json::diff(want, got).dump(1));
  fs::remove_all(out);
}

}  // namespace
}  // namespace tpmlab::testing
