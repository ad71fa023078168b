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
#include "codec.h"
#include "statement.h"
#include "store_caches.h"

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


bool Get32(ByteView r, size_t& at, size_t& n) {
  if (at > r.size() || r.size() - at < 4) return false;
  n = r[at] | (r[at + 1] << 8) | (r[at + 2] << 16) | (static_cast<size_t>(r[at + 3]) << 24);
  at += 4;
  return true;
}

// The byte strings a record's JSON moved to its tail, as the hex they were.
bool ReadTail(ByteView r, size_t at, std::vector<std::string>& tail) {
  size_t count = 0;
  if (at == r.size()) return true;  // nothing moved (records written earlier on 7's way in)
  if (!Get32(r, at, count)) return false;
  for (size_t i = 0; i < count; ++i) {
    size_t n = 0;
    if (!Get32(r, at, n) || r.size() - at < n) return false;
    tail.push_back(ToHex(r.subspan(at, n)));
    at += n;
  }
  return true;
}

bool PutHexBack(json& j, std::vector<std::string>& tail) {
  if (j.is_object() && j.size() == 1 && j.contains("$bytes") && j["$bytes"].is_number_unsigned()) {
    const size_t i = j["$bytes"].get<size_t>();
    if (i >= tail.size()) return false;
    j = std::move(tail[i]);
    return true;
  }
  if (j.is_object() || j.is_array()) {
    for (auto& v : j) {
      if (!PutHexBack(v, tail)) return false;
    }
  }
  return true;
}

json ParseOrNull(const std::string& text) {
  return text.empty() ? json(nullptr) : json::parse(text, nullptr, false);
}

}  // namespace

Result<Bytes> Store::GetBlob(int64_t id) {
  const auto cached = caches_->read.find(id);
  if (cached != caches_->read.end()) return cached->second;
  Statement st(db_, "SELECT data FROM blobs WHERE id = ?");
  if (!st.ok()) return Error("prepare blob query");
  st.Int(1, id);
  if (!st.Row()) return Status::Parse(file_.string() + ": evidence " + std::to_string(id) + " is missing");
  const Bytes data = st.ColumnBlob(0).value_or(Bytes{});
  Result<Bytes> raw = store_codec::Decompress(data);
  if (!raw.ok()) return Status::Parse(file_.string() + ": evidence " + std::to_string(id) + ": " + raw.status().message());
  // A run refers to a few blobs over and over (its reference steps, one log).
  if (caches_->read.size() >= 8) caches_->read.clear();
  caches_->read[id] = *raw;
  return raw;
}

Status Store::ReadRecord(int64_t base_id, ByteView record, json& body, std::vector<TraceRecord>* trace,
                         const std::string& where) {
  Bytes base;
  if (base_id != 0) {
    TRY_ASSIGN(base, GetBlob(base_id));
  }
  Result<Bytes> raw = store_codec::Decompress(record, base);
  if (!raw.ok()) return Status::Parse(where + ": " + raw.status().message());
  const Bytes& r = *raw;
  if (r.size() < 4) return Status::Parse(where + ": stored record is cut short");
  const size_t n = r[0] | (r[1] << 8) | (r[2] << 16) | (static_cast<size_t>(r[3]) << 24);
  if (r.size() - 4 < n) return Status::Parse(where + ": stored record is cut short");
  body = json::parse(r.begin() + 4, r.begin() + 4 + static_cast<std::ptrdiff_t>(n), nullptr, false);
  if (!body.is_object()) return Status::Parse(where + ": stored record is not JSON");
  std::vector<TraceRecord> commands;
  size_t at = 4 + n;
  if (!store_codec::UnpackTrace(r, at, commands, &at)) return Status::Parse(where + ": stored command trace is cut short");
  std::vector<std::string> tail;
  if (!ReadTail(r, at, tail)) return Status::Parse(where + ": stored record is cut short");
  if (!PutHexBack(body, tail)) return Status::Parse(where + ": stored record names bytes it does not hold");
  if (trace) *trace = std::move(commands);
  return Status::Ok();
}

Result<Snapshot> Store::SnapshotOf(json& body, int64_t eventlog_id, const std::string& where) {
  if (!body.contains("snapshot") || !body["snapshot"].is_object()) {
    return Status::Parse(where + ": stored by a tpmlab too old to keep whole snapshots");
  }
  TRY_ASSIGN(Snapshot s, SnapshotFromJson(body["snapshot"], file_.parent_path(), where));
  if (eventlog_id != 0) {
    TRY_ASSIGN(s.eventlog, GetBlob(eventlog_id));
  }
  return s;
}

Result<std::vector<StoredRun>> Store::ListRuns(const RunFilter& filter) {
  Statement st(db_, "SELECT id FROM runs WHERE started_at >= ? AND dut LIKE ? AND "
                    "(? = '' OR id IN (SELECT run_id FROM step_alarms WHERE code = ?)) ORDER BY id");
  if (!st.ok()) return Error("prepare run list");
  st.Text(1, filter.since).Text(2, "%" + filter.dut + "%").Text(3, filter.alarm).Text(4, filter.alarm);
  std::vector<int64_t> ids;
  while (st.Row()) ids.push_back(sqlite3_column_int64(st.stmt(), 0));
  std::vector<StoredRun> runs;
  for (int64_t id : ids) {
    TRY_ASSIGN(StoredRun r, LoadRun(id));
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
  // Aggregates, not a walk over the steps: a soak has 100,000 of them.
  Statement counts(db_, "SELECT COUNT(*), COUNT(kind) FROM steps WHERE run_id = ?");
  if (!counts.ok()) return Error("prepare step summary");
  counts.Int(1, run_id);
  if (counts.Row()) {
    r.steps = sqlite3_column_int(counts.stmt(), 0);
    r.power_cycles = sqlite3_column_int(counts.stmt(), 1);
  }
  Statement alarms(db_, "SELECT code, COUNT(*) FROM step_alarms WHERE run_id = ? GROUP BY code");
  if (!alarms.ok()) return Error("prepare alarm summary");
  alarms.Int(1, run_id);
  while (alarms.Row()) r.alarms[alarms.ColumnText(0)] = sqlite3_column_int(alarms.stmt(), 1);
  Statement firmware(db_, "SELECT firmware FROM steps WHERE run_id = ? AND firmware IS NOT NULL ORDER BY idx");
  if (!firmware.ok()) return Error("prepare firmware summary");
  firmware.Int(1, run_id);
  while (firmware.Row()) {
    const std::string to = firmware.ColumnText(0);
    if (std::find(r.firmware.begin(), r.firmware.end(), to) == r.firmware.end()) r.firmware.push_back(to);
  }
  return r;
}

Status Store::ForEachStep(int64_t run_id, const std::function<Status(StepResult&&)>& each) {
  Statement st(db_, "SELECT steps.idx, steps.action, steps.cycle, steps.kind, steps.status, steps.started_at, "
                    "steps.duration_ms, steps.error, steps.rc, steps.base_id, steps.record, snapshots.step_id, "
                    "snapshots.eventlog_id FROM steps LEFT JOIN snapshots ON snapshots.step_id = steps.id "
                    "WHERE steps.run_id = ? ORDER BY steps.idx");
  if (!st.ok()) return Error("prepare steps query");
  st.Int(1, run_id);
  while (st.Row()) {
    sqlite3_stmt* row = st.stmt();
    StepResult s;
    s.index = sqlite3_column_int(row, 0);
    s.action = st.ColumnText(1);
    if (sqlite3_column_type(row, 2) != SQLITE_NULL) s.cycle = sqlite3_column_int(row, 2);
    s.kind = st.ColumnText(3);
    s.status = st.ColumnText(4);
    s.started_at = st.ColumnText(5);
    s.duration_ms = sqlite3_column_double(row, 6);
    s.error = st.ColumnText(7);
    if (sqlite3_column_type(row, 8) != SQLITE_NULL) s.rc = static_cast<uint32_t>(sqlite3_column_int64(row, 8));
    const std::string where = file_.string() + " run " + std::to_string(run_id) + " step " + std::to_string(s.index);
    const auto* record = static_cast<const uint8_t*>(sqlite3_column_blob(row, 10));
    json body;
    TRY(ReadRecord(sqlite3_column_int64(row, 9), ByteView(record, static_cast<size_t>(sqlite3_column_bytes(row, 10))),
                   body, &s.trace, where));
    s.checks = ChecksFromJson(body.value("checks", json()));
    for (const auto& a : body.value("alarms", json::array())) s.alarms.push_back(AlarmFromJson(a));
    for (const auto& n : body.value("not_run", json::array())) s.not_run.push_back(n.get<std::string>());
    s.drift = body.value("drift", json());
    s.golden_drift = body.value("golden", json());
    s.detail = body.value("detail", json());
    if (sqlite3_column_type(row, 11) != SQLITE_NULL) {
      TRY_ASSIGN(s.snapshot, SnapshotOf(body, sqlite3_column_int64(row, 12), where));
    }
    TRY(each(std::move(s)));
  }
  return Status::Ok();
}

}  // namespace tpmlab
