// Reads a scenario from YAML into the model. Unknown keys, wrong types and
// missing fields are errors that name file:line:column; nothing runs.
#pragma once

#include <filesystem>
#include <string>

#include "harness/scenario.h"

namespace tpmlab {

Result<Scenario> LoadScenarioFile(const std::filesystem::path& file);
Result<Scenario> LoadScenarioText(const std::string& text, const std::string& file_name);

}  // namespace tpmlab
