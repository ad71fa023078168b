// What a run leaves beside run.json so others can judge and repeat it: the
// inputs it read, the emulator state it started from, and a JUnit report.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "harness/runner.h"

namespace tpmlab {

/// Copies every file the scenario was read from into `out_dir/inputs`,
/// keeping their places relative to one another (so the copy loads the same
/// models). Returns run.json's "inputs" object: {scenario, files}.
Result<nlohmann::json> SaveRunInputs(const Scenario& scenario, const std::filesystem::path& out_dir);

/// JUnit XML for CI: one test case per expectation and per failed step, and
/// one for the run as a whole; the properties say what ran (scenario, seed,
/// firmware, tpmlab version).
std::string JunitXml(const Scenario& scenario, const RunResult& result, const nlohmann::json& properties);

/// Writes `text` to `file` through a temporary, so readers never see half.
Status WriteFileAtomically(const std::filesystem::path& file, const std::string& text);

}  // namespace tpmlab
