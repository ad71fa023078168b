// A scenario end to end over TIS on the simulated SPI TPM: the seeded
// power-cycle job (every kind, hard-loss included, firmware baseline) run over
// the socket and over TIS-over-SPI with wait states and a small burstCount,
// both from the same chip. Both pass, and step for step they agree: the same
// actions and kinds, the same alarms, the same PCRs in every bank and the
// same EK and SRK. run.json records the bus and the chip's IDs.
#define BOOST_TEST_MODULE tis_scenario
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <fstream>
#include <set>
#include <nlohmann/json.hpp>

#include "emulated.h"
#include "harness/runner.h"
#include "harness/scenario_yaml.h"

namespace tpmlab::testing {
namespace {

using nlohmann::json;

constexpr int kCycles = 15;

Scenario PowerCycles(const std::string& bus_lines) {
  const std::string text = R"(
name: power-cycle-bus
seed: 20261128
platform:
  banks: [sha1, sha256]
  ak: rsa
)" + bus_lines + R"(
  firmware: )" TPMLAB_SOURCE_DIR R"(/scenarios/firmware/baseline.yaml
steps:
  - boot
  - enroll
  - repeat:
      count: )" + std::to_string(kCycles) + R"(
      steps:
        - power_cycle:
            mix: {reset: 2, restart: 1, resume: 1, power-loss: 2, hard-loss: 2}
)";
  return Require(LoadScenarioText(text, "power-cycle-bus.yaml"));
}

struct Timed {
  RunResult result;
  json run;
  double seconds = 0;
  // The simulated chip as seen after the last step (TIS runs only).
  uint64_t tis_commands = 0;
  uint64_t wait_states = 0;
  std::vector<std::string> violations;
};

Timed RunOn(const Scenario& scenario, const std::string& tag) {
  const fs::path out = MakeTempDir(tag);
  RunOptions o;
  o.out_dir = out;
  o.database = out / "results.db";
  // Both runs start from the same manufactured chip, so its keys match too.
  o.initial_state = ProvisionedTemplate();
  Timed t;
  Dut* dut = nullptr;
  o.on_dut_ready = [&dut](Dut& d) { dut = &d; };
  o.on_step = [&dut, &t](const StepResult&, int) {
    if (dut == nullptr || dut->tis_simulator() == nullptr) return;
    t.tis_commands = dut->tis_simulator()->commands();
    t.wait_states = dut->tis_simulator()->wait_states_inserted();
    t.violations = dut->tis_simulator()->violations();
  };
  const auto start = std::chrono::steady_clock::now();
  t.result = Require(RunScenario(scenario, o));
  t.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::ifstream in(out / "run.json");
  t.run = json::parse(in);
  return t;
}

std::set<std::string> AlarmCodes(const StepResult& s, const std::string& except = "") {
  std::set<std::string> codes;
  for (const Alarm& a : s.alarms) {
    if (a.code != except) codes.insert(a.code);
  }
  return codes;
}

BOOST_AUTO_TEST_CASE(power_cycles_over_tis_match_the_socket) {
  const Timed socket = RunOn(PowerCycles("  bus: socket"), "tis-scn-socket");
  const Timed tis = RunOn(PowerCycles("  bus: tis-spi\n  tis: {wait_states: 3, burst_count: 16}"), "tis-scn-tis");

  BOOST_TEST(RunStatusName(socket.result.status) == "passed", socket.result.error);
  BOOST_TEST(RunStatusName(tis.result.status) == "passed", tis.result.error);
  BOOST_REQUIRE_EQUAL(socket.result.steps.size(), static_cast<size_t>(kCycles + 2));
  BOOST_REQUIRE_EQUAL(tis.result.steps.size(), socket.result.steps.size());

  std::set<std::string> kinds;
  int snapshots = 0;
  for (size_t i = 0; i < socket.result.steps.size(); ++i) {
    const StepResult& a = socket.result.steps[i];
    const StepResult& b = tis.result.steps[i];
    BOOST_TEST_CONTEXT("step " << i << " (" << a.action << " " << a.kind << ")") {
      BOOST_TEST(a.action == b.action);
      BOOST_TEST(a.kind == b.kind);
      BOOST_TEST(a.cycle.value_or(-1) == b.cycle.value_or(-1));
      BOOST_TEST(a.status == "passed", a.error);
      BOOST_TEST(b.status == "passed", b.error);
      // CLOCK_NOT_SAFE and safe depend on time, not the bus: the slower run's
      // clock may cross an NV save (every 4096 ms) the faster one does not.
      // Each run's own "safe" check (status passed) judges it.
      BOOST_TEST((AlarmCodes(a, "CLOCK_NOT_SAFE") == AlarmCodes(b, "CLOCK_NOT_SAFE")));
      BOOST_TEST(a.snapshot.has_value() == b.snapshot.has_value());
      if (!a.kind.empty()) kinds.insert(a.kind);
      if (a.snapshot && b.snapshot) {
        ++snapshots;
        BOOST_TEST((a.snapshot->banks == b.snapshot->banks));
        BOOST_TEST(a.snapshot->banks.size() == 2u);
        BOOST_TEST((a.snapshot->pcrs == b.snapshot->pcrs));
        BOOST_TEST(ToHex(a.snapshot->ek.name) == ToHex(b.snapshot->ek.name));
        BOOST_TEST(ToHex(a.snapshot->srk.name) == ToHex(b.snapshot->srk.name));
        BOOST_TEST(!a.snapshot->ek.name.empty());
        BOOST_TEST(a.snapshot->clock().reset_count == b.snapshot->clock().reset_count);
        BOOST_TEST(a.snapshot->clock().restart_count == b.snapshot->clock().restart_count);
      }
    }
  }
  BOOST_TEST(snapshots >= kCycles + 1);
  BOOST_TEST(kinds.count("hard-loss") == 1u);
  BOOST_TEST(kinds.count("power-loss") == 1u);
  BOOST_TEST(kinds.size() >= 4u);

  // The TIS run really went over the simulated chip, by the protocol.
  BOOST_TEST(socket.tis_commands == 0u);
  BOOST_TEST(tis.tis_commands > 100u);
  BOOST_TEST(tis.wait_states > 0u);
  BOOST_TEST(tis.violations.empty(), (tis.violations.empty() ? "" : tis.violations.front()));

  BOOST_TEST(socket.run["dut"]["bus"] == "socket");
  BOOST_TEST(!socket.run["dut"].contains("tis"));
  BOOST_TEST(tis.run["dut"]["bus"] == "tis-spi");
  BOOST_TEST(tis.run["dut"]["tis"]["vid_did_rid"] == "1014:0001:01");
  BOOST_TEST(tis.run["dut"]["tis"]["wait_states"] == 3);
  BOOST_TEST(tis.run["dut"]["tis"]["burst_count"] == 16);

  const double steps = static_cast<double>(socket.result.steps.size());
  BOOST_TEST_MESSAGE("socket: " << steps / socket.seconds << " steps/s (" << socket.seconds << " s); tis-spi: "
                                << steps / tis.seconds << " steps/s (" << tis.seconds << " s), "
                                << tis.tis_commands << " commands over TIS, " << tis.wait_states
                                << " wait states; kinds drawn: " << kinds.size());
}

// The shipped scenario parses and asks for TIS with wait states.
BOOST_AUTO_TEST_CASE(shipped_power_cycle_tis_scenario) {
  const Scenario s = Require(LoadScenarioFile(TPMLAB_SOURCE_DIR "/scenarios/power-cycle-tis.yaml"));
  BOOST_TEST(EmulatedBusName(s.platform.bus) == std::string("tis-spi"));
  BOOST_TEST(s.platform.tis.wait_states > 0);
}

}  // namespace
}  // namespace tpmlab::testing
