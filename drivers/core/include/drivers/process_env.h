// RunProgram with additions to the child's environment: for a secret the
// child reads from its environment (ipmitool -E reads IPMI_PASSWORD), so it
// is never on a command line. Apart from process.h so that adding it did not
// touch the header every emulator user includes.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "drivers/status.h"

namespace tpmlab {

using EnvironmentAdditions = std::vector<std::pair<std::string, std::string>>;

// RunProgram (drivers/process.h) whose child also has `environment` set
// (replacing variables of the same name); the harness's own environment is untouched.
Result<int> RunProgramWithEnvironment(const std::vector<std::string>& argv, const std::filesystem::path& log_file,
                                      std::chrono::milliseconds timeout, const EnvironmentAdditions& environment);

}  // namespace tpmlab
