// Reading one run for a comparison: where it is (a folder, a run.json, a
// database), and one pass over its steps into a RunDigest whose size does
// not depend on the run's length.
#include <cmath>
#include <fstream>
#include <set>

#include "harness/compare.h"
#include "harness/tpm_types.h"

namespace tpmlab {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

Status BadInput(const std::string& message) { return Status::Parse(message).WithKind(ErrorKind::kBadInput); }

// Reads run.json's top-level "database" and "run_id" and stops at "steps":
// a 100,000-step run.json is never read whole.
class RunJsonHeader : public nlohmann::json_sax<json> {
 public:
  std::optional<std::string> database;
  std::optional<int64_t> run_id;
  bool reached_steps = false;

  bool null() override { return Value(json()); }
  bool boolean(bool v) override { return Value(v); }
  bool number_integer(number_integer_t v) override { return Value(v); }
  bool number_unsigned(number_unsigned_t v) override { return Value(v); }
  bool number_float(number_float_t v, const string_t&) override { return Value(v); }
  bool string(string_t& v) override { return Value(v); }
  bool binary(binary_t&) override { return Value(json()); }
  bool start_object(std::size_t) override { return Open(); }
  bool end_object() override { return Close(); }
  bool start_array(std::size_t) override { return Open(); }
  bool end_array() override { return Close(); }
  bool key(string_t& k) override {
    if (depth_ == 1) {
      key_ = k;
      if (k == "steps") {
        reached_steps = true;
        return false;  // everything needed comes before (keys are sorted)
      }
    }
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

 private:
  bool Open() {
    ++depth_;
    return true;
  }
  bool Close() {
    --depth_;
    return true;
  }
  bool Value(const json& v) {
    if (depth_ != 1) return true;
    if (key_ == "database" && v.is_string()) database = v.get<std::string>();
    if (key_ == "run_id" && v.is_number_integer()) run_id = v.get<int64_t>();
    return true;
  }
  int depth_ = 0;
  std::string key_;
};

Result<RunLocation> FromRunJson(const std::string& source, const fs::path& run_json) {
  std::ifstream in(run_json, std::ios::binary);
  if (!in) return BadInput(run_json.string() + ": cannot read");
  RunJsonHeader header;
  json::sax_parse(in, &header);
  if (!header.run_id) {
    return BadInput(run_json.string() + ": not a tpmlab run.json (no run_id naming its run in a database)");
  }
  // The database run.json names, or the one beside it when the folder was moved.
  std::error_code ec;
  std::string db = header.database.value_or("");
  if (!IsDatabaseUrl(db) && (db.empty() || !fs::is_regular_file(db, ec))) {
    const fs::path beside = run_json.parent_path() / "tpmlab.db";
    if (!fs::is_regular_file(beside, ec)) {
      return BadInput(run_json.string() + ": its database " + (db.empty() ? std::string("?") : db) +
                      " is gone, and there is no tpmlab.db beside it");
    }
    db = beside.string();
  }
  return RunLocation{source, db, header.run_id};
}

}  // namespace

Result<RunLocation> LocateRun(const std::string& source) {
  std::error_code ec;
  if (source.empty()) return BadInput("name a run: RUN_DIR, RUN_DIR/run.json or DB[:RUN]");
  if (fs::is_directory(source, ec)) {
    const fs::path dir = source;
    if (fs::is_regular_file(dir / "run.json", ec)) return FromRunJson(source, dir / "run.json");
    if (fs::is_regular_file(dir / "fleet.json", ec)) {
      return BadInput(source + ": a fleet's folder; name one DUT's run folder in it (" + (dir / "dut0").string() + ")");
    }
    if (fs::is_regular_file(dir / "tpmlab.db", ec)) return RunLocation{source, (dir / "tpmlab.db").string(), {}};
    return BadInput(source + ": no run.json or tpmlab.db in this folder");
  }
  if (source.ends_with(".json") && fs::is_regular_file(source, ec)) return FromRunJson(source, source);
  // DB or DB:RUN (a database file whose own name has a colon is taken whole;
  // in a URL, a run follows its path: postgresql://host:5432 names no run).
  RunLocation where{source, source, {}};
  const size_t colon = source.rfind(':');
  if (!fs::exists(source, ec) && colon != std::string::npos && colon + 1 < source.size() &&
      !(IsDatabaseUrl(source) && source.find('/', source.find("://") + 3) > colon)) {
    const std::string id = source.substr(colon + 1);
    if (id.find_first_not_of("0123456789") == std::string::npos && id.size() <= 18) {
      where.database = source.substr(0, colon);
      where.run_id = std::stoll(id);
    }
  }
  if (!IsDatabaseUrl(where.database) && !fs::is_regular_file(where.database, ec)) {
    return BadInput(DatabaseDisplayName(where.database) + ": no such run folder, run.json or database");
  }
  return where;
}

// gamma = (1 + 1%) / (1 - 1%): a bucket's midpoint is within 1% of any value in it.
namespace {
constexpr double kSketchAccuracy = 0.01;
const double kLogGamma = std::log((1 + kSketchAccuracy) / (1 - kSketchAccuracy));
constexpr double kSmallestUs = 1e-3;  // below a nanosecond counts as zero
}  // namespace

void LatencySketch::Add(double microseconds) {
  ++count_;
  max_ = std::max(max_, microseconds);
  if (!(microseconds >= kSmallestUs)) {
    ++zeros_;
    return;
  }
  ++buckets_[static_cast<int>(std::ceil(std::log(microseconds) / kLogGamma))];
}

double LatencySketch::Quantile(double q) const {
  if (count_ == 0) return 0;
  const auto rank = static_cast<uint64_t>(std::floor(std::clamp(q, 0.0, 1.0) * static_cast<double>(count_ - 1)));
  uint64_t seen = zeros_;
  if (rank < seen) return 0;
  for (const auto& [index, n] : buckets_) {
    seen += n;
    if (rank < seen) {
      const double gamma = std::exp(kLogGamma);
      return std::min(max_, 2 * std::exp(kLogGamma * index) / (gamma + 1));
    }
  }
  return max_;
}

void RunDigest::Add(StepResult&& step) {
  ++steps;
  std::set<std::string> codes;
  for (const auto& alarm : step.alarms) codes.insert(alarm.code);
  for (const auto& code : codes) {
    AlarmTally& tally = alarms[code];
    if (tally.steps++ == 0) tally.first_step = step.index;
  }
  for (const auto& command : step.trace) {
    if (command.failed) continue;  // no response: no latency to speak of
    latency[TpmCommandName(command.command_code)].Add(static_cast<double>(command.duration.count()) / 1000.0);
  }

  const bool cycled = step.action == "power_cycle";
  CycleKindTally* kind = cycled ? &counters.by_kind[step.kind.empty() ? "unnamed" : step.kind] : nullptr;
  if (kind != nullptr) ++kind->cycles;
  if (!step.snapshot || !step.snapshot->quote_check.parsed) {
    if (step.snapshot && (!pcr_step || *pcr_step == step.index)) snapshot = std::move(step.snapshot), snapshot_step = step.index;
    return;
  }
  const ClockInfo now = step.snapshot->clock();
  auto count = [&](CounterTally& tally, uint64_t value, bool may_fall) {
    if (counters.snapshots == 0) {
      tally.first = value;
    } else if (value > tally.last) {
      ++tally.increases;
    } else if (value < tally.last && !may_fall) {
      if (tally.decreases++ == 0) tally.first_decrease_step = step.index;
    }
    tally.last = value;
  };
  const bool reset_up = counters.snapshots > 0 && now.reset_count > counters.reset_count.last;
  const bool restart_up = counters.snapshots > 0 && now.restart_count > counters.restart_count.last;
  count(counters.reset_count, now.reset_count, false);
  // A TPM Reset sets restartCount back to 0: only a fall without one is a fall.
  count(counters.restart_count, now.restart_count, reset_up);
  count(counters.clock, now.clock_ms, false);
  if (!now.safe && counters.safe_no++ == 0) counters.first_safe_no_step = step.index;
  if (kind != nullptr) {
    kind->reset_count_up += reset_up ? 1 : 0;
    kind->restart_count_up += restart_up ? 1 : 0;
    kind->safe_no += now.safe ? 0 : 1;
  }
  ++counters.snapshots;
  if (!pcr_step || *pcr_step == step.index) snapshot = std::move(step.snapshot), snapshot_step = step.index;
}

void RunDigest::AddOutcome(const json& outcome) {
  if (!outcome.is_object() || !outcome.contains("expectations") || !outcome["expectations"].is_array()) return;
  for (const json& e : outcome["expectations"]) {
    if (!e.is_object()) continue;
    const bool passed = e.value("passed", false);
    (passed ? expectations.passed : expectations.failed)++;
    if (passed) continue;
    const std::string name = e.value("name", std::string("?"));
    expectations.failed_names.push_back(name);
    expectations.failed_keys.push_back(e.value("where", name));
  }
}

Result<RunDigest> DigestRun(Store& store, const RunLocation& where, const std::string& label,
                            std::optional<int> pcr_step) {
  const std::string db = DatabaseDisplayName(where.database);
  RunDigest digest;
  digest.label = label;
  digest.location = where;
  digest.pcr_step = pcr_step;
  int64_t run_id = 0;
  if (where.run_id) {
    run_id = *where.run_id;
  } else {
    auto runs = store.ListRuns();
    if (!runs.ok()) return runs.status();
    if (runs->empty()) return BadInput(where.source + ": " + db + " holds no runs");
    run_id = runs->back().id;
  }
  auto run = store.LoadRun(run_id);
  if (!run.ok()) return BadInput(where.source + ": " + db + " has no run " + std::to_string(run_id) + " (" + run.status().message() + ")");
  digest.run = std::move(*run);
  digest.location.run_id = run_id;
  auto enrollment = store.LoadEnrollment(run_id);
  if (enrollment.ok()) digest.enrollment = std::move(*enrollment);
  TRY(store.ForEachStep(run_id, [&](StepResult&& step) -> Status {
    digest.Add(std::move(step));
    return Status::Ok();
  }));
  digest.AddOutcome(digest.run.outcome);
  if (pcr_step && digest.snapshot_step != *pcr_step) {
    return BadInput(where.source + ": run " + std::to_string(run_id) + " of " + db + " has no snapshot at step " +
                    std::to_string(*pcr_step));
  }
  return digest;
}

Result<Comparison> CompareRuns(const std::string& source_a, const std::string& source_b, const CompareOptions& options) {
  TRY_ASSIGN(RunLocation where_a, LocateRun(source_a));
  TRY_ASSIGN(RunLocation where_b, LocateRun(source_b));
  auto digest = [](const RunLocation& where, const std::string& label, std::optional<int> step) -> Result<RunDigest> {
    auto store = Store::Open(where.database);
    if (!store.ok()) {
      return BadInput(where.source + ": " + DatabaseDisplayName(where.database) +
                      ": not a tpmlab database: " + store.status().message());
    }
    return DigestRun(**store, where, label, step);
  };
  // One run after the other: only one run's digest is being built at a time.
  TRY_ASSIGN(RunDigest a, digest(where_a, "A", options.a_step));
  TRY_ASSIGN(RunDigest b, digest(where_b, "B", options.b_step));
  return CompareDigests(a, b, options);
}

}  // namespace tpmlab
