// Reporting a run's verdicts to LAVA (lava.cc) when tpmlab runs in a LAVA test job.
#pragma once

#include <filesystem>
#include <string>

namespace tpmlab::cli {

/// The `lava-test-case` of the LAVA test shell tpmlab runs in; "" outside one
/// (no LAVA_RESULT_DIR, no helper on PATH) or when TPMLAB_LAVA=0.
std::string LavaTestCaseHelper();

/// Reports the run in `run_json` to LAVA: "PREFIX.run-completes", one case per
/// expectation, and "PREFIX.cycles-per-second" as a measurement. PREFIX is the
/// scenario's name, or `prefix` (a DUT's name in a run of many). Nothing
/// happens outside LAVA; a helper that fails is said on stderr.
void ReportToLava(const std::filesystem::path& run_json, const std::string& prefix = "");

}  // namespace tpmlab::cli
