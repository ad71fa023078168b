// Schema 6 -> 7: steps, snapshots and commands were plain columns (the whole
// snapshot as JSON text, a row per command). Opening such a database rewrites
// each step into the compact layout, inside the migration's transaction, so
// a database is either all old or all new.
#include <sqlite3.h>

#include "harness/snapshot_json.h"
#include "harness/store.h"
#include "statement.h"
#include "store_caches.h"

namespace tpmlab {
namespace {

using nlohmann::json;

json ParseOrNull(const std::string& text) {
  return text.empty() ? json(nullptr) : json::parse(text, nullptr, false);
}


}  // namespace

Status Store::ConvertV6Rows() {
  TRY(ConvertV6Steps());
  // Only once no statement reads them: a table being read cannot be dropped.
  return Exec("DROP TABLE v6_commands; DROP TABLE v6_snapshots; DROP TABLE v6_steps;");
}

Status Store::ConvertV6Steps() {
  Statement steps(sqlite_, "SELECT v6_steps.id, run_id, idx, action, cycle, kind, status, started_at, duration_ms, "
                       "error, checks_json, alarms_json, drift_json, detail_json, rc FROM v6_steps "
                       "ORDER BY run_id, idx");
  Statement snapshot(sqlite_, "SELECT snapshot_json, eventlog FROM v6_snapshots WHERE step_id = ?");
  Statement commands(sqlite_, "SELECT seq, code, response_code, failed, duration_us, command, response "
                          "FROM v6_commands WHERE step_id = ? ORDER BY seq");
  if (!steps.ok() || !snapshot.ok() || !commands.ok()) return Status::Error(Layer::kStore, name_ + ": cannot read its schema 6 steps");
  while (steps.Row()) {
    sqlite3_stmt* row = steps.stmt();
    const int64_t step_id = sqlite3_column_int64(row, 0);
    const int64_t run_id = sqlite3_column_int64(row, 1);
    StepResult s;
    s.index = sqlite3_column_int(row, 2);
    s.action = steps.ColumnText(3);
    if (sqlite3_column_type(row, 4) != SQLITE_NULL) s.cycle = sqlite3_column_int(row, 4);
    s.kind = steps.ColumnText(5);
    s.status = steps.ColumnText(6);
    s.started_at = steps.ColumnText(7);
    s.duration_ms = sqlite3_column_double(row, 8);
    s.error = steps.ColumnText(9);
    const json checks = ParseOrNull(steps.ColumnText(10));
    if (checks.is_array()) {
      for (const auto& c : checks) s.checks.push_back({c.value("name", ""), c.value("passed", false), c.value("detail", "")});
    }
    const json alarms = ParseOrNull(steps.ColumnText(11));
    if (alarms.is_object()) {
      for (const auto& a : alarms.value("alarms", json::array())) s.alarms.push_back(AlarmFromJson(a));
      for (const auto& n : alarms.value("not_run", json::array())) s.not_run.push_back(n.get<std::string>());
    }
    const json drift = ParseOrNull(steps.ColumnText(12));
    if (drift.is_object()) {
      s.drift = drift.value("previous", json());
      s.golden_drift = drift.value("golden", json());
    }
    s.detail = ParseOrNull(steps.ColumnText(13));
    if (s.detail.is_discarded()) s.detail = nullptr;
    if (sqlite3_column_type(row, 14) != SQLITE_NULL) s.rc = static_cast<uint32_t>(sqlite3_column_int64(row, 14));

    const std::string where = file_.string() + " run " + std::to_string(run_id) + " step " + std::to_string(s.index);
    sqlite3_reset(snapshot.stmt());
    snapshot.Int(1, step_id);
    // A snapshot stored before schema 4 kept no whole JSON: its step keeps
    // the rest of what it recorded.
    if (snapshot.Row() && !snapshot.ColumnText(0).empty()) {
      json j = json::parse(snapshot.ColumnText(0), nullptr, false);
      if (j.contains("eventlog") && j["eventlog"].is_object()) j["eventlog"].erase("file");
      TRY_ASSIGN(Snapshot snap, SnapshotFromJson(j, file_.parent_path(), where));
      snap.eventlog = snapshot.ColumnBlob(1);
      s.snapshot = std::move(snap);
    }
    sqlite3_reset(commands.stmt());
    commands.Int(1, step_id);
    while (commands.Row()) {
      sqlite3_stmt* c = commands.stmt();
      TraceRecord t;
      t.sequence = static_cast<uint64_t>(sqlite3_column_int64(c, 0));
      t.command_code = static_cast<uint32_t>(sqlite3_column_int64(c, 1));
      t.response_code = static_cast<uint32_t>(sqlite3_column_int64(c, 2));
      t.failed = sqlite3_column_int(c, 3) != 0;
      t.duration = std::chrono::nanoseconds(static_cast<int64_t>(sqlite3_column_double(c, 4) * 1000.0));
      t.command = commands.ColumnBlob(5).value_or(Bytes{});
      t.response = commands.ColumnBlob(6).value_or(Bytes{});
      s.trace.push_back(std::move(t));
    }
    TRY(WriteStep(run_id, s).Wrap("converting " + where + " to schema 7"));
    if (caches_->pending) {
      caches_->references[caches_->pending->first] = std::move(caches_->pending->second);
      caches_->pending.reset();
    }
  }
  return Status::Ok();
}

}  // namespace tpmlab
