// JSON forms of snapshots and checks, shared by run.json and the store.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>

#include "harness/rules.h"
#include "harness/snapshot.h"

namespace tpmlab {

// {"sha256": {"0": "00..", ...}, ...}: bank -> PCR index as a string -> hex.
nlohmann::json PcrsToJson(const PcrValues& pcrs);
nlohmann::json ClockToJson(const ClockInfo& clock);
nlohmann::json SnapshotToJson(const Snapshot& snapshot);
// {events, bytes, sha256, replay_matches: bank -> true | [PCRs that differ]}, or null.
nlohmann::json EventlogToJson(const Snapshot& snapshot);
nlohmann::json ChecksToJson(const std::vector<Check>& checks);

/// The PCR form run.json uses (bank -> index string -> hex); PCRs not given
/// keep their reset values. `where` names the source in errors.
Result<PcrValues> PcrsFromJson(const nlohmann::json& json, const std::string& where);

/// A snapshot back from its JSON form (a run.json step's "snapshot"). The
/// quote is verified again from its bytes; the event log is read from
/// `base_dir` / its "file". Errors name `where` and the field.
Result<Snapshot> SnapshotFromJson(const nlohmann::json& json, const std::filesystem::path& base_dir,
                                  const std::string& where);

/// nlohmann::json throws when a field holds another type than tpmlab writes
/// (a hand-edited run.json with a number for a string): as a bad-input error
/// naming `where` and what nlohmann says.
Status JsonShapeError(const std::string& where, const nlohmann::json::exception& e);

/// Runs `read` (which returns a Result or a Status) with nlohmann's
/// exceptions turned into JsonShapeError(where): the boundary where a file
/// read as JSON stops being able to throw.
template <typename Read>
auto CatchingJsonErrors(const std::string& where, Read&& read) -> decltype(read()) {
  try {
    return read();
  } catch (const nlohmann::json::exception& e) {
    return JsonShapeError(where, e);
  }
}

}  // namespace tpmlab
