// Reading runs back: the list `tpmlab runs` shows, and each step whole, one at
// a time, for the run files `tpmlab export` (and the end of a run) writes.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <set>
#include <sstream>

#include "harness/snapshot_json.h"
#include "harness/store.h"
#include "statement.h"

namespace tpmlab {
namespace {

using nlohmann::json;

std::string ThisHost() {
  char name[256] = {};
  return ::gethostname(name, sizeof(name) - 1) == 0 ? name : "";
}

// Field 22 of /proc/PID/stat: when the process started, in clock ticks since
// boot. With the pid it names one process, even after the pid is reused.
std::string ProcessStarted(int64_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t name_end = stat.rfind(')');  // the command name may hold spaces
  if (name_end == std::string::npos) return "";
  std::istringstream fields(stat.substr(name_end + 2));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
    if (i == 22) return field;
  }
  return "";
}

// A `running` run is only running while its process lives; one killed (or
// lost with its machine) never finished. Runs of other hosts cannot be told.
bool WriterIsGone(const StoredRun& r) {
  if (r.info.pid <= 0 || r.info.host != ThisHost()) return false;
  if (::kill(static_cast<pid_t>(r.info.pid), 0) != 0 && errno == ESRCH) return true;
  return !r.info.pid_started.empty() && ProcessStarted(r.info.pid) != r.info.pid_started;
}

std::vector<Check> ChecksFromJson(const json& j) {
  std::vector<Check> out;
  if (!j.is_array()) return out;
  for (const auto& c : j) out.push_back({c.value("name", ""), c.value("passed", false), c.value("detail", "")});
  return out;
}

Alarm AlarmFromJson(const json& j) {
  Alarm a;
  a.code = j.value("code", "");
  const std::string severity = j.value("severity", "error");
  a.severity = severity == "info" ? Severity::kInfo : severity == "warning" ? Severity::kWarning : Severity::kError;
  a.message = j.value("message", "");
  if (j.contains("evidence") && j["evidence"].is_object()) {
    for (const auto& [k, v] : j["evidence"].items()) a.evidence[k] = v.is_string() ? v.get<std::string>() : v.dump();
  }
  return a;
}

json ParseOrNull(const std::string& text) {
  return text.empty() ? json(nullptr) : json::parse(text, nullptr, false);
}

}  // namespace

Result<std::vector<StoredRun>> Store::ListRuns(const RunFilter& filter) {
  Statement st(db_, "SELECT id FROM runs WHERE started_at >= ? AND dut LIKE ? ORDER BY id");
  if (!st.ok()) return Error("prepare run list");
  st.Text(1, filter.since).Text(2, "%" + filter.dut + "%");
  std::vector<int64_t> ids;
  while (st.Row()) ids.push_back(sqlite3_column_int64(st.stmt(), 0));
  std::vector<StoredRun> runs;
  for (int64_t id : ids) {
    TRY_ASSIGN(StoredRun r, LoadRun(id));
    if (!filter.alarm.empty() && !r.alarms.count(filter.alarm)) continue;
    if (!filter.firmware.empty() &&
        std::find(r.firmware.begin(), r.firmware.end(), filter.firmware) == r.firmware.end()) {
      continue;
    }
    runs.push_back(std::move(r));
  }
  return runs;
}

Result<StoredRun> Store::LoadRun(int64_t run_id) {
  Statement st(db_, "SELECT scenario, scenario_file, seed, status, started_at, finished_at, tpmlab_version, "
                    "host, dut, config_json, pid, pid_started, outcome_json FROM runs WHERE id = ?");
  if (!st.ok()) return Error("prepare run query");
  st.Int(1, run_id);
  if (!st.Row()) {
    Statement all(db_, "SELECT COUNT(*), MIN(id), MAX(id) FROM runs");
    std::string held = "it holds no runs";
    if (all.ok() && all.Row() && sqlite3_column_int64(all.stmt(), 0) > 0) {
      held = "its runs: " + all.ColumnText(1) + " to " + all.ColumnText(2);
    }
    return Status::Parse(file_.string() + ": there is no run " + std::to_string(run_id) + " (" + held + ")");
  }
  StoredRun r;
  r.id = run_id;
  r.info.scenario = st.ColumnText(0);
  r.info.scenario_file = st.ColumnText(1);
  r.info.seed = static_cast<uint64_t>(sqlite3_column_int64(st.stmt(), 2));
  r.status = st.ColumnText(3);
  r.info.started_at = st.ColumnText(4);
  r.finished_at = st.ColumnText(5);
  r.info.tpmlab_version = st.ColumnText(6);
  r.info.host = st.ColumnText(7);
  r.info.dut = st.ColumnText(8);
  r.info.config_json = st.ColumnText(9);
  r.info.pid = sqlite3_column_int64(st.stmt(), 10);
  r.info.pid_started = st.ColumnText(11);
  r.outcome = ParseOrNull(st.ColumnText(12));
  if (r.status == "running" && WriterIsGone(r)) r.status = "interrupted";

  const json config = ParseOrNull(r.info.config_json);
  if (config.is_object() && config.contains("scenario")) {
    const json& firmware = config["scenario"].value("platform", json::object()).value("firmware", json());
    if (firmware.is_object()) r.firmware.push_back(firmware.value("name", ""));
  }
  Statement steps(db_, "SELECT kind, alarms_json, detail_json FROM steps WHERE run_id = ? ORDER BY idx");
  if (!steps.ok()) return Error("prepare step summary");
  steps.Int(1, run_id);
  while (steps.Row()) {
    ++r.steps;
    if (!steps.ColumnText(0).empty()) ++r.power_cycles;
    const json alarms = ParseOrNull(steps.ColumnText(1));
    std::set<std::string> codes;
    if (alarms.is_object() && alarms.contains("alarms")) {
      for (const auto& a : alarms["alarms"]) codes.insert(a.value("code", ""));
    }
    for (const auto& c : codes) r.alarms[c]++;
    const json detail = ParseOrNull(steps.ColumnText(2));
    if (detail.is_object() && detail.contains("platform") && detail["platform"].contains("to")) {
      const std::string to = detail["platform"]["to"].get<std::string>();
      if (std::find(r.firmware.begin(), r.firmware.end(), to) == r.firmware.end()) r.firmware.push_back(to);
    }
  }
  return r;
}

Status Store::ForEachStep(int64_t run_id, const std::function<Status(StepResult&&)>& each) {
  Statement st(db_, "SELECT id, idx, action, cycle, kind, status, started_at, duration_ms, error, checks_json, "
                    "alarms_json, drift_json, detail_json, rc FROM steps WHERE run_id = ? ORDER BY idx");
  if (!st.ok()) return Error("prepare steps query");
  st.Int(1, run_id);
  Statement commands(db_, "SELECT seq, code, response_code, failed, duration_us, command, response "
                          "FROM commands WHERE step_id = ? ORDER BY seq");
  if (!commands.ok()) return Error("prepare commands query");
  Statement has_snapshot(db_, "SELECT 1 FROM snapshots WHERE step_id = ?");
  if (!has_snapshot.ok()) return Error("prepare snapshot check");
  while (st.Row()) {
    sqlite3_stmt* row = st.stmt();
    const int64_t step_id = sqlite3_column_int64(row, 0);
    StepResult s;
    s.index = sqlite3_column_int(row, 1);
    s.action = st.ColumnText(2);
    if (sqlite3_column_type(row, 3) != SQLITE_NULL) s.cycle = sqlite3_column_int(row, 3);
    s.kind = st.ColumnText(4);
    s.status = st.ColumnText(5);
    s.started_at = st.ColumnText(6);
    s.duration_ms = sqlite3_column_double(row, 7);
    s.error = st.ColumnText(8);
    s.checks = ChecksFromJson(ParseOrNull(st.ColumnText(9)));
    const json alarms = ParseOrNull(st.ColumnText(10));
    if (alarms.is_object()) {
      for (const auto& a : alarms.value("alarms", json::array())) s.alarms.push_back(AlarmFromJson(a));
      for (const auto& n : alarms.value("not_run", json::array())) s.not_run.push_back(n.get<std::string>());
    }
    const json drift = ParseOrNull(st.ColumnText(11));
    if (drift.is_object()) {
      s.drift = drift.value("previous", json());
      s.golden_drift = drift.value("golden", json());
    }
    s.detail = ParseOrNull(st.ColumnText(12));
    if (sqlite3_column_type(row, 13) != SQLITE_NULL) s.rc = static_cast<uint32_t>(sqlite3_column_int64(row, 13));

    sqlite3_reset(has_snapshot.stmt());
    has_snapshot.Int(1, step_id);
    if (has_snapshot.Row()) {
      TRY_ASSIGN(s.snapshot, LoadSnapshot(run_id, s.index));
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
    TRY(each(std::move(s)));
  }
  return Status::Ok();
}

}  // namespace tpmlab
