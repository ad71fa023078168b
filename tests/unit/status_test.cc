// Structured errors (drivers/status.h): the kind decides the exit code (the
// same numbers as when the layer did), the place is data beside the message,
// and third-party exceptions from a hand-edited file (nlohmann on JSON,
// yaml-cpp on YAML) come back as bad-input Statuses naming the place.
#define BOOST_TEST_MODULE status
#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

#include "exit_codes.h"
#include "harness/bench.h"
#include "harness/enrollment.h"
#include "harness/scenario.h"
#include "harness/scenario_yaml.h"
#include "harness/snapshot_json.h"

namespace tpmlab {
namespace {

using cli::ExitFor;
using nlohmann::json;

BOOST_AUTO_TEST_CASE(each_kind_has_its_exit_code) {
  const std::vector<std::pair<ErrorKind, int>> table = {
      {ErrorKind::kBadInput, 2},  {ErrorKind::kTpmRefusal, 3},     {ErrorKind::kTransport, 3},
      {ErrorKind::kEmulator, 3},  {ErrorKind::kMissingPackage, 4}, {ErrorKind::kStore, 3},
      {ErrorKind::kInternal, 3},
  };
  for (const auto& [kind, code] : table) {
    BOOST_TEST_CONTEXT(ErrorKindName(kind)) {
      BOOST_TEST(ExitFor(Status::Error(Layer::kHarness, "x").WithKind(kind)) == code);
    }
  }
}

// Before kinds, the exit code came from the layer: each layer's default
// kind keeps the number it had.
BOOST_AUTO_TEST_CASE(each_layer_keeps_the_exit_code_it_had) {
  const std::vector<std::pair<Layer, int>> before = {
      {Layer::kTpm, 3},   {Layer::kTransport, 3}, {Layer::kEmulator, 3}, {Layer::kEnvironment, 4},
      {Layer::kParse, 2}, {Layer::kScenario, 2},  {Layer::kStore, 3},    {Layer::kHarness, 3},
  };
  for (const auto& [layer, code] : before) {
    BOOST_TEST_CONTEXT(LayerName(layer)) {
      BOOST_TEST(ExitFor(Status::Error(layer, "x")) == code);
      BOOST_TEST((Status::Error(layer, "x").kind() == DefaultKind(layer)));
    }
  }
  BOOST_TEST(ExitFor(Status::Tpm(0x120, "TPM2_Clear")) == 3);
  BOOST_TEST(ExitFor(Status::Timeout("no answer")) == 3);
  BOOST_TEST(ExitFor(Status::Parse("short header", 12)) == 2);
}

BOOST_AUTO_TEST_CASE(the_kind_not_the_layer_decides) {
  // A parse error in the TPM's own answer is not the user's input.
  const Status s = Status::Parse("response shorter than its header").WithKind(ErrorKind::kTransport);
  BOOST_TEST((s.layer() == Layer::kParse));
  BOOST_TEST(ExitFor(s) == 3);
  BOOST_TEST(s.ToString() == "parse: response shorter than its header");  // the text says the layer, as before
  BOOST_TEST(Status::Ok().WithKind(ErrorKind::kBadInput).ok());
}

BOOST_AUTO_TEST_CASE(a_place_is_data_beside_the_message) {
  const Status s = Status::ErrorAt(Layer::kScenario, Location("a.yaml", 3, 7), "unknown step 'bot'");
  BOOST_TEST(s.message() == "a.yaml:3:7: unknown step 'bot'");  // the text tpmlab always wrote
  BOOST_TEST(s.ToString() == "scenario: a.yaml:3:7: unknown step 'bot'");
  BOOST_TEST(s.reason() == "unknown step 'bot'");
  BOOST_TEST(s.location().file == "a.yaml");
  BOOST_TEST(*s.location().line == 3u);
  BOOST_TEST(*s.location().column == 7u);
  BOOST_TEST(!s.location().offset);

  const Status wrapped = s.Wrap("loading the bench");
  BOOST_TEST(wrapped.message() == "loading the bench: a.yaml:3:7: unknown step 'bot'");
  BOOST_TEST(wrapped.reason() == "loading the bench: unknown step 'bot'");
  BOOST_TEST(*wrapped.location().line == 3u);
  BOOST_TEST((wrapped.kind() == ErrorKind::kBadInput));

  const Status parse = Status::Parse("truncated event header at byte 40", 40).At(Location("log.bin"));
  BOOST_TEST(*parse.offset() == 40u);
  BOOST_TEST(*parse.location().offset == 40u);
  BOOST_TEST(parse.location().file == "log.bin");
  BOOST_TEST(parse.reason() == parse.message());  // nothing was put in front
  BOOST_TEST(Status::Ok().At(Location("x")).location().empty());
}

BOOST_AUTO_TEST_CASE(yaml_errors_carry_file_line_and_column) {
  auto bad = LoadScenarioText("name: x\nsteps:\n  - boot\n  - power_cycle: {kind: sideways}\n", "x.yaml");
  BOOST_TEST_REQUIRE(!bad.ok());
  const Status& s = bad.status();
  BOOST_TEST(s.location().file == "x.yaml");
  BOOST_TEST(*s.location().line == 4u);
  BOOST_TEST(*s.location().column == 25u);
  BOOST_TEST(s.message().starts_with("x.yaml:4:25: "));
  BOOST_TEST(s.reason() == s.message().substr(std::string("x.yaml:4:25: ").size()));
  BOOST_TEST(ExitFor(s) == 2);

  auto syntax = LoadScenarioText("name: x\nsteps: [boot\n", "y.yaml");
  BOOST_TEST_REQUIRE(!syntax.ok());
  BOOST_TEST(syntax.status().location().file == "y.yaml");
  BOOST_TEST(syntax.status().location().line.has_value());
}

// yaml-cpp throws reading a list as a name; that is the file's mistake at the list.
BOOST_AUTO_TEST_CASE(a_yaml_cpp_exception_is_bad_input_at_its_node) {
  auto scenario = LoadScenarioText("name: x\nsteps:\n  - hierarchy: {[owner]: disable}\n", "list.yaml");
  BOOST_TEST_REQUIRE(!scenario.ok());
  BOOST_TEST((scenario.status().kind() == ErrorKind::kBadInput));
  BOOST_TEST(scenario.status().location().file == "list.yaml");
  BOOST_TEST(*scenario.status().location().line == 3u);
  BOOST_TEST(scenario.status().message().find("a value of the wrong shape here") != std::string::npos);

  auto bench = ParseBench("name: b\ndut: {transport: emulated}\nallow: {[extend]: true}\n", "b.yaml");
  BOOST_TEST_REQUIRE(!bench.ok());
  BOOST_TEST((bench.status().kind() == ErrorKind::kBadInput));
  BOOST_TEST(*bench.status().location().line == 3u);
}

// nlohmann throws reading a number as a string; that is the file's mistake.
BOOST_AUTO_TEST_CASE(a_json_type_error_is_bad_input_naming_the_file) {
  auto snapshot = SnapshotFromJson(json{{"taken_at", 5}}, ".", "run.json:2");
  BOOST_TEST_REQUIRE(!snapshot.ok());
  BOOST_TEST((snapshot.status().kind() == ErrorKind::kBadInput));
  BOOST_TEST(snapshot.status().message().starts_with("run.json:2: not the shape tpmlab writes: "));

  auto enrollment = EnrollmentHistoryFromJson(json{{"dut", 7}}, "enrollment.json");
  BOOST_TEST_REQUIRE(!enrollment.ok());
  BOOST_TEST(ExitFor(enrollment.status()) == 2);
  BOOST_TEST(enrollment.status().message().starts_with("enrollment.json: not the shape tpmlab writes: "));
}

}  // namespace
}  // namespace tpmlab
