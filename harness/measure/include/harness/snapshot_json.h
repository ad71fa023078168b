// JSON forms of snapshots and checks, shared by run.json and the store.
#pragma once

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

}  // namespace tpmlab
