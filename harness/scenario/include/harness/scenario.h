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
#include "harness/yaml_reader.h"

namespace tpmlab {


// What the emulated platform's firmware extends at every cold boot: the
// stand-in for a measured boot until firmware models arrive.
struct Measurement {
  int pcr = 0;
  std::string data;  // each bank gets H_bank(data)
};

struct Platform {
  std::vector<std::string> banks = {"sha1", "sha256"};
  KeyType ak = KeyType::kRsa2048;
  BootOptions boot;
  std::vector<Measurement> measurements;
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

struct Step;
struct RepeatStep {
  int count = 1;
  std::vector<Step> steps;
};

struct Step {
  SourceLocation where;
  std::variant<BootStep, PowerCycleStep, SnapshotStep, RepeatStep> action;
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
