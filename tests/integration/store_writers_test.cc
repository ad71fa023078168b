// Many writers, one database: lab hosts and the DUTs of a fleet each record
// their runs into the same results at once. Threads (a fleet in one
// process) and processes (runs started side by side) write steps with their
// command traces concurrently; every step of every run must read back, in
// order, with nothing lost to a busy database.
#define BOOST_TEST_MODULE store_writers
#include <boost/test/unit_test.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "emulated.h"
#include "postgres_cluster.h"
#include "harness/store.h"

namespace tpmlab::testing {
namespace {

constexpr int kSteps = 150;

StepResult Step(int index, int writer) {
  StepResult s;
  s.index = index;
  s.action = index == 0 ? "boot" : "power_cycle";
  if (index > 0) {
    s.cycle = index;
    s.kind = index % 2 ? "reset" : "power-loss";
  }
  s.status = "passed";
  s.started_at = "2026-12-06T20:00:00.000Z";
  s.duration_ms = 1.5;
  s.checks = {{"reset_count", true, "expected " + std::to_string(index) + ", saw " + std::to_string(index)}};
  for (uint64_t seq = 0; seq < 6; ++seq) {
    TraceRecord t;
    t.sequence = seq;
    t.command_code = 0x17E;  // TPM2_PCR_Read
    t.duration = std::chrono::microseconds(30 + seq);
    t.command = {0x80, 0x01, 0, 0, 0, 0x14, 0, 0, 0x01, 0x7E, static_cast<uint8_t>(writer), static_cast<uint8_t>(seq)};
    t.response = {0x80, 0x01, 0, 0, 0, 0x0A, 0, 0, 0, 0};
    s.trace.push_back(std::move(t));
  }
  return s;
}

// One writer: a run of kSteps steps, each committed on its own.
Status WriteRun(const std::string& db, int writer) {
  TRY_ASSIGN(auto store, Store::Open(db));
  RunInfo info;
  info.scenario = "writers";
  info.started_at = "2026-12-06T20:00:00.000Z";
  info.dut = "dut" + std::to_string(writer);
  info.pid = ::getpid();
  TRY_ASSIGN(const int64_t run, store->BeginRun(info));
  for (int i = 0; i < kSteps; ++i) TRY(store->RecordStep(run, Step(i, writer)));
  return store->FinishRun(run, "passed", "2026-12-06T20:01:00.000Z");
}

// Every writer starts at once; on PostgreSQL they also race to make the
// schema (lab hosts starting together on a new database).
void ManyWritersAtOnce(const std::string& db) {
  constexpr int kProcesses = 2, kThreads = 4;
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    const pid_t child = ::fork();
    if (child == 0) ::_exit(WriteRun(db, 100 + p).ok() ? 0 : 1);
    children.push_back(child);
  }
  std::vector<Status> results(kThreads, Status::Ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back([&, t] { results[t] = WriteRun(db, t); });
  for (auto& t : threads) t.join();
  for (const Status& s : results) BOOST_TEST(s.ok(), s.message());
  for (pid_t child : children) {
    int status = 0;
    ::waitpid(child, &status, 0);
    BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0), "a writer process failed");
  }

  auto store = Require(Store::Open(db));
  const auto runs = Require(store->ListRuns());
  BOOST_REQUIRE(runs.size() == static_cast<size_t>(kProcesses + kThreads));
  for (const StoredRun& r : runs) {
    BOOST_TEST(r.status == "passed");
    BOOST_TEST(r.steps == kSteps, r.info.dut);
    const int writer = std::stoi(r.info.dut.substr(3));
    int next = 0;
    Status walked = store->ForEachStep(r.id, [&](StepResult&& s) {
      BOOST_TEST(s.index == next++);
      const StepResult want = Step(s.index, writer);
      BOOST_TEST(s.kind == want.kind);
      BOOST_REQUIRE(s.trace.size() == want.trace.size());
      for (size_t i = 0; i < s.trace.size(); ++i) {
        BOOST_TEST(s.trace[i].command == want.trace[i].command, r.info.dut << " step " << s.index);
        BOOST_TEST(s.trace[i].response == want.trace[i].response);
        BOOST_TEST(s.trace[i].duration.count() == want.trace[i].duration.count());
      }
      return Status::Ok();
    });
    BOOST_TEST(walked.ok(), walked.message());
    BOOST_TEST(next == kSteps);
  }
}

BOOST_AUTO_TEST_CASE(threads_and_processes_write_one_database_at_once) {
  const fs::path dir = MakeTempDir("writers");
  const fs::path db = dir / "lab.db";
  Require(Store::Open(db));  // the schema, before anyone races to make it
  ManyWritersAtOnce(db);
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(threads_and_processes_write_one_postgresql_database_at_once, TPMLAB_NEEDS_POSTGRES) {
  auto cluster = test::StartPostgresForTest();
  if (!cluster) return;
  ManyWritersAtOnce(Require(cluster->CreateDatabase("lab")));
}

}  // namespace
}  // namespace tpmlab::testing
