// What a run leaves beside run.json so others can judge and repeat it: the
// inputs it read, the emulator state it started from, and a JUnit report;
// and run.json itself, written from the store (at the end of a run, and by
// `tpmlab export` for any stored run, killed ones included).
#pragma once

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "harness/runner.h"

namespace tpmlab {

/// Copies every file the scenario was read from into `out_dir/inputs`,
/// keeping their places relative to one another (so the copy loads the same
/// models). Returns run.json's "inputs" object: {scenario, files}.
Result<nlohmann::json> SaveRunInputs(const Scenario& scenario, const std::filesystem::path& out_dir);

/// Writes `text` to `file` through a temporary, so readers never see half.
Status WriteFileAtomically(const std::filesystem::path& file, const std::string& text);

// How run.json carries each step's snapshot. Full: inline, whole (as
// always). Compact: a short reference {"stored": {database, run_id, step}}
// instead; the whole snapshot stays in the database (`tpmlab export DB:RUN
// --step N` prints it, every reader of a step follows the reference). Auto:
// full up to kFullRunJsonMaxSteps steps, compact beyond.
enum class RunJsonForm { kAuto, kFull, kCompact };
inline constexpr int kFullRunJsonMaxSteps = 1000;
Result<RunJsonForm> ParseRunJsonForm(const std::string& text);

/// Each step of a run, one at a time, in order.
using StepSource = std::function<Status(const std::function<Status(StepResult&&)>& each)>;

/// Writes run.json, junit.xml and eventlogs/<sha256>.bin into `out_dir` for
/// `run`, streaming its steps from `steps` (one in memory at a time).
/// `database` is the file run.json names. The run's outcome (FinishRun's)
/// gives its expectations, error, expected failures, DUT and inputs; a run
/// with none (killed) says status interrupted and why.
Status WriteRunFiles(const StoredRun& run, const StepSource& steps, const std::filesystem::path& database,
                     const std::filesystem::path& out_dir, RunJsonForm form);
/// The same, for a run stored in `store`.
Status WriteRunFiles(Store& store, int64_t run_id, const std::filesystem::path& out_dir, RunJsonForm form);

/// A step as run.json records it, with its whole snapshot inline and the
/// event log file it names (which `out_dir`, when given, receives).
Result<nlohmann::json> StepToRunJson(const StepResult& step, const std::filesystem::path& out_dir = {});

/// The snapshot a run.json step holds: inline, or (compact run.json) read
/// from the database it names; the database is also looked for beside
/// run.json, for a run folder that moved. `where` names the step in errors.
Result<Snapshot> SnapshotOfRunStep(const nlohmann::json& snapshot, const std::filesystem::path& run_dir,
                                   const std::string& where);

}  // namespace tpmlab
