// The scenario steps that reproduce alarms, run on real swtpm processes:
// DUT-level faults (a kill mid-command, a power cut at a seeded point),
// per-command timeouts, TPM refusals, TPM firmware images and their record,
// and seeded choices.
#define BOOST_TEST_MODULE alarm_steps
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <nlohmann/json.hpp>

#include "emulated.h"
#include "harness/runner.h"
#include "harness/scenario_yaml.h"

namespace tpmlab::testing {
namespace {

using nlohmann::json;

struct Ran {
  RunResult result;
  json run;
  fs::path out;
};

// Loads `yaml` as if it sat in scenarios/ (so firmware models resolve) and runs it.
Ran RunText(const std::string& tag, const std::string& yaml, std::optional<uint64_t> seed = std::nullopt,
            bool fail_on_alarm = false) {
  const fs::path file = fs::path(TPMLAB_SOURCE_DIR) / "scenarios" / (tag + ".yaml");
  Scenario s = Require(LoadScenarioText(yaml, file.string()));
  Ran r;
  r.out = MakeTempDir(tag);
  RunOptions o;
  o.out_dir = r.out;
  o.database = r.out / "results.db";
  o.seed = seed;
  o.fail_on_alarm = fail_on_alarm;
  r.result = Require(RunScenario(s, o));
  std::ifstream in(r.out / "run.json");
  r.run = json::parse(in);
  return r;
}

const StepResult& StepAt(const Ran& r, size_t i) {
  BOOST_REQUIRE_MESSAGE(i < r.result.steps.size(), "only " << r.result.steps.size() << " steps");
  return r.result.steps[i];
}

BOOST_AUTO_TEST_CASE(a_kill_mid_command_is_a_power_loss_the_next_boot_recovers_from) {
  Ran r = RunText("kill", R"(name: kill
firmware: baseline
platform: {command_timeout_ms: 3000}
steps:
  - boot
  - fault: {kind: kill, command: TPM2_Quote}
  - verify
  - expect: {alarms: [TPM_UNREACHABLE], error: true}
  - boot
  - expect: {allow_after_power_loss: [CLOCK_NOT_SAFE]}
)");
  BOOST_TEST(RunStatusName(r.result.status) == "passed", r.result.error);
  const StepResult& hit = StepAt(r, 2);
  BOOST_TEST(hit.status == "error");
  BOOST_TEST(hit.error.find("TPM2_Quote") != std::string::npos, hit.error);
  BOOST_TEST(hit.error.find("killed by signal") != std::string::npos, hit.error);
  BOOST_TEST(hit.detail["faults_injected"][0]["fault"] == "power_cut");
  BOOST_TEST(hit.detail["faults_injected"][0]["command"] == "TPM2_Quote");
  // The killed TPM lost power without Shutdown: the next boot says so.
  const StepResult& boot = StepAt(r, 4);
  BOOST_TEST(boot.status == "passed");
  BOOST_REQUIRE(boot.snapshot.has_value());
  BOOST_TEST(!boot.snapshot->clock().safe);
  BOOST_TEST(r.result.expected_failures.count(2) == 1u);
  fs::remove_all(r.out);
}

BOOST_AUTO_TEST_CASE(a_power_cut_lands_at_the_same_seeded_command_every_time) {
  const std::string yaml = R"(name: cut
firmware: baseline
steps:
  - boot
  - fault: {kind: cut_power, within: 12}
  - verify
  - expect: {alarms: [TPM_UNREACHABLE], error: true}
  - boot
  - expect: {allow_after_power_loss: [CLOCK_NOT_SAFE]}
)";
  Ran a = RunText("cut-a", yaml, 42);
  Ran b = RunText("cut-b", yaml, 42);
  for (const Ran* r : {&a, &b}) {
    BOOST_TEST(RunStatusName(r->result.status) == "passed", r->result.error);
    BOOST_TEST(StepAt(*r, 2).status == "error");
  }
  const json point_a = StepAt(a, 1).detail["cut_at_command"];
  BOOST_TEST(point_a.get<int>() >= 1);
  BOOST_TEST(point_a.get<int>() <= 12);
  BOOST_TEST(point_a == StepAt(b, 1).detail["cut_at_command"]);
  BOOST_TEST(StepAt(a, 2).detail["faults_injected"] == StepAt(b, 2).detail["faults_injected"]);
  // The snapshot sent exactly the commands before the cut, and the cut one.
  BOOST_TEST(StepAt(a, 2).trace.size() == point_a.get<size_t>());
  fs::remove_all(a.out);
  fs::remove_all(b.out);
}

BOOST_AUTO_TEST_CASE(a_command_times_out_on_its_own_timeout) {
  Ran r = RunText("timeouts", R"(name: timeouts
platform:
  command_timeout_ms: 60000
  command_timeouts: {TPM2_Quote: 300}
steps:
  - boot
  - fault: {kind: drop, command: TPM2_Quote, count: 1}
  - verify
  - expect: {alarms: [TPM_UNREACHABLE], error: true}
  - verify
)");
  BOOST_TEST(RunStatusName(r.result.status) == "passed", r.result.error);
  const StepResult& dropped = StepAt(r, 2);
  BOOST_TEST(dropped.error.find("never arrived") != std::string::npos, dropped.error);
  // One lost Quote cost its own 300 ms, not the minute the others get.
  BOOST_TEST(dropped.duration_ms < 10000);
  BOOST_TEST(StepAt(r, 4).status == "passed");
  fs::remove_all(r.out);
}

BOOST_AUTO_TEST_CASE(a_refused_clear_is_recorded_and_fails_only_when_not_expected) {
  const std::string body = R"(
steps:
  - boot
  - clear_control: disable
  - clear
)";
  Ran expected = RunText("refused", "name: refused" + body + "  - expect: {rc: TPM_RC_DISABLED}\n  - verify\n");
  BOOST_TEST(RunStatusName(expected.result.status) == "passed", expected.result.error);
  const StepResult& clear = StepAt(expected, 2);
  BOOST_TEST(clear.status == "refused");
  BOOST_REQUIRE(clear.rc.has_value());
  BOOST_TEST((*clear.rc & 0xFFF) == 0x120u);
  BOOST_TEST(expected.run["steps"][2]["rc_hex"] == "0x120");
  // Named for people, a number for machines.
  BOOST_TEST(expected.run["steps"][2]["rc"] == 0x120);
  BOOST_TEST(expected.run["steps"][2]["rc_name"] == "TPM_RC_DISABLED");
  BOOST_TEST(expected.run["steps"][2]["rc_text"].get<std::string>().rfind("TPM_RC_DISABLED (0x120): ", 0) == 0u,
             expected.run["steps"][2]["rc_text"]);
  BOOST_TEST(clear.error.find("TPM_RC_DISABLED (0x120)") != std::string::npos, clear.error);
  BOOST_TEST(StepAt(expected, 4).status == "passed");  // the run went on

  Ran unexpected = RunText("refused-bare", "name: refused-bare" + body + "  - verify\n");
  BOOST_TEST(RunStatusName(unexpected.result.status) == "failed");
  bool named = false;
  for (const auto& e : unexpected.result.expectations) named = named || (!e.passed && e.step == 2);
  BOOST_TEST(named);
  fs::remove_all(expected.out);
  fs::remove_all(unexpected.out);
}

BOOST_AUTO_TEST_CASE(a_tpm_image_swap_keeps_keys_and_nv_and_records_them) {
  Ran r = RunText("image", R"(name: image
platform:
  images:
    same: {swtpm: swtpm}
    next: {swtpm: swtpm, firmware_version: 0x2019102300170000}
steps:
  - boot
  - enroll
  - firmware_update: {tpm: same}
  - verify
  - expect: {}
  - firmware_update: {tpm: next}
  - verify
  - expect: {alarms: [TPM_FIRMWARE_CHANGED]}
)");
  BOOST_TEST(RunStatusName(r.result.status) == "passed", r.result.error);
  const json same = r.run["steps"][2]["detail"]["tpm"];
  for (const char* key : {"firmware_version", "ek", "srk", "persistent_handles", "nv_indices"}) {
    BOOST_TEST(same["unchanged"][key] == true, key);
  }
  BOOST_TEST(same["before"]["persistent_handles"].size() >= 3u);  // EK, SRK, AK
  BOOST_TEST(same["before"]["nv_indices"].size() >= 1u);          // the EK certificate
  const json next = r.run["steps"][5]["detail"]["tpm"];
  BOOST_TEST(next["unchanged"]["firmware_version"] == false);
  BOOST_TEST(next["after"]["firmware_version"] == "0x2019102300170000");
  for (const char* key : {"ek", "srk", "persistent_handles", "nv_indices"}) {
    BOOST_TEST(next["unchanged"][key] == true, key);
  }
  BOOST_TEST(!next["library_dir"].get<std::string>().empty());
  fs::remove_all(r.out);
}

// Expect steps between failures do not hide that the TPM stays gone.
BOOST_AUTO_TEST_CASE(a_dead_tpm_ends_the_run_even_with_expect_steps_between) {
  Ran r = RunText("dead", R"(name: dead
platform: {command_timeout_ms: 300}
steps:
  - boot
  - fault: hang
  - repeat:
      count: 6
      steps:
        - verify
        - expect: {error: true}
)");
  BOOST_TEST(RunStatusName(r.result.status) == "error");
  int verifies = 0;
  for (const auto& s : r.result.steps) verifies += s.action == "verify" ? 1 : 0;
  BOOST_TEST(verifies == 3);
  BOOST_TEST(r.result.error.find("3 steps failed in a row") != std::string::npos, r.result.error);
  fs::remove_all(r.out);
}

BOOST_AUTO_TEST_CASE(choices_follow_the_seed) {
  const std::string yaml = R"(name: choose
steps:
  - boot
  - repeat:
      count: 12
      steps:
        - choose: {steps: [{power_cycle: reset}, {power_cycle: restart}, snapshot], weights: [1, 1, 2]}
)";
  auto actions = [](const Ran& r) {
    std::string out;
    for (const auto& s : r.result.steps) out += s.action + (s.kind.empty() ? "" : ":" + s.kind) + " ";
    return out;
  };
  Ran a = RunText("choose-a", yaml, 9);
  Ran b = RunText("choose-b", yaml, 9);
  Ran c = RunText("choose-c", yaml, 10);
  BOOST_TEST(actions(a) == actions(b));
  BOOST_TEST(actions(a) != actions(c));
  BOOST_TEST(actions(a).find("snapshot") != std::string::npos);
  BOOST_TEST(actions(a).find("power_cycle") != std::string::npos);
  for (const Ran* r : {&a, &b, &c}) fs::remove_all(r->out);
}

// A clock set back is refused with a format-one code: its name says which
// parameter was wrong, not the bare number (452).
BOOST_AUTO_TEST_CASE(a_format_one_refusal_is_named_with_its_parameter) {
  Ran r = RunText("clock-back", R"(name: clock-back
steps:
  - boot
  - clock_set: 0
  - expect: {rc: TPM_RC_VALUE}
)");
  BOOST_TEST(RunStatusName(r.result.status) == "passed", r.result.error);
  const json& step = r.run["steps"][1];
  BOOST_TEST(step["status"] == "refused");
  BOOST_TEST(step["rc"] == 0x1c4);
  BOOST_TEST(step["rc_name"] == "TPM_RC_VALUE");
  BOOST_TEST(step["rc_text"].get<std::string>().rfind("TPM_RC_VALUE (0x1c4, parameter 1): ", 0) == 0u, step["rc_text"]);
  fs::remove_all(r.out);
}

// CLOCK_SKEW compares two quotes of one power session: with a reset between
// them its check cannot run, and a failed expect says that rather than
// "not raised"; an `absent` expect of it passes (no verifier would raise it)
// but says nothing was looked at. The same skew then a snapshot (no reset)
// raises it.
BOOST_AUTO_TEST_CASE(an_expected_alarm_whose_check_did_not_run_says_so) {
  Ran r = RunText("skew-reset", R"(name: skew-reset
firmware: baseline
steps:
  - boot
  - clock_skew: 3600000
  - power_cycle: reset
  - expect: {alarms: [CLOCK_SKEW]}
  - expect: {absent: [CLOCK_SKEW]}
  - clock_skew: 3600000
  - snapshot
  - expect: {alarms: [CLOCK_SKEW]}
)");
  BOOST_TEST(RunStatusName(r.result.status) == "failed");
  BOOST_REQUIRE_EQUAL(r.result.expectations.size(), 3u);
  const Expectation& across_reset = r.result.expectations[0];
  BOOST_TEST(across_reset.step == 2);
  BOOST_TEST(!across_reset.passed);
  BOOST_TEST(across_reset.detail.find("CLOCK_SKEW was not raised: its check did not run (why: the TPM was reset or "
                                      "restarted between the two quotes)") != std::string::npos,
             across_reset.detail);
  const Expectation& absent = r.result.expectations[1];
  BOOST_TEST(absent.passed, absent.detail);
  BOOST_REQUIRE(!r.result.steps[4].checks.empty());
  BOOST_TEST(r.result.steps[4].checks[0].detail.find("its check did not run") != std::string::npos,
             r.result.steps[4].checks[0].detail);
  const Expectation& same_session = r.result.expectations[2];
  BOOST_TEST(same_session.step == 6);
  BOOST_TEST(same_session.passed, same_session.detail);
  fs::remove_all(r.out);
}

// --fail-on-alarm (RunOptions::fail_on_alarm) fails a run on an alarm no
// expect step names, without `unexpected_alarms: fail` in the scenario; an
// expect step naming it still covers it.
BOOST_AUTO_TEST_CASE(fail_on_alarm_fails_a_run_on_an_alarm_no_expect_names) {
  const std::string body = R"(
firmware: baseline
steps:
  - boot
  - clock_skew: 3600000
  - snapshot
)";
  Ran loose = RunText("alarm-loose", "name: alarm-loose" + body);
  BOOST_TEST(RunStatusName(loose.result.status) == "passed", loose.result.error);
  Ran strict = RunText("alarm-strict", "name: alarm-strict" + body, std::nullopt, /*fail_on_alarm=*/true);
  BOOST_TEST(RunStatusName(strict.result.status) == "failed");
  BOOST_REQUIRE_EQUAL(strict.result.expectations.size(), 1u);
  BOOST_TEST(strict.result.expectations[0].step == 2);
  BOOST_TEST(strict.result.expectations[0].detail.find("CLOCK_SKEW") != std::string::npos,
             strict.result.expectations[0].detail);
  Ran covered = RunText("alarm-covered", "name: alarm-covered" + body + "  - expect: {alarms: [CLOCK_SKEW]}\n",
                        std::nullopt, /*fail_on_alarm=*/true);
  BOOST_TEST(RunStatusName(covered.result.status) == "passed", covered.result.error);
  for (const Ran* r : {&loose, &strict, &covered}) fs::remove_all(r->out);
}

}  // namespace
}  // namespace tpmlab::testing
