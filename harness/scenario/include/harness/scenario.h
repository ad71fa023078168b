// The scenario model: what a run does, independent of where it was written
// (YAML today, Python later). The runner executes only this model.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "harness/dut.h"
#include "harness/firmware_model.h"
#include "harness/yaml_reader.h"

namespace tpmlab {


struct Platform {
  std::vector<std::string> banks = {"sha1", "sha256"};
  KeyType ak = KeyType::kRsa2048;
  BootOptions boot;
  // What the emulated firmware measures and logs at every cold boot; none
  // means a bare platform that measures nothing and has no log.
  std::optional<FirmwareModel> firmware;
  int command_timeout_ms = 30000;
};

struct BootStep {
  bool snapshot = true;
};

struct PowerCycleStep {
  std::optional<PowerCycleKind> kind;                        // a fixed kind, or
  std::vector<std::pair<PowerCycleKind, double>> mix;        // weights drawn with the seed
  bool snapshot = true;
};

struct SnapshotStep {};

// Enrolls the DUT from the latest snapshot: its EK, AK, firmware version and
// the golden reference (PCRs and log) every later boot is verified against.
struct EnrollStep {};

struct Step;
struct RepeatStep {
  int count = 1;
  std::vector<Step> steps;
};

struct Step {
  SourceLocation where;
  std::variant<BootStep, PowerCycleStep, SnapshotStep, EnrollStep, RepeatStep> action;
};

struct Scenario {
  std::string name;
  std::string description;
  uint64_t seed = 1;
  Platform platform;
  std::vector<Step> steps;
  std::string file;  // empty when built in code
};

const char* StepActionName(const Step& step);

/// Sets the count of the scenario's one top-level `repeat` (--cycles).
Status OverrideCycles(Scenario& scenario, int cycles);

/// Number of steps the run will execute, repeats expanded.
int CountSteps(const std::vector<Step>& steps);

/// Checks the model for values no run can use; the YAML loader calls it too.
Status ValidateScenario(const Scenario& scenario);

}  // namespace tpmlab
