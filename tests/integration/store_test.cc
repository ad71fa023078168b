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

BOOST_AUTO_TEST_CASE(a_run_reads_back_as_run_json_said) {
  const fs::path out = MakeTempDir("store");
  RunOptions o;
  o.out_dir = out;
  o.database = out / "results.db";
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
  fs::remove_all(out);
}

BOOST_AUTO_TEST_CASE(a_run_whose_process_is_gone_reads_as_interrupted) {
  const fs::path out = MakeTempDir("killed");
  auto store = Require(Store::Open(out / "results.db"));
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
  fs::remove_all(out);
}

}  // namespace
}  // namespace tpmlab::testing
