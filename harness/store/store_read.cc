// Reading runs back: the list `tpmlab runs` shows, and each step whole, one at
// a time, for the run files `tpmlab export` (and the end of a run) writes.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <set>
#include <sstream>

#include <soci/soci.h>

#include "harness/snapshot_json.h"
#include "harness/store.h"
#include "codec.h"
#include "store_caches.h"

namespace tpmlab {
namespace {

using nlohmann::json;
using soci::i_null;
using soci::indicator;
using soci::into;
using soci::use;

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
bool ReadTail(ByteView r, size_t& at, std::vector<std::string>& tail) {
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
  std::string data;
  try {
    const long long key = id;
    soci::statement st = (sql_->prepare << "SELECT data FROM blobs WHERE id = :i", use(key), into(data));
    if (!st.execute(true)) return Status::Parse(name_ + ": evidence " + std::to_string(id) + " is missing");
  } catch (const std::exception& e) {
    return Failed("reading evidence " + std::to_string(id), e);
  }
  TRY_ASSIGN(const Bytes compressed, BlobColumn(data));
  Result<Bytes> raw = store_codec::Decompress(compressed);
  if (!raw.ok()) return Status::Parse(name_ + ": evidence " + std::to_string(id) + ": " + raw.status().message());
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
  if (!store_codec::UnpackTraceTimes(r, at, commands)) return Status::Parse(where + ": stored command times are damaged");
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

namespace {

// "1, 2, 3" or "1 to 250" for the ids a query gives, in order.
std::string IdList(soci::session& sql, const std::string& query, std::optional<long long> run) {
  try {
    std::vector<long long> ids(4096);
    soci::statement st = run ? (sql.prepare << query, use(*run), into(ids)) : (sql.prepare << query, into(ids));
    st.execute(true);
    if (ids.empty()) return "";
    const long long lo = ids.front(), hi = ids.back(), n = static_cast<long long>(ids.size());
    if (n > 10 && hi - lo + 1 == n) return std::to_string(lo) + " to " + std::to_string(hi);
    std::string out;
    for (size_t i = 0; i < ids.size() && i < 10; ++i) out += (out.empty() ? "" : ", ") + std::to_string(ids[i]);
    if (n > 10) out += ", ... (" + std::to_string(n) + (n == 4096 ? " or more" : "") + " in all)";
    return out;
  } catch (const std::exception&) {
    return "?";
  }
}

}  // namespace

// Why a run's step has no stored snapshot: no such run, no such step, or a
// step that took none.
std::string Store::WhyNoSnapshot(int64_t run_id, int step_index) {
  try {
    const long long run = run_id;
    long long count = 0;
    *sql_ << "SELECT COUNT(*) FROM runs WHERE id = :r", use(run), into(count);
    if (count == 0) {
      const std::string runs = IdList(*sql_, "SELECT id FROM runs ORDER BY id", std::nullopt);
      return "there is no run " + std::to_string(run_id) + " in this database (" +
             (runs.empty() ? std::string("it holds no runs") : "its runs: " + runs) + ")";
    }
    *sql_ << "SELECT COUNT(*) FROM steps WHERE run_id = :r AND idx = :i", use(run), use(step_index), into(count);
    if (count == 0) {
      const std::string steps = IdList(*sql_, "SELECT idx FROM steps WHERE run_id = :r ORDER BY idx", run);
      return "run " + std::to_string(run_id) + " has no step " + std::to_string(step_index) + " (" +
             (steps.empty() ? std::string("it recorded no steps") : "its steps: " + steps) + ")";
    }
  } catch (const std::exception& e) {
    return e.what();
  }
  return "that step took no snapshot";
}

Result<Snapshot> Store::LoadSnapshot(int64_t run_id, int step_index) {
  const std::string where = name_ + " run " + std::to_string(run_id) + " step " + std::to_string(step_index);
  long long base_id = 0, eventlog_id = 0;
  std::string record;
  indicator has_base = i_null, has_log = i_null;
  try {
    const long long run = run_id;
    soci::statement st = (sql_->prepare << "SELECT steps.base_id, steps.record, snapshots.eventlog_id FROM snapshots "
                                           "JOIN steps ON snapshots.step_id = steps.id "
                                           "WHERE steps.run_id = :r AND steps.idx = :i",
                          use(run), use(step_index), into(base_id, has_base), into(record), into(eventlog_id, has_log));
    if (!st.execute(true)) return Status::Parse(where + ": " + WhyNoSnapshot(run_id, step_index));
  } catch (const std::exception& e) {
    return Failed("reading " + where, e);
  }
  json body;
  TRY_ASSIGN(const Bytes bytes, BlobColumn(record));
  TRY(ReadRecord(has_base == i_null ? 0 : base_id, bytes, body, nullptr, where));
  return SnapshotOf(body, has_log == i_null ? 0 : eventlog_id, where);
}

Result<std::optional<Enrollment>> Store::LoadEnrollment(int64_t run_id) {
  std::string text;
  try {
    const long long run = run_id;
    soci::statement st = (sql_->prepare << "SELECT enrollment_json FROM enrollments WHERE run_id = :r "
                                           "ORDER BY id DESC LIMIT 1",
                          use(run), into(text));
    if (!st.execute(true)) return std::optional<Enrollment>{};
  } catch (const std::exception& e) {
    return Failed("reading run " + std::to_string(run_id) + "'s enrollment", e);
  }
  const json j = json::parse(text, nullptr, false);
  TRY_ASSIGN(Enrollment e, EnrollmentFromJson(j, name_ + " run " + std::to_string(run_id)));
  return std::optional<Enrollment>(std::move(e));
}

Result<std::vector<StoredRun>> Store::ListRuns(const RunFilter& filter) {
  std::vector<int64_t> ids;
  try {
    const std::string dut = "%" + filter.dut + "%";
    long long id = 0;
    soci::statement st = (sql_->prepare << "SELECT id FROM runs WHERE started_at >= :s AND dut LIKE :d AND "
                                           "(CAST(:a AS TEXT) = '' OR id IN "
                                           "(SELECT run_id FROM step_alarms WHERE code = :a2)) ORDER BY id",
                          use(filter.since), use(dut), use(filter.alarm), use(filter.alarm), into(id));
    st.execute();
    while (st.fetch()) ids.push_back(id);
  } catch (const std::exception& e) {
    return Failed("listing runs", e);
  }
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
  StoredRun r;
  r.id = run_id;
  try {
    const long long run = run_id;
    long long seed = 0, pid = 0;
    // Columns a run may leave empty: read through indicators (SOCI refuses a
    // NULL into a plain value).
    std::string scenario_file, finished_at, version, host, dut, config, pid_started, outcome;
    indicator i_file, i_finished, i_version, i_host, i_dut, i_config, i_pid, i_pid_started, i_outcome;
    soci::statement st =
        (sql_->prepare << "SELECT scenario, scenario_file, seed, status, started_at, finished_at, tpmlab_version, "
                          "host, dut, config_json, pid, pid_started, outcome_json FROM runs WHERE id = :r",
         use(run), into(r.info.scenario), into(scenario_file, i_file), into(seed), into(r.status),
         into(r.info.started_at), into(finished_at, i_finished), into(version, i_version), into(host, i_host),
         into(dut, i_dut), into(config, i_config), into(pid, i_pid), into(pid_started, i_pid_started),
         into(outcome, i_outcome));
    if (!st.execute(true)) {
      long long count = 0, first = 0, last = 0;
      indicator i_first, i_last;
      *sql_ << "SELECT COUNT(*), MIN(id), MAX(id) FROM runs", into(count), into(first, i_first), into(last, i_last);
      return Status::Parse(name_ + ": there is no run " + std::to_string(run_id) + " (" +
                           (count == 0 ? std::string("it holds no runs")
                                       : "its runs: " + std::to_string(first) + " to " + std::to_string(last)) +
                           ")");
    }
    auto text = [](const std::string& v, indicator i) { return i == i_null ? std::string() : v; };
    r.info.scenario_file = text(scenario_file, i_file);
    r.info.seed = static_cast<uint64_t>(seed);
    r.finished_at = text(finished_at, i_finished);
    r.info.tpmlab_version = text(version, i_version);
    r.info.host = text(host, i_host);
    r.info.dut = text(dut, i_dut);
    r.info.config_json = text(config, i_config);
    r.info.pid = i_pid == i_null ? 0 : pid;
    r.info.pid_started = text(pid_started, i_pid_started);
    r.outcome = ParseOrNull(text(outcome, i_outcome));
    if (r.status == "running" && WriterIsGone(r)) r.status = "interrupted";

    const json config_json = ParseOrNull(r.info.config_json);
    if (config_json.is_object() && config_json.contains("scenario")) {
      const json& firmware = config_json["scenario"].value("platform", json::object()).value("firmware", json());
      if (firmware.is_object()) r.firmware.push_back(firmware.value("name", ""));
    }
    // Aggregates, not a walk over the steps: a soak has 100,000 of them.
    long long steps = 0, power_cycles = 0;
    *sql_ << "SELECT COUNT(*), COUNT(kind) FROM steps WHERE run_id = :r", use(run), into(steps), into(power_cycles);
    r.steps = static_cast<int>(steps);
    r.power_cycles = static_cast<int>(power_cycles);
    std::string code;
    long long count = 0;
    soci::statement alarms = (sql_->prepare << "SELECT code, COUNT(*) FROM step_alarms WHERE run_id = :r GROUP BY code",
                              use(run), into(code), into(count));
    alarms.execute();
    while (alarms.fetch()) r.alarms[code] = static_cast<int>(count);
    std::string to;
    soci::statement firmware = (sql_->prepare << "SELECT firmware FROM steps WHERE run_id = :r AND firmware IS NOT NULL "
                                                 "ORDER BY idx",
                                use(run), into(to));
    firmware.execute();
    while (firmware.fetch()) {
      if (std::find(r.firmware.begin(), r.firmware.end(), to) == r.firmware.end()) r.firmware.push_back(to);
    }
  } catch (const std::exception& e) {
    return Failed("reading run " + std::to_string(run_id), e);
  }
  return r;
}

namespace {

// A step row as ForEachStep reads it, before its record is unpacked.
struct StepRow {
  StepResult step;
  long long base_id = 0, eventlog_id = 0;
  bool has_snapshot = false;
  std::string record;
};

}  // namespace

Status Store::ForEachStep(int64_t run_id, const std::function<Status(StepResult&&)>& each) {
  // A page of rows at a time: memory stays flat over 100,000 steps, on
  // PostgreSQL too (whose client would otherwise hold the whole result).
  constexpr int kPage = 256;
  int after = -1;
  for (;;) {
    std::vector<StepRow> page;
    try {
      const long long run = run_id;
      int index = 0, cycle = 0;
      long long rc = 0, base_id = 0, snapshot_step = 0, eventlog_id = 0;
      double duration_ms = 0;
      std::string action, kind, status, started_at, error, record;
      indicator i_cycle, i_kind, i_duration, i_error, i_rc, i_base, i_snapshot, i_log;
      soci::statement st =
          (sql_->prepare << "SELECT steps.idx, steps.action, steps.cycle, steps.kind, steps.status, steps.started_at, "
                            "steps.duration_ms, steps.error, steps.rc, steps.base_id, steps.record, snapshots.step_id, "
                            "snapshots.eventlog_id FROM steps LEFT JOIN snapshots ON snapshots.step_id = steps.id "
                            "WHERE steps.run_id = :r AND steps.idx > :after ORDER BY steps.idx LIMIT " +
                                std::to_string(kPage),
           use(run), use(after), into(index), into(action), into(cycle, i_cycle), into(kind, i_kind), into(status),
           into(started_at), into(duration_ms, i_duration), into(error, i_error), into(rc, i_rc),
           into(base_id, i_base), into(record), into(snapshot_step, i_snapshot), into(eventlog_id, i_log));
      st.execute();
      while (st.fetch()) {
        StepRow row;
        StepResult& s = row.step;
        s.index = index;
        s.action = action;
        if (i_cycle != i_null) s.cycle = cycle;
        if (i_kind != i_null) s.kind = kind;
        s.status = status;
        s.started_at = started_at;
        s.duration_ms = i_duration == i_null ? 0 : duration_ms;
        if (i_error != i_null) s.error = error;
        if (i_rc != i_null) s.rc = static_cast<uint32_t>(rc);
        row.base_id = i_base == i_null ? 0 : base_id;
        row.has_snapshot = i_snapshot != i_null;
        row.eventlog_id = i_log == i_null ? 0 : eventlog_id;
        row.record = std::move(record);
        page.push_back(std::move(row));
      }
    } catch (const std::exception& e) {
      return Failed("reading run " + std::to_string(run_id) + "'s steps", e);
    }
    for (auto& row : page) {
      StepResult& s = row.step;
      const std::string where = name_ + " run " + std::to_string(run_id) + " step " + std::to_string(s.index);
      json body;
      TRY_ASSIGN(const Bytes record, BlobColumn(row.record));
      TRY(ReadRecord(row.base_id, record, body, &s.trace, where));
      s.checks = ChecksFromJson(body.value("checks", json()));
      for (const auto& a : body.value("alarms", json::array())) s.alarms.push_back(AlarmFromJson(a));
      for (const auto& n : body.value("not_run", json::array())) s.not_run.push_back(n.get<std::string>());
      s.drift = body.value("drift", json());
      s.golden_drift = body.value("golden", json());
      s.detail = body.value("detail", json());
      if (row.has_snapshot) {
        TRY_ASSIGN(s.snapshot, SnapshotOf(body, row.eventlog_id, where));
      }
      after = s.index;
      TRY(each(std::move(s)));
    }
    if (page.size() < static_cast<size_t>(kPage)) return Status::Ok();
  }
}

}  // namespace tpmlab
