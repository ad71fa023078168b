// Scenario YAML (harness/scenario_yaml.h) into the model (harness/scenario.h):
// what a valid file becomes, the exact file:line:column of every error a
// scenario author can make, and the --cycles override.
#define BOOST_TEST_MODULE scenario_yaml
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <ostream>
#include <string>
#include <variant>

#include "harness/scenario_yaml.h"
#include "layer_printing.h"

namespace tpmlab {

// Lets Boost.Test print a PowerCycleKind when a comparison fails.
std::ostream& operator<<(std::ostream& out, PowerCycleKind kind) {
  return out << PowerCycleKindName(kind);
}

namespace {

constexpr const char* kFile = "t.yaml";

// Every feature of the format. Line numbers matter to the tests below.
constexpr const char* kFull =
    "name: full\n"                                       // 1
    "description: every feature\n"                       // 2
    "seed: 42\n"                                         // 3
    "platform:\n"                                        // 4
    "  banks: [sha256, sha384]\n"                        // 5
    "  ak: ecc\n"                                        // 6
    "  startup_locality: 3\n"                            // 7
    "  hcrtm: HCRTM image\n"                             // 8
    "  command_timeout_ms: 5000\n"                       // 9
    "  firmware: " TPMLAB_SOURCE_DIR "/scenarios/firmware/secure-boot-off.yaml\n"  // 10
    "  # the model brings banks, locality and H-CRTM\n"  // 11
    "  # only where the scenario gives none:\n"          // 12
    "  # these lines keep the numbering below\n"         // 13
    "steps:\n"                                           // 14
    "  - boot\n"                                         // 15
    "  - snapshot\n"                                     // 16
    "  - power_cycle: reset\n"                           // 17
    "  - power_cycle: {kind: power-loss, snapshot: false}\n"  // 18
    "  - repeat:\n"                                      // 19
    "      count: 3\n"                                   // 20
    "      steps:\n"                                     // 21
    "        - power_cycle:\n"                           // 22
    "            mix: {reset: 2, resume: 1}\n"           // 23
    "        - boot: {snapshot: false}\n";               // 24

// A minimal valid scenario to break one line at a time.
std::string Minimal(const std::string& extra_top = "", const std::string& steps = "  - boot\n") {
  return "name: m\n" + extra_top + "steps:\n" + steps;
}

// The error a text gives; fails the test when it loads.
std::string ErrorOf(const std::string& text) {
  auto s = LoadScenarioText(text, kFile);
  BOOST_REQUIRE_MESSAGE(!s.ok(), "loaded but should not have:\n" + text);
  BOOST_TEST(s.status().layer() == Layer::kScenario);
  return s.status().message();
}

bool StartsWith(const std::string& text, const std::string& prefix) {
  return text.rfind(prefix, 0) == 0;
}

#define EXPECT_ERROR_AT(text, where, words)                                           \
  do {                                                                               \
    const std::string message_ = ErrorOf(text);                                      \
    BOOST_TEST(StartsWith(message_, std::string(kFile) + ":" + (where) + ": "), message_); \
    BOOST_TEST(message_.find(words) != std::string::npos, message_);                 \
  } while (0)

Step Simple(const decltype(Step::action)& action) {
  Step s;
  s.action = action;
  return s;
}

Step Repeat(int count, std::vector<Step> steps) {
  return Simple(RepeatStep{count, std::move(steps)});
}

}  // namespace

BOOST_AUTO_TEST_SUITE(valid)

BOOST_AUTO_TEST_CASE(enroll_step) {
  auto loaded = LoadScenarioText(Minimal("", "  - boot\n  - enroll\n"), kFile);
  BOOST_REQUIRE_MESSAGE(loaded.ok(), loaded.status().ToString());
  BOOST_REQUIRE(loaded->steps.size() == 2u);
  BOOST_TEST(std::holds_alternative<EnrollStep>(loaded->steps[1].action));
  BOOST_TEST(std::string(StepActionName(loaded->steps[1])) == "enroll");
}

BOOST_AUTO_TEST_CASE(full_scenario_loads_into_the_model) {
  auto loaded = LoadScenarioText(kFull, kFile);
  BOOST_REQUIRE_MESSAGE(loaded.ok(), loaded.status().ToString());
  const Scenario& s = *loaded;
  BOOST_TEST(s.name == "full");
  BOOST_TEST(s.description == "every feature");
  BOOST_TEST(s.seed == 42u);
  BOOST_TEST(s.file == kFile);

  const Platform& p = s.platform;
  BOOST_REQUIRE(p.banks.size() == 2u);
  BOOST_TEST(p.banks[0] == "sha256");
  BOOST_TEST(p.banks[1] == "sha384");
  BOOST_TEST((p.ak == KeyType::kEccP256));
  BOOST_TEST(p.boot.startup_locality == 3);
  BOOST_REQUIRE(p.boot.hcrtm_data.has_value());
  BOOST_TEST(std::string(p.boot.hcrtm_data->begin(), p.boot.hcrtm_data->end()) == "HCRTM image");
  BOOST_TEST(p.command_timeout_ms == 5000);
  BOOST_REQUIRE(p.firmware.has_value());
  BOOST_TEST(p.firmware->name == "secure-boot-off");
  BOOST_TEST(!p.firmware->secure_boot.enabled);  // its own change
  BOOST_TEST(p.firmware->kernel.image == "linux 6.1.0-13-amd64");  // inherited from baseline

  BOOST_REQUIRE(s.steps.size() == 5u);
  const auto* boot = std::get_if<BootStep>(&s.steps[0].action);
  BOOST_REQUIRE(boot != nullptr);
  BOOST_TEST(boot->snapshot);
  BOOST_TEST(s.steps[0].where.ToString() == "t.yaml:15:5");

  BOOST_TEST(std::holds_alternative<SnapshotStep>(s.steps[1].action));
  BOOST_TEST(s.steps[1].where.line == 16);

  const auto* reset = std::get_if<PowerCycleStep>(&s.steps[2].action);
  BOOST_REQUIRE(reset != nullptr);
  BOOST_REQUIRE(reset->kind.has_value());
  BOOST_TEST(*reset->kind == PowerCycleKind::kReset);
  BOOST_TEST(reset->mix.empty());
  BOOST_TEST(reset->snapshot);

  const auto* loss = std::get_if<PowerCycleStep>(&s.steps[3].action);
  BOOST_REQUIRE(loss != nullptr);
  BOOST_REQUIRE(loss->kind.has_value());
  BOOST_TEST(*loss->kind == PowerCycleKind::kPowerLoss);
  BOOST_TEST(!loss->snapshot);

  const auto* repeat = std::get_if<RepeatStep>(&s.steps[4].action);
  BOOST_REQUIRE(repeat != nullptr);
  BOOST_TEST(repeat->count == 3);
  BOOST_TEST(s.steps[4].where.line == 19);
  BOOST_REQUIRE(repeat->steps.size() == 2u);
  const auto* mixed = std::get_if<PowerCycleStep>(&repeat->steps[0].action);
  BOOST_REQUIRE(mixed != nullptr);
  BOOST_TEST(!mixed->kind.has_value());
  BOOST_REQUIRE(mixed->mix.size() == 2u);
  BOOST_TEST(mixed->mix[0].first == PowerCycleKind::kReset);
  BOOST_TEST(mixed->mix[0].second == 2.0);
  BOOST_TEST(mixed->mix[1].first == PowerCycleKind::kResume);
  BOOST_TEST(mixed->mix[1].second == 1.0);
  BOOST_TEST(repeat->steps[0].where.ToString() == "t.yaml:22:11");
  const auto* quiet_boot = std::get_if<BootStep>(&repeat->steps[1].action);
  BOOST_REQUIRE(quiet_boot != nullptr);
  BOOST_TEST(!quiet_boot->snapshot);

  BOOST_TEST(std::string(StepActionName(s.steps[4])) == "repeat");
  BOOST_TEST(CountSteps(s.steps) == 4 + 3 * 2);
}

BOOST_AUTO_TEST_CASE(defaults_for_what_is_left_out) {
  auto loaded = LoadScenarioText(Minimal(), kFile);
  BOOST_REQUIRE_MESSAGE(loaded.ok(), loaded.status().ToString());
  const Scenario defaults;
  BOOST_TEST(loaded->seed == defaults.seed);
  BOOST_TEST(loaded->platform.banks == defaults.platform.banks);
  BOOST_TEST(loaded->platform.boot.startup_locality == 0);
  BOOST_TEST(!loaded->platform.boot.hcrtm_data.has_value());
  BOOST_TEST(!loaded->platform.firmware.has_value());
}

BOOST_AUTO_TEST_CASE(every_power_cycle_kind_has_a_name) {
  for (PowerCycleKind kind : kAllPowerCycleKinds) {
    const std::string name = PowerCycleKindName(kind);
    BOOST_TEST_CONTEXT(name) {
      auto loaded = LoadScenarioText(Minimal("", "  - power_cycle: " + name + "\n"), kFile);
      BOOST_REQUIRE_MESSAGE(loaded.ok(), loaded.status().ToString());
      const auto& step = std::get<PowerCycleStep>(loaded->steps[0].action);
      BOOST_REQUIRE(step.kind.has_value());
      BOOST_TEST(*step.kind == kind);
    }
  }
}

BOOST_AUTO_TEST_CASE(shipped_power_cycle_scenario_loads) {
  const std::filesystem::path file =
      std::filesystem::path(TPMLAB_SOURCE_DIR) / "scenarios" / "power-cycle.yaml";
  auto loaded = LoadScenarioFile(file);
  BOOST_REQUIRE_MESSAGE(loaded.ok(), loaded.status().ToString());
  BOOST_TEST(loaded->name == "power-cycle");
  BOOST_TEST(loaded->file == file.string());
  BOOST_TEST(CountSteps(loaded->steps) > 1);
  // `tpmlab run --cycles N` must be able to size it.
  Scenario resized = *loaded;
  Status s = OverrideCycles(resized, 3);
  BOOST_TEST(s.ok(), s.ToString());
}

BOOST_AUTO_TEST_CASE(missing_file_is_an_error_naming_it) {
  auto loaded = LoadScenarioFile("/nonexistent/tpmlab/none.yaml");
  BOOST_REQUIRE(!loaded.ok());
  BOOST_TEST(loaded.status().layer() == Layer::kScenario);
  BOOST_TEST(loaded.status().message().find("/nonexistent/tpmlab/none.yaml") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(errors_name_file_line_column)

BOOST_AUTO_TEST_CASE(unknown_top_level_key) {
  EXPECT_ERROR_AT(Minimal("cycles: 4\n"), "2:1", "unknown key 'cycles'");
}

BOOST_AUTO_TEST_CASE(unknown_platform_key) {
  EXPECT_ERROR_AT(Minimal("platform:\n  tpm: infineon\n"), "3:3", "unknown key 'tpm'");
}

BOOST_AUTO_TEST_CASE(unknown_step) {
  EXPECT_ERROR_AT(Minimal("", "  - boot\n  - reboot\n"), "4:5", "unknown step 'reboot'");
  EXPECT_ERROR_AT(Minimal("", "  - boot\n  - sleep: {ms: 5}\n"), "4:5", "unknown step 'sleep'");
}

BOOST_AUTO_TEST_CASE(unknown_power_cycle_kind) {
  EXPECT_ERROR_AT(Minimal("", "  - power_cycle: nap\n"), "3:18", "unknown power_cycle kind 'nap'");
  EXPECT_ERROR_AT(Minimal("", "  - power_cycle: {kind: brownout}\n"), "3:25",
                  "unknown power_cycle kind 'brownout'");
  EXPECT_ERROR_AT(Minimal("", "  - power_cycle:\n      mix: {reset: 1, unplug: 2}\n"), "4:23",
                  "unknown power_cycle kind 'unplug'");
}

BOOST_AUTO_TEST_CASE(seed_of_the_wrong_type) {
  EXPECT_ERROR_AT(Minimal("seed: abc\n"), "2:7", "seed");
  EXPECT_ERROR_AT(Minimal("seed: [1, 2]\n"), "2:7", "seed");
  EXPECT_ERROR_AT(Minimal("seed: -1\n"), "2:7", "seed");
}

BOOST_AUTO_TEST_CASE(repeat_count_of_the_wrong_type) {
  EXPECT_ERROR_AT(Minimal("", "  - repeat:\n      count: many\n      steps: [boot]\n"), "4:14",
                  "repeat.count");
  EXPECT_ERROR_AT(Minimal("", "  - repeat:\n      count: 2.5\n      steps: [boot]\n"), "4:14",
                  "repeat.count");
  EXPECT_ERROR_AT(Minimal("", "  - repeat:\n      count: -1\n      steps: [boot]\n"), "4:14",
                  "repeat.count");
}

BOOST_AUTO_TEST_CASE(missing_name) {
  EXPECT_ERROR_AT("seed: 1\nsteps: [boot]\n", "1:1", "name");
}

BOOST_AUTO_TEST_CASE(missing_steps) {
  EXPECT_ERROR_AT("name: x\nseed: 1\n", "1:1", "steps");
}

BOOST_AUTO_TEST_CASE(yaml_syntax_error) {
  // The flow sequence on line 2 is never closed.
  // The parser notices at the ':' of `seed:`, inside the still-open sequence.
  EXPECT_ERROR_AT("name: x\nsteps: [boot, snapshot\nseed: 1\n", "3:5", "end of sequence flow");
  // A tab where YAML wants spaces.
  const std::string message = ErrorOf("name: x\nsteps:\n\t- boot\n");
  BOOST_TEST(StartsWith(message, "t.yaml:3:"), message);
}

BOOST_AUTO_TEST_CASE(bad_bank_name) {
  EXPECT_ERROR_AT(Minimal("platform:\n  banks: [sha256, md5]\n"), "3:19", "unknown bank 'md5'");
  EXPECT_ERROR_AT(Minimal("platform:\n  banks: [sm3_256]\n"), "3:11", "sm3_256");
}

BOOST_AUTO_TEST_CASE(startup_locality_2) {
  EXPECT_ERROR_AT(Minimal("platform:\n  startup_locality: 2\n"), "3:21", "startup_locality");
}

BOOST_AUTO_TEST_CASE(platform_bus_and_tis_knobs) {
  auto socket = LoadScenarioText(Minimal(), kFile);
  BOOST_REQUIRE_MESSAGE(socket.ok(), socket.status().ToString());
  BOOST_TEST((socket->platform.bus == EmulatedBus::kSocket));
  auto tis = LoadScenarioText(
      Minimal("platform:\n  bus: tis-spi\n  tis: {wait_states: 4, burst_count: 8}\n"), kFile);
  BOOST_REQUIRE_MESSAGE(tis.ok(), tis.status().ToString());
  BOOST_TEST((tis->platform.bus == EmulatedBus::kTisSpi));
  BOOST_TEST(tis->platform.tis.wait_states == 4);
  BOOST_TEST(tis->platform.tis.burst_count == 8);
  auto plain = LoadScenarioText(Minimal("platform:\n  bus: tis-spi\n"), kFile);
  BOOST_REQUIRE_MESSAGE(plain.ok(), plain.status().ToString());
  BOOST_TEST(plain->platform.tis.wait_states == 0);
  BOOST_TEST(plain->platform.tis.burst_count == 64);

  EXPECT_ERROR_AT(Minimal("platform:\n  bus: i2c\n"), "3:8", "platform.bus must be socket or tis-spi, not 'i2c'");
  EXPECT_ERROR_AT(Minimal("platform:\n  bus: tis-spi\n  tis: {wait_states: -1}\n"), "4:22", "wait_states");
  EXPECT_ERROR_AT(Minimal("platform:\n  bus: tis-spi\n  tis: {burst_count: 0}\n"), "4:22", "burst_count must be 1..64");
  EXPECT_ERROR_AT(Minimal("platform:\n  bus: tis-spi\n  tis: {waits: 1}\n"), "4:9", "unknown key 'waits'");
  EXPECT_ERROR_AT(Minimal("platform:\n  tis: {wait_states: 1}\n"), "3:8", "needs bus: tis-spi");
}

BOOST_AUTO_TEST_CASE(firmware_model_not_found) {
  EXPECT_ERROR_AT(Minimal("platform:\n  firmware: no-such-model\n"), "3:13", "firmware model 'no-such-model' not found");
}

BOOST_AUTO_TEST_CASE(power_cycle_with_both_kind_and_mix) {
  EXPECT_ERROR_AT(Minimal("", "  - power_cycle: {kind: reset, mix: {reset: 1}}\n"), "3:18",
                  "not both");
}

BOOST_AUTO_TEST_CASE(mix_weights_that_add_up_to_zero) {
  EXPECT_ERROR_AT(Minimal("", "  - power_cycle: {mix: {reset: 0}}\n"), "3:24", "zero");
}

// A key given twice is a mistake YAML forbids; yaml-cpp keeps the first and
// drops the second silently, so the loader reports it at the second.
BOOST_AUTO_TEST_CASE(duplicate_key) {
  auto loaded = LoadScenarioText(Minimal("seed: 1\nseed: 2\n"), kFile);
  BOOST_TEST(!loaded.ok());
  BOOST_TEST(StartsWith(loaded.status().message(), "t.yaml:3:1: "), loaded.status().message());
}

BOOST_AUTO_TEST_CASE(empty_file) {
  const std::string message = ErrorOf("");
  BOOST_TEST(StartsWith(message, "t.yaml"), message);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(cycles_and_counts)

BOOST_AUTO_TEST_CASE(override_cycles_sets_the_top_level_repeat) {
  auto loaded = LoadScenarioText(kFull, kFile);
  BOOST_REQUIRE(loaded.ok());
  Scenario s = *loaded;
  Status st = OverrideCycles(s, 50);
  BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
  BOOST_TEST(std::get<RepeatStep>(s.steps[4].action).count == 50);
  BOOST_TEST(CountSteps(s.steps) == 4 + 50 * 2);
  BOOST_TEST(OverrideCycles(s, 0).ok());
  BOOST_TEST(CountSteps(s.steps) == 4);
  BOOST_TEST(!OverrideCycles(s, -1).ok());
}

BOOST_AUTO_TEST_CASE(override_cycles_without_a_repeat_is_an_error) {
  auto loaded = LoadScenarioText(Minimal("", "  - boot\n  - power_cycle: reset\n"), kFile);
  BOOST_REQUIRE(loaded.ok());
  Scenario s = *loaded;
  Status st = OverrideCycles(s, 5);
  BOOST_TEST(!st.ok());
  BOOST_TEST(st.layer() == Layer::kScenario);
  BOOST_TEST(CountSteps(s.steps) == 2);
}

BOOST_AUTO_TEST_CASE(override_cycles_with_two_repeats_is_ambiguous) {
  const std::string steps =
      "  - repeat: {count: 2, steps: [boot]}\n"
      "  - repeat: {count: 3, steps: [boot]}\n";
  auto loaded = LoadScenarioText(Minimal("", steps), kFile);
  BOOST_REQUIRE_MESSAGE(loaded.ok(), loaded.status().ToString());
  Scenario s = *loaded;
  Status st = OverrideCycles(s, 5);
  BOOST_TEST(!st.ok());
  BOOST_TEST(st.message().find("t.yaml:4:5") != std::string::npos, st.message());
  // Neither repeat was changed.
  BOOST_TEST(std::get<RepeatStep>(s.steps[0].action).count == 2);
  BOOST_TEST(std::get<RepeatStep>(s.steps[1].action).count == 3);
}

BOOST_AUTO_TEST_CASE(a_nested_repeat_is_not_a_second_top_level_one) {
  const std::string steps =
      "  - repeat:\n"
      "      count: 2\n"
      "      steps:\n"
      "        - boot\n"
      "        - repeat: {count: 3, steps: [snapshot]}\n";
  auto loaded = LoadScenarioText(Minimal("", steps), kFile);
  BOOST_REQUIRE_MESSAGE(loaded.ok(), loaded.status().ToString());
  Scenario s = *loaded;
  BOOST_TEST(CountSteps(s.steps) == 2 * (1 + 3));
  BOOST_TEST(OverrideCycles(s, 10).ok());
  BOOST_TEST(CountSteps(s.steps) == 10 * (1 + 3));
}

BOOST_AUTO_TEST_CASE(count_steps_expands_repeats) {
  BOOST_TEST(CountSteps({}) == 0);
  const std::vector<Step> steps = {
      Simple(BootStep{}),
      Repeat(4, {Simple(PowerCycleStep{}), Simple(SnapshotStep{})}),
      Repeat(0, {Simple(BootStep{})}),
      Repeat(2, {Repeat(3, {Simple(SnapshotStep{})}), Simple(BootStep{})}),
  };
  BOOST_TEST(CountSteps(steps) == 1 + 4 * 2 + 0 + 2 * (3 + 1));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace tpmlab

namespace tpmlab {

// The steps that reproduce alarms: each loads into its model, and each
// mistake is reported where it is, before anything runs.
BOOST_AUTO_TEST_SUITE(alarm_steps)

template <typename T>
const T& Only(const Scenario& s, size_t index = 0) {
  BOOST_REQUIRE(index < s.steps.size());
  const T* step = std::get_if<T>(&s.steps[index].action);
  BOOST_REQUIRE_MESSAGE(step != nullptr, "step " << index << " is " << StepActionName(s.steps[index]));
  return *step;
}

Scenario Load(const std::string& text) {
  auto s = LoadScenarioText(text, kFile);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.status().ToString() + "\n" + text);
  return *s;
}

BOOST_AUTO_TEST_CASE(every_step_loads) {
  const Scenario s = Load(
      "name: all\n"
      "unexpected_alarms: fail\n"
      "platform:\n"
      "  command_timeout_ms: 500\n"
      "  command_timeouts: {TPM2_CreatePrimary: 9000}\n"
      "  images: {next: {swtpm: swtpm, firmware_version: 0x2019102300163637}}\n"
      "steps:\n"
      "  - verify\n"
      "  - expect:\n"
      "      alarms: [PCR_POLICY_MISMATCH]\n"
      "      one_of: [QUOTE_MALFORMED, QUOTE_SIGNATURE_INVALID]\n"
      "      absent: [EK_CHANGED]\n"
      "      allow: [CLOCK_SKEW]\n"
      "      allow_after_power_loss: [CLOCK_NOT_SAFE]\n"
      "      pcrs: {drift: [0], steady: [7], bank: sha1, against: golden}\n"
      "      counters: {reset_count: up, restart_count: same, safe: true}\n"
      "      rc: TPM_RC_DISABLED\n"
      "      error: false\n"
      "  - choose: {steps: [{power_cycle: reset}, snapshot], weights: [3, 1]}\n"
      "  - clear: {auth: platform}\n"
      "  - clear_control: disable\n"
      "  - change_eps\n"
      "  - change_pps\n"
      "  - hierarchy: {endorsement: disable}\n"
      "  - allocate_banks: [sha1]\n"
      "  - firmware_update: {tpm: next}\n"
      "  - clock_set: 100000000\n"
      "  - clock_skew: 600000\n"
      "  - extend: {pcr: 14, data: unlogged}\n"
      "  - event: {pcr: 14, data: logged, type: 13}\n"
      "  - fault: {kind: response_code, rc: TPM_RC_RETRY, command: TPM2_Quote, count: 3, probability: 0.5}\n"
      "  - fault: hang\n"
      "  - fault: {kind: cut_power, within: 7}\n"
      "  - wait: 10\n"
      "  - checkpoint: a\n"
      "  - rollback: {to: a, snapshot: false}\n"
      "  - doctor\n");
  BOOST_TEST(s.unexpected_alarms_fail);
  BOOST_TEST(s.platform.command_timeouts_ms.at(0x131) == 9000);
  BOOST_REQUIRE(s.platform.images.size() == 1u);
  BOOST_TEST(*s.platform.images[0].firmware_version == 0x2019102300163637ull);
  BOOST_TEST(std::string(StepActionName(s.steps[0])) == "verify");
  const auto& e = Only<ExpectStep>(s, 1);
  BOOST_TEST(e.alarms.size() == 1u);
  BOOST_TEST(e.one_of.size() == 2u);
  BOOST_TEST(e.against_golden);
  BOOST_TEST(e.pcr_bank == "sha1");
  BOOST_TEST(*e.reset_count == "up");
  BOOST_TEST(*e.rc == 0x120u);
  BOOST_TEST(*e.safe);
  BOOST_TEST(Only<ChooseStep>(s, 2).weights.size() == 2u);
  BOOST_TEST((Only<ClearStep>(s, 3).auth == Hierarchy::kPlatform));
  BOOST_TEST(Only<ClearControlStep>(s, 4).disable);
  BOOST_TEST(!Only<HierarchyStep>(s, 7).enable);
  BOOST_TEST(Only<AllocateBanksStep>(s, 8).banks == std::vector<std::string>{"sha1"});
  BOOST_TEST(Only<FirmwareUpdateStep>(s, 9).image == "next");
  BOOST_TEST(Only<ClockSetStep>(s, 10).clock_ms == 100000000u);
  BOOST_TEST(Only<ClockSkewStep>(s, 11).skew_ms == 600000);
  BOOST_TEST(!Only<ExtendStep>(s, 12).logged);
  BOOST_TEST(Only<ExtendStep>(s, 13).logged);
  const auto& f = Only<FaultStep>(s, 14);
  BOOST_TEST((f.kind == FaultStep::Kind::kResponseCode));
  BOOST_TEST(f.response_code == 0x922u);
  BOOST_TEST(*f.command_code == 0x158u);
  BOOST_TEST(f.count == 3u);
  BOOST_TEST((Only<FaultStep>(s, 15).kind == FaultStep::Kind::kHang));
  BOOST_TEST(Only<FaultStep>(s, 16).within == 7);
  BOOST_TEST(Only<WaitStep>(s, 17).ms == 10);
  BOOST_TEST(!Only<RollbackStep>(s, 19).snapshot);
  BOOST_TEST(std::string(StepActionName(s.steps[20])) == "doctor");
}

BOOST_AUTO_TEST_CASE(the_library_loads) {
  int loaded = 0;
  for (const auto& entry : std::filesystem::directory_iterator(std::filesystem::path(TPMLAB_SOURCE_DIR) / "scenarios")) {
    if (entry.path().extension() != ".yaml") continue;
    auto s = LoadScenarioFile(entry.path());
    BOOST_TEST(s.ok(), entry.path().string() + ": " + s.status().ToString());
    ++loaded;
  }
  BOOST_TEST(loaded >= 12);
}

BOOST_AUTO_TEST_CASE(mistakes_in_alarm_steps_name_their_place) {
  EXPECT_ERROR_AT(Minimal("", "  - expect: {alarms: [TPM_ON_FIRE]}\n"), "3:23", "unknown alarm 'TPM_ON_FIRE'");
  EXPECT_ERROR_AT(Minimal("", "  - expect: {alarm: [EK_CHANGED]}\n"), "3:14", "unknown key 'alarm'");
  EXPECT_ERROR_AT(Minimal("", "  - expect: {pcrs: {drift: [24]}}\n"), "3:29", "PCR numbers are 0..23");
  EXPECT_ERROR_AT(Minimal("", "  - expect: {counters: {reset_count: sideways}}\n"), "3:38", "up, same, reset or down");
  EXPECT_ERROR_AT(Minimal("", "  - expect: {rc: TPM_RC_MAYBE}\n"), "3:18", "response code");
  EXPECT_ERROR_AT(Minimal("", "  - expect\n"), "3:5", "expect needs");
  EXPECT_ERROR_AT(Minimal("", "  - clear: {auth: owner}\n"), "3:19", "lockout or platform");
  EXPECT_ERROR_AT(Minimal("", "  - clear_control: sometimes\n"), "3:20", "disable or enable");
  EXPECT_ERROR_AT(Minimal("", "  - hierarchy: {storage: disable}\n"), "3:17", "unknown hierarchy 'storage'");
  EXPECT_ERROR_AT(Minimal("", "  - hierarchy: {owner: off}\n"), "3:24", "enable or disable");
  EXPECT_ERROR_AT(Minimal("", "  - allocate_banks: [sha256, crc32]\n"), "3:30", "unknown bank 'crc32'");
  EXPECT_ERROR_AT(Minimal("", "  - firmware_update: {tpm: v2}\n"), "3:28", "no TPM image named 'v2'");
  EXPECT_ERROR_AT(Minimal("", "  - firmware_update: {platform: no-such-model}\n"), "3:33", "not found");
  EXPECT_ERROR_AT(Minimal("", "  - firmware_update: {}\n"), "3:22", "platform: MODEL or tpm: IMAGE");
  EXPECT_ERROR_AT(Minimal("", "  - clock_set: yesterday\n"), "3:16", "clock_set");
  EXPECT_ERROR_AT(Minimal("", "  - clock_skew: -5\n"), "3:17", "only moves forward");
  EXPECT_ERROR_AT(Minimal("", "  - extend: {pcr: 24, data: x}\n"), "3:19", "0..23");
  EXPECT_ERROR_AT(Minimal("", "  - extend: {pcr: 1}\n"), "3:13", "needs pcr and data");
  EXPECT_ERROR_AT(Minimal("", "  - fault: {kind: gremlins}\n"), "3:19", "unknown fault 'gremlins'");
  EXPECT_ERROR_AT(Minimal("", "  - fault: {kind: drop, command: TPM2_Teleport}\n"), "3:34", "unknown command 'TPM2_Teleport'");
  EXPECT_ERROR_AT(Minimal("", "  - fault: {kind: drop, probability: 2}\n"), "3:38", "0..1");
  EXPECT_ERROR_AT(Minimal("", "  - fault: {kind: hang, count: 2}\n"), "3:32", "takes no count");
  EXPECT_ERROR_AT(Minimal("", "  - fault: {kind: kill, probability: 0.5}\n"), "3:38", "takes no probability");
  EXPECT_ERROR_AT(Minimal("", "  - fault: {kind: drop, latency_ms: 5}\n"), "3:37", "takes no latency_ms");
  EXPECT_ERROR_AT(Minimal("", "  - checkpoint: ../../etc\n"), "3:17", "checkpoint name");
  EXPECT_ERROR_AT(Minimal("platform:\n  images: {../x: {swtpm: swtpm}}\n"), "3:12", "image name");
  EXPECT_ERROR_AT(Minimal("", "  - wait: soon\n"), "3:11", "wait");
  EXPECT_ERROR_AT(Minimal("", "  - rollback: never-saved\n"), "3:5", "no checkpoint of that name");
  EXPECT_ERROR_AT(Minimal("", "  - choose: {steps: [boot, snapshot], weights: [1]}\n"), "3:48", "2 steps but 1 weights");
  EXPECT_ERROR_AT(Minimal("unexpected_alarms: sometimes\n"), "2:20", "fail or report");
  EXPECT_ERROR_AT(Minimal("bench: lab-7\n"), "2:8", "not known");
  EXPECT_ERROR_AT(Minimal("platform:\n  command_timeouts: {TPM2_Nap: 5}\n"), "3:22", "unknown command 'TPM2_Nap'");
  EXPECT_ERROR_AT(Minimal("platform:\n  images: {v2: {swtpm: swtpm, flash: yes}}\n"), "3:31", "unknown key 'flash'");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace tpmlab
