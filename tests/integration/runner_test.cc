// The runner end to end on a real swtpm: a seeded mix of power cycles whose
// counters follow the TPM 2.0 table, run.json and the SQLite store agreeing,
// a swtpm that dies mid-run ending the run cleanly with its log tail, and an
// event log that cannot be kept failing the run.
#define BOOST_TEST_MODULE runner
#include <boost/test/unit_test.hpp>
#include <malloc.h>
#include <signal.h>
#include <sqlite3.h>

#include <fstream>
#include <set>
#include <nlohmann/json.hpp>

#include "emulated.h"
#include "harness/runner.h"
#include "harness/scenario_yaml.h"
#include "harness/store.h"
#include "harness/tpm_types.h"

namespace tpmlab::testing {
namespace {

using nlohmann::json;

Scenario Mix(int cycles, uint64_t seed = 7) {
  const std::string text = R"(
name: mix
seed: )" + std::to_string(seed) + R"(
platform:
  banks: [sha1, sha256]
  firmware: )" TPMLAB_SOURCE_DIR R"(/scenarios/firmware/baseline.yaml
steps:
  - boot
  - repeat:
      count: )" + std::to_string(cycles) + R"(
      steps:
        - power_cycle:
            mix: {reset: 1, restart: 1, resume: 1, power-loss: 1, hard-loss: 1}
)";
  return Require(LoadScenarioText(text, "mix.yaml"));
}

json ReadJson(const fs::path& file) {
  std::ifstream in(file);
  return json::parse(in);
}

int64_t Count(const fs::path& db, const std::string& sql) {
  sqlite3* handle = nullptr;
  BOOST_REQUIRE(sqlite3_open_v2(db.c_str(), &handle, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  BOOST_REQUIRE_MESSAGE(sqlite3_prepare_v2(handle, sql.c_str(), -1, &st, nullptr) == SQLITE_OK,
                        sqlite3_errmsg(handle));
  BOOST_REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  const int64_t n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(handle);
  return n;
}

BOOST_AUTO_TEST_CASE(seeded_mix_follows_the_counter_table) {
  const fs::path out = MakeTempDir("run");
  RunOptions o;
  o.out_dir = out;
  o.database = out / "results.db";
  RunResult r = Require(RunScenario(Mix(30), o));
  BOOST_TEST(RunStatusName(r.status) == "passed");
  BOOST_REQUIRE(r.steps.size() == 31u);

  // Re-derive the table from run.json alone, as a user would.
  json run = ReadJson(out / "run.json");
  BOOST_TEST(run["status"] == "passed");
  BOOST_TEST(run["seed"] == 7);
  std::set<std::string> kinds;
  json previous = run["steps"][0]["snapshot"];
  for (size_t i = 1; i < run["steps"].size(); ++i) {
    const json& step = run["steps"][i];
    BOOST_TEST(step["action"] == "power_cycle");
    BOOST_TEST(step["cycle"] == static_cast<int>(i));
    const std::string kind = step["kind"];
    kinds.insert(kind);
    const json& now = step["snapshot"];
    const json& a = previous["clock"];
    const json& b = now["clock"];
    if (kind == "restart" || kind == "resume") {
      BOOST_TEST(b["reset_count"] == a["reset_count"], "step " << i << " " << kind);
      BOOST_TEST(b["restart_count"].get<int>() == a["restart_count"].get<int>() + 1);
    } else {
      BOOST_TEST(b["reset_count"].get<int>() == a["reset_count"].get<int>() + 1, "step " << i);
      BOOST_TEST(b["restart_count"] == 0);
    }
    if (kind == "power-loss" || kind == "hard-loss") BOOST_TEST(b["safe"] == false);
    BOOST_TEST(now["quote"]["verified"] == true);
    BOOST_TEST(now["ek_name"] == previous["ek_name"]);
    BOOST_TEST(now["pcrs"]["sha256"].size() == 24u);
    BOOST_TEST(now["latency_us"].contains("TPM2_Quote"));
    // The firmware's log replays to the PCRs read, in every bank.
    BOOST_TEST(now["eventlog"]["events"].get<int>() > 30);
    BOOST_TEST(now["eventlog"]["replay_matches"]["sha1"] == true);
    BOOST_TEST(now["eventlog"]["replay_matches"]["sha256"] == true);
    BOOST_TEST(fs::exists(out / now["eventlog"]["file"].get<std::string>()));
    previous = now;
  }
  BOOST_TEST(kinds.size() == 5u, "every kind drawn in 30 cycles with seed 7");

  // The same run in the database: one row per step, one snapshot per boot.
  const fs::path db = out / "results.db";
  BOOST_TEST(Count(db, "SELECT COUNT(*) FROM steps WHERE run_id = " + std::to_string(r.run_id)) == 31);
  BOOST_TEST(Count(db, "SELECT COUNT(*) FROM snapshots WHERE quote_verified = 1") == 31);
  BOOST_TEST(Count(db, "SELECT COUNT(*) FROM runs WHERE status = 'passed'") == 1);
  // Commands are packed per step: read them back through the store.
  int quotes = 0;
  auto store = Store::Open(db);
  BOOST_REQUIRE(store.ok());
  Status walked = (*store)->ForEachStep(r.run_id, [&](StepResult&& step) {
    for (const auto& c : step.trace) quotes += TpmCommandName(c.command_code) == "TPM2_Quote";
    return Status::Ok();
  });
  BOOST_TEST(walked.ok(), walked.message());
  BOOST_TEST(quotes == 31);
  fs::remove_all(out);
}

BOOST_AUTO_TEST_CASE(same_seed_draws_the_same_kinds) {
  auto kinds = [](uint64_t seed) {
    const fs::path out = MakeTempDir("seed");
    RunOptions o;
    o.out_dir = out;
    o.database = out / "r.db";
    o.seed = seed;
    RunResult r = Require(RunScenario(Mix(12), o));
    std::vector<std::string> k;
    for (const auto& s : r.steps) k.push_back(s.kind);
    fs::remove_all(out);
    return k;
  };
  BOOST_TEST(kinds(99) == kinds(99), boost::test_tools::per_element());
  BOOST_TEST((kinds(99) != kinds(100)));
}

BOOST_AUTO_TEST_CASE(swtpm_dying_mid_run_ends_the_run_cleanly) {
  const fs::path out = MakeTempDir("die");
  Dut* dut = nullptr;
  RunOptions o;
  o.out_dir = out;
  o.database = out / "results.db";
  o.on_dut_ready = [&](Dut& d) { dut = &d; };
  o.on_step = [&](const StepResult& step, int) {
    // After the third step the emulator dies behind the harness's back.
    if (step.index == 2) ::kill(dut->emulator()->pid(), SIGKILL);
  };
  Scenario s = Mix(10);
  s.platform.max_consecutive_errors = 1;  // stop at the first failed step
  RunResult r = Require(RunScenario(s, o));
  BOOST_TEST(RunStatusName(r.status) == "error");
  BOOST_REQUIRE(r.steps.size() == 4u);  // three good steps, then the one that failed
  BOOST_TEST(r.steps[3].status == "error");
  BOOST_TEST(r.steps[3].error.find("killed by signal") != std::string::npos, r.steps[3].error);
  BOOST_TEST(r.steps[3].error.find("log tail") != std::string::npos);

  json run = ReadJson(out / "run.json");
  BOOST_TEST(run["status"] == "error");
  BOOST_TEST(run["steps"].size() == 4u);
  const fs::path db = out / "results.db";
  BOOST_TEST(Count(db, "SELECT COUNT(*) FROM steps WHERE status = 'passed'") == 3);
  BOOST_TEST(Count(db, "SELECT COUNT(*) FROM steps WHERE status = 'error'") == 1);
  BOOST_TEST(Count(db, "SELECT COUNT(*) FROM runs WHERE status = 'error'") == 1);
  fs::remove_all(out);
}

BOOST_AUTO_TEST_CASE(a_hung_tpm_costs_one_timeout) {
  const fs::path out = MakeTempDir("hang");
  Scenario s = Mix(5);
  // Long enough that a healthy swtpm on a loaded 2-core host never misses it
  // (300 ms did, before the freeze); a frozen one still costs only this.
  s.platform.command_timeout_ms = 2000;
  s.platform.max_consecutive_errors = 1;
  Dut* dut = nullptr;
  RunOptions o;
  o.out_dir = out;
  o.database = out / "results.db";
  o.on_dut_ready = [&](Dut& d) { dut = &d; };
  o.on_step = [&](const StepResult& step, int) {
    if (step.index == 1) dut->emulator()->Freeze(true);  // SIGSTOP: "TPM not responding"
  };
  const auto start = std::chrono::steady_clock::now();
  RunResult r = Require(RunScenario(s, o));
  const auto took = std::chrono::steady_clock::now() - start;
  BOOST_TEST(RunStatusName(r.status) == "error");
  BOOST_REQUIRE(r.steps.size() == 3u);
  BOOST_TEST(r.steps[2].error.find("timed out") != std::string::npos, r.steps[2].error);
  BOOST_TEST(took < std::chrono::seconds(30));
  fs::remove_all(out);
}

// By default the harness goes on after a failed step, each costing at most
// one command timeout, and stops once a TPM stays gone.
BOOST_AUTO_TEST_CASE(a_tpm_that_stays_hung_ends_the_run_after_three_steps) {
  const fs::path out = MakeTempDir("hang3");
  Scenario s = Mix(10);
  s.platform.command_timeout_ms = 2000;  // see a_hung_tpm_costs_one_timeout
  Dut* dut = nullptr;
  RunOptions o;
  o.out_dir = out;
  o.database = out / "results.db";
  o.on_dut_ready = [&](Dut& d) { dut = &d; };
  o.on_step = [&](const StepResult& step, int) {
    if (step.index == 1) dut->emulator()->Freeze(true);
  };
  const auto start = std::chrono::steady_clock::now();
  RunResult r = Require(RunScenario(s, o));
  const auto took = std::chrono::steady_clock::now() - start;
  BOOST_TEST(RunStatusName(r.status) == "error");
  BOOST_REQUIRE(r.steps.size() == 5u);  // two good, three that timed out
  for (size_t i = 2; i < 5; ++i) {
    BOOST_TEST(r.steps[i].status == "error");
    BOOST_REQUIRE(!r.steps[i].alarms.empty());
    BOOST_TEST(r.steps[i].alarms[0].code == "TPM_UNREACHABLE");
  }
  BOOST_TEST(r.error.find("3 steps failed in a row") != std::string::npos, r.error);
  BOOST_TEST(took < std::chrono::seconds(30));
  fs::remove_all(out);
}

// A run's memory does not grow with its length: each step goes to the store
// and is let go (before, every step was kept until the end, ~130 KB a
// cycle). The heap in use late in a run is what it was early on; what the
// run counted (alarms, with their first steps) stays bounded; its steps and
// run.json come back whole from the store.
BOOST_AUTO_TEST_CASE(a_long_run_keeps_no_steps_in_memory) {
  const fs::path out = MakeTempDir("flat");
  RunOptions o;
  o.out_dir = out;
  o.database = out / "results.db";
  constexpr int kCycles = 400;
  size_t heap_early = 0, heap_late = 0;
  o.on_step = [&](const StepResult& step, int) {
    if (step.index == 100) heap_early = mallinfo2().uordblks;
    if (step.index == kCycles) heap_late = mallinfo2().uordblks;
  };
  RunResult r = Require(RunScenario(Mix(kCycles), o));
  BOOST_TEST(RunStatusName(r.status) == "passed");
  BOOST_REQUIRE(heap_early > 0 && heap_late > 0);
  // 300 steps kept would be ~40 MB; SQLite's page cache and the allocator's
  // slack are a few MB at most.
  const double grew_mb = (static_cast<double>(heap_late) - static_cast<double>(heap_early)) / 1e6;
  BOOST_TEST_MESSAGE("heap grew " << grew_mb << " MB from step 100 to step " << kCycles);
  BOOST_TEST(grew_mb < 8.0, "the heap grew " << grew_mb << " MB over 300 power cycles");

  BOOST_TEST(r.power_cycles == kCycles);
  json run = ReadJson(out / "run.json");
  BOOST_TEST(run["summary"]["steps"] == kCycles + 1);
  BOOST_TEST(run["step_snapshots"].is_null(), "up to 1000 steps run.json holds every snapshot whole");
  for (const auto& tally : r.alarms) {
    BOOST_TEST(tally.first_steps.size() <= AlarmTally::kStepsKept);
    BOOST_TEST(run["summary"]["alarms"][tally.code] == tally.steps, tally.code);
  }
  // The steps, read back from the store when asked for.
  BOOST_REQUIRE(r.steps.size() == static_cast<size_t>(kCycles + 1));
  BOOST_TEST(r.steps[kCycles].cycle.value_or(0) == kCycles);
  BOOST_TEST(r.steps[kCycles].snapshot.has_value());
  BOOST_TEST(r.steps.load_error().ok(), r.steps.load_error().ToString());
  fs::remove_all(out);
}

// The event logs run.json names are kept beside it. One that cannot be
// written fails the run and says which file, instead of a run that passed
// with run.json naming a file that is not there.
BOOST_AUTO_TEST_CASE(an_event_log_that_cannot_be_kept_fails_the_run) {
  auto run_in = [](const fs::path& out) {
    RunOptions o;
    o.out_dir = out;
    o.database = out / "results.db";
    return Require(RunScenario(Mix(1), o));
  };
  // Kept: the boot's log, named by its SHA-256 (the same bytes every run).
  const fs::path kept = MakeTempDir("eventlogs-kept");
  RunResult ok = run_in(kept);
  BOOST_TEST(RunStatusName(ok.status) == "passed");
  const std::string name = ReadJson(kept / "run.json")["steps"][0]["snapshot"]["eventlog"]["file"];
  BOOST_TEST(fs::is_regular_file(kept / name));

  // A file where the eventlogs folder goes.
  const fs::path no_folder = MakeTempDir("eventlogs-file");
  std::ofstream(no_folder / "eventlogs") << "not a folder\n";
  RunResult r = run_in(no_folder);
  BOOST_TEST(RunStatusName(r.status) == "error");
  BOOST_TEST(r.error.find((no_folder / name).string()) != std::string::npos, r.error);
  for (const auto& step : r.steps) BOOST_TEST(step.status == "passed");
  json run = ReadJson(no_folder / "run.json");
  BOOST_TEST(run["status"] == "error");
  BOOST_TEST(run["error"].get<std::string>().find(name) != std::string::npos, run["error"]);
  BOOST_TEST(Count(no_folder / "results.db", "SELECT COUNT(*) FROM runs WHERE status = 'error'") == 1);

  // A folder where the log's file goes.
  const fs::path folder = MakeTempDir("eventlogs-folder");
  fs::create_directories(folder / name);
  r = run_in(folder);
  BOOST_TEST(RunStatusName(r.status) == "error");
  BOOST_TEST(r.error.find((folder / name).string()) != std::string::npos, r.error);
  for (const fs::path& out : {kept, no_folder, folder}) fs::remove_all(out);
}

}  // namespace
}  // namespace tpmlab::testing
