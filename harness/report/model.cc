// The report's model, built in one pass over a run's steps. Everything kept
// is bounded: per-bucket aggregates (at most ReportLimits::points buckets),
// latency histograms with fixed log bins, capped lists that count what they
// leave out. A 100,000-step run costs what a 1,000-step one does.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <unordered_map>

#include "harness/report.h"
#include "harness/tpm_types.h"

namespace tpmlab {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// One command's latency: exact count/min/max/mean; percentiles from log
// bins 2% wide (bounded memory; a percentile is within 1% of the truth).
struct LatencyStats {
  uint64_t count = 0;
  double sum = 0, min = 0, max = 0;
  std::map<int, uint64_t> bins;
  void Add(double us);
  double Percentile(double p) const;
};

// ---- latency: exact count/min/max/mean, percentiles from log bins 2% wide ----

constexpr double kBinRatio = 1.02;

int LatencyBin(double us) { return static_cast<int>(std::floor(std::log(std::max(us, 0.01)) / std::log(kBinRatio))); }

void LatencyStats::Add(double us) {
  ++count;
  sum += us;
  min = count == 1 ? us : std::min(min, us);
  max = std::max(max, us);
  ++bins[LatencyBin(us)];
}

double LatencyStats::Percentile(double p) const {
  if (count == 0) return 0;
  const double wanted = p * static_cast<double>(count);
  uint64_t seen = 0;
  for (const auto& [bin, n] : bins) {
    seen += n;
    if (static_cast<double>(seen) >= wanted) {
      // The bin's geometric middle, never outside what was seen.
      return std::clamp(std::pow(kBinRatio, bin + 0.5), min, max);
    }
  }
  return max;
}


// One bucket of consecutive steps.
struct Bucket {
  int first = -1, last = -1, steps = 0, snapshots = 0, unsafe = 0, failed = 0;
  std::optional<uint64_t> clock_min, clock_max;
  std::optional<uint32_t> reset_min, reset_max, restart_min, restart_max;
  std::map<std::string, int> kinds, alarms;
  std::map<std::string, std::pair<double, double>> latency_sum_max;  // command -> (sum µs, max µs)
  std::map<std::string, int> latency_count;
};

template <typename T>
void Widen(std::optional<T>& lo, std::optional<T>& hi, T v) {
  lo = lo ? std::min(*lo, v) : v;
  hi = hi ? std::max(*hi, v) : v;
}

template <typename T>
json OrNull(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

// Columnar series: one array per measure, one entry per bucket.
struct Series {
  json first = json::array(), last = json::array(), steps = json::array(), clock_min = json::array(),
       clock_max = json::array(), reset_min = json::array(), reset_max = json::array(),
       restart_min = json::array(), restart_max = json::array(), unsafe = json::array(),
       snapshots = json::array(), failed = json::array();
  std::map<std::string, json> kinds, alarms;                 // name -> [[bucket, count], ...]
  std::map<std::string, std::pair<json, json>> latency;      // command -> (mean[], max[]) sparse pairs
  int buckets = 0;

  void Flush(const Bucket& b) {
    if (b.steps == 0) return;
    const int at = buckets++;
    first.push_back(b.first);
    last.push_back(b.last);
    steps.push_back(b.steps);
    clock_min.push_back(OrNull(b.clock_min));
    clock_max.push_back(OrNull(b.clock_max));
    reset_min.push_back(OrNull(b.reset_min));
    reset_max.push_back(OrNull(b.reset_max));
    restart_min.push_back(OrNull(b.restart_min));
    restart_max.push_back(OrNull(b.restart_max));
    unsafe.push_back(b.unsafe);
    snapshots.push_back(b.snapshots);
    failed.push_back(b.failed);
    for (const auto& [k, n] : b.kinds) kinds[k].push_back({at, n});
    for (const auto& [k, n] : b.alarms) alarms[k].push_back({at, n});
    for (const auto& [cmd, sm] : b.latency_sum_max) {
      auto& [mean, max] = latency[cmd];
      mean.push_back({at, std::round(sm.first / b.latency_count.at(cmd) * 10) / 10});
      max.push_back({at, std::round(sm.second * 10) / 10});
    }
  }

  json ToJson() const {
    json lat = json::object();
    for (const auto& [cmd, mm] : latency) lat[cmd] = {{"mean", mm.first}, {"max", mm.second}};
    return {{"buckets", buckets}, {"first", first}, {"last", last}, {"steps", steps},
            {"clock_min", clock_min}, {"clock_max", clock_max}, {"reset_min", reset_min},
            {"reset_max", reset_max}, {"restart_min", restart_min}, {"restart_max", restart_max},
            {"unsafe", unsafe}, {"snapshots", snapshots}, {"failed", failed}, {"kinds", kinds},
            {"alarms", alarms}, {"latency", lat}};
  }
};

struct AlarmGroup {
  std::string severity;
  int count = 0, first_step = -1, last_step = -1;
  json list = json::array();
};

struct CheckTally {
  int passed = 0, failed = 0;
  json failures = json::array();
};

struct CauseTally {
  int count = 0, first_step = -1, last_step = -1;
  std::set<std::string> details;  // the first few distinct
};

std::string FirmwareVersionText(uint64_t v) {
  return std::to_string(v >> 48) + "." + std::to_string((v >> 32) & 0xffff) + "." + std::to_string((v >> 16) & 0xffff) +
         "." + std::to_string(v & 0xffff);
}

// The PCRs a drift says moved, per bank; empty when none.
std::map<std::string, std::vector<int>> MovedPcrs(const json& drift) {
  std::map<std::string, std::vector<int>> out;
  if (!drift.is_object() || !drift.contains("pcrs") || !drift["pcrs"].is_object()) return out;
  for (const auto& [bank, pcrs] : drift["pcrs"].items()) {
    if (!pcrs.is_array() || pcrs.empty()) continue;
    for (const auto& p : pcrs) out[bank].push_back(p.get<int>());
  }
  return out;
}

bool HasEvents(const json& drift) {
  return drift.is_object() && drift.contains("events") && drift["events"].is_array() && !drift["events"].empty();
}

class ModelBuilder {
 public:
  ModelBuilder(const StoredRun& run, const ReportOptions& options)
      : run_(run), limits_(options.limits),
        bucket_size_(std::max(1, (run.steps + limits_.points - 1) / std::max(1, limits_.points))) {}

  Status Add(StepResult&& s) {
    if (bucket_.steps == bucket_size_) {
      series_.Flush(bucket_);
      bucket_ = Bucket{};
    }
    ++seen_;
    if (bucket_.first < 0) bucket_.first = s.index;
    bucket_.last = s.index;
    ++bucket_.steps;
    if (s.status != "passed") ++bucket_.failed;
    ++actions_[s.action];
    if (!s.kind.empty()) {
      ++bucket_.kinds[s.kind];
      ++kinds_[s.kind];
    }
    AddSnapshot(s);
    AddTrace(s);
    AddAlarms(s);
    AddChecks(s);
    AddDrift(s);
    AddNotes(s);
    return Status::Ok();
  }

  json Finish(const ReportOptions& options) {
    series_.Flush(bucket_);
    json model;
    model["run"] = RunHeader();
    model["bucket_size"] = bucket_size_;
    model["steps"] = {{"total", seen_}, {"actions", actions_}, {"kinds", kinds_}};
    model["series"] = series_.ToJson();
    model["latency"] = LatencyTable();
    model["alarms"] = AlarmsJson();
    model["grid"] = GridJson();
    model["causes"] = CausesJson();
    model["expectations"] = run_.outcome.is_object() ? run_.outcome.value("expectations", json::array()) : json::array();
    model["checks"] = ChecksJson();
    model["notes"] = {{"total", notes_total_}, {"by_type", note_types_}, {"list", notes_}};
    model["files"] = FilesJson(options);
    model["limits"] = {{"points", limits_.points}, {"alarms_per_code", limits_.alarms_per_code},
                       {"grid_boots", limits_.grid_boots}, {"drifts", limits_.drifts},
                       {"events_per_drift", limits_.events_per_drift}, {"notes", limits_.notes}};
    return model;
  }

 private:
  void AddSnapshot(const StepResult& s) {
    if (!s.snapshot) return;
    const ClockInfo& c = s.snapshot->clock();
    ++bucket_.snapshots;
    Widen(bucket_.clock_min, bucket_.clock_max, c.clock_ms);
    Widen(bucket_.reset_min, bucket_.reset_max, c.reset_count);
    Widen(bucket_.restart_min, bucket_.restart_max, c.restart_count);
    if (!c.safe) ++bucket_.unsafe;
    if (tpm_firmware_.empty() && s.snapshot->properties.firmware_version != 0) {
      tpm_firmware_ = s.snapshot->properties.manufacturer + " " +
                      FirmwareVersionText(s.snapshot->properties.firmware_version);
    }
  }

  void AddTrace(const StepResult& s) {
    for (const auto& r : s.trace) {
      const double us = std::chrono::duration<double, std::micro>(r.duration).count();
      auto name = names_.find(r.command_code);
      if (name == names_.end()) name = names_.emplace(r.command_code, TpmCommandName(r.command_code)).first;
      latency_[name->second].Add(us);
      if (r.failed || r.response_code != 0) ++command_errors_[name->second];
      auto& sm = bucket_.latency_sum_max[name->second];
      sm.first += us;
      sm.second = std::max(sm.second, us);
      ++bucket_.latency_count[name->second];
    }
  }

  void AddAlarms(const StepResult& s) {
    for (const auto& a : s.alarms) {
      AlarmGroup& g = alarms_[a.code];
      if (g.count == 0) {
        g.first_step = s.index;
        g.severity = SeverityName(a.severity);
      }
      ++g.count;
      g.last_step = s.index;
      ++bucket_.alarms[a.code];
      if (static_cast<int>(g.list.size()) < limits_.alarms_per_code) {
        json one = AlarmToJson(a);
        one["step"] = s.index;
        g.list.push_back(std::move(one));
      }
    }
  }

  void AddChecks(const StepResult& s) {
    for (const auto& c : s.checks) {
      CheckTally& t = checks_[c.name];
      if (c.passed) {
        ++t.passed;
        continue;
      }
      ++t.failed;
      if (static_cast<int>(t.failures.size()) < limits_.notes) t.failures.push_back({{"step", s.index}, {"detail", c.detail}});
    }
  }

  // The drift's id in the shared table (identical drifts are kept once:
  // every boot after a firmware update differs from golden the same way).
  json DriftId(const json& drift) {
    if (!HasEvents(drift) && MovedPcrs(drift).empty()) return nullptr;
    json kept = drift;
    if (HasEvents(kept) && static_cast<int>(kept["events"].size()) > limits_.events_per_drift) {
      kept["events_total"] = kept["events"].size();
      kept["events"].erase(kept["events"].begin() + limits_.events_per_drift, kept["events"].end());
    }
    std::string key = kept.dump();
    auto found = drift_ids_.find(key);
    if (found != drift_ids_.end()) return found->second;
    if (static_cast<int>(drifts_.size()) >= limits_.drifts) {
      ++drifts_dropped_;
      return nullptr;
    }
    const int id = static_cast<int>(drifts_.size());
    drifts_.push_back(std::move(kept));
    drift_ids_.emplace(std::move(key), id);
    return id;
  }

  void TallyCauses(const json& drift, const std::string& against, int step) {
    if (!drift.is_object() || !drift.contains("causes")) return;
    for (const auto& c : drift["causes"]) {
      CauseTally& t = causes_[{against, c.value("code", "")}];
      if (t.count++ == 0) t.first_step = step;
      t.last_step = step;
      if (t.details.size() < 5) {
        const int pcr = c.value("pcr", -1);
        t.details.insert((pcr >= 0 ? "PCR" + std::to_string(pcr) + " " : std::string()) + c.value("detail", ""));
      }
    }
  }

  void AddDrift(const StepResult& s) {
    if (!s.drift.is_null() || !s.golden_drift.is_null()) ++boots_compared_;
    TallyCauses(s.drift, "previous", s.index);
    TallyCauses(s.golden_drift, "golden", s.index);
    const auto prev = MovedPcrs(s.drift), golden = MovedPcrs(s.golden_drift);
    if (prev.empty() && golden.empty() && !HasEvents(s.drift) && !HasEvents(s.golden_drift)) return;
    ++boots_changed_;
    for (const auto& [bank, pcrs] : prev) columns_[bank].insert(pcrs.begin(), pcrs.end());
    for (const auto& [bank, pcrs] : golden) columns_[bank].insert(pcrs.begin(), pcrs.end());
    if (static_cast<int>(grid_.size()) >= limits_.grid_boots) {
      ++grid_dropped_;
      return;
    }
    json row = {{"step", s.index}, {"action", s.action}, {"prev", prev}, {"golden", golden},
                {"drift", DriftId(s.drift)}, {"golden_drift", DriftId(s.golden_drift)}};
    if (s.cycle) row["cycle"] = *s.cycle;
    if (!s.kind.empty()) row["kind"] = s.kind;
    grid_.push_back(std::move(row));
  }

  void Note(const StepResult& s, const std::string& type, json what) {
    ++notes_total_;
    ++note_types_[type];
    if (static_cast<int>(notes_.size()) >= limits_.notes) return;
    json note = {{"step", s.index}, {"action", s.action}, {"type", type}, {"what", std::move(what)}};
    if (!s.kind.empty()) note["kind"] = s.kind;
    notes_.push_back(std::move(note));
  }

  void AddNotes(const StepResult& s) {
    if (!s.error.empty()) Note(s, "error", s.error);
    if (!s.detail.is_object()) return;
    for (const char* key : {"faults_injected", "power_cut", "cut_at_command"}) {
      if (s.detail.contains(key)) Note(s, "fault", {{key, s.detail[key]}});
    }
    if (s.detail.contains("platform")) Note(s, "platform_firmware", s.detail["platform"]);
    if (s.detail.contains("tpm")) Note(s, "tpm_firmware", s.detail["tpm"]);
    if (s.detail.contains("clock_set_ms")) {
      Note(s, "clock_set", {{"before_ms", s.detail.value("clock_before_ms", json())}, {"set_ms", s.detail["clock_set_ms"]}});
    }
  }

  json RunHeader() const {
    const json config = json::parse(run_.info.config_json, nullptr, false);
    const json scenario = config.is_object() ? config.value("scenario", json::object()) : json::object();
    json dut = run_.outcome.is_object() ? run_.outcome.value("dut", json()) : json();
    if (dut.is_null() && config.is_object()) dut = config.value("dut", json());
    std::string bench = "none (emulated DUT)";
    if (scenario.is_object() && scenario.contains("bench") && scenario["bench"].is_string()) {
      bench = scenario["bench"].get<std::string>();
    } else if (dut.is_object() && dut.contains("bench") && dut["bench"].is_string()) {
      bench = dut["bench"].get<std::string>();
    }
    const std::string error = run_.outcome.is_object() ? run_.outcome.value("error", "") : "";
    return {{"id", run_.id},
            {"scenario", run_.info.scenario},
            {"scenario_file", run_.info.scenario_file},
            {"seed", std::to_string(run_.info.seed)},  // a string: JavaScript numbers stop at 2^53
            {"status", run_.status},
            {"error", error},
            {"started_at", run_.info.started_at},
            {"finished_at", run_.finished_at},
            {"host", run_.info.host},
            {"tpmlab_version", run_.info.tpmlab_version},
            {"dut", run_.info.dut},
            {"dut_detail", dut},
            {"bench", bench},
            {"platform_firmware", run_.firmware},
            {"tpm_firmware", tpm_firmware_},
            {"steps", run_.steps},
            {"power_cycles", run_.power_cycles}};
  }

  json LatencyTable() const {
    json rows = json::array();
    for (const auto& [name, st] : latency_) {
      auto round1 = [](double v) { return std::round(v * 10) / 10; };
      const auto errors = command_errors_.find(name);
      rows.push_back({{"command", name}, {"count", st.count}, {"min_us", round1(st.min)},
                      {"mean_us", round1(st.sum / static_cast<double>(st.count))}, {"p50_us", round1(st.Percentile(0.5))},
                      {"p90_us", round1(st.Percentile(0.9))}, {"p99_us", round1(st.Percentile(0.99))},
                      {"max_us", round1(st.max)}, {"errors", errors == command_errors_.end() ? 0 : errors->second}});
    }
    std::sort(rows.begin(), rows.end(), [](const json& a, const json& b) { return a["count"] > b["count"]; });
    return rows;
  }

  json AlarmsJson() const {
    json groups = json::array();
    int total = 0;
    for (const auto& [code, g] : alarms_) {
      total += g.count;
      groups.push_back({{"code", code}, {"severity", g.severity}, {"count", g.count}, {"first_step", g.first_step},
                        {"last_step", g.last_step}, {"list", g.list},
                        {"left_out", g.count - static_cast<int>(g.list.size())}});
    }
    return {{"total", total}, {"groups", groups}};
  }

  json GridJson() const {
    json columns = json::object();
    for (const auto& [bank, pcrs] : columns_) columns[bank] = std::vector<int>(pcrs.begin(), pcrs.end());
    return {{"boots_compared", boots_compared_}, {"boots_changed", boots_changed_}, {"columns", columns},
            {"rows", grid_}, {"rows_left_out", grid_dropped_}, {"drifts", drifts_},
            {"drifts_left_out", drifts_dropped_}};
  }

  json CausesJson() const {
    json out = json::array();
    for (const auto& [key, t] : causes_) {
      out.push_back({{"against", key.first}, {"code", key.second}, {"count", t.count}, {"first_step", t.first_step},
                     {"last_step", t.last_step}, {"details", t.details}});
    }
    return out;
  }

  json ChecksJson() const {
    json out = json::array();
    for (const auto& [name, t] : checks_) {
      out.push_back({{"name", name}, {"passed", t.passed}, {"failed", t.failed}, {"failures", t.failures}});
    }
    return out;
  }

  static json FilesJson(const ReportOptions& options) {
    json files = json::array();
    if (options.run_dir.empty()) return files;
    std::error_code ec;
    const fs::path run_dir = fs::absolute(options.run_dir, ec);
    const fs::path out_dir = fs::absolute(options.output_dir.empty() ? options.run_dir : options.output_dir, ec);
    std::vector<fs::path> entries;
    for (fs::directory_iterator it(run_dir, ec), end; !ec && it != end; it.increment(ec)) entries.push_back(it->path());
    std::sort(entries.begin(), entries.end());
    for (const auto& p : entries) {
      const std::string name = p.filename().string();
      if (name == "report.html" || name.starts_with(".") || name.ends_with(".tmp") || name.ends_with("-wal") || name.ends_with("-shm")) continue;
      const bool dir = fs::is_directory(p, ec);
      files.push_back({{"name", name + (dir ? "/" : "")},
                       {"href", p.lexically_relative(out_dir).generic_string() + (dir ? "/" : "")},
                       {"bytes", dir ? json(nullptr) : json(fs::file_size(p, ec))}});
    }
    return files;
  }

  const StoredRun& run_;
  ReportLimits limits_;
  int bucket_size_;
  int seen_ = 0;
  Bucket bucket_;
  Series series_;
  std::map<std::string, int> actions_, kinds_;
  std::string tpm_firmware_;
  std::unordered_map<uint32_t, std::string> names_;
  std::map<std::string, LatencyStats> latency_;
  std::map<std::string, int> command_errors_;
  std::map<std::string, AlarmGroup> alarms_;
  std::map<std::string, CheckTally> checks_;
  std::map<std::pair<std::string, std::string>, CauseTally> causes_;
  std::map<std::string, std::set<int>> columns_;
  json grid_ = json::array(), drifts_ = json::array(), notes_ = json::array();
  std::unordered_map<std::string, int> drift_ids_;
  int boots_compared_ = 0, boots_changed_ = 0, grid_dropped_ = 0, drifts_dropped_ = 0, notes_total_ = 0;
  std::map<std::string, int> note_types_;
};

}  // namespace

Result<json> BuildReportModel(Store& store, int64_t run_id, const ReportOptions& options) {
  TRY_ASSIGN(const StoredRun run, store.LoadRun(run_id));
  ModelBuilder builder(run, options);
  int read = 0;
  TRY(store.ForEachStep(run_id, [&](StepResult&& s) -> Status {
    if (options.progress && ++read % 250 == 0) options.progress(read, run.steps);
    return builder.Add(std::move(s));
  }));
  if (options.progress) options.progress(run.steps, run.steps);
  return builder.Finish(options);
}

}  // namespace tpmlab
