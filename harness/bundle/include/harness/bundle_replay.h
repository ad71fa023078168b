// Replaying a bundle: the recorded scenario loaded from the bundle's own
// copies of every input (nothing from the host it runs on), run for exactly
// the recorded steps, and the two runs compared step by step.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "drivers/status.h"
#include "harness/firmware_model.h"
#include "harness/scenario.h"

namespace tpmlab {

// What a replay runs, read from an unpacked bundle.
struct ReplayPlan {
  Scenario scenario;                    // with the recorded --cycles applied
  nlohmann::json recorded;              // the bundled run.json
  uint64_t seed = 0;
  int recorded_steps = 0;               // the replay stops after these (RunOptions::max_steps)
  std::filesystem::path initial_state;  // empty: the run was on a real chip
};

/// Reads an unpacked bundle (ExtractBundle): its run.json, and its scenario
/// with every firmware model from the bundle (BundledModels).
/// @returns kParse when a member is missing or not what it should be, or
/// when the scenario names a model the bundle does not carry.
Result<ReplayPlan> PlanReplay(const std::filesystem::path& unpacked);

/// Resolves model names to the bundle's copies only: by the references the
/// run recorded (run.json inputs.models: which file named which name, and the
/// copy it resolved to). A bundle without them (an older tpmlab) is searched
/// beside the naming file only, never outside the bundle.
ModelResolver BundledModels(const std::filesystem::path& unpacked, const nlohmann::json& inputs);

// One step of the recorded run beside the same step of the replay.
struct StepComparison {
  int index = 0;
  std::string action;
  std::string kind;  // a power cycle's kind
  // Distinct alarm codes, sorted; nullopt when that run has no such step.
  std::optional<std::vector<std::string>> recorded_alarms, replayed_alarms;
  // What differs, each said for a user: "PCR0 differs (sha1, sha256)",
  // "event log differs (sha256 1a2b3c4d… recorded, 5e6f7a8b… replayed)",
  // "reset_count: recorded up, replayed same", "alarms: -CLOCK_NOT_SAFE +EK_CHANGED".
  std::vector<std::string> differences;
  // What differs only by timing no replay repeats: safe and CLOCK_NOT_SAFE
  // once either run has had an unorderly power loss (a fault, a rollback),
  // as libtpms saves its clock every 4096 ms. Said, not counted.
  std::vector<std::string> timing;
  bool same() const { return differences.empty(); }
};

/// Compares two runs' steps (run.json "steps" arrays) by index: action and
/// kind, status, alarm codes, PCRs in every bank, event log (by its sha256),
/// how reset_count and restart_count moved since the step's previous snapshot,
/// and safe (into `timing` after an unorderly power loss).
std::vector<StepComparison> CompareRunSteps(const nlohmann::json& recorded, const nlohmann::json& replayed);

/// The comparison as replay --json prints its steps.
nlohmann::json ComparisonToJson(const std::vector<StepComparison>& steps);

}  // namespace tpmlab
