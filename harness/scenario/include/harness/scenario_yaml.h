// Reads a scenario from YAML into the model. Unknown keys, wrong types and
// missing fields are errors that name file:line:column; nothing runs.
#pragma once

#include <filesystem>
#include <string>

#include "harness/scenario.h"

namespace tpmlab {

Result<Scenario> LoadScenarioFile(const std::filesystem::path& file);
/// `file_name` names the text in errors; firmware models are found from its
/// folder (ResolveFirmwareModel), or by `resolve_models` when given (a
/// replay, which must load only its bundle's copies).
Result<Scenario> LoadScenarioText(const std::string& text, const std::string& file_name,
                                  const ModelResolver& resolve_models = {});

}  // namespace tpmlab
