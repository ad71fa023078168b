// Qualification comparison: two stored runs side by side (the same scenario
// on firmware A and B, two DUTs of a fleet, two boots of one run), area by
// area: the PCRs that differ and the logged events that make them differ,
// alarms only in one run, counter behaviour, per-command latency with
// regressions flagged past a threshold, expectations, and one verdict line
// per area. Each run is read once through the Store, a step at a time
// (ForEachStep): memory does not grow with the length of a run (latency
// quantiles come from a log-bucket sketch, 1% relative accuracy).
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "harness/drift.h"
#include "harness/enrollment.h"
#include "harness/snapshot.h"
#include "harness/store.h"

namespace tpmlab {

struct CompareOptions {
  // A command's latency regressed when B's p50 or p90 is this many times A's
  // (p99 too when both runs timed it 100 times or more: below that p99 is
  // one outlier), and slower by at least min_delta_us (an emulator's
  // sub-millisecond commands jitter by more than 25% on a loaded host).
  double threshold = 1.25;
  double min_delta_us = 1000;
  // Which step's snapshot gives each run's PCRs; none: its last snapshot.
  std::optional<int> a_step, b_step;
};

// Where a run is: RUN_DIR (its run.json names the database and run),
// RUN_DIR/run.json, or DB[:RUN] (the latest run without RUN).
struct RunLocation {
  std::string source;    // as given
  std::string database;  // a SQLite file or a postgresql:// URL
  std::optional<int64_t> run_id;
};
Result<RunLocation> LocateRun(const std::string& source);

// Durations in a fixed number of logarithmic buckets (DDSketch's idea): any
// quantile within 1% of the true one, however many commands are added.
class LatencySketch {
 public:
  void Add(double microseconds);
  uint64_t count() const { return count_; }
  double Quantile(double q) const;  // 0 when empty
  double max() const { return max_; }

 private:
  std::map<int, uint64_t> buckets_;
  uint64_t zeros_ = 0, count_ = 0;
  double max_ = 0;
};

struct CounterTally {
  uint64_t first = 0, last = 0;
  int increases = 0;   // snapshots where it went up from the one before
  int decreases = 0;   // ... and down (restartCount: down without a reset)
  int first_decrease_step = -1;
  bool monotonic() const { return decreases == 0; }
};

// What one power-cycle kind did to the counters, over a run's cycles of that kind.
struct CycleKindTally {
  int cycles = 0;
  int reset_count_up = 0, restart_count_up = 0, safe_no = 0;
};

struct CounterBehaviour {
  int snapshots = 0;
  CounterTally reset_count, restart_count, clock;
  int safe_no = 0, first_safe_no_step = -1;
  std::map<std::string, CycleKindTally> by_kind;  // "reset", "power-loss", ...
};

struct AlarmTally {
  int steps = 0;         // steps that raised it
  int first_step = -1;
};

struct ExpectationTally {
  int passed = 0, failed = 0;
  std::vector<std::string> failed_names;
  std::vector<std::string> failed_keys;  // where in the scenario (file:line:col), else the name
};

// One run's header and everything the comparison needs from its steps: what
// one pass over the run leaves, whatever its length.
struct RunDigest {
  std::string label;  // "A", "B"
  RunLocation location;
  StoredRun run;
  std::optional<Enrollment> enrollment;  // the latest (its golden PCRs)
  std::optional<int> pcr_step;           // the step whose snapshot we keep (none: the last)
  std::optional<Snapshot> snapshot;
  int snapshot_step = -1;
  std::map<std::string, AlarmTally> alarms;
  CounterBehaviour counters;
  std::map<std::string, LatencySketch> latency;  // command name -> durations
  ExpectationTally expectations;
  int steps = 0;

  // Takes one step in run order (what ForEachStep yields); keeps its
  // snapshot when it is the one the PCRs are compared at.
  void Add(StepResult&& step);
  // The run's outcome (expectations), from StoredRun::outcome.
  void AddOutcome(const nlohmann::json& outcome);
};

/// Reads one run through the store, one step at a time.
Result<RunDigest> DigestRun(Store& store, const RunLocation& where, const std::string& label,
                            std::optional<int> pcr_step);

struct PcrDifference {
  std::string bank;
  int pcr = 0;
  std::string a, b;                  // hex; "" when the bank is absent on that side
  std::string a_golden, b_golden;    // each run's latest enrollment; "" without one
  std::vector<nlohmann::json> events;  // DriftToJson's events of this PCR
  std::vector<Cause> causes;           // the causes of this PCR
};

struct PcrComparison {
  bool compared = false;  // both runs took a snapshot
  std::string why_not;
  int a_step = -1, b_step = -1;
  std::vector<std::string> banks;  // compared (in both)
  std::vector<PcrDifference> differences;
  Drift drift;  // all of it, TPM causes included (DIFFERENT_TPM, OWNERSHIP_CLEAR...)
};

struct AlarmComparison {
  std::string code;
  std::optional<AlarmTally> a, b;
};

struct LatencyFigures {
  uint64_t count = 0;
  double p50_us = 0, p90_us = 0, p99_us = 0, max_us = 0;
};

struct CommandLatency {
  std::string command;
  std::optional<LatencyFigures> a, b;
  std::optional<double> ratio_p50, ratio_p90, ratio_p99;  // B / A, when both timed it
  std::vector<std::string> regressed;                    // "p50", "p90", "p99"
};

struct AreaVerdict {
  std::string area;    // pcrs, alarms, counters, latency, expectations
  std::string status;  // same, differs, improved, regression, not compared
  std::string line;    // "PCRs: 1 differs (PCR0 sha256: platform firmware changed)"
};

struct Comparison {
  CompareOptions options;
  nlohmann::json a, b;  // each run's header
  PcrComparison pcrs;
  std::vector<AlarmComparison> alarms;
  CounterBehaviour counters_a, counters_b;
  std::vector<std::string> counter_differences;
  bool counters_regressed = false;
  std::vector<CommandLatency> latency;
  ExpectationTally expectations_a, expectations_b;
  std::vector<std::string> failed_only_in_b;
  std::vector<AreaVerdict> verdicts;
  // PCRs differ, or an area regressed: what `tpmlab compare` exits 1 for.
  bool differs() const;
};

/// The comparison of two digests (no I/O: tests feed it digests directly).
Comparison CompareDigests(const RunDigest& a, const RunDigest& b, const CompareOptions& options);

/// Locates, opens and reads both runs, then compares them. Bad sources
/// (no such folder, database or run; a run.json of another shape) are
/// kBadInput errors naming the source.
Result<Comparison> CompareRuns(const std::string& source_a, const std::string& source_b,
                               const CompareOptions& options = {});

nlohmann::json ComparisonToJson(const Comparison& comparison);

/// One self-contained HTML page: tables and, when `chart_js` holds Chart.js
/// (read by the caller, e.g. Debian's /usr/share/javascript/chart.js/chart.min.js),
/// a bar chart of the latency ratios; a CSP meta tag forbids any network fetch.
std::string ComparisonToHtml(const Comparison& comparison, const std::string& chart_js);

}  // namespace tpmlab
