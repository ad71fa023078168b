// Repro bundles: one .tar.gz that carries everything needed to run a
// recorded run again elsewhere and to check it alarms the same way.
//
// A bundle holds, at its top level:
//   bundle.json       the manifest: format, version, scenario, seed, every file's size and sha256
//   run.json          the run as recorded (steps, alarms, snapshots)
//   junit.xml         when the run wrote one
//   inputs/           the scenario file and the firmware models it loaded, under
//                     relative names; run.json's inputs.models maps each model
//                     name the run resolved to its copy here, so a replay
//                     (harness/bundle_replay.h) reads nothing from its host
//   initial-state/    the swtpm state folder before the first TPM command
//   eventlogs/        every distinct event log the snapshots saw
//   trace.json        the run as the store holds it: run, every step whole (as run.json
//                     has it) with its commands' bytes and timing, enrollments
//   dut0/*.log        the swtpm log
//
// Extraction trusts nothing in the file: members are regular files and
// folders under the target only (no absolute paths, no "..", no links, no
// devices), the total size is capped, and every file must be listed in the
// manifest with the sha256 it has.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "drivers/status.h"

namespace tpmlab {

inline constexpr const char* kBundleFormat = "tpmlab-bundle";
inline constexpr int kBundleVersion = 1;
inline constexpr const char* kBundleManifest = "bundle.json";

struct BundleLimits {
  uint64_t max_total_bytes = uint64_t{4} << 30;  // what all members may unpack to
  uint64_t max_members = 100000;
};

/// Packs a run folder (or the folder of the run.json given) into a gzip'd tar.
/// @returns OK; kParse when the run folder lacks what a bundle needs (run.json,
/// its `inputs`, initial-state/) or its run.json does not parse; kStore when a
/// file cannot be read or the bundle cannot be written.
Status WriteBundle(const std::filesystem::path& run_dir, const std::filesystem::path& out_file);

/// Unpacks `file` into `dir` (created; it must not exist or be empty) and
/// checks every member against the manifest.
/// @returns `dir`; kParse for a damaged, hostile or inconsistent bundle — the
/// message names the member and the byte offset in the file where reading
/// stopped; kStore when `dir` cannot be written.
Result<std::filesystem::path> ExtractBundle(const std::filesystem::path& file,
                                            const std::filesystem::path& dir,
                                            const BundleLimits& limits = {});

/// The rows one run left in a results database, as JSON: the run, and each
/// step with its checks, alarms, drift, snapshot and command trace (bytes in hex).
/// @returns kStore when the database cannot be read; kParse when it holds no such run.
Result<nlohmann::json> ExportRunTrace(const std::filesystem::path& database, int64_t run_id);

/// The manifest of an extracted bundle, checked for format and version.
Result<nlohmann::json> ReadBundleManifest(const std::filesystem::path& dir);

}  // namespace tpmlab
